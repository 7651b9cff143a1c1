/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * muser-bench - figures for a vfio-user server, each next to its floor
 * measured in the same run: raw UNIX socket ping-pong and stream, memcpy.
 * Every test runs once per round and rounds interleave, so a noisy
 * machine slows muser and its floors alike. Figures, not verdicts.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "bench.h"
#include "dma-test.h"

/* mmap DMA and memcpy sizes: up to 8 MiB a same-thread memcpy runs from
 * cache; 64 MiB is memory-bound for the floor and the device alike. */
#define NMEM 5

enum test_id {
	T_RAW_RD,
	T_RAW_WR,
	T_READ,
	T_WRITE,
	T_POSTED,
	T_RAW_STREAM,
	T_MEMCPY,		    /* one per mmap size */
	T_REMOTE = T_MEMCPY + NMEM, /* remote copy, one per mmap size */
	T_MSG = T_REMOTE + NMEM,
	T_MMAP = T_MSG + 6,
	T_COUNT = T_MMAP + 2 * NMEM,
};

static const size_t msg_sizes[3] = {4096, 65536, 1u << 20};
static const size_t mem_sizes[NMEM] = {4096, 65536, 1u << 20, 8u << 20,
				       64u << 20};

struct bench {
	const char *socket, *spawn;
	const char *server_args[SPAWN_MAX_ARGS];
	unsigned nserver_args;
	unsigned rounds;
	double seconds;
	bool json;
	int timeout_ms;
	long region; /* -1: pick */
	int64_t offset;
	uint64_t count_reads;
	mu_client_t *c;
	struct spawn sp;
	struct raw_peer echo, sink, copier;
	struct dmat *dma;
	uint32_t wval;
	struct result res[T_COUNT];
	char names[T_COUNT][64];
};

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: " PROG " SOCKET [OPTIONS]\n"
		"       " PROG " --spawn SERVER [OPTIONS]\n"
		"Measure a vfio-user server: 4-byte REGION_READ/WRITE round "
		"trips,\nposted writes, and (with muser-dma-test) message and "
		"mmap DMA;\neach next to a raw socket or memcpy floor measured "
		"in the same run.\n\n"
		"  -s, --spawn SERVER   start SERVER --socket-path=TMP (and "
		"--quiet\n"
		"                       for muser-* samples), stop it at the "
		"end\n"
		"  -a, --server-arg ARG pass ARG to the --spawn server as well "
		"(repeat\n"
		"                       for more), e.g. -a --blocking\n"
		"  -n, --rounds N       interleaved rounds (default 5)\n"
		"  -S, --seconds S      seconds per test per round (default "
		"0.25)\n"
		"      --region R       region for round trips: BAR0-5, ROM, "
		"CONFIG,\n"
		"                       VGA or an index (default: picked)\n"
		"      --offset OFF     offset in that region\n"
		"  -j, --json           JSON instead of text\n"
		"  -t, --timeout MS     per-request timeout (default 5000)\n"
		"      --count-reads N  only do N REGION_READs and exit (for\n"
		"                       count-syscalls.sh)\n"
		"  -h, --help           this text\n");
}

/* ---- picking a register ---------------------------------------------- */

static int parse_region(const char *s, long *out)
{
	static const char *const n[] = {"BAR0", "BAR1",	  "BAR2",
					"BAR3", "BAR4",	  "BAR5",
					"ROM",	"CONFIG", "VGA"};
	char *end;

	for (long i = 0; i < 9; i++)
		if (!strcasecmp(s, n[i])) {
			*out = i;
			return 0;
		}
	*out = strtol(s, &end, 0);
	return *s && !*end && *out >= 0 ? 0 : -EINVAL;
}

/* A register where writing back what it reads is harmless: the dma
 * sample's SCRATCH, the gpio board's outputs 8-15 (+ ignored bytes),
 * else offset 0 of the first readable and writable BAR. */
static int pick_register(struct bench *b)
{
	uint32_t id = 0;

	if (b->region >= 0)
		return 0;
	if (mu_client_region_read(b->c, MU_PCI_CONFIG_REGION_INDEX, 0, &id,
				  4) == 0) {
		if (id == (DMAT_VENDOR | (uint32_t)DMAT_DEVICE << 16)) {
			b->region = MU_PCI_BAR0_REGION_INDEX;
			b->offset = DMAT_REG_SCRATCH;
			return 0;
		}
		if (id == 0x0dc8494fu) {
			b->region = MU_PCI_BAR2_REGION_INDEX;
			b->offset = 4;
			return 0;
		}
	}
	for (unsigned i = 0; i < MU_PCI_ROM_REGION_INDEX; i++) {
		const struct mu_client_region *r;
		uint32_t rw =
			MU_REGION_INFO_FLAG_READ | MU_REGION_INFO_FLAG_WRITE;

		if (mu_client_region_info(b->c, i, &r) == 0 &&
		    (r->flags & rw) == rw && r->size >= 4) {
			b->region = i;
			b->offset = 0;
			return 0;
		}
	}
	b->region = MU_PCI_CONFIG_REGION_INDEX; /* reads only make sense */
	b->offset = 0;
	return 0;
}

/* ---- the muser tests ----------------------------------------------- */

struct rw_op {
	struct bench *b;
	bool write;
	uint32_t v;
};

static int rw_once(void *arg)
{
	struct rw_op *o = arg;
	struct bench *b = o->b;

	if (o->write)
		return mu_client_region_write(b->c, (unsigned)b->region,
					      (uint64_t)b->offset, &o->v, 4);
	return mu_client_region_read(b->c, (unsigned)b->region,
				     (uint64_t)b->offset, &o->v, 4);
}

static int run_rw(struct bench *b, bool write, struct result *r)
{
	struct rw_op o = {b, write, b->wval};

	return res_run_for(r, b->seconds, 4, rw_once, &o);
}

static int run_posted(struct bench *b, struct result *r)
{
	uint64_t start = now_ns(), end = start + (uint64_t)(b->seconds * 1e9);
	uint64_t ops = 0;
	int ret;

	do {
		for (int i = 0; i < 256; i++) {
			ret = mu_client_region_write_posted(
				b->c, (unsigned)b->region, (uint64_t)b->offset,
				&b->wval, 4);
			if (ret)
				return ret;
		}
		ops += 256;
	} while (now_ns() < end);
	ret = mu_client_flush(b->c);
	if (ret)
		return ret;
	res_add(r, ops, ops * 4, now_ns() - start);
	return 0;
}

static void fail(struct result *r, const char *what, int err)
{
	r->skipped = true;
	if (!r->note[0])
		snprintf(r->note, sizeof(r->note), "%s: %s", what,
			 strerror(-err));
}

static void run_test(struct bench *b, int i)
{
	struct result *r = &b->res[i];
	int ret;

	if (r->skipped)
		return;
	switch (i) {
	case T_RAW_RD:
		ret = raw_pingpong(&b->echo, 32, 36, b->seconds, r);
		break;
	case T_RAW_WR:
		ret = raw_pingpong(&b->echo, 36, 32, b->seconds, r);
		break;
	case T_READ:
	case T_WRITE:
		ret = run_rw(b, i == T_WRITE, r);
		break;
	case T_POSTED:
		ret = run_posted(b, r);
		break;
	case T_RAW_STREAM:
		ret = raw_stream(&b->sink, b->seconds, r);
		break;
	default:
		if (i < T_REMOTE) {
			ret = bench_memcpy(mem_sizes[i - T_MEMCPY], b->seconds,
					   r);
		} else if (i < T_MSG) {
			ret = raw_remote_copy(&b->copier,
					      mem_sizes[i - T_REMOTE],
					      b->seconds, r);
		} else if (i < T_MMAP) {
			int k = i - T_MSG;

			ret = dmat_run(b->dma, false,
				       k < 3 ? DMAT_OP_FILL : DMAT_OP_COPY,
				       msg_sizes[k % 3], b->seconds, r);
		} else {
			int k = i - T_MMAP;

			ret = dmat_run(b->dma, true,
				       k < NMEM ? DMAT_OP_FILL : DMAT_OP_COPY,
				       mem_sizes[k % NMEM], b->seconds, r);
		}
	}
	if (ret)
		fail(r, "failed", ret);
}

static const char *size_str(char *buf, size_t len, size_t sz)
{
	if (sz >= (1u << 20))
		snprintf(buf, len, "%zuM", sz >> 20);
	else
		snprintf(buf, len, "%zuK", sz >> 10);
	return buf;
}

static void setup_results(struct bench *b, const char *dma_why)
{
	static const char *const rg[] = {"BAR0", "BAR1",   "BAR2",
					 "BAR3", "BAR4",   "BAR5",
					 "ROM",	 "CONFIG", "VGA"};
	char reg[32], sz[16];

	if (b->region < 9)
		snprintf(reg, sizeof(reg), "%s+%#" PRIx64, rg[b->region],
			 (uint64_t)b->offset);
	else
		snprintf(reg, sizeof(reg), "%ld+%#" PRIx64, b->region,
			 (uint64_t)b->offset);
	for (int i = 0; i < T_COUNT; i++) {
		struct result *r = &b->res[i];
		char *n = b->names[i];
		size_t nl = sizeof(b->names[i]);

		r->name = n;
		r->floor = r->floor2 = -1;
		r->kind = RES_THROUGHPUT;
		switch (i) {
		case T_RAW_RD:
			snprintf(n, nl, "raw ping-pong 32/36 B");
			r->kind = RES_LATENCY;
			break;
		case T_RAW_WR:
			snprintf(n, nl, "raw ping-pong 36/32 B");
			r->kind = RES_LATENCY;
			break;
		case T_READ:
			snprintf(n, nl, "REGION_READ 4 B %s", reg);
			r->kind = RES_LATENCY;
			r->floor = T_RAW_RD;
			break;
		case T_WRITE:
			snprintf(n, nl, "REGION_WRITE 4 B %s", reg);
			r->kind = RES_LATENCY;
			r->floor = T_RAW_WR;
			break;
		case T_POSTED:
			snprintf(n, nl, "posted REGION_WRITE 4 B");
			r->kind = RES_RATE;
			r->floor = T_WRITE;
			break;
		case T_RAW_STREAM:
			snprintf(n, nl, "raw stream 1M chunks");
			break;
		default:
			if (i < T_REMOTE) {
				snprintf(n, nl, "memcpy %s",
					 size_str(sz, sizeof(sz),
						  mem_sizes[i - T_MEMCPY]));
			} else if (i < T_MSG) {
				snprintf(n, nl, "raw remote copy %s",
					 size_str(sz, sizeof(sz),
						  mem_sizes[i - T_REMOTE]));
				r->floor = T_MEMCPY + (i - T_REMOTE);
			} else if (i < T_MMAP) {
				int k = i - T_MSG;

				snprintf(n, nl, "msg DMA %s %s",
					 k < 3 ? "fill" : "copy",
					 size_str(sz, sizeof(sz),
						  msg_sizes[k % 3]));
				r->floor = T_RAW_STREAM;
			} else {
				int k = i - T_MMAP;

				snprintf(n, nl, "mmap DMA %s %s",
					 k < NMEM ? "fill" : "copy",
					 size_str(sz, sizeof(sz),
						  mem_sizes[k % NMEM]));
				r->floor = T_MEMCPY + k % NMEM;
				/* what the process boundary alone allows */
				r->floor2 = T_REMOTE + k % NMEM;
			}
			if (i >= T_MSG && !b->dma) {
				r->skipped = true;
				snprintf(r->note, sizeof(r->note), "%s",
					 dma_why);
			}
		}
	}
	if (b->region == MU_PCI_CONFIG_REGION_INDEX) {
		for (int i = T_WRITE; i <= T_POSTED; i++) {
			b->res[i].skipped = true;
			snprintf(b->res[i].note, sizeof(b->res[i].note),
				 "no writable region found (use --region)");
		}
	}
}

/* ---- main -------------------------------------------------------------- */

static int connect_server(struct bench *b)
{
	struct mu_client_opts o = {.struct_size = sizeof(o),
				   .timeout_ms = b->timeout_ms,
				   .log_level = 3};
	int ret;

	if (b->spawn) {
		ret = spawn_server(&b->sp, b->spawn, b->server_args,
				   b->nserver_args, &b->c, &o);
		if (ret < 0)
			fprintf(stderr, PROG ": cannot start %s: %s\n",
				b->spawn, strerror(-ret));
		b->socket = b->sp.sock;
		return ret;
	}
	ret = mu_client_connect(&b->c, b->socket, &o);
	if (ret < 0)
		fprintf(stderr, PROG ": cannot connect to %s: %s\n", b->socket,
			strerror(-ret));
	return ret;
}

static int count_reads(struct bench *b)
{
	uint32_t v;

	for (uint64_t i = 0; i < b->count_reads; i++) {
		int ret = mu_client_region_read(b->c, (unsigned)b->region,
						(uint64_t)b->offset, &v, 4);

		if (ret < 0) {
			fprintf(stderr, PROG ": read %" PRIu64 ": %s\n", i,
				strerror(-ret));
			return 1;
		}
	}
	printf("%" PRIu64 " REGION_READs done\n", b->count_reads);
	return 0;
}

static int parse_args(struct bench *b, int argc, char **argv)
{
	static const struct option lopts[] = {
		{"spawn", required_argument, NULL, 's'},
		{"server-arg", required_argument, NULL, 'a'},
		{"rounds", required_argument, NULL, 'n'},
		{"seconds", required_argument, NULL, 'S'},
		{"region", required_argument, NULL, 'R'},
		{"offset", required_argument, NULL, 'O'},
		{"json", no_argument, NULL, 'j'},
		{"timeout", required_argument, NULL, 't'},
		{"count-reads", required_argument, NULL, 'C'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	char *end;
	int opt;

	while ((opt = getopt_long(argc, argv, "s:a:n:S:jt:h", lopts, NULL)) !=
	       -1) {
		errno = 0;
		switch (opt) {
		case 's':
			b->spawn = optarg;
			break;
		case 'a':
			if (b->nserver_args == SPAWN_MAX_ARGS)
				goto bad;
			b->server_args[b->nserver_args++] = optarg;
			break;
		case 'n':
			b->rounds = (unsigned)strtoul(optarg, &end, 0);
			if (*end || !b->rounds || b->rounds > 1000)
				goto bad;
			break;
		case 'S':
			b->seconds = strtod(optarg, &end);
			if (*end || !(b->seconds > 0 && b->seconds <= 3600))
				goto bad;
			break;
		case 'R':
			if (parse_region(optarg, &b->region))
				goto bad;
			break;
		case 'O':
			b->offset = (int64_t)strtoull(optarg, &end, 0);
			if (*end || !*optarg || errno || b->offset < 0)
				goto bad;
			break;
		case 'j':
			b->json = true;
			break;
		case 't':
			b->timeout_ms = (int)strtol(optarg, &end, 0);
			if (*end || errno)
				goto bad;
			break;
		case 'C':
			b->count_reads = strtoull(optarg, &end, 0);
			if (*end || errno || !b->count_reads)
				goto bad;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			return -EINVAL;
		}
	}
	if (b->nserver_args && !b->spawn)
		goto usage;
	if (!b->spawn && optind + 1 == argc)
		b->socket = argv[optind];
	else if (!(b->spawn && optind == argc))
		goto usage;
	return 0;
bad:
	fprintf(stderr, PROG ": bad value for option -%c: '%s'\n", opt, optarg);
	return -EINVAL;
usage:
	usage(stderr);
	return -EINVAL;
}

int main(int argc, char **argv)
{
	static struct bench b = {
		.rounds = 5,
		.seconds = 0.25,
		.timeout_ms = 5000,
		.region = -1,
	};
	struct mu_client_session s = {0};
	char hdr[512], why[128] = "", *h = hdr;
	uint32_t id = 0;
	int ret, status = 0;

	if (parse_args(&b, argc, argv))
		return 2;
	signal(SIGPIPE, SIG_IGN);
	/* forked before connecting: the floors' peers hold no server fd */
	if (!b.count_reads &&
	    ((ret = raw_echo_start(&b.echo)) < 0 ||
	     (ret = raw_sink_start(&b.sink)) < 0 ||
	     (ret = raw_copier_start(&b.copier, mem_sizes[NMEM - 1])) < 0)) {
		fprintf(stderr, PROG ": raw peers: %s\n", strerror(-ret));
		return 1;
	}
	if (connect_server(&b) < 0) {
		status = 1;
		goto out;
	}
	pick_register(&b);
	if (b.count_reads) {
		status = count_reads(&b);
		goto out;
	}
	if (b.region != MU_PCI_CONFIG_REGION_INDEX &&
	    (ret = mu_client_region_read(b.c, (unsigned)b.region,
					 (uint64_t)b.offset, &b.wval, 4)) < 0) {
		fprintf(stderr,
			PROG ": reading region %ld offset %#" PRIx64 ": %s\n",
			b.region, (uint64_t)b.offset, strerror(-ret));
		status = 1;
		goto out;
	}
	ret = dmat_open(b.c, &b.dma, why, sizeof(why));
	if (ret < 0 && !why[0])
		snprintf(why, sizeof(why), "dma-test setup: %s",
			 strerror(-ret));
	setup_results(&b, why);

	mu_client_get_session(b.c, &s);
	mu_client_region_read(b.c, MU_PCI_CONFIG_REGION_INDEX, 0, &id, 4);
	h += snprintf(h, sizeof(hdr) / 2,
		      PROG ": %s: vfio-user %u.%u, device %04x:%04x, twin "
			   "socket %s, write_multiple %s",
		      b.spawn ? b.spawn : b.socket, s.major, s.minor,
		      id & 0xffff, id >> 16, s.twin_socket ? "yes" : "no",
		      s.write_multiple ? "yes" : "no");
	snprintf(h, sizeof(hdr) / 2,
		 "\n%u rounds x %.2f s per test, interleaved; ratio = median "
		 "latency, ops/s or bytes/s over the floor named after it",
		 b.rounds, b.seconds);

	for (unsigned round = 0; round < b.rounds; round++) {
		for (int i = 0; i < T_COUNT; i++) {
			run_test(&b, i);
			if (!mu_client_is_connected(b.c)) {
				fprintf(stderr, PROG ": server went away\n");
				status = 1;
				goto report;
			}
		}
	}
report:
	res_print(b.res, T_COUNT, b.json, hdr);
	for (int i = 0; i < T_COUNT; i++)
		res_free(&b.res[i]);
out:
	dmat_close(b.dma);
	if (b.c)
		mu_client_destroy(b.c);
	if (b.spawn)
		spawn_stop(&b.sp);
	raw_stop(&b.echo);
	raw_stop(&b.sink);
	raw_stop(&b.copier);
	return status;
}
