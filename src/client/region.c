/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Region access: synchronous read/write split at the negotiated
 * max_data_xfer_size, posted writes (NO_REPLY) with REGION_WRITE_MULTI
 * batching, flush, and mmap of mappable regions and sparse areas.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "client-internal.h"

static int check_echo(struct mu_client *c, const struct mu_region_access *got,
		      const struct mu_region_access *want, const char *what)
{
	if (got->offset == want->offset && got->region == want->region &&
	    got->count == want->count)
		return 0;
	mu_client_log(c, MU_LOG_ERR,
		      "%s reply for region %u offset %#llx count %u answers "
		      "region %u offset %#llx count %u",
		      what, got->region, (unsigned long long)got->offset,
		      got->count, want->region,
		      (unsigned long long)want->offset, want->count);
	mu_client_kill(c, -EPROTO);
	return -EPROTO;
}

static int check_args(mu_client_t *c, uint64_t offset, const void *buf,
		      size_t len)
{
	if (!c || (len && !buf) || offset + len < offset)
		return -EINVAL;
	return 0;
}

/* One synchronous REGION_READ or REGION_WRITE per max_data_xfer_size
 * piece; the data goes straight between buf and the socket. */
static int region_rw(mu_client_t *c, unsigned region, uint64_t offset,
		     uint8_t *buf, size_t len, bool is_write)
{
	const char *what = is_write ? "REGION_WRITE" : "REGION_READ";
	size_t done = 0;
	int r = check_args(c, offset, buf, len);

	while (r == 0 && done < len) {
		size_t n = len - done;
		struct mu_region_access req, rep;
		struct iovec out[2] = {{&req, sizeof(req)}, {buf + done, 0}};
		struct iovec in[2] = {{&rep, sizeof(rep)}, {buf + done, 0}};
		struct mu_call call = {
			.cmd = is_write ? MU_CMD_REGION_WRITE
					: MU_CMD_REGION_READ,
			.iov = out,
			.iovcnt = is_write ? 2 : 1,
			.riov = in,
			.riovcnt = is_write ? 1 : 2,
			.rmin = sizeof(rep),
		};

		if (n > c->sess.max_data_xfer_size)
			n = c->sess.max_data_xfer_size;
		req = (struct mu_region_access){offset + done, region,
						(uint32_t)n};
		out[1].iov_len = in[1].iov_len = n;
		r = mu_rpc_call(c, &call);
		if (r < 0)
			break;
		/* A read reply carries exactly the data asked for. */
		if (call.rlen != sizeof(rep) + (is_write ? 0 : n)) {
			mu_client_log(c, MU_LOG_ERR,
				      "%s reply of %zu bytes for %zu", what,
				      call.rlen, n);
			mu_client_kill(c, -EBADMSG);
			return -EBADMSG;
		}
		r = check_echo(c, &rep, &req, what);
		done += n;
	}
	return r;
}

MU_EXPORT int mu_client_region_read(mu_client_t *c, unsigned region,
				    uint64_t offset, void *buf, size_t len)
{
	return region_rw(c, region, offset, buf, len, false);
}

MU_EXPORT int mu_client_region_write(mu_client_t *c, unsigned region,
				     uint64_t offset, const void *buf,
				     size_t len)
{
	return region_rw(c, region, offset, (uint8_t *)buf, len, true);
}

MU_EXPORT int mu_client_region_write_posted(mu_client_t *c, unsigned region,
					    uint64_t offset, const void *buf,
					    size_t len)
{
	size_t done = 0;
	int r = check_args(c, offset, buf, len);

	if (r < 0 || len == 0)
		return r;
	if (len <= MU_WRITE_MULTI_DATA && c->sess.write_multiple) {
		struct mu_write_multi_entry *e;

		pthread_mutex_lock(&c->send_lock);
		if (__atomic_load_n(&c->dead, __ATOMIC_RELAXED)) {
			pthread_mutex_unlock(&c->send_lock);
			return -ENOTCONN;
		}
		e = &c->wm[c->nwm++];
		memset(e, 0, sizeof(*e));
		e->offset = offset;
		e->region = region;
		e->count = (uint32_t)len;
		memcpy(e->data, buf, len);
		if (c->nwm == MU_CLIENT_WM_BATCH)
			r = mu_rpc_flush_batch_locked(c);
		pthread_mutex_unlock(&c->send_lock);
		return r;
	}
	while (r == 0 && done < len) {
		size_t n = len - done;
		struct mu_region_access req;
		struct iovec iov[2];

		if (n > c->sess.max_data_xfer_size)
			n = c->sess.max_data_xfer_size;
		req = (struct mu_region_access){offset + done, region,
						(uint32_t)n};
		iov[0] = (struct iovec){&req, sizeof(req)};
		iov[1] = (struct iovec){(uint8_t *)buf + done, n};
		r = mu_rpc_post(c, MU_CMD_REGION_WRITE, iov, 2);
		done += n;
	}
	return r;
}

MU_EXPORT int mu_client_flush_posted(mu_client_t *c)
{
	int r;

	if (!c)
		return -EINVAL;
	pthread_mutex_lock(&c->send_lock);
	r = __atomic_load_n(&c->dead, __ATOMIC_RELAXED)
		    ? -ENOTCONN
		    : mu_rpc_flush_batch_locked(c);
	pthread_mutex_unlock(&c->send_lock);
	return r;
}

MU_EXPORT int mu_client_flush(mu_client_t *c)
{
	struct mu_device_info rep;
	int r;

	if (!c)
		return -EINVAL;
	pthread_mutex_lock(&c->send_lock);
	r = mu_rpc_flush_batch_locked(c);
	pthread_mutex_unlock(&c->send_lock);
	if (r < 0)
		return r;
	if (!__atomic_load_n(&c->posted_pending, __ATOMIC_RELAXED))
		return __atomic_load_n(&c->dead, __ATOMIC_RELAXED) ? -ENOTCONN
								   : 0;
	/* The server handles messages in order: once this cheap request is
	 * answered, every posted write before it was processed. */
	return mu_info_fetch_device(c, &rep);
}

/* ---- mmap ------------------------------------------------------------ */

MU_EXPORT int mu_client_region_mmap(mu_client_t *c, unsigned region,
				    uint64_t offset, size_t len, int prot,
				    void **addr)
{
	const struct mu_client_region *ri;
	struct mu_mmap_ent *ents;
	struct stat st;
	uint64_t foff;
	void *p;
	int r;

	if (!c || !addr || len == 0 || offset + len < offset)
		return -EINVAL;
	r = mu_client_region_info(c, region, &ri);
	if (r < 0)
		return r;
	if (!(ri->flags & MU_REGION_INFO_FLAG_MMAP) || ri->fd < 0)
		return -ENOTSUP;
	if (((prot & PROT_READ) && !(ri->flags & MU_REGION_INFO_FLAG_READ)) ||
	    ((prot & PROT_WRITE) && !(ri->flags & MU_REGION_INFO_FLAG_WRITE)))
		return -EACCES;
	if (ri->nr_sparse) {
		uint32_t i;

		for (i = 0; i < ri->nr_sparse; i++)
			if (offset >= ri->sparse[i].offset &&
			    mu_range_ok(offset - ri->sparse[i].offset, len,
					ri->sparse[i].size))
				break;
		if (i == ri->nr_sparse)
			return -EINVAL;
	} else if (!mu_range_ok(offset, len, ri->size)) {
		return -EINVAL;
	}
	foff = ri->offset + offset;
	if (foff < ri->offset || (foff & 4095) || foff > INT64_MAX)
		return -EINVAL;
	/* The server's fd must really hold what it describes: touching a
	 * mapping beyond the end of a file is SIGBUS in the caller. */
	if (fstat(ri->fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode) ||
	    !mu_range_ok(foff, len, (uint64_t)st.st_size)) {
		mu_client_log(c, MU_LOG_ERR,
			      "region %u: fd too small for offset %#llx + %zu",
			      region, (unsigned long long)foff, len);
		return -EBADF;
	}
	p = mmap(NULL, len, prot, MAP_SHARED, ri->fd, (off_t)foff);
	if (p == MAP_FAILED)
		return -errno;
	pthread_mutex_lock(&c->lock);
	if (c->nmmaps == c->mmaps_cap) {
		unsigned ncap = c->mmaps_cap ? c->mmaps_cap * 2 : 8;

		ents = realloc(c->mmaps, ncap * sizeof(*ents));
		if (!ents) {
			pthread_mutex_unlock(&c->lock);
			munmap(p, len);
			return -ENOMEM;
		}
		c->mmaps = ents;
		c->mmaps_cap = ncap;
	}
	c->mmaps[c->nmmaps++] = (struct mu_mmap_ent){p, len};
	pthread_mutex_unlock(&c->lock);
	*addr = p;
	return 0;
}

MU_EXPORT int mu_client_region_munmap(mu_client_t *c, void *addr, size_t len)
{
	unsigned i;
	int r = -EINVAL;

	if (!c)
		return -EINVAL;
	pthread_mutex_lock(&c->lock);
	for (i = 0; i < c->nmmaps; i++) {
		if (c->mmaps[i].addr == addr && c->mmaps[i].len == len) {
			c->mmaps[i] = c->mmaps[--c->nmmaps];
			r = munmap(addr, len) < 0 ? -errno : 0;
			break;
		}
	}
	pthread_mutex_unlock(&c->lock);
	return r;
}

void mu_region_fini(struct mu_client *c)
{
	unsigned i;

	for (i = 0; i < c->nmmaps; i++)
		munmap(c->mmaps[i].addr, c->mmaps[i].len);
	free(c->mmaps);
	c->mmaps = NULL;
	c->nmmaps = 0;
}
