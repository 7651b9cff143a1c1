/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * registry.c - the catalogue: every check group's table in run order, and
 * --only matching. The order matters: conn.connect first (it tells "no
 * server" from "a check failed"), DMA request accounting last.
 */
#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>

#include "conform.h"

static const struct cf_check *const groups[] = {
	cf_checks_start,  cf_checks_version, cf_checks_frame, cf_checks_cmd,
	cf_checks_region, cf_checks_config,  cf_checks_irq,   cf_checks_dma,
	cf_checks_fd,	  cf_checks_reset,   cf_checks_mig,   cf_checks_conn,
	cf_checks_final,
};

#define MAX_CHECKS 256

const struct cf_check *const *cf_catalogue(unsigned *n)
{
	static const struct cf_check *all[MAX_CHECKS];
	static unsigned count;
	size_t g;

	if (!count) {
		for (g = 0; g < sizeof(groups) / sizeof(*groups); g++) {
			const struct cf_check *k;

			for (k = groups[g]; k->id && count < MAX_CHECKS; k++)
				all[count++] = k;
		}
	}
	*n = count;
	return all;
}

/* One pattern: a shell pattern on the id, or a bare group name. */
static bool match_one(const char *pat, size_t len, const char *id)
{
	char buf[128];

	if (!len || len >= sizeof(buf))
		return false;
	memcpy(buf, pat, len);
	buf[len] = 0;
	if (fnmatch(buf, id, 0) == 0)
		return true;
	return !strpbrk(buf, ".*?[") && !strncmp(id, buf, len) &&
	       id[len] == '.';
}

bool cf_selected(const char *id, const char *only)
{
	const char *p = only;

	if (!only)
		return true;
	while (*p) {
		size_t len = strcspn(p, ",");

		if (match_one(p, len, id))
			return true;
		p += len;
		if (*p == ',')
			p++;
	}
	return false;
}

bool cf_only_valid(const char *only)
{
	unsigned n, i;
	const struct cf_check *const *all = cf_catalogue(&n);

	for (i = 0; i < n; i++)
		if (cf_selected(all[i]->id, only))
			return true;
	return false;
}
