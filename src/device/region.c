/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Regions: description, DEVICE_GET_INFO, DEVICE_GET_REGION_INFO (sparse
 * mmap and type caps, memfd passed for mappable regions), REGION_READ,
 * REGION_WRITE and REGION_WRITE_MULTI. Every access is range-checked
 * before any callback or memory is touched.
 */
#include <errno.h>
#include <stdio.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "dev-internal.h"

/* Device-specific regions go up to this index. */
#define MAX_REGIONS (MU_PCI_NUM_REGIONS + 32u)

static bool is_pow2(uint64_t v)
{
	return v && !(v & (v - 1));
}

static int check_bar(unsigned index, const struct mu_region_desc *d)
{
	uint32_t f = d->flags;

	if (index > MU_PCI_ROM_REGION_INDEX) {
		if (f & (MU_REGION_BAR_IO | MU_REGION_BAR_64 |
			 MU_REGION_BAR_PREFETCH))
			return -EINVAL;
		return 0;
	}
	if (!is_pow2(d->size))
		return -EINVAL;
	if (index == MU_PCI_ROM_REGION_INDEX)
		return (f & (MU_REGION_BAR_IO | MU_REGION_BAR_64 |
			     MU_REGION_BAR_PREFETCH | MU_REGION_WRITE)) ||
				       d->size < 2048 || d->size > (1ull << 31)
			       ? -EINVAL
			       : 0;
	if (f & MU_REGION_BAR_IO)
		return (f & (MU_REGION_BAR_64 | MU_REGION_BAR_PREFETCH)) ||
				       d->size < 4 || d->size > 256
			       ? -EINVAL
			       : 0;
	if (d->size < 16)
		return -EINVAL;
	if (f & MU_REGION_BAR_64)
		return index == MU_PCI_BAR5_REGION_INDEX ? -EINVAL : 0;
	return d->size > (1ull << 31) ? -EINVAL : 0;
}

static int check_sparse(const struct mu_region_desc *d)
{
	unsigned i;

	if (!d->nr_sparse)
		return 0;
	if (!(d->flags & MU_REGION_MEM) || !d->sparse || d->nr_sparse > 64)
		return -EINVAL;
	for (i = 0; i < d->nr_sparse; i++)
		if (!d->sparse[i].size ||
		    !mu_range_ok(d->sparse[i].offset, d->sparse[i].size,
				 d->size))
			return -EINVAL;
	return 0;
}

static int grow_regions(struct mu_dev *dev, unsigned n)
{
	struct mu_region *nr;
	unsigned i;

	if (n <= dev->nr_regions)
		return 0;
	nr = realloc(dev->regions, n * sizeof(*nr));
	if (!nr)
		return -ENOMEM;
	memset(nr + dev->nr_regions, 0, (n - dev->nr_regions) * sizeof(*nr));
	for (i = dev->nr_regions; i < n; i++) {
		nr[i].memfd = -1;
		nr[i].client_fd = -1;
	}
	dev->regions = nr;
	dev->nr_regions = n;
	return 0;
}

/*
 * The memfd goes to the client, who must not be able to shrink it under
 * us (our next access would die of SIGBUS): its size is sealed. A region
 * the client may not write is handed out as a read-only reopen.
 */
static int alloc_mem(struct mu_region *reg, uint32_t flags)
{
	char path[64];

	reg->memfd =
		memfd_create("muser-region", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (reg->memfd < 0)
		return -errno;
	if (ftruncate(reg->memfd, (off_t)reg->size) < 0 ||
	    fcntl(reg->memfd, F_ADD_SEALS,
		  F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0)
		return -errno;
	reg->client_fd = reg->memfd;
	if (!(flags & MU_REGION_WRITE)) {
		snprintf(path, sizeof(path), "/proc/self/fd/%d", reg->memfd);
		reg->client_fd = open(path, O_RDONLY | O_CLOEXEC);
		if (reg->client_fd < 0)
			return -errno;
	}
	reg->mem = mmap(NULL, reg->size, PROT_READ | PROT_WRITE, MAP_SHARED,
			reg->memfd, 0);
	if (reg->mem == MAP_FAILED) {
		reg->mem = NULL;
		return -errno;
	}
	return 0;
}

static void region_clear(struct mu_region *reg)
{
	if (reg->mem)
		munmap(reg->mem, reg->size);
	if (reg->client_fd >= 0 && reg->client_fd != reg->memfd)
		close(reg->client_fd);
	if (reg->memfd >= 0)
		close(reg->memfd);
	free(reg->sparse);
	memset(reg, 0, sizeof(*reg));
	reg->memfd = -1;
	reg->client_fd = -1;
}

MU_EXPORT int mu_dev_setup_region(mu_dev_t *dev, unsigned index,
				  const struct mu_region_desc *desc)
{
	struct mu_region_desc d = {0};
	struct mu_region *reg;
	size_t n;
	int r;

	if (!dev || !desc || dev->realized ||
	    index == MU_PCI_CONFIG_REGION_INDEX || index >= MAX_REGIONS)
		return -EINVAL;
	n = desc->struct_size < sizeof(d) ? desc->struct_size : sizeof(d);
	if (n < offsetof(struct mu_region_desc, access))
		return -EINVAL;
	memcpy(&d, desc, n);
	if (!d.size || !(d.flags & MU_REGION_RW) ||
	    (!(d.flags & MU_REGION_MEM) && !d.access))
		return -EINVAL;
	r = check_bar(index, &d);
	if (r == 0)
		r = check_sparse(&d);
	if (r == 0)
		r = grow_regions(dev, index + 1);
	if (r < 0)
		return r;
	reg = &dev->regions[index];
	if (reg->flags)
		return -EEXIST;
	reg->size = d.size;
	reg->access = d.access;
	reg->type = d.type;
	reg->subtype = d.subtype;
	if (d.nr_sparse) {
		reg->sparse = malloc(d.nr_sparse * sizeof(*reg->sparse));
		if (!reg->sparse)
			return -ENOMEM;
		memcpy(reg->sparse, d.sparse, d.nr_sparse * sizeof(*d.sparse));
		reg->nr_sparse = d.nr_sparse;
	}
	if ((d.flags & MU_REGION_MEM) && (r = alloc_mem(reg, d.flags)) < 0) {
		region_clear(reg);
		return r;
	}
	reg->flags = d.flags;
	return 0;
}

MU_EXPORT void *mu_region_mem(mu_dev_t *dev, unsigned index)
{
	if (!dev || index >= dev->nr_regions)
		return NULL;
	return dev->regions[index].mem;
}

void mu_regions_free(struct mu_dev *dev)
{
	unsigned i;

	for (i = 0; i < dev->nr_regions; i++)
		region_clear(&dev->regions[i]);
	free(dev->regions);
	dev->regions = NULL;
	free(dev->ioefds);
	dev->ioefds = NULL;
}

static bool in_sparse(const struct mu_region *reg, uint64_t off, size_t n)
{
	unsigned i;

	if (!reg->nr_sparse)
		return true;
	for (i = 0; i < reg->nr_sparse; i++)
		if (off >= reg->sparse[i].offset &&
		    mu_range_ok(off - reg->sparse[i].offset, n,
				reg->sparse[i].size))
			return true;
	return false;
}

void mu_regions_realize(struct mu_dev *dev)
{
	const struct mu_msix_state *x = &dev->msix;
	unsigned i;

	for (i = 0; i < dev->nr_regions; i++)
		dev->regions[i].plain =
			i != MU_PCI_CONFIG_REGION_INDEX &&
			dev->regions[i].flags && !dev->regions[i].mem &&
			!(x->cap && (i == x->table_bar || i == x->pba_bar));
}

static bool reg_allows(const struct mu_region *reg, uint64_t off, size_t count,
		       bool is_write)
{
	return (reg->flags & (is_write ? MU_REGION_WRITE : MU_REGION_READ)) &&
	       mu_range_ok(off, count, reg->size);
}

/* Is this access allowed at all (index, permission, range)? */
static int access_ok(const struct mu_dev *dev, unsigned index, uint64_t off,
		     size_t count, bool is_write)
{
	if (index == MU_PCI_CONFIG_REGION_INDEX)
		return mu_range_ok(off, count, dev->cfg_size) ? 0 : -EINVAL;
	if (index >= dev->nr_regions ||
	    !reg_allows(&dev->regions[index], off, count, is_write))
		return -EINVAL;
	return 0;
}

static int call_access(struct mu_dev *dev, const struct mu_region *reg,
		       unsigned index, uint64_t off, void *buf, size_t count,
		       bool is_write)
{
	ssize_t n = reg->access(dev->opaque, index, off, buf, count, is_write);

	if (n < 0)
		return n < -4095 ? -EIO : (int)n;
	return (size_t)n == count ? 0 : -EIO;
}

int mu_region_access(struct mu_dev *dev, unsigned index, uint64_t off,
		     void *buf, size_t count, bool is_write)
{
	struct mu_region *reg;
	int r;

	if (index < dev->nr_regions && dev->regions[index].plain) {
		reg = &dev->regions[index];
		if (!reg_allows(reg, off, count, is_write))
			return -EINVAL;
		return call_access(dev, reg, index, off, buf, count, is_write);
	}
	if (index == MU_PCI_CONFIG_REGION_INDEX)
		return mu_pci_cfg_access(dev, off, buf, count, is_write);
	r = access_ok(dev, index, off, count, is_write);
	if (r < 0)
		return r;
	reg = &dev->regions[index];
	if (dev->msix.cap &&
	    (index == dev->msix.table_bar || index == dev->msix.pba_bar)) {
		r = mu_msix_access(dev, index, off, buf, count, is_write);
		if (r)
			return r < 0 ? r : 0;
	}
	if (reg->mem && (!reg->access || in_sparse(reg, off, count))) {
		if (is_write)
			memcpy(reg->mem + off, buf, count);
		else
			memcpy(buf, reg->mem + off, count);
		return 0;
	}
	return call_access(dev, reg, index, off, buf, count, is_write);
}

/* ---- handlers ------------------------------------------------------------ */

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
		err = access_ok(dev, e.region, e.offset, e.count, true);
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
