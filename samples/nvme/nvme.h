/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * nvme.h - the parts of the NVM Express Base Specification 1.4 that
 * muser-nvme implements: controller registers (section 3.1), queue
 * entries (4.2, 4.6), status codes (4.6.1.2), admin and NVM command
 * opcodes (5, 6) and the layout of the data structures it returns.
 * Spec only: no muser types here, so host-side tests include it too.
 * All multi-byte fields are little-endian (x86 hosts only, as the rest
 * of muser's samples).
 */
#ifndef MUSER_NVME_H
#define MUSER_NVME_H

#include <stdint.h>

/* ---- PCI identity of the sample ------------------------------------------ */

#define NVME_PCI_VENDOR 0x7e57 /* a test ID, as muser-dma-test's */
#define NVME_PCI_DEVICE 0x0002
#define NVME_PCI_CLASS 0x010802u /* mass storage, NVM, NVMe I/O controller */

/* ---- controller registers (3.1) ------------------------------------------ */

#define NVME_REG_CAP 0x00 /* 64-bit */
#define NVME_REG_VS 0x08
#define NVME_REG_INTMS 0x0c
#define NVME_REG_INTMC 0x10
#define NVME_REG_CC 0x14
#define NVME_REG_CSTS 0x1c
#define NVME_REG_NSSR 0x20
#define NVME_REG_AQA 0x24
#define NVME_REG_ASQ 0x28 /* 64-bit */
#define NVME_REG_ACQ 0x30 /* 64-bit */
#define NVME_REG_CMBLOC 0x38
#define NVME_REG_CMBSZ 0x3c
#define NVME_REG_DBS 0x1000 /* doorbells, stride 4 << CAP.DSTRD */

/* SQ y tail doorbell and CQ y head doorbell with CAP.DSTRD = 0. */
#define NVME_SQ_TDBL(y) (NVME_REG_DBS + 8u * (y))
#define NVME_CQ_HDBL(y) (NVME_REG_DBS + 8u * (y) + 4u)

#define NVME_CAP_MQES(x) ((uint64_t)(x)&0xffff) /* 0-based */
#define NVME_CAP_CQR (1ull << 16)
#define NVME_CAP_TO(x) ((uint64_t)(x) << 24) /* 500 ms units */
#define NVME_CAP_CSS_NVM (1ull << 37)
#define NVME_CAP_MPSMIN(x) ((uint64_t)(x) << 48)
#define NVME_CAP_MPSMAX(x) ((uint64_t)(x) << 52)

#define NVME_VS_1_4 0x00010400u

#define NVME_CC_EN (1u << 0)
#define NVME_CC_CSS(cc) (((cc) >> 4) & 0x7)
#define NVME_CC_MPS(cc) (((cc) >> 7) & 0xf)
#define NVME_CC_AMS(cc) (((cc) >> 11) & 0x7)
#define NVME_CC_SHN(cc) (((cc) >> 14) & 0x3)
#define NVME_CC_IOSQES(cc) (((cc) >> 16) & 0xf)
#define NVME_CC_IOCQES(cc) (((cc) >> 20) & 0xf)
#define NVME_CC_SHN_NORMAL (1u << 14)
#define NVME_CC_SHN_ABRUPT (2u << 14)
#define NVME_CC_SHN_MASK (3u << 14)

#define NVME_CSTS_RDY (1u << 0)
#define NVME_CSTS_CFS (1u << 1)
#define NVME_CSTS_SHST_MASK (3u << 2)
#define NVME_CSTS_SHST_OCCURRING (1u << 2)
#define NVME_CSTS_SHST_COMPLETE (2u << 2)

#define NVME_AQA_ASQS(a) ((a)&0xfff)	       /* 0-based */
#define NVME_AQA_ACQS(a) (((a) >> 16) & 0xfff) /* 0-based */

#define NVME_PAGE 4096u /* the only memory page size offered (MPS 0) */
#define NVME_SQE_SIZE 64u
#define NVME_CQE_SIZE 16u

/* ---- queue entries (4.2, 4.6) -------------------------------------------- */

struct nvme_sqe {
	uint8_t opcode;
	uint8_t flags; /* FUSE 1:0, PSDT 7:6 */
	uint16_t cid;
	uint32_t nsid;
	uint32_t cdw2, cdw3;
	uint64_t mptr;
	uint64_t prp1, prp2;
	uint32_t cdw10, cdw11, cdw12, cdw13, cdw14, cdw15;
};
_Static_assert(sizeof(struct nvme_sqe) == NVME_SQE_SIZE, "SQE is 64 bytes");

struct nvme_cqe {
	uint32_t dw0;
	uint32_t rsvd;
	uint16_t sqhd, sqid;
	uint16_t cid;
	uint16_t status; /* phase tag in bit 0, status field in 15:1 */
};
_Static_assert(sizeof(struct nvme_cqe) == NVME_CQE_SIZE, "CQE is 16 bytes");

#define NVME_SQE_FUSE(f) ((f)&0x3)
#define NVME_SQE_PSDT(f) (((f) >> 6) & 0x3)

/* Status field (4.6.1): SC 7:0, SCT 10:8, CRD 12:11, M 13, DNR 14. */
#define NVME_STATUS(sct, sc) ((uint16_t)(((sct) << 8) | (sc)))
#define NVME_DNR 0x4000u
#define NVME_STATUS_SCT(s) (((s) >> 8) & 0x7)
#define NVME_STATUS_SC(s) ((s)&0xff)

/* Generic command status, SCT 0 (4.6.1.2.1) */
#define NVME_SC_SUCCESS 0x00
#define NVME_SC_INVALID_OPCODE 0x01
#define NVME_SC_INVALID_FIELD 0x02
#define NVME_SC_DATA_XFER_ERROR 0x04
#define NVME_SC_INTERNAL 0x06
#define NVME_SC_ABORT_SQ_DELETION 0x08
#define NVME_SC_INVALID_NS 0x0b
#define NVME_SC_CMD_SEQ_ERROR 0x0c
#define NVME_SC_PRP_OFFSET_INVALID 0x13
#define NVME_SC_LBA_RANGE 0x80 /* NVM command set: LBA Out of Range */
#define NVME_SC_CAP_EXCEEDED 0x81
/* Command specific status, SCT 1 (4.6.1.2.2, 5.x) */
#define NVME_SCT_CMD 1
#define NVME_SC_CQ_INVALID 0x00
#define NVME_SC_QID_INVALID 0x01
#define NVME_SC_QUEUE_SIZE 0x02
#define NVME_SC_ABORT_LIMIT 0x03
#define NVME_SC_AER_LIMIT 0x05
#define NVME_SC_IRQ_VECTOR 0x08
#define NVME_SC_INVALID_LOG_PAGE 0x09
#define NVME_SC_QUEUE_DELETION 0x0c
#define NVME_SC_FEAT_NOT_SAVEABLE 0x0d
/* Media and data integrity errors, SCT 2 (4.6.1.2.3) */
#define NVME_SCT_MEDIA 2
#define NVME_SC_WRITE_FAULT 0x80
#define NVME_SC_READ_ERROR 0x81

/* ---- opcodes (5, 6) ------------------------------------------------------ */

enum nvme_admin_opcode {
	NVME_ADM_DELETE_SQ = 0x00,
	NVME_ADM_CREATE_SQ = 0x01,
	NVME_ADM_GET_LOG_PAGE = 0x02,
	NVME_ADM_DELETE_CQ = 0x04,
	NVME_ADM_CREATE_CQ = 0x05,
	NVME_ADM_IDENTIFY = 0x06,
	NVME_ADM_ABORT = 0x08,
	NVME_ADM_SET_FEATURES = 0x09,
	NVME_ADM_GET_FEATURES = 0x0a,
	NVME_ADM_ASYNC_EVENT = 0x0c,
	NVME_ADM_DBBUF_CONFIG = 0x7c,
};

enum nvme_io_opcode {
	NVME_CMD_FLUSH = 0x00,
	NVME_CMD_WRITE = 0x01,
	NVME_CMD_READ = 0x02,
	NVME_CMD_WRITE_ZEROES = 0x08,
	NVME_CMD_DSM = 0x09,
};

/* Read/Write/Write Zeroes CDW12 */
#define NVME_RW_NLB(cdw12) ((cdw12)&0xffff) /* 0-based */
#define NVME_RW_FUA (1u << 30)
/* Dataset Management CDW11 */
#define NVME_DSM_AD (1u << 2)

struct nvme_dsm_range {
	uint32_t attributes;
	uint32_t nlb; /* 1-based here */
	uint64_t slba;
};

/* Create I/O CQ / SQ CDW11 */
#define NVME_QUEUE_PC (1u << 0)
#define NVME_CQ_IEN (1u << 1)

/* Identify CNS values (5.15.1) */
#define NVME_CNS_NS 0x00
#define NVME_CNS_CTRL 0x01
#define NVME_CNS_NS_ACTIVE_LIST 0x02
#define NVME_CNS_NS_DESC_LIST 0x03
#define NVME_CNS_CS_NS 0x05
#define NVME_CNS_CS_CTRL 0x06
#define NVME_IDENTIFY_SIZE 4096u

/* Feature identifiers (5.21.1) */
#define NVME_FEAT_ARBITRATION 0x01
#define NVME_FEAT_POWER_MGMT 0x02
#define NVME_FEAT_TEMP_THRESH 0x04
#define NVME_FEAT_ERR_RECOVERY 0x05
#define NVME_FEAT_VOLATILE_WC 0x06
#define NVME_FEAT_NUM_QUEUES 0x07
#define NVME_FEAT_IRQ_COALESCE 0x08
#define NVME_FEAT_IRQ_CONFIG 0x09
#define NVME_FEAT_WRITE_ATOMIC 0x0a
#define NVME_FEAT_ASYNC_EVENT 0x0b

/* Log page identifiers (5.14.1) */
#define NVME_LOG_ERROR 0x01
#define NVME_LOG_SMART 0x02
#define NVME_LOG_FW_SLOT 0x03

/* Asynchronous event completion DW0 (5.2): type 2:0, info 15:8, LID 23:16 */
#define NVME_AER_TYPE_ERROR 0
#define NVME_AER_INFO_INVALID_DB_REG 0x00
#define NVME_AER_INFO_INVALID_DB_VALUE 0x01
#define NVME_AER_DW0(type, info, lid)                                          \
	((uint32_t)(type) | (uint32_t)(info) << 8 | (uint32_t)(lid) << 16)

/* ---- data structure offsets (Identify, 5.15.2) -----------------------------
 */

/* Identify Controller */
#define NVME_IDC_VID 0
#define NVME_IDC_SSVID 2
#define NVME_IDC_SN 4  /* 20 bytes, ASCII, space padded */
#define NVME_IDC_MN 24 /* 40 bytes */
#define NVME_IDC_FR 64 /* 8 bytes */
#define NVME_IDC_RAB 72
#define NVME_IDC_IEEE 73
#define NVME_IDC_MDTS 77
#define NVME_IDC_CNTLID 78
#define NVME_IDC_VER 80
#define NVME_IDC_CNTRLTYPE 111
#define NVME_IDC_OACS 256
#define NVME_IDC_ACL 258
#define NVME_IDC_AERL 259
#define NVME_IDC_FRMW 260
#define NVME_IDC_LPA 261
#define NVME_IDC_ELPE 262
#define NVME_IDC_WCTEMP 266
#define NVME_IDC_CCTEMP 268
#define NVME_IDC_SQES 512
#define NVME_IDC_CQES 513
#define NVME_IDC_NN 516
#define NVME_IDC_ONCS 520
#define NVME_IDC_VWC 525
#define NVME_IDC_SGLS 536
#define NVME_IDC_SUBNQN 768 /* 256 bytes */
#define NVME_IDC_PSD0 2048

#define NVME_OACS_DBBUF (1u << 8)
#define NVME_ONCS_DSM (1u << 2)
#define NVME_ONCS_WRITE_ZEROES (1u << 3)

/* Identify Namespace */
#define NVME_IDNS_NSZE 0
#define NVME_IDNS_NCAP 8
#define NVME_IDNS_NUSE 16
#define NVME_IDNS_NLBAF 25
#define NVME_IDNS_FLBAS 26
#define NVME_IDNS_NVMCAP 48
#define NVME_IDNS_NGUID 104
#define NVME_IDNS_EUI64 120
#define NVME_IDNS_LBAF0 128

/* Namespace identification descriptor types (5.15.2.3) */
#define NVME_NIDT_EUI64 1
#define NVME_NIDT_NGUID 2
#define NVME_NIDT_CSI 4

#define NVME_NSID_ALL 0xffffffffu

#endif
