/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * mu_client_migrate(): a device moved from a source server to a
 * destination server with migration v2 and dirty page logging, in the
 * order docs/protocol.md 9 gives. Only public client calls are used, so a
 * VMM with its own main loop can follow the same sequence by hand.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "client-internal.h"

/* Device data moved per read/write pass, and bounds that keep a server
 * which never stops producing data from holding us forever. */
#define CHUNK (1u << 20)
#define ROUND_CAP (64ull << 20)
#define STREAM_CAP (4ull << 30)
#define MAX_PAGE_SIZE (1ull << 30)

struct mig {
	mu_client_t *src, *dst;
	struct mu_migrate_config c;
	struct mu_migrate_stats *st;
	uint8_t *buf;
	uint64_t *bitmap;
	size_t bitmap_len;
	uint64_t report_len; /* IOVA bytes per DMA_LOGGING_REPORT */
	bool logging, src_moved, dst_moved, vm_stopped;
	uint64_t t_stop;
};

static const char *const step_names[MU_MIGRATE_STEP_COUNT] = {
	[MU_MIGRATE_STEP_BEGIN] = "begin",
	[MU_MIGRATE_STEP_LOGGING] = "logging",
	[MU_MIGRATE_STEP_RESUMING] = "resuming",
	[MU_MIGRATE_STEP_PRE_COPY] = "pre-copy",
	[MU_MIGRATE_STEP_ROUND] = "round",
	[MU_MIGRATE_STEP_STOPPED] = "vm-stopped",
	[MU_MIGRATE_STEP_STOP_COPY] = "stop-copy",
	[MU_MIGRATE_STEP_DRAINED] = "drained",
	[MU_MIGRATE_STEP_LOADED] = "loaded",
	[MU_MIGRATE_STEP_RUNNING] = "running",
	[MU_MIGRATE_STEP_DONE] = "done",
};

MU_EXPORT const char *mu_client_migrate_step_name(enum mu_migrate_step s)
{
	return (unsigned)s < MU_MIGRATE_STEP_COUNT ? step_names[s] : "?";
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int step(struct mig *m, enum mu_migrate_step s)
{
	int r = m->c.step ? m->c.step(m->c.opaque, s, m->st) : 0;

	return r < 0 ? r : 0;
}

/* Move device data src -> dst. Pre-copy (until_end false): until a short
 * read (nothing more for now) or cap bytes. Stop-copy: until a read gives
 * nothing, as QEMU does: a short read need not be the end for every
 * server. */
static int move_data(struct mig *m, bool until_end, uint64_t cap,
		     uint64_t *moved)
{
	*moved = 0;
	for (;;) {
		ssize_t n = mu_client_mig_read(m->src, m->buf, CHUNK);
		int r;

		if (n < 0)
			return (int)n;
		if (n > 0) {
			r = mu_client_mig_write(m->dst, m->buf, (size_t)n);
			if (r < 0)
				return r;
			*moved += (uint64_t)n;
		}
		if (n == 0 || (!until_end && (size_t)n < CHUNK))
			return 0;
		if (*moved >= cap) {
			if (!until_end)
				return 0;
			mu_client_log(
				m->src, MU_LOG_ERR,
				"migration: device stream over %llu bytes",
				(unsigned long long)cap);
			return -EFBIG;
		}
	}
}

static uint64_t popcount_words(const uint64_t *w, size_t n)
{
	uint64_t c = 0;

	while (n--)
		c += (uint64_t)__builtin_popcountll(*w++);
	return c;
}

static uint64_t pages_of(uint64_t len, uint64_t ps)
{
	return len / ps + (len % ps != 0);
}

/* Every page of the caller's RAM (no bitmap). */
static int ram_all(struct mig *m)
{
	uint64_t ps = m->c.page_size;

	for (uint32_t i = 0; i < m->c.nr_ranges; i++) {
		const struct mu_dma_logging_range *rg = &m->c.ranges[i];
		int r = m->c.copy_ram(m->c.opaque, rg->iova, rg->length, ps,
				      NULL);

		if (r < 0)
			return r;
		m->st->ram_pages += pages_of(rg->length, ps);
	}
	return 0;
}

/* Read-and-clear the dirty log of every range and copy what it names. */
static int ram_dirty(struct mig *m, uint64_t *dirty)
{
	uint64_t ps = m->st->page_size;

	*dirty = 0;
	for (uint32_t i = 0; i < m->c.nr_ranges; i++) {
		const struct mu_dma_logging_range *rg = &m->c.ranges[i];

		for (uint64_t off = 0; off < rg->length; off += m->report_len) {
			uint64_t len = rg->length - off;
			uint64_t iova = rg->iova + off, n;
			size_t words;
			int r;

			if (len > m->report_len)
				len = m->report_len;
			r = mu_client_dma_log_report(m->src, iova, len, ps,
						     m->bitmap, m->bitmap_len);
			if (r < 0)
				return r;
			words = (size_t)(mu_client_dma_log_bitmap_size(len,
								       ps) /
					 8);
			n = popcount_words(m->bitmap, words);
			if (!n)
				continue;
			r = m->c.copy_ram(m->c.opaque, iova, len, ps,
					  m->bitmap);
			if (r < 0)
				return r;
			*dirty += n;
		}
	}
	m->st->ram_pages += *dirty;
	return 0;
}

static int log_start(struct mig *m)
{
	struct mu_client_session s;
	uint64_t chosen = 0, words;
	int r;

	r = mu_client_dma_log_probe(m->src);
	if (r <= 0)
		return r; /* 0: no logging; RAM is copied whole at the stop */
	r = mu_client_dma_log_start(m->src, m->c.page_size, m->c.ranges,
				    m->c.nr_ranges, &chosen);
	if (r < 0)
		return r;
	m->logging = true;
	if (!chosen || (chosen & (chosen - 1)) || chosen > MAX_PAGE_SIZE)
		return -EPROTO; /* the client checked it is a power of two */
	m->st->page_size = chosen;
	m->st->dirty_logging = true;
	/* One report's bitmap must fit in a reply: whole u64 words, with
	 * room for the feature and report headers. */
	r = mu_client_get_session(m->src, &s);
	if (r < 0)
		return r;
	words = (s.max_data_xfer_size > 128 ? s.max_data_xfer_size - 128 : 8) /
		8;
	if (words > (1u << 17))
		words = 1u << 17; /* 1 MiB of bitmap: 32 GiB at 4 KiB */
	m->bitmap_len = (size_t)words * 8;
	m->report_len = words * 64 * chosen;
	m->bitmap = malloc(m->bitmap_len);
	return m->bitmap ? 0 : -ENOMEM;
}

/* dst: RUNNING or STOP -> STOP -> RESUMING. */
static int dst_resuming(struct mig *m)
{
	uint32_t s;
	int r = mu_client_mig_get_state(m->dst, &s);

	if (r < 0)
		return r;
	if (s != MU_MIG_STATE_RUNNING && s != MU_MIG_STATE_STOP)
		return -EBUSY;
	m->dst_moved = true;
	if (s == MU_MIG_STATE_RUNNING &&
	    (r = mu_client_mig_set_state(m->dst, MU_MIG_STATE_STOP)))
		return r;
	return mu_client_mig_set_state(m->dst, MU_MIG_STATE_RESUMING);
}

/* Put src back to RUNNING from wherever the migration left it. */
static void src_back(struct mig *m)
{
	uint32_t s;

	if (mu_client_mig_get_state(m->src, &s) < 0) {
		mu_client_log(m->src, MU_LOG_ERR,
			      "migration abandoned: source unreachable");
		return;
	}
	if (s == MU_MIG_STATE_STOP_COPY)
		s = mu_client_mig_set_state(m->src, MU_MIG_STATE_STOP)
			    ? s
			    : MU_MIG_STATE_STOP;
	if (s != MU_MIG_STATE_RUNNING &&
	    mu_client_mig_set_state(m->src, MU_MIG_STATE_RUNNING) < 0)
		mu_client_log(m->src, MU_LOG_ERR,
			      "migration abandoned: source left in state %u",
			      s);
}

static void abandon(struct mig *m)
{
	if (m->logging)
		(void)mu_client_dma_log_stop(m->src);
	if (m->src_moved)
		src_back(m);
	if (m->vm_stopped && m->c.resume_vm)
		m->c.resume_vm(m->c.opaque);
	/* A half-loaded destination is reset: RUNNING, fresh state. */
	if (m->dst_moved)
		(void)mu_client_reset(m->dst);
}

static int check_config(struct mig *m, const struct mu_migrate_config *cfg)
{
	size_t n = cfg->struct_size;

	if (n < offsetof(struct mu_migrate_config, step) + sizeof(cfg->step))
		return -EINVAL;
	memcpy(&m->c, cfg, sizeof(m->c));
	if (!m->c.page_size)
		m->c.page_size = 4096;
	if (!m->c.max_rounds)
		m->c.max_rounds = 8;
	if (!m->c.converge_bytes)
		m->c.converge_bytes = 64 << 10;
	if ((m->c.page_size & (m->c.page_size - 1)) ||
	    m->c.page_size > MAX_PAGE_SIZE ||
	    m->c.max_rounds > MU_MIGRATE_MAX_ROUNDS ||
	    (m->c.nr_ranges && (!m->c.ranges || !m->c.copy_ram)))
		return -EINVAL;
	for (uint32_t i = 0; i < m->c.nr_ranges; i++) {
		const struct mu_dma_logging_range *rg = &m->c.ranges[i];

		if (!rg->length || rg->iova + rg->length - 1 < rg->iova)
			return -EINVAL;
	}
	return 0;
}

static int run(struct mig *m)
{
	uint64_t sflags, dflags, moved, dirty;
	bool precopy;
	uint32_t s;
	int r;

	if ((r = mu_client_mig_flags(m->src, &sflags)) < 0 ||
	    (r = mu_client_mig_flags(m->dst, &dflags)) < 0)
		return r;
	if (!(sflags & MU_MIGRATION_STOP_COPY) ||
	    !(dflags & MU_MIGRATION_STOP_COPY))
		return -ENOTSUP;
	if ((r = mu_client_mig_get_state(m->src, &s)) < 0)
		return r;
	if (s != MU_MIG_STATE_RUNNING)
		return -EBUSY;
	precopy = sflags & MU_MIGRATION_PRE_COPY;
	if ((r = step(m, MU_MIGRATE_STEP_BEGIN)))
		return r;

	/* Log first, then copy everything: a page the device writes during
	 * the whole copy is in the next report. */
	if (m->c.nr_ranges) {
		if ((r = log_start(m)) < 0)
			return r;
		if (m->logging && (r = ram_all(m)) < 0)
			return r;
	}
	if ((r = step(m, MU_MIGRATE_STEP_LOGGING)))
		return r;
	if ((r = dst_resuming(m)) < 0 ||
	    (r = step(m, MU_MIGRATE_STEP_RESUMING)))
		return r;

	if (precopy) {
		m->src_moved = true;
		if ((r = mu_client_mig_set_state(m->src,
						 MU_MIG_STATE_PRE_COPY)) < 0 ||
		    (r = step(m, MU_MIGRATE_STEP_PRE_COPY)))
			return r;
	}
	/* Rounds until little is left; without pre-copy, RAM rounds only. */
	while ((precopy || m->logging) && m->st->rounds < m->c.max_rounds) {
		unsigned i = m->st->rounds;

		moved = dirty = 0;
		if (precopy && (r = move_data(m, false, ROUND_CAP, &moved)) < 0)
			return r;
		if (m->logging && (r = ram_dirty(m, &dirty)) < 0)
			return r;
		m->st->round_bytes[i] = moved;
		m->st->round_dirty[i] = dirty;
		m->st->precopy_bytes += moved;
		m->st->rounds++;
		if ((r = step(m, MU_MIGRATE_STEP_ROUND)))
			return r;
		if (moved + dirty * m->st->page_size <= m->c.converge_bytes)
			break;
	}

	/* Downtime starts here. */
	m->t_stop = now_ns();
	if (m->c.stop_vm && (r = m->c.stop_vm(m->c.opaque)) < 0)
		return r;
	m->vm_stopped = true;
	if ((r = step(m, MU_MIGRATE_STEP_STOPPED)))
		return r;
	m->src_moved = true;
	if (!precopy &&
	    (r = mu_client_mig_set_state(m->src, MU_MIG_STATE_STOP)) < 0)
		return r;
	if ((r = mu_client_mig_set_state(m->src, MU_MIG_STATE_STOP_COPY)) < 0 ||
	    (r = step(m, MU_MIGRATE_STEP_STOP_COPY)))
		return r;
	/* The device is stopped: this report is the last one. */
	if (m->logging) {
		if ((r = ram_dirty(m, &m->st->final_dirty)) < 0)
			return r;
	} else if (m->c.nr_ranges && (r = ram_all(m)) < 0) {
		return r;
	}
	if ((r = move_data(m, true, STREAM_CAP, &moved)) < 0)
		return r;
	m->st->stopcopy_bytes = moved;
	if ((r = step(m, MU_MIGRATE_STEP_DRAINED)))
		return r;
	if ((r = mu_client_mig_set_state(m->dst, MU_MIG_STATE_STOP)) < 0 ||
	    (r = step(m, MU_MIGRATE_STEP_LOADED)))
		return r;
	return mu_client_mig_set_state(m->dst, MU_MIG_STATE_RUNNING);
}

MU_EXPORT int mu_client_migrate(mu_client_t *src, mu_client_t *dst,
				const struct mu_migrate_config *cfg,
				struct mu_migrate_stats *stats)
{
	struct mu_migrate_stats local;
	struct mig m = {.src = src, .dst = dst};
	uint64_t t0 = now_ns();
	int r;

	if (!src || !dst || src == dst || !cfg)
		return -EINVAL;
	m.st = stats ? stats : &local;
	memset(m.st, 0, sizeof(*m.st));
	if ((r = check_config(&m, cfg)) < 0)
		return r;
	m.buf = malloc(CHUNK);
	if (!m.buf)
		return -ENOMEM;
	r = run(&m);
	if (r < 0) {
		mu_client_log(src, MU_LOG_ERR, "migration abandoned: %s",
			      strerror(-r));
		abandon(&m);
		goto out;
	}
	/* Committed: dst runs the device. What follows cannot undo it. */
	m.st->downtime_ns = now_ns() - m.t_stop;
	(void)step(&m, MU_MIGRATE_STEP_RUNNING);
	if (m.logging && mu_client_dma_log_stop(src) < 0)
		mu_client_log(src, MU_LOG_WARN,
			      "migration: source would not stop logging");
	if (mu_client_mig_set_state(src, MU_MIG_STATE_STOP) < 0)
		mu_client_log(src, MU_LOG_WARN,
			      "migration done, but the source would not stop");
	m.st->total_ns = now_ns() - t0;
	(void)step(&m, MU_MIGRATE_STEP_DONE);
out:
	free(m.bitmap);
	free(m.buf);
	return r;
}
