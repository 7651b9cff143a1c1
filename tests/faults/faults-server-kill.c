/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The server killed at every message boundary of a libmuser-client
 * session.
 *
 * The server is the in-test libmuser device (faults-common.c) in a forked
 * child that SIGKILLs itself:
 *
 *   msgs  after it has handled k requests (k = 0: as soon as a client
 *         knocks, before accepting it)
 *   half  in the middle of its j-th sendmsg (replies and DMA requests):
 *         half the bytes go out, then it dies (mu_sys_sendmsg is --wrap'ed)
 *   whole right before its j-th sendmsg
 *   dma   in the region callback, after it did message DMA through the
 *         client, before the reply
 *
 * each with and without the twin socket. The client runs the session in
 * this process until a call fails; that call must fail with ECONNRESET,
 * ENOTCONN or EPIPE (never hang: a timeout is a failure), every later
 * call with ENOTCONN, and after mu_client_destroy() this process must
 * have its baseline fd count and no region mapping left.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "faults-common.h"
#include "muser/client.h"

/* ---- sendmsg hook (only armed in the server child) ---------------------- */

static int send_budget = -1; /* sendmsgs left before dying; -1: off */
static bool send_half;

ssize_t __real_mu_sys_sendmsg(int fd, const struct msghdr *m, int flags);
ssize_t __wrap_mu_sys_sendmsg(int fd, const struct msghdr *m, int flags);

ssize_t __wrap_mu_sys_sendmsg(int fd, const struct msghdr *m, int flags)
{
	if (send_budget < 0)
		return __real_mu_sys_sendmsg(fd, m, flags);
	if (send_budget == 0) {
		if (send_half) {
			struct msghdr h = *m;
			struct iovec v[8];
			size_t total = 0, want;
			int i, n = 0;

			for (i = 0; i < (int)m->msg_iovlen; i++)
				total += m->msg_iov[i].iov_len;
			want = total / 2 ? total / 2 : 1;
			for (i = 0; i < (int)m->msg_iovlen && want && n < 8;
			     i++) {
				size_t l = m->msg_iov[i].iov_len;

				if (l > want)
					l = want;
				v[n].iov_base = m->msg_iov[i].iov_base;
				v[n++].iov_len = l;
				want -= l;
			}
			h.msg_iov = v;
			h.msg_iovlen = (size_t)n;
			__real_mu_sys_sendmsg(fd, &h, flags);
		}
		raise(SIGKILL);
	}
	send_budget--;
	return __real_mu_sys_sendmsg(fd, m, flags);
}

/* ---- the server child ------------------------------------------------------- */

enum mode { M_MSGS, M_HALF, M_WHOLE, M_DMA, M_NUM };
static const char *const mode_name[] = {"msgs", "half", "whole", "dma"};

static void server_child(const char *path, int ready, enum mode m, int k)
{
	struct pollfd p = {.events = POLLIN};
	struct fdev f;
	int handled = 0, n;

	if (fdev_create(&f, path, -1, NULL) < 0)
		_exit(1);
	f.die_in_dma = m == M_DMA;
	if (m == M_HALF || m == M_WHOLE) {
		send_budget = k;
		send_half = m == M_HALF;
	}
	if (write(ready, "r", 1) != 1)
		_exit(1);
	close(ready);
	p.fd = mu_dev_get_poll_fd(f.dev);
	for (;;) {
		if (poll(&p, 1, -1) < 0 && errno != EINTR)
			_exit(1);
		if (m == M_MSGS && k == 0)
			raise(SIGKILL); /* a client knocks */
		n = mu_dev_process(f.dev);
		if (n < 0)
			_exit(1);
		handled += n;
		if (m == M_MSGS && handled >= k)
			raise(SIGKILL);
	}
}

/* ---- the client session ---------------------------------------------------- */

#define STATE_V 0x600dcafeu
#define N_STEPS 30

struct sess {
	mu_client_t *c;
	int efd[5];
	int memfd;
	uint8_t *buf; /* fd-less DMA window */
	void *map;
};

static void quiet_log(void *o, int level, const char *msg)
{
	(void)o;
	if (getenv("MU_TEST_VERBOSE"))
		fprintf(stderr, "client[%d] %s\n", level, msg);
}

static int w32(mu_client_t *c, uint64_t off, uint32_t v)
{
	return mu_client_region_write(c, 0, off, &v, 4);
}

/* Step i of the session; 0 on success. */
static int step(struct sess *s, int i, const char *path, bool twin)
{
	const struct mu_client_region *reg;
	struct mu_device_info di;
	struct mu_irq_info ii;
	uint32_t v = 0;
	int r;

	switch (i) {
	case 0: {
		struct mu_client_opts o = {.struct_size = sizeof(o),
					   .timeout_ms = 5000,
					   .no_twin_socket = !twin,
					   .log = quiet_log,
					   .log_level = 7};

		return mu_client_connect(&s->c, path, &o);
	}
	case 1:
		return mu_client_device_info(s->c, &di);
	case 2:
		return mu_client_region_info(s->c, 0, &reg);
	case 3:
		return mu_client_region_info(s->c, 2, &reg);
	case 4:
		return mu_client_region_info(s->c, 4, &reg);
	case 5:
		return mu_client_region_info(s->c, 7, &reg);
	case 6:
		return mu_client_irq_info(s->c, MU_PCI_MSIX_IRQ_INDEX, &ii);
	case 7:
		return mu_client_irq_set_eventfds(s->c, MU_PCI_MSIX_IRQ_INDEX,
						  0, 4, s->efd);
	case 8:
		return mu_client_irq_set_eventfds(s->c, MU_PCI_INTX_IRQ_INDEX,
						  0, 1, s->efd + 4);
	case 9:
		return mu_client_dma_map_fd(s->c, 0x10000, 0x10000, s->memfd,
					    0, MU_DMA_MAP_FLAG_READ |
						       MU_DMA_MAP_FLAG_WRITE);
	case 10:
		return mu_client_dma_map_buffer(
			s->c, 0x100000, s->buf, 0x1000,
			MU_DMA_MAP_FLAG_READ | MU_DMA_MAP_FLAG_WRITE);
	case 11:
		return w32(s->c, FD_REG_STATE, STATE_V);
	case 12:
		r = mu_client_region_read(s->c, 0, FD_REG_STATE, &v, 4);
		return r ? r : (v == STATE_V ? 0 : -EIO);
	case 13:
		v = 1;
		r = mu_client_region_write_posted(s->c, 0, FD_REG_STATE + 4,
						  &v, 4);
		return r ? r
			 : mu_client_region_write_posted(
				   s->c, 0, FD_REG_STATE + 8, &v, 4);
	case 14:
		return mu_client_flush(s->c);
	case 15:
		return mu_client_region_mmap(s->c, 2, 0, FD_BAR2_SIZE,
					     PROT_READ | PROT_WRITE, &s->map);
	case 16:
		return w32(s->c, FD_REG_IOVA, 0x100000);
	case 17:
		return w32(s->c, FD_REG_LEN, 64);
	case 18:
		return w32(s->c, FD_REG_GO_RD, 1);
	case 19:
		return w32(s->c, FD_REG_GO_WR, 1);
	case 20:
		r = mu_client_region_read(s->c, 0, FD_REG_RET, &v, 4);
		return r ? r : (v == 0 ? 0 : -EIO);
	case 21:
		return mu_client_irq_mask(s->c, MU_PCI_MSIX_IRQ_INDEX, 0, 1,
					  true);
	case 22:
		return mu_client_reset(s->c);
	case 23:
		return mu_client_dma_unmap(s->c, 0x10000, 0x10000);
	case 24:
		return mu_client_dma_unmap_all(s->c);
	case 25:
		return mu_client_irq_disable(s->c, MU_PCI_MSIX_IRQ_INDEX);
	case 26:
		return mu_client_region_munmap(s->c, s->map, FD_BAR2_SIZE);
	case 27:
		return mu_client_device_info(s->c, &di);
	case 28:
		v = 7;
		return mu_client_region_write(s->c, 2, 0, &v, 4);
	default:
		return mu_client_device_info(s->c, &di);
	}
}

static int region_mappings(void)
{
	char line[512];
	FILE *f = fopen("/proc/self/maps", "r");
	int n = 0;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (strstr(line, "muser-region"))
			n++;
	fclose(f);
	return n;
}

static bool clear_error(int e)
{
	return e == -ECONNRESET || e == -ENOTCONN || e == -EPIPE;
}

/* One run. Returns 1 when the session finished (the server outlived it),
 * 0 when it failed as it should, -1 on a test failure. */
static int run_one(const char *path, enum mode m, int k, bool twin)
{
	char what[64];
	struct sess s = {0};
	int base = fl_fd_count(0), pp[2], i, e = 0, fail_at = -1, res = 0;
	int fds, maps;
	uint8_t dmabuf[0x1000];
	uint32_t v;
	pid_t pid;
	char c;

	snprintf(what, sizeof(what), "%s k=%d %s", mode_name[m], k,
		 twin ? "twin" : "no-twin");
	if (pipe2(pp, O_CLOEXEC) < 0)
		return -1;
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		close(pp[0]);
		server_child(path, pp[1], m, k);
		_exit(1);
	}
	close(pp[1]);
	if (pid < 0 || read(pp[0], &c, 1) != 1) {
		close(pp[0]);
		printf("not ok - %s: server did not start\n", what);
		return -1;
	}
	close(pp[0]);

	for (i = 0; i < 5; i++)
		s.efd[i] = eventfd(0, EFD_CLOEXEC);
	s.memfd = memfd_create("faults-dma", MFD_CLOEXEC);
	if (ftruncate(s.memfd, 0x10000) < 0)
		return -1;
	s.buf = dmabuf;
	memset(dmabuf, 0x5a, sizeof(dmabuf));

	for (i = 0; i < N_STEPS; i++) {
		e = step(&s, i, path, twin);
		if (e) {
			fail_at = i;
			break;
		}
	}
	if (fail_at < 0) {
		res = 1; /* the server outlived the session */
	} else if (!clear_error(e)) {
		printf("not ok - %s: step %d failed with %s (%d), expected "
		       "ECONNRESET/ENOTCONN/EPIPE\n",
		       what, fail_at, strerror(-e), e);
		res = -1;
	} else if (s.c) {
		/* Later calls: -ENOTCONN, at once. (Device info is cached
		 * by the library, so IRQ info stands in for it.) */
		struct mu_irq_info ii;
		int e1 = mu_client_irq_info(s.c, MU_PCI_INTX_IRQ_INDEX, &ii);
		int e2 = mu_client_region_read(s.c, 0, 0, &v, 4);
		int e3 = mu_client_dma_map_buffer(s.c, 0x900000, dmabuf,
						  0x1000, 1);
		int e4 = mu_client_reset(s.c);

		if (e1 != -ENOTCONN || e2 != -ENOTCONN || e3 != -ENOTCONN ||
		    e4 != -ENOTCONN || mu_client_is_connected(s.c)) {
			printf("not ok - %s: after the failure (step %d, %s): "
			       "irq_info %d read %d map %d reset %d connected "
			       "%d\n",
			       what, fail_at, strerror(-e), e1, e2, e3, e4,
			       mu_client_is_connected(s.c));
			res = -1;
		}
	}
	mu_client_destroy(s.c);
	kill(pid, SIGKILL);
	fl_wait_child(pid, 5000);
	for (i = 0; i < 5; i++)
		close(s.efd[i]);
	close(s.memfd);
	fds = fl_fd_count(0);
	maps = region_mappings();
	if (fds != base || maps != 0) {
		printf("not ok - %s: after destroy fds %d (baseline %d), "
		       "region mappings %d\n",
		       what, fds, base, maps);
		res = -1;
	}
	if (getenv("MU_TEST_VERBOSE"))
		printf("# %s: step %d: %s\n", what, fail_at,
		       fail_at < 0 ? "completed" : strerror(-e));
	return res;
}

int main(void)
{
	char path[108];
	int failed = 0, runs = 0, k, r, tw;
	enum mode m;

	signal(SIGPIPE, SIG_IGN);
	snprintf(path, sizeof(path), "/tmp/mu-faults-sk-%d.sock", getpid());
	for (tw = 1; tw >= 0; tw--) {
		for (m = M_MSGS; m < M_NUM; m++) {
			for (k = 0; k < 400; k++) {
				runs++;
				r = run_one(path, m, k, tw);
				if (r < 0)
					failed++;
				/* dma: one run kills at the first DMA */
				if (r == 1 || m == M_DMA)
					break;
			}
			if (k == 400) {
				printf("not ok - %s: the session never "
				       "completed\n",
				       mode_name[m]);
				failed++;
			}
		}
	}
	unlink(path);
	printf("%s - %d server deaths, %d failed\n", failed ? "not ok" : "ok",
	       runs, failed);
	return failed ? 1 : 0;
}
