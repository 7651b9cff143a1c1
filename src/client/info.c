/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Discovery: device info, region info with its capability chain (sparse
 * mmap areas, region type), IRQ info, region I/O fds. Every reply is
 * checked against what was asked and against its own length: cap offsets
 * and next pointers must move forward inside the reply (so no loops), each
 * capability must fit, sparse areas must lie inside the region, and a
 * region fd is accepted only with the MMAP flag.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client-internal.h"

/* First try at GET_REGION_INFO: the struct plus room for a few caps. */
#define REGION_INFO_FIRST_ARGSZ 1024u

static int bad_reply(struct mu_client *c, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int bad_reply(struct mu_client *c, int err, const char *fmt, ...)
{
	char buf[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	mu_client_log(c, MU_LOG_ERR, "%s", buf);
	mu_client_kill(c, err);
	return err;
}

int mu_info_fetch_device(struct mu_client *c, struct mu_device_info *out)
{
	struct mu_device_info req = {.argsz = sizeof(req)};
	int r = mu_rpc_simple(c, MU_CMD_DEVICE_GET_INFO, &req, sizeof(req), out,
			      sizeof(*out), sizeof(*out), NULL);

	if (r < 0)
		return r;
	if (out->argsz < sizeof(*out))
		return bad_reply(c, -EBADMSG, "DEVICE_GET_INFO argsz %u",
				 out->argsz);
	if (out->num_regions > MU_CLIENT_MAX_REGIONS ||
	    out->num_irqs > MU_CLIENT_MAX_IRQS)
		return bad_reply(c, -EBADMSG,
				 "DEVICE_GET_INFO claims %u regions, %u irqs",
				 out->num_regions, out->num_irqs);
	return 0;
}

/* Device info, cached with the region table it sizes. */
static int device_info(struct mu_client *c, struct mu_device_info *out)
{
	struct mu_device_info d;
	struct mu_client_region **tab;
	int r;

	pthread_mutex_lock(&c->lock);
	if (c->have_dev) {
		*out = c->dev;
		pthread_mutex_unlock(&c->lock);
		return 0;
	}
	pthread_mutex_unlock(&c->lock);
	r = mu_info_fetch_device(c, &d);
	if (r < 0)
		return r;
	tab = calloc(d.num_regions ? d.num_regions : 1, sizeof(*tab));
	if (!tab)
		return -ENOMEM;
	pthread_mutex_lock(&c->lock);
	if (!c->have_dev) {
		c->dev = d;
		c->regions = tab;
		c->have_dev = true;
		tab = NULL;
	}
	*out = c->dev;
	pthread_mutex_unlock(&c->lock);
	free(tab);
	return 0;
}

MU_EXPORT int mu_client_device_info(mu_client_t *c, struct mu_device_info *out)
{
	if (!c || !out)
		return -EINVAL;
	return device_info(c, out);
}

/* ---- region info ----------------------------------------------------- */

static int parse_sparse(struct mu_client *c, const uint8_t *p, size_t len,
			uint32_t off, uint32_t next,
			struct mu_client_region *reg,
			struct mu_sparse_mmap_area **areas)
{
	struct mu_region_info_cap_sparse_mmap s;
	uint64_t bytes, end, limit = next ? next : len;
	uint32_t i;

	if (*areas)
		return bad_reply(c, -EBADMSG, "region %u: two sparse caps",
				 reg->index);
	if (!mu_range_ok(off, sizeof(s), limit))
		return bad_reply(c, -EBADMSG, "region %u: short sparse cap",
				 reg->index);
	memcpy(&s, p + off, sizeof(s));
	bytes = (uint64_t)s.nr_areas * sizeof(struct mu_sparse_mmap_area);
	end = off + sizeof(s);
	if (!mu_range_ok(end, bytes, limit))
		return bad_reply(c, -EBADMSG,
				 "region %u: %u sparse areas don't fit",
				 reg->index, s.nr_areas);
	*areas = calloc(s.nr_areas ? s.nr_areas : 1, sizeof(**areas));
	if (!*areas)
		return -ENOMEM;
	memcpy(*areas, p + end, bytes);
	for (i = 0; i < s.nr_areas; i++)
		if (!mu_range_ok((*areas)[i].offset, (*areas)[i].size,
				 reg->size))
			return bad_reply(c, -EBADMSG,
					 "region %u: sparse area %u outside "
					 "the region",
					 reg->index, i);
	reg->nr_sparse = s.nr_areas;
	return 0;
}

static int parse_caps(struct mu_client *c, const uint8_t *p, size_t len,
		      uint32_t first, struct mu_client_region *reg,
		      struct mu_sparse_mmap_area **areas)
{
	uint32_t off = first, min = sizeof(struct mu_region_info);
	unsigned n = 0;
	int r;

	while (off) {
		struct mu_info_cap_header h;

		/* Forward only: no loops, no caps inside the struct. */
		if (off < min || !mu_range_ok(off, sizeof(h), len) ||
		    ++n > MU_CLIENT_MAX_CAPS)
			return bad_reply(c, -EBADMSG,
					 "region %u: bad cap offset %u",
					 reg->index, off);
		memcpy(&h, p + off, sizeof(h));
		/* next must move forward and stay inside the reply: the
		 * caps below are bounded by it. */
		if (h.next && (h.next < off + sizeof(h) || h.next > len))
			return bad_reply(c, -EBADMSG,
					 "region %u: cap next %u at %u",
					 reg->index, h.next, off);
		switch (h.id) {
		case MU_REGION_INFO_CAP_SPARSE_MMAP:
			r = parse_sparse(c, p, len, off, h.next, reg, areas);
			if (r < 0)
				return r;
			break;
		case MU_REGION_INFO_CAP_TYPE: {
			struct mu_region_info_cap_type t;
			uint64_t limit = h.next ? h.next : len;

			if (reg->has_type ||
			    !mu_range_ok(off, sizeof(t), limit))
				return bad_reply(c, -EBADMSG,
						 "region %u: bad type cap",
						 reg->index);
			memcpy(&t, p + off, sizeof(t));
			reg->has_type = true;
			reg->type = t.type;
			reg->subtype = t.subtype;
			break;
		}
		default:
			break; /* unknown: skip */
		}
		min = off + sizeof(h);
		off = h.next;
	}
	return 0;
}

/* One GET_REGION_INFO exchange into buf (argsz bytes). */
static int region_info_call(struct mu_client *c, unsigned index, void *buf,
			    uint32_t argsz, size_t *len, int *fds,
			    unsigned *nfds)
{
	struct mu_region_info req = {.argsz = argsz, .index = index};
	struct iovec iov = {&req, sizeof(req)}, riov = {buf, argsz};
	struct mu_call call = {
		.cmd = MU_CMD_DEVICE_GET_REGION_INFO,
		.iov = &iov,
		.iovcnt = 1,
		.riov = &riov,
		.riovcnt = 1,
		.rmin = sizeof(req),
		.rfds = fds,
		.rfds_max = 1,
	};
	int r = mu_rpc_call(c, &call);

	*len = call.rlen;
	*nfds = call.nrfds;
	return r;
}

static int fetch_region(struct mu_client *c, unsigned index,
			struct mu_client_region **out)
{
	uint32_t argsz = REGION_INFO_FIRST_ARGSZ;
	size_t maxarg = c->chan.max_msg - sizeof(struct mu_hdr);
	struct mu_sparse_mmap_area *areas = NULL;
	struct mu_client_region *reg = NULL;
	struct mu_region_info ri;
	uint8_t *buf = NULL;
	int fd = -1, r;
	unsigned nfds, tries;
	size_t len;

	for (tries = 0;; tries++) {
		free(buf);
		buf = malloc(argsz);
		if (!buf)
			return -ENOMEM;
		r = region_info_call(c, index, buf, argsz, &len, &fd, &nfds);
		if (r < 0)
			goto out;
		memcpy(&ri, buf, sizeof(ri));
		if (ri.index != index || ri.argsz < sizeof(ri)) {
			r = bad_reply(c, -EBADMSG,
				      "REGION_INFO(%u): index %u argsz %u",
				      index, ri.index, ri.argsz);
			goto out;
		}
		if (ri.argsz <= argsz)
			break;
		/* The server needs more room: ask again, once. */
		if (nfds)
			close(fd);
		fd = -1;
		if (tries || ri.argsz > maxarg) {
			r = bad_reply(c, -EBADMSG,
				      "REGION_INFO(%u): argsz %u too big",
				      index, ri.argsz);
			goto out;
		}
		argsz = ri.argsz;
	}
	if (len != ri.argsz) {
		r = bad_reply(c, -EBADMSG,
			      "REGION_INFO(%u): %zu bytes, argsz %u", index,
			      len, ri.argsz);
		goto out;
	}
	if (!!(ri.flags & MU_REGION_INFO_FLAG_MMAP) != (nfds == 1)) {
		r = bad_reply(c, -EPROTO,
			      "REGION_INFO(%u): flags %#x with %u fds", index,
			      ri.flags, nfds);
		goto out;
	}
	if ((ri.flags & MU_REGION_INFO_FLAG_MMAP) &&
	    ri.offset + ri.size < ri.offset) {
		r = bad_reply(c, -EBADMSG, "REGION_INFO(%u): offset overflow",
			      index);
		goto out;
	}
	reg = calloc(1, sizeof(*reg));
	if (!reg) {
		r = -ENOMEM;
		goto out;
	}
	reg->index = index;
	reg->flags = ri.flags;
	reg->size = ri.size;
	reg->offset = ri.offset;
	reg->fd = -1;
	if ((ri.flags & MU_REGION_INFO_FLAG_CAPS) && ri.cap_offset) {
		r = parse_caps(c, buf, len, ri.cap_offset, reg, &areas);
		if (r < 0)
			goto out;
	}
	reg->sparse = areas;
	areas = NULL;
	if (nfds) {
		reg->fd = fd;
		fd = -1;
	}
	*out = reg;
	reg = NULL;
out:
	if (nfds && fd >= 0)
		close(fd);
	free(areas);
	free(reg);
	free(buf);
	return r;
}

static void region_free(struct mu_client_region *reg)
{
	if (!reg)
		return;
	if (reg->fd >= 0)
		close(reg->fd);
	free(reg->sparse);
	free(reg);
}

MU_EXPORT int mu_client_region_info(mu_client_t *c, unsigned index,
				    const struct mu_client_region **out)
{
	struct mu_device_info d;
	struct mu_client_region *reg;
	int r;

	if (!c || !out)
		return -EINVAL;
	r = device_info(c, &d);
	if (r < 0)
		return r;
	if (index >= d.num_regions)
		return -EINVAL;
	pthread_mutex_lock(&c->lock);
	reg = c->regions[index];
	pthread_mutex_unlock(&c->lock);
	if (!reg) {
		r = fetch_region(c, index, &reg);
		if (r < 0)
			return r;
		pthread_mutex_lock(&c->lock);
		if (!c->regions[index]) {
			c->regions[index] = reg;
			reg = NULL;
		}
		pthread_mutex_unlock(&c->lock);
		region_free(reg); /* lost a race: keep the first */
		reg = c->regions[index];
	}
	*out = reg;
	return 0;
}

void mu_info_fini(struct mu_client *c)
{
	unsigned i;

	if (c->regions)
		for (i = 0; i < c->dev.num_regions; i++)
			region_free(c->regions[i]);
	free(c->regions);
	c->regions = NULL;
}

/* ---- IRQ info -------------------------------------------------------- */

MU_EXPORT int mu_client_irq_info(mu_client_t *c, unsigned index,
				 struct mu_irq_info *out)
{
	struct mu_irq_info req = {.argsz = sizeof(req), .index = index};
	int r;

	if (!c || !out)
		return -EINVAL;
	r = mu_rpc_simple(c, MU_CMD_DEVICE_GET_IRQ_INFO, &req, sizeof(req), out,
			  sizeof(*out), sizeof(req), NULL);
	if (r < 0)
		return r;
	if (out->index != index || out->argsz < sizeof(*out))
		return bad_reply(c, -EBADMSG, "IRQ_INFO(%u): index %u argsz %u",
				 index, out->index, out->argsz);
	return 0;
}

/* ---- region I/O fds ------------------------------------------------- */

MU_EXPORT int mu_client_region_io_fds(mu_client_t *c, unsigned index,
				      struct mu_sub_region_ioeventfd *subs,
				      int *fds, unsigned max)
{
	const size_t esz = sizeof(struct mu_sub_region_ioeventfd);
	struct mu_region_io_fds_request req = {.index = index};
	struct mu_region_io_fds_reply rep;
	int got[MU_MAX_FDS_LIMIT];
	struct iovec iov = {&req, sizeof(req)}, riov[2];
	struct mu_call call = {
		.cmd = MU_CMD_DEVICE_GET_REGION_IO_FDS,
		.iov = &iov,
		.iovcnt = 1,
		.riov = riov,
		.riovcnt = 2,
		.rmin = sizeof(rep),
		.rfds = got,
	};
	unsigned i, given = 0;
	int r;

	if (!c || (max && (!subs || !fds)))
		return -EINVAL;
	if (max > (c->sess.max_data_xfer_size - sizeof(rep)) / esz)
		max = (unsigned)((c->sess.max_data_xfer_size - sizeof(rep)) /
				 esz);
	req.argsz = (uint32_t)(sizeof(rep) + (size_t)max * esz);
	riov[0] = (struct iovec){&rep, sizeof(rep)};
	riov[1] = (struct iovec){subs, (size_t)max * esz};
	call.rfds_max = c->our_fds;
	r = mu_rpc_call(c, &call);
	if (r < 0)
		return r;
	if (rep.index != index || rep.flags ||
	    rep.argsz != sizeof(rep) + (uint64_t)rep.count * esz) {
		r = bad_reply(c, -EBADMSG,
			      "REGION_IO_FDS(%u): index %u flags %#x count %u "
			      "argsz %u",
			      index, rep.index, rep.flags, rep.count,
			      rep.argsz);
		goto out;
	}
	if (rep.count > max) {
		/* Too little room: the server sent only the header. */
		if (call.rlen != sizeof(rep) || call.nrfds) {
			r = bad_reply(c, -EBADMSG,
				      "REGION_IO_FDS(%u): truncated reply of "
				      "%zu bytes",
				      index, call.rlen);
			goto out;
		}
		r = (int)rep.count;
		goto out;
	}
	if (call.rlen != rep.argsz || (rep.count && !call.nrfds)) {
		r = bad_reply(c, -EBADMSG,
			      "REGION_IO_FDS(%u): %zu bytes, %u fds", index,
			      call.rlen, call.nrfds);
		goto out;
	}
	for (i = 0; i < rep.count; i++) {
		if (subs[i].fd_index >= call.nrfds ||
		    subs[i].offset + subs[i].size < subs[i].offset) {
			r = bad_reply(c, -EBADMSG,
				      "REGION_IO_FDS(%u): entry %u bad", index,
				      i);
			goto out;
		}
	}
	/* fds[i] belongs to subs[i]; shared fds are duplicated. */
	for (i = 0; i < rep.count; i++) {
		int *src = &got[subs[i].fd_index];

		if (*src >= 0) {
			fds[i] = *src;
			*src = -1;
		} else {
			unsigned j;

			for (j = 0; j < i; j++)
				if (subs[j].fd_index == subs[i].fd_index)
					break;
			fds[i] = fcntl(fds[j], F_DUPFD_CLOEXEC, 0);
			if (fds[i] < 0) {
				r = -errno;
				while (i--)
					close(fds[i]);
				given = 0;
				goto out;
			}
		}
		given++;
	}
	r = (int)rep.count;
out:
	for (i = 0; i < call.nrfds; i++)
		if (got[i] >= 0)
			close(got[i]);
	(void)given;
	return r;
}
