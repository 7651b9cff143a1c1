/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * dbbuf.c - Doorbell Buffer Config (NVMe 1.3+, admin opcode 7Ch; 1.4
 * section 5.8), "shadow doorbells": the host gives two pages of its
 * memory; it writes each new SQ tail / CQ head in the Shadow Doorbell
 * buffer and only writes the real doorbell when the value passes the
 * EventIdx the controller left in the other buffer (Linux's
 * nvme_dbbuf_need_event(), the virtio event index rule). Through
 * vfio-user every doorbell write is a message, so the fewer the better.
 *
 * Layout: entry 2 * qid (SQ tail) and 2 * qid + 1 (CQ head), 4 << DSTRD
 * bytes apart, as the doorbell registers. Only I/O queues are shadowed:
 * Linux never updates the admin queue's entries (nvme_dbbuf_init() skips
 * qid 0) and SPDK's vfio-user target reads them for I/O queues only; the
 * admin queue keeps its doorbell registers.
 *
 * Reading: a worker looks when something may have moved - a doorbell
 * write, the last known entry of an SQ fetched (that worker looks itself
 * before running it), a command finished while some EventIdx lagged
 * (the host then adds entries without ringing), a DMA map or resume - it
 * reads the shadow values of every live queue, applies them with exactly
 * the checks a doorbell write gets (regs.c: a bad value is ignored and
 * reported as an asynchronous event), then writes
 * EventIdx where it would otherwise miss news - an SQ it fetched
 * everything from, a CQ with no free slot, every CQ while INTx carries
 * the interrupts (the level drops on the head) - and reads once more
 * after a full barrier: the host writes its value, then reads EventIdx
 * (a full barrier too), so either it sees our EventIdx and rings, or we
 * see its value. One worker reads at a time, so values are applied in
 * the order they were read. A value that did not change since the last
 * read is not applied again (one event per bad value, not one per look).
 *
 * Polling (--poll-us, queue.c): while SQ tails keep moving, SQ EventIdx
 * is not written (the host stops ringing) and one idle worker reads the
 * tails in a loop (nvme_dbbuf_poll); when they stay still for poll_us the
 * next look writes EventIdx as above.
 *
 * A doorbell write on a shadowed queue is not applied: with posted
 * writes it may arrive after the host moved on in the buffer, and the
 * tail must never go back. It is range checked and makes a worker look.
 *
 * Guest memory is only touched per access through libmuser's DMA API
 * (nvme_guest_read32/write32: a single load or store where mapped, a
 * message elsewhere) by a worker that holds a busy count, so an unmap
 * waits for it and no pointer outlives the access. The buffers are
 * forgotten on controller reset (CC.EN 1 -> 0), shutdown and device
 * reset; `gen` makes a look that raced with that drop what it read.
 */
#include <inttypes.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "ctrl.h"
#include "sample.h"

#define INVALID_FIELD (NVME_STATUS(0, NVME_SC_INVALID_FIELD) | NVME_DNR)
#define EI_UNKNOWN 0xffffffffu

static uint64_t stride(const struct nvme_ctrl *c)
{
	return 4ull << ((c->cap >> 32) & 0xf); /* CAP.DSTRD */
}

/* Bytes of each buffer the controller's doorbells use. */
static uint64_t span(const struct nvme_ctrl *c)
{
	return 2ull * (c->max_ioq + 1) * stride(c);
}

static bool queue_valid_locked(const struct nvme_ctrl *c, unsigned idx)
{
	unsigned qid = idx / 2;

	return (idx & 1) ? c->cq[qid].valid : c->sq[qid].valid;
}

static uint32_t queue_gen_locked(const struct nvme_ctrl *c, unsigned idx)
{
	return (idx & 1) ? c->cq[idx / 2].gen : c->sq[idx / 2].gen;
}

/* The value the controller holds for doorbell idx. */
static uint32_t db_value_locked(const struct nvme_ctrl *c, unsigned idx)
{
	return (idx & 1) ? c->cq[idx / 2].head : c->sq[idx / 2].tail;
}

bool nvme_dbbuf_live_locked(const struct nvme_ctrl *c, unsigned idx)
{
	const struct nvme_dbbuf *d = &c->db;

	/* A queue deleted and created again since is not live. */
	return d->on && idx >= 2 && idx < NVME_NR_DB && d->live[idx] &&
	       d->qgen[idx] == queue_gen_locked(c, idx) &&
	       queue_valid_locked(c, idx);
}

void nvme_dbbuf_kick_locked(struct nvme_ctrl *c)
{
	if (!c->db.on)
		return;
	c->db.poll = true;
	nvme_wake_one_locked(c);
}

bool nvme_dbbuf_lagging_locked(const struct nvme_ctrl *c)
{
	const struct nvme_dbbuf *d = &c->db;

	if (!d->on)
		return false;
	for (unsigned qid = 1; qid <= c->max_ioq; qid++) {
		const struct nvme_cq *cq = &c->cq[qid];

		if (nvme_dbbuf_live_locked(c, 2 * qid) &&
		    d->ei[2 * qid] != c->sq[qid].tail)
			return true;
		if (nvme_dbbuf_live_locked(c, 2 * qid + 1) && cq->nr_sq &&
		    nvme_cq_free_locked(cq) == 0)
			return true;
	}
	return false;
}

bool nvme_dbbuf_want_refresh_locked(const struct nvme_ctrl *c)
{
	return c->db.on && c->db.poll && !c->db.refreshing;
}

void nvme_dbbuf_reset_locked(struct nvme_ctrl *c)
{
	struct nvme_dbbuf *d = &c->db;

	d->on = false;
	d->poll = false;
	d->poll_mode = false;
	d->no_polling = false;
	d->gen++;
	memset(d->live, 0, sizeof(d->live));
}

/* The doorbells worth reading: live ones. */
static unsigned live_list_locked(struct nvme_ctrl *c, unsigned *list)
{
	unsigned n = 0;

	for (unsigned idx = 2; idx < 2 * (c->max_ioq + 1); idx++)
		if (nvme_dbbuf_live_locked(c, idx))
			list[n++] = idx;
	return n;
}

/* Read the live doorbells without the lock and apply what changed;
 * lock held on entry and exit. False when the buffers went away. */
static bool read_apply_locked(struct nvme_ctrl *c, uint32_t gen, bool *intx)
{
	struct nvme_dbbuf *d = &c->db;
	unsigned list[NVME_NR_DB], n = live_list_locked(c, list);
	uint32_t val[NVME_NR_DB];
	bool ok[NVME_NR_DB];
	uint64_t dbs = d->dbs, st = stride(c);

	pthread_mutex_unlock(&c->lock);
	for (unsigned i = 0; i < n; i++)
		ok[i] = nvme_guest_read32(c, dbs + list[i] * st, &val[i]) == 0;
	pthread_mutex_lock(&c->lock);
	if (d->gen != gen || !d->on || !nvme_may_fetch_locked(c))
		return false;
	for (unsigned i = 0; i < n; i++) {
		unsigned idx = list[i], qid = idx / 2;

		/* Unreadable (the window is being unmapped): the dma_map
		 * callback's resume makes us look again. Unchanged: done. */
		if (!ok[i] || !nvme_dbbuf_live_locked(c, idx) ||
		    val[i] == d->seen[idx])
			continue;
		d->seen[idx] = val[i];
		if (idx & 1) {
			nvme_cq_head_locked(c, qid, val[i], intx);
		} else if (nvme_sq_tail_locked(c, qid, val[i]) == 0) {
			d->news_us = nvme_now_us();
			if (c->poll_us && !d->no_polling)
				d->poll_mode = true;
		}
	}
	return true;
}

/* Where the host must ring the next time, and with what EventIdx. */
static unsigned eventidx_wanted_locked(struct nvme_ctrl *c, bool by_intx,
				       unsigned *list, uint32_t *val)
{
	struct nvme_dbbuf *d = &c->db;
	unsigned n = 0;

	for (unsigned qid = 1; qid <= c->max_ioq; qid++) {
		const struct nvme_sq *sq = &c->sq[qid];
		const struct nvme_cq *cq = &c->cq[qid];
		unsigned si = 2 * qid, ci = 2 * qid + 1;

		/* Everything fetched: ring when you add one (unless a
		 * worker polls: then we see it without). */
		if (nvme_dbbuf_live_locked(c, si) && sq->head == sq->tail &&
		    d->ei[si] != sq->tail && !d->poll_mode) {
			list[n] = si;
			val[n++] = sq->tail;
		}
		/* No room to post, or INTx: ring when you consume. */
		if (nvme_dbbuf_live_locked(c, ci) &&
		    ((cq->nr_sq && nvme_cq_free_locked(cq) == 0) ||
		     (by_intx && cq->ien)) &&
		    d->ei[ci] != cq->head) {
			list[n] = ci;
			val[n++] = cq->head;
		}
	}
	for (unsigned i = 0; i < n; i++)
		d->ei[list[i]] = val[i];
	return n;
}

bool nvme_dbbuf_refresh_locked(struct nvme_ctrl *c)
{
	struct nvme_dbbuf *d = &c->db;
	uint32_t gen = d->gen, val[NVME_NR_DB];
	unsigned list[NVME_NR_DB], n;
	uint64_t eis = d->eis, st = stride(c);
	bool intx = false, by_intx;

	d->poll = false;
	d->refreshing = true;
	pthread_mutex_unlock(&c->lock);
	/* Not under our lock: the library has its own (see regs.c). */
	by_intx = mu_irq_active_index(c->dev) != MU_PCI_MSIX_IRQ_INDEX;
	pthread_mutex_lock(&c->lock);
	if (!read_apply_locked(c, gen, &intx))
		goto out;
	n = eventidx_wanted_locked(c, by_intx, list, val);
	if (n == 0)
		goto out;
	pthread_mutex_unlock(&c->lock);
	for (unsigned i = 0; i < n; i++)
		if (nvme_guest_write32(c, eis + list[i] * st, val[i]) < 0)
			val[i] = EI_UNKNOWN;
	/* EventIdx out before the values are read again (the host: value
	 * out before it reads EventIdx), else both may miss the other. */
	atomic_thread_fence(memory_order_seq_cst);
	pthread_mutex_lock(&c->lock);
	for (unsigned i = 0; i < n; i++)
		if (val[i] == EI_UNKNOWN && d->gen == gen)
			d->ei[list[i]] = EI_UNKNOWN; /* try again next time */
	if (d->gen == gen)
		read_apply_locked(c, gen, &intx);
out:
	d->refreshing = false;
	/* Something asked for a look while this one ran: one worker takes
	 * it (new entries or CQ room already woke workers above). */
	if (d->poll)
		nvme_wake_one_locked(c);
	return intx;
}

int64_t nvme_now_us(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000000 + t.tv_nsec / 1000;
}

unsigned nvme_dbbuf_watch_locked(const struct nvme_ctrl *c, uint64_t *at,
				 uint32_t *seen)
{
	const struct nvme_dbbuf *d = &c->db;
	unsigned n = 0;

	for (unsigned qid = 1; qid <= c->max_ioq; qid++) {
		if (!nvme_dbbuf_live_locked(c, 2 * qid))
			continue;
		at[n] = d->dbs + 2 * qid * stride(c);
		seen[n++] = d->seen[2 * qid];
	}
	return n;
}

static void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#endif
}

int nvme_dbbuf_poll(struct nvme_ctrl *c, unsigned n, const uint64_t *at,
		    const uint32_t *seen, const bool *stop, int64_t until_us)
{
	const uint32_t *p[NVME_MAX_IOQ];
	int64_t yield_at = nvme_now_us() + 50;

	/* One translation per tail, not one per read: the pointers stay
	 * valid until we return (see nvme_guest_map32 in ctrl.h). */
	for (unsigned i = 0; i < n; i++)
		if (!(p[i] = nvme_guest_map32(c, at[i])))
			return -1;
	for (unsigned round = 1;; round++) {
		for (unsigned i = 0; i < n; i++)
			if (__atomic_load_n(p[i], __ATOMIC_ACQUIRE) != seen[i])
				return 1;
		/* Woken, a DMA window going away (dev_dma_unmap waits for
		 * us), or a worker runs a command: it looks before it
		 * sleeps, and the CPU is better left to it. */
		if (__atomic_load_n(stop, __ATOMIC_ACQUIRE) ||
		    atomic_load(&c->nr_dying) ||
		    atomic_load_explicit(&c->running, memory_order_relaxed))
			return 0;
		/* Now and then the clock, and every 50 us the CPU for
		 * whoever needs it (QEMU's threads may share it with us). */
		if (round % 64 == 0) {
			int64_t now = nvme_now_us();

			if (now >= until_us)
				return 0;
			if (now >= yield_at) {
				sched_yield();
				yield_at = now + 50;
			}
		}
		cpu_relax();
	}
}

void nvme_dbbuf_queue_created(struct nvme_ctrl *c, unsigned idx)
{
	struct nvme_dbbuf *d = &c->db;
	uint64_t dbs, eis;
	uint32_t gen, qgen;
	int r;

	pthread_mutex_lock(&c->lock);
	if (!d->on || idx < 2 || idx >= NVME_NR_DB) {
		pthread_mutex_unlock(&c->lock);
		return;
	}
	/* Its entries may hold an older queue's values: until they are
	 * reset, doorbell writes count (the host sees no queue yet). */
	d->live[idx] = false;
	gen = d->gen;
	qgen = queue_gen_locked(c, idx);
	dbs = d->dbs + idx * stride(c);
	eis = d->eis + idx * stride(c);
	pthread_mutex_unlock(&c->lock);
	r = nvme_guest_write32(c, dbs, 0);
	if (r == 0)
		r = nvme_guest_write32(c, eis, 0);
	pthread_mutex_lock(&c->lock);
	if (r == 0 && d->gen == gen && queue_gen_locked(c, idx) == qgen &&
	    queue_valid_locked(c, idx) && db_value_locked(c, idx) == 0) {
		d->live[idx] = true;
		d->qgen[idx] = qgen;
		d->seen[idx] = 0;
		d->ei[idx] = 0;
	}
	pthread_mutex_unlock(&c->lock);
}

/* The guest range [iova, iova + len) is in the client's maps with prot. */
static bool reachable(struct nvme_ctrl *c, uint64_t iova, uint64_t len,
		      uint32_t prot)
{
	struct mu_sg sg[4];

	return iova + len > iova &&
	       mu_dma_addr_to_sg(c->dev, iova, len, prot, sg, 4) > 0;
}

int nvme_dbbuf_config(struct nvme_worker *w, struct nvme_cmd *cmd)
{
	struct nvme_ctrl *c = w->c;
	struct nvme_dbbuf *d = &c->db;
	uint64_t dbs = cmd->sqe.prp1, eis = cmd->sqe.prp2;
	uint64_t page, len, st = stride(c);
	uint32_t val[NVME_NR_DB], qgen[NVME_NR_DB], gen;
	bool valid[NVME_NR_DB];
	unsigned nr;
	int r = 0;

	pthread_mutex_lock(&c->lock);
	page = (uint64_t)NVME_PAGE << NVME_CC_MPS(c->cc);
	len = span(c);
	nr = 2 * (c->max_ioq + 1);
	pthread_mutex_unlock(&c->lock);
	/* 5.8: each PRP is the address of a memory page (CC.MPS), so its
	 * offset must be 0; like QEMU and SPDK we answer Invalid Field
	 * for one that isn't, for 0, and for buffers that overlap (the
	 * host's values and our EventIdx in one place). The device must
	 * reach both: read the shadow values (and write their starting
	 * values), write EventIdx. */
	if (dbs == 0 || eis == 0 || (dbs & (page - 1)) || (eis & (page - 1)) ||
	    (dbs < eis + len && eis < dbs + len) ||
	    !reachable(c, dbs, len, MU_DMA_READ | MU_DMA_WRITE) ||
	    !reachable(c, eis, len, MU_DMA_WRITE))
		return INVALID_FIELD;

	/* Stop using the old buffers (if any) while the new ones are set
	 * up: the queues that exist start from their current values. */
	pthread_mutex_lock(&c->lock);
	nvme_dbbuf_reset_locked(c);
	gen = d->gen;
	for (unsigned idx = 2; idx < nr; idx++) {
		valid[idx] = queue_valid_locked(c, idx);
		val[idx] = db_value_locked(c, idx);
		qgen[idx] = queue_gen_locked(c, idx);
	}
	pthread_mutex_unlock(&c->lock);
	for (unsigned idx = 2; idx < nr && r == 0; idx++) {
		if (!valid[idx])
			continue;
		r = nvme_guest_write32(c, dbs + idx * st, val[idx]);
		if (r == 0)
			r = nvme_guest_write32(c, eis + idx * st, val[idx]);
	}
	if (r < 0)
		return NVME_STATUS(0, NVME_SC_DATA_XFER_ERROR);

	pthread_mutex_lock(&c->lock);
	if (d->gen != gen || !(c->csts & NVME_CSTS_RDY) || c->disabling ||
	    c->shutting) {
		/* Reset or shut down meanwhile: this completion is dropped
		 * or the host doesn't expect it to count. */
		pthread_mutex_unlock(&c->lock);
		return NVME_STATUS(0, NVME_SC_CMD_SEQ_ERROR);
	}
	d->on = true;
	d->dbs = dbs;
	d->eis = eis;
	for (unsigned idx = 2; idx < nr; idx++) {
		/* A queue created or deleted meanwhile (another admin
		 * command on another worker) keeps its doorbell register. */
		d->live[idx] = valid[idx] && queue_valid_locked(c, idx) &&
			       queue_gen_locked(c, idx) == qgen[idx] &&
			       db_value_locked(c, idx) == val[idx];
		d->qgen[idx] = qgen[idx];
		d->seen[idx] = val[idx];
		d->ei[idx] = val[idx];
	}
	nvme_dbbuf_kick_locked(c);
	pthread_mutex_unlock(&c->lock);
	if (!c->quiet)
		printf("%s: shadow doorbells enabled (dbbuf 0x%" PRIx64
		       ", eventidx 0x%" PRIx64 ")\n",
		       sample_prog, dbs, eis);
	return 0;
}
