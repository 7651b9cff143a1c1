/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * test-nvme.c - muser-nvme's controller side, driven through
 * libmuser-client without a guest: registers and the enable/disable/
 * shutdown handshakes, Identify, queue creation and deletion, features,
 * log pages, asynchronous events, doorbell values out of range and a CQ
 * the host doesn't drain. Every error is checked against the status the
 * NVMe 1.4 base specification names for it (section in each comment).
 * I/O commands and PRPs: test-nvme-io.c.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "nvme-host.h"

#define ST(sc) SC(0, sc)
#define ST_CMD(sc) SC(NVME_SCT_CMD, sc)

static uint16_t u16at(const uint8_t *p)
{
	uint16_t v;

	memcpy(&v, p, 2);
	return v;
}

static uint32_t u32at(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return v;
}

static uint64_t u64at(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return v;
}

/* 3.1: CAP, VS, CC/CSTS before anything is enabled; PCI identity. */
static void test_registers(void **state)
{
	struct fx *f = *state;
	uint64_t cap = rd64(f, NVME_REG_CAP);
	uint32_t v = 0;

	assert_int_equal(cap & 0xffff, 1023); /* MQES */
	assert_true(cap & NVME_CAP_CQR);
	assert_int_equal((cap >> 32) & 0xf, 0); /* DSTRD */
	assert_true(cap & NVME_CAP_CSS_NVM);
	assert_int_equal((cap >> 48) & 0xff, 0); /* MPSMIN/MAX 4K */
	assert_true(((cap >> 24) & 0xff) > 0);	 /* TO */
	assert_int_equal(rd32(f, NVME_REG_CAP), (uint32_t)cap);
	assert_int_equal(rd32(f, NVME_REG_VS), 0x10400);
	assert_int_equal(rd32(f, NVME_REG_CSTS), 0);
	assert_int_equal(rd32(f, NVME_REG_CC), 0);
	/* A byte read gets its part of the dword. */
	assert_int_equal(
		mu_client_region_read(f->c, BAR0, NVME_REG_VS + 2, &v, 1), 0);
	assert_int_equal(v, 1);
	/* Read-only registers ignore writes. */
	wr32(f, NVME_REG_VS, 0);
	wr32(f, NVME_REG_CSTS, 0xff);
	assert_int_equal(rd32(f, NVME_REG_VS), 0x10400);
	assert_int_equal(rd32(f, NVME_REG_CSTS), 0);
	/* Class code 01:08:02 (NVM Express I/O controller). */
	assert_int_equal(mu_client_region_read(f->c, MU_PCI_CONFIG_REGION_INDEX,
					       8, &v, 4),
			 0);
	assert_int_equal(v >> 8, 0x010802);
}

/* 7.6.1: enable needs a configuration we run; a bad one sets CFS (3.1.6)
 * until the host clears EN. 7.6.2: shutdown reports SHST complete. */
static void test_enable_disable(void **state)
{
	struct fx *f = *state;

	enable(f, 2);
	wr32(f, NVME_REG_CC, 6u << 16 | 4u << 20); /* EN 1 -> 0 */
	assert_true(wait_csts(f, NVME_CSTS_RDY, 0, 2000));
	/* Memory page size 8 KiB: CAP.MPSMAX is 4 KiB. */
	wr32(f, NVME_REG_CC, 1u << 7 | NVME_CC_EN);
	assert_true(wait_csts(f, NVME_CSTS_CFS | NVME_CSTS_RDY, NVME_CSTS_CFS,
			      2000));
	wr32(f, NVME_REG_CC, 0);
	assert_int_equal(rd32(f, NVME_REG_CSTS), 0);
	/* An admin queue of one entry is not a queue. */
	wr32(f, NVME_REG_AQA, 0);
	wr32(f, NVME_REG_CC, NVME_CC_EN);
	assert_true(wait_csts(f, NVME_CSTS_CFS, NVME_CSTS_CFS, 2000));
	wr32(f, NVME_REG_CC, 0);
	enable(f, QENTRIES);
	wr32(f, NVME_REG_CC,
	     6u << 16 | 4u << 20 | NVME_CC_EN | NVME_CC_SHN_NORMAL);
	assert_true(wait_csts(f, NVME_CSTS_SHST_MASK, NVME_CSTS_SHST_COMPLETE,
			      5000));
	wr32(f, NVME_REG_CC, 0);
	assert_true(wait_csts(f, 0xffffffff, 0, 2000));
}

/* 5.15: Identify controller, namespace, active list, descriptors. */
static void test_identify(void **state)
{
	struct fx *f = *state;
	const uint64_t at = DATA_IOVA + 0x200; /* PRP1 with an offset */
	uint8_t *d = gp(f, at);

	assert_int_equal(identify(f, NVME_CNS_CTRL, 0, at), 0);
	assert_int_equal(u16at(d + NVME_IDC_VID), NVME_PCI_VENDOR);
	assert_memory_equal(d + NVME_IDC_MN, "muser-nvme ", 11);
	assert_int_equal(d[NVME_IDC_MDTS], 7);
	assert_int_equal(u32at(d + NVME_IDC_VER), 0x10400);
	assert_int_equal(d[NVME_IDC_SQES], 0x66);
	assert_int_equal(d[NVME_IDC_CQES], 0x44);
	assert_int_equal(u32at(d + NVME_IDC_NN), 1);
	assert_int_equal(u16at(d + NVME_IDC_ONCS),
			 NVME_ONCS_DSM | NVME_ONCS_WRITE_ZEROES);
	assert_int_equal(d[NVME_IDC_VWC] & 1, 1);
	assert_memory_equal(d + NVME_IDC_SUBNQN, "nqn.", 4);

	assert_int_equal(identify(f, NVME_CNS_NS, 1, at), 0);
	assert_int_equal(u64at(d + NVME_IDNS_NSZE), IMG_SIZE / 512);
	assert_int_equal(u64at(d + NVME_IDNS_NCAP), IMG_SIZE / 512);
	assert_int_equal((u32at(d + NVME_IDNS_LBAF0) >> 16) & 0xff, 9);

	assert_int_equal(identify(f, NVME_CNS_NS_ACTIVE_LIST, 0, at), 0);
	assert_int_equal(u32at(d), 1);
	assert_int_equal(u32at(d + 4), 0);
	assert_int_equal(identify(f, NVME_CNS_NS_ACTIVE_LIST, 1, at), 0);
	assert_int_equal(u32at(d), 0);

	assert_int_equal(identify(f, NVME_CNS_NS_DESC_LIST, 1, at), 0);
	assert_int_equal(d[0], NVME_NIDT_EUI64);
	assert_int_equal(d[1], 8);
	assert_int_equal(d[12], NVME_NIDT_NGUID);

	/* 5.15.2.1: Invalid Namespace or Format for an NSID that is not
	 * ours; 5.15.1: Invalid Field for a CNS we don't have. */
	assert_int_equal(identify(f, NVME_CNS_NS, 2, at),
			 ST(NVME_SC_INVALID_NS));
	assert_int_equal(identify(f, NVME_CNS_NS, 0, at),
			 ST(NVME_SC_INVALID_NS));
	assert_int_equal(identify(f, NVME_CNS_NS_ACTIVE_LIST, 0xfffffffe, at),
			 ST(NVME_SC_INVALID_NS));
	assert_int_equal(identify(f, 0x1f, 0, at), ST(NVME_SC_INVALID_FIELD));
	/* The data goes nowhere the client did not map: Data Transfer
	 * Error (4.6.1.2.1), and the controller keeps working. */
	assert_int_equal(identify(f, NVME_CNS_CTRL, 0, 0x80000000ull),
			 NVME_STATUS(0, NVME_SC_DATA_XFER_ERROR));
	assert_int_equal(identify(f, NVME_CNS_CTRL, 0, at), 0);
}

/* 5.3-5.6 and 5.21.1.7: queue creation, deletion and Number of Queues. */
static void test_queues(void **state)
{
	struct fx *f = *state;
	struct nvme_sqe c;
	uint32_t dw0 = 0;

#define CQ(qid, n, fl, pv)                                                     \
	((struct nvme_sqe){.opcode = NVME_ADM_CREATE_CQ,                       \
			   .prp1 = (pv),                                       \
			   .cdw10 = ((n)-1) << 16 | (qid),                     \
			   .cdw11 = (fl)})
#define SQ(qid, n, cqid, pv)                                                   \
	((struct nvme_sqe){.opcode = NVME_ADM_CREATE_SQ,                       \
			   .prp1 = (pv),                                       \
			   .cdw10 = ((n)-1) << 16 | (qid),                     \
			   .cdw11 = (cqid) << 16 | NVME_QUEUE_PC})
	/* Ask for 8 pairs, get the 4 offered (0-based in DW0). */
	c = (struct nvme_sqe){.opcode = NVME_ADM_SET_FEATURES,
			      .cdw10 = NVME_FEAT_NUM_QUEUES,
			      .cdw11 = 7u << 16 | 7u};
	assert_int_equal(exec(f, 0, &c, &dw0), 0);
	assert_int_equal(dw0, 3u << 16 | 3u);
	c.cdw11 = 0xffff;
	assert_int_equal(exec(f, 0, &c, NULL), ST(NVME_SC_INVALID_FIELD));

	/* Invalid Queue Identifier: 0, beyond the 4 granted. */
	c = CQ(0, 16, 3, CQ1_IOVA);
	assert_int_equal(exec(f, 0, &c, NULL), ST_CMD(NVME_SC_QID_INVALID));
	c = CQ(5, 16, 3, CQ1_IOVA);
	assert_int_equal(exec(f, 0, &c, NULL), ST_CMD(NVME_SC_QID_INVALID));
	/* Invalid Queue Size: 1 entry, or more than MQES + 1. */
	c = CQ(1, 1, 3, CQ1_IOVA);
	assert_int_equal(exec(f, 0, &c, NULL), ST_CMD(NVME_SC_QUEUE_SIZE));
	c = CQ(1, 1025, 3, CQ1_IOVA);
	assert_int_equal(exec(f, 0, &c, NULL), ST_CMD(NVME_SC_QUEUE_SIZE));
	/* Invalid Interrupt Vector: we have 5 (admin + 4). */
	c = CQ(1, 16, 5u << 16 | 3, CQ1_IOVA);
	assert_int_equal(exec(f, 0, &c, NULL), ST_CMD(NVME_SC_IRQ_VECTOR));
	/* CAP.CQR: queues must be physically contiguous. */
	c = CQ(1, 16, 1u << 16 | NVME_CQ_IEN, CQ1_IOVA);
	assert_int_equal(exec(f, 0, &c, NULL), ST(NVME_SC_INVALID_FIELD));
	c = CQ(1, 16, 1u << 16 | 3, CQ1_IOVA + 0x10);
	assert_int_equal(exec(f, 0, &c, NULL), ST(NVME_SC_PRP_OFFSET_INVALID));
	/* 5.4: an SQ needs an existing I/O CQ: Completion Queue Invalid. */
	c = SQ(1, 16, 1, SQ1_IOVA);
	assert_int_equal(exec(f, 0, &c, NULL), ST_CMD(NVME_SC_CQ_INVALID));
	c = SQ(1, 16, 0, SQ1_IOVA);
	assert_int_equal(exec(f, 0, &c, NULL), ST_CMD(NVME_SC_CQ_INVALID));

	create_qpair(f, 1, SQ1_IOVA, CQ1_IOVA, 16);
	c = CQ(1, 16, 1u << 16 | 3, CQ1_IOVA);
	assert_int_equal(exec(f, 0, &c, NULL), ST_CMD(NVME_SC_QID_INVALID));
	/* Number of Queues once queues exist: Command Sequence Error. */
	c = (struct nvme_sqe){.opcode = NVME_ADM_SET_FEATURES,
			      .cdw10 = NVME_FEAT_NUM_QUEUES};
	assert_int_equal(exec(f, 0, &c, NULL), ST(NVME_SC_CMD_SEQ_ERROR));
	/* 5.5: a CQ an SQ posts to can't go: Invalid Queue Deletion. */
	c = (struct nvme_sqe){.opcode = NVME_ADM_DELETE_CQ, .cdw10 = 1};
	assert_int_equal(exec(f, 0, &c, NULL), ST_CMD(NVME_SC_QUEUE_DELETION));
	c = (struct nvme_sqe){.opcode = NVME_ADM_DELETE_SQ, .cdw10 = 0};
	assert_int_equal(exec(f, 0, &c, NULL), ST_CMD(NVME_SC_QID_INVALID));
	c.cdw10 = 2;
	assert_int_equal(exec(f, 0, &c, NULL), ST_CMD(NVME_SC_QID_INVALID));
	c.cdw10 = 1;
	assert_int_equal(exec(f, 0, &c, NULL), 0);
	c = (struct nvme_sqe){.opcode = NVME_ADM_DELETE_CQ, .cdw10 = 1};
	assert_int_equal(exec(f, 0, &c, NULL), 0);
	assert_int_equal(exec(f, 0, &c, NULL), ST_CMD(NVME_SC_QID_INVALID));
	/* Queues can be made again, with the same IDs. */
	create_qpair(f, 1, SQ1_IOVA, CQ1_IOVA, 16);
#undef CQ
#undef SQ
}

/* 5.9, 5.21: features; 5.14: log pages; 4.2/5: bad admin commands. */
static void test_features_and_logs(void **state)
{
	struct fx *f = *state;
	uint8_t *d = gp(f, DATA_IOVA);
	struct nvme_sqe c;
	uint32_t dw0 = 0;

	c = (struct nvme_sqe){.opcode = NVME_ADM_GET_FEATURES,
			      .cdw10 = NVME_FEAT_VOLATILE_WC};
	assert_int_equal(exec(f, 0, &c, &dw0), 0);
	assert_int_equal(dw0, 1);
	c.cdw10 = 0x7e; /* a feature we don't have */
	assert_int_equal(exec(f, 0, &c, NULL), ST(NVME_SC_INVALID_FIELD));
	c = (struct nvme_sqe){.opcode = NVME_ADM_SET_FEATURES,
			      .cdw10 = 1u << 31 | NVME_FEAT_ARBITRATION};
	assert_int_equal(exec(f, 0, &c, NULL),
			 ST_CMD(NVME_SC_FEAT_NOT_SAVEABLE));
	c = (struct nvme_sqe){.opcode = NVME_ADM_SET_FEATURES,
			      .cdw10 = NVME_FEAT_POWER_MGMT,
			      .cdw11 = 1};
	assert_int_equal(exec(f, 0, &c, NULL), ST(NVME_SC_INVALID_FIELD));

	/* SMART log: 512 bytes; per-namespace it is not (LPA bit 0). */
	c = (struct nvme_sqe){.opcode = NVME_ADM_GET_LOG_PAGE,
			      .nsid = NVME_NSID_ALL,
			      .cdw10 = (512 / 4 - 1) << 16 | NVME_LOG_SMART};
	set_prps(f, &c, DATA_IOVA, 512);
	memset(d, 0xee, 512);
	assert_int_equal(exec(f, 0, &c, NULL), 0);
	assert_int_equal(d[3], 100); /* available spare */
	c.nsid = 1;
	assert_int_equal(exec(f, 0, &c, NULL), ST(NVME_SC_INVALID_FIELD));
	c.nsid = NVME_NSID_ALL;
	c.cdw12 = 2; /* offset not dword aligned */
	assert_int_equal(exec(f, 0, &c, NULL), ST(NVME_SC_INVALID_FIELD));
	c.cdw12 = 512; /* past the log */
	assert_int_equal(exec(f, 0, &c, NULL), ST(NVME_SC_INVALID_FIELD));
	c.cdw12 = 0;
	c.cdw10 = (512 / 4 - 1) << 16 | 0x7f;
	assert_int_equal(exec(f, 0, &c, NULL),
			 ST_CMD(NVME_SC_INVALID_LOG_PAGE));
	c.cdw10 = (512 / 4 - 1) << 16 | NVME_LOG_FW_SLOT;
	assert_int_equal(exec(f, 0, &c, NULL), 0);
	assert_int_equal(d[0], 1);

	/* Abort: "not aborted" is a valid answer (5.1). */
	c = (struct nvme_sqe){.opcode = NVME_ADM_ABORT, .cdw10 = 99u << 16};
	assert_int_equal(exec(f, 0, &c, &dw0), 0);
	assert_int_equal(dw0 & 1, 1);
	/* An opcode we don't have, and fused/SGL flags we don't offer. */
	c = (struct nvme_sqe){.opcode = 0x80};
	assert_int_equal(exec(f, 0, &c, NULL), ST(NVME_SC_INVALID_OPCODE));
	c = (struct nvme_sqe){.opcode = NVME_ADM_IDENTIFY,
			      .flags = 1,
			      .cdw10 = NVME_CNS_CTRL};
	assert_int_equal(exec(f, 0, &c, NULL), ST(NVME_SC_INVALID_FIELD));
	c.flags = 1u << 6;
	assert_int_equal(exec(f, 0, &c, NULL), ST(NVME_SC_INVALID_FIELD));
}

/* 5.2 + 3.1.16/17: doorbell writes for queues that don't exist or with
 * values outside the queue are ignored and reported as asynchronous
 * events (Error status, Invalid Doorbell Register / Write Value), one
 * at a time until the host reads the Error Information log. */
static void test_doorbells_and_events(void **state)
{
	struct fx *f = *state;
	struct nvme_sqe aer = {.opcode = NVME_ADM_ASYNC_EVENT};
	struct nvme_sqe log = {.opcode = NVME_ADM_GET_LOG_PAGE,
			       .cdw10 = (64 / 4 - 1) << 16 | NVME_LOG_ERROR};
	struct nvme_cqe e;
	uint32_t dw0 = 0;

	create_qpair(f, 1, SQ1_IOVA, CQ1_IOVA, 16);
	aer.cid = 0xa0;
	submit(f, 0, &aer);
	assert_int_equal(reap(f, 0, &e, 100), -ETIMEDOUT); /* outstanding */

	wr32(f, NVME_SQ_TDBL(1), 16); /* tail == size */
	assert_int_equal(reap(f, 0, &e, 2000), 0);
	assert_int_equal(e.cid, 0xa0);
	assert_int_equal(e.status >> 1, 0);
	assert_int_equal(e.dw0, NVME_AER_DW0(0, 1, NVME_LOG_ERROR));

	/* Masked until the log is read: the next error goes unreported. */
	aer.cid = 0xa1;
	submit(f, 0, &aer);
	wr32(f, NVME_SQ_TDBL(3), 1); /* no SQ 3 */
	assert_int_equal(reap(f, 0, &e, 200), -ETIMEDOUT);
	set_prps(f, &log, DATA_IOVA, 64);
	assert_int_equal(exec(f, 0, &log, NULL), 0);
	/* The newest entry first; the unreported error is logged too
	 * (5.14.1.1: the error count counts every error). */
	assert_int_equal(u64at(gp(f, DATA_IOVA)), 2);
	/* Reading it unmasks; a new event arrives on the waiting AER. */
	wr32(f, NVME_CQ_HDBL(7), 0); /* beyond the queues we have */
	assert_int_equal(reap(f, 0, &e, 2000), 0);
	assert_int_equal(e.cid, 0xa1);
	assert_int_equal(e.dw0, NVME_AER_DW0(0, 0, NVME_LOG_ERROR));
	assert_int_equal(exec(f, 0, &log, NULL), 0);

	/* A CQ head past what we posted is an invalid value too. */
	aer.cid = 0xa2;
	submit(f, 0, &aer);
	wr32(f, NVME_CQ_HDBL(1), 5);
	assert_int_equal(reap(f, 0, &e, 2000), 0);
	assert_int_equal(e.dw0, NVME_AER_DW0(0, 1, NVME_LOG_ERROR));
	assert_int_equal(exec(f, 0, &log, NULL), 0);

	/* The queue still works after all that. */
	struct nvme_sqe rd = rw_cmd(NVME_CMD_READ, 0, 1, DATA_IOVA, 0);

	assert_int_equal(exec(f, 1, &rd, NULL), 0);

	/* 5.2: AERL + 1 (4) requests may be outstanding; the 5th gets
	 * Asynchronous Event Request Limit Exceeded. */
	for (uint16_t i = 0; i < 4; i++) {
		aer.cid = (uint16_t)(0xb0 + i);
		submit(f, 0, &aer);
	}
	aer.cid = 0xb4;
	submit(f, 0, &aer);
	/* Workers run admin commands in parallel: whichever of the five
	 * came last to the limit is the one refused. */
	assert_int_equal(reap(f, 0, &e, 2000), 0);
	assert_in_range(e.cid, 0xb0, 0xb4);
	assert_int_equal(e.status >> 1, ST_CMD(NVME_SC_AER_LIMIT));
	(void)dw0;
}

/* 4.6 / 7.2: the controller never overwrites a completion the host has
 * not consumed; with a 2-entry CQ (room for one) and 6 commands, one
 * completion at a time appears as the host moves the head. */
static void test_cq_full(void **state)
{
	struct fx *f = *state;
	struct nvme_sqe c = {.opcode = NVME_ADM_CREATE_CQ,
			     .prp1 = CQ1_IOVA,
			     .cdw10 = 1u << 16 | 1,
			     .cdw11 = 1u << 16 | 3};
	struct nvme_cqe e;
	bool seen[6] = {false};

	memset(gp(f, CQ1_IOVA), 0, 4096);
	assert_int_equal(exec(f, 0, &c, NULL), 0);
	c = (struct nvme_sqe){.opcode = NVME_ADM_CREATE_SQ,
			      .prp1 = SQ1_IOVA,
			      .cdw10 = 15u << 16 | 1,
			      .cdw11 = 1u << 16 | NVME_QUEUE_PC};
	assert_int_equal(exec(f, 0, &c, NULL), 0);
	f->sq[1] = (struct hq){SQ1_IOVA, 16, 0, 0, true};
	f->cq[1] = (struct hq){CQ1_IOVA, 2, 0, 0, true};
	for (uint16_t i = 0; i < 6; i++) {
		c = rw_cmd(NVME_CMD_READ, i, 1, DATA_IOVA + 512u * i, 0);
		c.cid = i;
		submit(f, 1, &c);
	}
	for (int i = 0; i < 6; i++) {
		/* Before we consume, the slot after the head stays empty:
		 * its phase tag is not the one the next pass writes. */
		unsigned s2 = f->cq[1].head + 1;
		bool ph = f->cq[1].phase;

		if (s2 == 2) {
			s2 = 0;
			ph = !ph;
		}
		usleep(20000);
		assert_int_not_equal(
			((struct nvme_cqe *)gp(f, CQ1_IOVA))[s2].status & 1,
			ph);
		assert_int_equal(reap(f, 1, &e, 2000), 0);
		assert_int_equal(e.status >> 1, 0);
		assert_true(e.cid < 6 && !seen[e.cid]);
		seen[e.cid] = true;
	}
	assert_int_equal(reap(f, 1, &e, 100), -ETIMEDOUT);
}

/* Completions raise the CQ's MSI-X vector; a polled CQ (IEN 0) none. */
static void test_interrupts(void **state)
{
	struct fx *f = *state;
	struct nvme_sqe c;

	create_qpair(f, 2, SQ1_IOVA, CQ1_IOVA, 16);
	eventfd_wait(f->efd[2], 0);
	c = rw_cmd(NVME_CMD_READ, 0, 8, DATA_IOVA, 0);
	assert_int_equal(exec(f, 2, &c, NULL), 0);
	assert_true(eventfd_wait(f->efd[2], 2000) >= 1);
	assert_int_equal(eventfd_wait(f->efd[1], 0), 0);
	assert_true(eventfd_wait(f->efd[0], 0) >= 1); /* admin: vector 0 */

	c = (struct nvme_sqe){.opcode = NVME_ADM_CREATE_CQ,
			      .prp1 = CQ1_IOVA + 0x1000 * 8,
			      .cdw10 = 15u << 16 | 3,
			      .cdw11 = 3u << 16 | NVME_QUEUE_PC};
	assert_int_equal(exec(f, 0, &c, NULL), 0);
	c = (struct nvme_sqe){.opcode = NVME_ADM_CREATE_SQ,
			      .prp1 = SQ1_IOVA + 0x1000 * 8,
			      .cdw10 = 15u << 16 | 3,
			      .cdw11 = 3u << 16 | NVME_QUEUE_PC};
	assert_int_equal(exec(f, 0, &c, NULL), 0);
	f->sq[3] = (struct hq){SQ1_IOVA + 0x8000, 16, 0, 0, true};
	f->cq[3] = (struct hq){CQ1_IOVA + 0x8000, 16, 0, 0, true};
	memset(gp(f, CQ1_IOVA + 0x8000), 0, 4096);
	c = rw_cmd(NVME_CMD_READ, 0, 8, DATA_IOVA, 0);
	assert_int_equal(exec(f, 3, &c, NULL), 0);
	assert_int_equal(eventfd_wait(f->efd[3], 50), 0);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_registers,
						fx_setup_disabled, fx_teardown),
		cmocka_unit_test_setup_teardown(test_enable_disable,
						fx_setup_disabled, fx_teardown),
		cmocka_unit_test_setup_teardown(test_identify, fx_setup,
						fx_teardown),
		cmocka_unit_test_setup_teardown(test_queues, fx_setup,
						fx_teardown),
		cmocka_unit_test_setup_teardown(test_features_and_logs,
						fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_doorbells_and_events,
						fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_cq_full, fx_setup,
						fx_teardown),
		cmocka_unit_test_setup_teardown(test_interrupts, fx_setup,
						fx_teardown),
	};

	return nvme_run_tests(argc, argv, "nvme", tests,
			      sizeof(tests) / sizeof(tests[0]));
}
