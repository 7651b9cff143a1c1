/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * checks-mig.c - migration v2 (DEVICE_FEATURE MIGRATION and
 * MIG_DEVICE_STATE, MIG_DATA_READ/WRITE) and DMA dirty logging, where the
 * server offers them (SKIP otherwise). Every check that moves the device
 * out of RUNNING puts it back, through DEVICE_RESET if need be; a saved
 * stream is only ever written back to the device it came from.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checks.h"

#define F_GET MU_DEVICE_FEATURE_GET
#define F_SET MU_DEVICE_FEATURE_SET
#define F_PROBE MU_DEVICE_FEATURE_PROBE
#define CHUNK 65536u
#define STREAM_MAX (16u << 20)

static const char *st_name(uint32_t s)
{
	static const char *const n[] = {
		"ERROR",    "STOP",	   "RUNNING",  "STOP_COPY",
		"RESUMING", "RUNNING_P2P", "PRE_COPY", "PRE_COPY_P2P"};

	return s < 8 ? n[s] : "?";
}

/* DEVICE_FEATURE; reply payload (header included) into m. */
static int feature(struct cf_ctx *x, uint32_t flags, const void *data,
		   size_t dlen, uint32_t argsz, struct cf_msg *m,
		   const char *what)
{
	struct mu_device_feature f = {argsz, flags};
	uint8_t buf[256];
	struct mu_device_feature r;
	int e;

	if (dlen > sizeof(buf) - sizeof(f))
		return -E2BIG;
	memcpy(buf, &f, sizeof(f));
	if (dlen)
		memcpy(buf + sizeof(f), data, dlen);
	e = cf_req(x, MU_CMD_DEVICE_FEATURE, buf, sizeof(f) + dlen, NULL, 0, m,
		   what);
	if (e < 0)
		return e;
	if (m->len < sizeof(r) || m->len > argsz)
		return cf_set(x, CF_EBROKEN,
			      "%s: reply payload %zu bytes "
			      "(argsz %u)",
			      what, m->len, argsz);
	memcpy(&r, m->payload, sizeof(r));
	if (r.flags != flags || r.argsz < m->len)
		return cf_set(x, CF_EBROKEN,
			      "%s: reply argsz %u flags 0x%x, "
			      "sent flags 0x%x",
			      what, r.argsz, r.flags, flags);
	return 0;
}

/* Migration flags, or SKIP when the feature is not offered. */
static int mig_flags(struct cf_ctx *x, uint64_t *out)
{
	struct cf_msg m;
	int e = feature(x, F_GET | MU_DEVICE_FEATURE_MIGRATION, NULL, 0, 16, &m,
			"GET MIGRATION");

	if (e == 0 && m.len != 16)
		e = cf_set(x, CF_EBROKEN,
			   "GET MIGRATION: reply payload %zu, "
			   "expected 16",
			   m.len);
	if (e == 0)
		memcpy(out, m.payload + 8, 8);
	cf_msg_free(&m);
	if (e == CF_EBROKEN)
		return CF_FAIL;
	if (e < 0)
		return cf_set(x, CF_SKIP, "migration not offered (%s)",
			      cf_errname(e));
	return CF_PASS;
}

static int get_state(struct cf_ctx *x, uint32_t *s)
{
	struct cf_msg m;
	int e = feature(x, F_GET | MU_DEVICE_FEATURE_MIG_DEVICE_STATE, NULL, 0,
			16, &m, "GET MIG_DEVICE_STATE");

	if (e == 0 && m.len != 16)
		e = cf_set(x, CF_EBROKEN,
			   "GET MIG_DEVICE_STATE: reply %zu "
			   "bytes",
			   m.len);
	if (e == 0)
		memcpy(s, m.payload + 8, 4);
	cf_msg_free(&m);
	return e;
}

static int set_state(struct cf_ctx *x, uint32_t s)
{
	struct mu_feature_mig_state d = {s, 0xffffffffu};
	struct cf_msg m;
	char what[48];
	uint32_t now;
	int e;

	snprintf(what, sizeof(what), "SET %s", st_name(s));
	e = feature(x, F_SET | MU_DEVICE_FEATURE_MIG_DEVICE_STATE, &d,
		    sizeof(d), 16, &m, what);
	if (e == 0 && m.len == 16) {
		memcpy(&now, m.payload + 8, 4);
		if (now != s)
			e = cf_set(x, CF_EBROKEN, "%s: reply says %s", what,
				   st_name(now));
	}
	cf_msg_free(&m);
	if (e == 0 && get_state(x, &now) == 0 && now != s)
		e = cf_set(x, CF_EBROKEN, "%s succeeded, GET says %s", what,
			   st_name(now));
	return e;
}

/* Back to RUNNING whatever happened; st is kept unless this fails. */
static int restore(struct cf_ctx *x, int st)
{
	char keep[CF_EV_MAX];
	uint32_t s = 0;
	struct cf_msg m;

	snprintf(keep, sizeof(keep), "%s", x->ev);
	if (x->c->dead)
		return st;
	if (get_state(x, &s) == 0 && s == MU_MIG_STATE_RUNNING)
		goto out;
	if (set_state(x, MU_MIG_STATE_RUNNING) == 0)
		goto out;
	cf_req(x, MU_CMD_DEVICE_RESET, NULL, 0, NULL, 0, &m, "DEVICE_RESET");
	cf_msg_free(&m);
	if (get_state(x, &s) < 0 || s != MU_MIG_STATE_RUNNING)
		return cf_set(x, CF_FAIL,
			      "device left in %s: neither SET RUNNING nor "
			      "DEVICE_RESET brought it back",
			      st_name(s));
out:
	snprintf(x->ev, sizeof(x->ev), "%s", keep);
	return st;
}

static int m_flags(struct cf_ctx *x)
{
	uint64_t f = 0;
	int st = mig_flags(x, &f);

	if (st != CF_PASS)
		return st;
	if (!(f & MU_MIGRATION_STOP_COPY))
		return cf_set(x, CF_FAIL,
			      "migration flags 0x%llx lack STOP_COPY",
			      (unsigned long long)f);
	if (f & ~(MU_MIGRATION_STOP_COPY | MU_MIGRATION_P2P |
		  MU_MIGRATION_PRE_COPY))
		return cf_set(x, CF_WARN,
			      "migration flags 0x%llx: undefined "
			      "bits",
			      (unsigned long long)f);
	return cf_set(x, CF_PASS, "migration flags 0x%llx",
		      (unsigned long long)f);
}

static int m_state(struct cf_ctx *x)
{
	uint64_t f;
	uint32_t s;
	int st = mig_flags(x, &f);

	if (st != CF_PASS)
		return st;
	if (get_state(x, &s) < 0)
		return CF_FAIL;
	if (s != MU_MIG_STATE_RUNNING)
		return restore(x, cf_set(x, CF_FAIL,
					 "a new client finds the "
					 "device in %s",
					 st_name(s)));
	if (set_state(x, MU_MIG_STATE_STOP) < 0)
		return restore(x, CF_FAIL);
	if (set_state(x, MU_MIG_STATE_RUNNING) < 0)
		return restore(x, CF_FAIL);
	return cf_set(x, CF_PASS,
		      "RUNNING -> STOP -> RUNNING, each reply and "
		      "GET agree");
}

static int m_bad_state(struct cf_ctx *x)
{
	struct mu_feature_mig_state d = {99, 0};
	uint64_t f;
	struct cf_msg m;
	uint32_t s;
	int st = mig_flags(x, &f), e;

	if (st != CF_PASS)
		return st;
	e = feature(x, F_SET | MU_DEVICE_FEATURE_MIG_DEVICE_STATE, &d,
		    sizeof(d), 16, &m, "SET state 99");
	cf_msg_free(&m);
	if (e == CF_EBROKEN)
		return restore(x, CF_FAIL);
	if (e == 0)
		return restore(x,
			       cf_set(x, CF_FAIL, "SET of state 99 accepted"));
	if (get_state(x, &s) < 0)
		return restore(x, CF_FAIL);
	/* A refused arc may leave the device in ERROR only if it had to. */
	if (s != MU_MIG_STATE_RUNNING)
		return restore(x, cf_set(x, CF_FAIL,
					 "a refused SET of state 99 "
					 "left the device in %s",
					 st_name(s)));
	return cf_set(x, CF_PASS, "SET of state 99 refused (%s), still RUNNING",
		      cf_errname(e));
}

static int mig_read(struct cf_ctx *x, uint8_t *buf, uint32_t want,
		    uint32_t *got)
{
	struct mu_mig_data d = {8 + want, want}, r;
	struct cf_msg m;
	int e = cf_req(x, MU_CMD_MIG_DATA_READ, &d, sizeof(d), NULL, 0, &m,
		       "MIG_DATA_READ");

	if (e == 0 && m.len < sizeof(r))
		e = cf_set(x, CF_EBROKEN, "MIG_DATA_READ: reply %zu bytes",
			   m.len);
	if (e == 0) {
		memcpy(&r, m.payload, sizeof(r));
		if (r.size > want || m.len < 8 + (size_t)r.size ||
		    m.len > 8 + (size_t)want || r.argsz != 8 + r.size)
			e = cf_set(
				x, CF_EBROKEN,
				"MIG_DATA_READ of %u: reply argsz %u size %u "
				"payload %zu",
				want, r.argsz, r.size, m.len);
		else {
			memcpy(buf, m.payload + 8, r.size);
			*got = r.size;
		}
	}
	cf_msg_free(&m);
	return e;
}

static int m_save_restore(struct cf_ctx *x)
{
	uint8_t *stream;
	uint32_t len = 0, got, off;
	uint64_t f;
	int st = mig_flags(x, &f), e = 0, reads = 0;

	if (st != CF_PASS)
		return st;
	stream = malloc(STREAM_MAX);
	if (!stream)
		return cf_set(x, CF_SKIP, "out of memory");
	if (set_state(x, MU_MIG_STATE_STOP) < 0 ||
	    set_state(x, MU_MIG_STATE_STOP_COPY) < 0) {
		st = CF_FAIL;
		goto out;
	}
	do {
		if (len + CHUNK > STREAM_MAX) {
			st = cf_set(x, CF_WARN,
				    "migration stream larger than "
				    "%u bytes: not checked further",
				    STREAM_MAX);
			goto out;
		}
		e = mig_read(x, stream + len, CHUNK, &got);
		len += got;
		reads++;
	} while (e == 0 && got == CHUNK);
	if (e < 0) {
		st = CF_FAIL;
		goto out;
	}
	/* A short read ended the stream: nothing may follow it. */
	if (mig_read(x, stream + len, CHUNK, &got) == 0 && got) {
		st = cf_set(x, CF_FAIL,
			    "STOP_COPY: read %d returned %u of %u bytes (the "
			    "end of the stream), yet the next read returned "
			    "%u more",
			    reads, len - (reads > 1 ? (reads - 1) * CHUNK : 0),
			    CHUNK, got);
		goto out;
	}
	if (set_state(x, MU_MIG_STATE_STOP) < 0 ||
	    set_state(x, MU_MIG_STATE_RESUMING) < 0) {
		st = CF_FAIL;
		goto out;
	}
	for (off = 0; off < len && e == 0; off += got) {
		uint8_t *p = malloc(8 + CHUNK);
		struct mu_mig_data d;
		struct cf_msg m;

		if (!p) {
			e = -ENOMEM;
			break;
		}
		got = len - off < CHUNK ? len - off : CHUNK;
		d.argsz = 8 + got;
		d.size = got;
		memcpy(p, &d, 8);
		memcpy(p + 8, stream + off, got);
		e = cf_req(x, MU_CMD_MIG_DATA_WRITE, p, 8 + got, NULL, 0, &m,
			   "MIG_DATA_WRITE");
		free(p);
		cf_msg_free(&m);
	}
	if (e < 0 || set_state(x, MU_MIG_STATE_STOP) < 0 ||
	    set_state(x, MU_MIG_STATE_RUNNING) < 0) {
		st = CF_FAIL;
		goto out;
	}
	st = cf_set(x, CF_PASS,
		    "saved %u bytes in %d reads (STOP_COPY), "
		    "loaded them back (RESUMING), RUNNING again",
		    len, reads);
out:
	free(stream);
	return restore(x, st);
}

static int m_wrong_state(struct cf_ctx *x)
{
	struct mu_mig_data rd = {8 + 64, 64};
	uint8_t wr[8 + 4] = {12, 0, 0, 0, 4, 0, 0, 0};
	uint64_t f;
	int st = mig_flags(x, &f), e;

	if (st != CF_PASS)
		return st;
	e = cf_refused(x, MU_CMD_MIG_DATA_READ, &rd, sizeof(rd), NULL, 0, NULL,
		       "MIG_DATA_READ while RUNNING");
	if (e == 1)
		e = cf_refused(x, MU_CMD_MIG_DATA_WRITE, wr, sizeof(wr), NULL,
			       0, NULL, "MIG_DATA_WRITE while RUNNING");
	if (e == CF_EBROKEN)
		return restore(x, CF_FAIL);
	if (e == 0)
		return restore(x, cf_set(x, CF_FAIL,
					 "migration data moved while RUNNING"));
	return cf_set(x, CF_PASS,
		      "MIG_DATA_READ and MIG_DATA_WRITE refused "
		      "while RUNNING");
}

static int m_no_precopy(struct cf_ctx *x)
{
	struct mu_feature_mig_state d = {MU_MIG_STATE_PRE_COPY, 0};
	struct cf_msg m;
	uint64_t f;
	int st = mig_flags(x, &f), e;

	if (st != CF_PASS)
		return st;
	if (!(f & MU_MIGRATION_PRE_COPY))
		return cf_set(x, CF_SKIP, "PRE_COPY not offered");
	if (set_state(x, MU_MIG_STATE_STOP) < 0 ||
	    set_state(x, MU_MIG_STATE_STOP_COPY) < 0)
		return restore(x, CF_FAIL);
	e = feature(x, F_SET | MU_DEVICE_FEATURE_MIG_DEVICE_STATE, &d,
		    sizeof(d), 16, &m, "SET PRE_COPY from STOP_COPY");
	cf_msg_free(&m);
	if (e == CF_EBROKEN)
		return restore(x, CF_FAIL);
	if (e == 0)
		return restore(x, cf_set(x, CF_FAIL,
					 "STOP_COPY -> PRE_COPY "
					 "accepted"));
	return restore(x, cf_set(x, CF_PASS,
				 "STOP_COPY -> PRE_COPY refused "
				 "(%s)",
				 cf_errname(e)));
}

/* ---- DMA logging --------------------------------------------------------
 */

static int log_offered(struct cf_ctx *x)
{
	static const uint32_t probes[] = {
		F_PROBE | F_SET | MU_DEVICE_FEATURE_DMA_LOGGING_START,
		F_PROBE | F_SET | MU_DEVICE_FEATURE_DMA_LOGGING_STOP,
		F_PROBE | F_GET | MU_DEVICE_FEATURE_DMA_LOGGING_REPORT};
	struct cf_msg m;
	size_t i;
	int e;

	for (i = 0; i < sizeof(probes) / sizeof(*probes); i++) {
		e = feature(x, probes[i], NULL, 0, 8, &m, "DMA logging probe");
		if (e == 0 && m.len != 8)
			e = cf_set(x, CF_EBROKEN,
				   "DMA logging probe: reply "
				   "%zu bytes, expected 8",
				   m.len);
		cf_msg_free(&m);
		if (e == CF_EBROKEN)
			return CF_FAIL;
		if (e < 0)
			return cf_set(x, CF_SKIP,
				      "DMA logging not offered (%s)",
				      cf_errname(e));
	}
	return CF_PASS;
}

static int l_cycle(struct cf_ctx *x)
{
	static uint8_t win[16 * 4096];
	uint8_t start[16 + 16], rep[24];
	struct mu_dma_logging_control ctl = {4096, 1, 0};
	struct mu_dma_logging_range r = {0x400000000ull, sizeof(win)};
	struct mu_dma_logging_report q = {r.iova, r.length, 4096};
	struct cf_msg m;
	uint64_t bits;
	int st = log_offered(x), e;

	if (st != CF_PASS)
		return st;
	if (cf_dma_map(x, r.iova, sizeof(win),
		       MU_DMA_MAP_FLAG_READ | MU_DMA_MAP_FLAG_WRITE, -1,
		       win) < 0)
		return CF_FAIL;
	memcpy(start, &ctl, 16);
	memcpy(start + 16, &r, 16);
	e = feature(x, F_SET | MU_DEVICE_FEATURE_DMA_LOGGING_START, start,
		    sizeof(start), 8 + sizeof(start), &m, "DMA_LOGGING_START");
	cf_msg_free(&m);
	if (e < 0)
		return CF_FAIL;
	memcpy(rep, &q, sizeof(rep));
	e = feature(x, F_GET | MU_DEVICE_FEATURE_DMA_LOGGING_REPORT, rep,
		    sizeof(rep), 8 + 24 + 8, &m, "DMA_LOGGING_REPORT");
	if (e == 0 && m.len != 8 + 24 + 8)
		e = cf_set(x, CF_EBROKEN,
			   "DMA_LOGGING_REPORT of 16 pages: reply %zu bytes, "
			   "expected 40 (one u64 of bitmap)",
			   m.len);
	if (e == 0) {
		memcpy(&bits, m.payload + 32, 8);
		if (bits >> 16)
			e = cf_set(x, CF_EBROKEN,
				   "DMA_LOGGING_REPORT: bits set past the 16 "
				   "pages of the range (0x%llx)",
				   (unsigned long long)bits);
	}
	cf_msg_free(&m);
	if (e < 0) {
		feature(x, F_SET | MU_DEVICE_FEATURE_DMA_LOGGING_STOP, NULL, 0,
			8, &m, "DMA_LOGGING_STOP");
		cf_msg_free(&m);
		return CF_FAIL;
	}
	e = feature(x, F_SET | MU_DEVICE_FEATURE_DMA_LOGGING_STOP, NULL, 0, 8,
		    &m, "DMA_LOGGING_STOP");
	cf_msg_free(&m);
	if (e < 0)
		return CF_FAIL;
	e = feature(x, F_GET | MU_DEVICE_FEATURE_DMA_LOGGING_REPORT, rep,
		    sizeof(rep), 8 + 24 + 8, &m, "REPORT after STOP");
	cf_msg_free(&m);
	if (e == CF_EBROKEN)
		return CF_FAIL;
	if (e == 0)
		return cf_set(x, CF_FAIL,
			      "DMA_LOGGING_REPORT accepted after "
			      "STOP");
	return cf_set(x, CF_PASS,
		      "START, REPORT (8-byte bitmap, clean past "
		      "the range), STOP; REPORT after STOP refused");
}

const struct cf_check cf_checks_mig[] = {
	{"mig.flags", S_FEAT, "5.16",
	 "GET MIGRATION answers u64 flags with STOP_COPY set", CF_NEED_SESSION,
	 m_flags},
	{"mig.state", S_FEAT, "5.16",
	 "a new client finds RUNNING; RUNNING -> STOP -> RUNNING works",
	 CF_NEED_SESSION, m_state},
	{"mig.bad-state", S_FEAT, "5.16",
	 "a SET of an undefined state is refused and changes nothing",
	 CF_NEED_SESSION, m_bad_state},
	{"mig.save-restore", S_MIGDATA, "5.17",
	 "STOP_COPY data reads out (a short read ends it: nothing follows) and "
	 "loads back in RESUMING",
	 CF_NEED_SESSION, m_save_restore},
	{"mig.data-wrong-state", S_MIGDATA, "5.17",
	 "MIG_DATA_READ/WRITE are refused while RUNNING", CF_NEED_SESSION,
	 m_wrong_state},
	{"mig.stop-copy-to-pre-copy", S_FEAT, "5.16",
	 "STOP_COPY -> PRE_COPY is refused", CF_NEED_SESSION, m_no_precopy},
	{"log.cycle", S_FEAT, "9v",
	 "DMA logging START, REPORT (bitmap size, clean tail), STOP",
	 CF_NEED_SESSION, l_cycle},
	{NULL, NULL, NULL, NULL, 0, NULL},
};
