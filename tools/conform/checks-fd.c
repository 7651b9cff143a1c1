/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * checks-fd.c - fd hygiene: fds sent with commands that take none, more
 * fds than a command or max_msg_fds allows, and whether the server keeps
 * them. Where the checker may read /proc/PID/fd of the server (its pid
 * from SO_PEERCRED), the server's fd count must come back to where it was.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "checks.h"

#define BAD_REGION 0xfffffff0u

static int make_fds(int *fds, unsigned n)
{
	unsigned i;

	for (i = 0; i < n; i++) {
		fds[i] = eventfd(0, EFD_CLOEXEC);
		if (fds[i] < 0) {
			while (i)
				close(fds[--i]);
			return -errno;
		}
	}
	return 0;
}

static void close_fds(int *fds, unsigned n)
{
	while (n)
		close(fds[--n]);
}

/* The server's fd count once it settles at or below base (a server may
 * close fds just after replying); the last count seen otherwise. */
static int settle(struct cf_ctx *x, int base)
{
	long deadline = cf_now_ms() + 1000;
	int n;

	for (;;) {
		n = cf_server_fd_count(x);
		if (n < 0 || n <= base || cf_now_ms() > deadline)
			return n;
		usleep(20 * 1000);
	}
}

/* Send cmd with nfds eventfds: must be refused (or accepted if lenient)
 * and the fds must not stay in the server. */
static int with_fds(struct cf_ctx *x, uint16_t cmd, const void *p, size_t len,
		    unsigned nfds, bool must_refuse, const char *what)
{
	int fds[CF_MAX_FDS], base = cf_server_fd_count(x), after, e;

	if (make_fds(fds, nfds) < 0)
		return cf_set(x, CF_SKIP, "eventfd: %s", strerror(errno));
	e = cf_refused(x, cmd, p, len, fds, nfds, NULL, what);
	close_fds(fds, nfds);
	if (e == CF_EBROKEN)
		return CF_FAIL;
	if (e == 0 && must_refuse)
		return cf_set(x, CF_FAIL, "%s: accepted", what);
	after = base >= 0 ? settle(x, base) : -1;
	if (base >= 0 && after > base)
		return cf_set(x, CF_FAIL,
			      "%s: the server kept %d fds (%d open before, %d "
			      "after)",
			      what, after - base, base, after);
	if (cf_sync(x, what) < 0)
		return CF_FAIL;
	if (e == 0)
		return cf_set(x, CF_WARN,
			      "%s: accepted, the fds silently dropped", what);
	if (base < 0)
		return cf_set(x, CF_PASS,
			      "%s: refused (server fd count not "
			      "visible)",
			      what);
	return cf_set(x, CF_PASS,
		      "%s: refused, server fd count unchanged "
		      "(%d)",
		      what, after);
}

static int fd_unexpected(struct cf_ctx *x)
{
	struct mu_device_info in = {.argsz = sizeof(in)};

	return with_fds(x, MU_CMD_DEVICE_GET_INFO, &in, sizeof(in), 1, false,
			"GET_INFO with an eventfd");
}

static int fd_dma_two(struct cf_ctx *x)
{
	struct mu_dma_map d = {sizeof(d), MU_DMA_MAP_FLAG_READ, 0,
			       0x200000000ull, 4096};

	return with_fds(x, MU_CMD_DMA_MAP, &d, sizeof(d), 2, true,
			"DMA_MAP with 2 fds");
}

static int fd_irq_extra(struct cf_ctx *x)
{
	struct mu_irq_set s = {
		sizeof(s), MU_IRQ_SET_DATA_EVENTFD | MU_IRQ_SET_ACTION_TRIGGER,
		MU_PCI_ERR_IRQ_INDEX, 0, 1};

	if (cf_get_info(x) < 0)
		return CF_FAIL;
	if (x->info.num_irqs <= MU_PCI_ERR_IRQ_INDEX)
		s.index = 0;
	return with_fds(x, MU_CMD_DEVICE_SET_IRQS, &s, sizeof(s), 2, true,
			"SET_IRQS of 1 vector with 2 eventfds");
}

static int fd_over_max(struct cf_ctx *x)
{
	struct mu_device_info in = {.argsz = sizeof(in)};
	unsigned n = x->sess.max_msg_fds + 1;
	char what[64];

	if (n > 64)
		return cf_set(x, CF_SKIP,
			      "max_msg_fds %u: too many to exceed "
			      "within bounds",
			      x->sess.max_msg_fds);
	snprintf(what, sizeof(what), "GET_INFO with %u fds (max_msg_fds %u)", n,
		 x->sess.max_msg_fds);
	return with_fds(x, MU_CMD_DEVICE_GET_INFO, &in, sizeof(in), n, true,
			what);
}

static int fd_leak_rejected(struct cf_ctx *x)
{
	struct mu_region_access a = {0, BAD_REGION, 4};
	struct mu_device_info in = {.argsz = sizeof(in)};
	int fds[4], base = cf_server_fd_count(x), after, i, e;

	if (base < 0)
		return cf_set(x, CF_SKIP,
			      "the server's fd count is not "
			      "visible (/proc/PID/fd: %s)",
			      cf_errname(base));
	for (i = 0; i < 32; i++) {
		if (make_fds(fds, 4) < 0)
			return cf_set(x, CF_SKIP, "eventfd: %s",
				      strerror(errno));
		if (i % 2)
			e = cf_refused(x, MU_CMD_REGION_READ, &a, sizeof(a),
				       fds, 4, NULL,
				       "REGION_READ of a bad region "
				       "with 4 fds");
		else
			e = cf_refused(x, MU_CMD_DEVICE_GET_INFO, &in,
				       sizeof(in) - 4, fds, 4, NULL,
				       "short GET_INFO with 4 fds");
		close_fds(fds, 4);
		if (e == CF_EBROKEN)
			return CF_FAIL;
	}
	after = settle(x, base);
	if (after > base)
		return cf_set(x, CF_FAIL,
			      "after 32 refused messages carrying 128 fds the "
			      "server holds %d more fds (%d -> %d)",
			      after - base, base, after);
	return cf_set(x, CF_PASS,
		      "32 refused messages with 128 fds: server "
		      "fd count %d -> %d",
		      base, after);
}

static int fd_with_version(struct cf_ctx *x)
{
	int base = cf_server_fd_count(x), fd, e = 0, after, st, tries;
	struct mu_version v = {0, 2};
	struct cf_conn *c = NULL;
	struct cf_msg m;

	for (tries = 0; tries < 20; tries++) {
		if (tries)
			usleep(50 * 1000);
		e = cf_conn_open(&c, x->path, x->timeout_ms, &x->dma);
		if (e < 0)
			return cf_set(x, CF_FAIL, "connect: %s", strerror(-e));
		fd = eventfd(0, EFD_CLOEXEC);
		e = cf_call(c, MU_CMD_VERSION, &v, sizeof(v), &fd, 1, &m);
		close(fd);
		/* Still busy with the previous client: not our answer. */
		if (e == 0 && cf_reply_errno(&m) == -EBUSY) {
			cf_msg_free(&m);
			cf_conn_close(c);
			c = NULL;
			continue;
		}
		break;
	}
	if (e == -ECONNRESET || (e == 0 && cf_is_error(&m)))
		st = CF_PASS;
	else if (e < 0)
		st = cf_lost(x, e, "VERSION with an fd");
	else
		st = CF_WARN;
	cf_msg_free(&m);
	cf_conn_close(c);
	if (st == CF_FAIL)
		return st;
	after = base >= 0 ? settle(x, base) : -1;
	if (base >= 0 && after > base)
		return cf_set(
			x, CF_FAIL,
			"VERSION with an fd: the server kept it (%d -> %d "
			"fds)",
			base, after);
	return st == CF_PASS
		       ? cf_set(x, CF_PASS, "VERSION with an fd refused%s",
				base >= 0 ? ", no fd kept" : "")
		       : cf_set(x, CF_WARN, "VERSION with an fd accepted");
}

/* Everything a departed client passed is closed (spec: Client
 * Disconnection). */
static int fd_disconnect(struct cf_ctx *x)
{
	struct cf_conn *a = NULL;
	int base, peak, after, mfd, efd;

	if (cf_open_session(x, &a) < 0)
		return CF_FAIL;
	x->c = a;
	base = cf_server_fd_count(x);
	if (base < 0) {
		x->c = NULL;
		cf_conn_close(a);
		return cf_set(x, CF_SKIP,
			      "the server's fd count is not "
			      "visible (/proc/PID/fd: %s)",
			      cf_errname(base));
	}
	mfd = cf_memfd(4096);
	efd = eventfd(0, EFD_CLOEXEC);
	if (mfd >= 0)
		cf_dma_map(x, 0x300000000ull, 4096, MU_DMA_MAP_FLAG_READ, mfd,
			   NULL);
	if (efd >= 0 && cf_get_info(x) == 0 && x->info.num_irqs) {
		unsigned i;

		for (i = 0; i < x->info.num_irqs && i < 5; i++) {
			struct mu_irq_info ii;

			if (cf_irq_info(x, i, &ii) == 0 && ii.count)
				cf_set_irqs(x,
					    MU_IRQ_SET_DATA_EVENTFD |
						    MU_IRQ_SET_ACTION_TRIGGER,
					    i, 0, 1, &efd, 1);
		}
	}
	peak = cf_server_fd_count(x);
	if (mfd >= 0)
		close(mfd);
	if (efd >= 0)
		close(efd);
	x->c = NULL;
	cf_conn_close(a);
	/* The next client sees what the server kept of the last one. */
	if (cf_open_session(x, &a) < 0)
		return CF_FAIL;
	after = settle(x, base);
	cf_conn_close(a);
	if (after > base)
		return cf_set(x, CF_FAIL,
			      "a departed client's fds stayed open: %d fds "
			      "with it (%d at peak), %d with the next client",
			      base, peak, after);
	return cf_set(x, CF_PASS,
		      "server fds: %d with a client, %d with its "
		      "maps and eventfds, %d with the next client",
		      base, peak, after);
}

const struct cf_check cf_checks_fd[] = {
	{"fd.unexpected", S_HDR, "8.2",
	 "an fd sent with a command that takes none is not kept",
	 CF_NEED_SESSION, fd_unexpected},
	{"fd.dma-map-two", S_MAP, "8.2",
	 "DMA_MAP with more than one fd is refused and the fds closed",
	 CF_NEED_SESSION, fd_dma_two},
	{"fd.set-irqs-extra", S_SETIRQS, "5.8",
	 "SET_IRQS with more eventfds than vectors is refused, fds closed",
	 CF_NEED_SESSION, fd_irq_extra},
	{"fd.over-max-msg-fds", S_VER, "8.2",
	 "more fds than the server's max_msg_fds are refused and closed",
	 CF_NEED_SESSION, fd_over_max},
	{"fd.leak-rejected", S_SEC, "8.2",
	 "fds of refused messages are closed: the server's fd count holds",
	 CF_NEED_SESSION, fd_leak_rejected},
	{"fd.with-version", S_VER, "4.1",
	 "an fd attached to VERSION is refused or closed, never kept",
	 CF_NEED_NONE, fd_with_version},
	{"fd.disconnect", S_DISC, "2.5",
	 "a departed client's DMA fds and eventfds are closed", CF_NEED_NONE,
	 fd_disconnect},
	{NULL, NULL, NULL, NULL, 0, NULL},
};
