/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * migstream.c - writer and validating loader for the samples' migration
 * record stream (migstream.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crc32.h"
#include "migstream.h"
#include "sample.h"

static void put_le16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void put_le32(uint8_t *p, uint32_t v)
{
	put_le16(p, (uint16_t)v);
	put_le16(p + 2, (uint16_t)(v >> 16));
}

static uint16_t get_le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t get_le32(const uint8_t *p)
{
	return get_le16(p) | (uint32_t)get_le16(p + 2) << 16;
}

/* ---- writing ------------------------------------------------------------ */

void ms_writer_reset(struct ms_writer *w)
{
	w->len = w->off = 0;
	w->total = 0;
}

void ms_writer_free(struct ms_writer *w)
{
	free(w->buf);
	*w = (struct ms_writer){0};
}

int ms_put(struct ms_writer *w, uint16_t type, uint16_t version, const void *p,
	   uint32_t len, const void *q, uint32_t qlen)
{
	size_t need = MS_HDR_SIZE + (size_t)len + qlen;
	uint8_t *h;
	uint32_t crc;

	if (w->off == w->len)
		w->off = w->len = 0;
	if (w->len + need > w->cap) {
		size_t cap = w->cap ? w->cap : 4096;
		uint8_t *nb;

		/* drop what was read before growing */
		if (w->off)
			memmove(w->buf, w->buf + w->off, w->len - w->off);
		w->len -= w->off;
		w->off = 0;
		while (cap < w->len + need)
			cap *= 2;
		if (cap != w->cap) {
			nb = realloc(w->buf, cap);
			if (!nb)
				return -ENOMEM;
			w->buf = nb;
			w->cap = cap;
		}
	}
	h = w->buf + w->len;
	crc = sample_crc32(0, p, len);
	crc = sample_crc32(crc, q, qlen);
	put_le32(h, MS_MAGIC);
	put_le16(h + 4, type);
	put_le16(h + 6, version);
	put_le32(h + 8, len + qlen);
	put_le32(h + 12, crc);
	if (len)
		memcpy(h + MS_HDR_SIZE, p, len);
	if (qlen)
		memcpy(h + MS_HDR_SIZE + len, q, qlen);
	w->len += need;
	return 0;
}

size_t ms_take(struct ms_writer *w, void *out, size_t n)
{
	size_t k = ms_pending(w);

	if (k > n)
		k = n;
	if (!k)
		return 0;
	memcpy(out, w->buf + w->off, k);
	w->off += k;
	w->total += k;
	return k;
}

/* ---- loading ------------------------------------------------------------ */

void ms_loader_free(struct ms_loader *l)
{
	free(l->payload);
	l->payload = NULL;
}

void ms_loader_reset(struct ms_loader *l)
{
	ms_loader_free(l);
	l->hdr_have = l->have = 0;
	l->len = 0;
	l->begun = l->ended = false;
	l->error = 0;
	l->why = NULL;
	l->total = 0;
}

static int broken(struct ms_loader *l, int err, const char *why)
{
	l->error = err;
	l->why = why;
	ms_loader_free(l);
	return err;
}

/* A whole header is in l->hdr: check it against what may come next. */
static int check_header(struct ms_loader *l)
{
	uint16_t version;
	unsigned i;

	if (get_le32(l->hdr) != MS_MAGIC)
		return broken(l, -EINVAL, "bad record magic");
	l->type = get_le16(l->hdr + 4);
	version = get_le16(l->hdr + 6);
	l->len = get_le32(l->hdr + 8);
	l->crc = get_le32(l->hdr + 12);
	if (l->ended)
		return broken(l, -EINVAL, "data after END");
	if (!l->begun && l->type != MS_REC_BEGIN)
		return broken(l, -EINVAL, "stream does not start with BEGIN");
	if (l->type == MS_REC_BEGIN)
		return l->begun || version != 1 ||
				       l->len != sizeof(struct ms_begin)
			       ? broken(l, -EINVAL, "bad BEGIN")
			       : 0;
	if (l->type == MS_REC_END)
		return version != 1 || l->len ? broken(l, -EINVAL, "bad END")
					      : 0;
	for (i = 0; i < l->ntypes; i++) {
		const struct ms_type *t = &l->types[i];

		if (t->type != l->type)
			continue;
		if (t->version != version)
			return broken(l, -EINVAL, "unsupported record version");
		if (l->len < t->min_len || l->len > t->max_len)
			return broken(l, -EINVAL, "record length out of range");
		return 0;
	}
	return broken(l, -EINVAL, "unknown record type");
}

static int finish_record(struct ms_loader *l)
{
	const uint8_t *p = l->len ? l->payload : (const uint8_t *)"";
	struct ms_begin b;
	int r = 0;

	if (sample_crc32(0, p, l->len) != l->crc)
		return broken(l, -EINVAL, "record CRC mismatch");
	if (l->type == MS_REC_BEGIN) {
		b.device = get_le32(p);
		b.format = get_le32(p + 4);
		if (b.device != l->device)
			return broken(l, -EINVAL,
				      "stream is for another device");
		if (b.format != l->format)
			return broken(l, -EINVAL, "unsupported stream format");
		l->begun = true;
	} else if (l->type == MS_REC_END) {
		l->ended = true;
	} else {
		r = l->record(l->opaque, l->type, p, l->len);
		if (r < 0)
			return broken(l, r, "record refused by the device");
	}
	ms_loader_free(l);
	l->hdr_have = l->have = 0;
	return 0;
}

int ms_feed(struct ms_loader *l, const void *buf, size_t n)
{
	const uint8_t *p = buf;
	int r;

	if (l->error)
		return l->error;
	l->total += n;
	while (n) {
		size_t k;

		if (l->hdr_have < MS_HDR_SIZE) {
			k = MS_HDR_SIZE - l->hdr_have;
			k = k < n ? k : n;
			memcpy(l->hdr + l->hdr_have, p, k);
			l->hdr_have += k;
			p += k;
			n -= k;
			if (l->hdr_have < MS_HDR_SIZE)
				break;
			r = check_header(l);
			if (r < 0)
				return r;
			/* the length is bounded by the type table now */
			if (l->len) {
				l->payload = malloc(l->len);
				if (!l->payload)
					return broken(l, -ENOMEM, "no memory");
			}
		}
		k = l->len - l->have;
		k = k < n ? k : n;
		if (k)
			memcpy(l->payload + l->have, p, k);
		l->have += k;
		p += k;
		n -= k;
		if (l->have == l->len) {
			r = finish_record(l);
			if (r < 0)
				return r;
		}
	}
	return 0;
}

int ms_finish(const struct ms_loader *l)
{
	if (l->error)
		return l->error;
	return l->ended && l->hdr_have == 0 ? 0 : -EINVAL;
}

ssize_t ms_feed_logged(struct ms_loader *l, const void *p, size_t n)
{
	int r = ms_feed(l, p, n);

	if (r == 0)
		return (ssize_t)n;
	/* once: later pieces of the same stream fail quietly */
	if (l->why) {
		fprintf(stderr,
			"%s: migration: incoming stream refused: %s (at byte "
			"%llu)\n",
			sample_prog, l->why, (unsigned long long)l->total);
		l->why = NULL;
	}
	return r;
}
