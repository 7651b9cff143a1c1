/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * test-scale: 1000 libmuser devices with 1000 connected libmuser-client
 * clients in one device process (issue 3, "Footprint").
 *
 * The device process (this one) creates MU_SCALE_DEVICES (default 1000)
 * devices, each listening on its own socket path in a temp dir, and serves
 * them all from one thread: one epoll set holding mu_dev_get_poll_fd() of
 * every device, mu_dev_process() on the ready ones. A client process,
 * forked before any device exists (so it inherits none of their fds and
 * its heap is not counted), connects to every device with libmuser-client,
 * negotiates (twin socket included), reads a register of each and keeps
 * the connection open. Then the device process measures its heap with
 * mallinfo2() (in-use arena bytes + malloc's own mmapped chunks) against
 * a baseline taken before the first device was created, and asserts that
 * an idle device with an attached client costs < 64 KiB of heap. Region
 * memory: the only MEM region (BAR2, 8 KiB) is a memfd mapping, not heap,
 * so nothing has to be subtracted; the figure is printed anyway.
 * Then every client reads again (all devices still served), the clients
 * disconnect, the device process sees every detach, destroys all devices
 * and checks that fds and heap are back to their baseline.
 *
 * Timings (1000 attaches, one round of 1000 reads) are printed, never
 * asserted. RLIMIT_NOFILE is raised (soft to hard, hard too if allowed);
 * when the hard limit is too low the device count is scaled down with a
 * message. Exit 0 pass, 1 fail, 77 skip.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <malloc.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "muser/client.h"
#include "muser/device.h"
#include "testutil.h"

#define DEFAULT_DEVICES 1000
#define HEAP_LIMIT (64 * 1024) /* bytes per idle attached device */
#define BAR0_SIZE 0x1000u
#define BAR2_SIZE 0x2000u /* MEM: MSI-X table at 0, PBA at 0x1000 */
#define MSIX_VECS 4u
#define REG_ID 0x0u    /* BAR0: reads back MAGIC | device index */
#define REG_COUNT 0x4u /* BAR0: number of REG_ID reads so far */
#define MAGIC 0xc0de0000u
/* fds the device process needs per device (listen, epoll, wake, BAR2
 * memfd, connection, twin) and the client process per client
 * (connection, twin), plus slack. */
#define DEV_FDS 6
#define CLI_FDS 3
#define FD_SLACK 64
#define DEADLINE_S 50 /* the whole run; meson's timeout is 60 */
/* glibc's tcache keeps freed chunks counted as in use by mallinfo2(); it
 * is switched off (by re-executing with this tunable) so that the heap
 * returns exactly to its baseline after destroy. */
#define NO_TCACHE "glibc.malloc.tcache_count=0"
#define LEAK_SLACK 1024 /* bytes, in all: libc's own lazy allocations */

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif
#ifndef UNDER_ASAN
#define UNDER_ASAN 0
#endif

/* child -> parent reports; one write() each (< PIPE_BUF: atomic) */
struct report {
	char phase; /* 'A' attached, 'R' read round done, 'D' disconnected */
	int err;    /* 0, or -errno of the first failure */
	int failed_index;
	double secs;
	size_t heap; /* client process heap in use */
	long rss_kb;
	int nfds;
};

struct devctx {
	unsigned index;
	uint32_t reads;
	mu_dev_t *dev;
};

static unsigned ndev = DEFAULT_DEVICES;
static char dir[64];
static struct timespec t_start;

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static double elapsed(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)(ts.tv_sec - t_start.tv_sec) +
	       (ts.tv_nsec - t_start.tv_nsec) / 1e9;
}

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void fail(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "test-scale: FAIL: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static void sock_path(char *buf, size_t len, unsigned i)
{
	snprintf(buf, len, "%s/d%04u.sock", dir, i);
}

static long rss_kb(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[128];
	long kb = -1;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

/* In-use heap: arena bytes plus chunks malloc served with mmap (a large
 * per-device buffer would land there and be missed by uordblks alone). */
static size_t heap_used(void)
{
	struct mallinfo2 m = mallinfo2();

	return m.uordblks + m.hblkhd;
}

static int xread(int fd, void *buf, size_t len)
{
	ssize_t n;

	do
		n = read(fd, buf, len);
	while (n < 0 && errno == EINTR);
	return n == (ssize_t)len ? 0 : -1;
}

static void xwrite(int fd, const void *buf, size_t len)
{
	ssize_t n;

	do
		n = write(fd, buf, len);
	while (n < 0 && errno == EINTR);
	if (n != (ssize_t)len)
		fail("pipe write: %s", strerror(errno));
}

/* Raise RLIMIT_NOFILE for `ndev` devices (or clients); scale down when the
 * hard limit cannot be raised far enough. Returns the usable count. */
static unsigned raise_nofile(unsigned n, unsigned per, const char *who)
{
	struct rlimit rl;
	rlim_t need = (rlim_t)n * per + FD_SLACK;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		fail("getrlimit: %s", strerror(errno));
	if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < need) {
		struct rlimit up = {need, need};

		if (setrlimit(RLIMIT_NOFILE, &up) == 0)
			return n; /* privileged: hard limit raised */
	}
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
		fail("setrlimit(soft=%llu): %s",
		     (unsigned long long)rl.rlim_cur, strerror(errno));
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need) {
		unsigned m =
			rl.rlim_cur > FD_SLACK
				? (unsigned)((rl.rlim_cur - FD_SLACK) / per)
				: 0;

		fprintf(stderr,
			"test-scale: %s: RLIMIT_NOFILE hard limit %llu is too "
			"low for %u devices (%llu fds needed, %u per device); "
			"scaling down to %u devices. Raise the hard limit "
			"(ulimit -Hn, limits.conf) to test the full count.\n",
			who, (unsigned long long)rl.rlim_cur, n,
			(unsigned long long)need, per, m);
		return m;
	}
	return n;
}

/* ---- client process ------------------------------------------------------ */

static void report(int fd, char phase, int err, int idx, double secs)
{
	struct report r;

	memset(&r, 0, sizeof(r)); /* padding too: it goes through a pipe */
	r.phase = phase;
	r.err = err;
	r.failed_index = idx;
	r.secs = secs;
	r.heap = heap_used();
	r.rss_kb = rss_kb();
	r.nfds = count_open_fds();
	xwrite(fd, &r, sizeof(r));
}

static int read_id(mu_client_t *c, unsigned i)
{
	uint32_t v = 0;
	int r = mu_client_region_read(c, 0, REG_ID, &v, sizeof(v));

	if (r < 0)
		return r;
	return v == (MAGIC | i) ? 0 : -EIO;
}

static void client_main(int cmd_fd, int rep_fd)
{
	struct mu_client_opts o = {.struct_size = sizeof(o),
				   .timeout_ms = 10000};
	mu_client_t **cl = calloc(ndev, sizeof(*cl));
	char path[108], cmd;
	unsigned i;
	double t;
	int r = 0;

	if (!cl)
		_exit(2);
	while (xread(cmd_fd, &cmd, 1) == 0) {
		switch (cmd) {
		case 'C': /* connect, negotiate, read one register each */
			t = now();
			for (i = 0; i < ndev; i++) {
				sock_path(path, sizeof(path), i);
				r = mu_client_connect(&cl[i], path, &o);
				if (r == 0)
					r = read_id(cl[i], i);
				if (r < 0)
					break;
			}
			report(rep_fd, 'A', r, (int)i, now() - t);
			break;
		case 'R': /* one more round of reads over idle connections */
			t = now();
			for (i = 0; i < ndev; i++)
				if ((r = read_id(cl[i], i)) < 0)
					break;
			report(rep_fd, 'R', r, (int)i, now() - t);
			break;
		case 'D':
			t = now();
			for (i = 0; i < ndev; i++) {
				mu_client_destroy(cl[i]);
				cl[i] = NULL;
			}
			report(rep_fd, 'D', 0, 0, now() - t);
			break;
		case 'Q':
			free(cl);
			_exit(0);
		}
	}
	_exit(3); /* parent went away */
}

/* ---- device process -------------------------------------------------------
 */

static ssize_t bar0_access(void *opaque, unsigned region, uint64_t off,
			   void *buf, size_t count, bool is_write)
{
	struct devctx *d = opaque;
	uint32_t regs[2] = {MAGIC | d->index, d->reads};

	if (is_write)
		return (ssize_t)count; /* ignored */
	if (off == REG_ID && count == 4)
		d->reads++;
	memset(buf, 0, count);
	if (off < sizeof(regs))
		memcpy(buf, (uint8_t *)regs + off,
		       count < sizeof(regs) - off ? count : sizeof(regs) - off);
	return (ssize_t)count;
}

static void quiet(void *o, int level, const char *msg)
{
	struct devctx *d = o;

	if (level <= MU_LOG_WARN || getenv("MU_TEST_VERBOSE"))
		fprintf(stderr, "dev %u: [%d] %s\n", d->index, level, msg);
}

/* A small but realistic PCIe function: callback BAR0, memory-backed BAR2
 * with the MSI-X table and PBA, PM, MSI-X, PCIe and DSN capabilities. */
static mu_dev_t *make_dev(struct devctx *d)
{
	struct mu_pci_id id = {0x4e58, 0x5343, 0x4e58, 0x0001, 0xff0000, 1};
	struct mu_region_desc rd = {.struct_size = sizeof(rd)};
	char path[108];
	mu_dev_t *dev;
	int r;

	sock_path(path, sizeof(path), d->index);
	if ((r = mu_dev_create(&dev, path, d)) < 0)
		fail("mu_dev_create #%u: %s", d->index, strerror(-r));
	mu_dev_set_log(dev, quiet, d, MU_LOG_WARN);
#define CHECK(x)                                                               \
	do {                                                                   \
		if ((r = (x)) < 0)                                             \
			fail("device #%u: %s: %s", d->index, #x,               \
			     strerror(-r));                                    \
	} while (0)
	CHECK(mu_pci_setup(dev, &id, MU_PCI_EXPRESS));
	CHECK(mu_pci_set_intx_pin(dev, 1));
	rd.size = BAR0_SIZE;
	rd.flags = MU_REGION_RW;
	rd.access = bar0_access;
	CHECK(mu_dev_setup_region(dev, 0, &rd));
	rd.size = BAR2_SIZE;
	rd.flags = MU_REGION_RW | MU_REGION_MEM;
	rd.access = NULL;
	CHECK(mu_dev_setup_region(dev, 2, &rd));
	CHECK(mu_pci_add_pm_cap(dev));
	CHECK(mu_pci_add_msix_cap(dev, MSIX_VECS, 2, 0, 2, 0x1000));
	CHECK(mu_pci_add_express_cap(dev, MU_PCIE_ENDPOINT));
	CHECK(mu_pci_add_dsn_cap(dev, 0x5343000000000000ull | d->index));
	CHECK(mu_dev_setup_irq(dev, MU_PCI_INTX_IRQ_INDEX, 1));
	CHECK(mu_dev_realize(dev));
#undef CHECK
	return dev;
}

/* Serve every ready device until a report arrives from the client. */
static void serve_until_report(int ep, struct devctx *ctx, int rep_fd,
			       struct report *out, struct epoll_event *evs,
			       unsigned long *nproc)
{
	for (;;) {
		int n, i, r;

		if (elapsed() > DEADLINE_S)
			fail("timed out after %d s waiting for the client",
			     DEADLINE_S);
		n = epoll_wait(ep, evs, (int)ndev + 1, 1000);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			fail("epoll_wait: %s", strerror(errno));
		for (i = 0; i < n; i++) {
			uint64_t k = evs[i].data.u64;

			if (k == UINT64_MAX) {
				if (xread(rep_fd, out, sizeof(*out)) < 0)
					fail("client process died");
				/* finish this batch first: the client may
				 * already be waiting on nothing, but fairness
				 * costs nothing here */
				continue;
			}
			r = mu_dev_process(ctx[k].dev);
			(*nproc)++;
			if (r < 0)
				fail("mu_dev_process(#%u): %s", ctx[k].index,
				     strerror(-r));
		}
		for (i = 0; i < n; i++)
			if (evs[i].data.u64 == UINT64_MAX)
				return;
	}
}

static unsigned count_attached(struct devctx *ctx)
{
	unsigned i, n = 0;

	for (i = 0; i < ndev; i++)
		n += mu_dev_is_attached(ctx[i].dev);
	return n;
}

/* Re-execute once with the tcache off (see NO_TCACHE). */
static void reexec_without_tcache(char **argv)
{
	const char *t = getenv("GLIBC_TUNABLES");
	const char *pre = getenv("LD_PRELOAD");
	char buf[512];

	/* not under ASan or valgrind (its malloc has no tcache anyway) */
	if (UNDER_ASAN || (pre && strstr(pre, "vgpreload")) ||
	    getenv("MU_SCALE_REEXEC") || (t && strstr(t, NO_TCACHE)))
		return;
	if (t && *t)
		snprintf(buf, sizeof(buf), "%s:%s", t, NO_TCACHE);
	else
		snprintf(buf, sizeof(buf), "%s", NO_TCACHE);
	setenv("GLIBC_TUNABLES", buf, 1);
	setenv("MU_SCALE_REEXEC", "1", 1);
	execv("/proc/self/exe", argv);
	/* not fatal: the leak check then allows for the tcache */
}

int main(int argc, char **argv)
{
	int cmd[2], rep[2], ep, fds0, fds_created, fds_idle, fds_end, st;
	unsigned i, m;
	size_t heap0, heap_created, heap_idle, heap_end;
	long rss0, rss_idle;
	struct devctx *ctx;
	struct epoll_event ev, *evs;
	struct report rpt;
	unsigned long nproc = 0;
	double t, t_create, t_attach_srv, per_dev;
	const char *env = getenv("MU_SCALE_DEVICES");
	pid_t pid;
	bool tcache_off, heap_seen;

	(void)argc;
	reexec_without_tcache(argv);
	clock_gettime(CLOCK_MONOTONIC, &t_start);
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (env && atoi(env) > 0)
		ndev = (unsigned)atoi(env);
	printf("test-scale: %u devices, one serving thread, clients in a "
	       "forked process\n",
	       ndev);

	/* Both processes need fds: size for the larger per-device cost. */
	m = raise_nofile(ndev, DEV_FDS + 1, "device process");
	if (m < ndev)
		ndev = m;
	if (ndev < 2) {
		fprintf(stderr, "test-scale: SKIP: too few fds allowed\n");
		return 77;
	}

	snprintf(dir, sizeof(dir), "/tmp/mu-scale-XXXXXX");
	if (!mkdtemp(dir))
		fail("mkdtemp: %s", strerror(errno));
	if (pipe2(cmd, O_CLOEXEC) < 0 || pipe2(rep, O_CLOEXEC) < 0)
		fail("pipe: %s", strerror(errno));
	signal(SIGPIPE, SIG_IGN);

	/* The client process: forked before any device exists. */
	pid = fork();
	if (pid < 0)
		fail("fork: %s", strerror(errno));
	if (pid == 0) {
		close(cmd[1]);
		close(rep[0]);
		client_main(cmd[0], rep[1]);
	}
	close(cmd[0]);
	close(rep[1]);

	/* Test bookkeeping is allocated before the baseline. */
	ctx = calloc(ndev, sizeof(*ctx));
	evs = calloc(ndev + 1, sizeof(*evs));
	if (!ctx || !evs)
		fail("out of memory");
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep < 0)
		fail("epoll_create1: %s", strerror(errno));
	ev = (struct epoll_event){.events = EPOLLIN, .data.u64 = UINT64_MAX};
	if (epoll_ctl(ep, EPOLL_CTL_ADD, rep[0], &ev) < 0)
		fail("epoll_ctl: %s", strerror(errno));
	/* Warm up lazily allocated libc state (stdio, strerror, opendir). */
	printf("test-scale: baseline: %d fds\n", count_open_fds());
	rss0 = rss_kb();
	fds0 = count_open_fds();
	heap0 = heap_used();
	heap_seen = !UNDER_ASAN && heap0 > 0;

	/* ---- create ---- */
	t = now();
	for (i = 0; i < ndev; i++) {
		ctx[i].index = i;
		ctx[i].dev = make_dev(&ctx[i]);
		ev = (struct epoll_event){.events = EPOLLIN, .data.u64 = i};
		if (epoll_ctl(ep, EPOLL_CTL_ADD, mu_dev_get_poll_fd(ctx[i].dev),
			      &ev) < 0)
			fail("epoll_ctl(device #%u): %s", i, strerror(errno));
	}
	t_create = now() - t;
	fds_created = count_open_fds();
	heap_created = heap_used();

	/* ---- attach: connect, negotiate, one read each ---- */
	t = now();
	xwrite(cmd[1], "C", 1);
	serve_until_report(ep, ctx, rep[0], &rpt, evs, &nproc);
	t_attach_srv = now() - t;
	if (rpt.phase != 'A' || rpt.err < 0)
		fail("client %d of %u: connect/read failed: %s",
		     rpt.failed_index, ndev, strerror(-rpt.err));
	if ((m = count_attached(ctx)) != ndev)
		fail("%u of %u devices attached", m, ndev);
	for (i = 0; i < ndev; i++)
		if (ctx[i].reads != 1)
			fail("device #%u saw %u reads, expected 1", i,
			     ctx[i].reads);

	/* ---- all attached and idle: measure ---- */
	heap_idle = heap_used();
	fds_idle = count_open_fds();
	rss_idle = rss_kb();
	per_dev = ((double)heap_idle - (double)heap0) / ndev;
	printf("test-scale: created %u devices in %.3f s (%.1f us each)\n",
	       ndev, t_create, t_create * 1e6 / ndev);
	printf("test-scale: %u attaches (connect + negotiate + 1 read) in "
	       "%.3f s (%.1f us each; device side %.3f s)\n",
	       ndev, rpt.secs, rpt.secs * 1e6 / ndev, t_attach_srv);
	printf("test-scale: heap per device: %.0f bytes created, %.0f bytes "
	       "attached+idle (limit %d); region memory: %u bytes/device "
	       "memfd-backed, not heap (subtracted: 0)\n",
	       ((double)heap_created - (double)heap0) / ndev, per_dev,
	       HEAP_LIMIT, BAR2_SIZE);
	printf("test-scale: fds per device: %.2f created, %.2f attached "
	       "(+1 outer epoll registration, no fd); total %d -> %d\n",
	       (double)(fds_created - fds0) / ndev,
	       (double)(fds_idle - fds0) / ndev, fds0, fds_idle);
	printf("test-scale: device process RSS: %ld KiB -> %ld KiB (%.1f KiB "
	       "per device)\n",
	       rss0, rss_idle, (double)(rss_idle - rss0) / ndev);
	printf("test-scale: client process: %d fds (%.2f per client), heap "
	       "%zu bytes (%.0f per client), RSS %ld KiB\n",
	       rpt.nfds, (double)rpt.nfds / ndev, rpt.heap,
	       (double)rpt.heap / ndev, rpt.rss_kb);
	if (!heap_seen)
		printf("test-scale: mallinfo2() does not see this heap (ASan "
		       "or valgrind); heap limits not checked\n");
	else if (per_dev >= HEAP_LIMIT)
		fail("an idle attached device costs %.0f bytes of heap "
		     "(limit %d)",
		     per_dev, HEAP_LIMIT);

	/* ---- every client reads again: all still served ---- */
	xwrite(cmd[1], "R", 1);
	serve_until_report(ep, ctx, rep[0], &rpt, evs, &nproc);
	if (rpt.phase != 'R' || rpt.err < 0)
		fail("read round: client %d: %s", rpt.failed_index,
		     strerror(-rpt.err));
	printf("test-scale: one round of %u reads over idle connections in "
	       "%.3f s (%.1f us each)\n",
	       ndev, rpt.secs, rpt.secs * 1e6 / ndev);
	for (i = 0; i < ndev; i++)
		if (ctx[i].reads != 2)
			fail("device #%u saw %u reads, expected 2", i,
			     ctx[i].reads);
	if ((m = count_attached(ctx)) != ndev)
		fail("after reads: %u of %u devices attached", m, ndev);

	/* ---- disconnect: every device sees its client go ---- */
	xwrite(cmd[1], "D", 1);
	serve_until_report(ep, ctx, rep[0], &rpt, evs, &nproc);
	if (rpt.phase != 'D')
		fail("unexpected report '%c'", rpt.phase);
	while ((m = count_attached(ctx)) > 0) {
		int n = epoll_wait(ep, evs, (int)ndev + 1, 100);

		if (elapsed() > DEADLINE_S)
			fail("%u devices still attached after disconnect", m);
		for (i = 0; i < (unsigned)(n > 0 ? n : 0); i++) {
			int r;

			if (evs[i].data.u64 == UINT64_MAX)
				continue;
			r = mu_dev_process(ctx[evs[i].data.u64].dev);
			nproc++;
			if (r < 0)
				fail("mu_dev_process after disconnect: %s",
				     strerror(-r));
		}
	}
	xwrite(cmd[1], "Q", 1);
	if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) ||
	    WEXITSTATUS(st) != 0)
		fail("client process exited badly (status 0x%x)", st);
	printf("test-scale: %u clients disconnected, all devices detached "
	       "(%lu mu_dev_process calls in all)\n",
	       ndev, nproc);

	/* ---- destroy: back to baseline ---- */
	for (i = 0; i < ndev; i++)
		mu_dev_destroy(ctx[i].dev); /* also leaves the epoll set */
	fds_end = count_open_fds();
	heap_end = heap_used();
	printf("test-scale: destroyed: fds %d (baseline %d), heap %+lld "
	       "bytes vs baseline\n",
	       fds_end, fds0, (long long)heap_end - (long long)heap0);
	if (fds_end != fds0)
		fail("fd count %d after destroy, baseline %d", fds_end, fds0);
	tcache_off = getenv("GLIBC_TUNABLES") &&
		     strstr(getenv("GLIBC_TUNABLES"), NO_TCACHE);
	/* with the tcache on, up to 64 size classes x 7 chunks stay counted */
	if (heap_seen &&
	    heap_end > heap0 + (tcache_off ? LEAK_SLACK : 256 * 1024))
		fail("heap %zu bytes after destroy, baseline %zu (leak?)",
		     heap_end, heap0);
	close(ep);
	rmdir(dir);
	free(ctx);
	free(evs);
	printf("test-scale: PASS in %.2f s\n", elapsed());
	return 0;
}
