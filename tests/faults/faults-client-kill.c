/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The client killed at every message boundary of a session.
 *
 * A forked raw client (wire core) plays a scripted session - VERSION with
 * the twin socket, GET_INFO, REGION_INFO (with mmap fds), IRQ_INFO,
 * SET_IRQS with eventfds, DMA_MAP with a memfd and fd-less, register
 * reads and writes, device DMA over the twin socket, WRITE_MULTI, RESET,
 * DMA_UNMAP, SET_IRQS off - and SIGKILLs itself at a boundary:
 *
 *   after   after the reply to message k (k = 0..N)
 *   sent    right after sending message k+1, before its reply
 *   hdr     after half of the header of message k+1
 *   payload after the header, the fds and half the payload of message k+1
 *   dma     while the server waits for the client's DMA reply
 *
 * After each death a new client must be served, see the device state the
 * dead client left (a register it wrote; RESET clears it), and the
 * server's fd count must be back to its baseline; for the in-process
 * device also mu_dma_count() == 0 and no interrupt eventfd left.
 *
 * Targets: the muser-dma-test sample (argv[1]) and an in-process libmuser
 * device served by mu_dev_run() in a thread.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dma-test.h"
#include "faults-common.h"

enum sk {
	S_VERSION,
	S_INFO,
	S_RINFO,
	S_IRQINFO,
	S_IRQ_EFD,
	S_IRQ_OFF,
	S_MAP_FD,
	S_MAP_NOFD,
	S_UNMAP,
	S_W32,
	S_R32,
	S_WMULTI,
	S_RESET,
};

struct step {
	enum sk k;
	uint32_t a, b; /* region / irq index; irq count */
	uint64_t c;    /* offset / iova */
	uint32_t v;    /* value / size */
	bool dma;      /* the server does message DMA while handling it */
};

enum mode { M_AFTER, M_SENT, M_HDR, M_PAYLOAD, M_DMA, M_NUM };
static const char *const mode_name[] = {"after", "sent", "hdr", "payload",
					"dma"};

struct target {
	const char *name;
	const char *sock;
	pid_t pid;       /* external server, 0: in-process */
	struct fdev *fd; /* in-process */
	uint32_t magic_off, magic, state_off;
	const struct step *steps;
	unsigned n;
	int base_fds;
	uint32_t planted;
};

#define W(off, val) {S_W32, 0, 0, off, val, false}
#define R(off) {S_R32, 0, 0, off, 0, false}

static const struct step dmat_steps[] = {
	{S_VERSION},
	{S_INFO},
	{S_RINFO, 0},
	{S_RINFO, 2},
	{S_RINFO, 4},
	{S_RINFO, 7},
	{S_IRQINFO, 0},
	{S_IRQINFO, 2},
	{S_IRQ_EFD, MU_PCI_MSIX_IRQ_INDEX, 4},
	{S_IRQ_EFD, MU_PCI_INTX_IRQ_INDEX, 1},
	{S_MAP_FD, 0, 0, 0x10000, 0x10000},
	{S_MAP_NOFD, 0, 0, 0x100000, 0x1000},
	W(DMAT_REG_SCRATCH, 0x11111111),
	R(DMAT_REG_MAGIC),
	W(DMAT_REG_SRC_LO, 0x100000),
	W(DMAT_REG_DST_LO, 0x10000),
	W(DMAT_REG_LEN, 0x800),
	W(DMAT_REG_OP, DMAT_OP_COPY),
	W(DMAT_REG_IRQ_CTRL, DMAT_IRQ_EN),
	{S_W32, 0, 0, DMAT_REG_CMD, DMAT_CMD_START, true},
	{S_R32, 0, 0, DMAT_REG_STATUS, 0, true},
	R(DMAT_REG_STATUS),
	{S_WMULTI, 0, 0, DMAT_REG_SCRATCH, 0x22222222},
	R(DMAT_REG_SCRATCH),
	{S_RESET},
	W(DMAT_REG_SCRATCH, 0x33333333),
	{S_UNMAP, 0, 0, 0x100000, 0x1000},
	{S_UNMAP, 0, 0, 0x10000, 0x10000},
	{S_IRQ_OFF, MU_PCI_MSIX_IRQ_INDEX},
	W(DMAT_REG_SCRATCH, 0x44444444),
};

static const struct step fdev_steps[] = {
	{S_VERSION},
	{S_INFO},
	{S_RINFO, 0},
	{S_RINFO, 2},
	{S_RINFO, 4},
	{S_RINFO, 7},
	{S_IRQINFO, 0},
	{S_IRQINFO, 2},
	{S_IRQ_EFD, MU_PCI_MSIX_IRQ_INDEX, 4},
	{S_IRQ_EFD, MU_PCI_INTX_IRQ_INDEX, 1},
	{S_MAP_FD, 0, 0, 0x10000, 0x10000},
	{S_MAP_NOFD, 0, 0, 0x100000, 0x1000},
	W(FD_REG_STATE, 0x11111111),
	R(FD_REG_MAGIC),
	W(FD_REG_IOVA, 0x100000),
	W(FD_REG_LEN, 64),
	{S_W32, 0, 0, FD_REG_GO_RD, 1, true},
	{S_W32, 0, 0, FD_REG_GO_WR, 1, true},
	R(FD_REG_RET),
	{S_WMULTI, 0, 0, FD_REG_STATE, 0x22222222},
	R(FD_REG_STATE),
	W(FD_REG_IOVA, 0x10000),
	W(FD_REG_GO_WR, 1), /* through the mmapped memfd: no message */
	{S_RESET},
	W(FD_REG_STATE, 0x33333333),
	{S_UNMAP, 0, 0, 0x100000, 0x1000},
	{S_UNMAP, 0, 0, 0x10000, 0x10000},
	{S_IRQ_OFF, MU_PCI_MSIX_IRQ_INDEX},
	W(FD_REG_STATE, 0x44444444),
};

/* ---- the scripted client (runs in the forked child) ----------------------- */

struct built {
	uint16_t cmd;
	uint32_t flags;
	uint8_t buf[64];
	size_t len;
	int fds[8];
	unsigned nfds;
};

static int memfd_of(size_t size)
{
	int fd = memfd_create("faults", MFD_CLOEXEC);

	if (fd >= 0 && ftruncate(fd, (off_t)size) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static void build(struct rc *r, const struct step *s, struct built *b)
{
	unsigned i;

	memset(b, 0, sizeof(*b));
	switch (s->k) {
	case S_VERSION:
		break; /* rc_version builds its own */
	case S_INFO: {
		struct mu_device_info d = {16, 0, 0, 0};

		b->cmd = MU_CMD_DEVICE_GET_INFO;
		memcpy(b->buf, &d, b->len = sizeof(d));
		break;
	}
	case S_RINFO: {
		struct mu_region_info d = {.argsz = 64, .index = s->a};

		b->cmd = MU_CMD_DEVICE_GET_REGION_INFO;
		memcpy(b->buf, &d, b->len = sizeof(d));
		break;
	}
	case S_IRQINFO: {
		struct mu_irq_info d = {16, 0, s->a, 0};

		b->cmd = MU_CMD_DEVICE_GET_IRQ_INFO;
		memcpy(b->buf, &d, b->len = sizeof(d));
		break;
	}
	case S_IRQ_EFD:
	case S_IRQ_OFF: {
		struct mu_irq_set d = {20, MU_IRQ_SET_ACTION_TRIGGER, s->a, 0,
				       s->k == S_IRQ_EFD ? s->b : 0};

		d.flags |= s->k == S_IRQ_EFD ? MU_IRQ_SET_DATA_EVENTFD
					     : MU_IRQ_SET_DATA_NONE;
		b->cmd = MU_CMD_DEVICE_SET_IRQS;
		memcpy(b->buf, &d, b->len = sizeof(d));
		for (i = 0; s->k == S_IRQ_EFD && i < s->b; i++)
			b->fds[b->nfds++] = eventfd(0, EFD_CLOEXEC);
		break;
	}
	case S_MAP_FD:
	case S_MAP_NOFD: {
		struct mu_dma_map d = {32, 3, 0, s->c, s->v};

		b->cmd = MU_CMD_DMA_MAP;
		memcpy(b->buf, &d, b->len = sizeof(d));
		if (s->k == S_MAP_FD)
			b->fds[b->nfds++] = memfd_of(s->v);
		else
			r->dma_iova = s->c;
		break;
	}
	case S_UNMAP: {
		struct mu_dma_unmap d = {24, 0, s->c, s->v};

		b->cmd = MU_CMD_DMA_UNMAP;
		memcpy(b->buf, &d, b->len = sizeof(d));
		break;
	}
	case S_W32:
	case S_R32: {
		struct mu_region_access a = {s->c, s->a, 4};

		b->cmd = s->k == S_W32 ? MU_CMD_REGION_WRITE
				       : MU_CMD_REGION_READ;
		memcpy(b->buf, &a, sizeof(a));
		memcpy(b->buf + sizeof(a), &s->v, 4);
		b->len = sizeof(a) + (s->k == S_W32 ? 4 : 0);
		break;
	}
	case S_WMULTI: {
		struct mu_write_multi w = {1};
		struct mu_write_multi_entry e = {s->c, s->a, 4, {0}};

		memcpy(e.data, &s->v, 4);
		b->cmd = MU_CMD_REGION_WRITE_MULTI;
		b->flags = MU_FLAG_NO_REPLY;
		memcpy(b->buf, &w, sizeof(w));
		memcpy(b->buf + sizeof(w), &e, sizeof(e));
		b->len = sizeof(w) + sizeof(e);
		break;
	}
	case S_RESET:
		b->cmd = MU_CMD_DEVICE_RESET;
		break;
	}
}

static void drop_fds(struct built *b)
{
	unsigned i;

	for (i = 0; i < b->nfds; i++)
		close(b->fds[i]);
	b->nfds = 0;
}

static bool conn_error(ssize_t e)
{
	return e == -ECONNRESET || e == -ETIMEDOUT || e == -EPIPE ||
	       e == -ENOTCONN;
}

/* Run a step to its reply. Error replies are fine (the script probes
 * regions that may not exist); a lost connection is not. */
static int full_step(struct rc *r, const struct step *s)
{
	struct built b;
	uint16_t id;
	ssize_t e;

	if (s->k == S_VERSION)
		return rc_version(r, true);
	build(r, s, &b);
	e = rc_send(r, b.cmd, b.flags, b.buf, b.len, b.fds, b.nfds, &id);
	drop_fds(&b);
	if (e < 0)
		return (int)e;
	if (b.flags & MU_FLAG_NO_REPLY)
		return 0;
	e = rc_wait(r, id, b.cmd, NULL, 0, 5000);
	return conn_error(e) ? (int)e : 0;
}

static void boundary(struct rc *r, const struct step *s, enum mode m)
{
	struct built b;
	struct mu_hdr h;
	struct iovec v[2];
	uint16_t id;

	if (s->k == S_VERSION) {
		static const char js[] = "{\"capabilities\":{}}";
		struct mu_version ver = {MU_PROTO_MAJOR, MU_PROTO_MINOR};

		memset(&b, 0, sizeof(b));
		b.cmd = MU_CMD_VERSION;
		memcpy(b.buf, &ver, sizeof(ver));
		memcpy(b.buf + sizeof(ver), js, sizeof(js));
		b.len = sizeof(ver) + sizeof(js);
	} else {
		build(r, s, &b);
	}
	h = (struct mu_hdr){.msg_id = 0x7777, .cmd = b.cmd, .flags = b.flags,
			    .size = (uint32_t)(sizeof(h) + b.len)};
	switch (m) {
	case M_SENT:
		rc_send(r, b.cmd, b.flags, b.buf, b.len, b.fds, b.nfds, &id);
		break;
	case M_HDR:
		v[0] = (struct iovec){&h, sizeof(h) / 2};
		mu_sendmsg_all(r->ch.fd, v, 1, b.fds, b.nfds);
		break;
	case M_PAYLOAD:
		v[0] = (struct iovec){&h, sizeof(h)};
		v[1] = (struct iovec){b.buf, b.len / 2};
		mu_sendmsg_all(r->ch.fd, v, 2, b.fds, b.nfds);
		break;
	case M_DMA:
		r->die_on_dma = true;
		if (rc_send(r, b.cmd, b.flags, b.buf, b.len, b.fds, b.nfds,
			    &id) == 0)
			rc_wait(r, id, b.cmd, NULL, 0, 5000);
		break;
	default:
		break;
	}
	drop_fds(&b);
}

static void child(const struct target *t, unsigned k, enum mode m)
{
	struct rc r;
	unsigned i;

	if (rc_connect(&r, t->sock) < 0)
		_exit(2);
	for (i = 0; i < k; i++)
		if (full_step(&r, &t->steps[i]) < 0)
			_exit(10 + (int)i);
	if (m != M_AFTER)
		boundary(&r, &t->steps[k], m);
	raise(SIGKILL);
	_exit(3);
}

/* ---- the survivor's checks ------------------------------------------------ */

static uint32_t expected_state(const struct target *t, unsigned applied)
{
	uint32_t v = t->planted;
	unsigned i;

	for (i = 0; i < applied && i < t->n; i++) {
		const struct step *s = &t->steps[i];

		if ((s->k == S_W32 || s->k == S_WMULTI) && s->a == 0 &&
		    s->c == t->state_off)
			v = s->v;
		if (s->k == S_RESET)
			v = 0;
	}
	return v;
}

static int verify(struct target *t, const char *what, uint32_t want,
		  uint32_t plant)
{
	uint32_t magic = 0, state = 0;
	struct rc r;
	int e, fds;

	e = rc_connect_retry(&r, t->sock, 5000);
	if (e == 0)
		e = rc_version(&r, false);
	if (e < 0) {
		printf("not ok - %s %s: next client not served: %s\n", t->name,
		       what, strerror(-e));
		rc_close(&r);
		return -1;
	}
	/* VERSION of a new client is only handled once the old one is
	 * dropped: its maps and eventfds must be gone now. */
	if (t->fd) {
		int n = mu_dma_count(t->fd->dev);
		int irq = mu_irq_trigger(t->fd->dev, MU_PCI_MSIX_IRQ_INDEX, 0);
		int intx = mu_irq_trigger(t->fd->dev, MU_PCI_INTX_IRQ_INDEX, 0);

		if (n != 0 || irq == 0 || intx == 0) {
			printf("not ok - %s %s: after the client died: "
			       "mu_dma_count %d, msix trigger %d, intx "
			       "trigger %d\n",
			       t->name, what, n, irq, intx);
			rc_close(&r);
			return -1;
		}
	}
	e = rc_read32(&r, 0, t->magic_off, &magic);
	if (e == 0)
		e = rc_read32(&r, 0, t->state_off, &state);
	if (e == 0 && (magic != t->magic || state != want)) {
		printf("not ok - %s %s: magic %#x state %#x, want %#x %#x\n",
		       t->name, what, magic, state, t->magic, want);
		e = -1;
	}
	if (e == 0)
		e = rc_write32(&r, 0, t->state_off, plant);
	rc_close(&r);
	if (e < 0) {
		if (e != -1)
			printf("not ok - %s %s: next client: %s\n", t->name,
			       what, strerror(-e));
		return -1;
	}
	t->planted = plant;
	if (t->base_fds < 0)
		return 0;
	fds = fl_wait_fd_count(t->pid, t->base_fds, 5000);
	if (fds != t->base_fds) {
		printf("not ok - %s %s: server fds %d, baseline %d\n", t->name,
		       what, fds, t->base_fds);
		return -1;
	}
	return 0;
}

static int run_one(struct target *t, unsigned k, enum mode m, unsigned seq)
{
	char what[96];
	pid_t pid;
	int st;
	unsigned applied = k + (m == M_SENT || m == M_DMA ? 1 : 0);

	snprintf(what, sizeof(what), "k=%u %s (%s)", k, mode_name[m],
		 k < t->n ? "next step" : "end");
	if (k < t->n)
		snprintf(what, sizeof(what), "k=%u %s, step %u kind %d", k,
			 mode_name[m], k, t->steps[k].k);
	fflush(stdout);
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0)
		child(t, k, m);
	st = fl_wait_child(pid, 20000);
	if (st < 0 || !WIFSIGNALED(st) || WTERMSIG(st) != SIGKILL) {
		printf("not ok - %s %s: client session failed early (exit "
		       "%d: step %d)\n",
		       t->name, what, st < 0 ? -1 : WEXITSTATUS(st),
		       st < 0 ? -1 : WEXITSTATUS(st) - 10);
		/* still check the server */
		verify(t, what, 0, 0x5a000000u + seq);
		return -1;
	}
	return verify(t, what, expected_state(t, applied), 0x5a000000u + seq);
}

static int sweep(struct target *t)
{
	unsigned k, seq = 0;
	int failed = 0, runs = 0;
	enum mode m;

	/* Baseline: after one healthy session. */
	t->base_fds = -1;
	if (verify(t, "baseline", t->planted, 0x5a000000u) < 0) {
		printf("not ok - %s: no baseline\n", t->name);
		return 1;
	}
	usleep(100 * 1000); /* the server drops that client */
	t->base_fds = fl_fd_count(t->pid);
	for (m = M_AFTER; m < M_NUM; m++) {
		for (k = 0; k <= t->n; k++) {
			if (m != M_AFTER && k == t->n)
				break;
			if (m == M_PAYLOAD &&
			    (t->steps[k].k == S_RESET))
				continue; /* no payload */
			if (m == M_DMA && !t->steps[k].dma)
				continue;
			runs++;
			if (run_one(t, k, m, ++seq) < 0)
				failed++;
		}
	}
	printf("%s ok - %s: %d client deaths, %d failed\n", failed ? "not" : "",
	       t->name, runs, failed);
	return failed;
}

int main(int argc, char **argv)
{
	char path1[108], path2[108];
	struct target t1 = {0}, t2 = {0};
	struct fdev f;
	int failed = 0;

	if (argc < 2) {
		fprintf(stderr, "usage: %s MUSER-DMA-TEST\n", argv[0]);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	snprintf(path1, sizeof(path1), "/tmp/mu-faults-ck-%d-1.sock",
		 getpid());
	snprintf(path2, sizeof(path2), "/tmp/mu-faults-ck-%d-2.sock",
		 getpid());

	/* 1. the dma-test sample in its own process */
	{
		static const char *const extra[] = {"--quiet", NULL};

		t1.name = "dma-test";
		t1.sock = path1;
		t1.pid = fl_spawn_server(argv[1], path1, extra);
		t1.magic_off = DMAT_REG_MAGIC;
		t1.magic = DMAT_MAGIC;
		t1.state_off = DMAT_REG_SCRATCH;
		t1.steps = dmat_steps;
		t1.n = sizeof(dmat_steps) / sizeof(dmat_steps[0]);
		if (t1.pid <= 0) {
			printf("not ok - dma-test did not start\n");
			return 1;
		}
		failed += sweep(&t1);
		fl_kill_server(t1.pid);
	}

	/* 2. an in-process device (mu_dev_run in a thread) */
	if (fdev_create(&f, path2, -1, NULL) < 0 || fdev_start(&f) < 0) {
		printf("not ok - in-process device\n");
		return 1;
	}
	t2.name = "in-process";
	t2.sock = path2;
	t2.pid = 0;
	t2.fd = &f;
	t2.magic_off = FD_REG_MAGIC;
	t2.magic = FD_MAGIC;
	t2.state_off = FD_REG_STATE;
	t2.steps = fdev_steps;
	t2.n = sizeof(fdev_steps) / sizeof(fdev_steps[0]);
	failed += sweep(&t2);
	fdev_destroy(&f);
	if (f.nreset_lost == 0) {
		printf("not ok - in-process: reset(LOST_CONN) never called\n");
		failed++;
	}
	printf("%s\n", failed ? "FAILED" : "PASSED");
	return failed ? 1 : 0;
}
