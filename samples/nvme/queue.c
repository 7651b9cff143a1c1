/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * queue.c - the worker threads: they take commands from the submission
 * queues (round robin, NVMe 1.4 4.13), run them and post completions.
 *
 * Flow control without blocking: a worker only fetches from an SQ whose
 * CQ has a free slot, and reserves that slot, so a completion never
 * waits for room and a host that doesn't consume its CQ only stops the
 * queues that post there (the controller never overwrites an entry the
 * host has not consumed, 4.6). One worker at a time copies entries from a
 * given SQ, and the head the host sees (SQHD) only moves past an entry
 * once it has been copied, so the host can't reuse a slot too early.
 *
 * `busy` counts commands a worker holds. quiesce (main.c), CC.EN 1->0
 * and shutdown (regs.c) stop new fetches and wait for it to reach 0;
 * the worker that brings it to 0 finishes whatever waited.
 *
 * With shadow doorbells (dbbuf.c) a worker that finds nothing to do
 * first reads the buffer when something may have moved, holding a busy
 * count like a command does.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ctrl.h"
#include "sample.h"

uint32_t nvme_cq_free_locked(const struct nvme_cq *cq)
{
	uint32_t used = (cq->tail + cq->size - cq->head) % cq->size;
	uint32_t room = cq->size - 1; /* full when tail + 1 == head */

	return room > used + cq->reserved ? room - used - cq->reserved : 0;
}

bool nvme_may_fetch_locked(const struct nvme_ctrl *c)
{
	return !c->paused && !c->disabling && !c->shutting &&
	       (c->csts & NVME_CSTS_RDY) && !(c->csts & NVME_CSTS_CFS);
}

/* The next SQ with an entry we may take, -1 if none. */
static int pick_sq_locked(struct nvme_ctrl *c)
{
	unsigned n = c->max_ioq + 1;

	for (unsigned k = 0; k < n; k++) {
		unsigned q = (c->rr + k) % n;
		struct nvme_sq *sq = &c->sq[q];

		if (!sq->valid || sq->fetching || sq->deleting ||
		    sq->head == sq->tail || !c->cq[sq->cqid].valid ||
		    nvme_cq_free_locked(&c->cq[sq->cqid]) == 0)
			continue;
		c->rr = (q + 1) % n;
		return (int)q;
	}
	return -1;
}

static bool aen_ready_locked(const struct nvme_ctrl *c)
{
	return c->aen_queued && c->nr_aer > 0;
}

void nvme_cq_irq(struct nvme_ctrl *c, uint16_t iv)
{
	if (mu_irq_active_index(c->dev) == MU_PCI_MSIX_IRQ_INDEX) {
		/* 1: masked, left pending; -ENOENT: no eventfd there. */
		int r = mu_irq_trigger(c->dev, MU_PCI_MSIX_IRQ_INDEX, iv);

		if (r < 0 && r != -ENOENT && !c->quiet)
			fprintf(stderr, "%s: MSI-X %u: %s\n", sample_prog, iv,
				strerror(-r));
		return;
	}
	nvme_update_intx(c);
}

/* The controller can't reach its own queues: Controller Fatal Status
 * (3.1.6), as a real one that gets a PCIe error; the host resets it. */
static void fatal(struct nvme_ctrl *c, const char *what, int err)
{
	pthread_mutex_lock(&c->lock);
	c->csts |= NVME_CSTS_CFS;
	pthread_mutex_unlock(&c->lock);
	if (!c->quiet)
		printf("controller fatal: %s: %s\n", what, strerror(-err));
}

void nvme_complete(struct nvme_ctrl *c, struct nvme_cmd *cmd, uint16_t status)
{
	struct nvme_cq *cq = &c->cq[cmd->cqid];
	struct nvme_sq *sq = &c->sq[cmd->sqid];
	struct nvme_cqe e;
	uint64_t at;
	uint16_t iv;
	bool ien;
	int r;

	pthread_mutex_lock(&cq->post);
	pthread_mutex_lock(&c->lock);
	if (!cq->valid || cq->gen != cmd->cq_gen || c->disabling ||
	    !(c->csts & NVME_CSTS_RDY)) {
		/* A reset took the queue away: no completion (7.3.2). */
		pthread_mutex_unlock(&c->lock);
		pthread_mutex_unlock(&cq->post);
		return;
	}
	at = cq->base + (uint64_t)cq->tail * NVME_CQE_SIZE;
	e.dw0 = cmd->dw0;
	e.rsvd = 0;
	e.sqhd = (uint16_t)(sq->valid && sq->gen == cmd->sq_gen ? sq->head : 0);
	e.sqid = cmd->sqid;
	e.cid = cmd->sqe.cid;
	e.status = (uint16_t)(status << 1 | (cq->phase ? 1 : 0));
	if (++cq->tail == cq->size) {
		cq->tail = 0;
		cq->phase = !cq->phase;
	}
	cq->reserved--;
	ien = cq->ien;
	iv = cq->iv;
	if (status)
		nvme_log_error_locked(c, cmd->sqid, cmd->sqe.cid, status,
				      cmd->sqe.nsid, 0);
	pthread_mutex_unlock(&c->lock);
	r = nvme_guest_write_cqe(c, at, &e);
	pthread_mutex_unlock(&cq->post);
	if (r < 0) {
		fatal(c, "posting a completion", r);
		return;
	}
	if (ien)
		nvme_cq_irq(c, iv);
}

/* A command is done with (completed, parked or dropped); lock held.
 * Returns what to do once the lock is dropped: 1 quiesce done, 2 flush
 * for a shutdown, 4 INTx may have changed. */
static unsigned unbusy_locked(struct nvme_ctrl *c)
{
	unsigned todo = 0;

	pthread_cond_broadcast(&c->idle);
	if (--c->busy)
		return 0;
	if (c->quiesce_pending) {
		c->quiesce_pending = false;
		todo |= 1;
	}
	if (c->disabling || c->shutting) {
		if (nvme_ctrl_settle_locked(c))
			todo |= 2;
		todo |= 4;
	}
	return todo;
}

static unsigned put_locked(struct nvme_ctrl *c, const struct nvme_cmd *cmd)
{
	struct nvme_sq *sq = &c->sq[cmd->sqid];

	if (sq->valid && sq->gen == cmd->sq_gen && sq->inflight)
		sq->inflight--;
	/* The host may have added entries without ringing meanwhile (its
	 * EventIdx said we were busy): this worker looks before it sleeps
	 * (no need to wake another one for that). Where EventIdx is at the
	 * tail, the host rings for the next entry: no look needed. */
	if (nvme_dbbuf_lagging_locked(c))
		c->db.poll = true;
	return unbusy_locked(c);
}

static void after_put(struct nvme_ctrl *c, unsigned todo)
{
	if (todo & 2)
		nvme_shutdown_done(c, nvme_backing_flush(&c->b));
	if (todo & 4)
		nvme_update_intx(c);
	if (todo & 1)
		mu_dev_quiesce_done(c->dev, 0);
}

/* after_put() for a caller holding the lock: dropped meanwhile. */
static void after_put_locked(struct nvme_ctrl *c, unsigned todo)
{
	if (!todo)
		return;
	pthread_mutex_unlock(&c->lock);
	after_put(c, todo);
	pthread_mutex_lock(&c->lock);
}

/* Complete the oldest Asynchronous Event Request with the queued event;
 * lock held on entry and exit. */
static void deliver_aen_locked(struct nvme_ctrl *c, struct nvme_cmd *cmd)
{
	unsigned todo;

	memset(cmd, 0, sizeof(*cmd));
	cmd->sqe.cid = c->aer_cid[0];
	memmove(c->aer_cid, c->aer_cid + 1,
		(c->nr_aer - 1) * sizeof(c->aer_cid[0]));
	c->nr_aer--;
	cmd->dw0 = c->aen_pending;
	cmd->sq_gen = c->sq[0].gen;
	cmd->cq_gen = c->cq[0].gen;
	c->aen_queued = false;
	c->aen_error_masked = true;
	c->busy++;
	pthread_mutex_unlock(&c->lock);
	nvme_complete(c, cmd, 0);
	pthread_mutex_lock(&c->lock);
	todo = put_locked(c, cmd);
	after_put_locked(c, todo);
}

/* Take the entry at the head of SQ qid, run it and complete it; lock
 * held on entry and exit. */
static void run_one_locked(struct nvme_worker *w, unsigned qid)
{
	struct nvme_ctrl *c = w->c;
	struct nvme_sq *sq = &c->sq[qid];
	struct nvme_cmd cmd = {0};
	uint32_t slot = sq->head;
	uint64_t at = sq->base + (uint64_t)slot * NVME_SQE_SIZE;
	unsigned todo;
	bool intx = false;
	int r, st;

	sq->fetching = true;
	sq->inflight++;
	c->cq[sq->cqid].reserved++;
	c->busy++;
	atomic_fetch_add(&c->running, 1);
	cmd.sqid = (uint16_t)qid;
	cmd.cqid = sq->cqid;
	cmd.sq_gen = sq->gen;
	cmd.cq_gen = c->cq[sq->cqid].gen;
	pthread_mutex_unlock(&c->lock);

	r = nvme_guest_read(c, at, &cmd.sqe, sizeof(cmd.sqe));

	pthread_mutex_lock(&c->lock);
	if (sq->gen == cmd.sq_gen) {
		sq->fetching = false;
		if (r == 0)
			sq->head = (slot + 1) % sq->size;
		/* More entries: let another worker take the next one. */
		if (sq->head != sq->tail)
			nvme_wake_one_locked(c);
		/* The last one we know of: re-read the shadow tail and set
		 * EventIdx now, so that the host rings for the next one while
		 * this one runs (cheaper than waking a worker for it). A look
		 * under way already looks again when done (poll). */
		else if (nvme_dbbuf_live_locked(c, 2 * qid)) {
			c->db.poll = true;
			if (!c->db.refreshing && nvme_may_fetch_locked(c))
				intx = nvme_dbbuf_refresh_locked(c);
		}
	}
	pthread_mutex_unlock(&c->lock);
	if (intx)
		nvme_update_intx(c);
	if (r < 0) {
		fatal(c, "fetching a command", r);
		st = -1;
	} else if (qid == 0) {
		st = nvme_admin_exec(w, &cmd);
	} else {
		st = nvme_io_exec(w, &cmd);
	}
	if (st >= 0)
		nvme_complete(c, &cmd, (uint16_t)st);
	pthread_mutex_lock(&c->lock);
	if (r < 0 && c->cq[cmd.cqid].gen == cmd.cq_gen)
		c->cq[cmd.cqid].reserved--;
	todo = put_locked(c, &cmd);
	atomic_fetch_sub(&c->running, 1);
	after_put_locked(c, todo);
}

/* Read the shadow doorbells, holding a busy count so that quiesce (and a
 * DMA unmap behind it) waits for the accesses; lock held on entry and
 * exit. */
static void refresh_locked(struct nvme_ctrl *c)
{
	unsigned todo;
	bool intx;

	c->busy++;
	intx = nvme_dbbuf_refresh_locked(c);
	todo = unbusy_locked(c) | (intx ? 4 : 0);
	after_put_locked(c, todo);
}

/*
 * Waking workers. Each sleeping worker waits on its own condition
 * variable, on a stack of idle workers, and a waker pops one. One shared
 * condition variable with pthread_cond_signal() lost wakeups here: glibc
 * before 2.41 (Debian 12 has 2.36) can leave every waiter asleep after a
 * signal when several wait (sourceware bug 25847). With shadow doorbells
 * that stalled a queue until the next doorbell (2026-12-04: both VMMs,
 * a kick with two workers asleep and neither woken; docs/perf.md). With
 * one waiter per condition variable the case cannot arise, and the
 * waker picks the worker that slept last, whose cache is warm.
 */
void nvme_wake_one_locked(struct nvme_ctrl *c)
{
	struct nvme_worker *w = c->idle_workers;

	if (!w)
		return;
	c->idle_workers = w->next_idle;
	__atomic_store_n(&w->woken, true, __ATOMIC_RELEASE);
	pthread_cond_signal(&w->wake);
}

void nvme_wake_all_locked(struct nvme_ctrl *c)
{
	while (c->idle_workers)
		nvme_wake_one_locked(c);
}

/* On the idle stack, where a waker finds it: last in, first woken (its
 * cache is warm). */
static void push_idle_locked(struct nvme_worker *w)
{
	__atomic_store_n(&w->woken, false, __ATOMIC_RELAXED);
	w->next_idle = w->c->idle_workers;
	w->c->idle_workers = w;
}

static void unlink_idle_locked(struct nvme_worker *w)
{
	struct nvme_worker **p = &w->c->idle_workers;

	while (*p && *p != w)
		p = &(*p)->next_idle;
	if (*p)
		*p = w->next_idle;
}

/*
 * The EventIdx handshake (dbbuf.c) needs the host's full barrier between
 * its shadow store and its EventIdx load. QEMU before 8.1 under TCG with
 * one vCPU drops guest barriers (tcg_gen_mb() was elided without
 * CF_PARALLEL; fixed in June 2023 "because I/O threads run in parallel"),
 * so Debian 12's QEMU 7.2 behind the shim can miss our EventIdx while we
 * miss its new tail: seen at QD32, 32 entries added and no ring. So one
 * idle worker - not all of them - looks at the buffer every
 * DBBUF_LOOK_MS; a missed ring then costs milliseconds, not a hang. The
 * race is only open right after we write EventIdx, which follows news
 * from the host: after DBBUF_LOOK_WINDOW_MS without news the workers
 * sleep until woken, and an idle device costs nothing.
 */
#define DBBUF_LOOK_MS 2
#define DBBUF_LOOK_WINDOW_MS 200

static bool look_due_locked(struct nvme_ctrl *c)
{
	return c->db.on && !c->db.looker && nvme_may_fetch_locked(c) &&
	       nvme_now_us() - c->db.news_us < DBBUF_LOOK_WINDOW_MS * 1000;
}

/*
 * Polling (--poll-us): a doorbell message costs the host a VM exit and a
 * socket write, and the device a thread wakeup before the command is
 * even read. While the host keeps adding commands (an SQ tail moved in
 * the last poll_us), one idle worker reads the shadow tails in a loop
 * instead of sleeping, and SQ EventIdx stays behind (dbbuf.c), so the
 * host stops ringing. The poller is on the idle stack like a sleeper, so
 * a waker picks it first and cheaply. It holds a busy count and stops at
 * once for a quiesce, a controller reset or shutdown (they wake every
 * worker), a dying DMA window (dev_dma_unmap waits for it) and while
 * another worker runs a command. When the tails stay still for poll_us,
 * polling ends: the refresh that follows puts EventIdx at the tails and
 * reads them once more, and the workers sleep.
 */
static bool poll_due_locked(const struct nvme_ctrl *c)
{
	return c->db.on && c->db.poll_mode && !c->db.poller &&
	       atomic_load(&c->running) == 0 && nvme_may_fetch_locked(c);
}

static void poll_locked(struct nvme_worker *w)
{
	struct nvme_ctrl *c = w->c;
	struct nvme_dbbuf *d = &c->db;
	uint64_t at[NVME_MAX_IOQ];
	uint32_t seen[NVME_MAX_IOQ], gen = d->gen;
	unsigned n = nvme_dbbuf_watch_locked(c, at, seen);
	int64_t until = d->news_us + c->poll_us;
	int news;

	d->poller = true;
	c->busy++;
	push_idle_locked(w);
	pthread_mutex_unlock(&c->lock);
	news = nvme_dbbuf_poll(c, n, at, seen, &w->woken, until);
	pthread_mutex_lock(&c->lock);
	if (!w->woken)
		unlink_idle_locked(w);
	d->poller = false;
	if (d->gen == gen && news < 0) {
		/* Reading by DMA messages in a loop would flood the socket:
		 * EventIdx only, until the buffers are set up again (a
		 * window being unmapped is not that: later news may poll). */
		d->no_polling = !atomic_load(&c->nr_dying);
		d->poll_mode = false;
	} else if (d->gen == gen && !news && !w->woken &&
		   nvme_now_us() - d->news_us >= c->poll_us) {
		d->poll_mode = false; /* quiet: back to EventIdx */
	}
	d->poll = true; /* apply the news, or EventIdx and a last read */
	after_put_locked(c, unbusy_locked(c));
}

/* Sleep until nvme_wake_*_locked() picks this worker, or until the
 * look is due if this worker is the one that looks (or poll instead);
 * lock held on entry and exit. */
static void sleep_locked(struct nvme_worker *w)
{
	struct nvme_ctrl *c = w->c;
	bool looker = look_due_locked(c);
	struct timespec ts;

	if (poll_due_locked(c)) {
		poll_locked(w);
		return;
	}
	push_idle_locked(w);
	if (!looker) {
		while (!w->woken)
			pthread_cond_wait(&w->wake, &c->lock);
		return;
	}
	c->db.looker = true;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_nsec += DBBUF_LOOK_MS * 1000000L;
	ts.tv_sec += ts.tv_nsec / 1000000000L;
	ts.tv_nsec %= 1000000000L;
	while (!w->woken &&
	       pthread_cond_timedwait(&w->wake, &c->lock, &ts) != ETIMEDOUT) {
	}
	c->db.looker = false;
	if (!w->woken) {
		unlink_idle_locked(w);
		c->db.poll = true;
	}
}

static void *worker_main(void *arg)
{
	struct nvme_worker *w = arg;
	struct nvme_ctrl *c = w->c;

	pthread_mutex_lock(&c->lock);
	for (;;) {
		struct nvme_cmd cmd;
		int q = -1;

		while (!c->stop && !(nvme_may_fetch_locked(c) &&
				     (aen_ready_locked(c) ||
				      (q = pick_sq_locked(c)) >= 0))) {
			if (nvme_may_fetch_locked(c) &&
			    nvme_dbbuf_want_refresh_locked(c)) {
				refresh_locked(c);
				continue;
			}
			sleep_locked(w);
		}
		if (c->stop)
			break;
		if (q < 0) {
			deliver_aen_locked(c, &cmd);
			continue;
		}
		run_one_locked(w, (unsigned)q);
	}
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

int nvme_workers_start(struct nvme_ctrl *c)
{
	pthread_condattr_t ca;
	sigset_t all, old;
	int r = 0;

	c->workers = calloc(c->nr_workers, sizeof(*c->workers));
	if (!c->workers)
		return -ENOMEM;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	for (unsigned i = 0; i < c->nr_workers; i++)
		pthread_cond_init(&c->workers[i].wake, &ca);
	pthread_condattr_destroy(&ca);
	for (unsigned i = 0; i < c->nr_workers; i++) {
		struct nvme_worker *w = &c->workers[i];

		w->c = c;
		w->bounce = malloc(NVME_MAX_XFER);
		w->iov = calloc(2 * NVME_MAX_SEGS, sizeof(*w->iov));
		if (!w->bounce || !w->iov)
			return -ENOMEM;
	}
	/* Signals go to the serving thread, not the workers. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	for (unsigned i = 0; i < c->nr_workers && r == 0; i++) {
		r = -pthread_create(&c->workers[i].thread, NULL, worker_main,
				    &c->workers[i]);
		c->workers[i].started = r == 0;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return r;
}

void nvme_workers_stop(struct nvme_ctrl *c)
{
	if (!c->workers)
		return;
	pthread_mutex_lock(&c->lock);
	c->stop = true;
	nvme_wake_all_locked(c);
	pthread_cond_broadcast(&c->idle);
	pthread_mutex_unlock(&c->lock);
	for (unsigned i = 0; i < c->nr_workers; i++) {
		if (c->workers[i].started)
			pthread_join(c->workers[i].thread, NULL);
		free(c->workers[i].bounce);
		free(c->workers[i].iov);
		pthread_cond_destroy(&c->workers[i].wake);
	}
	free(c->workers);
	c->workers = NULL;
}
