/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The region messages: DEVICE_GET_INFO, DEVICE_GET_REGION_INFO (sparse
 * mmap and type caps, the memfd passed for mappable regions), REGION_READ,
 * REGION_WRITE and REGION_WRITE_MULTI. check.c validated each payload.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dev-internal.h"

int mu_h_get_info(struct mu_dev *dev, struct mu_msg *m, struct mu_reply *r)
{
	struct mu_device_info *i = mu_reply_inline(r, sizeof(*i));

	(void)m;
	i->argsz = sizeof(*i);
	i->flags = MU_DEVICE_FLAGS_PCI | MU_DEVICE_FLAGS_RESET;
	i->num_regions = dev->nr_regions;
	i->num_irqs = MU_PCI_NUM_IRQS;
	return 0;
}

static size_t caps_size(const struct mu_region *reg, unsigned index,
			bool mappable)
{
	size_t n = 0;

	if (mappable && reg->nr_sparse)
		n += sizeof(struct mu_region_info_cap_sparse_mmap) +
		     reg->nr_sparse * sizeof(struct mu_sparse_mmap_area);
	if (index >= MU_PCI_NUM_REGIONS)
		n += sizeof(struct mu_region_info_cap_type);
	return n;
}

static void write_caps(const struct mu_region *reg, unsigned index,
		       uint8_t *base, bool mappable)
{
	size_t off = sizeof(struct mu_region_info);
	struct mu_info_cap_header *prev = NULL;

	if (mappable && reg->nr_sparse) {
		struct mu_region_info_cap_sparse_mmap s = {
			.header = {MU_REGION_INFO_CAP_SPARSE_MMAP, 1, 0},
			.nr_areas = reg->nr_sparse,
		};
		size_t a = reg->nr_sparse * sizeof(*reg->sparse);

		memcpy(base + off, &s, sizeof(s));
		memcpy(base + off + sizeof(s), reg->sparse, a);
		prev = (struct mu_info_cap_header *)(base + off);
		off += sizeof(s) + a;
	}
	if (index >= MU_PCI_NUM_REGIONS) {
		struct mu_region_info_cap_type t = {
			.header = {MU_REGION_INFO_CAP_TYPE, 1, 0},
			.type = reg->type,
			.subtype = reg->subtype,
		};

		if (prev)
			prev->next = (uint32_t)off;
		memcpy(base + off, &t, sizeof(t));
	}
}

static void region_info_base(const struct mu_dev *dev, unsigned index,
			     struct mu_region_info *info)
{
	const struct mu_region *reg = &dev->regions[index];

	memset(info, 0, sizeof(*info));
	info->index = index;
	if (index == MU_PCI_CONFIG_REGION_INDEX) {
		info->size = dev->cfg_size;
		info->flags =
			MU_REGION_INFO_FLAG_READ | MU_REGION_INFO_FLAG_WRITE;
		return;
	}
	if (!reg->flags)
		return; /* absent: size 0, no access */
	info->size = reg->size;
	if (reg->flags & MU_REGION_READ)
		info->flags |= MU_REGION_INFO_FLAG_READ;
	if (reg->flags & MU_REGION_WRITE)
		info->flags |= MU_REGION_INFO_FLAG_WRITE;
	if (reg->mem && dev->peer.max_msg_fds)
		info->flags |= MU_REGION_INFO_FLAG_MMAP; /* the fd goes along */
}

int mu_h_region_info(struct mu_dev *dev, struct mu_msg *m, struct mu_reply *r)
{
	struct mu_region_info req, info;
	const struct mu_region *reg;
	size_t caps, need;
	bool mappable;
	uint8_t *out;

	memcpy(&req, m->payload, sizeof(req));
	if (req.index >= dev->nr_regions)
		return -EINVAL;
	reg = &dev->regions[req.index];
	region_info_base(dev, req.index, &info);
	mappable = reg->mem && dev->peer.max_msg_fds;
	caps = reg->flags ? caps_size(reg, req.index, mappable) : 0;
	need = sizeof(info) + caps;
	info.argsz = (uint32_t)need;
	if (caps)
		info.flags |= MU_REGION_INFO_FLAG_CAPS;
	if (req.argsz < need) {
		/* Too small: the fixed part says how much to ask for. CAPS
		 * stays clear, since no chain follows (QEMU refuses CAPS with
		 * cap_offset 0 instead of retrying with the bigger argsz). */
		info.flags &= ~MU_REGION_INFO_FLAG_CAPS;
		memcpy(mu_reply_inline(r, sizeof(info)), &info, sizeof(info));
		return 0;
	}
	if (caps)
		info.cap_offset = sizeof(info);
	out = mu_reply_alloc(r, need);
	if (!out)
		return -ENOMEM;
	memcpy(out, &info, sizeof(info));
	if (caps)
		write_caps(reg, req.index, out, mappable);
	if (mappable) {
		r->fds = &reg->client_fd;
		r->nfds = 1;
	}
	return 0;
}

int mu_h_region_read(struct mu_dev *dev, struct mu_msg *m, struct mu_reply *r)
{
	struct mu_region_access a;
	uint8_t *out;
	int err;

	memcpy(&a, m->payload, sizeof(a));
	out = mu_reply_alloc(r, sizeof(a) + a.count);
	if (!out)
		return -ENOMEM;
	err = mu_region_access(dev, a.region, a.offset, out + sizeof(a),
			       a.count, false);
	if (err < 0)
		return err;
	memcpy(out, &a, sizeof(a));
	return 0;
}

int mu_h_region_write(struct mu_dev *dev, struct mu_msg *m, struct mu_reply *r)
{
	struct mu_region_access a;
	int err;

	memcpy(&a, m->payload, sizeof(a));
	err = mu_region_access(dev, a.region, a.offset,
			       (void *)(m->payload + sizeof(a)), a.count, true);
	if (err < 0)
		return err;
	memcpy(mu_reply_inline(r, sizeof(a)), &a, sizeof(a));
	return 0;
}

int mu_h_write_multi(struct mu_dev *dev, struct mu_msg *m, struct mu_reply *r)
{
	struct mu_write_multi w;
	struct mu_write_multi_entry e;
	uint64_t i;
	int err;

	memcpy(&w, m->payload, sizeof(w));
	/* All or nothing as far as validation goes: a bad entry anywhere
	 * means no entry is written. */
	for (i = 0; i < w.wr_cnt; i++) {
		memcpy(&e, m->payload + sizeof(w) + i * sizeof(e), sizeof(e));
		err = mu_region_access_ok(dev, e.region, e.offset, e.count,
					  true);
		if (err < 0)
			return err;
	}
	for (i = 0; i < w.wr_cnt; i++) {
		memcpy(&e, m->payload + sizeof(w) + i * sizeof(e), sizeof(e));
		err = mu_region_access(dev, e.region, e.offset, e.data, e.count,
				       true);
		if (err < 0) {
			mu_log(dev, MU_LOG_WARN,
			       "WRITE_MULTI: entry %llu of %llu failed",
			       (unsigned long long)i,
			       (unsigned long long)w.wr_cnt);
			return err;
		}
	}
	memcpy(mu_reply_inline(r, sizeof(w)), &w, sizeof(w));
	return 0;
}
