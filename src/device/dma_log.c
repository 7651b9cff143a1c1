/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Dirty page logging: DEVICE_FEATURE DMA_LOGGING_START/STOP/REPORT with
 * the semantics of Linux's <linux/vfio.h>, the ranges inline after the
 * control struct as vfio-user sends them (docs/protocol.md 5.16, 9j).
 *
 * Ranges are in IOVA space, independent of the DMA maps: an unmap keeps
 * its bits for the next report, a write outside every range is not
 * recorded. One bitmap word array holds every range's bits.
 *
 * Threads: the serving thread alone starts, stops and reports; it swaps
 * dev->dlog under the dma_lock write lock. Device threads mark under the
 * read lock (mu_dma_write holds it anyway) with atomic ORs; a report
 * takes bits with atomic AND/exchange, so no mark is lost. Marks are
 * release and takes acquire: the data a bit stands for is visible to
 * the client once the report is sent.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "dev-internal.h"

struct dlog_range {
	uint64_t iova, len; /* multiples of the page size, len > 0 */
	_Atomic uint64_t *bits;
};

struct mu_dlog {
	unsigned shift; /* log2(page_size) */
	unsigned nr;
	_Atomic uint64_t *words; /* every range's bits */
	struct dlog_range r[];	 /* sorted by iova, disjoint */
};

static bool pow2(uint64_t v)
{
	return v && !(v & (v - 1));
}

static uint64_t words_for(uint64_t len, unsigned shift)
{
	return ((len >> shift) + 63) / 64;
}

/* ---- marking (any thread) ------------------------------------------------ */

/* Set n bits from bit p; n > 0. */
static void set_bits_atomic(_Atomic uint64_t *w, uint64_t p, uint64_t n)
{
	while (n) {
		unsigned b = (unsigned)(p % 64);
		uint64_t k = 64 - b < n ? 64 - b : n;
		uint64_t mask = k == 64 ? ~0ull : ((1ull << k) - 1) << b;

		atomic_fetch_or_explicit(&w[p / 64], mask,
					 memory_order_release);
		p += k;
		n -= k;
	}
}

/* First range that ends after iova. */
static unsigned first_range(const struct mu_dlog *d, uint64_t iova)
{
	unsigned lo = 0, hi = d->nr;

	while (lo < hi) {
		unsigned mid = (lo + hi) / 2;

		if (d->r[mid].iova + d->r[mid].len <= iova)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

void mu_dlog_mark_locked(struct mu_dev *dev, uint64_t iova, uint64_t len)
{
	const struct mu_dlog *d = dev->dlog;
	uint64_t last = iova + len - 1; /* callers checked for overflow */
	unsigned i;

	if (!d || !len)
		return;
	for (i = first_range(d, iova); i < d->nr && d->r[i].iova <= last; i++) {
		const struct dlog_range *r = &d->r[i];
		uint64_t lo = iova > r->iova ? iova : r->iova;
		uint64_t hi = last < r->iova + r->len - 1
				      ? last
				      : r->iova + r->len - 1;
		uint64_t p0 = (lo - r->iova) >> d->shift;

		set_bits_atomic(r->bits, p0,
				((hi - r->iova) >> d->shift) - p0 + 1);
	}
}

void mu_dlog_mark_slow(struct mu_dev *dev, uint64_t iova, uint64_t len)
{
	pthread_rwlock_rdlock(&dev->dma_lock);
	mu_dlog_mark_locked(dev, iova, len);
	pthread_rwlock_unlock(&dev->dma_lock);
}

MU_EXPORT int mu_dma_mark_dirty(mu_dev_t *dev, uint64_t iova, size_t len)
{
	if (!dev || (len && iova + len - 1 < iova))
		return -EINVAL;
	mu_dlog_mark(dev, iova, len);
	return 0;
}

/* ---- start / stop (serving thread) --------------------------------------- */

static void publish(struct mu_dev *dev, struct mu_dlog *d)
{
	pthread_rwlock_wrlock(&dev->dma_lock);
	dev->dlog = d;
	atomic_store_explicit(&dev->dlog_on, d != NULL, memory_order_release);
	pthread_rwlock_unlock(&dev->dma_lock);
}

void mu_dlog_stop(struct mu_dev *dev)
{
	struct mu_dlog *d = dev->dlog;

	if (!d)
		return;
	publish(dev, NULL); /* waits for marks in flight */
	free(d->words);
	free(d);
	mu_log(dev, MU_LOG_INFO, "dirty page logging stopped");
}

static int cmp_range(const void *a, const void *b)
{
	const struct dlog_range *x = a, *y = b;

	return x->iova < y->iova ? -1 : x->iova > y->iova;
}

/* Check and sort the ranges; *total: bitmap words they need. */
static int check_ranges(struct mu_dlog *d, const uint8_t *p, uint64_t page,
			uint64_t *total)
{
	unsigned i;

	*total = 0;
	for (i = 0; i < d->nr; i++) {
		struct mu_dma_logging_range in;

		memcpy(&in, p + i * sizeof(in), sizeof(in));
		if (!in.length || in.iova % page || in.length % page)
			return -EINVAL;
		if (in.iova + in.length < in.iova)
			return -EOVERFLOW;
		d->r[i].iova = in.iova;
		d->r[i].len = in.length;
		*total += words_for(in.length, d->shift);
		if (*total > MU_DLOG_MAX_BITMAP / 8)
			return -E2BIG;
	}
	qsort(d->r, d->nr, sizeof(d->r[0]), cmp_range);
	for (i = 1; i < d->nr; i++)
		if (d->r[i - 1].iova + d->r[i - 1].len > d->r[i].iova)
			return -EINVAL; /* overlap */
	return 0;
}

static int alloc_bits(struct mu_dlog *d, uint64_t total)
{
	uint64_t at = 0;
	unsigned i;

	d->words = calloc((size_t)total, sizeof(*d->words));
	if (!d->words)
		return -ENOMEM;
	for (i = 0; i < d->nr; i++) {
		d->r[i].bits = d->words + at;
		at += words_for(d->r[i].len, d->shift);
	}
	return 0;
}

static int start(struct mu_dev *dev, const struct mu_msg *m,
		 const struct mu_device_feature *f, struct mu_reply *r)
{
	const uint8_t *data = m->payload + sizeof(*f);
	struct mu_dma_logging_control ctl;
	struct mu_dlog *d;
	uint64_t words;
	int err;

	/* check.c made sure num_ranges ranges follow */
	memcpy(&ctl, data, sizeof(ctl));
	if (ctl.page_size < MU_PAGE || !pow2(ctl.page_size) ||
	    ctl.num_ranges == 0)
		return -EINVAL;
	if (ctl.num_ranges > MU_DLOG_MAX_RANGES)
		return -E2BIG;
	d = calloc(1, sizeof(*d) + ctl.num_ranges * sizeof(d->r[0]));
	if (!d)
		return -ENOMEM;
	d->shift = (unsigned)__builtin_ctzll(ctl.page_size);
	d->nr = ctl.num_ranges;
	err = check_ranges(d, data + sizeof(ctl), ctl.page_size, &words);
	if (err == 0 && dev->dlog)
		err = -EBUSY; /* after the checks, as Linux */
	if (err == 0)
		err = alloc_bits(d, words);
	if (err < 0) {
		free(d->words);
		free(d);
		return err;
	}
	publish(dev, d);
	mu_log(dev, MU_LOG_INFO,
	       "dirty page logging started: %u range(s), page size %llu", d->nr,
	       (unsigned long long)ctl.page_size);
	/* The reply is the request: page_size is used as given. */
	err = mu_feature_reply(
		r, f->argsz, f->flags, data,
		sizeof(ctl) + d->nr * sizeof(struct mu_dma_logging_range));
	if (err < 0)
		mu_dlog_stop(dev); /* an error reply: nothing started */
	return err;
}

/* ---- report (serving thread) --------------------------------------------- */

/* The range holding [iova, iova + len), or NULL. */
static const struct dlog_range *holder(const struct mu_dlog *d, uint64_t iova,
				       uint64_t len)
{
	unsigned i = first_range(d, iova);

	if (i < d->nr && d->r[i].iova <= iova &&
	    len <= d->r[i].len - (iova - d->r[i].iova))
		return &d->r[i];
	return NULL;
}

/* Take logged pages [p0, p0 + n) of r, setting out's bits at rshift. */
static void harvest(const struct mu_dlog *d, const struct dlog_range *r,
		    uint64_t p0, uint64_t n, unsigned rshift, uint64_t *out)
{
	uint64_t p = p0, end = p0 + n;

	while (p < end) {
		unsigned b = (unsigned)(p % 64);
		uint64_t k = 64 - b < end - p ? 64 - b : end - p;
		uint64_t mask = k == 64 ? ~0ull : ((1ull << k) - 1) << b;
		_Atomic uint64_t *w = &r->bits[p / 64];
		uint64_t v = atomic_load_explicit(w, memory_order_relaxed);

		/* A clear word is skipped: a bit set meanwhile stays set. */
		if (v & mask)
			v = atomic_fetch_and_explicit(w, ~mask,
						      memory_order_acq_rel) &
			    mask;
		else
			v = 0;
		while (v) {
			uint64_t page = p - b + (uint64_t)__builtin_ctzll(v);
			uint64_t off = (page - p0) << d->shift;
			uint64_t q = off >> rshift;
			uint64_t qn =
				((off + (1ull << d->shift) - 1) >> rshift) - q +
				1;

			for (; qn; q++, qn--)
				out[q / 64] |= 1ull << (q % 64);
			v &= v - 1;
		}
		p += k;
	}
}

static int report(struct mu_dev *dev, const struct mu_msg *m,
		  const struct mu_device_feature *f, struct mu_reply *r)
{
	const struct mu_dlog *d = dev->dlog;
	struct mu_dma_logging_report rep;
	const struct dlog_range *range;
	uint64_t unit, bytes, limit = dev->lim.max_data_xfer_size;
	size_t need;
	uint8_t *out;
	unsigned rshift;

	memcpy(&rep, m->payload + sizeof(*f), sizeof(rep));
	if (!d || rep.page_size < MU_PAGE || !pow2(rep.page_size) ||
	    !rep.length)
		return -EINVAL;
	if (rep.iova + rep.length < rep.iova)
		return -EOVERFLOW;
	/* Whole logged pages only: a page half outside must not be
	 * cleared. */
	unit = rep.page_size > (1ull << d->shift) ? rep.page_size
						  : 1ull << d->shift;
	if (rep.iova % unit || rep.length % unit)
		return -EINVAL;
	range = holder(d, rep.iova, rep.length);
	if (!range)
		return -EINVAL;
	rshift = (unsigned)__builtin_ctzll(rep.page_size);
	bytes = words_for(rep.length, rshift) * 8;
	if (dev->peer.max_data_xfer_size < limit)
		limit = dev->peer.max_data_xfer_size;
	if (bytes > limit)
		return -E2BIG;
	need = sizeof(*f) + sizeof(rep) + (size_t)bytes;
	if (f->argsz < need) /* 9g: the size needed; nothing is cleared */
		return mu_feature_reply(r, f->argsz, f->flags, NULL,
					need - sizeof(*f));
	out = mu_reply_alloc(r, need);
	if (!out)
		return -ENOMEM;
	memcpy(out, f, sizeof(*f));
	((struct mu_device_feature *)out)->argsz = (uint32_t)need;
	memcpy(out + sizeof(*f), &rep, sizeof(rep));
	memset(out + sizeof(*f) + sizeof(rep), 0, (size_t)bytes);
	harvest(d, range, (rep.iova - range->iova) >> d->shift,
		rep.length >> d->shift, rshift,
		(uint64_t *)(void *)(out + sizeof(*f) + sizeof(rep)));
	return 0;
}

/* ---- DEVICE_FEATURE -------------------------------------------------------
 */

int mu_dlog_feature(struct mu_dev *dev, const struct mu_msg *m,
		    const struct mu_device_feature *f, struct mu_reply *r)
{
	uint32_t feat = f->flags & MU_DEVICE_FEATURE_MASK;
	uint32_t ops = feat == MU_DEVICE_FEATURE_DMA_LOGGING_REPORT
			       ? MU_DEVICE_FEATURE_GET
			       : MU_DEVICE_FEATURE_SET;

	/* As Linux's vfio_check_feature(): an op the feature lacks is
	 * EINVAL, also in a probe. */
	if (f->flags & (MU_DEVICE_FEATURE_GET | MU_DEVICE_FEATURE_SET) & ~ops)
		return -EINVAL;
	if (f->flags & MU_DEVICE_FEATURE_PROBE)
		return mu_feature_reply(r, f->argsz, f->flags, NULL, 0);
	switch (feat) {
	case MU_DEVICE_FEATURE_DMA_LOGGING_START:
		return start(dev, m, f, r);
	case MU_DEVICE_FEATURE_DMA_LOGGING_STOP:
		mu_dlog_stop(dev); /* not started: nothing to do, as Linux */
		return mu_feature_reply(r, f->argsz, f->flags, NULL, 0);
	default:
		return report(dev, m, f, r);
	}
}
