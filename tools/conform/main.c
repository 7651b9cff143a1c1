/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * muser-conform - check any vfio-user server against the specification:
 * a catalogue of checks, each tied to a spec section, each reported as
 * PASS, FAIL, WARN or SKIP with one line of evidence.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "conform.h"

enum { EXIT_USAGE = 2 };

static int parse_u64(const char *s, uint64_t *out)
{
	char *end;

	if (!*s || *s == '-')
		return -EINVAL;
	errno = 0;
	*out = strtoull(s, &end, 0);
	return errno || *end ? -EINVAL : 0;
}

static int parse_region(const char *s, unsigned *out)
{
	static const char *const names[] = {"BAR0", "BAR1",   "BAR2",
					    "BAR3", "BAR4",   "BAR5",
					    "ROM",  "CONFIG", "VGA"};
	uint64_t v;
	unsigned i;

	for (i = 0; i < sizeof(names) / sizeof(*names); i++) {
		if (!strcasecmp(s, names[i])) {
			*out = i;
			return 0;
		}
	}
	if (parse_u64(s, &v) || v > 0xffffffffu)
		return -EINVAL;
	*out = (unsigned)v;
	return 0;
}

int cf_parse_kicks(struct cf_run_opts *o, const char *arg)
{
	char buf[1024], *save = NULL, *item;

	if (snprintf(buf, sizeof(buf), "%s", arg) >= (int)sizeof(buf))
		return -EINVAL;
	o->nkicks = 0;
	for (item = strtok_r(buf, ",", &save); item;
	     item = strtok_r(NULL, ",", &save)) {
		char *f[4], *s2 = NULL, *tok;
		struct cf_kick *k;
		uint64_t size;
		unsigned n = 0;

		if (o->nkicks == CF_KICK_MAX)
			return -EINVAL;
		for (tok = strtok_r(item, ":", &s2); tok;
		     tok = strtok_r(NULL, ":", &s2)) {
			if (n == 4)
				return -EINVAL;
			f[n++] = tok;
		}
		if (n != 4)
			return -EINVAL;
		k = &o->kicks[o->nkicks++];
		if (parse_region(f[0], &k->region) ||
		    parse_u64(f[1], &k->offset) || parse_u64(f[2], &size) ||
		    parse_u64(f[3], &k->value) ||
		    (size != 1 && size != 2 && size != 4 && size != 8) ||
		    (size < 8 && k->value >> (8 * size)))
			return -EINVAL;
		k->size = (uint32_t)size;
	}
	return o->nkicks ? 0 : -EINVAL;
}

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: " PROG " [OPTIONS] SOCKET\n"
		"       " PROG " --list [--only=PATTERN] [--json]\n"
		"Check the vfio-user server listening on SOCKET against the\n"
		"vfio-user specification: negotiation, every command and its\n"
		"errors, framing, fds, DMA, IRQs, regions, config space, "
		"reset,\n"
		"reconnect, migration. Each check prints PASS, FAIL, WARN "
		"(legal,\n"
		"but a peer in the field will trip on it) or SKIP (feature "
		"not\n"
		"offered) with one line of evidence.\n\n"
		"  -l, --list            list the checks (id, section, rule)\n"
		"  -o, --only=PATTERN    run only matching checks: comma-"
		"separated\n"
		"                        shell patterns on the id, or group "
		"names\n"
		"                        (e.g. --only=dma,frame.sync-*)\n"
		"  -t, --timeout=MS      wait at most MS for each reply "
		"(default\n"
		"                        2000); a check is killed after 4*MS + "
		"2 s\n"
		"      --dma-kick=LIST   register writes that make the device "
		"do\n"
		"                        DMA into the checker's window at "
		"IOVA\n"
		"                        0x10000000 (1 MiB): R:OFF:SIZE:VALUE,"
		"...\n"
		"                        (R: BAR0-5, ROM, CONFIG, VGA or an "
		"index)\n"
		"      --tap             TAP version 13 output\n"
		"      --json            one JSON document\n"
		"  -h, --help            this text\n\n"
		"Exit status: 0 no check failed, 1 a check failed (or the "
		"server\n"
		"could not be checked), 2 usage error.\n");
}

int main(int argc, char **argv)
{
	static const struct option lopts[] = {
		{"help", no_argument, NULL, 'h'},
		{"list", no_argument, NULL, 'l'},
		{"only", required_argument, NULL, 'o'},
		{"timeout", required_argument, NULL, 't'},
		{"tap", no_argument, NULL, 'T'},
		{"json", no_argument, NULL, 'J'},
		{"dma-kick", required_argument, NULL, 'K'},
		{NULL, 0, NULL, 0},
	};
	struct cf_run_opts o = {.timeout_ms = 2000};
	enum cf_format fmt = CF_TABLE;
	struct cf_output *out;
	const struct cf_check *const *all;
	unsigned n, i, sel = 0;
	bool list = false;
	int opt, fails;

	while ((opt = getopt_long(argc, argv, "hlo:t:", lopts, NULL)) != -1) {
		char *end;
		long v;

		switch (opt) {
		case 'h':
			usage(stdout);
			return 0;
		case 'l':
			list = true;
			break;
		case 'o':
			o.only = optarg;
			break;
		case 't':
			errno = 0;
			v = strtol(optarg, &end, 10);
			if (errno || *end || v < 10 || v > 600000) {
				fprintf(stderr,
					PROG ": --timeout wants 10..600000 "
					     "ms, not '%s'\n",
					optarg);
				return EXIT_USAGE;
			}
			o.timeout_ms = (int)v;
			break;
		case 'K':
			if (cf_parse_kicks(&o, optarg) < 0) {
				fprintf(stderr,
					PROG ": --dma-kick wants "
					     "R:OFF:SIZE:VALUE[,...] (SIZE 1, "
					     "2, 4 or 8; at most %d), not "
					     "'%s'\n",
					CF_KICK_MAX, optarg);
				return EXIT_USAGE;
			}
			break;
		case 'T':
			fmt = CF_TAP;
			break;
		case 'J':
			fmt = CF_JSON;
			break;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (o.only && !cf_only_valid(o.only)) {
		fprintf(stderr,
			PROG ": --only=%s matches no check (see --list)\n",
			o.only);
		return EXIT_USAGE;
	}
	if (list) {
		if (optind != argc) {
			usage(stderr);
			return EXIT_USAGE;
		}
		cf_list(fmt, o.only);
		return 0;
	}
	if (optind != argc - 1) {
		usage(stderr);
		return EXIT_USAGE;
	}
	o.path = argv[optind];
	all = cf_catalogue(&n);
	for (i = 0; i < n; i++)
		if (cf_selected(all[i]->id, o.only))
			sel++;
	out = cf_output_new(fmt, o.path, sel);
	if (!out) {
		fprintf(stderr, PROG ": out of memory\n");
		return 1;
	}
	fails = cf_run(&o, out);
	cf_output_end(out);
	return fails ? 1 : 0;
}
