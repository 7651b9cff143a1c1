/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * migstream.h - the samples' migration data format: a stream of records,
 * each a 16-byte header (magic, type, version, payload length, CRC-32 of
 * the payload; little-endian) and its payload. A stream is BEGIN (which
 * device, which format), any device records, END. The writer queues
 * records and hands them out in whatever pieces MIG_DATA_READ asks for;
 * the loader takes MIG_DATA_WRITE pieces of any size, checks every
 * header against the device's table of record types before it buffers a
 * byte of payload, checks the CRC, and passes whole records on. Anything
 * wrong breaks the stream for good: the device then refuses RESUMING ->
 * STOP and keeps the state it had (docs/device-guide.md).
 */
#ifndef MUSER_SAMPLE_MIGSTREAM_H
#define MUSER_SAMPLE_MIGSTREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define MS_MAGIC 0x4d53554du /* "MUSM" in memory order */
#define MS_HDR_SIZE 16u
#define MS_REC_BEGIN 1u	  /* struct ms_begin */
#define MS_REC_END 2u	  /* no payload */
#define MS_REC_DEVICE 16u /* device record types start here */

struct ms_begin {
	uint32_t device; /* the device's own magic: a gpio stream can't load
			    into a DMA engine */
	uint32_t format; /* the device's stream format version */
};

/* ---- writing ------------------------------------------------------------ */

struct ms_writer {
	uint8_t *buf;
	size_t len, off, cap; /* buf[off..len) is still to be read */
	uint64_t total;	      /* bytes handed out since ms_writer_reset */
};

void ms_writer_reset(struct ms_writer *w);
void ms_writer_free(struct ms_writer *w);
/* Queue one record; its payload is p[0..len) (a second piece q[0..qlen)
 * may follow, for a header + data record). 0 or -ENOMEM. */
int ms_put(struct ms_writer *w, uint16_t type, uint16_t version, const void *p,
	   uint32_t len, const void *q, uint32_t qlen);
static inline size_t ms_pending(const struct ms_writer *w)
{
	return w->len - w->off;
}
/* Copy up to n queued bytes to out; returns how many. */
size_t ms_take(struct ms_writer *w, void *out, size_t n);

/* ---- loading ------------------------------------------------------------ */

/* What a device accepts: one entry per record type it knows. */
struct ms_type {
	uint16_t type;
	uint16_t version; /* the only version this build loads */
	uint32_t min_len, max_len;
};

struct ms_loader {
	const struct ms_type *types; /* device types (BEGIN/END are built in) */
	unsigned ntypes;
	uint32_t device, format; /* what BEGIN must say */
	/* Called for each whole, checked device record; a negative errno
	 * breaks the stream. */
	int (*record)(void *opaque, uint16_t type, const void *p, uint32_t len);
	void *opaque;

	uint8_t hdr[MS_HDR_SIZE];
	size_t hdr_have;
	uint16_t type;
	uint32_t len, crc;
	uint8_t *payload; /* len bytes, malloc'ed per record */
	size_t have;
	bool begun, ended;
	int error;	 /* first failure; sticky */
	const char *why; /* what was wrong, for the log */
	uint64_t total;
};

/* Start a fresh stream (frees what an earlier one left). */
void ms_loader_reset(struct ms_loader *l);
void ms_loader_free(struct ms_loader *l);
/* Feed n bytes. 0, or the stream's error (-EINVAL for a bad stream,
 * -ENOMEM), also for every call after the first failure. */
int ms_feed(struct ms_loader *l, const void *p, size_t n);
/* ms_feed() for a mig_write callback: n, or the error after saying once
 * on stderr why the stream was refused. */
ssize_t ms_feed_logged(struct ms_loader *l, const void *p, size_t n);
/* 0 when a whole stream (BEGIN .. END) was loaded; else -EINVAL (a
 * truncated stream) or the error that broke it. */
int ms_finish(const struct ms_loader *l);

#endif
