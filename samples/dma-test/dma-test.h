/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * dma-test.h - the register interface of muser-dma-test, for programs
 * that drive it (tests, benchmarks). See README.md for the full story.
 */
#ifndef MUSER_DMA_TEST_H
#define MUSER_DMA_TEST_H

#include <stdint.h>

#define DMAT_VENDOR 0x7e57 /* not assigned in pci.ids: a test device */
#define DMAT_DEVICE 0x0001
#define DMAT_CLASS 0xff0000u

#define DMAT_MAGIC 0x5444554du /* reads "MUDT" in little-endian bytes */
#define DMAT_VERSION 1u
#define DMAT_MSIX_VECTORS 4u
#define DMAT_MAX_LEN (64u << 20)

/* BAR0: 4 KiB of 32-bit registers (4- or 8-byte accesses, 4-aligned). */
#define DMAT_BAR0_SIZE 0x1000u
#define DMAT_REG_MAGIC 0x00  /* RO */
#define DMAT_REG_CAPS 0x04   /* RO: vectors | version << 8 | MiB << 16 */
#define DMAT_REG_SRC_LO 0x08 /* RW: source IOVA */
#define DMAT_REG_SRC_HI 0x0c
#define DMAT_REG_DST_LO 0x10 /* RW: destination IOVA */
#define DMAT_REG_DST_HI 0x14
#define DMAT_REG_LEN 0x18	 /* RW: bytes, <= DMAT_MAX_LEN */
#define DMAT_REG_OP 0x1c	 /* RW: DMAT_OP_* */
#define DMAT_REG_FILL 0x20	 /* RW: 32-bit fill pattern */
#define DMAT_REG_CMD 0x24	 /* WO: DMAT_CMD_START; reads 0 */
#define DMAT_REG_STATUS 0x28	 /* DMAT_STATUS_*; DONE and ERROR are W1C */
#define DMAT_REG_RESULT 0x2c	 /* RO: CRC-32, or errno of a DMA fault */
#define DMAT_REG_IRQ_CTRL 0x30	 /* RW: DMAT_IRQ_EN | vector << 8 */
#define DMAT_REG_COMPLETED 0x34	 /* RO: operations finished so far */
#define DMAT_REG_SCRATCH 0x38	 /* RW: no effect */
#define DMAT_REG_BAR4_TRAPS 0x3c /* RO: trapped accesses to BAR4 page 0 */

#define DMAT_OP_COPY 1	   /* DST <- SRC, LEN bytes */
#define DMAT_OP_FILL 2	   /* DST <- FILL pattern repeated, LEN bytes */
#define DMAT_OP_CHECKSUM 3 /* RESULT <- CRC-32 (zlib's) of SRC, LEN bytes */

#define DMAT_CMD_START 1u

#define DMAT_STATUS_BUSY (1u << 0)
#define DMAT_STATUS_DONE (1u << 1)
#define DMAT_STATUS_ERROR (1u << 2)
#define DMAT_STATUS_CODE_SHIFT 8 /* DMAT_ERR_* while ERROR is set */
#define DMAT_STATUS_CODE_MASK (0xffu << DMAT_STATUS_CODE_SHIFT)
/* STATUS after a failure with DMAT_ERR_* code */
#define DMAT_STATUS_ERR(code)                                                  \
	(DMAT_STATUS_ERROR | (uint32_t)(code) << DMAT_STATUS_CODE_SHIFT)

#define DMAT_ERR_BAD_OP 1
#define DMAT_ERR_BAD_LEN 2
#define DMAT_ERR_DMA_READ 3  /* RESULT holds the errno */
#define DMAT_ERR_DMA_WRITE 4 /* RESULT holds the errno */
#define DMAT_ERR_ABORTED 5   /* a reset stopped the operation */

#define DMAT_IRQ_EN (1u << 0)
#define DMAT_IRQ_VECTOR_SHIFT 8
#define DMAT_IRQ_VECTOR_MASK (0xffu << DMAT_IRQ_VECTOR_SHIFT)

/* BAR2: the MSI-X table and PBA (emulated by libmuser). */
#define DMAT_BAR2_SIZE 0x1000u
#define DMAT_MSIX_TABLE_OFF 0x000u
#define DMAT_MSIX_PBA_OFF 0x800u

/* BAR4: 64 KiB of memory, 64-bit prefetchable. Page 0 is trapped (each
 * message access counts in BAR4_TRAPS); the rest may be mmapped. */
#define DMAT_BAR4_SIZE 0x10000u
#define DMAT_BAR4_MMAP_OFF 0x1000u
#define DMAT_BAR4_MMAP_SIZE (DMAT_BAR4_SIZE - DMAT_BAR4_MMAP_OFF)

#endif
