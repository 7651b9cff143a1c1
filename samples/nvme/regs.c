/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * regs.c - BAR0 of the controller (NVMe 1.4, 3.1): the properties and
 * the doorbells, on the serving thread. Enabling is immediate (nothing
 * to fetch yet); disabling and shutdown wait until the workers hold no
 * command, so CSTS.RDY only drops once no worker can touch a queue or
 * the guest memory behind it, and SHST only says "complete" once the
 * backing file was flushed.
 *
 * Every doorbell value is checked: a write for a queue that doesn't
 * exist or a value outside the queue gives the asynchronous event the
 * spec defines (5.2, Error status: Invalid Doorbell Register / Invalid
 * Doorbell Write Value) and is otherwise ignored. Values read from the
 * shadow doorbell buffer (dbbuf.c) go through the same checks.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "ctrl.h"
#include "sample.h"

void nvme_log_error_locked(struct nvme_ctrl *c, uint16_t sqid, uint16_t cid,
			   uint16_t status, uint32_t nsid, uint64_t lba)
{
	struct nvme_err_entry *e = &c->errlog[c->err_count % NVME_ERRLOG];

	c->err_count++;
	*e = (struct nvme_err_entry){.count = c->err_count,
				     .sqid = sqid,
				     .cid = cid,
				     .status = status,
				     .param = 0xffff,
				     .lba = lba,
				     .nsid = nsid};
}

void nvme_aen_locked(struct nvme_ctrl *c, uint32_t dw0)
{
	/* One error event at a time: the type stays masked until the host
	 * reads the Error Information log (5.2.1). */
	if (c->aen_queued || c->aen_error_masked)
		return;
	c->aen_pending = dw0;
	c->aen_queued = true;
	nvme_wake_one_locked(c);
}

static bool intx_wanted_locked(struct nvme_ctrl *c)
{
	if ((c->intms & 1) || !(c->csts & NVME_CSTS_RDY))
		return false;
	for (unsigned i = 0; i <= c->max_ioq; i++)
		if (c->cq[i].valid && c->cq[i].ien &&
		    c->cq[i].head != c->cq[i].tail)
			return true;
	return false;
}

/* INTx is a level: high while an interrupt-enabled CQ holds entries the
 * host has not consumed, INTMS bit 0 is clear and the client has not
 * picked MSI-X (3.1.3, 7.5.1). */
void nvme_update_intx(struct nvme_ctrl *c)
{
	int idx = mu_irq_active_index(c->dev);
	bool level;

	pthread_mutex_lock(&c->intx_lock);
	pthread_mutex_lock(&c->lock);
	level = idx != MU_PCI_MSIX_IRQ_INDEX && intx_wanted_locked(c);
	pthread_mutex_unlock(&c->lock);
	if (level != c->intx_level) {
		int r = mu_irq_set_intx(c->dev, level);

		if (r < 0 && r != -ENOENT && !c->quiet)
			fprintf(stderr, "%s: INTx: %s\n", sample_prog,
				strerror(-r));
		c->intx_level = level;
	}
	pthread_mutex_unlock(&c->intx_lock);
}

static void features_default(struct nvme_ctrl *c)
{
	c->feat_arb = 0;
	c->feat_pm = 0;
	c->feat_temp = 0x157; /* 343 K over-temperature threshold */
	c->feat_errrec = 0;
	c->feat_coalesce = 0;
	c->feat_wce = 1;
	c->feat_atomic = 0;
	c->feat_aec = 0;
	for (unsigned i = 0; i <= NVME_MAX_IOQ; i++)
		c->feat_ivc[i] = i;
	c->nsq_alloc = c->ncq_alloc = (uint16_t)c->max_ioq;
}

/* Controller Reset (7.3.2): queues, events and features back to their
 * defaults. full (the device was reset, not just CC.EN cleared) also
 * clears the admin queue registers. */
static void reset_state_locked(struct nvme_ctrl *c, bool full)
{
	for (unsigned i = 0; i <= c->max_ioq; i++) {
		c->sq[i].valid = false;
		c->sq[i].gen++;
		c->cq[i].valid = false;
		c->cq[i].gen++;
	}
	c->nr_aer = 0;
	c->aen_queued = false;
	c->aen_error_masked = false;
	c->csts = 0;
	c->intms = 0;
	c->disabling = false;
	c->shutting = false;
	nvme_dbbuf_reset_locked(c);
	features_default(c);
	if (full) {
		c->cc = 0;
		c->aqa = 0;
		c->asq = c->acq = 0;
	}
}

void nvme_ctrl_reset_locked(struct nvme_ctrl *c)
{
	reset_state_locked(c, true);
}

bool nvme_ctrl_settle_locked(struct nvme_ctrl *c)
{
	bool flush = c->shutting;

	c->shutting = false;
	if (c->disabling) {
		reset_state_locked(c, false);
		if (!c->quiet)
			printf("controller disabled\n");
	}
	return flush;
}

void nvme_shutdown_done(struct nvme_ctrl *c, int err)
{
	pthread_mutex_lock(&c->lock);
	if (NVME_CC_SHN(c->cc)) {
		c->csts &= ~NVME_CSTS_SHST_MASK;
		c->csts |= NVME_CSTS_SHST_COMPLETE;
	}
	pthread_mutex_unlock(&c->lock);
	if (!c->quiet)
		/* tests/vm/nvme-fs-check.py reads "flushes N)" at the end. */
		printf("shutdown complete%s%s (reads %lu, writes %lu, I/O "
		       "doorbell writes %lu, flushes %lu)\n",
		       err ? ": flush failed: " : "", err ? strerror(-err) : "",
		       (unsigned long)atomic_load(&c->rd_cmds),
		       (unsigned long)atomic_load(&c->wr_cmds),
		       (unsigned long)atomic_load(&c->doorbell_writes),
		       (unsigned long)atomic_load(&c->flushes));
}

/* CC.EN 0 -> 1 (7.6.1): check what the host configured, then the admin
 * queues exist and CSTS.RDY is set. A configuration we can't run sets
 * CSTS.CFS instead, as a controller that failed to start. */
static void enable_locked(struct nvme_ctrl *c)
{
	uint32_t cc = c->cc;
	const char *why = NULL;

	if (NVME_CC_MPS(cc) != 0)
		why = "memory page size other than 4 KiB";
	else if (NVME_CC_CSS(cc) != 0)
		why = "command set other than NVM";
	else if (NVME_CC_AMS(cc) != 0)
		why = "arbitration other than round robin";
	else if (NVME_AQA_ASQS(c->aqa) < 1 || NVME_AQA_ACQS(c->aqa) < 1)
		why = "admin queue with fewer than 2 entries";
	else if ((NVME_CC_IOSQES(cc) && NVME_CC_IOSQES(cc) != 6) ||
		 (NVME_CC_IOCQES(cc) && NVME_CC_IOCQES(cc) != 4))
		why = "queue entry size other than 64/16 bytes";
	if (why) {
		c->csts |= NVME_CSTS_CFS;
		if (!c->quiet)
			printf("enable refused: %s\n", why);
		return;
	}
	c->sq[0] = (struct nvme_sq){.valid = true,
				    .cqid = 0,
				    .size = NVME_AQA_ASQS(c->aqa) + 1,
				    .base = c->asq,
				    .gen = c->sq[0].gen + 1};
	c->cq[0].valid = true;
	c->cq[0].ien = true;
	c->cq[0].phase = true;
	c->cq[0].iv = 0;
	c->cq[0].size = NVME_AQA_ACQS(c->aqa) + 1;
	c->cq[0].base = c->acq;
	c->cq[0].head = c->cq[0].tail = 0;
	c->cq[0].reserved = 0;
	c->cq[0].nr_sq = 1;
	c->cq[0].gen++;
	c->csts = NVME_CSTS_RDY;
	if (!c->quiet)
		printf("controller enabled (admin queues %u/%u entries)\n",
		       c->sq[0].size, c->cq[0].size);
}

/* Returns true when the caller must flush for a shutdown (no lock). */
static bool write_cc_locked(struct nvme_ctrl *c, uint32_t v)
{
	const uint32_t keep = NVME_CC_EN | NVME_CC_SHN_MASK;
	uint32_t old = c->cc;

	/* Only EN and SHN may change while the controller is enabled. */
	if (old & NVME_CC_EN)
		v = (old & ~keep) | (v & keep);
	c->cc = v;
	if (!(old & NVME_CC_EN) && (v & NVME_CC_EN)) {
		if (!(c->csts & (NVME_CSTS_RDY | NVME_CSTS_CFS)) &&
		    !c->disabling)
			enable_locked(c);
		return false;
	}
	if ((old & NVME_CC_EN) && !(v & NVME_CC_EN)) {
		c->csts &= ~NVME_CSTS_CFS;
		c->disabling = true;
		if (c->busy == 0)
			return nvme_ctrl_settle_locked(c);
		nvme_wake_all_locked(c);
		return false;
	}
	if ((v & NVME_CC_EN) && NVME_CC_SHN(v) && !NVME_CC_SHN(old) &&
	    (c->csts & NVME_CSTS_RDY)) {
		c->csts &= ~NVME_CSTS_SHST_MASK;
		c->csts |= NVME_CSTS_SHST_OCCURRING;
		c->shutting = true;
		nvme_dbbuf_reset_locked(c); /* the host sets it up again */
		if (c->busy == 0)
			return nvme_ctrl_settle_locked(c);
		nvme_wake_all_locked(c); /* a polling worker stops now */
	}
	return false;
}

static uint32_t cq_used(const struct nvme_cq *cq)
{
	return (cq->tail + cq->size - cq->head) % cq->size;
}

static void bad_value_locked(struct nvme_ctrl *c, unsigned qid)
{
	nvme_log_error_locked(c, (uint16_t)qid, 0xffff, 0, 0, 0);
	nvme_aen_locked(c, NVME_AER_DW0(NVME_AER_TYPE_ERROR,
					NVME_AER_INFO_INVALID_DB_VALUE,
					NVME_LOG_ERROR));
}

int nvme_sq_tail_locked(struct nvme_ctrl *c, unsigned qid, uint32_t v)
{
	struct nvme_sq *sq = &c->sq[qid];

	if (v >= sq->size) {
		bad_value_locked(c, qid);
		return -EINVAL;
	}
	sq->tail = v;
	if (sq->head != v)
		nvme_wake_one_locked(c);
	return 0;
}

int nvme_cq_head_locked(struct nvme_ctrl *c, unsigned qid, uint32_t v,
			bool *intx)
{
	struct nvme_cq *cq = &c->cq[qid];
	bool was_full = nvme_cq_free_locked(cq) == 0;

	/* The new head may only pass entries we posted. */
	if (v >= cq->size ||
	    (v + cq->size - cq->head) % cq->size > cq_used(cq)) {
		bad_value_locked(c, qid);
		return -EINVAL;
	}
	cq->head = v;
	if (was_full)
		nvme_wake_all_locked(c);
	*intx = true;
	return 0;
}

/* A doorbell write (4.1, 3.1.16-17); lock held. Returns true when the
 * INTx level may have dropped. */
static bool doorbell_locked(struct nvme_ctrl *c, uint64_t off, uint32_t v)
{
	unsigned idx = (unsigned)((off - NVME_REG_DBS) / 4);
	unsigned qid = idx / 2;
	bool is_cq = idx & 1, intx = false;

	if (!(c->csts & NVME_CSTS_RDY) || c->disabling)
		return false; /* no queues: nothing to ring */
	if (qid)
		atomic_fetch_add_explicit(&c->doorbell_writes, 1,
					  memory_order_relaxed);
	if (qid > c->max_ioq ||
	    (is_cq ? !c->cq[qid].valid : !c->sq[qid].valid)) {
		nvme_log_error_locked(c, 0xffff, 0xffff, 0, 0, 0);
		nvme_aen_locked(c, NVME_AER_DW0(NVME_AER_TYPE_ERROR,
						NVME_AER_INFO_INVALID_DB_REG,
						NVME_LOG_ERROR));
		return false;
	}
	if (nvme_dbbuf_live_locked(c, idx)) {
		/* Shadowed: the buffer holds the value that counts (this
		 * write may be older than it, as posted writes arrive
		 * late), so the write only says "look at the buffer". */
		if (v >= (is_cq ? c->cq[qid].size : c->sq[qid].size))
			bad_value_locked(c, qid);
		else
			nvme_dbbuf_kick_locked(c);
		return false;
	}
	if (!is_cq) {
		nvme_sq_tail_locked(c, qid, v);
		return false;
	}
	nvme_cq_head_locked(c, qid, v, &intx);
	return intx;
}

static uint32_t reg_read_locked(struct nvme_ctrl *c, uint64_t off)
{
	switch (off) {
	case NVME_REG_CAP:
		return (uint32_t)c->cap;
	case NVME_REG_CAP + 4:
		return (uint32_t)(c->cap >> 32);
	case NVME_REG_VS:
		return NVME_VS_1_4;
	case NVME_REG_INTMS:
	case NVME_REG_INTMC:
		return c->intms;
	case NVME_REG_CC:
		return c->cc;
	case NVME_REG_CSTS:
		return c->csts;
	case NVME_REG_AQA:
		return c->aqa;
	case NVME_REG_ASQ:
		return (uint32_t)c->asq;
	case NVME_REG_ASQ + 4:
		return (uint32_t)(c->asq >> 32);
	case NVME_REG_ACQ:
		return (uint32_t)c->acq;
	case NVME_REG_ACQ + 4:
		return (uint32_t)(c->acq >> 32);
	default:
		return 0; /* reserved, CMB (none), doorbells (write-only) */
	}
}

/* Returns a bitmask of follow-ups: 1 INTx, 2 shutdown flush. */
static unsigned reg_write_locked(struct nvme_ctrl *c, uint64_t off, uint32_t v)
{
	if (off >= NVME_REG_DBS)
		return doorbell_locked(c, off, v) ? 1 : 0;
	switch (off) {
	case NVME_REG_INTMS:
		c->intms |= v;
		return 1;
	case NVME_REG_INTMC:
		c->intms &= ~v;
		return 1;
	case NVME_REG_CC:
		return write_cc_locked(c, v) ? 3 : 1;
	case NVME_REG_AQA:
		c->aqa = v & 0x0fff0fffu;
		break;
	/* Queue bases are page aligned: bits 11:0 are reserved. */
	case NVME_REG_ASQ:
		c->asq = (c->asq & ~0xffffffffull) | (v & ~0xfffu);
		break;
	case NVME_REG_ASQ + 4:
		c->asq = (c->asq & 0xffffffffull) | (uint64_t)v << 32;
		break;
	case NVME_REG_ACQ:
		c->acq = (c->acq & ~0xffffffffull) | (v & ~0xfffu);
		break;
	case NVME_REG_ACQ + 4:
		c->acq = (c->acq & 0xffffffffull) | (uint64_t)v << 32;
		break;
	default:
		break; /* read-only or reserved: ignored (NSSR: not offered) */
	}
	return 0;
}

ssize_t nvme_bar0_access(void *opaque, unsigned region, uint64_t offset,
			 void *buf, size_t count, bool is_write)
{
	struct nvme_ctrl *c = opaque;
	uint8_t *p = buf;
	unsigned todo = 0;

	(void)region;
	/* Registers are 32- or 64-bit (3.1): a narrower or unaligned write
	 * is dropped; reads of any size get the bytes of the dwords. */
	if (is_write && ((count != 4 && count != 8) || offset % 4))
		return (ssize_t)count;
	pthread_mutex_lock(&c->lock);
	if (c->paused ||
	    atomic_load_explicit(&c->nr_dying, memory_order_relaxed))
		nvme_resume_locked(c); /* see main.c: no quiesced op runs now */
	if (!is_write) {
		for (size_t i = 0; i < count;) {
			uint64_t at = offset + i;
			uint32_t v = reg_read_locked(c, at & ~3ull);
			size_t sh = at & 3, n = 4 - sh;

			n = n < count - i ? n : count - i;
			memcpy(p + i, (uint8_t *)&v + sh, n);
			i += n;
		}
	}
	for (size_t i = 0; is_write && i < count; i += 4) {
		uint32_t v;

		memcpy(&v, p + i, 4);
		todo |= reg_write_locked(c, offset + i, v);
	}
	pthread_mutex_unlock(&c->lock);
	if (todo & 2) /* shutdown with nothing in flight: flush now */
		nvme_shutdown_done(c, nvme_backing_flush(&c->b));
	if (todo & 1)
		nvme_update_intx(c);
	return (ssize_t)count;
}
