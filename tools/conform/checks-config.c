/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * checks-config.c - PCI configuration space semantics a VMM relies on:
 * read-only identification registers, BAR and ROM sizing by writing all
 * ones and reading the mask back (then restoring the BAR, as a VMM
 * does), and capability lists that can be walked.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "checks.h"

/* Config space present and readable, else SKIP (or FAIL) set. */
static int need_cfg(struct cf_ctx *x, struct mu_region_info *ri)
{
	if (cf_get_info(x) < 0)
		return CF_FAIL;
	if (!(x->info.flags & MU_DEVICE_FLAGS_PCI) ||
	    x->info.num_regions <= CF_CFG)
		return cf_set(x, CF_SKIP, "not a PCI device");
	if (cf_region_info(x, CF_CFG, ri) < 0)
		return CF_FAIL;
	if (ri->size < 64 || (ri->flags & 3) != 3)
		return cf_set(x, CF_SKIP, "config space not read/write");
	return CF_PASS;
}

static int g_size(struct cf_ctx *x)
{
	struct mu_region_info ri;
	int st = need_cfg(x, &ri);

	if (st != CF_PASS)
		return st;
	if (ri.size != 256 && ri.size != 4096)
		return cf_set(x, CF_FAIL,
			      "config region is 0x%llx bytes, not 256 or 4096",
			      (unsigned long long)ri.size);
	return cf_set(x, CF_PASS, "config region %llu bytes",
		      (unsigned long long)ri.size);
}

static int g_ids_readonly(struct cf_ctx *x)
{
	static const unsigned offs[] = {0x00, 0x08, 0x2c};
	struct mu_region_info ri;
	uint32_t orig, now;
	size_t i;
	int st = need_cfg(x, &ri), e;

	if (st != CF_PASS)
		return st;
	for (i = 0; i < sizeof(offs) / sizeof(*offs); i++) {
		if (cf_cfg_read32(x, offs[i], &orig) < 0)
			return CF_FAIL;
		e = cf_cfg_write32(x, offs[i], 0xffffffffu);
		if (e == CF_EBROKEN)
			return CF_FAIL;
		if (cf_cfg_read32(x, offs[i], &now) < 0)
			return CF_FAIL;
		if (now != orig) {
			cf_cfg_write32(x, offs[i], orig);
			return cf_set(x, CF_FAIL,
				      "config 0x%02x was 0x%08x, reads 0x%08x "
				      "after writing all ones (read-only "
				      "register)",
				      offs[i], orig, now);
		}
	}
	return cf_set(x, CF_PASS,
		      "IDs (0x00), revision/class (0x08), subsystem (0x2c) "
		      "unchanged by all-ones writes");
}

static uint64_t pow2_at_least(uint64_t v, uint64_t min)
{
	uint64_t p = min;

	while (p < v && p)
		p <<= 1;
	return p;
}

/* Size one BAR; *skip_next for the upper half of a 64-bit BAR. */
static int size_bar(struct cf_ctx *x, unsigned bar, bool *skip_next,
		    char *summary, size_t slen)
{
	unsigned off = 0x10 + 4 * bar;
	uint32_t orig, rb, orig_hi = 0, rb_hi = 0, back;
	struct mu_region_info ri;
	uint64_t mask, got, want;
	bool io, is64;

	if (cf_region_info(x, bar, &ri) < 0 || cf_cfg_read32(x, off, &orig) < 0)
		return CF_FAIL;
	io = orig & 1;
	is64 = !io && ((orig >> 1) & 3) == 2 && bar < 5;
	if (cf_cfg_write32(x, off, 0xffffffffu) == CF_EBROKEN ||
	    cf_cfg_read32(x, off, &rb) < 0)
		return CF_FAIL;
	if (is64 && (cf_cfg_read32(x, off + 4, &orig_hi) < 0 ||
		     cf_cfg_write32(x, off + 4, 0xffffffffu) == CF_EBROKEN ||
		     cf_cfg_read32(x, off + 4, &rb_hi) < 0))
		return CF_FAIL;
	/* Restore before judging, as a VMM would. */
	cf_cfg_write32(x, off, orig);
	if (is64)
		cf_cfg_write32(x, off + 4, orig_hi);
	if (cf_cfg_read32(x, off, &back) < 0)
		return CF_FAIL;
	if (back != orig)
		return cf_set(x, CF_FAIL,
			      "BAR%u: 0x%08x restored, reads 0x%08x", bar, orig,
			      back);
	*skip_next = is64;
	if (!ri.size) {
		if (rb & (io ? ~3u : ~0xfu))
			return cf_set(x, CF_FAIL,
				      "BAR%u: region size 0, yet all ones read "
				      "back as 0x%08x (a VMM sizes a BAR)",
				      bar, rb);
		return CF_PASS;
	}
	if ((rb & (io ? 3u : 0xfu)) != (orig & (io ? 3u : 0xfu)))
		return cf_set(x, CF_FAIL,
			      "BAR%u: type bits changed 0x%x -> "
			      "0x%x",
			      bar, orig & 0xf, rb & 0xf);
	if (io) {
		mask = rb & ~3u;
		if (!(mask & 0xffff0000u))
			mask |= 0xffff0000u; /* 16-bit I/O decode */
		mask |= 0xffffffff00000000ull;
	} else if (is64) {
		mask = ((uint64_t)rb_hi << 32) | (rb & ~0xfu);
	} else {
		mask = 0xffffffff00000000ull | (rb & ~0xfu);
	}
	got = ~mask + 1;
	want = pow2_at_least(ri.size, io ? 4 : 16);
	if (got != want)
		return cf_set(x, CF_FAIL,
			      "BAR%u: all ones read back 0x%08x%s, a size of "
			      "0x%llx; region %u is 0x%llx",
			      bar, rb, is64 ? " (64-bit)" : "",
			      (unsigned long long)got, bar,
			      (unsigned long long)ri.size);
	snprintf(summary + strlen(summary), slen - strlen(summary),
		 "%sBAR%u %s 0x%llx", summary[0] ? ", " : "", bar,
		 io	? "io"
		 : is64 ? "mem64"
			: "mem",
		 (unsigned long long)got);
	return CF_PASS;
}

static int g_bar_sizing(struct cf_ctx *x)
{
	struct mu_region_info ri;
	char summary[160] = "";
	bool skip = false;
	unsigned bar;
	int st = need_cfg(x, &ri);

	if (st != CF_PASS)
		return st;
	for (bar = 0; bar < 6; bar++) {
		bool next = false;

		if (skip) {
			skip = false;
			continue;
		}
		st = size_bar(x, bar, &next, summary, sizeof(summary));
		if (st != CF_PASS)
			return st;
		skip = next;
	}
	return cf_set(x, CF_PASS, "masks match region sizes, BARs restored: %s",
		      summary[0] ? summary : "no BARs");
}

static int g_rom_sizing(struct cf_ctx *x)
{
	struct mu_region_info ri, rom;
	uint32_t orig, rb, back;
	uint64_t want;
	int st = need_cfg(x, &ri);

	if (st != CF_PASS)
		return st;
	if (cf_region_info(x, MU_PCI_ROM_REGION_INDEX, &rom) < 0 ||
	    cf_cfg_read32(x, 0x30, &orig) < 0)
		return CF_FAIL;
	if (cf_cfg_write32(x, 0x30, 0xfffff800u) == CF_EBROKEN ||
	    cf_cfg_read32(x, 0x30, &rb) < 0)
		return CF_FAIL;
	cf_cfg_write32(x, 0x30, orig);
	if (cf_cfg_read32(x, 0x30, &back) < 0)
		return CF_FAIL;
	if (back != orig)
		return cf_set(x, CF_FAIL,
			      "ROM BAR 0x%08x restored, reads 0x%08x", orig,
			      back);
	if (!rom.size) {
		if (rb & 0xfffff800u)
			return cf_set(x, CF_FAIL,
				      "no ROM region, yet the ROM BAR reads "
				      "0x%08x after sizing",
				      rb);
		return cf_set(x, CF_PASS, "no ROM: the ROM BAR reads 0");
	}
	want = pow2_at_least(rom.size, 2048);
	if (((~(uint64_t)(rb & 0xfffff800u) + 1) & 0xffffffffu) != want)
		return cf_set(x, CF_FAIL,
			      "ROM BAR sizing reads 0x%08x; ROM region is "
			      "0x%llx",
			      rb, (unsigned long long)rom.size);
	return cf_set(x, CF_PASS, "ROM BAR mask matches 0x%llx, restored",
		      (unsigned long long)want);
}

static int g_caps(struct cf_ctx *x)
{
	struct mu_region_info ri;
	uint8_t cfg[4096];
	unsigned p, n = 0, en = 0, seen[256] = {0};
	uint16_t status;
	int st = need_cfg(x, &ri);

	if (st != CF_PASS)
		return st;
	if (cf_read(x, CF_CFG, 0, cfg,
		    ri.size >= 256 ? 256 : (uint32_t)ri.size) < 0)
		return CF_FAIL;
	if (ri.size < 256)
		return cf_set(x, CF_FAIL, "config space 0x%llx bytes",
			      (unsigned long long)ri.size);
	if ((cfg[0] | cfg[1] << 8) == 0xffff || (cfg[0] | cfg[1] << 8) == 0)
		return cf_set(x, CF_FAIL, "vendor ID 0x%04x",
			      cfg[0] | cfg[1] << 8);
	if ((cfg[0x0e] & 0x7f) != 0)
		return cf_set(x, CF_WARN, "header type 0x%02x: not an endpoint",
			      cfg[0x0e]);
	status = (uint16_t)(cfg[6] | cfg[7] << 8);
	if (status & 0x10) {
		for (p = cfg[0x34] & 0xfc; p; p = cfg[p + 1] & 0xfc) {
			if (p < 0x40 || p > 0xfc || seen[p]++ || ++n > 48)
				return cf_set(x, CF_FAIL,
					      "capability list: pointer 0x%02x "
					      "below 0x40, past the end or "
					      "looping",
					      p);
		}
	}
	if (ri.size >= 4096) {
		uint32_t h;
		unsigned steps = 0;

		if (cf_read(x, CF_CFG, 256, cfg + 256, 4096 - 256) < 0)
			return CF_FAIL;
		for (p = 0x100;; p = h >> 20) {
			memcpy(&h, cfg + p, 4);
			if (!h && p == 0x100)
				break;
			if ((p & 3) || p < 0x100 || p > 0xffc || ++steps > 512)
				return cf_set(x, CF_FAIL,
					      "extended capability list: "
					      "pointer 0x%03x misplaced or "
					      "looping",
					      p);
			en++;
			if (!(h >> 20))
				break;
			if ((h >> 20) <= p)
				return cf_set(x, CF_FAIL,
					      "extended capability at 0x%03x "
					      "points back to 0x%03x",
					      p, h >> 20);
		}
	}
	return cf_set(x, CF_PASS, "vendor 0x%04x, %u capabilities, %u extended",
		      cfg[0] | cfg[1] << 8, n, en);
}

const struct cf_check cf_checks_config[] = {
	{"config.size", S_RINFO, "5.5",
	 "config space (region 7) is 256 or 4096 bytes, readable and writable",
	 CF_NEED_SESSION, g_size},
	{"config.ids-readonly", S_RW, "5.10",
	 "vendor/device, class/revision and subsystem IDs are read-only",
	 CF_NEED_SESSION, g_ids_readonly},
	{"config.bar-sizing", S_RW, "5.10",
	 "BARs size by writing all ones: the mask matches the region size",
	 CF_NEED_SESSION, g_bar_sizing},
	{"config.rom-sizing", S_RW, "5.10",
	 "the ROM BAR sizes like a BAR (or reads 0 without a ROM region)",
	 CF_NEED_SESSION, g_rom_sizing},
	{"config.capabilities", S_RW, "5.10",
	 "capability lists are well formed and end", CF_NEED_SESSION, g_caps},
	{NULL, NULL, NULL, NULL, 0, NULL},
};
