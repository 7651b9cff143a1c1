/* SPDX-License-Identifier: BSD-3-Clause */
/* stats.c - result series, percentiles and the report (text or JSON). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

/* Enough for minutes of 10 us round trips; beyond it only counts grow. */
#define MAX_SAMPLES (4u << 20)

void res_add_lat(struct result *r, uint64_t ns)
{
	if (r->nlat == r->cap && r->cap < MAX_SAMPLES) {
		size_t cap = r->cap ? r->cap * 2 : 4096;
		uint32_t *p = realloc(r->lat, cap * sizeof(*p));

		if (p) {
			r->lat = p;
			r->cap = cap;
		}
	}
	if (r->nlat < r->cap)
		r->lat[r->nlat++] = ns > UINT32_MAX ? UINT32_MAX : (uint32_t)ns;
}

void res_add(struct result *r, uint64_t ops, uint64_t bytes, uint64_t ns)
{
	r->ops += ops;
	r->bytes += bytes;
	r->ns += ns;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

int res_run_for(struct result *r, double seconds, size_t bytes,
		int (*op)(void *arg), void *arg)
{
	uint64_t start = now_ns(), end = start + (uint64_t)(seconds * 1e9);
	uint64_t t0 = start, t, ops = 0;
	int ret;

	do {
		ret = op(arg);
		if (ret)
			return ret;
		ops++;
		t = now_ns();
		if (r->kind == RES_LATENCY)
			res_add_lat(r, t - t0);
		t0 = t;
	} while (t < end);
	res_add(r, ops, ops * bytes, t - start);
	return 0;
}

double res_pct(struct result *r, double pct)
{
	size_t i;

	if (!r->nlat)
		return 0;
	qsort(r->lat, r->nlat, sizeof(*r->lat), cmp_u32);
	i = (size_t)(pct / 100.0 * (double)(r->nlat - 1) + 0.5);
	return r->lat[i < r->nlat ? i : r->nlat - 1];
}

double res_rate(const struct result *r)
{
	return r->ns ? (double)r->ops * 1e9 / (double)r->ns : 0;
}

double res_bps(const struct result *r)
{
	return r->ns ? (double)r->bytes * 1e9 / (double)r->ns : 0;
}

double res_ratio(struct result *r, struct result *f)
{
	double a, b;

	if (r->skipped || f->skipped)
		return 0;
	switch (r->kind) {
	case RES_LATENCY:
		a = res_pct(r, 50);
		b = f->kind == RES_LATENCY ? res_pct(f, 50) : 0;
		break;
	case RES_RATE:
		a = res_rate(r);
		b = res_rate(f);
		break;
	default:
		a = res_bps(r);
		b = res_bps(f);
	}
	return b > 0 ? a / b : 0;
}

void res_free(struct result *r)
{
	free(r->lat);
	r->lat = NULL;
	r->nlat = r->cap = 0;
}

static const char *fmt_bps(char *buf, size_t len, double bps)
{
	if (bps >= 1e9)
		snprintf(buf, len, "%.2f GB/s", bps / 1e9);
	else
		snprintf(buf, len, "%.1f MB/s", bps / 1e6);
	return buf;
}

static void print_text(struct result *all, size_t n, const char *hdr)
{
	printf("%s\n", hdr);
	for (size_t i = 0; i < n; i++) {
		struct result *r = &all[i];
		char b[32];

		printf("%-34s", r->name);
		if (r->skipped) {
			printf(" skipped: %s\n", r->note);
			continue;
		}
		switch (r->kind) {
		case RES_LATENCY:
			printf(" median %7.2f us  p99 %7.2f us  %9.0f ops/s",
			       res_pct(r, 50) / 1e3, res_pct(r, 99) / 1e3,
			       res_rate(r));
			break;
		case RES_RATE:
			printf(" %9.0f ops/s", res_rate(r));
			break;
		default:
			printf(" %12s  %9.0f ops/s",
			       fmt_bps(b, sizeof(b), res_bps(r)), res_rate(r));
		}
		if (r->floor < 0)
			printf("  (floor)\n");
		else if (all[r->floor].skipped)
			printf("  ratio -  (floor %s skipped)\n",
			       all[r->floor].name);
		else if (r->floor2 >= 0 && !all[r->floor2].skipped)
			printf("  ratio %.2fx %s, %.2fx %s\n",
			       res_ratio(r, &all[r->floor]), all[r->floor].name,
			       res_ratio(r, &all[r->floor2]),
			       all[r->floor2].name);
		else
			printf("  ratio %.2fx %s\n",
			       res_ratio(r, &all[r->floor]),
			       all[r->floor].name);
		if (r->note[0])
			printf("%-34s  note: %s\n", "", r->note);
	}
}

static void json_str(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			printf("\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			printf("\\u%04x", *s);
		else
			putchar(*s);
	}
	putchar('"');
}

static void print_json(struct result *all, size_t n, const char *hdr)
{
	static const char *const kinds[] = {"latency", "rate", "throughput"};

	printf("{\"header\": ");
	json_str(hdr);
	printf(", \"results\": [");
	for (size_t i = 0; i < n; i++) {
		struct result *r = &all[i];

		printf("%s\n  {\"name\": ", i ? "," : "");
		json_str(r->name);
		printf(", \"kind\": \"%s\", \"skipped\": %s", kinds[r->kind],
		       r->skipped ? "true" : "false");
		if (r->note[0]) {
			printf(", \"note\": ");
			json_str(r->note);
		}
		if (r->skipped) {
			printf("}");
			continue;
		}
		printf(", \"ops\": %llu, \"seconds\": %.6f, \"ops_per_s\": "
		       "%.1f",
		       (unsigned long long)r->ops, (double)r->ns / 1e9,
		       res_rate(r));
		if (r->kind == RES_LATENCY)
			printf(", \"median_ns\": %.0f, \"p99_ns\": %.0f",
			       res_pct(r, 50), res_pct(r, 99));
		if (r->kind == RES_THROUGHPUT)
			printf(", \"bytes_per_s\": %.0f", res_bps(r));
		if (r->floor >= 0) {
			printf(", \"floor\": ");
			json_str(all[r->floor].name);
			printf(", \"ratio\": %.4f",
			       res_ratio(r, &all[r->floor]));
		}
		if (r->floor2 >= 0 && !all[r->floor2].skipped) {
			printf(", \"floor2\": ");
			json_str(all[r->floor2].name);
			printf(", \"ratio2\": %.4f",
			       res_ratio(r, &all[r->floor2]));
		}
		printf("}");
	}
	printf("\n]}\n");
}

void res_print(struct result *all, size_t n, bool json, const char *hdr)
{
	if (json)
		print_json(all, n, hdr);
	else
		print_text(all, n, hdr);
}
