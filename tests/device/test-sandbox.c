/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * mu_dev_sandbox(): a sandboxed device keeps serving every request type
 * at every level the machine supports (a system call the filter misses
 * kills the device and fails the test), and a device that turns hostile
 * after sandboxing is stopped at open(), socket(), connect(), execve() and
 * ptrace() with nothing it attempted done.
 *
 * The sandbox is irreversible and process-wide, so every sandboxed device
 * is a forked child ("kid") and this process plays the client with
 * libmuser-client. The kid's stderr goes to a file the test reads.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "muser/client.h"
#include "muser/device.h"

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#endif
#endif
#ifndef RUNNING_ON_VALGRIND
#define RUNNING_ON_VALGRIND 0
#endif

/* BAR0 registers of the test device */
#define R_IOVA 0x00u
#define R_LEN 0x08u
#define R_CMD 0x10u /* a write runs the command */
#define R_RESULT 0x18u
#define R_RESETS 0x20u
#define R_BUF 0x100u
#define BUF_SIZE 0x100u

enum cmd {
	CMD_DMA_READ = 1, /* BUF <- guest[IOVA, LEN) */
	CMD_DMA_WRITE,	  /* guest[IOVA, LEN) <- BUF */
	CMD_INTX,	  /* pulse INTx */
	CMD_MSIX,	  /* trigger MSI-X vector 0 */
	CMD_PIPE,	  /* pipe2(): declared by the kid */
	CMD_OPEN = 10,	  /* create evil_file */
	CMD_SOCKET,	  /* socket() + connect() to evil_listen */
	CMD_CONNECT,	  /* connect() a socket made before the sandbox */
	CMD_EXECVE,	  /* run sh to create evil_file */
	CMD_PTRACE,	  /* attach to the test process */
	CMD_UNLINK,	  /* remove evil_victim */
	CMD_RMFILE = 20,  /* mu_dev_sandbox_unlink(<path>.f1) */
};

#define BAR0_SIZE 0x1000u
#define BAR2_SIZE 0x4000u
#define BAR4_SIZE 0x4000u
#define MSIX_VECS 4u
#define IOVA 0x100000ull
#define MSZ 0x10000ull

/* Set before forking, so the kid knows them too. */
static char evil_file[64], evil_listen[108], evil_victim[64];

/* ---- the device (kid side) ------------------------------------------- */

struct sd {
	mu_dev_t *dev;
	const char *path;
	uint8_t bar0[BAR0_SIZE];
	int evil_fd;
	uint8_t mig[32];
	size_t mig_len, mig_pos;
};

static mu_dev_t *kid_dev, *kid_dev2;

static int32_t run_cmd(struct sd *s, uint32_t cmd)
{
	uint64_t iova;
	uint32_t len;
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	char script[160];
	char *const argv[] = {"sh", "-c", script, NULL};
	char *const envp[] = {NULL};
	int p[2], fd;

	memcpy(&iova, s->bar0 + R_IOVA, 8);
	memcpy(&len, s->bar0 + R_LEN, 4);
	if (len > BUF_SIZE)
		return -EINVAL;
	strcpy(sa.sun_path, evil_listen);
	switch (cmd) {
	case CMD_DMA_READ:
		return mu_dma_read(s->dev, iova, s->bar0 + R_BUF, len);
	case CMD_DMA_WRITE:
		return mu_dma_write(s->dev, iova, s->bar0 + R_BUF, len);
	case CMD_INTX:
		fd = mu_irq_set_intx(s->dev, true);
		return fd < 0 ? fd : mu_irq_set_intx(s->dev, false);
	case CMD_MSIX:
		return mu_irq_trigger(s->dev, MU_PCI_MSIX_IRQ_INDEX, 0);
	case CMD_PIPE:
		if (pipe2(p, O_CLOEXEC) < 0)
			return -errno;
		close(p[0]);
		close(p[1]);
		return 0;
	case CMD_OPEN:
		fd = open(evil_file, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
		if (fd < 0)
			return -errno;
		close(fd);
		return 0;
	case CMD_SOCKET:
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return -errno;
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
			close(fd);
			return -errno;
		}
		close(fd);
		return 0;
	case CMD_CONNECT:
		return connect(s->evil_fd, (struct sockaddr *)&sa, sizeof(sa)) <
				       0
			       ? -errno
			       : 0;
	case CMD_EXECVE:
		snprintf(script, sizeof(script), "echo owned > %s", evil_file);
		execve("/bin/sh", argv, envp);
		return -errno;
	case CMD_UNLINK:
		return unlinkat(AT_FDCWD, evil_victim, 0) < 0 ? -errno : 0;
	case CMD_RMFILE:
		snprintf(script, sizeof(script), "%s.f1", s->path);
		return mu_dev_sandbox_unlink(script);
	case CMD_PTRACE:
		return ptrace(PTRACE_ATTACH, getppid(), NULL, NULL) < 0 ? -errno
									: 0;
	}
	return -EINVAL;
}

static ssize_t bar0_access(void *opaque, unsigned region, uint64_t off,
			   void *buf, size_t count, bool is_write)
{
	struct sd *s = opaque;
	int32_t res;

	(void)region;
	if (!is_write) {
		memcpy(buf, s->bar0 + off, count);
		return (ssize_t)count;
	}
	memcpy(s->bar0 + off, buf, count);
	if (off == R_CMD && count == 4) {
		uint32_t cmd;

		memcpy(&cmd, buf, 4);
		res = run_cmd(s, cmd);
		memcpy(s->bar0 + R_RESULT, &res, 4);
	}
	return (ssize_t)count;
}

static int sd_reset(void *o, enum mu_reset_reason why)
{
	struct sd *s = o;
	uint32_t n;

	if (why == MU_RESET_LOST_CONN)
		return 0;
	memcpy(&n, s->bar0 + R_RESETS, 4);
	n++;
	memcpy(s->bar0 + R_RESETS, &n, 4);
	return 0;
}

static int sd_mig(void *o, enum mu_mig_state to)
{
	struct sd *s = o;

	if (to == MU_MIG_STATE_STOP_COPY) {
		s->mig_pos = 0;
		s->mig_len = 13;
		memcpy(s->mig, "sandboxed-mig", 13);
	}
	if (to == MU_MIG_STATE_RESUMING)
		s->mig_len = 0;
	return 0;
}

static ssize_t sd_mig_read(void *o, void *buf, size_t len)
{
	struct sd *s = o;
	size_t n = s->mig_len - s->mig_pos;

	n = n < len ? n : len;
	memcpy(buf, s->mig + s->mig_pos, n);
	s->mig_pos += n;
	return (ssize_t)n;
}

static ssize_t sd_mig_write(void *o, const void *buf, size_t len)
{
	struct sd *s = o;

	if (s->mig_len + len > sizeof(s->mig))
		return -ENOSPC;
	memcpy(s->mig + s->mig_len, buf, len);
	s->mig_len += len;
	return (ssize_t)len;
}

static void kid_log(void *o, int level, const char *msg)
{
	(void)o;
	if (level <= MU_LOG_INFO)
		fprintf(stderr, "kid: %s\n", msg);
}

/* On path, or on the connected socket fd when path is NULL. */
static int sd_create(struct sd *s, const char *path, int fd)
{
	static const struct mu_sparse_mmap_area s4 = {0x3000, 0x1000};
	struct mu_pci_id id = {0x494f, 0x5b00, 0x494f, 0x0001, 0xff0000, 1};
	struct mu_region_desc d = {.struct_size = sizeof(d)};
	struct mu_dev_callbacks cb = {
		.struct_size = sizeof(cb),
		.reset = sd_reset,
		.mig_transition = sd_mig,
		.mig_read = sd_mig_read,
		.mig_write = sd_mig_write,
	};
	int r;

	s->path = path;
	r = path ? mu_dev_create(&s->dev, path, s)
		 : mu_dev_create_fd(&s->dev, fd, s);
	if (r < 0)
		return r;
	mu_dev_set_log(s->dev, kid_log, NULL, MU_LOG_INFO);
	r = mu_pci_setup(s->dev, &id, MU_PCI_EXPRESS);
	if (r == 0)
		r = mu_pci_set_intx_pin(s->dev, 1);
	d.size = BAR0_SIZE;
	d.flags = MU_REGION_RW;
	d.access = bar0_access;
	if (r == 0)
		r = mu_dev_setup_region(s->dev, 0, &d);
	d.access = NULL;
	d.size = BAR2_SIZE;
	d.flags = MU_REGION_RW | MU_REGION_MEM;
	if (r == 0)
		r = mu_dev_setup_region(s->dev, 2, &d);
	d.size = BAR4_SIZE;
	d.sparse = &s4;
	d.nr_sparse = 1;
	if (r == 0)
		r = mu_dev_setup_region(s->dev, 4, &d);
	if (r == 0)
		r = mu_pci_add_msi_cap(s->dev, 1, true, true) > 0 ? 0 : -EIO;
	if (r == 0)
		r = mu_pci_add_msix_cap(s->dev, MSIX_VECS, 4, 0, 4, 0x2000) > 0
			    ? 0
			    : -EIO;
	if (r == 0)
		r = mu_pci_add_express_cap(s->dev, MU_PCIE_ENDPOINT) > 0 ? 0
									 : -EIO;
	if (r == 0)
		r = mu_dev_set_callbacks(s->dev, &cb);
	if (r == 0)
		r = mu_dev_realize(s->dev);
	return r;
}

static void on_term(int sig)
{
	(void)sig;
	if (kid_dev)
		mu_dev_stop(kid_dev);
	if (kid_dev2)
		mu_dev_stop(kid_dev2);
}

struct kid_cfg {
	enum mu_sandbox_level level;
	uint32_t flags;
	bool declare_pipe; /* syscalls = {"pipe2"} */
	bool two;	   /* a second device on path + ".2", own thread */
	int fd;		   /* serve this connected socket, not a path */
	int close_fd;	   /* the test's end of it: the kid closes it */
	bool files;	   /* makes <path>.f1 and .f2, remove_files */
};

static void *run_dev2(void *arg)
{
	return (void *)(intptr_t)mu_dev_run(arg);
}

/* Never returns. Exit codes: 0 served and cleaned up, 3 no device, 4 no
 * sandbox (the result went to the test through ready_fd), 5 serving
 * failed, 6 no thread. */
static void kid_main(const struct kid_cfg *cfg, const char *path, int ready_fd)
{
	static const char *const extra[] = {"pipe2"};
	struct sd *s = calloc(1, sizeof(*s)), *s2 = calloc(1, sizeof(*s2));
	struct mu_sandbox_opts o = {.struct_size = sizeof(o)};
	char path2[120], fpath[2][120];
	const char *fnames[2];
	struct sigaction sa;
	pthread_t thr;
	void *ret2 = NULL;
	int keep[2], r;

	struct rlimit no_core = {0, 0};

	/* hostile kids die of SIGSYS: no core files from the test */
	setrlimit(RLIMIT_CORE, &no_core);
	if (cfg->close_fd >= 0)
		close(cfg->close_fd);
	snprintf(path2, sizeof(path2), "%s.2", path);
	r = s && s2 ? sd_create(s, cfg->fd >= 0 ? NULL : path, cfg->fd)
		    : -ENOMEM;
	if (r == 0 && cfg->two)
		r = sd_create(s2, path2, -1);
	if (r < 0) {
		if (write(ready_fd, &r, sizeof(r)) < 0) {
		}
		_exit(3);
	}
	kid_dev = s->dev;
	kid_dev2 = cfg->two ? s2->dev : NULL;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_term;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	s->evil_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	keep[0] = ready_fd;
	keep[1] = s->evil_fd;
	o.level = cfg->level;
	o.flags = cfg->flags;
	o.keep_fds = keep;
	o.nr_keep_fds = 2;
	if (cfg->declare_pipe) {
		o.syscalls = extra;
		o.nr_syscalls = 1;
	}
	if (cfg->two) {
		o.devs = &kid_dev2;
		o.nr_devs = 1;
	}
	if (cfg->files) {
		for (int i = 0; i < 2; i++) {
			snprintf(fpath[i], sizeof(fpath[i]), "%s.f%d", path,
				 i + 1);
			close(open(fpath[i], O_CREAT | O_WRONLY | O_CLOEXEC,
				   0600));
			fnames[i] = fpath[i];
		}
		o.remove_files = fnames;
		o.nr_remove_files = 2;
	}
	r = mu_dev_sandbox(s->dev, &o);
	if (write(ready_fd, &r, sizeof(r)) < 0) {
	}
	if (r < 0) {
		for (int i = 0; cfg->files && i < 2; i++)
			unlink(fpath[i]);
		if (cfg->two)
			mu_dev_destroy(s2->dev);
		mu_dev_destroy(s->dev);
		_exit(4);
	}
	/* threads made after the filter: clone(CLONE_THREAD) is allowed */
	if (cfg->two && pthread_create(&thr, NULL, run_dev2, s2->dev) != 0)
		_exit(6);
	r = mu_dev_run(s->dev);
	if (cfg->fd >= 0 && r == -ENOTCONN)
		r = 0; /* the client left: fd mode is done */
	if (cfg->two) {
		mu_dev_stop(s2->dev);
		pthread_join(thr, &ret2);
		mu_dev_destroy(s2->dev);
	}
	mu_dev_destroy(s->dev);
	/* exit(), not _exit(): libmuser reaps its helper at exit */
	exit(r < 0 || ret2 ? 5 : 0);
}

/* ---- the test side --------------------------------------------------- */

struct kid {
	pid_t pid;
	char path[108];
	int err_fd; /* the kid's stderr */
	int status;
	char log[8192];
};

/* Fork a sandboxed device; its mu_dev_sandbox() result, or skip() where
 * the machine can't (no seccomp, no namespaces). */
static int kid_start(struct kid *k, const struct kid_cfg *cfg)
{
	static int seq;
	char tmpl[] = "/tmp/mu-sbx-log-XXXXXX";
	int ready[2], r = -EIO;
	ssize_t n;

	memset(k, 0, sizeof(*k));
	snprintf(k->path, sizeof(k->path), "/tmp/mu-sbx-%d-%d.sock", getpid(),
		 seq++);
	k->err_fd = mkstemp(tmpl);
	assert_true(k->err_fd >= 0);
	unlink(tmpl);
	assert_int_equal(pipe2(ready, O_CLOEXEC), 0);
	fflush(NULL);
	k->pid = fork();
	assert_true(k->pid >= 0);
	if (k->pid == 0) {
		close(ready[0]);
		dup2(k->err_fd, 2);
		kid_main(cfg, k->path, ready[1]);
	}
	close(ready[1]);
	n = read(ready[0], &r, sizeof(r));
	close(ready[0]);
	if (n != sizeof(r))
		r = -EPIPE;
	return r;
}

/* Wait for the kid (SIGTERM first when stop), keep its status and log. */
static void kid_wait(struct kid *k, bool stop)
{
	ssize_t n;

	if (stop)
		kill(k->pid, SIGTERM);
	assert_int_equal(waitpid(k->pid, &k->status, 0), k->pid);
	/* helpers of kids that died by a signal come to us (subreaper) */
	while (waitpid(-1, NULL, WNOHANG) > 0) {
	}
	n = pread(k->err_fd, k->log, sizeof(k->log) - 1, 0);
	k->log[n > 0 ? n : 0] = 0;
	close(k->err_fd);
	if (getenv("MU_TEST_VERBOSE"))
		fprintf(stderr, "--- kid %d log:\n%s---\n", (int)k->pid,
			k->log);
}

/* Start a kid or skip the test where the level is not available here. */
static void kid_start_or_skip(struct kid *k, const struct kid_cfg *cfg)
{
	int r = kid_start(k, cfg);

	if (r == 0)
		return;
	kid_wait(k, false);
	if (r == -ENOSYS) {
		fprintf(stderr, "skip: no seccomp in this kernel or build\n");
		skip();
	}
	if (cfg->level >= MU_SANDBOX_NAMESPACES &&
	    !(cfg->flags & MU_SANDBOX_BEST_EFFORT) &&
	    (r == -EPERM || r == -EACCES || r == -ENOSPC)) {
		fprintf(stderr, "skip: no namespaces for this process: %s\n",
			strerror(-r));
		skip();
	}
	fprintf(stderr, "%s", k->log);
	fail_msg("mu_dev_sandbox: %s", strerror(-r));
}

/* The kid served, then stopped cleanly and removed its socket file. */
static void kid_stop_clean(struct kid *k)
{
	kid_wait(k, true);
	if (!WIFEXITED(k->status) || WEXITSTATUS(k->status) != 0)
		fprintf(stderr, "%s", k->log);
	assert_true(WIFEXITED(k->status));
	assert_int_equal(WEXITSTATUS(k->status), 0);
	assert_int_equal(access(k->path, F_OK), -1);
	assert_null(strstr(k->log, "muser sandbox:"));
}

static int connect_retry(mu_client_t **c, const char *path, bool twin)
{
	struct mu_client_opts o = {.struct_size = sizeof(o),
				   .no_twin_socket = !twin};

	return mu_client_connect(c, path, &o);
}

static void w32(mu_client_t *c, uint32_t off, uint32_t v)
{
	assert_int_equal(mu_client_region_write(c, 0, off, &v, 4), 0);
}

static uint32_t r32(mu_client_t *c, uint32_t off)
{
	uint32_t v = 0xdeadbeef;

	assert_int_equal(mu_client_region_read(c, 0, off, &v, 4), 0);
	return v;
}

static int32_t run(mu_client_t *c, enum cmd cmd)
{
	w32(c, R_CMD, cmd);
	return (int32_t)r32(c, R_RESULT);
}

static uint64_t efd_read(int fd)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	uint64_t v = 0;

	if (poll(&p, 1, 2000) != 1 || read(fd, &v, 8) != 8)
		return 0;
	return v;
}

/* DMA both ways through [IOVA, +MSZ): guest is what the client sees. */
static void dma_roundtrip(mu_client_t *c, uint8_t *guest)
{
	uint8_t buf[64];
	uint64_t iova = IOVA + 0x123;

	memcpy(guest + 0x123, "from the guest", 15);
	assert_int_equal(mu_client_region_write(c, 0, R_IOVA, &iova, 8), 0);
	w32(c, R_LEN, 15);
	assert_int_equal(run(c, CMD_DMA_READ), 0);
	assert_int_equal(mu_client_region_read(c, 0, R_BUF, buf, 15), 0);
	assert_memory_equal(buf, "from the guest", 15);
	assert_int_equal(
		mu_client_region_write(c, 0, R_BUF, "to the guest", 13), 0);
	iova = IOVA + 0x800;
	assert_int_equal(mu_client_region_write(c, 0, R_IOVA, &iova, 8), 0);
	w32(c, R_LEN, 13);
	assert_int_equal(run(c, CMD_DMA_WRITE), 0);
	assert_memory_equal(guest + 0x800, "to the guest", 13);
}

/* Every request type, as a VMM would make them; then a reconnect. fd
 * mode (path NULL): on the client given, which is destroyed, no
 * reconnect. */
static void serve_everything(const char *path, mu_client_t *c, bool twin,
			     bool pipe_ok)
{
	struct mu_device_info di;
	const struct mu_client_region *reg;
	struct mu_irq_info ii;
	struct mu_client_session ses;
	struct mu_sub_region_ioeventfd subs[4];
	int iofds[4], efd[MSIX_VECS], intx, i;
	uint8_t *guest, *bar2, mig[64];
	uint64_t flags, pat = 0x1122334455667788ull, v64 = 0;
	uint32_t st, v, resets;
	ssize_t n;
	int mfd;

	if (path)
		assert_int_equal(connect_retry(&c, path, twin), 0);
	assert_int_equal(mu_client_get_session(c, &ses), 0);
	assert_int_equal(ses.twin_socket, twin);
	/* discovery */
	assert_int_equal(mu_client_device_info(c, &di), 0);
	assert_true(di.num_regions >= 9);
	for (i = 0; i <= MU_PCI_CONFIG_REGION_INDEX; i++)
		assert_int_equal(mu_client_region_info(c, (unsigned)i, &reg),
				 0);
	for (i = 0; i < MU_PCI_NUM_IRQS; i++)
		assert_int_equal(mu_client_irq_info(c, (unsigned)i, &ii), 0);
	assert_true(mu_client_region_io_fds(c, 0, subs, iofds, 4) >= 0);
	/* config space and a callback region, posted writes too */
	assert_int_equal(
		mu_client_region_read(c, MU_PCI_CONFIG_REGION_INDEX, 0, &v, 4),
		0);
	assert_int_equal(v & 0xffff, 0x494f);
	assert_int_equal(mu_client_region_write(c, 0, R_BUF, &pat, 8), 0);
	assert_int_equal(mu_client_region_read(c, 0, R_BUF, &v64, 8), 0);
	assert_true(v64 == pat);
	for (i = 0; i < 8; i++) {
		v = 0xa0u + (uint32_t)i;
		assert_int_equal(mu_client_region_write_posted(
					 c, 0, R_BUF + 4 * (unsigned)i, &v, 4),
				 0);
	}
	assert_int_equal(mu_client_flush(c), 0);
	assert_int_equal(r32(c, R_BUF + 28), 0xa7);
	/* a mappable region: the memfd the device sent */
	assert_int_equal(mu_client_region_mmap(c, 2, 0, BAR2_SIZE,
					       PROT_READ | PROT_WRITE,
					       (void **)&bar2),
			 0);
	bar2[10] = 0x5a;
	assert_int_equal(mu_client_region_read(c, 2, 10, &v, 1), 0);
	assert_int_equal(v & 0xff, 0x5a);
	assert_int_equal(mu_client_region_munmap(c, bar2, BAR2_SIZE), 0);
	/* interrupts: INTx from the device, MSI-X from both sides */
	intx = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	assert_int_equal(mu_client_irq_set_eventfds(c, MU_PCI_INTX_IRQ_INDEX, 0,
						    1, &intx),
			 0);
	assert_int_equal(run(c, CMD_INTX), 0);
	assert_true(efd_read(intx) >= 1);
	assert_int_equal(
		mu_client_irq_mask(c, MU_PCI_INTX_IRQ_INDEX, 0, 1, false), 0);
	assert_int_equal(mu_client_irq_disable(c, MU_PCI_INTX_IRQ_INDEX), 0);
	for (i = 0; i < (int)MSIX_VECS; i++)
		efd[i] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	assert_int_equal(mu_client_irq_set_eventfds(c, MU_PCI_MSIX_IRQ_INDEX, 0,
						    MSIX_VECS, efd),
			 0);
	assert_int_equal(mu_client_irq_trigger(c, MU_PCI_MSIX_IRQ_INDEX, 1, 1),
			 0);
	assert_true(efd_read(efd[1]) >= 1);
	assert_int_equal(run(c, CMD_MSIX), 0);
	assert_true(efd_read(efd[0]) >= 1);
	assert_int_equal(mu_client_irq_disable(c, MU_PCI_MSIX_IRQ_INDEX), 0);
	/* DMA through an fd the device maps */
	mfd = memfd_create("guest", MFD_CLOEXEC);
	assert_int_equal(ftruncate(mfd, MSZ), 0);
	guest = mmap(NULL, MSZ, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
	assert_true(guest != MAP_FAILED);
	assert_int_equal(mu_client_dma_map_fd(c, IOVA, MSZ, mfd, 0,
					      MU_DMA_MAP_FLAG_READ |
						      MU_DMA_MAP_FLAG_WRITE),
			 0);
	dma_roundtrip(c, guest);
	/* dirty page logging over the fd map */
	if (mu_client_dma_log_probe(c) == 1) {
		struct mu_dma_logging_range rg = {IOVA, MSZ};
		uint64_t bm[2] = {0};

		assert_int_equal(mu_client_dma_log_start(c, 4096, &rg, 1, NULL),
				 0);
		assert_int_equal(run(c, CMD_DMA_WRITE), 0);
		assert_int_equal(mu_client_dma_log_report(c, IOVA, MSZ, 4096,
							  bm, sizeof(bm)),
				 0);
		assert_true(bm[0] & 1);
		assert_int_equal(mu_client_dma_log_stop(c), 0);
	}
	assert_int_equal(mu_client_dma_unmap(c, IOVA, MSZ), 0);
	/* DMA without an fd: DMA_READ/DMA_WRITE messages (twin or main) */
	memset(guest, 0, MSZ);
	assert_int_equal(mu_client_dma_map_buffer(
				 c, IOVA, guest, MSZ,
				 MU_DMA_MAP_FLAG_READ | MU_DMA_MAP_FLAG_WRITE),
			 0);
	dma_roundtrip(c, guest);
	assert_int_equal(mu_client_dma_unmap_all(c), 0);
	/* a system call the device declared */
	assert_int_equal(run(c, CMD_PIPE), pipe_ok ? 0 : -EPERM);
	/* migration */
	assert_int_equal(mu_client_mig_flags(c, &flags), 0);
	assert_int_equal(mu_client_mig_set_state(c, MU_MIG_STATE_STOP), 0);
	assert_int_equal(mu_client_mig_set_state(c, MU_MIG_STATE_STOP_COPY), 0);
	n = mu_client_mig_read(c, mig, sizeof(mig));
	assert_int_equal(n, 13);
	assert_memory_equal(mig, "sandboxed-mig", 13);
	assert_int_equal(mu_client_mig_set_state(c, MU_MIG_STATE_STOP), 0);
	assert_int_equal(mu_client_mig_set_state(c, MU_MIG_STATE_RESUMING), 0);
	assert_int_equal(mu_client_mig_write(c, mig, 13), 0);
	assert_int_equal(mu_client_mig_set_state(c, MU_MIG_STATE_STOP), 0);
	assert_int_equal(mu_client_mig_set_state(c, MU_MIG_STATE_RUNNING), 0);
	assert_int_equal(mu_client_mig_get_state(c, &st), 0);
	assert_int_equal(st, MU_MIG_STATE_RUNNING);
	/* reset */
	resets = r32(c, R_RESETS);
	assert_int_equal(mu_client_reset(c), 0);
	assert_int_equal(r32(c, R_RESETS), resets + 1);
	mu_client_destroy(c);
	/* reconnect: a new client is accepted and served */
	if (path) {
		assert_int_equal(connect_retry(&c, path, twin), 0);
		assert_int_equal(r32(c, R_RESETS), resets + 1);
		mu_client_destroy(c);
	}
	munmap(guest, MSZ);
	close(mfd);
	close(intx);
	for (i = 0; i < (int)MSIX_VECS; i++)
		close(efd[i]);
}

static void serve_at(enum mu_sandbox_level level, uint32_t flags, bool twin)
{
	struct kid_cfg cfg = {.level = level,
			      .flags = flags,
			      .declare_pipe = true,
			      .fd = -1,
			      .close_fd = -1};
	struct kid k;

	kid_start_or_skip(&k, &cfg);
	serve_everything(k.path, NULL, twin, true);
	kid_stop_clean(&k);
	assert_non_null(strstr(k.log, "kid: sandbox: level"));
}

static void test_serve_seccomp(void **state)
{
	(void)state;
	serve_at(MU_SANDBOX_SECCOMP, 0, true);
	serve_at(MU_SANDBOX_SECCOMP, 0, false);
}

static void test_serve_namespaces(void **state)
{
	(void)state;
	serve_at(MU_SANDBOX_NAMESPACES, 0, true);
}

static void test_serve_strict(void **state)
{
	(void)state;
	serve_at(MU_SANDBOX_STRICT, 0, true);
	serve_at(MU_SANDBOX_STRICT, 0, false);
	serve_at(MU_SANDBOX_STRICT, MU_SANDBOX_BEST_EFFORT, true);
}

/* A call the device did not declare fails in log-only mode (and kills
 * otherwise, see test_hostile). */
static void test_undeclared_logged(void **state)
{
	struct kid_cfg cfg = {.level = MU_SANDBOX_SECCOMP,
			      .flags = MU_SANDBOX_LOG_ONLY,
			      .fd = -1,
			      .close_fd = -1};
	struct kid k;

	(void)state;
	kid_start_or_skip(&k, &cfg);
	serve_everything(k.path, NULL, true, false);
	kid_wait(&k, true);
	assert_true(WIFEXITED(k.status));
	assert_int_equal(WEXITSTATUS(k.status), 0);
	assert_non_null(strstr(k.log, "system call pipe2"));
	assert_non_null(strstr(k.log, "failed with EPERM (log only)"));
}

/* STRICT closes an fd the device did not declare; lower levels keep it.
 * The kid holds the only other write end of a pipe: EOF means closed. */
static void stray_fd(enum mu_sandbox_level level, bool closed)
{
	struct kid_cfg cfg = {.level = level, .fd = -1, .close_fd = -1};
	struct pollfd p;
	struct kid k;
	int pfd[2];

	assert_int_equal(pipe(pfd), 0); /* no CLOEXEC: the kid inherits it */
	kid_start_or_skip(&k, &cfg);
	close(pfd[1]);
	p = (struct pollfd){.fd = pfd[0], .events = POLLIN};
	assert_int_equal(poll(&p, 1, closed ? 2000 : 100), closed ? 1 : 0);
	if (closed)
		assert_true(p.revents & POLLHUP);
	kid_stop_clean(&k);
	close(pfd[0]);
}

static void test_strict_closes_fds(void **state)
{
	(void)state;
	stray_fd(MU_SANDBOX_SECCOMP, false);
	stray_fd(MU_SANDBOX_STRICT, true);
}

/* A device on a connected socket (--fd): STRICT keeps it, the kid
 * serves a whole session and ends when the client leaves. */
static void fd_mode(enum mu_sandbox_level level)
{
	struct kid_cfg cfg = {
		.level = level, .declare_pipe = true, .fd = -1, .close_fd = -1};
	mu_client_t *c;
	struct kid k;
	int sv[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv),
			 0);
	cfg.fd = sv[1];
	cfg.close_fd = sv[0];
	kid_start_or_skip(&k, &cfg);
	close(sv[1]);
	assert_int_equal(mu_client_adopt(&c, sv[0], NULL), 0);
	serve_everything(NULL, c, true, true);
	kid_wait(&k, false);
	if (!WIFEXITED(k.status) || WEXITSTATUS(k.status) != 0)
		fprintf(stderr, "%s", k.log);
	assert_true(WIFEXITED(k.status));
	assert_int_equal(WEXITSTATUS(k.status), 0);
	assert_null(strstr(k.log, "muser sandbox:"));
}

static void test_fd_mode(void **state)
{
	(void)state;
	fd_mode(MU_SANDBOX_SECCOMP);
	fd_mode(MU_SANDBOX_STRICT);
}

/* Two devices in one process (opts.devs), the second served by a thread
 * started after the sandbox: both serve, both socket files go at exit. */
static void test_two_devices(void **state)
{
	struct kid_cfg cfg = {.level = MU_SANDBOX_STRICT,
			      .declare_pipe = true,
			      .two = true,
			      .fd = -1,
			      .close_fd = -1};
	char path2[120];
	struct kid k;

	(void)state;
	kid_start_or_skip(&k, &cfg);
	snprintf(path2, sizeof(path2), "%s.2", k.path);
	serve_everything(path2, NULL, true, true);
	serve_everything(k.path, NULL, false, true);
	kid_stop_clean(&k);
	assert_int_equal(access(path2, F_OK), -1);
}

/* remove_files: mu_dev_sandbox_unlink() removes a declared file at once
 * (the sandboxed process can't, a helper does), once; what is left goes
 * when the process ends. */
static void test_remove_files(void **state)
{
	struct kid_cfg cfg = {.level = MU_SANDBOX_STRICT,
			      .fd = -1,
			      .close_fd = -1,
			      .files = true};
	char f1[130], f2[130];
	mu_client_t *c;
	struct kid k;
	int i;

	(void)state;
	kid_start_or_skip(&k, &cfg);
	snprintf(f1, sizeof(f1), "%s.f1", k.path);
	snprintf(f2, sizeof(f2), "%s.f2", k.path);
	assert_int_equal(access(f1, F_OK), 0);
	assert_int_equal(connect_retry(&c, k.path, true), 0);
	assert_int_equal(run(c, CMD_RMFILE), 0);
	assert_int_equal(access(f1, F_OK), -1);
	assert_int_equal(access(f2, F_OK), 0);
	assert_int_equal(run(c, CMD_RMFILE), -ENOENT);
	mu_client_destroy(c);
	kid_stop_clean(&k);
	/* the helper removes f2 when it sees the kid gone */
	for (i = 0; i < 200 && access(f2, F_OK) == 0; i++)
		usleep(10000);
	assert_int_equal(access(f2, F_OK), -1);
}

/* ---- a hostile device ------------------------------------------------ */

static const struct {
	enum cmd cmd;
	const char *call; /* as the log line names it */
} attacks[] = {
	{CMD_OPEN, "openat"},	  {CMD_SOCKET, "socket"},
	{CMD_CONNECT, "connect"}, {CMD_EXECVE, "execve"},
	{CMD_PTRACE, "ptrace"},	  {CMD_UNLINK, "unlinkat"},
};

static int listener(void)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

	assert_true(fd >= 0);
	strcpy(sa.sun_path, evil_listen);
	unlink(evil_listen);
	close(open(evil_victim, O_CREAT | O_WRONLY | O_CLOEXEC, 0600));
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(fd, 8), 0);
	return fd;
}

/* Nothing the hostile device tried happened. */
static void nothing_happened(int lfd)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[128];
	int tracer = -1;

	assert_int_equal(access(evil_file, F_OK), -1);
	assert_int_equal(access(evil_victim, F_OK), 0);
	assert_int_equal(accept4(lfd, NULL, NULL, SOCK_CLOEXEC), -1);
	assert_int_equal(errno, EAGAIN);
	assert_non_null(f);
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "TracerPid: %d", &tracer) == 1)
			break;
	fclose(f);
	assert_int_equal(tracer, 0);
}

static void hostile(enum mu_sandbox_level level)
{
	struct kid_cfg cfg = {.level = level, .fd = -1, .close_fd = -1};
	int lfd = -1;
	unsigned i;

	for (i = 0; i < sizeof(attacks) / sizeof(attacks[0]); i++) {
		char want[64];
		mu_client_t *c;
		struct kid k;
		uint32_t v = attacks[i].cmd;

		kid_start_or_skip(&k, &cfg);
		if (lfd < 0) /* after a skip() could have left */
			lfd = listener();
		assert_int_equal(connect_retry(&c, k.path, true), 0);
		/* The write never gets its reply: the device is gone. */
		assert_true(mu_client_region_write(c, 0, R_CMD, &v, 4) < 0);
		mu_client_destroy(c);
		kid_wait(&k, false);
		if (!WIFSIGNALED(k.status))
			fprintf(stderr, "%s", k.log);
		assert_true(WIFSIGNALED(k.status));
		assert_int_equal(WTERMSIG(k.status), SIGSYS);
		snprintf(want, sizeof(want), "system call %s (",
			 attacks[i].call);
		assert_non_null(strstr(k.log, want));
		assert_non_null(strstr(k.log, "killing the process"));
		nothing_happened(lfd);
		unlink(k.path); /* it died without cleaning up */
	}
	close(lfd);
	unlink(evil_listen);
	unlink(evil_victim);
}

static void test_hostile_seccomp(void **state)
{
	(void)state;
	hostile(MU_SANDBOX_SECCOMP);
}

static void test_hostile_strict(void **state)
{
	(void)state;
	hostile(MU_SANDBOX_STRICT);
}

/* Log only: every attempt fails with EPERM, is logged, and the device
 * keeps serving. */
static void test_hostile_log_only(void **state)
{
	struct kid_cfg cfg = {.level = MU_SANDBOX_STRICT,
			      .flags = MU_SANDBOX_LOG_ONLY,
			      .fd = -1,
			      .close_fd = -1};
	mu_client_t *c;
	struct kid k;
	unsigned i;
	char want[64];
	int lfd;

	(void)state;
	kid_start_or_skip(&k, &cfg);
	lfd = listener();
	assert_int_equal(connect_retry(&c, k.path, true), 0);
	for (i = 0; i < sizeof(attacks) / sizeof(attacks[0]); i++)
		assert_int_equal(run(c, attacks[i].cmd), -EPERM);
	assert_int_equal(r32(c, R_RESETS), 0);
	mu_client_destroy(c);
	kid_wait(&k, true);
	assert_true(WIFEXITED(k.status));
	assert_int_equal(WEXITSTATUS(k.status), 0);
	assert_int_equal(access(k.path, F_OK), -1);
	for (i = 0; i < sizeof(attacks) / sizeof(attacks[0]); i++) {
		snprintf(want, sizeof(want), "system call %s (",
			 attacks[i].call);
		assert_non_null(strstr(k.log, want));
	}
	nothing_happened(lfd);
	close(lfd);
	unlink(evil_listen);
	unlink(evil_victim);
}

/* ---- the call's own checks (they fail before changing anything, so
 * they run in this process) ------------------------------------------- */

static void test_bad_options(void **state)
{
	static const char *const bogus[] = {"no_such_call"};
	static const char *const missing[] = {"/nonexistent/mu-sbx"};
	struct mu_sandbox_opts o = {.struct_size = sizeof(o),
				    .level = MU_SANDBOX_SECCOMP};
	int bad_fd = 1000;
	mu_dev_t *dev;
	char path[108];

	(void)state;
	snprintf(path, sizeof(path), "/tmp/mu-sbx-%d-opts.sock", getpid());
	assert_int_equal(mu_dev_sandbox(NULL, &o), -EINVAL);
	assert_int_equal(mu_dev_create(&dev, path, NULL), 0);
	/* not realized */
	assert_int_equal(mu_dev_sandbox(dev, &o), -EINVAL);
	mu_dev_destroy(dev);
	{
		struct sd *s = calloc(1, sizeof(*s));

		assert_int_equal(sd_create(s, path, -1), 0);
		dev = s->dev;
		o.level = (enum mu_sandbox_level)7;
		assert_int_equal(mu_dev_sandbox(dev, &o), -EINVAL);
		o.level = MU_SANDBOX_SECCOMP;
		o.flags = 1u << 9;
		assert_int_equal(mu_dev_sandbox(dev, &o), -EINVAL);
		o.flags = 0;
		o.struct_size = 4;
		assert_int_equal(mu_dev_sandbox(dev, &o), -EINVAL);
		o.struct_size = sizeof(o);
		o.nr_keep_fds = 1;
		assert_int_equal(mu_dev_sandbox(dev, &o), -EINVAL); /* NULL */
		o.keep_fds = &bad_fd;
		assert_int_equal(mu_dev_sandbox(dev, &o), -EBADF);
		o.nr_keep_fds = 0;
		o.remove_files = missing;
		o.nr_remove_files = 1;
		assert_int_equal(mu_dev_sandbox(dev, &o), -ENOENT);
		o.nr_remove_files = 0;
		o.syscalls = bogus;
		o.nr_syscalls = 1;
		if (mu_dev_sandbox(dev, &o) != -ENOSYS) { /* not built in */
			o.nr_syscalls = 1;
			assert_int_equal(mu_dev_sandbox(dev, &o), -EINVAL);
		}
		/* NONE does nothing */
		o.nr_syscalls = 0;
		o.level = MU_SANDBOX_NONE;
		assert_int_equal(mu_dev_sandbox(dev, &o), 0);
		assert_int_equal(mu_dev_sandbox_level(), MU_SANDBOX_NONE);
		mu_dev_destroy(dev);
		free(s);
	}
	assert_int_equal(access(path, F_OK), -1);
}

/* Twice in one process: -EALREADY, and the level is reported. */
static void test_once(void **state)
{
	struct sd s = {0};
	char path[108];
	pid_t pid;
	int st;

	(void)state;
	snprintf(path, sizeof(path), "/tmp/mu-sbx-%d-once.sock", getpid());
	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int code = 10;

		if (sd_create(&s, path, -1) == 0) {
			code = 11;
			if (mu_dev_sandbox(s.dev, NULL) == 0) {
				code = 12;
				if (mu_dev_sandbox_level() ==
					    MU_SANDBOX_SECCOMP &&
				    mu_dev_sandbox(s.dev, NULL) == -EALREADY)
					code = 0;
			}
			mu_dev_destroy(s.dev);
		}
		_exit(code);
	}
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	if (WEXITSTATUS(st) == 11)
		skip(); /* no seccomp here */
	assert_int_equal(WEXITSTATUS(st), 0);
	assert_int_equal(access(path, F_OK), -1);
}

int main(void)
{
	int r;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bad_options),
	};
	const struct CMUnitTest sandboxed[] = {
		cmocka_unit_test(test_once),
		cmocka_unit_test(test_serve_seccomp),
		cmocka_unit_test(test_serve_namespaces),
		cmocka_unit_test(test_serve_strict),
		cmocka_unit_test(test_undeclared_logged),
		cmocka_unit_test(test_strict_closes_fds),
		cmocka_unit_test(test_fd_mode),
		cmocka_unit_test(test_two_devices),
		cmocka_unit_test(test_remove_files),
		cmocka_unit_test(test_hostile_seccomp),
		cmocka_unit_test(test_hostile_strict),
		cmocka_unit_test(test_hostile_log_only),
	};

	snprintf(evil_file, sizeof(evil_file), "/tmp/mu-sbx-%d-evil", getpid());
	snprintf(evil_listen, sizeof(evil_listen), "/tmp/mu-sbx-%d-listen",
		 getpid());
	snprintf(evil_victim, sizeof(evil_victim), "/tmp/mu-sbx-%d-victim",
		 getpid());
	signal(SIGPIPE, SIG_IGN);
	/* The sandbox's file-removing helpers of kids that die by a signal
	 * are reparented to us, not to an init that may not reap them. */
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	if (RUNNING_ON_VALGRIND) {
		/* valgrind (3.19) does not implement seccomp(2), so the
		 * library reports -ENOSYS and nothing can be sandboxed: only
		 * the option checks, which need no filter, run. The rest
		 * runs natively and under ASan. */
		fprintf(stderr, "valgrind: skipping the sandboxed devices "
				"(valgrind has no seccomp(2))\n");
		return cmocka_run_group_tests(tests, NULL, NULL) ? 1 : 0;
	}
	r = cmocka_run_group_tests(tests, NULL, NULL) |
	    cmocka_run_group_tests(sandboxed, NULL, NULL);
	while (waitpid(-1, NULL, 0) > 0) {
	}
	return r;
}
