/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * muser/wire.h - the vfio-user protocol on the wire.
 *
 * Every message of the vfio-user specification as packed, fixed-width
 * structs in host byte order. Nothing here depends on libmuser or
 * libmuser-client: this header describes the protocol only. Constants that
 * vfio-user shares with Linux's <linux/vfio.h> are mirrored with an MU_
 * prefix (tests/unit/test-wire-linux.c checks they are equal).
 */
#ifndef MUSER_WIRE_H
#define MUSER_WIRE_H

#include <assert.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MU_PACKED __attribute__((packed))

/* Protocol version muser implements; see docs/protocol.md "Version". */
#define MU_PROTO_MAJOR 0
#define MU_PROTO_MINOR 2

/* Spec defaults for capabilities a peer leaves out. */
#define MU_DEFAULT_MAX_MSG_FDS 1u
#define MU_DEFAULT_MAX_DATA_XFER (1u << 20)
#define MU_DEFAULT_MAX_DMA_MAPS 65535u
#define MU_DEFAULT_PGSIZES 4096ull
/* Upper bound muser ever accepts for a single fd array (SCM_RIGHTS limit). */
#define MU_MAX_FDS_LIMIT 253u

enum mu_cmd {
	MU_CMD_VERSION = 1,
	MU_CMD_DMA_MAP = 2,
	MU_CMD_DMA_UNMAP = 3,
	MU_CMD_DEVICE_GET_INFO = 4,
	MU_CMD_DEVICE_GET_REGION_INFO = 5,
	MU_CMD_DEVICE_GET_REGION_IO_FDS = 6,
	MU_CMD_DEVICE_GET_IRQ_INFO = 7,
	MU_CMD_DEVICE_SET_IRQS = 8,
	MU_CMD_REGION_READ = 9,
	MU_CMD_REGION_WRITE = 10,
	MU_CMD_DMA_READ = 11,
	MU_CMD_DMA_WRITE = 12,
	MU_CMD_DEVICE_RESET = 13,
	MU_CMD_DIRTY_PAGES = 14, /* removed from the spec; always rejected */
	MU_CMD_REGION_WRITE_MULTI = 15,
	MU_CMD_DEVICE_FEATURE = 16,
	MU_CMD_MIG_DATA_READ = 17,
	MU_CMD_MIG_DATA_WRITE = 18,
	MU_CMD_MAX = 19,
};

/* ---- header ---------------------------------------------------------- */

#define MU_FLAG_TYPE_MASK 0xfu
#define MU_FLAG_TYPE_COMMAND 0x0u
#define MU_FLAG_TYPE_REPLY 0x1u
#define MU_FLAG_NO_REPLY (1u << 4)
#define MU_FLAG_ERROR (1u << 5)
#define MU_FLAG_KNOWN (MU_FLAG_TYPE_MASK | MU_FLAG_NO_REPLY | MU_FLAG_ERROR)

struct mu_hdr {
	uint16_t msg_id;
	uint16_t cmd;
	uint32_t size; /* whole message, header included */
	uint32_t flags;
	uint32_t error; /* positive errno in an error reply */
} MU_PACKED;

/* ---- VERSION (1) ----------------------------------------------------- */

struct mu_version {
	uint16_t major;
	uint16_t minor;
	/* followed by optional NUL-terminated JSON capabilities */
} MU_PACKED;

/* ---- DMA_MAP (2) / DMA_UNMAP (3) ------------------------------------- */

#define MU_DMA_MAP_FLAG_READ (1u << 0)
#define MU_DMA_MAP_FLAG_WRITE (1u << 1)
/* Old spec's dirty bitmap request; rejected (see docs/protocol.md). */
#define MU_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP (1u << 0)
/* Unmap every mapping; address and size must be 0 (Linux's value). */
#define MU_DMA_UNMAP_FLAG_ALL (1u << 1)

struct mu_dma_map {
	uint32_t argsz;
	uint32_t flags;
	uint64_t offset; /* into the passed fd */
	uint64_t addr;
	uint64_t size;
} MU_PACKED;

struct mu_dma_unmap {
	uint32_t argsz;
	uint32_t flags;
	uint64_t addr;
	uint64_t size;
} MU_PACKED;

/* ---- DEVICE_GET_INFO (4) --------------------------------------------- */

#define MU_DEVICE_FLAGS_RESET (1u << 0)
#define MU_DEVICE_FLAGS_PCI (1u << 1)

struct mu_device_info {
	uint32_t argsz;
	uint32_t flags;
	uint32_t num_regions;
	uint32_t num_irqs;
} MU_PACKED;

/* ---- DEVICE_GET_REGION_INFO (5) -------------------------------------- */

enum mu_pci_region {
	MU_PCI_BAR0_REGION_INDEX = 0,
	MU_PCI_BAR1_REGION_INDEX,
	MU_PCI_BAR2_REGION_INDEX,
	MU_PCI_BAR3_REGION_INDEX,
	MU_PCI_BAR4_REGION_INDEX,
	MU_PCI_BAR5_REGION_INDEX,
	MU_PCI_ROM_REGION_INDEX,
	MU_PCI_CONFIG_REGION_INDEX,
	MU_PCI_VGA_REGION_INDEX,
	MU_PCI_NUM_REGIONS,
};

#define MU_REGION_INFO_FLAG_READ (1u << 0)
#define MU_REGION_INFO_FLAG_WRITE (1u << 1)
#define MU_REGION_INFO_FLAG_MMAP (1u << 2)
#define MU_REGION_INFO_FLAG_CAPS (1u << 3)

struct mu_region_info {
	uint32_t argsz;
	uint32_t flags;
	uint32_t index;
	uint32_t cap_offset; /* from the start of this struct; 0 = none */
	uint64_t size;
	uint64_t offset; /* mmap offset into the passed fd */
} MU_PACKED;

struct mu_info_cap_header {
	uint16_t id;
	uint16_t version;
	uint32_t next; /* from the start of the region info; 0 = last */
} MU_PACKED;

#define MU_REGION_INFO_CAP_SPARSE_MMAP 1
#define MU_REGION_INFO_CAP_TYPE 2

struct mu_sparse_mmap_area {
	uint64_t offset;
	uint64_t size;
} MU_PACKED;

struct mu_region_info_cap_sparse_mmap {
	struct mu_info_cap_header header;
	uint32_t nr_areas;
	uint32_t reserved;
	struct mu_sparse_mmap_area areas[];
} MU_PACKED;

struct mu_region_info_cap_type {
	struct mu_info_cap_header header;
	uint32_t type;
	uint32_t subtype;
} MU_PACKED;

#define MU_REGION_TYPE_PCI_VENDOR_TYPE (1u << 31)
#define MU_REGION_TYPE_PCI_VENDOR_MASK 0xffffu

/* ---- DEVICE_GET_REGION_IO_FDS (6) ------------------------------------ */

#define MU_IO_FD_TYPE_IOEVENTFD 0
#define MU_IO_FD_TYPE_IOREGIONFD 1
/* KVM_IOEVENTFD flags carried in a sub-region entry. */
#define MU_IOEVENTFD_FLAG_DATAMATCH (1u << 0)
#define MU_IOEVENTFD_FLAG_PIO (1u << 1)

struct mu_region_io_fds_request {
	uint32_t argsz;
	uint32_t flags;
	uint32_t index;
	uint32_t count;
} MU_PACKED;

/* Both entry types are 40 bytes; last field is datamatch or user_data. */
struct mu_sub_region_ioeventfd {
	uint64_t offset;
	uint64_t size;
	uint32_t fd_index;
	uint32_t type;
	uint32_t flags;
	uint32_t padding;
	uint64_t datamatch;
} MU_PACKED;

struct mu_sub_region_ioregionfd {
	uint64_t offset;
	uint64_t size;
	uint32_t fd_index;
	uint32_t type;
	uint32_t flags;
	uint32_t padding;
	uint64_t user_data;
} MU_PACKED;

struct mu_region_io_fds_reply {
	uint32_t argsz;
	uint32_t flags;
	uint32_t index;
	uint32_t count;
	/* followed by count sub-region entries */
} MU_PACKED;

/* ---- DEVICE_GET_IRQ_INFO (7) / DEVICE_SET_IRQS (8) ------------------- */

enum mu_pci_irq {
	MU_PCI_INTX_IRQ_INDEX = 0,
	MU_PCI_MSI_IRQ_INDEX,
	MU_PCI_MSIX_IRQ_INDEX,
	MU_PCI_ERR_IRQ_INDEX,
	MU_PCI_REQ_IRQ_INDEX,
	MU_PCI_NUM_IRQS,
};

#define MU_IRQ_INFO_EVENTFD (1u << 0)
#define MU_IRQ_INFO_MASKABLE (1u << 1)
#define MU_IRQ_INFO_AUTOMASKED (1u << 2)
#define MU_IRQ_INFO_NORESIZE (1u << 3)

struct mu_irq_info {
	uint32_t argsz;
	uint32_t flags;
	uint32_t index;
	uint32_t count;
} MU_PACKED;

#define MU_IRQ_SET_DATA_NONE (1u << 0)
#define MU_IRQ_SET_DATA_BOOL (1u << 1)
#define MU_IRQ_SET_DATA_EVENTFD (1u << 2)
#define MU_IRQ_SET_ACTION_MASK (1u << 3)
#define MU_IRQ_SET_ACTION_UNMASK (1u << 4)
#define MU_IRQ_SET_ACTION_TRIGGER (1u << 5)
#define MU_IRQ_SET_DATA_TYPE_MASK                                              \
	(MU_IRQ_SET_DATA_NONE | MU_IRQ_SET_DATA_BOOL | MU_IRQ_SET_DATA_EVENTFD)
#define MU_IRQ_SET_ACTION_TYPE_MASK                                            \
	(MU_IRQ_SET_ACTION_MASK | MU_IRQ_SET_ACTION_UNMASK |                   \
	 MU_IRQ_SET_ACTION_TRIGGER)

struct mu_irq_set {
	uint32_t argsz;
	uint32_t flags;
	uint32_t index;
	uint32_t start;
	uint32_t count;
	/* DATA_BOOL: count bytes follow; DATA_EVENTFD: fds in ancillary data */
} MU_PACKED;

/* ---- REGION_READ (9) / REGION_WRITE (10) ----------------------------- */

struct mu_region_access {
	uint64_t offset;
	uint32_t region;
	uint32_t count;
	/* read reply and write request: count bytes of data follow */
} MU_PACKED;

/* ---- DMA_READ (11) / DMA_WRITE (12) ---------------------------------- */

/* Spec layout: u64 count, data at offset 16. */
struct mu_dma_access {
	uint64_t addr;
	uint64_t count;
} MU_PACKED;

/* QEMU's layout: u32 count, data at offset 12; QEMU's struct is not packed,
 * so its messages carry 4 more bytes (see docs/protocol.md). */
struct mu_dma_access32 {
	uint64_t addr;
	uint32_t count;
} MU_PACKED;

/* ---- REGION_WRITE_MULTI (15) ----------------------------------------- */

#define MU_WRITE_MULTI_DATA 8u
/* Most entries one message may carry (QEMU batches up to 200). */
#define MU_WRITE_MULTI_MAX 4096u

struct mu_write_multi_entry {
	uint64_t offset;
	uint32_t region;
	uint32_t count; /* 1..8 */
	uint8_t data[MU_WRITE_MULTI_DATA];
} MU_PACKED;

struct mu_write_multi {
	uint64_t wr_cnt;
	/* followed by wr_cnt entries */
} MU_PACKED;

/* ---- DEVICE_FEATURE (16) --------------------------------------------- */

#define MU_DEVICE_FEATURE_MASK 0xffffu
#define MU_DEVICE_FEATURE_GET (1u << 16)
#define MU_DEVICE_FEATURE_SET (1u << 17)
#define MU_DEVICE_FEATURE_PROBE (1u << 18)

#define MU_DEVICE_FEATURE_MIGRATION 1
#define MU_DEVICE_FEATURE_MIG_DEVICE_STATE 2
#define MU_DEVICE_FEATURE_DMA_LOGGING_START 6
#define MU_DEVICE_FEATURE_DMA_LOGGING_STOP 7
#define MU_DEVICE_FEATURE_DMA_LOGGING_REPORT 8

struct mu_device_feature {
	uint32_t argsz;
	uint32_t flags;
	/* followed by feature data */
} MU_PACKED;

#define MU_MIGRATION_STOP_COPY (1ull << 0)
#define MU_MIGRATION_P2P (1ull << 1)
#define MU_MIGRATION_PRE_COPY (1ull << 2)

struct mu_feature_migration {
	uint64_t flags;
} MU_PACKED;

enum mu_mig_state {
	MU_MIG_STATE_ERROR = 0,
	MU_MIG_STATE_STOP = 1,
	MU_MIG_STATE_RUNNING = 2,
	MU_MIG_STATE_STOP_COPY = 3,
	MU_MIG_STATE_RESUMING = 4,
	MU_MIG_STATE_RUNNING_P2P = 5,
	MU_MIG_STATE_PRE_COPY = 6,
	MU_MIG_STATE_PRE_COPY_P2P = 7,
	MU_MIG_STATE_COUNT = 8,
};

struct mu_feature_mig_state {
	uint32_t device_state;
	uint32_t data_fd; /* unused in vfio-user; must be ignored */
} MU_PACKED;

struct mu_dma_logging_range {
	uint64_t iova;
	uint64_t length;
} MU_PACKED;

struct mu_dma_logging_control {
	uint64_t page_size;
	uint32_t num_ranges;
	uint32_t reserved;
	/* followed by num_ranges ranges */
} MU_PACKED;

struct mu_dma_logging_report {
	uint64_t iova;
	uint64_t length;
	uint64_t page_size;
	/* reply: followed by the u64 bitmap */
} MU_PACKED;

/* ---- MIG_DATA_READ (17) / MIG_DATA_WRITE (18) ------------------------ */

struct mu_mig_data {
	uint32_t argsz;
	uint32_t size;
	/* read reply and write request: size bytes of data follow */
} MU_PACKED;

/* ---- layout checks ---------------------------------------------------- */

#define MU_CHECK_SIZE(t, n) static_assert(sizeof(t) == (n), #t " size")
#define MU_CHECK_OFF(t, f, n)                                                  \
	static_assert(offsetof(t, f) == (n), #t "." #f " offset")

MU_CHECK_SIZE(struct mu_hdr, 16);
MU_CHECK_OFF(struct mu_hdr, cmd, 2);
MU_CHECK_OFF(struct mu_hdr, size, 4);
MU_CHECK_OFF(struct mu_hdr, flags, 8);
MU_CHECK_OFF(struct mu_hdr, error, 12);
MU_CHECK_SIZE(struct mu_version, 4);
MU_CHECK_SIZE(struct mu_dma_map, 32);
MU_CHECK_OFF(struct mu_dma_map, offset, 8);
MU_CHECK_OFF(struct mu_dma_map, addr, 16);
MU_CHECK_OFF(struct mu_dma_map, size, 24);
MU_CHECK_SIZE(struct mu_dma_unmap, 24);
MU_CHECK_OFF(struct mu_dma_unmap, addr, 8);
MU_CHECK_OFF(struct mu_dma_unmap, size, 16);
MU_CHECK_SIZE(struct mu_device_info, 16);
MU_CHECK_OFF(struct mu_device_info, num_irqs, 12);
MU_CHECK_SIZE(struct mu_region_info, 32);
MU_CHECK_OFF(struct mu_region_info, cap_offset, 12);
MU_CHECK_OFF(struct mu_region_info, size, 16);
MU_CHECK_OFF(struct mu_region_info, offset, 24);
MU_CHECK_SIZE(struct mu_info_cap_header, 8);
MU_CHECK_SIZE(struct mu_sparse_mmap_area, 16);
MU_CHECK_SIZE(struct mu_region_info_cap_sparse_mmap, 16);
MU_CHECK_OFF(struct mu_region_info_cap_sparse_mmap, areas, 16);
MU_CHECK_SIZE(struct mu_region_info_cap_type, 16);
MU_CHECK_SIZE(struct mu_region_io_fds_request, 16);
MU_CHECK_SIZE(struct mu_region_io_fds_reply, 16);
MU_CHECK_SIZE(struct mu_sub_region_ioeventfd, 40);
MU_CHECK_OFF(struct mu_sub_region_ioeventfd, fd_index, 16);
MU_CHECK_OFF(struct mu_sub_region_ioeventfd, type, 20);
MU_CHECK_OFF(struct mu_sub_region_ioeventfd, datamatch, 32);
MU_CHECK_SIZE(struct mu_sub_region_ioregionfd, 40);
MU_CHECK_OFF(struct mu_sub_region_ioregionfd, user_data, 32);
MU_CHECK_SIZE(struct mu_irq_info, 16);
MU_CHECK_SIZE(struct mu_irq_set, 20);
MU_CHECK_OFF(struct mu_irq_set, count, 16);
MU_CHECK_SIZE(struct mu_region_access, 16);
MU_CHECK_OFF(struct mu_region_access, region, 8);
MU_CHECK_OFF(struct mu_region_access, count, 12);
MU_CHECK_SIZE(struct mu_dma_access, 16);
MU_CHECK_SIZE(struct mu_dma_access32, 12);
MU_CHECK_SIZE(struct mu_write_multi_entry, 24);
MU_CHECK_OFF(struct mu_write_multi_entry, data, 16);
MU_CHECK_SIZE(struct mu_write_multi, 8);
MU_CHECK_SIZE(struct mu_device_feature, 8);
MU_CHECK_SIZE(struct mu_feature_migration, 8);
MU_CHECK_SIZE(struct mu_feature_mig_state, 8);
MU_CHECK_SIZE(struct mu_dma_logging_range, 16);
MU_CHECK_SIZE(struct mu_dma_logging_control, 16);
MU_CHECK_SIZE(struct mu_dma_logging_report, 24);
MU_CHECK_SIZE(struct mu_mig_data, 8);

#ifdef __cplusplus
}
#endif
#endif /* MUSER_WIRE_H */
