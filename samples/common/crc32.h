/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * crc32.h - CRC-32 (IEEE 802.3, reflected: zlib's crc32()) for the
 * samples: dma-test's CHECKSUM operation and the migration stream.
 */
#ifndef MUSER_SAMPLE_CRC32_H
#define MUSER_SAMPLE_CRC32_H

#include <stddef.h>
#include <stdint.h>

/* crc is the running value, starting at 0 (pre/post inversion inside).
 * Safe from any thread. */
uint32_t sample_crc32(uint32_t crc, const void *p, size_t n);

#endif
