/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * checks-cmd.c - each query command's valid use and documented errors
 * (GET_INFO, GET_IRQ_INFO, GET_REGION_IO_FDS, argsz handling, short
 * payloads, commands of the wrong direction, command 14, unknown
 * features), and DEVICE_RESET.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checks.h"

static int c_get_info(struct cf_ctx *x)
{
	const struct mu_device_info *i = &x->info;

	if (cf_get_info(x) < 0)
		return CF_FAIL;
	if ((i->flags & MU_DEVICE_FLAGS_PCI) &&
	    i->num_regions < MU_PCI_NUM_REGIONS)
		return cf_set(x, CF_FAIL,
			      "PCI device with %u regions, fewer than the 9 "
			      "PCI indexes",
			      i->num_regions);
	if (i->flags & ~(MU_DEVICE_FLAGS_PCI | MU_DEVICE_FLAGS_RESET))
		return cf_set(x, CF_WARN,
			      "device flags 0x%x: bits beyond "
			      "RESET and PCI",
			      i->flags);
	if (!(i->flags & MU_DEVICE_FLAGS_PCI))
		return cf_set(x, CF_WARN,
			      "no PCI flag: the spec only defines PCI devices");
	if (i->num_regions > 100 || i->num_irqs > 50)
		return cf_set(x, CF_WARN,
			      "%u regions, %u IRQ indexes: QEMU refuses more "
			      "than 100 / 50",
			      i->num_regions, i->num_irqs);
	if (i->num_irqs < MU_PCI_NUM_IRQS)
		return cf_set(x, CF_WARN,
			      "%u IRQ indexes: QEMU also queries ERR (3) and "
			      "REQ (4)",
			      i->num_irqs);
	return cf_set(x, CF_PASS,
		      "flags 0x%x (%s%s), %u regions, %u IRQ "
		      "indexes",
		      i->flags, i->flags & MU_DEVICE_FLAGS_PCI ? "PCI" : "",
		      i->flags & MU_DEVICE_FLAGS_RESET ? " RESET" : "",
		      i->num_regions, i->num_irqs);
}

/* A query with a small argsz: refused, or a reply no larger than argsz. */
static int small_argsz(struct cf_ctx *x, uint16_t cmd, uint32_t argsz,
		       uint32_t index, const char *what)
{
	uint32_t p[8] = {argsz, 0, index, 0, 0, 0, 0, 0};
	size_t len = cmd == MU_CMD_DEVICE_GET_REGION_INFO ? 32 : 16;
	struct cf_msg m;
	int e = cf_req(x, cmd, p, len, NULL, 0, &m, what);

	if (e == CF_EBROKEN) {
		cf_msg_free(&m);
		return CF_FAIL;
	}
	if (e == 0 && m.len > argsz) {
		size_t got = m.len;

		cf_msg_free(&m);
		return cf_set(x, CF_FAIL,
			      "%s: reply payload %zu bytes, more than argsz %u",
			      what, got, argsz);
	}
	cf_msg_free(&m);
	return CF_PASS;
}

static int c_argsz(struct cf_ctx *x)
{
	unsigned i, n;
	char what[64];
	int st;

	if (cf_get_info(x) < 0)
		return CF_FAIL;
	st = small_argsz(x, MU_CMD_DEVICE_GET_INFO, 8, 0, "GET_INFO argsz 8");
	if (st == CF_PASS)
		st = small_argsz(x, MU_CMD_DEVICE_GET_IRQ_INFO, 8, 0,
				 "GET_IRQ_INFO argsz 8");
	n = x->info.num_regions < CF_NREG_MAX ? x->info.num_regions
					      : CF_NREG_MAX;
	for (i = 0; st == CF_PASS && i < n; i++) {
		snprintf(what, sizeof(what), "GET_REGION_INFO %u argsz 32", i);
		st = small_argsz(x, MU_CMD_DEVICE_GET_REGION_INFO, 32, i, what);
	}
	if (st != CF_PASS)
		return st;
	if (cf_sync(x, "small-argsz queries") < 0)
		return CF_FAIL;
	return cf_set(x, CF_PASS,
		      "no reply exceeded argsz (GET_INFO, GET_IRQ_INFO, %u "
		      "regions)",
		      n);
}

static int c_short_payload(struct cf_ctx *x)
{
	static const struct {
		uint16_t cmd;
		size_t len;
		const char *what;
	} t[] = {
		{MU_CMD_DEVICE_GET_INFO, 4, "GET_INFO with 4 bytes"},
		{MU_CMD_REGION_READ, 8, "REGION_READ with 8 bytes"},
		{MU_CMD_DMA_MAP, 16, "DMA_MAP with 16 bytes"},
		{MU_CMD_DEVICE_SET_IRQS, 12, "SET_IRQS with 12 bytes"},
		{MU_CMD_DEVICE_GET_REGION_INFO, 8,
		 "GET_REGION_INFO with 8 "
		 "bytes"},
	};
	uint8_t p[32] = {0x20};
	size_t i;
	int e;

	for (i = 0; i < sizeof(t) / sizeof(*t); i++) {
		e = cf_refused(x, t[i].cmd, p, t[i].len, NULL, 0, NULL,
			       t[i].what);
		if (e == CF_EBROKEN)
			return CF_FAIL;
		if (e == 0)
			return cf_set(x, CF_FAIL, "%s: accepted", t[i].what);
	}
	if (cf_sync(x, "truncated payloads") < 0)
		return CF_FAIL;
	return cf_set(x, CF_PASS, "5 truncated payloads refused, in sync");
}

static int c_wrong_direction(struct cf_ctx *x)
{
	struct mu_dma_access a = {0x10000, 4};
	uint8_t w[sizeof(a) + 4] = {0};
	int e;

	e = cf_refused(x, MU_CMD_DMA_READ, &a, sizeof(a), NULL, 0, NULL,
		       "DMA_READ sent to the server");
	if (e == 1) {
		memcpy(w, &a, sizeof(a));
		e = cf_refused(x, MU_CMD_DMA_WRITE, w, sizeof(w), NULL, 0, NULL,
			       "DMA_WRITE sent to the server");
	}
	if (e == CF_EBROKEN)
		return CF_FAIL;
	if (e == 0)
		return cf_set(x, CF_FAIL,
			      "a server-to-client command from the client was "
			      "accepted");
	return cf_set(x, CF_PASS,
		      "DMA_READ and DMA_WRITE from the client "
		      "refused");
}

static int c_removed_14(struct cf_ctx *x)
{
	uint8_t p[24] = {24};
	int e = cf_refused(x, MU_CMD_DIRTY_PAGES, p, sizeof(p), NULL, 0, NULL,
			   "command 14");

	if (e == CF_EBROKEN)
		return CF_FAIL;
	if (e == 0)
		return cf_set(x, CF_FAIL, "command 14 (removed) accepted");
	return cf_set(x, CF_PASS, "command 14 refused: %s",
		      cf_errname(x->last_err));
}

static int c_feature_unknown(struct cf_ctx *x)
{
	struct mu_device_feature f = {64, MU_DEVICE_FEATURE_GET | 0x7ff0};
	int e = cf_refused(x, MU_CMD_DEVICE_FEATURE, &f, sizeof(f), NULL, 0,
			   NULL, "DEVICE_FEATURE GET of feature 0x7ff0");

	if (e == CF_EBROKEN)
		return CF_FAIL;
	if (e == 0)
		return cf_set(x, CF_FAIL,
			      "GET of undefined feature 0x7ff0 succeeded");
	return cf_set(x, CF_PASS, "undefined feature refused: %s",
		      cf_errname(x->last_err));
}

/* One region's IO FD reply; 1 = entries checked, 0 = none offered. */
static int io_fds_one(struct cf_ctx *x, unsigned idx, uint64_t rsize,
		      unsigned *total)
{
	struct mu_region_io_fds_request rq = {16 + 40 * 64, 0, idx, 0};
	struct mu_region_io_fds_reply rp;
	struct cf_msg m;
	char what[64];
	uint32_t i;
	int e;

	snprintf(what, sizeof(what), "GET_REGION_IO_FDS %u", idx);
	e = cf_req(x, MU_CMD_DEVICE_GET_REGION_IO_FDS, &rq, sizeof(rq), NULL, 0,
		   &m, what);
	if (e < 0) {
		cf_msg_free(&m);
		return e == CF_EBROKEN ? e : 0;
	}
	if (m.len < sizeof(rp)) {
		size_t got = m.len;

		cf_msg_free(&m);
		return cf_set(x, CF_EBROKEN, "%s: reply payload %zu bytes",
			      what, got);
	}
	memcpy(&rp, m.payload, sizeof(rp));
	e = 1;
	if (rp.index != idx || rp.flags)
		e = cf_set(x, CF_EBROKEN, "%s: reply index %u flags 0x%x", what,
			   rp.index, rp.flags);
	else if (rp.count > 64 || rp.argsz != 16 + 40ull * rp.count ||
		 m.len != rp.argsz)
		e = cf_set(x, CF_EBROKEN,
			   "%s: count %u, argsz %u, payload %zu (entries are "
			   "40 bytes after 16)",
			   what, rp.count, rp.argsz, m.len);
	else if (rp.count && !m.nfds)
		e = cf_set(x, CF_EBROKEN, "%s: %u entries but no fd", what,
			   rp.count);
	for (i = 0; e == 1 && i < rp.count; i++) {
		struct mu_sub_region_ioeventfd s;

		memcpy(&s, m.payload + 16 + 40 * i, sizeof(s));
		if (s.fd_index >= m.nfds)
			e = cf_set(x, CF_EBROKEN,
				   "%s: entry %u fd_index %u of %u fds", what,
				   i, s.fd_index, m.nfds);
		else if (s.offset > rsize || s.size > rsize - s.offset)
			e = cf_set(x, CF_EBROKEN,
				   "%s: entry %u [0x%llx, +0x%llx) outside the "
				   "region",
				   what, i, (unsigned long long)s.offset,
				   (unsigned long long)s.size);
	}
	*total += rp.count;
	cf_msg_free(&m);
	return e;
}

static int c_io_fds(struct cf_ctx *x)
{
	unsigned i, n, total = 0, answered = 0;
	int e;

	if (cf_get_info(x) < 0)
		return CF_FAIL;
	n = x->info.num_regions < CF_NREG_MAX ? x->info.num_regions
					      : CF_NREG_MAX;
	for (i = 0; i < n; i++) {
		struct mu_region_info ri;

		e = cf_region_info(x, i, &ri);
		if (e < 0)
			return CF_FAIL;
		if (!ri.size)
			continue;
		e = io_fds_one(x, i, ri.size, &total);
		if (e == CF_EBROKEN)
			return CF_FAIL;
		answered += (unsigned)e;
	}
	if (!answered)
		return cf_set(x, CF_SKIP, "GET_REGION_IO_FDS not offered");
	return cf_set(x, CF_PASS,
		      "%u regions answered, %u sub-regions, fds "
		      "and bounds consistent",
		      answered, total);
}

static int r_reset(struct cf_ctx *x)
{
	struct cf_msg m;
	int e;

	if (cf_get_info(x) < 0)
		return CF_FAIL;
	if (!(x->info.flags & MU_DEVICE_FLAGS_RESET))
		return cf_set(x, CF_SKIP, "device does not offer reset");
	e = cf_req(x, MU_CMD_DEVICE_RESET, NULL, 0, NULL, 0, &m,
		   "DEVICE_RESET");
	if (e == 0 && m.len)
		e = cf_set(x, CF_EBROKEN,
			   "DEVICE_RESET: reply carries %zu "
			   "bytes (none defined)",
			   m.len);
	cf_msg_free(&m);
	if (e < 0)
		return CF_FAIL;
	if (cf_sync(x, "DEVICE_RESET") < 0)
		return CF_FAIL;
	return cf_set(x, CF_PASS, "reset done, header-only reply, in sync");
}

static int r_payload(struct cf_ctx *x)
{
	uint8_t p[8] = {0};
	int e;

	if (cf_get_info(x) < 0)
		return CF_FAIL;
	if (!(x->info.flags & MU_DEVICE_FLAGS_RESET))
		return cf_set(x, CF_SKIP, "device does not offer reset");
	e = cf_refused(x, MU_CMD_DEVICE_RESET, p, sizeof(p), NULL, 0, NULL,
		       "DEVICE_RESET with 8 bytes");
	if (e == CF_EBROKEN)
		return CF_FAIL;
	if (cf_sync(x, "DEVICE_RESET with a payload") < 0)
		return CF_FAIL;
	if (e == 0)
		return cf_set(x, CF_WARN,
			      "DEVICE_RESET with a payload was accepted (the "
			      "spec defines none)");
	return cf_set(x, CF_PASS, "DEVICE_RESET with a payload refused");
}

/* DMA windows belong to the connection: a reset keeps them. */
static int r_keeps_maps(struct cf_ctx *x)
{
	static uint8_t buf[4096];
	struct cf_msg m;
	int e;

	if (cf_get_info(x) < 0)
		return CF_FAIL;
	if (!(x->info.flags & MU_DEVICE_FLAGS_RESET))
		return cf_set(x, CF_SKIP, "device does not offer reset");
	e = cf_dma_map(x, 0x7f000000, sizeof(buf),
		       MU_DMA_MAP_FLAG_READ | MU_DMA_MAP_FLAG_WRITE, -1, buf);
	if (e < 0)
		return e == CF_EBROKEN ? CF_FAIL
				       : cf_set(x, CF_SKIP,
						"fd-less DMA_MAP refused: %s",
						cf_errname(e));
	e = cf_req(x, MU_CMD_DEVICE_RESET, NULL, 0, NULL, 0, &m,
		   "DEVICE_RESET");
	cf_msg_free(&m);
	if (e < 0)
		return CF_FAIL;
	e = cf_dma_unmap(x, 0x7f000000, sizeof(buf), 0);
	if (e == CF_EBROKEN)
		return CF_FAIL;
	if (e < 0)
		return cf_set(x, CF_WARN,
			      "after DEVICE_RESET the DMA window was gone "
			      "(unmap: %s); VMMs keep their maps across reset",
			      cf_errname(e));
	return cf_set(x, CF_PASS, "the DMA window survived DEVICE_RESET");
}

const struct cf_check cf_checks_cmd[] = {
	{"cmd.get-info", S_INFO, "5.4",
	 "GET_INFO answers 16 bytes; a PCI device has at least 9 regions",
	 CF_NEED_SESSION, c_get_info},
	{"cmd.argsz", S_SIZES, "9g",
	 "a reply never carries more payload than the request's argsz",
	 CF_NEED_SESSION, c_argsz},
	{"cmd.short-payload", S_SIZES, "5",
	 "a payload shorter than the command's fixed part is refused",
	 CF_NEED_SESSION, c_short_payload},
	{"cmd.wrong-direction", S_CMDS, "3.5",
	 "DMA_READ/DMA_WRITE sent by the client are refused", CF_NEED_SESSION,
	 c_wrong_direction},
	{"cmd.removed-14", S_CMDS, "5.14",
	 "command 14 (removed from the spec) is refused", CF_NEED_SESSION,
	 c_removed_14},
	{"cmd.feature-unknown", S_FEAT, "5.16",
	 "DEVICE_FEATURE of an undefined feature is refused", CF_NEED_SESSION,
	 c_feature_unknown},
	{"cmd.io-fds", S_IOFDS, "9e",
	 "IO FD replies: 40-byte entries after 16, fds named, within region",
	 CF_NEED_SESSION, c_io_fds},
	{NULL, NULL, NULL, NULL, 0, NULL},
};

const struct cf_check cf_checks_reset[] = {
	{"reset.device", S_RESET, "5.13",
	 "DEVICE_RESET succeeds with a header-only reply when RESET is set",
	 CF_NEED_SESSION, r_reset},
	{"reset.payload", S_RESET, "5.13",
	 "DEVICE_RESET carries no payload: one with a payload is refused",
	 CF_NEED_SESSION, r_payload},
	{"reset.keeps-maps", S_RESET, "5.13",
	 "DMA windows belong to the connection and survive a reset",
	 CF_NEED_SESSION, r_keeps_maps},
	{NULL, NULL, NULL, NULL, 0, NULL},
};
