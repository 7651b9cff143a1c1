/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Regions, as the device describes them: mu_dev_setup_region() and the
 * rest of the description API, their memory and fds, and what realize
 * fixes. Accesses are routed in region_access.c; the messages that ask
 * about regions or access them are answered in region_msg.c.
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
