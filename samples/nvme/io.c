/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * io.c - the NVM command set (NVMe 1.4, section 6) on namespace 1: Read,
 * Write (with FUA), Flush, Write Zeroes and Dataset Management
 * (deallocate). Every command is checked before any data moves: the
 * namespace, the LBA range against the namespace size, the transfer size
 * against MDTS and the PRPs; a command is completed only after its data
 * is in the backing file (and flushed, for FUA or with the write cache
 * disabled).
 */
#include <errno.h>
#include <string.h>

#include "ctrl.h"

#define ST(sc) NVME_STATUS(0, (sc))
#define INVALID_FIELD (ST(NVME_SC_INVALID_FIELD) | NVME_DNR)

/* The LBA range of a Read, Write or Write Zeroes: 6.9, 6.15, 6.16 say
 * LBA Out of Range when it passes the namespace's size. */
static int lba_range(struct nvme_ctrl *c, const struct nvme_sqe *e,
		     uint64_t *off, uint64_t *len)
{
	uint64_t slba = e->cdw10 | (uint64_t)e->cdw11 << 32;
	uint64_t nlb = (uint64_t)NVME_RW_NLB(e->cdw12) + 1;

	if (slba >= c->b.nlb || nlb > c->b.nlb - slba)
		return ST(NVME_SC_LBA_RANGE) | NVME_DNR;
	*off = slba << c->b.lbads;
	*len = nlb << c->b.lbads;
	return 0;
}

static int flush_status(int r)
{
	return r < 0 ? NVME_STATUS(NVME_SCT_MEDIA, NVME_SC_WRITE_FAULT) : 0;
}

static int rw(struct nvme_worker *w, struct nvme_cmd *cmd, bool is_read)
{
	struct nvme_ctrl *c = w->c;
	const struct nvme_sqe *e = &cmd->sqe;
	struct nvme_sgl s;
	uint64_t off, len;
	int st = lba_range(c, e, &off, &len);

	if (st)
		return st;
	/* MDTS bounds a data transfer (5.15.2.1): Invalid Field. */
	if (len > NVME_MAX_XFER)
		return INVALID_FIELD;
	st = nvme_prp_walk(c, e->prp1, e->prp2, len, &s);
	if (st)
		return st;
	st = nvme_sgl_file_io(w, &s, off, is_read);
	if (st) {
		if (NVME_STATUS_SCT(st) == NVME_SCT_MEDIA)
			atomic_fetch_add(&c->media_errors, 1);
		return st;
	}
	if (is_read) {
		atomic_fetch_add(&c->rd_cmds, 1);
		atomic_fetch_add(&c->rd_bytes, len);
		return 0;
	}
	atomic_fetch_add(&c->wr_cmds, 1);
	atomic_fetch_add(&c->wr_bytes, len);
	/* Force Unit Access, or no volatile cache to hide behind: the data
	 * must be durable before the completion says so (6.15). */
	if ((e->cdw12 & NVME_RW_FUA) ||
	    !__atomic_load_n(&c->feat_wce, __ATOMIC_RELAXED))
		return flush_status(nvme_backing_flush(&c->b));
	return 0;
}

static int write_zeroes(struct nvme_worker *w, struct nvme_cmd *cmd)
{
	struct nvme_ctrl *c = w->c;
	const struct nvme_sqe *e = &cmd->sqe;
	uint64_t off, len;
	int st = lba_range(c, e, &off, &len);

	if (st)
		return st;
	/* No data transfer, so MDTS does not apply (6.16). */
	if (nvme_backing_zero(&c->b, off, len, w->bounce, NVME_MAX_XFER) < 0)
		return NVME_STATUS(NVME_SCT_MEDIA, NVME_SC_WRITE_FAULT);
	if ((e->cdw12 & NVME_RW_FUA) ||
	    !__atomic_load_n(&c->feat_wce, __ATOMIC_RELAXED))
		return flush_status(nvme_backing_flush(&c->b));
	return 0;
}

static int dsm(struct nvme_worker *w, struct nvme_cmd *cmd)
{
	struct nvme_ctrl *c = w->c;
	const struct nvme_sqe *e = &cmd->sqe;
	unsigned nr = (e->cdw10 & 0xff) + 1;
	struct nvme_dsm_range *r = (struct nvme_dsm_range *)w->bounce;
	struct nvme_sgl s;
	int st;

	st = nvme_prp_walk(c, e->prp1, e->prp2, nr * sizeof(*r), &s);
	if (!st)
		st = nvme_sgl_from_guest(c, &s, r, nr * sizeof(*r));
	if (st)
		return st;
	/* 6.7: every range must lie in the namespace. */
	for (unsigned i = 0; i < nr; i++)
		if (r[i].slba >= c->b.nlb || r[i].nlb > c->b.nlb - r[i].slba)
			return ST(NVME_SC_LBA_RANGE) | NVME_DNR;
	if (!(e->cdw11 & NVME_DSM_AD))
		return 0; /* attributes only: hints we don't use */
	for (unsigned i = 0; i < nr; i++) {
		if (!r[i].nlb)
			continue;
		if (nvme_backing_discard(&c->b, r[i].slba << c->b.lbads,
					 (uint64_t)r[i].nlb << c->b.lbads) < 0)
			return ST(NVME_SC_INTERNAL);
	}
	return 0;
}

int nvme_io_exec(struct nvme_worker *w, struct nvme_cmd *cmd)
{
	struct nvme_ctrl *c = w->c;
	const struct nvme_sqe *e = &cmd->sqe;

	if (NVME_SQE_FUSE(e->flags) || NVME_SQE_PSDT(e->flags))
		return INVALID_FIELD; /* no fused commands, no SGLs (4.2) */
	switch (e->opcode) {
	case NVME_CMD_FLUSH:
		/* 6.8: the broadcast NSID flushes every namespace (VWC
		 * says we take it). */
		if (e->nsid != 1 && e->nsid != NVME_NSID_ALL)
			return ST(NVME_SC_INVALID_NS) | NVME_DNR;
		atomic_fetch_add(&c->flushes, 1);
		return flush_status(nvme_backing_flush(&c->b));
	case NVME_CMD_WRITE:
	case NVME_CMD_READ:
	case NVME_CMD_WRITE_ZEROES:
	case NVME_CMD_DSM:
		break;
	default:
		return ST(NVME_SC_INVALID_OPCODE) | NVME_DNR;
	}
	/* 6.x: any other NSID than our one namespace is invalid. */
	if (e->nsid != 1)
		return ST(NVME_SC_INVALID_NS) | NVME_DNR;
	switch (e->opcode) {
	case NVME_CMD_WRITE:
		return rw(w, cmd, false);
	case NVME_CMD_READ:
		return rw(w, cmd, true);
	case NVME_CMD_WRITE_ZEROES:
		return write_zeroes(w, cmd);
	default:
		return dsm(w, cmd);
	}
}
