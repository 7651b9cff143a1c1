/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * bench.h - muser-bench internals: timing, result series, the raw socket
 * floors and the dma-test sample driver.
 */
#ifndef MUSER_TOOLS_BENCH_H
#define MUSER_TOOLS_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "muser/client.h"

#ifndef PROG
#define PROG "muser-bench"
#endif

static inline uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---- results (stats.c) ------------------------------------------------ */

enum res_kind {
	RES_LATENCY,	/* per-op round trips: median, p99, ops/s */
	RES_RATE,	/* ops/s only */
	RES_THROUGHPUT, /* bytes/s */
};

struct result {
	const char *name;
	enum res_kind kind;
	int floor;  /* index of the result this one is compared to */
	int floor2; /* a second reference, or -1 */
	bool skipped;
	char note[128]; /* why skipped, or an error */
	uint64_t ops, bytes, ns;
	uint32_t *lat; /* per-op latencies in ns (RES_LATENCY) */
	size_t nlat, cap;
};

void res_add_lat(struct result *r, uint64_t ns);
void res_add(struct result *r, uint64_t ops, uint64_t bytes, uint64_t ns);
/* Call op(arg) back to back for `seconds` (at least once), recording each
 * call's latency when r is RES_LATENCY, then add the operations, bytes per
 * operation and time to r; op's error stops it. */
int res_run_for(struct result *r, double seconds, size_t bytes,
		int (*op)(void *arg), void *arg);
/* Percentile (0..100) of the recorded latencies, in ns. */
double res_pct(struct result *r, double pct);
double res_rate(const struct result *r); /* ops/s */
double res_bps(const struct result *r);	 /* bytes/s */
/* This result's figure over its floor's (latency: median ratio). */
double res_ratio(struct result *r, struct result *floor);
void res_print(struct result *all, size_t n, bool json, const char *hdr);
void res_free(struct result *r);

/* ---- raw floors (raw.c) ---------------------------------------------------
 */

struct raw_peer {
	pid_t pid;
	int fd;
};

/* A forked echo peer: one read() and one write() per request; the reply
 * is as long as the first byte of the request says. */
int raw_echo_start(struct raw_peer *p);
/* A forked sink: reads 1 MiB chunks, acks each batch with one byte. */
int raw_sink_start(struct raw_peer *p);
void raw_stop(struct raw_peer *p);
/* Round trips of req bytes out, rep bytes back, for `seconds`. */
int raw_pingpong(struct raw_peer *p, size_t req, size_t rep, double seconds,
		 struct result *r);
int raw_stream(struct raw_peer *p, double seconds, struct result *r);
int bench_memcpy(size_t size, double seconds, struct result *r);
/* A forked copier sharing 2 * half bytes with us: each request is a
 * length sent over the socket, the copier memmoves that much from the
 * first half to the second and answers one byte. */
int raw_copier_start(struct raw_peer *p, size_t half);
int raw_remote_copy(struct raw_peer *p, size_t size, double seconds,
		    struct result *r);

/* ---- server spawning (spawn.c) ------------------------------------------ */

struct spawn {
	pid_t pid;
	char dir[64], sock[96];
};

#define SPAWN_MAX_ARGS 16

/* Start `path --socket-path=DIR/sock [--quiet] args...` (nargs of them)
 * and connect to it. */
int spawn_server(struct spawn *s, const char *path, const char *const *args,
		 unsigned nargs, mu_client_t **c,
		 const struct mu_client_opts *opts);
void spawn_stop(struct spawn *s);

/* ---- the dma-test sample (dma.c) ----------------------------------------- */

struct dmat;

/* Probe for muser-dma-test; -ENODEV when the device isn't it. */
int dmat_open(mu_client_t *c, struct dmat **out, char *why, size_t len);
void dmat_close(struct dmat *d);
/* Copies of `size` bytes through message DMA (mmap false) or an
 * fd-backed map (mmap true), for `seconds`. op: DMAT_OP_*. */
int dmat_run(struct dmat *d, bool mmap, unsigned op, size_t size,
	     double seconds, struct result *r);

#endif
