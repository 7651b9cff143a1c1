/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Dirty page logging: DEVICE_FEATURE DMA_LOGGING_START (6), STOP (7) and
 * REPORT (8), with Linux's vfio_device_feature_dma_logging_* meaning. Over
 * vfio-user the START ranges follow the control struct inline and the
 * REPORT bitmap comes back in the reply. Every reply is checked against
 * the request it answers (docs/protocol.md 5.16 and 9v); a lying server
 * loses the connection with -EBADMSG (-EPROTO for fds).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "client-internal.h"

#define FEAT_HDR sizeof(struct mu_device_feature)
#define RANGE_SZ sizeof(struct mu_dma_logging_range)

static bool pow2(uint64_t v)
{
	return v && !(v & (v - 1));
}

MU_EXPORT uint64_t mu_client_dma_log_bitmap_size(uint64_t length,
						 uint64_t page_size)
{
	uint64_t pages, words;

	if (!length || !pow2(page_size))
		return 0;
	pages = length / page_size + (length % page_size != 0);
	words = pages / 64 + (pages % 64 != 0);
	return words * 8;
}

/* A bare feature header out, the same 8 bytes back (PROBE, STOP). */
static int feature_echo8(struct mu_client *c, uint32_t flags, const char *what)
{
	struct mu_device_feature req = {FEAT_HDR, flags}, rep;
	size_t rlen;
	int r = mu_rpc_simple(c, MU_CMD_DEVICE_FEATURE, &req, sizeof(req), &rep,
			      sizeof(rep), sizeof(rep), &rlen);

	if (r < 0)
		return r;
	if (rep.argsz != sizeof(rep) || rep.flags != flags)
		return mu_bad_reply(c, what, rlen);
	return 0;
}

/* The errnos with which servers say "no such feature or operation":
 * ENOTTY (muser, Linux), EINVAL (libvfio-user, and Linux for an
 * unsupported operation), ENOTSUP, and ENOSYS from servers that predate
 * DEVICE_FEATURE. */
static bool unsupported(int r)
{
	return r == -ENOTTY || r == -EINVAL || r == -ENOTSUP ||
	       r == -EOPNOTSUPP || r == -ENOSYS;
}

MU_EXPORT int mu_client_dma_log_probe(mu_client_t *c)
{
	static const uint32_t ops[] = {
		MU_DEVICE_FEATURE_SET | MU_DEVICE_FEATURE_DMA_LOGGING_START,
		MU_DEVICE_FEATURE_SET | MU_DEVICE_FEATURE_DMA_LOGGING_STOP,
		MU_DEVICE_FEATURE_GET | MU_DEVICE_FEATURE_DMA_LOGGING_REPORT,
	};
	unsigned i;
	int r;

	if (!c)
		return -EINVAL;
	for (i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
		r = feature_echo8(c, MU_DEVICE_FEATURE_PROBE | ops[i],
				  "DEVICE_FEATURE(PROBE DMA logging)");
		if (r < 0)
			return unsupported(r) ? 0 : r;
	}
	return 1;
}

/* START's reply: the header alone, or the header and the control struct,
 * or the whole request echoed; page_size may differ (the server's pick). */
static int check_start_reply(struct mu_client *c, const struct mu_call *call,
			     const struct mu_device_feature *req,
			     const struct mu_dma_logging_control *ctl,
			     const struct mu_dma_logging_range *ranges,
			     const struct mu_device_feature *rep,
			     const struct mu_dma_logging_control *rctl,
			     const struct mu_dma_logging_range *rranges,
			     uint64_t *chosen)
{
	size_t full =
		FEAT_HDR + sizeof(*ctl) + (size_t)ctl->num_ranges * RANGE_SZ;
	size_t len = call->rlen;

	if (len != FEAT_HDR && len != FEAT_HDR + sizeof(*ctl) && len != full)
		goto bad;
	if (rep->argsz != len || rep->flags != req->flags)
		goto bad;
	*chosen = ctl->page_size;
	if (len == FEAT_HDR)
		return 0;
	if (rctl->num_ranges != ctl->num_ranges || !pow2(rctl->page_size))
		goto bad;
	if (len == full && ctl->num_ranges &&
	    memcmp(rranges, ranges, (size_t)ctl->num_ranges * RANGE_SZ))
		goto bad;
	*chosen = rctl->page_size;
	return 0;
bad:
	return mu_bad_reply(c, "DEVICE_FEATURE(DMA_LOGGING_START)", len);
}

MU_EXPORT int mu_client_dma_log_start(mu_client_t *c, uint64_t page_size,
				      const struct mu_dma_logging_range *ranges,
				      uint32_t nr_ranges,
				      uint64_t *chosen_page_size)
{
	struct mu_device_feature req, rep = {0};
	struct mu_dma_logging_control ctl = {page_size, nr_ranges, 0},
				      rctl = {0};
	size_t rbytes = (size_t)nr_ranges * RANGE_SZ;
	struct mu_dma_logging_range *rranges = NULL;
	struct iovec iov[3], riov[3];
	struct mu_call call = {
		.cmd = MU_CMD_DEVICE_FEATURE,
		.iov = iov,
		.iovcnt = 3,
		.riov = riov,
		.riovcnt = 3,
		.rmin = sizeof(rep),
	};
	uint64_t chosen = 0;
	uint32_t i;
	int r;

	if (!c || !pow2(page_size) || (nr_ranges && !ranges))
		return -EINVAL;
	for (i = 0; i < nr_ranges; i++)
		if (!ranges[i].length ||
		    ranges[i].iova + ranges[i].length - 1 < ranges[i].iova)
			return -EINVAL;
	if (sizeof(ctl) + rbytes > c->sess.max_data_xfer_size)
		return -E2BIG;
	if (rbytes) {
		rranges = malloc(rbytes);
		if (!rranges)
			return -ENOMEM;
	}
	/* argsz: room for the whole request echoed (libvfio-user's reply). */
	req = (struct mu_device_feature){
		(uint32_t)(FEAT_HDR + sizeof(ctl) + rbytes),
		MU_DEVICE_FEATURE_SET | MU_DEVICE_FEATURE_DMA_LOGGING_START};
	iov[0] = (struct iovec){&req, sizeof(req)};
	iov[1] = (struct iovec){&ctl, sizeof(ctl)};
	iov[2] = (struct iovec){(void *)ranges, rbytes};
	riov[0] = (struct iovec){&rep, sizeof(rep)};
	riov[1] = (struct iovec){&rctl, sizeof(rctl)};
	riov[2] = (struct iovec){rranges, rbytes};
	r = mu_rpc_call(c, &call);
	if (r == 0)
		r = check_start_reply(c, &call, &req, &ctl, ranges, &rep, &rctl,
				      rranges, &chosen);
	free(rranges);
	if (r == 0 && chosen_page_size)
		*chosen_page_size = chosen;
	return r;
}

MU_EXPORT int mu_client_dma_log_stop(mu_client_t *c)
{
	if (!c)
		return -EINVAL;
	return feature_echo8(
		c, MU_DEVICE_FEATURE_SET | MU_DEVICE_FEATURE_DMA_LOGGING_STOP,
		"DEVICE_FEATURE(DMA_LOGGING_STOP)");
}

MU_EXPORT int mu_client_dma_log_report(mu_client_t *c, uint64_t iova,
				       uint64_t length, uint64_t page_size,
				       uint64_t *bitmap, size_t bitmap_len)
{
	struct {
		struct mu_device_feature f;
		struct mu_dma_logging_report rep;
	} MU_PACKED req, rep = {{0, 0}, {0, 0, 0}};
	uint64_t need = mu_client_dma_log_bitmap_size(length, page_size);
	uint64_t pages, last;
	struct iovec iov = {&req, sizeof(req)}, riov[2];
	struct mu_call call = {
		.cmd = MU_CMD_DEVICE_FEATURE,
		.iov = &iov,
		.iovcnt = 1,
		.riov = riov,
		.riovcnt = 2,
		.rmin = sizeof(rep.f),
	};
	int r;

	if (!c || !bitmap || !need || iova + length - 1 < iova)
		return -EINVAL;
	if (bitmap_len < need)
		return -ENOSPC;
	/* The reply must fit what we receive in one message. */
	if (need > c->our_xfer)
		return -E2BIG;
	req.f = (struct mu_device_feature){
		(uint32_t)(sizeof(req) + need),
		MU_DEVICE_FEATURE_GET | MU_DEVICE_FEATURE_DMA_LOGGING_REPORT};
	req.rep = (struct mu_dma_logging_report){iova, length, page_size};
	riov[0] = (struct iovec){&rep, sizeof(rep)};
	riov[1] = (struct iovec){bitmap, (size_t)need};
	r = mu_rpc_call(c, &call);
	if (r < 0)
		return r;
	/* Exactly the bitmap asked for (a longer reply was refused by the
	 * engine), the request echoed, and no bits past the range. */
	if (call.rlen != sizeof(rep) + need || rep.f.argsz != call.rlen ||
	    rep.f.flags != req.f.flags || rep.rep.iova != iova ||
	    rep.rep.length != length || rep.rep.page_size != page_size)
		goto bad;
	pages = length / page_size + (length % page_size != 0);
	if (pages % 64) {
		memcpy(&last, (uint8_t *)bitmap + need - 8, sizeof(last));
		if (last >> (pages % 64))
			goto bad;
	}
	return 0;
bad:
	return mu_bad_reply(c, "DEVICE_FEATURE(DMA_LOGGING_REPORT)", call.rlen);
}
