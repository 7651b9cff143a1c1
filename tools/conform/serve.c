/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * serve.c - the checker answers the server's DMA_READ/DMA_WRITE during the
 * whole run, from the windows it mapped. Every request is checked against
 * the spec (layout, count against the max_data_xfer_size the checker
 * announced, range inside one window, permission) and each violation is
 * counted with evidence; a bad request gets an error reply, never data.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "serve.h"

static void bad(struct cf_dma_stats *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void bad(struct cf_dma_stats *s, const char *fmt, ...)
{
	va_list ap;

	if (s->bad++ == 0) {
		va_start(ap, fmt);
		vsnprintf(s->first_bad, sizeof(s->first_bad), fmt, ap);
		va_end(ap);
	}
}

int cf_window_add(struct cf_conn *c, uint64_t iova, uint64_t size,
		  uint32_t prot, uint8_t *buf, int fd)
{
	struct cf_window *w;

	if (c->nwin >= CF_MAX_WIN)
		return -ENOSPC;
	w = &c->win[c->nwin++];
	w->iova = iova;
	w->size = size;
	w->prot = prot;
	w->buf = buf;
	w->fd = fd >= 0 ? dup(fd) : -1;
	return 0;
}

void cf_window_del(struct cf_conn *c, uint64_t iova, uint64_t size)
{
	unsigned i;

	for (i = 0; i < c->nwin; i++) {
		if (c->win[i].iova != iova || c->win[i].size != size)
			continue;
		if (c->win[i].fd >= 0)
			close(c->win[i].fd);
		c->win[i] = c->win[--c->nwin];
		return;
	}
}

void cf_window_clear(struct cf_conn *c)
{
	while (c->nwin)
		cf_window_del(c, c->win[0].iova, c->win[0].size);
}

static const struct cf_window *find(const struct cf_conn *c, uint64_t addr,
				    uint64_t count)
{
	unsigned i;

	for (i = 0; i < c->nwin; i++) {
		const struct cf_window *w = &c->win[i];

		if (addr >= w->iova && addr - w->iova <= w->size &&
		    count <= w->size - (addr - w->iova))
			return w;
	}
	return NULL;
}

static int copy_out(const struct cf_window *w, uint64_t off, uint8_t *dst,
		    uint64_t n)
{
	if (w->buf) {
		memcpy(dst, w->buf + off, n);
		return 0;
	}
	return pread(w->fd, dst, n, (off_t)off) == (ssize_t)n ? 0 : -EFAULT;
}

static int copy_in(const struct cf_window *w, uint64_t off, const uint8_t *src,
		   uint64_t n)
{
	if (w->buf) {
		memcpy(w->buf + off, src, n);
		return 0;
	}
	return pwrite(w->fd, src, n, (off_t)off) == (ssize_t)n ? 0 : -EFAULT;
}

static int check_and_do(struct cf_conn *c, struct cf_dma_stats *s,
			struct cf_msg *m, uint8_t **out, size_t *outlen)
{
	bool rd = m->hdr.cmd == MU_CMD_DMA_READ;
	const char *name = rd ? "DMA_READ" : "DMA_WRITE";
	const struct cf_window *w;
	struct mu_dma_access a;
	uint8_t *rep;
	int e;

	if ((m->hdr.flags & ~MU_FLAG_KNOWN) || (m->hdr.flags & MU_FLAG_ERROR)) {
		bad(s, "%s with flags 0x%x", name, m->hdr.flags);
		return -EINVAL;
	}
	if (m->nfds) {
		bad(s, "%s carried %u fds", name, m->nfds);
		return -EINVAL;
	}
	if (m->len < sizeof(a)) {
		bad(s, "%s payload %zu bytes, below 16", name, m->len);
		return -EINVAL;
	}
	memcpy(&a, m->payload, sizeof(a));
	if (a.count == 0 || a.count > CF_MAX_XFER) {
		bad(s, "%s count %llu (checker's max_data_xfer_size %u)", name,
		    (unsigned long long)a.count, CF_MAX_XFER);
		return a.count ? -E2BIG : -EINVAL;
	}
	if (m->len != sizeof(a) + (rd ? 0 : a.count)) {
		bad(s, "%s payload %zu bytes for count %llu", name, m->len,
		    (unsigned long long)a.count);
		return -EINVAL;
	}
	w = find(c, a.addr, a.count);
	if (!w) {
		bad(s, "%s [0x%llx, +0x%llx) outside every mapped window", name,
		    (unsigned long long)a.addr, (unsigned long long)a.count);
		return -EFAULT;
	}
	if (!(w->prot & (rd ? MU_DMA_MAP_FLAG_READ : MU_DMA_MAP_FLAG_WRITE))) {
		bad(s, "%s to a window mapped without %s", name,
		    rd ? "READ" : "WRITE");
		return -EACCES;
	}
	*outlen = sizeof(a) + (rd ? a.count : 0);
	rep = calloc(1, *outlen);
	if (!rep)
		return -ENOMEM;
	memcpy(rep, &a, sizeof(a));
	e = rd ? copy_out(w, a.addr - w->iova, rep + sizeof(a), a.count)
	       : copy_in(w, a.addr - w->iova, m->payload + sizeof(a), a.count);
	if (e < 0) {
		free(rep);
		return e;
	}
	if (rd)
		s->reads++;
	else
		s->writes++;
	*out = rep;
	return 0;
}

void cf_serve(struct cf_conn *c, int sock, struct cf_msg *m)
{
	struct cf_dma_stats dummy = {0}, *s = c->dma ? c->dma : &dummy;
	uint32_t flags = MU_FLAG_TYPE_REPLY;
	uint8_t *rep = NULL;
	size_t replen = 0;
	int e;

	e = check_and_do(c, s, m, &rep, &replen);
	if (m->hdr.flags & MU_FLAG_NO_REPLY) {
		free(rep);
		return;
	}
	if (e < 0) {
		struct mu_hdr h = {.msg_id = m->hdr.msg_id,
				   .cmd = m->hdr.cmd,
				   .size = sizeof(h),
				   .flags = flags | MU_FLAG_ERROR,
				   .error = (uint32_t)-e};
		cf_send_msg(c, sock, &h, NULL, 0, NULL, 0);
		return;
	}
	cf_send_on(c, sock, m->hdr.msg_id, m->hdr.cmd, flags, 0, rep, replen,
		   NULL, 0);
	free(rep);
}
