/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * checks-dma.c - DMA_MAP / DMA_UNMAP rules: maps with and without fds,
 * the unmap reply, overlap (EEXIST), alignment to the negotiated page
 * size, zero and wrapping sizes, undefined flags, unmap of what was never
 * mapped or of part of a window, unmap-all, max_dma_maps; and, last of
 * the run, the DMA requests the server sent and how they fared.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "checks.h"

#define RW (MU_DMA_MAP_FLAG_READ | MU_DMA_MAP_FLAG_WRITE)
#define PG 4096ull
/* Each check uses its own IOVA range, so a server that leaks windows
 * across connections fails only the check that tests that. */
#define BASE(n) (0x100000000ull + (uint64_t)(n)*0x1000000ull)

static uint8_t winbuf[16 * PG];

static int d_map_unmap(struct cf_ctx *x)
{
	struct mu_dma_unmap u = {sizeof(u), 0, BASE(1), 2 * PG}, echo;
	struct cf_msg m;
	int e;

	e = cf_dma_map(x, BASE(1), 2 * PG, RW, -1, winbuf);
	if (e < 0)
		return CF_FAIL;
	e = cf_req(x, MU_CMD_DMA_UNMAP, &u, sizeof(u), NULL, 0, &m,
		   "DMA_UNMAP");
	if (e < 0) {
		cf_msg_free(&m);
		return CF_FAIL;
	}
	cf_window_del(x->c, BASE(1), 2 * PG);
	if (m.len == 0) {
		cf_msg_free(&m);
		return cf_set(
			x, CF_WARN,
			"DMA_UNMAP reply has no payload; the spec says it "
			"echoes the request (rust-vmm reads 24 bytes)");
	}
	if (m.len != sizeof(echo)) {
		size_t got = m.len;

		cf_msg_free(&m);
		return cf_set(x, CF_FAIL,
			      "DMA_UNMAP reply payload %zu bytes, "
			      "expected 24",
			      got);
	}
	memcpy(&echo, m.payload, sizeof(echo));
	cf_msg_free(&m);
	if (echo.addr != u.addr || echo.size != u.size || echo.flags)
		return cf_set(x, CF_FAIL,
			      "DMA_UNMAP reply echoes addr 0x%llx size 0x%llx "
			      "flags 0x%x",
			      (unsigned long long)echo.addr,
			      (unsigned long long)echo.size, echo.flags);
	/* The same range maps again once it is gone. */
	if (cf_dma_map(x, BASE(1), 2 * PG, RW, -1, winbuf) < 0 ||
	    cf_dma_unmap(x, BASE(1), 2 * PG, 0) < 0)
		return CF_FAIL;
	return cf_set(x, CF_PASS,
		      "fd-less map, unmap echoing the entry, "
		      "remap and unmap");
}

static int d_map_fd(struct cf_ctx *x)
{
	int fd = cf_memfd(4 * PG), e;

	if (fd < 0)
		return cf_set(x, CF_SKIP, "memfd: %s", strerror(-fd));
	e = cf_dma_map(x, BASE(2), 4 * PG, RW, fd, NULL);
	if (e == 0)
		e = cf_dma_unmap(x, BASE(2), 4 * PG, 0);
	if (e == 0)
		e = cf_dma_map(x, BASE(2), 4 * PG, MU_DMA_MAP_FLAG_READ, fd,
			       NULL);
	if (e == 0)
		e = cf_dma_unmap(x, BASE(2), 4 * PG, 0);
	close(fd);
	if (e < 0)
		return CF_FAIL;
	return cf_set(x, CF_PASS,
		      "memfd-backed maps (read/write and "
		      "read-only) mapped and unmapped");
}

/* A map that must be refused; want: the errno the spec names, or 0. */
static int refuse_map(struct cf_ctx *x, uint64_t iova, uint64_t size,
		      uint32_t flags, int want, const char *what)
{
	int e = cf_dma_map(x, iova, size, flags, -1, winbuf);

	if (e == CF_EBROKEN)
		return CF_FAIL;
	if (e == 0) {
		cf_dma_unmap(x, iova, size, 0);
		return cf_set(x, CF_FAIL, "%s: accepted", what);
	}
	if (want && e != -want)
		return cf_set(x, CF_WARN,
			      "%s: refused with %s, the spec says "
			      "%s",
			      what, cf_errname(e), cf_errname(want));
	return cf_set(x, CF_PASS, "%s: refused with %s", what, cf_errname(e));
}

static int d_overlap(struct cf_ctx *x)
{
	int st;

	if (cf_dma_map(x, BASE(3), 4 * PG, RW, -1, winbuf) < 0)
		return CF_FAIL;
	st = refuse_map(x, BASE(3) + 2 * PG, 4 * PG, RW, EEXIST,
			"a map overlapping the end of another");
	if (st == CF_PASS)
		st = refuse_map(x, BASE(3), 4 * PG, RW, EEXIST,
				"the same map twice");
	if (st == CF_PASS)
		st = refuse_map(x, BASE(3) - PG, 2 * PG, RW, EEXIST,
				"a map overlapping the start of another");
	if (cf_dma_unmap(x, BASE(3), 4 * PG, 0) < 0)
		return CF_FAIL;
	if (st == CF_PASS)
		cf_set(x, CF_PASS,
		       "overlapping maps (end, same, start) "
		       "refused with EEXIST");
	return st;
}

static int d_unaligned(struct cf_ctx *x)
{
	int st;

	if (!(x->sess.pgsizes & PG) || (x->sess.pgsizes & (PG - 1)))
		return cf_set(x, CF_SKIP,
			      "pgsizes 0x%llx: 4 KiB alignment "
			      "not implied",
			      (unsigned long long)x->sess.pgsizes);
	st = refuse_map(x, BASE(4) + 0x800, PG, RW, 0,
			"map at an address off the 4 KiB page size");
	if (st == CF_PASS)
		st = refuse_map(x, BASE(4), 0x800, RW, 0,
				"map of 0x800 bytes (not a page multiple)");
	if (st == CF_PASS)
		cf_set(x, CF_PASS,
		       "unaligned address and size refused "
		       "(pgsizes 0x%llx)",
		       (unsigned long long)x->sess.pgsizes);
	return st;
}

static int d_bad_size(struct cf_ctx *x)
{
	int st = refuse_map(x, BASE(5), 0, RW, 0, "map of size 0");

	if (st == CF_PASS)
		st = refuse_map(x, 0xfffffffffffff000ull, 2 * PG, RW, 0,
				"map wrapping past 2^64");
	if (st == CF_PASS)
		cf_set(x, CF_PASS, "size 0 and a wrapping range refused");
	return st;
}

static int d_bad_flags(struct cf_ctx *x)
{
	int st = refuse_map(x, BASE(6), PG, RW | (1u << 7), 0,
			    "map with flag bit 7");

	if (st == CF_FAIL && strstr(x->ev, "accepted"))
		return cf_set(x, CF_WARN,
			      "map with undefined flag bit 7 "
			      "accepted");
	return st;
}

static int refuse_unmap(struct cf_ctx *x, uint64_t iova, uint64_t size,
			const char *what)
{
	int e = cf_dma_unmap(x, iova, size, 0);

	if (e == CF_EBROKEN)
		return CF_FAIL;
	if (e == 0)
		return cf_set(x, CF_FAIL, "%s: accepted", what);
	return CF_PASS;
}

static int d_unmap_unmapped(struct cf_ctx *x)
{
	if (refuse_unmap(x, BASE(7), 2 * PG, "unmap of a range never mapped") !=
	    CF_PASS)
		return CF_FAIL;
	return cf_set(x, CF_PASS, "unmap of a range never mapped refused: %s",
		      cf_errname(x->last_err));
}

static int d_unmap_partial(struct cf_ctx *x)
{
	int st;

	if (cf_dma_map(x, BASE(8), 4 * PG, RW, -1, winbuf) < 0)
		return CF_FAIL;
	st = refuse_unmap(x, BASE(8), 2 * PG,
			  "unmap of the first half of a "
			  "window");
	if (st == CF_PASS)
		st = refuse_unmap(x, BASE(8), 8 * PG,
				  "unmap of a range larger than the window");
	if (cf_dma_unmap(x, BASE(8), 4 * PG, 0) < 0)
		return CF_FAIL;
	if (st == CF_PASS)
		cf_set(x, CF_PASS,
		       "only exact unmaps accepted (part, superset "
		       "refused)");
	return st;
}

static int d_unmap_all(struct cf_ctx *x)
{
	int e;

	if (cf_dma_map(x, BASE(9), PG, RW, -1, winbuf) < 0 ||
	    cf_dma_map(x, BASE(9) + 4 * PG, PG, RW, -1, winbuf + PG) < 0)
		return CF_FAIL;
	e = cf_dma_unmap(x, 0, 0, MU_DMA_UNMAP_FLAG_ALL);
	if (e == CF_EBROKEN)
		return CF_FAIL;
	if (e < 0) {
		cf_dma_unmap(x, BASE(9), PG, 0);
		cf_dma_unmap(x, BASE(9) + 4 * PG, PG, 0);
		return cf_set(
			x, CF_WARN,
			"unmap-all (flags bit 1, as QEMU sends it) refused "
			"with %s",
			cf_errname(e));
	}
	e = cf_dma_unmap(x, BASE(9), PG, 0);
	if (e == CF_EBROKEN)
		return CF_FAIL;
	if (e == 0)
		return cf_set(x, CF_FAIL,
			      "after unmap-all a window was still "
			      "mapped");
	return cf_set(x, CF_PASS, "unmap-all removed both windows");
}

static int d_max_maps(struct cf_ctx *x)
{
	uint32_t n = x->sess.max_dma_maps, i;
	int e, st = CF_PASS;

	if (n > 256)
		return cf_set(x, CF_SKIP,
			      "max_dma_maps %u: more than the 256 "
			      "this check maps",
			      n);
	for (i = 0; i < n && st == CF_PASS; i++)
		if (cf_dma_map(x, BASE(10) + i * 2 * PG, PG, RW, -1, winbuf) <
		    0)
			st = CF_FAIL;
	if (st == CF_PASS) {
		e = cf_dma_map(x, BASE(10) + n * 2 * PG, PG, RW, -1, winbuf);
		if (e == 0)
			st = cf_set(x, CF_WARN,
				    "map %u accepted beyond "
				    "max_dma_maps %u: the advertised limit is "
				    "not the real one",
				    n + 1, n);
		else if (e == CF_EBROKEN)
			st = CF_FAIL;
		else
			st = cf_set(x, CF_PASS,
				    "map %u refused (%s) at "
				    "max_dma_maps %u",
				    n + 1, cf_errname(e), n);
	}
	cf_dma_unmap(x, 0, 0, MU_DMA_UNMAP_FLAG_ALL);
	return st;
}

#define KICK_IOVA 0x10000000ull
#define KICK_SIZE (1ull << 20)

/* Make the device do DMA (--dma-kick) into an fd-less window and serve
 * what it sends until it has been quiet for a while. */
static int d_serve(struct cf_ctx *x)
{
	static uint8_t win[KICK_SIZE];
	uint32_t before = 0, quiet = 0, n;
	long deadline;
	unsigned i;
	int e;

	if (!x->nkicks)
		return cf_set(x, CF_SKIP,
			      "no --dma-kick: a generic checker can't make a "
			      "device do DMA");
	for (i = 0; i < sizeof(win); i++)
		win[i] = (uint8_t)(i * 7 + (i >> 12));
	if (cf_dma_map(x, KICK_IOVA, KICK_SIZE, RW, -1, win) < 0)
		return CF_FAIL;
	for (i = 0; i < x->nkicks; i++) {
		const struct cf_kick *k = &x->kicks[i];

		e = cf_write(x, k->region, k->offset, &k->value, k->size);
		if (e < 0)
			return e == CF_EBROKEN ? CF_FAIL
					       : cf_set(x, CF_FAIL,
							"--dma-kick write %u "
							"refused: %s",
							i + 1, cf_errname(e));
	}
	/* Round trips let DMA requests in between be served. */
	deadline = cf_now_ms() + x->timeout_ms;
	while (cf_now_ms() < deadline && quiet < 5) {
		if (cf_sync(x, "--dma-kick") < 0)
			return CF_FAIL;
		n = x->dma.reads + x->dma.writes + x->dma.bad;
		quiet = n && n == before ? quiet + 1 : 0;
		before = n;
		usleep(20 * 1000);
	}
	if (cf_dma_unmap(x, KICK_IOVA, KICK_SIZE, 0) < 0)
		return CF_FAIL;
	if (x->dma.bad)
		return cf_set(x, CF_FAIL, "%u bad DMA requests; first: %s",
			      x->dma.bad, x->dma.first_bad);
	if (!x->dma.reads && !x->dma.writes)
		return cf_set(x, CF_WARN,
			      "after the --dma-kick writes the device sent no "
			      "DMA in %d ms",
			      x->timeout_ms);
	return cf_set(x, CF_PASS,
		      "served %u DMA_READ and %u DMA_WRITE into the window at "
		      "0x%llx",
		      x->dma.reads, x->dma.writes, KICK_IOVA);
}

static int d_requests(struct cf_ctx *x)
{
	const struct cf_dma_stats *s = x->run_dma;

	if (!s)
		return cf_set(x, CF_SKIP, "no totals");
	if (s->bad)
		return cf_set(x, CF_FAIL, "%u bad DMA requests; first %s",
			      s->bad, s->first_bad);
	if (!s->reads && !s->writes)
		return cf_set(x, CF_SKIP,
			      "the device sent no DMA_READ or "
			      "DMA_WRITE during the run");
	return cf_set(x, CF_PASS,
		      "served %u DMA_READ and %u DMA_WRITE, all "
		      "within mapped windows",
		      s->reads, s->writes);
}

const struct cf_check cf_checks_dma[] = {
	{"dma.map-unmap", S_UNMAP, "9l",
	 "an fd-less window maps and unmaps; the unmap reply echoes the entry",
	 CF_NEED_SESSION, d_map_unmap},
	{"dma.map-fd", S_MAP, "5.2",
	 "a window backed by a memfd maps and unmaps", CF_NEED_SESSION,
	 d_map_fd},
	{"dma.overlap", S_MAP, "5.2",
	 "a map over an existing window is refused with EEXIST",
	 CF_NEED_SESSION, d_overlap},
	{"dma.unaligned", S_MAP, "5.2",
	 "a map not aligned to the negotiated page size is refused",
	 CF_NEED_SESSION, d_unaligned},
	{"dma.bad-size", S_MAP, "5.2",
	 "a map of size 0 or wrapping past 2^64 is refused", CF_NEED_SESSION,
	 d_bad_size},
	{"dma.bad-flags", S_MAP, "5.2",
	 "a map with undefined flag bits is refused", CF_NEED_SESSION,
	 d_bad_flags},
	{"dma.unmap-unmapped", S_UNMAP, "5.3",
	 "an unmap of a range never mapped is refused", CF_NEED_SESSION,
	 d_unmap_unmapped},
	{"dma.unmap-partial", S_UNMAP, "5.3",
	 "an unmap must match a mapping exactly", CF_NEED_SESSION,
	 d_unmap_partial},
	{"dma.unmap-all", S_UNMAP, "9b",
	 "unmap flag bit 1 with address and size 0 removes every window",
	 CF_NEED_SESSION, d_unmap_all},
	{"dma.serve", S_DMARW, "5.11",
	 "DMA the device does (--dma-kick) is valid and answered by the "
	 "checker",
	 CF_NEED_SESSION, d_serve},
	{"dma.max-maps", S_VER, "4.4",
	 "no more than max_dma_maps windows exist at once", CF_NEED_SESSION,
	 d_max_maps},
	{NULL, NULL, NULL, NULL, 0, NULL},
};

const struct cf_check cf_checks_final[] = {
	{"dma.requests", S_DMARW, "5.11",
	 "DMA_READ/DMA_WRITE from the server stay within mapped windows",
	 CF_NEED_PARENT, d_requests},
	{NULL, NULL, NULL, NULL, 0, NULL},
};
