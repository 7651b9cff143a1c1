/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * info.c - copying VFIO info structs with capability chains back to the
 * caller, with the kernel's argsz protocol.
 */
#include <string.h>

#include "preload.h"

void mp_copy_info(void *dst, uint32_t dst_argsz, void *buf, size_t info_size,
		  size_t total, size_t cap_offset_field)
{
	uint8_t *b = buf;
	uint32_t v;

	if (total > info_size && dst_argsz < total) {
		/* Too small for the chain: say how much is needed; the
		 * caller (QEMU) grows its buffer and asks again. */
		v = (uint32_t)total;
		memcpy(b, &v, sizeof(v));
		v = 0;
		memcpy(b + cap_offset_field, &v, sizeof(v));
		memcpy(dst, b, info_size < dst_argsz ? info_size : dst_argsz);
		return;
	}
	v = dst_argsz;
	memcpy(b, &v, sizeof(v));
	if (total > info_size) {
		v = (uint32_t)info_size;
		memcpy(b + cap_offset_field, &v, sizeof(v));
	} else if (dst_argsz < total) {
		total = dst_argsz;
	}
	memcpy(dst, b, total);
}
