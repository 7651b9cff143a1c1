/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * commands.h - the one list of vfio-user commands.
 *
 * Every row says everything muser knows about a command: its number
 * (MU_CMD_<id>) and name (#id), the fixed part of its request payload,
 * the fds it may carry, the payload check (wire/check.c), the server's
 * handler (src/device) and what the server must do around it. The
 * validator and the dispatcher both expand this list, each taking the
 * columns it needs, so they cannot disagree about which commands exist.
 *
 * Columns: X(id, min_len, max_fds, check, handler, flags)
 *   check    static int check_<x>(msg, limits) in check.c, or NULL
 *   handler  mu_h_<x>() in libmuser, or NULL: never served (see flags)
 */
#ifndef MU_COMMANDS_H
#define MU_COMMANDS_H

/* flags */
#define MU_OP_QUIESCE 0x1   /* the device stops DMA around it */
#define MU_OP_NEST 0x2	    /* may run while a handler waits for DMA */
#define MU_OP_TO_CLIENT 0x4 /* server -> client only: refused at the server */
#define MU_OP_REMOVED 0x8   /* gone from the spec: always ENOTSUP */
/* fds allowed per the negotiated limit (SET_IRQS: one per vector) */
#define MU_FDS_PER_LIMIT (~0u)

/*
 * Nestable commands are what a vCPU may be blocked on while the server
 * waits for a DMA reply (docs/protocol.md 7); never what changes the
 * maps, resets or migrates the device.
 */
#define MU_COMMANDS(X)                                                         \
	X(VERSION, sizeof(struct mu_version), 0, check_version, mu_h_version,  \
	  0)                                                                   \
	X(DMA_MAP, sizeof(struct mu_dma_map), 1, check_dma_map, mu_h_dma_map,  \
	  MU_OP_QUIESCE)                                                       \
	X(DMA_UNMAP, sizeof(struct mu_dma_unmap), 0, check_dma_unmap,          \
	  mu_h_dma_unmap, MU_OP_QUIESCE)                                       \
	X(DEVICE_GET_INFO, sizeof(struct mu_device_info), 0, check_argsz16,    \
	  mu_h_get_info, MU_OP_NEST)                                           \
	X(DEVICE_GET_REGION_INFO, sizeof(struct mu_region_info), 0,            \
	  check_region_info, mu_h_region_info, MU_OP_NEST)                     \
	X(DEVICE_GET_REGION_IO_FDS, sizeof(struct mu_region_io_fds_request),   \
	  0, check_io_fds, mu_h_io_fds, MU_OP_NEST)                            \
	X(DEVICE_GET_IRQ_INFO, sizeof(struct mu_irq_info), 0, check_argsz16,   \
	  mu_h_irq_info, MU_OP_NEST)                                           \
	X(DEVICE_SET_IRQS, sizeof(struct mu_irq_set), MU_FDS_PER_LIMIT,        \
	  check_set_irqs, mu_h_set_irqs, MU_OP_NEST)                           \
	X(REGION_READ, sizeof(struct mu_region_access), 0, check_region_read,  \
	  mu_h_region_read, MU_OP_NEST)                                        \
	X(REGION_WRITE, sizeof(struct mu_region_access), 0,                    \
	  check_region_write, mu_h_region_write, MU_OP_NEST)                   \
	X(DMA_READ, 0, 0, NULL, NULL, MU_OP_TO_CLIENT)                         \
	X(DMA_WRITE, 0, 0, NULL, NULL, MU_OP_TO_CLIENT)                        \
	X(DEVICE_RESET, 0, 0, check_reset, mu_h_reset, MU_OP_QUIESCE)          \
	X(DIRTY_PAGES, 0, 0, NULL, NULL, MU_OP_REMOVED)                        \
	X(REGION_WRITE_MULTI, sizeof(struct mu_write_multi), 0,                \
	  check_write_multi, mu_h_write_multi, MU_OP_NEST)                     \
	X(DEVICE_FEATURE, sizeof(struct mu_device_feature), 0, check_feature,  \
	  mu_h_feature, 0)                                                     \
	X(MIG_DATA_READ, sizeof(struct mu_mig_data), 0, check_mig_read,        \
	  mu_h_mig_read, 0)                                                    \
	X(MIG_DATA_WRITE, sizeof(struct mu_mig_data), 0, check_mig_write,      \
	  mu_h_mig_write, 0)

#endif
