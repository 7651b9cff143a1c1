/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * DMA: the table of memory the server may reach (DMA_MAP/DMA_UNMAP), and
 * serving the server's DMA_READ/DMA_WRITE from it, bounds- and
 * permission-checked. Layouts: the spec's {u64 addr, u64 count, data@16}
 * and QEMU's {u64 addr, u32 count, data@12} are told apart by length
 * (mu_check_server_command) and answered in the layout they came in:
 * DMA_READ reply {addr, count, data}, DMA_WRITE reply {addr, count}.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client-internal.h"

/* Index of the first map with iova > addr (table sorted by iova). */
static unsigned upper_bound(const struct mu_client *c, uint64_t addr)
{
	unsigned lo = 0, hi = c->nmaps;

	while (lo < hi) {
		unsigned mid = lo + (hi - lo) / 2;

		if (c->maps[mid].iova <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* The map holding all of [addr, addr+len), or NULL. */
static const struct mu_dma_ent *find_map(const struct mu_client *c,
					 uint64_t addr, uint64_t len)
{
	unsigned i = upper_bound(c, addr);
	const struct mu_dma_ent *e;

	if (i == 0)
		return NULL;
	e = &c->maps[i - 1];
	if (!mu_range_ok(addr - e->iova, len, e->size))
		return NULL;
	return e;
}

static bool overlaps(const struct mu_client *c, uint64_t iova, uint64_t size)
{
	unsigned i = upper_bound(c, iova);

	if (i > 0 && c->maps[i - 1].iova + c->maps[i - 1].size > iova)
		return true;
	return i < c->nmaps && c->maps[i].iova < iova + size;
}

static int insert_map(struct mu_client *c, const struct mu_dma_ent *e)
{
	unsigned i;

	if (overlaps(c, e->iova, e->size))
		return -EEXIST;
	if (c->nmaps >= c->sess.max_dma_maps)
		return -ENOSPC;
	if (c->nmaps == c->maps_cap) {
		unsigned ncap = c->maps_cap ? c->maps_cap * 2 : 16;
		struct mu_dma_ent *n = realloc(c->maps, ncap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		c->maps = n;
		c->maps_cap = ncap;
	}
	i = upper_bound(c, e->iova);
	memmove(&c->maps[i + 1], &c->maps[i], (c->nmaps - i) * sizeof(*e));
	c->maps[i] = *e;
	c->nmaps++;
	if (e->buf)
		__atomic_add_fetch(&c->nbuf_maps, 1, __ATOMIC_RELAXED);
	return 0;
}

static void drop_at(struct mu_client *c, unsigned i)
{
	if (c->maps[i].fd >= 0)
		close(c->maps[i].fd);
	if (c->maps[i].buf)
		__atomic_sub_fetch(&c->nbuf_maps, 1, __ATOMIC_RELAXED);
	memmove(&c->maps[i], &c->maps[i + 1],
		(c->nmaps - i - 1) * sizeof(c->maps[0]));
	c->nmaps--;
}

/* Index + 1 of the map exactly [iova, iova+size), or 0. */
static unsigned find_exact(const struct mu_client *c, uint64_t iova,
			   uint64_t size)
{
	unsigned i = upper_bound(c, iova);

	if (i == 0 || c->maps[i - 1].iova != iova ||
	    c->maps[i - 1].size != size)
		return 0;
	return i;
}

static int remove_map(struct mu_client *c, uint64_t iova, uint64_t size)
{
	unsigned i = find_exact(c, iova, size);

	if (!i)
		return -ENOENT;
	drop_at(c, i - 1);
	return 0;
}

void mu_dma_fini(struct mu_client *c)
{
	while (c->nmaps)
		drop_at(c, c->nmaps - 1);
	free(c->maps);
	c->maps = NULL;
	c->maps_cap = 0;
}

static uint64_t min_pgsize(const struct mu_client *c)
{
	uint64_t p = c->sess.pgsizes;

	return p ? (p & -p) : 4096;
}

static int check_map_args(mu_client_t *c, uint64_t iova, uint64_t size,
			  uint32_t prot)
{
	uint64_t pg;

	if (!c || size == 0 || iova + size < iova)
		return -EINVAL;
	if (prot & ~(MU_DMA_MAP_FLAG_READ | MU_DMA_MAP_FLAG_WRITE))
		return -EINVAL;
	pg = min_pgsize(c);
	if ((iova | size) & (pg - 1))
		return -EINVAL;
	return 0;
}

static int do_map(struct mu_client *c, const struct mu_dma_ent *e,
		  const int *fd)
{
	struct mu_dma_map req = {
		.argsz = sizeof(req),
		.flags = e->prot,
		.offset = e->fd_offset,
		.addr = e->iova,
		.size = e->size,
	};
	struct iovec iov = {&req, sizeof(req)};
	struct mu_call call = {
		.cmd = MU_CMD_DMA_MAP,
		.iov = &iov,
		.iovcnt = 1,
		.fds = fd,
		.nfds = fd ? 1 : 0,
	};
	int r;

	/* In the table first: the server may DMA before its reply. */
	pthread_rwlock_wrlock(&c->dma_lock);
	r = insert_map(c, e);
	pthread_rwlock_unlock(&c->dma_lock);
	if (r < 0) {
		if (e->fd >= 0)
			close(e->fd);
		return r;
	}
	r = mu_rpc_call(c, &call);
	if (r < 0) {
		pthread_rwlock_wrlock(&c->dma_lock);
		remove_map(c, e->iova, e->size);
		pthread_rwlock_unlock(&c->dma_lock);
	}
	return r;
}

MU_EXPORT int mu_client_dma_map_fd(mu_client_t *c, uint64_t iova, uint64_t size,
				   int fd, uint64_t fd_offset, uint32_t prot)
{
	struct mu_dma_ent e = {iova, size, prot, NULL, -1, fd_offset};
	int r = check_map_args(c, iova, size, prot);

	if (r < 0)
		return r;
	if (fd_offset + size < fd_offset || (fd_offset & (min_pgsize(c) - 1)))
		return -EINVAL;
	if (c->sess.max_msg_fds < 1)
		return -EOPNOTSUPP;
	/* Our own dup lets us serve DMA_READ/WRITE to it too; it also
	 * proves fd valid before anything is sent. */
	e.fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	if (e.fd < 0)
		return -errno;
	return do_map(c, &e, &fd);
}

MU_EXPORT int mu_client_dma_map_buffer(mu_client_t *c, uint64_t iova, void *buf,
				       uint64_t size, uint32_t prot)
{
	struct mu_dma_ent e = {iova, size, prot, buf, -1, 0};
	int r = check_map_args(c, iova, size, prot);

	if (r < 0)
		return r;
	if (!buf)
		return -EINVAL;
	return do_map(c, &e, NULL);
}

static int do_unmap(struct mu_client *c, uint64_t iova, uint64_t size,
		    uint32_t flags)
{
	struct mu_dma_unmap req = {sizeof(req), flags, iova, size}, rep;
	size_t rlen;
	int r;

	r = mu_rpc_simple(c, MU_CMD_DMA_UNMAP, &req, sizeof(req), &rep,
			  sizeof(rep), 0, &rlen);
	if (r < 0)
		return r;
	/* The spec echoes the request; some servers send nothing. */
	if (rlen != 0 && rlen != sizeof(rep)) {
		mu_client_log(c, MU_LOG_ERR, "DMA_UNMAP reply of %zu bytes",
			      rlen);
		mu_client_kill(c, -EBADMSG);
		return -EBADMSG;
	}
	return 0;
}

MU_EXPORT int mu_client_dma_unmap(mu_client_t *c, uint64_t iova, uint64_t size)
{
	int r;

	if (!c)
		return -EINVAL;
	pthread_rwlock_rdlock(&c->dma_lock);
	/* Unmaps must match a mapping exactly (spec). */
	r = find_exact(c, iova, size) ? 0 : -ENOENT;
	pthread_rwlock_unlock(&c->dma_lock);
	if (r < 0)
		return r;
	r = do_unmap(c, iova, size, 0);
	/* Whatever the server answered (or if it did not), the caller is
	 * taking the memory back: stop serving it. The write lock waits for a
	 * DMA request being served from it right now. */
	pthread_rwlock_wrlock(&c->dma_lock);
	remove_map(c, iova, size);
	pthread_rwlock_unlock(&c->dma_lock);
	return r;
}

MU_EXPORT int mu_client_dma_unmap_all(mu_client_t *c)
{
	int r;

	if (!c)
		return -EINVAL;
	r = do_unmap(c, 0, 0, MU_DMA_UNMAP_FLAG_ALL);
	/* Revoked locally even when the server refuses or is gone. */
	pthread_rwlock_wrlock(&c->dma_lock);
	while (c->nmaps)
		drop_at(c, c->nmaps - 1);
	pthread_rwlock_unlock(&c->dma_lock);
	return r;
}

/* ---- serving the server's DMA commands ------------------------------- */

static int send_reply(struct mu_chan *ch, pthread_mutex_t *slock,
		      struct mu_hdr *h, const struct iovec *iov, int iovcnt)
{
	int r;

	if (slock)
		pthread_mutex_lock(slock);
	r = mu_chan_send(ch, h, iov, iovcnt, NULL, 0);
	if (slock)
		pthread_mutex_unlock(slock);
	return r;
}

static int send_err(struct mu_chan *ch, pthread_mutex_t *slock,
		    const struct mu_hdr *req, int err)
{
	int r;

	if (slock)
		pthread_mutex_lock(slock);
	r = mu_chan_send_error(ch, req, err);
	if (slock)
		pthread_mutex_unlock(slock);
	return r;
}

/* Serve one access from an fd map with pread/pwrite. */
static int fd_access(const struct mu_dma_ent *e, uint64_t addr, void *buf,
		     uint64_t count, bool write)
{
	off_t off = (off_t)(e->fd_offset + (addr - e->iova));
	size_t done = 0;

	while (done < count) {
		ssize_t n = write ? pwrite(e->fd, (const uint8_t *)buf + done,
					   count - done, off + (off_t)done)
				  : pread(e->fd, (uint8_t *)buf + done,
					  count - done, off + (off_t)done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EFAULT; /* beyond the end of the file */
		done += (size_t)n;
	}
	return 0;
}

int mu_dma_serve(struct mu_client *c, struct mu_chan *ch,
		 pthread_mutex_t *slock, struct mu_msg *m)
{
	struct mu_limits lim = {c->our_xfer, 0};
	struct mu_hdr h = {.msg_id = m->hdr.msg_id,
			   .cmd = m->hdr.cmd,
			   .flags = MU_FLAG_TYPE_REPLY};
	bool count32 = false, noreply = m->hdr.flags & MU_FLAG_NO_REPLY;
	bool is_read = m->hdr.cmd == MU_CMD_DMA_READ;
	const struct mu_dma_ent *e;
	struct mu_dma_access a;
	struct iovec iov[2];
	uint8_t *tmp = NULL;
	size_t alen;
	int r;

	r = mu_check_server_command(m, &lim, &count32);
	mu_msg_close_fds(m);
	if (r < 0) {
		mu_client_log(
			c, MU_LOG_WARN, "refused server command %s (%u): %s",
			mu_cmd_name(m->hdr.cmd), m->hdr.cmd, strerror(-r));
		return noreply ? 0 : send_err(ch, slock, &m->hdr, r);
	}
	memcpy(&a.addr, m->payload, 8);
	a.count = 0;
	memcpy(&a.count, m->payload + 8, 4); /* < 4 GiB, checked */
	alen = count32 ? sizeof(struct mu_dma_access32)
		       : sizeof(struct mu_dma_access);
	iov[0] = (struct iovec){&a, alen}; /* little endian: u32 prefix */

	pthread_rwlock_rdlock(&c->dma_lock);
	e = find_map(c, a.addr, a.count);
	if (!e)
		r = -EFAULT;
	else if (!(e->prot &
		   (is_read ? MU_DMA_MAP_FLAG_READ : MU_DMA_MAP_FLAG_WRITE)))
		r = -EACCES;
	if (r == 0 && is_read) {
		if (e->buf) {
			iov[1] = (struct iovec){(uint8_t *)e->buf +
							(a.addr - e->iova),
						a.count};
		} else {
			tmp = malloc(a.count);
			r = tmp ? fd_access(e, a.addr, tmp, a.count, false)
				: -ENOMEM;
			iov[1] = (struct iovec){tmp, a.count};
		}
	} else if (r == 0) {
		const uint8_t *src = m->payload + alen;

		if (e->buf)
			memcpy((uint8_t *)e->buf + (a.addr - e->iova), src,
			       a.count);
		else
			r = fd_access(e, a.addr, (void *)src, a.count, true);
	}
	if (noreply)
		r = 0;
	else if (r < 0)
		r = send_err(ch, slock, &m->hdr, r);
	else
		/* Sent before the map can go: the data is still valid. */
		r = send_reply(ch, slock, &h, iov, is_read ? 2 : 1);
	pthread_rwlock_unlock(&c->dma_lock);
	free(tmp);
	return r;
}
