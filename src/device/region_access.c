/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Where a region access goes: the device's callback, the region's memory,
 * the MSI-X table or PBA, or config space. Every access is range-checked
 * before any callback or memory is touched.
 */
#include <errno.h>
#include <string.h>

#include "dev-internal.h"

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

static bool reg_allows(const struct mu_region *reg, uint64_t off, size_t count,
		       bool is_write)
{
	return (reg->flags & (is_write ? MU_REGION_WRITE : MU_REGION_READ)) &&
	       mu_range_ok(off, count, reg->size);
}

int mu_region_access_ok(const struct mu_dev *dev, unsigned index, uint64_t off,
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
	r = mu_region_access_ok(dev, index, off, count, is_write);
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
