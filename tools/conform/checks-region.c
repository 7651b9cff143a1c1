/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * checks-region.c - GET_REGION_INFO (flags, fds, capability chains,
 * mappable fds that really map) and region access: valid reads and
 * writes, bounds, zero and huge counts, overflow, bad indexes,
 * REGION_WRITE_MULTI. Only config space is accessed in range (rewriting
 * read-only IDs with their own values); BARs are only touched out of
 * range, which a conforming server refuses without reaching the device.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "checks.h"

#define RFLAGS                                                                 \
	(MU_REGION_INFO_FLAG_READ | MU_REGION_INFO_FLAG_WRITE |                \
	 MU_REGION_INFO_FLAG_MMAP | MU_REGION_INFO_FLAG_CAPS)

/* Walk the capability chain of a full reply; 0 or CF_EBROKEN. */
static int check_caps(struct cf_ctx *x, const struct cf_msg *m,
		      const struct mu_region_info *ri, const char *what)
{
	uint32_t off = ri->cap_offset, prev = 0;
	unsigned n;

	for (n = 0; off; n++) {
		struct mu_info_cap_header h;

		if (n >= 64 || off < sizeof(*ri) || off <= prev ||
		    off > m->len || m->len - off < sizeof(h))
			return cf_set(x, CF_EBROKEN,
				      "%s: capability at offset %u outside the "
				      "reply, looping or overlapping",
				      what, off);
		memcpy(&h, m->payload + off, sizeof(h));
		if (h.id == MU_REGION_INFO_CAP_SPARSE_MMAP) {
			struct mu_region_info_cap_sparse_mmap s;
			uint32_t i;

			if (m->len - off < sizeof(s))
				return cf_set(x, CF_EBROKEN,
					      "%s: sparse mmap cap truncated",
					      what);
			memcpy(&s, m->payload + off, sizeof(s));
			if (s.nr_areas > (m->len - off - sizeof(s)) / 16)
				return cf_set(x, CF_EBROKEN,
					      "%s: %u sparse areas don't fit "
					      "in the reply",
					      what, s.nr_areas);
			for (i = 0; i < s.nr_areas; i++) {
				struct mu_sparse_mmap_area a;

				memcpy(&a,
				       m->payload + off + sizeof(s) + 16 * i,
				       sizeof(a));
				if (a.offset > ri->size ||
				    a.size > ri->size - a.offset)
					return cf_set(
						x, CF_EBROKEN,
						"%s: sparse area %u "
						"[0x%llx, +0x%llx) "
						"outside the region",
						what, i,
						(unsigned long long)a.offset,
						(unsigned long long)a.size);
			}
		}
		prev = off;
		off = h.next;
	}
	return 0;
}

/* One region's info, fully validated; fills *ri. */
static int region_full(struct cf_ctx *x, unsigned idx,
		       struct mu_region_info *ri, unsigned *mapped)
{
	struct mu_region_info in = {.argsz = sizeof(in) + 4096, .index = idx};
	struct cf_msg m;
	char what[64];
	bool mmap_flag;
	int e;

	snprintf(what, sizeof(what), "GET_REGION_INFO %u", idx);
	e = cf_req(x, MU_CMD_DEVICE_GET_REGION_INFO, &in, sizeof(in), NULL, 0,
		   &m, what);
	if (e == 0 && m.len < sizeof(*ri))
		e = cf_set(x, CF_EBROKEN, "%s: reply payload %zu bytes", what,
			   m.len);
	if (e < 0)
		goto out;
	memcpy(ri, m.payload, sizeof(*ri));
	mmap_flag = ri->flags & MU_REGION_INFO_FLAG_MMAP;
	if (ri->index != idx)
		e = cf_set(x, CF_EBROKEN, "%s: reply index %u", what,
			   ri->index);
	else if (ri->argsz < sizeof(*ri) ||
		 (ri->argsz <= in.argsz && m.len != ri->argsz))
		e = cf_set(x, CF_EBROKEN, "%s: reply argsz %u, payload %zu",
			   what, ri->argsz, m.len);
	else if (ri->flags & ~RFLAGS)
		e = cf_set(x, CF_EBROKEN, "%s: undefined flags 0x%x", what,
			   ri->flags & ~RFLAGS);
	else if (mmap_flag && m.nfds != 1)
		e = cf_set(x, CF_EBROKEN, "%s: MMAP set but %u fds", what,
			   m.nfds);
	else if (!mmap_flag && m.nfds)
		e = cf_set(x, CF_EBROKEN, "%s: %u fds without MMAP", what,
			   m.nfds);
	else if ((ri->flags & MU_REGION_INFO_FLAG_CAPS) && !ri->cap_offset)
		e = cf_set(x, CF_EBROKEN, "%s: CAPS set, cap_offset 0", what);
	else if (ri->flags & MU_REGION_INFO_FLAG_CAPS)
		e = check_caps(x, &m, ri, what);
	if (e == 0 && mmap_flag && ri->size && ri->size <= (1ull << 30)) {
		void *p = mmap(NULL, ri->size, PROT_READ, MAP_SHARED, m.fds[0],
			       (off_t)ri->offset);

		/* A sparse region may refuse the whole; only its areas
		 * must map, and those were checked to lie inside. */
		if (p == MAP_FAILED && !(ri->flags & MU_REGION_INFO_FLAG_CAPS))
			e = cf_set(x, CF_EBROKEN,
				   "%s: mmap of the region's fd at 0x%llx "
				   "failed: %s",
				   what, (unsigned long long)ri->offset,
				   cf_errname(-errno));
		else if (p != MAP_FAILED)
			munmap(p, ri->size);
		(*mapped)++;
	}
out:
	cf_msg_free(&m);
	return e;
}

static int r_info(struct cf_ctx *x)
{
	char list[160] = "", nb[24];
	unsigned i, n, impl = 0, mapped = 0;
	size_t l = 0;

	if (cf_get_info(x) < 0)
		return CF_FAIL;
	n = x->info.num_regions < CF_NREG_MAX ? x->info.num_regions
					      : CF_NREG_MAX;
	for (i = 0; i < n; i++) {
		struct mu_region_info ri;

		if (region_full(x, i, &ri, &mapped) < 0)
			return CF_FAIL;
		if (!ri.size)
			continue;
		impl++;
		if (l < sizeof(list) - 48)
			l += (size_t)snprintf(
				list + l, sizeof(list) - l,
				"%s%s 0x%llx %s%s%s", l ? ", " : "",
				cf_region_name(i, nb, sizeof(nb)),
				(unsigned long long)ri.size,
				ri.flags & MU_REGION_INFO_FLAG_READ ? "r" : "",
				ri.flags & MU_REGION_INFO_FLAG_WRITE ? "w" : "",
				ri.flags & MU_REGION_INFO_FLAG_MMAP ? "m" : "");
	}
	return cf_set(x, CF_PASS, "%u regions, %u implemented, %u mappable: %s",
		      n, impl, mapped, list);
}

static int r_info_bad_index(struct cf_ctx *x)
{
	struct mu_region_info in = {.argsz = sizeof(in)};
	int e;

	if (cf_get_info(x) < 0)
		return CF_FAIL;
	in.index = x->info.num_regions;
	e = cf_refused(x, MU_CMD_DEVICE_GET_REGION_INFO, &in, sizeof(in), NULL,
		       0, NULL, "GET_REGION_INFO of index num_regions");
	if (e == 1) {
		in.index = 0xffffffffu;
		e = cf_refused(x, MU_CMD_DEVICE_GET_REGION_INFO, &in,
			       sizeof(in), NULL, 0, NULL,
			       "GET_REGION_INFO of index 0xffffffff");
	}
	if (e == CF_EBROKEN)
		return CF_FAIL;
	if (e == 0)
		return cf_set(x, CF_FAIL,
			      "GET_REGION_INFO of index %u "
			      "answered",
			      in.index);
	return cf_set(x, CF_PASS, "indexes %u and 0xffffffff refused",
		      x->info.num_regions);
}

/* Config region info, or SKIP/FAIL with evidence. */
static int cfg_region(struct cf_ctx *x, struct mu_region_info *ri)
{
	if (cf_get_info(x) < 0)
		return CF_FAIL;
	if (x->info.num_regions <= CF_CFG)
		return cf_set(x, CF_SKIP, "no config space region");
	if (cf_region_info(x, CF_CFG, ri) < 0)
		return CF_FAIL;
	if (!ri->size || !(ri->flags & MU_REGION_INFO_FLAG_READ))
		return cf_set(x, CF_SKIP, "config space not readable");
	return CF_PASS;
}

static int r_read(struct cf_ctx *x)
{
	static const uint32_t sizes[] = {1, 2, 4, 8};
	struct mu_region_info ri;
	uint8_t buf[256], one[8];
	size_t i;
	int st = cfg_region(x, &ri), e;

	if (st != CF_PASS)
		return st;
	for (i = 0; i < sizeof(sizes) / sizeof(*sizes); i++) {
		e = cf_read(x, CF_CFG, 0, one, sizes[i]);
		if (e < 0)
			return CF_FAIL;
	}
	e = cf_read(x, CF_CFG, 0, buf, ri.size < 256 ? (uint32_t)ri.size : 256);
	if (e < 0)
		return CF_FAIL;
	if (memcmp(buf, one, 8) != 0)
		return cf_set(x, CF_FAIL,
			      "config bytes 0-7 differ between an 8-byte and a "
			      "256-byte read");
	return cf_set(x, CF_PASS,
		      "config reads of 1, 2, 4, 8 and %u bytes: exact replies, "
		      "fields echoed",
		      ri.size < 256 ? (unsigned)ri.size : 256);
}

static int r_write(struct cf_ctx *x)
{
	struct mu_region_info ri;
	uint16_t vid;
	int st = cfg_region(x, &ri);

	if (st != CF_PASS)
		return st;
	if (!(ri.flags & MU_REGION_INFO_FLAG_WRITE))
		return cf_set(x, CF_SKIP, "config space not writable");
	if (cf_read(x, CF_CFG, 0, &vid, 2) < 0 ||
	    cf_write(x, CF_CFG, 0, &vid, 2) < 0)
		return CF_FAIL;
	return cf_set(
		x, CF_PASS,
		"vendor ID 0x%04x rewritten: 16-byte reply, fields echoed",
		vid);
}

/* Each implemented region: accesses past the end must be refused. */
static int past_end(struct cf_ctx *x, bool write)
{
	unsigned i, n, tried = 0;
	uint8_t data[4] = {0};
	char nb[24], what[96];

	if (cf_get_info(x) < 0)
		return CF_FAIL;
	n = x->info.num_regions < CF_NREG_MAX ? x->info.num_regions
					      : CF_NREG_MAX;
	for (i = 0; i < n; i++) {
		struct mu_region_info ri;
		uint32_t need = write ? MU_REGION_INFO_FLAG_WRITE
				      : MU_REGION_INFO_FLAG_READ;
		int e;

		if (cf_region_info(x, i, &ri) < 0)
			return CF_FAIL;
		if (!ri.size || !(ri.flags & need))
			continue;
		tried++;
		/* Writes stay wholly outside; a read may straddle the end. */
		if (write)
			e = cf_write(x, i, ri.size, data, 4);
		else
			e = cf_read(x, i, ri.size >= 2 ? ri.size - 2 : 0, NULL,
				    4);
		if (e == CF_EBROKEN)
			return CF_FAIL;
		snprintf(what, sizeof(what),
			 "%s of 4 bytes at %s+0x%llx "
			 "(size 0x%llx)",
			 write ? "REGION_WRITE" : "REGION_READ",
			 cf_region_name(i, nb, sizeof(nb)),
			 (unsigned long long)(write	     ? ri.size
					      : ri.size >= 2 ? ri.size - 2
							     : 0),
			 (unsigned long long)ri.size);
		if (e == 0)
			return cf_set(x, CF_FAIL, "%s accepted", what);
		if (!write) {
			e = cf_read(x, i, ri.size, NULL, 1);
			if (e == CF_EBROKEN)
				return CF_FAIL;
			if (e == 0)
				return cf_set(
					x, CF_FAIL,
					"REGION_READ of 1 byte at the end "
					"of %s accepted",
					cf_region_name(i, nb, sizeof(nb)));
		}
	}
	if (!tried)
		return cf_set(x, CF_SKIP, "no %s region",
			      write ? "writable" : "readable");
	if (cf_sync(x, "out-of-bounds accesses") < 0)
		return CF_FAIL;
	return cf_set(x, CF_PASS, "%u regions: %s past the end refused", tried,
		      write ? "writes" : "reads");
}

static int r_read_past_end(struct cf_ctx *x)
{
	return past_end(x, false);
}

static int r_write_past_end(struct cf_ctx *x)
{
	return past_end(x, true);
}

/* A read request with a given count/offset that must not return data. */
static int odd_read(struct cf_ctx *x, uint64_t off, uint32_t count,
		    bool zero_ok, const char *what)
{
	struct mu_region_info ri;
	struct mu_region_access a = {off, CF_CFG, count};
	struct cf_msg m;
	int st = cfg_region(x, &ri), e;

	if (st != CF_PASS)
		return st;
	e = cf_req(x, MU_CMD_REGION_READ, &a, sizeof(a), NULL, 0, &m, what);
	if (e == CF_EBROKEN) {
		cf_msg_free(&m);
		return CF_FAIL;
	}
	if (e == 0 && !(zero_ok && m.len == sizeof(a))) {
		cf_msg_free(&m);
		return cf_set(x, CF_FAIL, "%s accepted (%zu bytes of reply)",
			      what, m.len);
	}
	cf_msg_free(&m);
	if (cf_sync(x, what) < 0)
		return CF_FAIL;
	return cf_set(x, CF_PASS, "%s %s, in sync", what,
		      e == 0 ? "answered with no data" : "refused");
}

static int r_zero_count(struct cf_ctx *x)
{
	return odd_read(x, 0, 0, true, "config read of 0 bytes");
}

static int r_huge_count(struct cf_ctx *x)
{
	return odd_read(x, 0, 0xffffffffu, false,
			"config read of 0xffffffff bytes");
}

static int r_overflow(struct cf_ctx *x)
{
	return odd_read(x, 0xfffffffffffffffeull, 4, false,
			"config read of 4 bytes at 2^64-2");
}

static int r_bad_index(struct cf_ctx *x)
{
	unsigned i, n;
	int e;

	if (cf_get_info(x) < 0)
		return CF_FAIL;
	e = cf_read(x, x->info.num_regions, 0, NULL, 4);
	if (e == CF_EBROKEN)
		return CF_FAIL;
	if (e == 0)
		return cf_set(x, CF_FAIL,
			      "read of region %u (num_regions) "
			      "accepted",
			      x->info.num_regions);
	n = x->info.num_regions < CF_NREG_MAX ? x->info.num_regions
					      : CF_NREG_MAX;
	for (i = 0; i < n; i++) {
		struct mu_region_info ri;

		if (cf_region_info(x, i, &ri) < 0)
			return CF_FAIL;
		if (ri.size)
			continue;
		e = cf_read(x, i, 0, NULL, 4);
		if (e == CF_EBROKEN)
			return CF_FAIL;
		if (e == 0)
			return cf_set(x, CF_FAIL,
				      "read of unimplemented region %u "
				      "(size 0) accepted",
				      i);
		return cf_set(x, CF_PASS,
			      "regions %u (num_regions) and %u (size 0) "
			      "refused",
			      x->info.num_regions, i);
	}
	return cf_set(x, CF_PASS, "region %u (num_regions) refused",
		      x->info.num_regions);
}

static int r_readonly(struct cf_ctx *x)
{
	unsigned i, n;
	uint8_t v;
	int e;

	if (cf_get_info(x) < 0)
		return CF_FAIL;
	n = x->info.num_regions < CF_NREG_MAX ? x->info.num_regions
					      : CF_NREG_MAX;
	for (i = 0; i < n; i++) {
		struct mu_region_info ri;
		char nb[24];

		if (cf_region_info(x, i, &ri) < 0)
			return CF_FAIL;
		if (!ri.size || (ri.flags & MU_REGION_INFO_FLAG_WRITE))
			continue;
		/* Rewrite what is there, so an accepting server changes
		 * nothing. */
		v = 0;
		if ((ri.flags & MU_REGION_INFO_FLAG_READ) &&
		    cf_read(x, i, 0, &v, 1) == CF_EBROKEN)
			return CF_FAIL;
		e = cf_write(x, i, 0, &v, 1);
		if (e == CF_EBROKEN)
			return CF_FAIL;
		if (e == 0)
			return cf_set(x, CF_FAIL,
				      "write to %s (no WRITE flag) "
				      "accepted",
				      cf_region_name(i, nb, sizeof(nb)));
		return cf_set(x, CF_PASS, "write to %s (no WRITE flag) refused",
			      cf_region_name(i, nb, sizeof(nb)));
	}
	return cf_set(x, CF_SKIP, "no read-only region");
}

static int r_write_multi(struct cf_ctx *x)
{
	struct mu_write_multi_entry ent[2];
	uint8_t p[8 + sizeof(ent)];
	uint64_t cnt = 2, rcnt;
	struct mu_region_info ri;
	struct cf_msg m;
	uint16_t id;
	int st = cfg_region(x, &ri), e;

	if (st != CF_PASS)
		return st;
	if (!x->sess.write_multiple)
		return cf_set(x, CF_SKIP, "write_multiple not offered");
	if (!(ri.flags & MU_REGION_INFO_FLAG_WRITE))
		return cf_set(x, CF_SKIP, "config space not writable");
	memset(ent, 0, sizeof(ent));
	if (cf_read(x, CF_CFG, 0, ent[0].data, 2) < 0 ||
	    cf_read(x, CF_CFG, 2, ent[1].data, 2) < 0)
		return CF_FAIL;
	ent[0].region = ent[1].region = CF_CFG;
	ent[0].count = ent[1].count = 2;
	ent[1].offset = 2;
	memcpy(p, &cnt, 8);
	memcpy(p + 8, ent, sizeof(ent));
	e = cf_req(x, MU_CMD_REGION_WRITE_MULTI, p, sizeof(p), NULL, 0, &m,
		   "WRITE_MULTI of the IDs");
	if (e == 0 && m.len != 8)
		e = cf_set(x, CF_EBROKEN,
			   "WRITE_MULTI: reply payload %zu, "
			   "expected 8",
			   m.len);
	if (e == 0) {
		memcpy(&rcnt, m.payload, 8);
		if (rcnt != cnt)
			e = cf_set(x, CF_EBROKEN,
				   "WRITE_MULTI: reply wr_cnt "
				   "%llu, sent 2",
				   (unsigned long long)rcnt);
	}
	cf_msg_free(&m);
	if (e < 0)
		return CF_FAIL;
	/* Posted, as QEMU sends it: no reply, then in sync. */
	id = cf_next_id(x->c);
	e = cf_send(x->c, id, MU_CMD_REGION_WRITE_MULTI, MU_FLAG_NO_REPLY, 0, p,
		    sizeof(p), NULL, 0);
	if (e < 0)
		return cf_lost(x, e, "posted WRITE_MULTI");
	if (cf_sync(x, "a posted WRITE_MULTI") < 0)
		return CF_FAIL;
	ent[0].count = 9;
	memcpy(p + 8, ent, sizeof(ent));
	e = cf_refused(x, MU_CMD_REGION_WRITE_MULTI, p, sizeof(p), NULL, 0,
		       NULL, "WRITE_MULTI entry of 9 bytes");
	if (e == CF_EBROKEN)
		return CF_FAIL;
	if (e == 0)
		return cf_set(x, CF_FAIL,
			      "WRITE_MULTI entry of 9 bytes "
			      "accepted");
	return cf_set(x, CF_PASS,
		      "2 entries written (reply wr_cnt 2), posted "
		      "batch silent, 9-byte entry refused");
}

const struct cf_check cf_checks_region[] = {
	{"region.info", S_RINFO, "5.5",
	 "region info: argsz, flags, one fd iff MMAP (and it maps), sane caps",
	 CF_NEED_SESSION, r_info},
	{"region.info-bad-index", S_RINFO, "5.5",
	 "GET_REGION_INFO of an index >= num_regions is refused",
	 CF_NEED_SESSION, r_info_bad_index},
	{"region.read", S_READ, "5.9",
	 "a read reply is the 16-byte echo plus exactly count bytes",
	 CF_NEED_SESSION, r_read},
	{"region.write", S_WRITE, "5.10",
	 "a write reply is the 16-byte echo without data", CF_NEED_SESSION,
	 r_write},
	{"region.read-past-end", S_READ, "5.10",
	 "a read past the end of a region is refused", CF_NEED_SESSION,
	 r_read_past_end},
	{"region.write-past-end", S_WRITE, "5.10",
	 "a write past the end of a region is refused", CF_NEED_SESSION,
	 r_write_past_end},
	{"region.zero-count", S_READ, "5.10",
	 "a read of 0 bytes is refused or answered without data",
	 CF_NEED_SESSION, r_zero_count},
	{"region.huge-count", S_RW, "5.10",
	 "a count above max_data_xfer_size is refused", CF_NEED_SESSION,
	 r_huge_count},
	{"region.offset-overflow", S_READ, "5.10",
	 "an access whose offset + count wraps is refused", CF_NEED_SESSION,
	 r_overflow},
	{"region.bad-index", S_READ, "5.10",
	 "access to a region >= num_regions or of size 0 is refused",
	 CF_NEED_SESSION, r_bad_index},
	{"region.read-only", S_WRITE, "5.10",
	 "a write to a region without the WRITE flag is refused",
	 CF_NEED_SESSION, r_readonly},
	{"region.write-multi", S_WMULTI, "5.15",
	 "WRITE_MULTI answers wr_cnt, is silent posted, refuses count > 8",
	 CF_NEED_SESSION, r_write_multi},
	{NULL, NULL, NULL, NULL, 0, NULL},
};
