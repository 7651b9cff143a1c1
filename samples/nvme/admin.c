/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * admin.c - the admin command set (NVMe 1.4, section 5) that Linux's
 * nvme driver uses: Identify, queue creation and deletion, features,
 * log pages, asynchronous events, Abort, Doorbell Buffer Config (in
 * dbbuf.c). Each command's fields are checked as the spec says, and a
 * bad one gets the status the spec names for it (cited at each check),
 * with Do Not Retry set.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "ctrl.h"

#define ST(sc) NVME_STATUS(0, (sc))
#define ST_CMD(sc) NVME_STATUS(NVME_SCT_CMD, (sc))
#define INVALID_FIELD (ST(NVME_SC_INVALID_FIELD) | NVME_DNR)

static void put16(uint8_t *p, uint16_t v)
{
	memcpy(p, &v, 2);
}

static void put32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, 4);
}

static void put64(uint8_t *p, uint64_t v)
{
	memcpy(p, &v, 8);
}

/* ASCII, space padded, not NUL terminated (1.4, 5.15.2.1). */
static void put_str(uint8_t *p, const char *s, size_t len)
{
	size_t n = strlen(s);

	memset(p, ' ', len);
	memcpy(p, s, n < len ? n : len);
}

/* Send a controller-to-host data buffer through the command's PRPs. */
static uint16_t to_host(struct nvme_worker *w, const struct nvme_cmd *cmd,
			const void *buf, uint32_t len)
{
	struct nvme_sgl s;
	uint16_t st =
		nvme_prp_walk(w->c, cmd->sqe.prp1, cmd->sqe.prp2, len, &s);

	return st ? st : nvme_sgl_to_guest(w->c, &s, buf, len);
}

/* ---- Identify (5.15) --------------------------------------------------------
 */

static void id_ctrl(struct nvme_ctrl *c, uint8_t *d)
{
	char nqn[256];

	put16(d + NVME_IDC_VID, NVME_PCI_VENDOR);
	put16(d + NVME_IDC_SSVID, NVME_PCI_VENDOR);
	put_str(d + NVME_IDC_SN, c->serial, 20);
	put_str(d + NVME_IDC_MN, "muser-nvme", 40);
	put_str(d + NVME_IDC_FR, "0.1", 8);
	d[NVME_IDC_RAB] = 6;
	d[NVME_IDC_MDTS] = NVME_MDTS;
	put16(d + NVME_IDC_CNTLID, 1);
	put32(d + NVME_IDC_VER, NVME_VS_1_4);
	d[NVME_IDC_CNTRLTYPE] = 1; /* I/O controller */
	put16(d + NVME_IDC_OACS, c->no_dbbuf ? 0 : NVME_OACS_DBBUF);
	d[NVME_IDC_ACL] = 3;
	d[NVME_IDC_AERL] = NVME_AERL;
	d[NVME_IDC_FRMW] = 0x3;	   /* one slot, read-only */
	d[NVME_IDC_LPA] = 1u << 2; /* extended Get Log Page (offsets) */
	d[NVME_IDC_ELPE] = NVME_ERRLOG - 1;
	put16(d + NVME_IDC_WCTEMP, 0x157);
	put16(d + NVME_IDC_CCTEMP, 0x175);
	d[NVME_IDC_SQES] = 0x66;
	d[NVME_IDC_CQES] = 0x44;
	put32(d + NVME_IDC_NN, 1);
	put16(d + NVME_IDC_ONCS, NVME_ONCS_DSM | NVME_ONCS_WRITE_ZEROES);
	/* Volatile write cache present; Flush takes NSID FFFFFFFFh. */
	d[NVME_IDC_VWC] = 0x7;
	snprintf(nqn, sizeof(nqn), "nqn.2026-01.org.muser:nvme:%s", c->serial);
	memcpy(d + NVME_IDC_SUBNQN, nqn, strlen(nqn));
	put16(d + NVME_IDC_PSD0, 2500); /* max power 25 W, 0.01 W units */
}

static void id_ns(struct nvme_ctrl *c, uint8_t *d)
{
	put64(d + NVME_IDNS_NSZE, c->b.nlb);
	put64(d + NVME_IDNS_NCAP, c->b.nlb);
	put64(d + NVME_IDNS_NUSE, c->b.nlb);
	d[NVME_IDNS_NLBAF] = 0; /* one format */
	d[NVME_IDNS_FLBAS] = 0;
	put64(d + NVME_IDNS_NVMCAP, c->b.bytes);
	memcpy(d + NVME_IDNS_NGUID, c->nguid, 16);
	memcpy(d + NVME_IDNS_EUI64, c->eui64, 8);
	put32(d + NVME_IDNS_LBAF0, (uint32_t)c->b.lbads << 16);
}

static unsigned ns_desc(uint8_t *d, unsigned at, uint8_t type, const void *id,
			uint8_t len)
{
	d[at] = type;
	d[at + 1] = len;
	memcpy(d + at + 4, id, len);
	return at + 4 + len;
}

static int identify(struct nvme_worker *w, struct nvme_cmd *cmd)
{
	struct nvme_ctrl *c = w->c;
	uint8_t *d = w->bounce;
	uint32_t nsid = cmd->sqe.nsid;
	uint8_t cns = cmd->sqe.cdw10 & 0xff;
	uint8_t csi = (uint8_t)(cmd->sqe.cdw11 >> 24);
	unsigned at;

	memset(d, 0, NVME_IDENTIFY_SIZE);
	switch (cns) {
	case NVME_CNS_CTRL:
		id_ctrl(c, d);
		break;
	case NVME_CNS_NS:
		/* 5.15.2.1: an NSID that is not valid gets Invalid
		 * Namespace or Format; the broadcast value is only for
		 * controllers with namespace management. */
		if (nsid != 1)
			return ST(NVME_SC_INVALID_NS) | NVME_DNR;
		id_ns(c, d);
		break;
	case NVME_CNS_NS_ACTIVE_LIST:
		/* Active NSIDs greater than NSID; FFFFFFFEh and up are
		 * invalid here (5.15.2.2). */
		if (nsid >= 0xfffffffeu)
			return ST(NVME_SC_INVALID_NS) | NVME_DNR;
		if (nsid < 1)
			put32(d, 1);
		break;
	case NVME_CNS_NS_DESC_LIST:
		if (nsid != 1)
			return ST(NVME_SC_INVALID_NS) | NVME_DNR;
		at = ns_desc(d, 0, NVME_NIDT_EUI64, c->eui64, 8);
		at = ns_desc(d, at, NVME_NIDT_NGUID, c->nguid, 16);
		ns_desc(d, at, NVME_NIDT_CSI, &(uint8_t){0}, 1);
		break;
	case NVME_CNS_CS_NS:
		/* NVM command set specific data: all zero (no limits). */
		if (csi != 0)
			return INVALID_FIELD;
		if (nsid != 1)
			return ST(NVME_SC_INVALID_NS) | NVME_DNR;
		break;
	case NVME_CNS_CS_CTRL:
		if (csi != 0)
			return INVALID_FIELD;
		break;
	default:
		return INVALID_FIELD; /* 5.15.1: CNS not supported */
	}
	return to_host(w, cmd, d, NVME_IDENTIFY_SIZE);
}

/* ---- queues (5.3-5.7)
 * ---------------------------------------------------------- */

static int create_cq(struct nvme_worker *w, struct nvme_cmd *cmd)
{
	struct nvme_ctrl *c = w->c;
	uint32_t qid = cmd->sqe.cdw10 & 0xffff;
	uint32_t size = (cmd->sqe.cdw10 >> 16) + 1;
	uint32_t flags = cmd->sqe.cdw11, iv = flags >> 16;
	struct nvme_cq *cq;
	int st = 0;

	pthread_mutex_lock(&c->lock);
	/* 5.3: Invalid Queue Identifier for 0, an ID above what Number of
	 * Queues granted, or one in use; Invalid Queue Size beyond
	 * CAP.MQES or below 2; Invalid Interrupt Vector beyond the
	 * vectors we have; CAP.CQR says queues are contiguous (PC = 1);
	 * the base is page aligned. */
	if (qid == 0 || qid > c->max_ioq || qid > c->ncq_alloc ||
	    c->cq[qid].valid)
		st = ST_CMD(NVME_SC_QID_INVALID) | NVME_DNR;
	else if (size < 2 || size > NVME_MQES + 1)
		st = ST_CMD(NVME_SC_QUEUE_SIZE) | NVME_DNR;
	else if ((flags & NVME_CQ_IEN) && iv > c->max_ioq)
		st = ST_CMD(NVME_SC_IRQ_VECTOR) | NVME_DNR;
	else if (!(flags & NVME_QUEUE_PC))
		st = INVALID_FIELD;
	else if (cmd->sqe.prp1 & (NVME_PAGE - 1))
		st = ST(NVME_SC_PRP_OFFSET_INVALID) | NVME_DNR;
	if (st) {
		pthread_mutex_unlock(&c->lock);
		return st;
	}
	cq = &c->cq[qid];
	cq->valid = true;
	cq->ien = flags & NVME_CQ_IEN;
	cq->phase = true;
	cq->iv = (uint16_t)iv;
	cq->size = size;
	cq->base = cmd->sqe.prp1;
	cq->head = cq->tail = 0;
	cq->reserved = 0;
	cq->nr_sq = 0;
	cq->gen++;
	pthread_mutex_unlock(&c->lock);
	nvme_dbbuf_queue_created(c, 2 * qid + 1);
	if (!c->quiet)
		printf("I/O CQ %u created: %u entries, %s %u\n", qid, size,
		       cq->ien ? "vector" : "polled, vector", iv);
	return 0;
}

static int create_sq(struct nvme_worker *w, struct nvme_cmd *cmd)
{
	struct nvme_ctrl *c = w->c;
	uint32_t qid = cmd->sqe.cdw10 & 0xffff;
	uint32_t size = (cmd->sqe.cdw10 >> 16) + 1;
	uint32_t flags = cmd->sqe.cdw11, cqid = flags >> 16;
	struct nvme_sq *sq;
	int st = 0;

	pthread_mutex_lock(&c->lock);
	/* 5.4: Completion Queue Invalid for a CQ that doesn't exist (the
	 * admin CQ included), then as for Create I/O CQ. */
	if (cqid == 0 || cqid > c->max_ioq || !c->cq[cqid].valid)
		st = ST_CMD(NVME_SC_CQ_INVALID) | NVME_DNR;
	else if (qid == 0 || qid > c->max_ioq || qid > c->nsq_alloc ||
		 c->sq[qid].valid)
		st = ST_CMD(NVME_SC_QID_INVALID) | NVME_DNR;
	else if (size < 2 || size > NVME_MQES + 1)
		st = ST_CMD(NVME_SC_QUEUE_SIZE) | NVME_DNR;
	else if (!(flags & NVME_QUEUE_PC))
		st = INVALID_FIELD;
	else if (cmd->sqe.prp1 & (NVME_PAGE - 1))
		st = ST(NVME_SC_PRP_OFFSET_INVALID) | NVME_DNR;
	if (st) {
		pthread_mutex_unlock(&c->lock);
		return st;
	}
	sq = &c->sq[qid];
	*sq = (struct nvme_sq){.valid = true,
			       .cqid = (uint16_t)cqid,
			       .size = size,
			       .base = cmd->sqe.prp1,
			       .gen = sq->gen + 1};
	c->cq[cqid].nr_sq++;
	pthread_mutex_unlock(&c->lock);
	nvme_dbbuf_queue_created(c, 2 * qid);
	if (!c->quiet)
		printf("I/O SQ %u created: %u entries, CQ %u\n", qid, size,
		       cqid);
	return 0;
}

/* Entries the host submitted but we never fetched are completed with
 * Command Aborted due to SQ Deletion (5.6), as far as the CQ has room. */
static void abort_unfetched(struct nvme_ctrl *c, unsigned qid)
{
	struct nvme_sq *sq = &c->sq[qid];
	struct nvme_cmd a = {0};
	uint32_t head, n, room;

	pthread_mutex_lock(&c->lock);
	head = sq->head;
	n = (sq->tail + sq->size - head) % sq->size;
	room = nvme_cq_free_locked(&c->cq[sq->cqid]);
	n = n < room ? n : room;
	c->cq[sq->cqid].reserved += n;
	a.sqid = (uint16_t)qid;
	a.cqid = sq->cqid;
	a.sq_gen = sq->gen;
	a.cq_gen = c->cq[sq->cqid].gen;
	pthread_mutex_unlock(&c->lock);
	for (uint32_t i = 0; i < n; i++) {
		uint64_t at = sq->base +
			      (uint64_t)((head + i) % sq->size) * NVME_SQE_SIZE;

		if (nvme_guest_read(c, at, &a.sqe, sizeof(a.sqe)) < 0)
			memset(&a.sqe, 0xff, sizeof(a.sqe));
		pthread_mutex_lock(&c->lock);
		sq->head = (head + i + 1) % sq->size;
		pthread_mutex_unlock(&c->lock);
		a.dw0 = 0;
		nvme_complete(c, &a, ST(NVME_SC_ABORT_SQ_DELETION));
	}
}

static int delete_sq(struct nvme_worker *w, struct nvme_cmd *cmd)
{
	struct nvme_ctrl *c = w->c;
	uint32_t qid = cmd->sqe.cdw10 & 0xffff;
	struct nvme_sq *sq = &c->sq[qid <= NVME_MAX_IOQ ? qid : 0];

	pthread_mutex_lock(&c->lock);
	/* 5.6: Invalid Queue Identifier for the admin SQ or one that
	 * doesn't exist. */
	if (qid == 0 || qid > c->max_ioq || !sq->valid || sq->deleting) {
		pthread_mutex_unlock(&c->lock);
		return ST_CMD(NVME_SC_QID_INVALID) | NVME_DNR;
	}
	sq->deleting = true;
	while (sq->inflight && !c->stop && !c->disabling)
		pthread_cond_wait(&c->idle, &c->lock);
	pthread_mutex_unlock(&c->lock);
	abort_unfetched(c, qid);
	pthread_mutex_lock(&c->lock);
	if (sq->valid) {
		sq->valid = false;
		sq->gen++;
		c->cq[sq->cqid].nr_sq--;
	}
	pthread_mutex_unlock(&c->lock);
	return 0;
}

static int delete_cq(struct nvme_worker *w, struct nvme_cmd *cmd)
{
	struct nvme_ctrl *c = w->c;
	uint32_t qid = cmd->sqe.cdw10 & 0xffff;
	int st = 0;

	pthread_mutex_lock(&c->lock);
	/* 5.5: Invalid Queue Identifier, or Invalid Queue Deletion while
	 * an SQ still posts to it. */
	if (qid == 0 || qid > c->max_ioq || !c->cq[qid].valid)
		st = ST_CMD(NVME_SC_QID_INVALID) | NVME_DNR;
	else if (c->cq[qid].nr_sq)
		st = ST_CMD(NVME_SC_QUEUE_DELETION) | NVME_DNR;
	else {
		c->cq[qid].valid = false;
		c->cq[qid].gen++;
	}
	pthread_mutex_unlock(&c->lock);
	return st;
}

/* ---- log pages (5.14)
 * -------------------------------------------------------- */

static void put128(uint8_t *p, uint64_t v)
{
	put64(p, v); /* the upper half stays zero */
}

static uint32_t log_error(struct nvme_ctrl *c, uint8_t *d, bool rae)
{
	pthread_mutex_lock(&c->lock);
	/* Newest first; unused entries are zero (5.14.1.1). */
	for (unsigned i = 0; i < NVME_ERRLOG && i < c->err_count; i++) {
		const struct nvme_err_entry *e =
			&c->errlog[(c->err_count - 1 - i) % NVME_ERRLOG];
		uint8_t *p = d + 64 * i;

		put64(p, e->count);
		put16(p + 8, e->sqid);
		put16(p + 10, e->cid);
		put16(p + 12, (uint16_t)(e->status << 1));
		put16(p + 14, e->param);
		put64(p + 16, e->lba);
		put32(p + 24, e->nsid);
	}
	if (!rae)
		c->aen_error_masked = false; /* 5.2.1: read clears it */
	pthread_mutex_unlock(&c->lock);
	return 64 * NVME_ERRLOG;
}

static uint32_t log_smart(struct nvme_ctrl *c, uint8_t *d)
{
	/* Data units are thousands of 512-byte units, rounded up. */
	uint64_t rd = (atomic_load(&c->rd_bytes) / 512 + 999) / 1000;
	uint64_t wr = (atomic_load(&c->wr_bytes) / 512 + 999) / 1000;

	put16(d + 1, 0x13a); /* composite temperature: 314 K */
	d[3] = 100;	     /* available spare */
	d[4] = 10;	     /* threshold */
	put128(d + 32, rd);
	put128(d + 48, wr);
	put128(d + 64, atomic_load(&c->rd_cmds));
	put128(d + 80, atomic_load(&c->wr_cmds));
	put128(d + 112, 1); /* power cycles */
	put128(d + 160, atomic_load(&c->media_errors));
	pthread_mutex_lock(&c->lock);
	put128(d + 176, c->err_count);
	pthread_mutex_unlock(&c->lock);
	return 512;
}

static int get_log_page(struct nvme_worker *w, struct nvme_cmd *cmd)
{
	struct nvme_ctrl *c = w->c;
	const struct nvme_sqe *e = &cmd->sqe;
	uint8_t lid = e->cdw10 & 0xff;
	bool rae = e->cdw10 & (1u << 15);
	uint64_t numd =
		((uint64_t)(e->cdw11 & 0xffff) << 16 | e->cdw10 >> 16) + 1;
	uint64_t len = numd * 4;
	uint64_t lpo = e->cdw12 | (uint64_t)e->cdw13 << 32;
	uint8_t *d = w->bounce;
	uint32_t size;

	/* 5.14: the offset is dword aligned; a transfer we can't do in
	 * one command, or an offset past the log, is an invalid field. */
	if (len > NVME_MAX_XFER || (lpo & 3))
		return INVALID_FIELD;
	memset(d, 0, NVME_MAX_XFER);
	switch (lid) {
	case NVME_LOG_ERROR:
		size = log_error(c, d, rae);
		break;
	case NVME_LOG_SMART:
		/* Not kept per namespace (LPA bit 0 clear): only the
		 * controller-wide NSIDs are valid. */
		if (e->nsid != 0 && e->nsid != NVME_NSID_ALL)
			return INVALID_FIELD;
		size = log_smart(c, d);
		break;
	case NVME_LOG_FW_SLOT:
		d[0] = 1; /* slot 1 active */
		put_str(d + 8, "0.1", 8);
		size = 512;
		break;
	default:
		return ST_CMD(NVME_SC_INVALID_LOG_PAGE) | NVME_DNR;
	}
	if (lpo >= size)
		return INVALID_FIELD;
	if (lpo)
		memmove(d, d + lpo, size - lpo);
	memset(d + (size - lpo), 0, NVME_MAX_XFER - (size - lpo));
	return to_host(w, cmd, d, (uint32_t)len);
}

/* ---- features (5.9, 5.21)
 * --------------------------------------------------------- */

static int get_features(struct nvme_worker *w, struct nvme_cmd *cmd)
{
	struct nvme_ctrl *c = w->c;
	uint8_t fid = cmd->sqe.cdw10 & 0xff;
	uint8_t sel = (cmd->sqe.cdw10 >> 8) & 0x7;
	uint32_t iv = cmd->sqe.cdw11 & 0xffff;
	int st = 0;

	/* SEL 3: capabilities; every feature here is changeable, none
	 * saveable or namespace specific (5.9.2). */
	if (sel == 3) {
		cmd->dw0 = 1u << 2;
		return 0;
	}
	if (sel > 3)
		return INVALID_FIELD;
	pthread_mutex_lock(&c->lock);
	switch (fid) {
	case NVME_FEAT_ARBITRATION:
		cmd->dw0 = c->feat_arb;
		break;
	case NVME_FEAT_POWER_MGMT:
		cmd->dw0 = c->feat_pm;
		break;
	case NVME_FEAT_TEMP_THRESH:
		/* Composite temperature only; the under-temperature
		 * threshold is not supported (reads 0). */
		cmd->dw0 = ((cmd->sqe.cdw11 >> 16) & 0xf) == 0 &&
					   !((cmd->sqe.cdw11 >> 20) & 3)
				   ? c->feat_temp
				   : 0;
		break;
	case NVME_FEAT_ERR_RECOVERY:
		cmd->dw0 = c->feat_errrec;
		break;
	case NVME_FEAT_VOLATILE_WC:
		cmd->dw0 = c->feat_wce;
		break;
	case NVME_FEAT_NUM_QUEUES:
		cmd->dw0 = (uint32_t)(c->ncq_alloc - 1) << 16 |
			   (uint32_t)(c->nsq_alloc - 1);
		break;
	case NVME_FEAT_IRQ_COALESCE:
		cmd->dw0 = c->feat_coalesce;
		break;
	case NVME_FEAT_IRQ_CONFIG:
		if (iv > c->max_ioq)
			st = INVALID_FIELD;
		else
			cmd->dw0 = c->feat_ivc[iv];
		break;
	case NVME_FEAT_WRITE_ATOMIC:
		cmd->dw0 = c->feat_atomic;
		break;
	case NVME_FEAT_ASYNC_EVENT:
		cmd->dw0 = c->feat_aec;
		break;
	default:
		st = INVALID_FIELD; /* 5.9: feature not supported */
	}
	pthread_mutex_unlock(&c->lock);
	return st;
}

static bool io_queues_exist_locked(const struct nvme_ctrl *c)
{
	for (unsigned i = 1; i <= c->max_ioq; i++)
		if (c->sq[i].valid || c->cq[i].valid)
			return true;
	return false;
}

static int set_features(struct nvme_worker *w, struct nvme_cmd *cmd)
{
	struct nvme_ctrl *c = w->c;
	uint8_t fid = cmd->sqe.cdw10 & 0xff;
	uint32_t v = cmd->sqe.cdw11;
	uint32_t nsq = (v & 0xffff) + 1, ncq = (v >> 16) + 1;
	int st = 0;

	/* 5.21: nothing here can be saved across power cycles. */
	if (cmd->sqe.cdw10 & (1u << 31))
		return ST_CMD(NVME_SC_FEAT_NOT_SAVEABLE) | NVME_DNR;
	pthread_mutex_lock(&c->lock);
	switch (fid) {
	case NVME_FEAT_ARBITRATION:
		c->feat_arb = v;
		break;
	case NVME_FEAT_POWER_MGMT:
		if ((v & 0x1f) != 0) /* NPSS 0: power state 0 only */
			st = INVALID_FIELD;
		else
			c->feat_pm = v;
		break;
	case NVME_FEAT_TEMP_THRESH:
		if (((v >> 16) & 0xf) == 0 && !((v >> 20) & 3))
			c->feat_temp = v & 0xffff;
		else if (((v >> 16) & 0xf) != 0xf)
			st = INVALID_FIELD; /* no such sensor / threshold */
		break;
	case NVME_FEAT_ERR_RECOVERY:
		c->feat_errrec = v;
		break;
	case NVME_FEAT_VOLATILE_WC:
		c->feat_wce = v & 1;
		break;
	case NVME_FEAT_NUM_QUEUES:
		/* 5.21.1.7: 65535 is invalid; the request is only
		 * meaningful before I/O queues exist (else Command
		 * Sequence Error). The reply says what was granted. */
		if (nsq > 0xffff || ncq > 0xffff) {
			st = INVALID_FIELD;
			break;
		}
		if (io_queues_exist_locked(c)) {
			st = ST(NVME_SC_CMD_SEQ_ERROR) | NVME_DNR;
			break;
		}
		c->nsq_alloc = (uint16_t)(nsq < c->max_ioq ? nsq : c->max_ioq);
		c->ncq_alloc = (uint16_t)(ncq < c->max_ioq ? ncq : c->max_ioq);
		cmd->dw0 = (uint32_t)(c->ncq_alloc - 1) << 16 |
			   (uint32_t)(c->nsq_alloc - 1);
		break;
	case NVME_FEAT_IRQ_COALESCE:
		c->feat_coalesce = v & 0xffff;
		break;
	case NVME_FEAT_IRQ_CONFIG:
		if ((v & 0xffff) > c->max_ioq)
			st = INVALID_FIELD;
		else
			c->feat_ivc[v & 0xffff] = v & 0x1ffff;
		break;
	case NVME_FEAT_WRITE_ATOMIC:
		c->feat_atomic = v & 1;
		break;
	case NVME_FEAT_ASYNC_EVENT:
		c->feat_aec = v;
		break;
	default:
		st = INVALID_FIELD;
	}
	pthread_mutex_unlock(&c->lock);
	return st;
}

/* ---- events and abort (5.1, 5.2)
 * ------------------------------------------------- */

static int async_event(struct nvme_worker *w, struct nvme_cmd *cmd)
{
	struct nvme_ctrl *c = w->c;

	pthread_mutex_lock(&c->lock);
	/* 5.2: more than AERL + 1 outstanding is an error. */
	if (c->nr_aer > NVME_AERL) {
		pthread_mutex_unlock(&c->lock);
		return ST_CMD(NVME_SC_AER_LIMIT) | NVME_DNR;
	}
	c->aer_cid[c->nr_aer++] = cmd->sqe.cid;
	if (c->aen_queued)
		nvme_wake_one_locked(c);
	pthread_mutex_unlock(&c->lock);
	return -1; /* completes when an event happens */
}

static int abort_cmd(struct nvme_worker *w, struct nvme_cmd *cmd)
{
	(void)w;
	/* Commands run to completion here: report "not aborted" (5.1,
	 * DW0 bit 0), which the host must accept. */
	cmd->dw0 = 1;
	return 0;
}

int nvme_admin_exec(struct nvme_worker *w, struct nvme_cmd *cmd)
{
	const struct nvme_sqe *e = &cmd->sqe;

	/* No fused operations (FUSES 0) and no SGLs (SGLS 0): 4.2 says
	 * those fields then are invalid. */
	if (NVME_SQE_FUSE(e->flags) || NVME_SQE_PSDT(e->flags))
		return INVALID_FIELD;
	switch (e->opcode) {
	case NVME_ADM_DELETE_SQ:
		return delete_sq(w, cmd);
	case NVME_ADM_CREATE_SQ:
		return create_sq(w, cmd);
	case NVME_ADM_GET_LOG_PAGE:
		return get_log_page(w, cmd);
	case NVME_ADM_DELETE_CQ:
		return delete_cq(w, cmd);
	case NVME_ADM_CREATE_CQ:
		return create_cq(w, cmd);
	case NVME_ADM_IDENTIFY:
		return identify(w, cmd);
	case NVME_ADM_ABORT:
		return abort_cmd(w, cmd);
	case NVME_ADM_SET_FEATURES:
		return set_features(w, cmd);
	case NVME_ADM_GET_FEATURES:
		return get_features(w, cmd);
	case NVME_ADM_ASYNC_EVENT:
		return async_event(w, cmd);
	case NVME_ADM_DBBUF_CONFIG:
		if (w->c->no_dbbuf)
			break; /* not offered: an invalid opcode */
		return nvme_dbbuf_config(w, cmd);
	default:
		break;
	}
	return ST(NVME_SC_INVALID_OPCODE) | NVME_DNR;
}
