/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * test-nvme-dbbuf.c - muser-nvme's Doorbell Buffer Config (shadow
 * doorbells, NVMe 1.4 5.8) driven through libmuser-client: the host side
 * follows Linux's driver (nvme_dbbuf_update_and_check_event): it writes
 * each new SQ tail / CQ head in the Shadow Doorbell buffer and writes
 * the doorbell register only when the controller's EventIdx says so.
 * Checked: I/O completes and lands in the backing file, EventIdx is
 * written, buffers in memory the server reaches only by DMA messages
 * work too, bad buffer addresses are refused with Invalid Field in
 * Command, out-of-range shadow values get the same asynchronous event as
 * a doorbell write with that value and nothing else happens, a doorbell
 * write is only a nudge, the buffers' window can be unmapped and mapped
 * again, INTx drops once the head is read from the buffer, a controller
 * or device reset forgets the buffers, polling (--poll-us) takes new
 * commands without rings and hands back to EventIdx when the host is
 * quiet, and --no-shadow-doorbells offers none.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cmocka.h>

#include "nvme-host.h"

#define ST(sc) SC(0, sc)
#define DBS_IOVA (MEM_IOVA + 0x20000)
#define EIS_IOVA (MEM_IOVA + 0x21000)
#define SQ2_IOVA (MEM_IOVA + 0x4000)
/* A window of its own for the buffers (MEM's memfd at XTRA_OFF), so that
 * it can be unmapped alone. */
#define XTRA_IOVA 0x60000000ull
#define XTRA_OFF 0xa00000u
#define XTRA_SIZE 0x10000u
#define CQ2_IOVA (MEM_IOVA + 0x5000)

/* The host side of the buffers. */
struct shadow {
	uint64_t dbs, eis;
	unsigned rings; /* doorbell register writes */
	unsigned updates;
};

static volatile uint32_t *db_entry(struct fx *f, uint64_t base, unsigned idx)
{
	uint64_t iova = base + 4ull * idx;

	if (iova >= XTRA_IOVA && iova < XTRA_IOVA + XTRA_SIZE)
		return (volatile uint32_t *)(f->mem + XTRA_OFF +
					     (iova - XTRA_IOVA));
	return (volatile uint32_t *)gp(f, iova);
}

static uint16_t dbbuf_config(struct fx *f, uint64_t dbs, uint64_t eis)
{
	struct nvme_sqe c = {
		.opcode = NVME_ADM_DBBUF_CONFIG, .prp1 = dbs, .prp2 = eis};

	return exec(f, 0, &c, NULL);
}

static bool need_event(uint16_t ei, uint16_t new_idx, uint16_t old)
{
	return (uint16_t)(new_idx - ei - 1) < (uint16_t)(new_idx - old);
}

/* Linux's order: the value out, a full barrier, then EventIdx. */
static void shadow_update(struct fx *f, struct shadow *s, unsigned idx,
			  uint32_t v)
{
	uint32_t old =
		__atomic_load_n(db_entry(f, s->dbs, idx), __ATOMIC_RELAXED);
	uint32_t ei;

	__atomic_store_n(db_entry(f, s->dbs, idx), v, __ATOMIC_RELEASE);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	ei = __atomic_load_n(db_entry(f, s->eis, idx), __ATOMIC_ACQUIRE);
	s->updates++;
	if (need_event((uint16_t)ei, (uint16_t)v, (uint16_t)old)) {
		wr32(f, NVME_REG_DBS + 4u * idx, v);
		s->rings++;
	}
}

static void sh_submit(struct fx *f, struct shadow *s, unsigned qid,
		      const struct nvme_sqe *cmd)
{
	struct hq *q = &f->sq[qid];

	memcpy(gp(f, q->iova + (uint64_t)q->tail * NVME_SQE_SIZE), cmd,
	       sizeof(*cmd));
	q->tail = (q->tail + 1) % q->size;
	shadow_update(f, s, 2 * qid, q->tail);
}

/* Next completion on CQ qid; the head goes to the buffer. */
static int sh_reap(struct fx *f, struct shadow *s, unsigned qid,
		   struct nvme_cqe *out, int ms)
{
	int r = reap_entry(f, qid, out, ms);

	if (r == 0)
		shadow_update(f, s, 2 * qid + 1, f->cq[qid].head);
	return r;
}

/* Wait until EventIdx entry idx reads want (the device writes it). */
static bool wait_ei(struct fx *f, struct shadow *s, unsigned idx, uint32_t want,
		    int ms)
{
	for (int i = 0; i < ms * 10; i++) {
		if (__atomic_load_n(db_entry(f, s->eis, idx),
				    __ATOMIC_ACQUIRE) == want)
			return true;
		assert_true(mu_client_process(f->c) >= 0);
		usleep(100);
	}
	return false;
}

/* count writes of 4 KiB each (8 blocks of 512) at blocks slba.., through
 * the shadow doorbells, up to `batch` in flight; then reads them back
 * the same way and compares. */
static void io_round(struct fx *f, struct shadow *s, unsigned qid,
		     uint64_t slba, unsigned count, unsigned batch,
		     unsigned seed)
{
	uint8_t *data = gp(f, DATA_IOVA), *img = malloc(4096);
	struct nvme_cqe e;

	assert_non_null(img);
	fill_random(data, 4096ull * count, seed);
	for (int pass = 0; pass < 2; pass++) {
		uint8_t op = pass ? NVME_CMD_READ : NVME_CMD_WRITE;
		uint64_t at = pass ? DATA_IOVA + 4096ull * count : DATA_IOVA;
		bool seen[64] = {false};

		assert_true(count <= 64);
		for (unsigned done = 0; done < count;) {
			unsigned n =
				count - done < batch ? count - done : batch;

			for (unsigned i = 0; i < n; i++) {
				unsigned k = done + i;
				struct nvme_sqe c =
					rw_cmd(op, slba + 8ull * k, 8,
					       at + 4096ull * k, 0);

				c.cid = (uint16_t)k;
				sh_submit(f, s, qid, &c);
			}
			for (unsigned i = 0; i < n; i++) {
				assert_int_equal(sh_reap(f, s, qid, &e, 5000),
						 0);
				assert_int_equal(e.status >> 1, 0);
				assert_int_equal(e.sqid, qid);
				assert_true(e.cid < count && !seen[e.cid]);
				seen[e.cid] = true;
			}
			done += n;
		}
	}
	assert_memory_equal(data, data + 4096ull * count, 4096ull * count);
	for (unsigned k = 0; k < count; k++) {
		read_img(f, (slba + 8ull * k) * 512, img, 4096);
		assert_memory_equal(img, data + 4096ull * k, 4096);
	}
	free(img);
}

/* OACS bit 8; the buffers in memory the server maps; I/O that rings
 * only when EventIdx says so; EventIdx written as the SQ drains. */
static void test_dbbuf_io(void **state)
{
	struct fx *f = *state;
	struct shadow s = {DBS_IOVA, EIS_IOVA, 0, 0};
	uint8_t *id = gp(f, DATA_IOVA);
	uint16_t oacs;

	assert_int_equal(identify(f, NVME_CNS_CTRL, 0, DATA_IOVA), 0);
	memcpy(&oacs, id + NVME_IDC_OACS, 2);
	assert_true(oacs & NVME_OACS_DBBUF);

	create_qpair(f, 1, SQ1_IOVA, CQ1_IOVA, 16);
	/* Garbage where the queue's entries go: the controller starts them
	 * at the queue's current values. */
	memset(gp(f, DBS_IOVA), 0x5a, 4096);
	memset(gp(f, EIS_IOVA), 0xa5, 4096);
	assert_int_equal(dbbuf_config(f, DBS_IOVA, EIS_IOVA), 0);
	for (unsigned idx = 2; idx < 4; idx++) {
		assert_int_equal(*db_entry(f, DBS_IOVA, idx), 0);
		assert_int_equal(*db_entry(f, EIS_IOVA, idx), 0);
	}
	/* The admin queue is not shadowed: its entries stay untouched. */
	assert_int_equal(*db_entry(f, DBS_IOVA, 0), 0x5a5a5a5au);
	assert_int_equal(*db_entry(f, EIS_IOVA, 0), 0xa5a5a5a5u);

	/* One at a time: each submission finds the SQ drained, so each
	 * one rings; the device sets EventIdx to the tail it reached. */
	io_round(f, &s, 1, 0, 6, 1, 1);
	assert_true(wait_ei(f, &s, 2, f->sq[1].tail, 2000));
	/* Batches (wrapping the 16-entry SQ several times): fewer rings
	 * than submissions, and everything completes. */
	s.rings = s.updates = 0;
	io_round(f, &s, 1, 64, 40, 12, 2);
	assert_true(s.rings < s.updates);
	assert_true(wait_ei(f, &s, 2, f->sq[1].tail, 2000));

	/* A queue created after the config starts at 0 in both buffers,
	 * whatever an older queue left there. */
	*db_entry(f, DBS_IOVA, 4) = 9;
	*db_entry(f, EIS_IOVA, 4) = 9;
	create_qpair(f, 2, SQ2_IOVA, CQ2_IOVA, 8);
	assert_int_equal(*db_entry(f, DBS_IOVA, 4), 0);
	assert_int_equal(*db_entry(f, EIS_IOVA, 4), 0);
	io_round(f, &s, 2, 1024, 20, 5, 3);
}

/*
 * One command at a time, alternating between two queues, thousands of
 * times, with four workers: between commands every worker goes to sleep
 * and each submission must wake one (a ring when EventIdx asks for it).
 * A wakeup lost on the device side leaves the command unanswered: its
 * reap times out. It guards the path where glibc 2.36 left every worker
 * asleep after a pthread_cond_signal() on a shared condition variable
 * (queue.c); that was found in a guest, and this host test did not
 * reproduce it with the old code.
 */
static void test_dbbuf_ping_pong(void **state)
{
	struct fx *f = *state;
	struct shadow s = {DBS_IOVA, EIS_IOVA, 0, 0};
	struct nvme_cqe e;

	create_qpair(f, 1, SQ1_IOVA, CQ1_IOVA, 16);
	create_qpair(f, 2, SQ2_IOVA, CQ2_IOVA, 8);
	assert_int_equal(dbbuf_config(f, DBS_IOVA, EIS_IOVA), 0);
	for (unsigned i = 0; i < 4000; i++) {
		unsigned qid = 1 + i % 2;
		struct nvme_sqe c = rw_cmd(NVME_CMD_READ, 8ull * (i % 64), 8,
					   DATA_IOVA + 4096ull * (i % 8), 0);

		c.cid = (uint16_t)i;
		sh_submit(f, &s, qid, &c);
		if (sh_reap(f, &s, qid, &e, 5000) != 0)
			fail_msg("command %u on queue %u never completed "
				 "(%u rings for %u updates)",
				 i, qid, s.rings, s.updates);
		assert_int_equal(e.status >> 1, 0);
		assert_int_equal(e.cid, (uint16_t)i);
	}
	/* The EventIdx rule held: every submission found the SQ drained,
	 * so each rang; completions were consumed without ringing. */
	assert_true(s.rings >= 4000 && s.rings < s.updates);
}

/*
 * Polling (--poll-us=200000 here, so that the test's own pace never ends
 * it): after the first ring the controller reads the tails by itself and
 * leaves EventIdx behind, so a stream of commands rings about once. Quiet
 * for longer than poll_us, it puts EventIdx at the tail again and the
 * next command rings. A DMA map in the middle (which quiesces) waits for
 * the poller and polling resumes after it.
 */
static void test_dbbuf_poll(void **state)
{
	struct fx *f = *state;
	struct shadow s = {DBS_IOVA, EIS_IOVA, 0, 0};
	const uint32_t rw = MU_DMA_MAP_FLAG_READ | MU_DMA_MAP_FLAG_WRITE;
	/* A stale EventIdx is still passed once per trip round a queue
	 * (16 entries here, both the SQ and the CQ): at most that many
	 * rings, plus the first; one per command without polling. */
	const unsigned per_trip = 2, q = 16;

	create_qpair(f, 1, SQ1_IOVA, CQ1_IOVA, q);
	assert_int_equal(dbbuf_config(f, DBS_IOVA, EIS_IOVA), 0);
	io_round(f, &s, 1, 0, 30, 1, 11); /* 60 commands, one at a time */
	if (s.rings > per_trip * (2 + 60 / q))
		fail_msg("%u rings for %u updates", s.rings, s.updates);
	/* Polling: EventIdx stays where the first ring left it. */
	assert_true(*db_entry(f, EIS_IOVA, 2) != f->sq[1].tail);

	/* A DMA map quiesces: the poller stops for it, then goes on. */
	assert_int_equal(mu_client_dma_map_fd(f->c, XTRA_IOVA, XTRA_SIZE,
					      f->memfd, XTRA_OFF, rw),
			 0);
	s.rings = s.updates = 0;
	io_round(f, &s, 1, 512, 20, 4, 12); /* 40 commands, 4 at a time */
	if (s.rings > per_trip * (2 + 40 / q))
		fail_msg("%u rings for %u updates", s.rings, s.updates);

	/* Quiet: EventIdx comes back to the tail, and then a command
	 * rings again. */
	assert_true(wait_ei(f, &s, 2, f->sq[1].tail, 5000));
	s.rings = 0;
	io_round(f, &s, 1, 1024, 1, 1, 13);
	assert_true(s.rings >= 1);
}

/* The window holding the buffers goes away while a worker polls them
 * (it holds pointers into it): the unmap waits for the poller to let go,
 * and nothing is read from the window once it is gone. The client then
 * leaves while the controller polls again. */
static void test_dbbuf_poll_unmap(void **state)
{
	struct fx *f = *state;
	struct shadow s = {XTRA_IOVA, XTRA_IOVA + 0x1000, 0, 0};
	const uint32_t rw = MU_DMA_MAP_FLAG_READ | MU_DMA_MAP_FLAG_WRITE;

	create_qpair(f, 1, SQ1_IOVA, CQ1_IOVA, 16);
	for (int i = 0; i < 20; i++) {
		assert_int_equal(mu_client_dma_map_fd(f->c, XTRA_IOVA,
						      XTRA_SIZE, f->memfd,
						      XTRA_OFF, rw),
				 0);
		assert_int_equal(dbbuf_config(f, s.dbs, s.eis), 0);
		io_round(f, &s, 1, 8ull * i, 2, 1, 20 + (unsigned)i);
		/* Polling now (200 ms after the last command). */
		assert_int_equal(
			mu_client_dma_unmap(f->c, XTRA_IOVA, XTRA_SIZE), 0);
	}
	assert_int_equal(mu_client_dma_map_fd(f->c, XTRA_IOVA, XTRA_SIZE,
					      f->memfd, XTRA_OFF, rw),
			 0);
	assert_int_equal(dbbuf_config(f, s.dbs, s.eis), 0);
	io_round(f, &s, 1, 512, 4, 2, 40);
	/* fx_teardown: the client leaves mid-poll; the server must exit
	 * cleanly on SIGTERM afterwards. */
}

/* --poll-us outside 0..1000000 is refused as a usage error (2) before
 * anything else; a valid one gets as far as the missing backing (1). */
static void test_poll_us_option(void **state)
{
	(void)state;
	assert_int_equal(nvme_exit_status("--poll-us=1000001"), 2);
	assert_int_equal(nvme_exit_status("--poll-us=-1"), 2);
	assert_int_equal(nvme_exit_status("--poll-us=abc"), 2);
	assert_int_equal(nvme_exit_status("--poll-us="), 2);
	assert_int_equal(nvme_exit_status("--poll-us=0"), 1);
	assert_int_equal(nvme_exit_status("--poll-us=1000000"), 1);
}

/* The doorbell register write on a shadowed queue is only a nudge: the
 * value in the buffer is what counts (posted writes may arrive late). */
static void test_dbbuf_doorbell_is_a_nudge(void **state)
{
	struct fx *f = *state;
	struct shadow s = {DBS_IOVA, EIS_IOVA, 0, 0};
	struct nvme_sqe c = rw_cmd(NVME_CMD_READ, 0, 1, DATA_IOVA, 0);
	struct nvme_cqe e;

	create_qpair(f, 1, SQ1_IOVA, CQ1_IOVA, 16);
	assert_int_equal(dbbuf_config(f, DBS_IOVA, EIS_IOVA), 0);
	/* Two entries in the buffer, then a doorbell write with an older
	 * value (as a posted write overtaken by the buffer): both run, and
	 * the tail does not go back to 1 (which would make 15 entries). */
	for (uint16_t i = 0; i < 2; i++) {
		c.cid = i;
		memcpy(gp(f, SQ1_IOVA + 64u * i), &c, sizeof(c));
	}
	*db_entry(f, DBS_IOVA, 2) = 2;
	f->sq[1].tail = 2;
	wr32(f, NVME_SQ_TDBL(1), 1);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(sh_reap(f, &s, 1, &e, 2000), 0);
		assert_int_equal(e.status >> 1, 0);
		assert_true(e.cid < 2);
	}
	assert_true(wait_ei(f, &s, 2, 2, 2000));
	assert_int_equal(sh_reap(f, &s, 1, &e, 100), -ETIMEDOUT);
}

/* Buffers in memory without an fd: every access is a DMA message. */
static void test_dbbuf_message_dma(void **state)
{
	struct fx *f = *state;
	struct shadow s = {BUF_IOVA + 0x1000, BUF_IOVA + 0x2000, 0, 0};

	create_qpair(f, 1, SQ1_IOVA, CQ1_IOVA, 16);
	assert_int_equal(dbbuf_config(f, s.dbs, s.eis), 0);
	io_round(f, &s, 1, 0, 8, 1, 4);
	io_round(f, &s, 1, 256, 24, 8, 5);
	assert_true(wait_ei(f, &s, 2, f->sq[1].tail, 2000));
	/* No polling here (a DMA message per read would flood the socket):
	 * EventIdx stays at the tail, so each command one at a time rings
	 * the SQ doorbell. */
	s.rings = 0;
	io_round(f, &s, 1, 512, 8, 1, 6); /* 16 commands */
	if (s.rings < 16)
		fail_msg("%u rings for 16 commands: polled by messages?",
			 s.rings);
}

/* 5.8: PRP1 and PRP2 are memory page addresses the controller must
 * reach; anything else is refused, and nothing is shadowed then. */
static void test_dbbuf_bad_prps(void **state)
{
	struct fx *f = *state;
	const struct {
		uint64_t dbs, eis;
	} bad[] = {
		{0, EIS_IOVA},		      /* no buffer */
		{DBS_IOVA, 0},		      /* no EventIdx buffer */
		{DBS_IOVA + 4, EIS_IOVA},     /* not page aligned */
		{DBS_IOVA, EIS_IOVA + 0x800}, /* not page aligned */
		{DBS_IOVA, DBS_IOVA},	      /* the same page */
		{0x80000000ull, EIS_IOVA},    /* not in the maps */
		{DBS_IOVA, 0x80000000ull},
		{MEM_IOVA + MEM_SIZE, EIS_IOVA}, /* just past the map */
		{~0xfffull, EIS_IOVA},		 /* wraps */
	};
	struct nvme_sqe rd = rw_cmd(NVME_CMD_READ, 0, 1, DATA_IOVA, 0);

	create_qpair(f, 1, SQ1_IOVA, CQ1_IOVA, 16);
	memset(gp(f, EIS_IOVA), 0, 4096);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(dbbuf_config(f, bad[i].dbs, bad[i].eis),
				 ST(NVME_SC_INVALID_FIELD));
	/* Still plain doorbells: I/O works and EventIdx stays untouched. */
	for (int i = 0; i < 4; i++)
		assert_int_equal(exec(f, 1, &rd, NULL), 0);
	for (unsigned idx = 0; idx < 10; idx++)
		assert_int_equal(*db_entry(f, EIS_IOVA, idx), 0);
}

static void want_event(struct fx *f, uint16_t cid, uint8_t info)
{
	struct nvme_sqe log = {.opcode = NVME_ADM_GET_LOG_PAGE,
			       .cdw10 = (64 / 4 - 1) << 16 | NVME_LOG_ERROR};
	struct nvme_cqe e;

	assert_int_equal(reap(f, 0, &e, 2000), 0);
	assert_int_equal(e.cid, cid);
	assert_int_equal(e.status >> 1, 0);
	assert_int_equal(e.dw0, NVME_AER_DW0(0, info, NVME_LOG_ERROR));
	/* Reading the log unmasks the next error event (5.2.1). */
	set_prps(f, &log, DATA_IOVA + 0x10000, 64);
	assert_int_equal(exec(f, 0, &log, NULL), 0);
}

/* Shadow values are untrusted: out of range gets exactly what a
 * doorbell write with that value gets (ignored, Invalid Doorbell Write
 * Value event), once per value, and the queue keeps working. */
static void test_dbbuf_bad_values(void **state)
{
	struct fx *f = *state;
	struct shadow s = {DBS_IOVA, EIS_IOVA, 0, 0};
	struct nvme_sqe aer = {.opcode = NVME_ADM_ASYNC_EVENT};
	struct nvme_cqe e;

	create_qpair(f, 1, SQ1_IOVA, CQ1_IOVA, 16);
	assert_int_equal(dbbuf_config(f, DBS_IOVA, EIS_IOVA), 0);
	io_round(f, &s, 1, 0, 3, 1, 6);

	/* SQ tail == size in the buffer, with a valid doorbell write. */
	aer.cid = 0xa0;
	submit(f, 0, &aer);
	*db_entry(f, DBS_IOVA, 2) = 16;
	wr32(f, NVME_SQ_TDBL(1), 0);
	want_event(f, 0xa0, NVME_AER_INFO_INVALID_DB_VALUE);

	/* Huge values, a CQ head past what was posted: all refused. */
	aer.cid = 0xa1;
	submit(f, 0, &aer);
	*db_entry(f, DBS_IOVA, 2) = 0xffffffffu;
	wr32(f, NVME_SQ_TDBL(1), 3);
	want_event(f, 0xa1, NVME_AER_INFO_INVALID_DB_VALUE);
	aer.cid = 0xa2;
	submit(f, 0, &aer);
	*db_entry(f, DBS_IOVA, 2) = f->sq[1].tail; /* back to sane */
	*db_entry(f, DBS_IOVA, 3) = (f->cq[1].head + 5) % 16;
	wr32(f, NVME_CQ_HDBL(1), f->cq[1].head);
	want_event(f, 0xa2, NVME_AER_INFO_INVALID_DB_VALUE);
	*db_entry(f, DBS_IOVA, 3) = f->cq[1].head;

	/* A doorbell register write out of range on a shadowed queue is
	 * the same event. */
	aer.cid = 0xa3;
	submit(f, 0, &aer);
	wr32(f, NVME_SQ_TDBL(1), 99);
	want_event(f, 0xa3, NVME_AER_INFO_INVALID_DB_VALUE);

	/* Nothing ran from those values, and the queue still works. */
	assert_int_equal(sh_reap(f, &s, 1, &e, 100), -ETIMEDOUT);
	io_round(f, &s, 1, 64, 10, 4, 7);
}

/* Controller reset (CC.EN 1 -> 0) and device reset forget the buffers:
 * afterwards plain doorbells work and nothing is written to them. */
static void test_dbbuf_reset(void **state)
{
	struct fx *f = *state;
	struct shadow s = {DBS_IOVA, EIS_IOVA, 0, 0};
	struct nvme_sqe rd = rw_cmd(NVME_CMD_READ, 0, 1, DATA_IOVA, 0);

	for (int how = 0; how < 2; how++) {
		create_qpair(f, 1, SQ1_IOVA, CQ1_IOVA, 16);
		assert_int_equal(dbbuf_config(f, DBS_IOVA, EIS_IOVA), 0);
		io_round(f, &s, 1, 0, 4, 2, 8);
		if (how == 0) {
			wr32(f, NVME_REG_CC, 0);
			assert_true(wait_csts(f, NVME_CSTS_RDY, 0, 2000));
		} else {
			assert_int_equal(mu_client_reset(f->c), 0);
		}
		enable(f, QENTRIES);
		create_qpair(f, 1, SQ1_IOVA, CQ1_IOVA, 16);
		/* Garbage in the old buffers must not matter now. */
		memset(gp(f, DBS_IOVA), 0x07, 4096);
		memset(gp(f, EIS_IOVA), 0, 4096);
		for (int i = 0; i < 20; i++)
			assert_int_equal(exec(f, 1, &rd, NULL), 0);
		for (unsigned idx = 0; idx < 10; idx++) {
			assert_int_equal(*db_entry(f, EIS_IOVA, idx), 0);
			assert_int_equal(*db_entry(f, DBS_IOVA, idx),
					 0x07070707u);
		}
		wr32(f, NVME_REG_CC, 0);
		assert_true(wait_csts(f, NVME_CSTS_RDY, 0, 2000));
		enable(f, QENTRIES);
	}
}

/* The window holding the buffers goes away (DMA_UNMAP): the controller
 * can't read them and does nothing (every access goes through the DMA
 * API: nothing dangles); mapped again, it looks again and carries on. */
static void test_dbbuf_unmap(void **state)
{
	struct fx *f = *state;
	struct shadow s = {XTRA_IOVA, XTRA_IOVA + 0x1000, 0, 0};
	struct nvme_sqe c = rw_cmd(NVME_CMD_READ, 0, 1, DATA_IOVA, 0);
	const uint32_t rw = MU_DMA_MAP_FLAG_READ | MU_DMA_MAP_FLAG_WRITE;
	struct nvme_cqe e;

	create_qpair(f, 1, SQ1_IOVA, CQ1_IOVA, 16);
	assert_int_equal(mu_client_dma_map_fd(f->c, XTRA_IOVA, XTRA_SIZE,
					      f->memfd, XTRA_OFF, rw),
			 0);
	assert_int_equal(dbbuf_config(f, s.dbs, s.eis), 0);
	io_round(f, &s, 1, 0, 5, 2, 9);
	assert_true(wait_ei(f, &s, 2, f->sq[1].tail, 2000));

	assert_int_equal(mu_client_dma_unmap(f->c, XTRA_IOVA, XTRA_SIZE), 0);
	c.cid = 0x77;
	memcpy(gp(f, SQ1_IOVA + 64ull * f->sq[1].tail), &c, sizeof(c));
	f->sq[1].tail = (f->sq[1].tail + 1) % f->sq[1].size;
	*db_entry(f, s.dbs, 2) = f->sq[1].tail;
	wr32(f, NVME_SQ_TDBL(1), f->sq[1].tail);
	assert_int_equal(sh_reap(f, &s, 1, &e, 200), -ETIMEDOUT);

	assert_int_equal(mu_client_dma_map_fd(f->c, XTRA_IOVA, XTRA_SIZE,
					      f->memfd, XTRA_OFF, rw),
			 0);
	assert_int_equal(sh_reap(f, &s, 1, &e, 2000), 0);
	assert_int_equal(e.cid, 0x77);
	assert_int_equal(e.status >> 1, 0);
	io_round(f, &s, 1, 64, 12, 4, 10);
}

/* INTx carries the interrupts: the level must drop once the host has
 * consumed the CQ, so the controller asks for every CQ head doorbell
 * (EventIdx follows the head; with MSI-X it doesn't ask), and an UNMASK
 * after the host consumed everything is quiet. */
static void test_dbbuf_intx(void **state)
{
	struct fx *f = *state;
	struct shadow s = {DBS_IOVA, EIS_IOVA, 0, 0};
	struct nvme_sqe c = rw_cmd(NVME_CMD_READ, 0, 1, DATA_IOVA, 0);
	struct nvme_cqe e;
	int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);

	assert_true(efd >= 0);
	create_qpair(f, 1, SQ1_IOVA, CQ1_IOVA, 16);
	assert_int_equal(dbbuf_config(f, DBS_IOVA, EIS_IOVA), 0);
	assert_int_equal(mu_client_irq_disable(f->c, MU_PCI_MSIX_IRQ_INDEX), 0);
	assert_int_equal(mu_client_irq_set_eventfds(f->c, MU_PCI_INTX_IRQ_INDEX,
						    0, 1, &efd),
			 0);
	for (uint16_t i = 0; i < 20; i++) {
		bool quiet = false;

		c.cid = i;
		s.rings = 0;
		sh_submit(f, &s, 1, &c);
		assert_true(eventfd_wait(efd, 5000) >= 1); /* the level rose */
		assert_int_equal(sh_reap(f, &s, 1, &e, 2000), 0);
		assert_int_equal(e.cid, i);
		assert_int_equal(e.status >> 1, 0);
		/* SQ tail and CQ head both rang: EventIdx asked for both. */
		assert_int_equal(s.rings, 2);
		/* The doorbell only nudges: the level drops once a worker
		 * read the head, so UNMASK is quiet, soon. */
		for (int tries = 0; tries < 100 && !quiet; tries++) {
			assert_int_equal(
				mu_client_irq_mask(f->c, MU_PCI_INTX_IRQ_INDEX,
						   0, 1, false),
				0);
			quiet = eventfd_wait(efd, 50) == 0;
		}
		assert_true(quiet);
	}
	assert_true(wait_ei(f, &s, 3, f->cq[1].head, 2000));
	assert_int_equal(mu_client_irq_disable(f->c, MU_PCI_INTX_IRQ_INDEX), 0);
	close(efd);
}

/* --no-shadow-doorbells: not offered (OACS bit 8 clear), the opcode is
 * invalid, and the buffers are never touched. */
static void test_dbbuf_off(void **state)
{
	struct fx *f = *state;
	struct nvme_sqe rd = rw_cmd(NVME_CMD_READ, 0, 1, DATA_IOVA, 0);
	uint16_t oacs;

	assert_int_equal(identify(f, NVME_CNS_CTRL, 0, DATA_IOVA), 0);
	memcpy(&oacs, gp(f, DATA_IOVA) + NVME_IDC_OACS, 2);
	assert_false(oacs & NVME_OACS_DBBUF);
	create_qpair(f, 1, SQ1_IOVA, CQ1_IOVA, 16);
	memset(gp(f, DBS_IOVA), 0, 4096);
	memset(gp(f, EIS_IOVA), 0, 4096);
	assert_int_equal(dbbuf_config(f, DBS_IOVA, EIS_IOVA),
			 ST(NVME_SC_INVALID_OPCODE));
	for (int i = 0; i < 4; i++)
		assert_int_equal(exec(f, 1, &rd, NULL), 0);
	for (unsigned idx = 0; idx < 10; idx++) {
		assert_int_equal(*db_entry(f, DBS_IOVA, idx), 0);
		assert_int_equal(*db_entry(f, EIS_IOVA, idx), 0);
	}
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_dbbuf_io, fx_setup,
						fx_teardown),
		cmocka_unit_test_setup_teardown(test_dbbuf_ping_pong,
						fx_setup_threads, fx_teardown),
		cmocka_unit_test_setup_teardown(test_dbbuf_poll, fx_setup_poll,
						fx_teardown),
		cmocka_unit_test_setup_teardown(test_dbbuf_poll_unmap,
						fx_setup_poll, fx_teardown),
		cmocka_unit_test(test_poll_us_option),
		cmocka_unit_test_setup_teardown(test_dbbuf_doorbell_is_a_nudge,
						fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_dbbuf_message_dma,
						fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_dbbuf_bad_prps, fx_setup,
						fx_teardown),
		cmocka_unit_test_setup_teardown(test_dbbuf_bad_values, fx_setup,
						fx_teardown),
		cmocka_unit_test_setup_teardown(test_dbbuf_reset, fx_setup,
						fx_teardown),
		cmocka_unit_test_setup_teardown(test_dbbuf_unmap, fx_setup,
						fx_teardown),
		cmocka_unit_test_setup_teardown(test_dbbuf_intx, fx_setup,
						fx_teardown),
		cmocka_unit_test_setup_teardown(test_dbbuf_off,
						fx_setup_no_dbbuf, fx_teardown),
	};

	return nvme_run_tests(argc, argv, "nvme-dbbuf", tests,
			      sizeof(tests) / sizeof(tests[0]));
}
