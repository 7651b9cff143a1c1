/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * DMA maps: DMA_MAP/DMA_UNMAP, address -> scatter-gather, and copies in
 * and out of guest memory. Maps with an fd are mmapped once (MAP_SHARED)
 * and accessed directly; maps without one go through DMA_READ/DMA_WRITE
 * messages (dma_msg.c). The map array is sorted by iova and guarded by
 * dma_lock: readers copy under the read lock, so an unmap (write lock)
 * waits for every access in flight.
 *
 * While dirty page logging runs (dma_log.c) every write the library makes
 * for the device marks its pages: copies once done, message DMA after the
 * transfer (even a failed one may have written part), and writable sg
 * segments when mapped.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dev-internal.h"

/* Index of the map holding iova, or -1. dma_lock held. */
static int find_map(const struct mu_dev *dev, uint64_t iova)
{
	int lo = 0, hi = (int)dev->nr_maps - 1;

	while (lo <= hi) {
		int mid = (lo + hi) / 2;
		const struct mu_dmap *m = &dev->maps[mid];

		if (iova < m->iova)
			hi = mid - 1;
		else if (iova - m->iova >= m->size)
			lo = mid + 1;
		else
			return mid;
	}
	return -1;
}

/* Where a map at iova would go; -EEXIST when it overlaps one. */
static int insert_pos(const struct mu_dev *dev, uint64_t iova, uint64_t size)
{
	unsigned i;

	for (i = 0; i < dev->nr_maps; i++) {
		const struct mu_dmap *m = &dev->maps[i];

		if (iova < m->iova + m->size && m->iova < iova + size)
			return -EEXIST;
		if (iova < m->iova)
			break;
	}
	return (int)i;
}

static struct mu_dma_region to_region(const struct mu_dmap *m)
{
	struct mu_dma_region r = {m->iova, m->size, m->prot, m->vaddr};

	return r;
}

/* mmap the client's fd once; the fd itself is closed by the dispatcher. */
static int map_fd(struct mu_dmap *nm, int fd, uint64_t offset)
{
	int prot = 0;
	struct stat st;
	void *p;

	if (offset % MU_PAGE)
		return -EINVAL;
	if (fstat(fd, &st) < 0)
		return -errno;
	/* Guest memory is a file: memfd, shm or hugetlbfs. Devices, pipes
	 * and sockets are refused before mmap gets a say. */
	if (!S_ISREG(st.st_mode) ||
	    !mu_range_ok(offset, nm->size, (uint64_t)st.st_size))
		return -EINVAL;
	if (nm->prot & MU_DMA_READ)
		prot |= PROT_READ;
	if (nm->prot & MU_DMA_WRITE)
		prot |= PROT_WRITE;
	p = mmap(NULL, nm->size, prot ? prot : PROT_NONE, MAP_SHARED, fd,
		 (off_t)offset);
	if (p == MAP_FAILED)
		return -errno;
	nm->vaddr = p;
	nm->base = p;
	nm->maplen = nm->size;
	return 0;
}

static int insert_map(struct mu_dev *dev, const struct mu_dmap *nm)
{
	struct mu_dmap *arr;
	int pos;

	pos = insert_pos(dev, nm->iova, nm->size);
	if (pos < 0)
		return pos;
	if (dev->nr_maps == dev->cap_maps) {
		unsigned ncap = dev->cap_maps ? dev->cap_maps * 2 : 4;

		arr = realloc(dev->maps, ncap * sizeof(*arr));
		if (!arr)
			return -ENOMEM;
		dev->maps = arr;
		dev->cap_maps = ncap;
	}
	memmove(&dev->maps[pos + 1], &dev->maps[pos],
		(dev->nr_maps - (unsigned)pos) * sizeof(*dev->maps));
	dev->maps[pos] = *nm;
	dev->nr_maps++;
	return 0;
}

int mu_h_dma_map(struct mu_dev *dev, struct mu_msg *m, struct mu_reply *r)
{
	struct mu_dmap nm = {0};
	struct mu_dma_map req;
	struct mu_dma_region reg;
	int err;

	(void)r;
	memcpy(&req, m->payload, sizeof(req));
	if (req.addr % MU_PAGE || req.size % MU_PAGE)
		return -EINVAL;
	/* The serving thread is the only writer: checking first is safe. */
	if (dev->nr_maps >= dev->max_maps)
		return -ENOSPC;
	if (insert_pos(dev, req.addr, req.size) < 0)
		return -EEXIST;
	nm.iova = req.addr;
	nm.size = req.size;
	nm.prot = req.flags & (MU_DMA_READ | MU_DMA_WRITE);
	if (m->nfds) {
		err = map_fd(&nm, m->fds[0], req.offset);
		if (err < 0)
			return err;
	}
	nm.id = ++dev->map_id;
	pthread_rwlock_wrlock(&dev->dma_lock);
	err = insert_map(dev, &nm);
	pthread_rwlock_unlock(&dev->dma_lock);
	if (err < 0) {
		if (nm.base)
			munmap(nm.base, nm.maplen);
		return err;
	}
	reg = to_region(&nm);
	if (dev->cb.dma_map)
		dev->cb.dma_map(dev->opaque, &reg);
	return 0;
}

/* Tell the device, wait for accesses in flight, then drop map i. */
static void unmap_one(struct mu_dev *dev, unsigned i)
{
	struct mu_dmap gone;
	struct mu_dma_region reg = to_region(&dev->maps[i]);

	if (dev->cb.dma_unmap)
		dev->cb.dma_unmap(dev->opaque, &reg);
	pthread_rwlock_wrlock(&dev->dma_lock);
	gone = dev->maps[i];
	memmove(&dev->maps[i], &dev->maps[i + 1],
		(dev->nr_maps - i - 1) * sizeof(*dev->maps));
	dev->nr_maps--;
	pthread_rwlock_unlock(&dev->dma_lock);
	if (gone.base)
		munmap(gone.base, gone.maplen);
}

void mu_dma_release(struct mu_dev *dev)
{
	while (dev->nr_maps)
		unmap_one(dev, dev->nr_maps - 1);
}

void mu_dma_free(struct mu_dev *dev)
{
	mu_dma_release(dev);
	free(dev->maps);
	dev->maps = NULL;
	dev->cap_maps = 0;
}

int mu_h_dma_unmap(struct mu_dev *dev, struct mu_msg *m, struct mu_reply *r)
{
	struct mu_dma_unmap req;
	int i;

	memcpy(&req, m->payload, sizeof(req));
	if (req.flags & MU_DMA_UNMAP_FLAG_ALL) {
		mu_dma_release(dev);
	} else {
		i = find_map(dev, req.addr);
		if (i < 0 || dev->maps[i].iova != req.addr ||
		    dev->maps[i].size != req.size)
			return -ENOENT;
		unmap_one(dev, (unsigned)i);
	}
	/* The reply echoes the request's entry. */
	req.argsz = sizeof(req);
	memcpy(mu_reply_inline(r, sizeof(req)), &req, sizeof(req));
	return 0;
}

/* ---- device-side API --------------------------------------------------------
 */

MU_EXPORT int mu_dma_count(mu_dev_t *dev)
{
	int n;

	if (!dev)
		return -EINVAL;
	pthread_rwlock_rdlock(&dev->dma_lock);
	n = (int)dev->nr_maps;
	pthread_rwlock_unlock(&dev->dma_lock);
	return n;
}

MU_EXPORT int mu_dma_addr_to_sg(mu_dev_t *dev, uint64_t iova, uint64_t len,
				uint32_t prot, struct mu_sg *sg, int max)
{
	uint64_t cur = iova, rem = len;
	int n = 0, i, r = 0;

	if (!dev || !len || iova + len < iova || max < 0 || (max && !sg))
		return -EINVAL;
	pthread_rwlock_rdlock(&dev->dma_lock);
	while (rem) {
		const struct mu_dmap *m;
		uint64_t seg;

		i = find_map(dev, cur);
		if (i < 0) {
			r = -ENOENT;
			break;
		}
		m = &dev->maps[i];
		if ((m->prot & prot) != prot) {
			r = -EACCES;
			break;
		}
		seg = m->iova + m->size - cur;
		seg = seg < rem ? seg : rem;
		if (n < max)
			sg[n] = (struct mu_sg){cur, seg, prot, i, m->id};
		n++;
		cur += seg;
		rem -= seg;
	}
	pthread_rwlock_unlock(&dev->dma_lock);
	return r < 0 ? r : n;
}

MU_EXPORT int mu_dma_sg_map(mu_dev_t *dev, const struct mu_sg *sg, int nr,
			    struct iovec *iov)
{
	int k, i, r = 0;

	if (!dev || nr < 0 || (nr && (!sg || !iov)))
		return -EINVAL;
	pthread_rwlock_rdlock(&dev->dma_lock);
	for (k = 0; k < nr && r == 0; k++) {
		const struct mu_dmap *m;

		i = sg[k].map;
		if (i < 0 || (unsigned)i >= dev->nr_maps ||
		    dev->maps[i].id != sg[k].gen)
			i = find_map(dev, sg[k].iova);
		if (i < 0 || dev->maps[i].id != sg[k].gen ||
		    !mu_range_ok(sg[k].iova - dev->maps[i].iova, sg[k].len,
				 dev->maps[i].size)) {
			r = -ENOENT; /* unmapped since addr_to_sg */
			break;
		}
		m = &dev->maps[i];
		if (!m->vaddr) {
			r = -EFAULT;
			break;
		}
		iov[k].iov_base = m->vaddr + (sg[k].iova - m->iova);
		iov[k].iov_len = sg[k].len;
		/* The device may write until unmap: mark now (device.h). */
		if ((sg[k].prot & MU_DMA_WRITE) && dev->dlog)
			mu_dlog_mark_locked(dev, sg[k].iova, sg[k].len);
	}
	pthread_rwlock_unlock(&dev->dma_lock);
	return r < 0 ? r : nr;
}

/* Copy one piece that lies in a single map; *done = bytes handled, or
 * 0 with vaddr-less maps (then the caller sends messages). */
static int copy_piece(struct mu_dev *dev, uint64_t iova, uint8_t *buf,
		      size_t len, bool is_write, size_t *done, bool *msg)
{
	const struct mu_dmap *m;
	uint32_t need = is_write ? MU_DMA_WRITE : MU_DMA_READ;
	uint64_t seg;
	int i, r = 0;

	pthread_rwlock_rdlock(&dev->dma_lock);
	i = find_map(dev, iova);
	if (i < 0) {
		r = -ENOENT;
		goto out;
	}
	m = &dev->maps[i];
	if (!(m->prot & need)) {
		r = -EACCES;
		goto out;
	}
	seg = m->iova + m->size - iova;
	*done = seg < len ? (size_t)seg : len;
	*msg = !m->vaddr;
	if (m->vaddr && is_write) {
		memcpy(m->vaddr + (iova - m->iova), buf, *done);
		if (dev->dlog)
			mu_dlog_mark_locked(dev, iova, *done);
	} else if (m->vaddr)
		memcpy(buf, m->vaddr + (iova - m->iova), *done);
out:
	pthread_rwlock_unlock(&dev->dma_lock);
	return r;
}

static int dma_copy(struct mu_dev *dev, uint64_t iova, uint8_t *buf, size_t len,
		    bool is_write)
{
	size_t done;
	bool msg;
	int r;

	if (!dev || (len && !buf) || iova + len < iova)
		return -EINVAL;
	while (len) {
		r = copy_piece(dev, iova, buf, len, is_write, &done, &msg);
		if (r == 0 && msg) {
			r = mu_dma_msg_xfer(dev, iova, buf, done, is_write);
			if (is_write)
				mu_dlog_mark(dev, iova, done);
		}
		if (r < 0)
			return r;
		iova += done;
		buf += done;
		len -= done;
	}
	return 0;
}

MU_EXPORT int mu_dma_read(mu_dev_t *dev, uint64_t iova, void *buf, size_t len)
{
	return dma_copy(dev, iova, buf, len, false);
}

MU_EXPORT int mu_dma_write(mu_dev_t *dev, uint64_t iova, const void *buf,
			   size_t len)
{
	return dma_copy(dev, iova, (uint8_t *)buf, len, true);
}
