/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * output.c - the three output formats: a table for people (one line per
 * check as it finishes, a summary at the end), TAP for CI harnesses, and
 * JSON for scripts (one document at the end). Also --list.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conform.h"

struct cf_output {
	enum cf_format fmt;
	const char *path;
	unsigned total, seen;
	unsigned count[4];
	bool first;
};

static const char *const names[] = {"PASS", "FAIL", "WARN", "SKIP"};

const char *cf_status_name(int st)
{
	return st >= 0 && st < 4 ? names[st] : "FAIL";
}

static void json_str(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\')
			printf("\\%c", ch);
		else if (ch < 0x20 || ch >= 0x7f)
			printf("\\u%04x", ch);
		else
			putchar(ch);
	}
	putchar('"');
}

/* "VFIO_USER_DEVICE_GET_INFO" reads as "GET_INFO" in a table. */
static const char *short_spec(const char *s)
{
	static const char *const longer[][2] = {
		{"Read and Write Operations", "Read/Write"},
		{"Socket Disconnection Behavior", "Disconnection"},
		{"Security Considerations", "Security"},
		{"Command Concurrency", "Concurrency"},
	};
	size_t i;

	for (i = 0; i < sizeof(longer) / sizeof(*longer); i++)
		if (!strcmp(s, longer[i][0]))
			return longer[i][1];
	if (!strncmp(s, "VFIO_USER_", 10))
		s += 10;
	if (!strncmp(s, "DEVICE_", 7))
		s += 7;
	return s;
}

static void section(const struct cf_check *k, char *buf, size_t len)
{
	if (k->proto && k->proto[0])
		snprintf(buf, len, "%s, %s", short_spec(k->spec), k->proto);
	else
		snprintf(buf, len, "%s", short_spec(k->spec));
}

struct cf_output *cf_output_new(enum cf_format f, const char *path,
				unsigned nchecks)
{
	struct cf_output *o = calloc(1, sizeof(*o));

	if (!o)
		return NULL;
	o->fmt = f;
	o->path = path;
	o->total = nchecks;
	o->first = true;
	if (f == CF_TAP) {
		printf("TAP version 13\n1..%u\n", nchecks);
	} else if (f == CF_JSON) {
		printf("{\"tool\":\"" PROG "\",\"socket\":");
		json_str(path);
		printf(",\"checks\":[");
	} else {
		printf("%s: checking %s\n", PROG, path);
		printf("%-4s  %-26s  %-22s  %s\n", "", "CHECK", "SECTION",
		       "EVIDENCE");
	}
	fflush(stdout);
	return o;
}

void cf_output_result(struct cf_output *o, const struct cf_check *k,
		      const struct cf_result *r)
{
	int st = r->status >= 0 && r->status < 4 ? r->status : CF_FAIL;
	char sec[96];

	o->count[st]++;
	o->seen++;
	section(k, sec, sizeof(sec));
	if (o->fmt == CF_TAP) {
		printf("%s %u - %s", st == CF_FAIL ? "not ok" : "ok", o->seen,
		       k->id);
		if (st == CF_SKIP)
			printf(" # SKIP %s\n", r->evidence);
		else
			printf(" # %s [%s] %s\n", names[st], sec, r->evidence);
		if (st == CF_FAIL || st == CF_WARN)
			printf("# rule: %s\n", k->rule);
	} else if (o->fmt == CF_JSON) {
		printf("%s\n {\"id\":", o->first ? "" : ",");
		json_str(k->id);
		printf(",\"result\":\"%s\",\"spec\":", names[st]);
		json_str(k->spec);
		printf(",\"protocol\":");
		json_str(k->proto ? k->proto : "");
		printf(",\"rule\":");
		json_str(k->rule);
		printf(",\"evidence\":");
		json_str(r->evidence);
		printf(",\"ms\":%ld}", r->ms);
	} else {
		printf("%-4s  %-26s  %-22s  %s\n", names[st], k->id, sec,
		       r->evidence);
		/* What was broken, in the catalogue's words. */
		if (st == CF_FAIL || st == CF_WARN)
			printf("%-4s  %-26s  rule: %s\n", "", "", k->rule);
	}
	o->first = false;
	fflush(stdout);
}

void cf_output_end(struct cf_output *o)
{
	if (o->fmt == CF_JSON) {
		printf("\n],\"summary\":{\"pass\":%u,\"fail\":%u,\"warn\":%u,"
		       "\"skip\":%u}}\n",
		       o->count[CF_PASS], o->count[CF_FAIL], o->count[CF_WARN],
		       o->count[CF_SKIP]);
	} else {
		printf("%s%u checks: %u pass, %u fail, %u warn, %u skip\n",
		       o->fmt == CF_TAP ? "# " : "", o->seen, o->count[CF_PASS],
		       o->count[CF_FAIL], o->count[CF_WARN], o->count[CF_SKIP]);
	}
	fflush(stdout);
	free(o);
}

void cf_list(enum cf_format f, const char *only)
{
	const struct cf_check *const *all;
	unsigned n, i;
	bool first = true;
	char sec[96];

	all = cf_catalogue(&n);
	if (f == CF_JSON)
		printf("[");
	for (i = 0; i < n; i++) {
		const struct cf_check *k = all[i];

		if (!cf_selected(k->id, only))
			continue;
		if (f == CF_JSON) {
			printf("%s\n {\"id\":", first ? "" : ",");
			json_str(k->id);
			printf(",\"spec\":");
			json_str(k->spec);
			printf(",\"protocol\":");
			json_str(k->proto ? k->proto : "");
			printf(",\"rule\":");
			json_str(k->rule);
			printf("}");
		} else {
			section(k, sec, sizeof(sec));
			printf("%-26s  %-22s  %s\n", k->id, sec, k->rule);
		}
		first = false;
	}
	if (f == CF_JSON)
		printf("\n]\n");
}
