/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * migrate.c - live migration of muser-dma-test (migration v2).
 *
 * What moves: BAR4's 64 KiB (pre-copied: each PRE_COPY round sends the
 * pages that differ from what was sent last, found by comparing against
 * that copy, since the client writes pages 1-15 through its own mapping
 * and the device never sees those writes), then at STOP_COPY the pages
 * still differing, the registers, and the job state. Jobs: the library
 * quiesces the device before every state change, so a job running at
 * RUNNING -> STOP completes first (its DMA is in the source's dirty log);
 * a START written while stopped stays queued, travels in the state, and
 * runs once the destination is RUNNING. Interrupt state is IRQ_CTRL and
 * STATUS; the destination recomputes its INTx level from them, and the
 * client re-arms its own eventfds there.
 *
 * The stream is samples/common/migstream's record format; a stream that
 * is truncated, oversized, corrupt or lies about its contents is refused
 * on the MIG_DATA_WRITE that shows it (EINVAL) and at RESUMING -> STOP,
 * and nothing of it reaches the device: it is loaded into a staging copy
 * committed only when the whole stream checked out.
 */
#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dma-test.h"
#include "dmat.h"
#include "migstream.h"
#include "sample.h"

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the dma-test state record is little-endian; add byte swapping"
#endif

#define FORMAT 1u		     /* stream format version (BEGIN) */
#define REC_PAGE (MS_REC_DEVICE + 0) /* le32 page index + 4096 bytes */
#define REC_REGS (MS_REC_DEVICE + 1) /* struct saved */
#define PAGE 4096u
#define NPAGES (DMAT_BAR4_SIZE / PAGE)

/* The registers and the job, as they travel (version 1). */
struct saved {
	uint64_t src, dst;
	uint32_t len, op, fill, status, result, irq_ctrl, completed, scratch,
		bar4_traps;
	uint32_t job_queued; /* 1: a START waits for RUNNING */
	uint64_t job_src, job_dst;
	uint32_t job_len, job_op, job_fill;
	uint32_t reserved; /* 0 */
} __attribute__((packed));

static const struct ms_type types[] = {
	{REC_PAGE, 1, 4 + PAGE, 4 + PAGE},
	{REC_REGS, 1, sizeof(struct saved), sizeof(struct saved)},
};

struct dmat_mig {
	enum mu_mig_state state; /* as the library last told us */

	/* saving */
	struct ms_writer out;
	bool final_queued;   /* STOP_COPY: registers and END are queued */
	uint16_t sent_pages; /* bit i: page i was sent at least once */
	uint8_t sent[DMAT_BAR4_SIZE]; /* BAR4 as last sent */

	/* loading */
	struct ms_loader in;
	uint16_t staged_pages;
	bool regs_loaded;
	struct saved regs;
	uint8_t staged[DMAT_BAR4_SIZE];
};

static const char *const state_name[] = {
	[MU_MIG_STATE_ERROR] = "ERROR",
	[MU_MIG_STATE_STOP] = "STOP",
	[MU_MIG_STATE_RUNNING] = "RUNNING",
	[MU_MIG_STATE_STOP_COPY] = "STOP_COPY",
	[MU_MIG_STATE_RESUMING] = "RESUMING",
	[MU_MIG_STATE_PRE_COPY] = "PRE_COPY",
};

/* ---- loading ------------------------------------------------------------ */

static bool regs_valid(const struct saved *s)
{
	uint32_t known = DMAT_STATUS_BUSY | DMAT_STATUS_DONE |
			 DMAT_STATUS_ERROR | DMAT_STATUS_CODE_MASK;
	uint32_t code =
		(s->status & DMAT_STATUS_CODE_MASK) >> DMAT_STATUS_CODE_SHIFT;

	return s->reserved == 0 && s->job_queued <= 1 &&
	       s->job_queued == !!(s->status & DMAT_STATUS_BUSY) &&
	       !(s->status & ~known) && code <= DMAT_ERR_ABORTED &&
	       (code == 0) == !(s->status & DMAT_STATUS_ERROR) &&
	       !(s->irq_ctrl & ~(DMAT_IRQ_EN | DMAT_IRQ_VECTOR_MASK));
}

static int load_record(void *opaque, uint16_t type, const void *p, uint32_t len)
{
	struct dmat_mig *m = opaque;
	uint32_t idx;

	(void)len; /* exact, checked against types[] */
	if (type == REC_PAGE) {
		memcpy(&idx, p, 4);
		if (idx >= NPAGES)
			return -EINVAL;
		memcpy(m->staged + idx * PAGE, (const uint8_t *)p + 4, PAGE);
		m->staged_pages |= (uint16_t)(1u << idx);
		return 0;
	}
	/* REC_REGS: once, and only a state this device could have been in */
	if (m->regs_loaded)
		return -EINVAL;
	memcpy(&m->regs, p, sizeof(m->regs));
	if (!regs_valid(&m->regs))
		return -EINVAL;
	m->regs_loaded = true;
	return 0;
}

/* RESUMING -> STOP: the whole stream checked out, make it the device. */
static int commit(struct dmat *d, struct dmat_mig *m)
{
	uint8_t *mem = mu_region_mem(d->dev, MU_PCI_BAR4_REGION_INDEX);
	const struct saved *s = &m->regs;
	int r = ms_finish(&m->in);

	if (r == 0 && !m->regs_loaded) {
		m->in.why = "no register record";
		r = -EINVAL;
	}
	if (r < 0) {
		fprintf(stderr,
			"%s: migration: incoming state refused (%s after %llu "
			"bytes); device state unchanged\n",
			sample_prog, m->in.why ? m->in.why : "stream truncated",
			(unsigned long long)m->in.total);
		return r;
	}
	if (!mem)
		return -EIO;
	pthread_mutex_lock(&d->lock);
	for (unsigned i = 0; i < NPAGES; i++)
		if (m->staged_pages & (1u << i))
			memcpy(mem + i * PAGE, m->staged + i * PAGE, PAGE);
	d->src = s->src;
	d->dst = s->dst;
	d->len = s->len;
	d->op = s->op;
	d->fill = s->fill;
	d->status = s->status;
	d->result = s->result;
	d->irq_ctrl = s->irq_ctrl;
	d->completed = s->completed;
	d->scratch = s->scratch;
	d->bar4_traps = s->bar4_traps;
	d->job = (struct job){s->job_src, s->job_dst, s->job_len, s->job_op,
			      s->job_fill};
	d->state = s->job_queued ? JOB_QUEUED : JOB_IDLE;
	pthread_mutex_unlock(&d->lock);
	ms_loader_free(&m->in);
	dmat_update_intx(d);
	return 0;
}

/* ---- saving ------------------------------------------------------------- */

static int begin_save(struct dmat_mig *m)
{
	struct ms_begin b = {DMAT_MAGIC, FORMAT};

	ms_writer_reset(&m->out);
	m->final_queued = false;
	m->sent_pages = 0;
	return ms_put(&m->out, MS_REC_BEGIN, 1, &b, sizeof(b), NULL, 0);
}

/* Queue every BAR4 page that differs from the copy last sent. The copy
 * in m->sent is taken first and sent from, so a page changing meanwhile
 * (the client writes through its mapping) shows up in the next round. */
static int queue_changed_pages(struct dmat *d, struct dmat_mig *m)
{
	const uint8_t *mem = mu_region_mem(d->dev, MU_PCI_BAR4_REGION_INDEX);

	if (!mem)
		return -EIO;
	for (uint32_t i = 0; i < NPAGES; i++) {
		uint8_t *copy = m->sent + i * PAGE;
		int r;

		if ((m->sent_pages & (1u << i)) &&
		    memcmp(copy, mem + i * PAGE, PAGE) == 0)
			continue;
		memcpy(copy, mem + i * PAGE, PAGE);
		m->sent_pages |= (uint16_t)(1u << i);
		r = ms_put(&m->out, REC_PAGE, 1, &i, 4, copy, PAGE);
		if (r < 0)
			return r;
	}
	return 0;
}

static int queue_final(struct dmat *d, struct dmat_mig *m)
{
	struct saved s = {0};
	int r = queue_changed_pages(d, m);

	if (r < 0)
		return r;
	pthread_mutex_lock(&d->lock);
	s.src = d->src;
	s.dst = d->dst;
	s.len = d->len;
	s.op = d->op;
	s.fill = d->fill;
	s.status = d->status;
	s.result = d->result;
	s.irq_ctrl = d->irq_ctrl;
	s.completed = d->completed;
	s.scratch = d->scratch;
	s.bar4_traps = d->bar4_traps;
	/* quiesced and stopped: never JOB_RUNNING here */
	s.job_queued = d->state == JOB_QUEUED;
	if (s.job_queued) {
		s.job_src = d->job.src;
		s.job_dst = d->job.dst;
		s.job_len = d->job.len;
		s.job_op = d->job.op;
		s.job_fill = d->job.fill;
	}
	pthread_mutex_unlock(&d->lock);
	r = ms_put(&m->out, REC_REGS, 1, &s, sizeof(s), NULL, 0);
	if (r == 0)
		r = ms_put(&m->out, MS_REC_END, 1, NULL, 0, NULL, 0);
	m->final_queued = true;
	return r;
}

ssize_t dmat_mig_read(void *opaque, void *buf, size_t len)
{
	struct dmat *d = opaque;
	struct dmat_mig *m = d->mig;
	int r = 0;

	if (!m)
		return -EINVAL;
	/* Nothing queued: a PRE_COPY round looks at BAR4 again (0 bytes =
	 * nothing changed since the last round); STOP_COPY adds the rest
	 * and END once (then 0 = the stream is complete). */
	if (ms_pending(&m->out) == 0) {
		if (m->state == MU_MIG_STATE_PRE_COPY)
			r = queue_changed_pages(d, m);
		else if (m->state == MU_MIG_STATE_STOP_COPY && !m->final_queued)
			r = queue_final(d, m);
		else if (m->state != MU_MIG_STATE_STOP_COPY)
			return -EINVAL;
	}
	if (r < 0)
		return r;
	return (ssize_t)ms_take(&m->out, buf, len);
}

ssize_t dmat_mig_write(void *opaque, const void *buf, size_t len)
{
	struct dmat *d = opaque;
	struct dmat_mig *m = d->mig;

	if (!m || m->state != MU_MIG_STATE_RESUMING)
		return -EINVAL;
	return ms_feed_logged(&m->in, buf, len);
}

/* ---- transitions --------------------------------------------------------- */

static void set_running(struct dmat *d, bool on)
{
	pthread_mutex_lock(&d->lock);
	d->running = on;
	pthread_cond_signal(&d->wake); /* a queued job may go now */
	pthread_mutex_unlock(&d->lock);
}

/* One arc of the state machine (the library walks multi-arc requests
 * one arc at a time, with the device quiesced). */
int dmat_mig_transition(void *opaque, enum mu_mig_state to)
{
	struct dmat *d = opaque;
	struct dmat_mig *m = d->mig;
	enum mu_mig_state from;
	int r = 0;

	if (!m) {
		m = calloc(1, sizeof(*m));
		if (!m)
			return -ENOMEM;
		m->state = MU_MIG_STATE_RUNNING;
		m->in.types = types;
		m->in.ntypes = sizeof(types) / sizeof(types[0]);
		m->in.device = DMAT_MAGIC;
		m->in.format = FORMAT;
		m->in.record = load_record;
		m->in.opaque = m;
		d->mig = m;
	}
	from = m->state;
	switch (to) {
	case MU_MIG_STATE_STOP:
		if (from == MU_MIG_STATE_RESUMING)
			r = commit(d, m);
		set_running(d, false);
		break;
	case MU_MIG_STATE_RUNNING:
		set_running(d, true);
		break;
	case MU_MIG_STATE_PRE_COPY: /* from RUNNING: the device keeps going */
		r = begin_save(m);
		break;
	case MU_MIG_STATE_STOP_COPY:
		set_running(d, false);
		if (from != MU_MIG_STATE_PRE_COPY) /* else: the same stream */
			r = begin_save(m);
		break;
	case MU_MIG_STATE_RESUMING:
		ms_loader_reset(&m->in);
		m->staged_pages = 0;
		m->regs_loaded = false;
		break;
	default:
		return -EINVAL;
	}
	if (r < 0)
		return r;
	if (to != MU_MIG_STATE_STOP_COPY && to != MU_MIG_STATE_PRE_COPY)
		ms_writer_free(&m->out); /* a save ends or was abandoned */
	if (to != MU_MIG_STATE_RESUMING)
		ms_loader_free(&m->in);
	m->state = to;
	if (!d->quiet)
		printf("migration: %s -> %s\n", state_name[from],
		       state_name[to]);
	return 0;
}

void dmat_mig_free(struct dmat *d)
{
	if (!d->mig)
		return;
	ms_writer_free(&d->mig->out);
	ms_loader_free(&d->mig->in);
	free(d->mig);
	d->mig = NULL;
}
