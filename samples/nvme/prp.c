/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * prp.c - Physical Region Page lists (NVMe 1.4, 4.3) and guest memory.
 *
 * nvme_prp_walk() turns a command's PRP1/PRP2 into a list of guest
 * ranges, reading PRP list pages from guest memory and checking every
 * entry: offsets where the spec wants none give PRP Offset Invalid, list
 * pages that can't be read give Data Transfer Error, and the walk is
 * bounded, so a list that points at itself ends. Nothing here trusts an
 * address: every access goes through libmuser's DMA API, which refuses
 * ranges outside the client's maps (-ENOENT) or without the right
 * permission (-EACCES).
 *
 * Data moves zero-copy where the client mapped guest RAM with an fd: the
 * ranges become pointers (mu_dma_addr_to_sg + mu_dma_sg_map) handed to
 * preadv/pwritev. Elsewhere a bounce buffer and mu_dma_read/mu_dma_write
 * (DMA_READ/DMA_WRITE messages) do it. Pointers are only held while a
 * worker runs a command; quiesce (main.c) waits for that.
 */
#include <errno.h>
#include <stdatomic.h>
#include <string.h>

#include "ctrl.h"

#define ST(sc) NVME_STATUS(0, sc)

static void add_seg(struct nvme_sgl *s, uint64_t iova, uint32_t len)
{
	struct nvme_seg *last = s->n ? &s->seg[s->n - 1] : NULL;

	if (last && last->iova + last->len == iova) {
		last->len += len; /* physically contiguous pages: one range */
		return;
	}
	s->seg[s->n].iova = iova;
	s->seg[s->n].len = len;
	s->n++;
}

uint16_t nvme_prp_walk(struct nvme_ctrl *c, uint64_t prp1, uint64_t prp2,
		       uint64_t len, struct nvme_sgl *out)
{
	uint64_t list[NVME_PAGE / 8];
	uint64_t rem, first, lp;
	unsigned hops = 0;

	out->n = 0;
	if (len == 0)
		return 0;
	if (len > NVME_MAX_XFER)
		return ST(NVME_SC_INVALID_FIELD) | NVME_DNR;
	/* 4.3: PRP1 may have an offset, but it is dword aligned. */
	if (prp1 & 3)
		return ST(NVME_SC_PRP_OFFSET_INVALID) | NVME_DNR;
	first = NVME_PAGE - (prp1 & (NVME_PAGE - 1));
	if (first > len)
		first = len;
	add_seg(out, prp1, (uint32_t)first);
	rem = len - first;
	if (rem == 0)
		return 0;
	if (rem <= NVME_PAGE) {
		/* PRP2 is the second (and last) data page: no offset. */
		if (prp2 & (NVME_PAGE - 1))
			return ST(NVME_SC_PRP_OFFSET_INVALID) | NVME_DNR;
		add_seg(out, prp2, (uint32_t)rem);
		return 0;
	}
	/* PRP2 points to a PRP list; the pointer is qword aligned. */
	lp = prp2;
	if (lp & 7)
		return ST(NVME_SC_PRP_OFFSET_INVALID) | NVME_DNR;
	while (rem) {
		unsigned room =
			(NVME_PAGE - (unsigned)(lp & (NVME_PAGE - 1))) / 8;
		uint64_t pages = (rem + NVME_PAGE - 1) / NVME_PAGE;
		unsigned want = pages < room ? (unsigned)pages : room;

		/* Each list page carries at least one data entry, so
		 * NVME_MAX_SEGS bounds the hops; a self-pointing list ends. */
		if (++hops > NVME_MAX_SEGS)
			return ST(NVME_SC_INVALID_FIELD) | NVME_DNR;
		if (mu_dma_read(c->dev, lp, list, want * 8u) < 0)
			return ST(NVME_SC_DATA_XFER_ERROR);
		for (unsigned i = 0; i < want; i++) {
			uint64_t e = list[i];
			uint64_t n = rem < NVME_PAGE ? rem : NVME_PAGE;

			/* The last entry of a full list page chains to the
			 * next page when more than one page is left. */
			if (i == room - 1 && rem > NVME_PAGE) {
				if (e & (NVME_PAGE - 1))
					return ST(NVME_SC_PRP_OFFSET_INVALID) |
					       NVME_DNR;
				lp = e;
				break;
			}
			/* Entries in a list have no offset (4.3). */
			if (e & (NVME_PAGE - 1))
				return ST(NVME_SC_PRP_OFFSET_INVALID) |
				       NVME_DNR;
			add_seg(out, e, (uint32_t)n);
			rem -= n;
		}
	}
	return 0;
}

uint16_t nvme_sgl_to_guest(struct nvme_ctrl *c, const struct nvme_sgl *s,
			   const void *buf, uint64_t len)
{
	const uint8_t *p = buf;

	for (unsigned i = 0; i < s->n && len; i++) {
		uint32_t n =
			s->seg[i].len < len ? s->seg[i].len : (uint32_t)len;

		if (mu_dma_write(c->dev, s->seg[i].iova, p, n) < 0)
			return ST(NVME_SC_DATA_XFER_ERROR);
		p += n;
		len -= n;
	}
	return 0;
}

uint16_t nvme_sgl_from_guest(struct nvme_ctrl *c, const struct nvme_sgl *s,
			     void *buf, uint64_t len)
{
	uint8_t *p = buf;

	for (unsigned i = 0; i < s->n && len; i++) {
		uint32_t n =
			s->seg[i].len < len ? s->seg[i].len : (uint32_t)len;

		if (mu_dma_read(c->dev, s->seg[i].iova, p, n) < 0)
			return ST(NVME_SC_DATA_XFER_ERROR);
		p += n;
		len -= n;
	}
	return 0;
}

/*
 * The mapped memory of the first part of [iova, iova + *len) that lies in
 * one window: shrinks *len to it. NULL with 0 when that part has no fd
 * behind it (or its window is being unmapped): then use messages.
 */
static int map_piece(struct nvme_ctrl *c, uint64_t iova, uint64_t *len,
		     uint32_t prot, void **ptr)
{
	struct mu_sg sg;
	struct iovec v;
	int r = mu_dma_addr_to_sg(c->dev, iova, *len, prot, &sg, 1);

	if (r < 0)
		return r;
	if (sg.len < *len)
		*len = sg.len;
	*ptr = NULL;
	if (nvme_dma_dying(c, iova, *len))
		return 0;
	r = mu_dma_sg_map(c->dev, &sg, 1, &v);
	if (r == -EFAULT)
		return 0;
	if (r < 0)
		return r;
	*ptr = v.iov_base;
	return 0;
}

static uint16_t file_status(int r, bool is_read)
{
	(void)r;
	return NVME_STATUS(NVME_SCT_MEDIA,
			   is_read ? NVME_SC_READ_ERROR : NVME_SC_WRITE_FAULT);
}

uint16_t nvme_sgl_file_io(struct nvme_worker *w, const struct nvme_sgl *s,
			  uint64_t off, bool is_read)
{
	struct nvme_ctrl *c = w->c;
	/* A Read moves data into guest memory: the device writes it. */
	uint32_t prot = is_read ? MU_DMA_WRITE : MU_DMA_READ;
	const int max_iov = 2 * NVME_MAX_SEGS;
	uint64_t batch_off = off;
	int n = 0, r;

	for (unsigned i = 0; i < s->n; i++) {
		uint64_t iova = s->seg[i].iova, rem = s->seg[i].len;

		while (rem) {
			uint64_t len = rem;
			void *p;

			r = map_piece(c, iova, &len, prot, &p);
			if (r < 0)
				return ST(NVME_SC_DATA_XFER_ERROR);
			if (p) {
				w->iov[n].iov_base = p;
				w->iov[n].iov_len = len;
				n++;
			}
			if (!p || n == max_iov) {
				/* Flush the zero-copy batch first: the file
				 * offsets must stay in order. */
				r = nvme_backing_rw(&c->b, w->iov, n, batch_off,
						    is_read);
				if (r < 0)
					return file_status(r, is_read);
				n = 0;
			}
			if (!p) {
				struct iovec v = {w->bounce, len};

				if (!is_read && mu_dma_read(c->dev, iova,
							    w->bounce, len) < 0)
					return ST(NVME_SC_DATA_XFER_ERROR);
				r = nvme_backing_rw(&c->b, &v, 1, off, is_read);
				if (r < 0)
					return file_status(r, is_read);
				if (is_read && mu_dma_write(c->dev, iova,
							    w->bounce, len) < 0)
					return ST(NVME_SC_DATA_XFER_ERROR);
			}
			off += len;
			if (n == 0)
				batch_off = off;
			iova += len;
			rem -= len;
		}
	}
	if (n) {
		r = nvme_backing_rw(&c->b, w->iov, n, batch_off, is_read);
		if (r < 0)
			return file_status(r, is_read);
	}
	return 0;
}

int nvme_guest_read(struct nvme_ctrl *c, uint64_t iova, void *buf, size_t len)
{
	return mu_dma_read(c->dev, iova, buf, len);
}

int nvme_guest_write(struct nvme_ctrl *c, uint64_t iova, const void *buf,
		     size_t len)
{
	return mu_dma_write(c->dev, iova, buf, len);
}

int nvme_guest_read32(struct nvme_ctrl *c, uint64_t iova, uint32_t *v)
{
	uint64_t len = sizeof(*v);
	void *p;
	int r;

	if (iova & 3)
		return -EINVAL;
	r = map_piece(c, iova, &len, MU_DMA_READ, &p);
	if (r < 0)
		return r;
	if (p && len == sizeof(*v)) {
		/* One load: the host may be writing it right now. */
		*v = __atomic_load_n((uint32_t *)p, __ATOMIC_ACQUIRE);
		return 0;
	}
	r = mu_dma_read(c->dev, iova, v, sizeof(*v));
	atomic_thread_fence(memory_order_acquire);
	return r;
}

const uint32_t *nvme_guest_map32(struct nvme_ctrl *c, uint64_t iova)
{
	uint64_t len = sizeof(uint32_t);
	void *p;

	if ((iova & 3) || map_piece(c, iova, &len, MU_DMA_READ, &p) < 0 ||
	    len != sizeof(uint32_t))
		return NULL;
	return p;
}

int nvme_guest_write32(struct nvme_ctrl *c, uint64_t iova, uint32_t v)
{
	uint64_t len = sizeof(v);
	void *p;
	int r;

	if (iova & 3)
		return -EINVAL;
	r = map_piece(c, iova, &len, MU_DMA_WRITE, &p);
	if (r < 0)
		return r;
	if (p && len == sizeof(v)) {
		__atomic_store_n((uint32_t *)p, v, __ATOMIC_RELEASE);
		/* sg_map marked the page; a log report may have cleared it
		 * since (device.h): mark it again now that it is written. */
		return mu_dma_mark_dirty(c->dev, iova, sizeof(v));
	}
	atomic_thread_fence(memory_order_release);
	return mu_dma_write(c->dev, iova, &v, sizeof(v));
}

/* The host polls the phase tag in the last dword: it must not see the
 * new tag before the rest of the entry. */
int nvme_guest_write_cqe(struct nvme_ctrl *c, uint64_t iova,
			 const struct nvme_cqe *e)
{
	uint64_t len = sizeof(*e);
	void *p;
	int r = map_piece(c, iova, &len, MU_DMA_WRITE, &p);

	if (r < 0)
		return r;
	if (p && len == sizeof(*e)) {
		uint32_t dw3;

		memcpy(p, e, 12);
		memcpy(&dw3, (const uint8_t *)e + 12, 4);
		atomic_thread_fence(memory_order_release);
		*(volatile uint32_t *)((uint8_t *)p + 12) = dw3;
		return 0;
	}
	/* Messages arrive in order: the first 12 bytes, then the tag. */
	r = mu_dma_write(c->dev, iova, e, 12);
	if (r < 0)
		return r;
	return mu_dma_write(c->dev, iova + 12, (const uint8_t *)e + 12, 4);
}
