/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * muser-migrate-demo: live migration you can watch. Two muser-dma-test
 * processes; a tiny VMM keeps the first busy with DMA jobs on its RAM,
 * moves the device to the second mid-load with mu_client_migrate(),
 * prints the timeline, carries on with the load on the destination, and
 * then proves nothing was lost: the RAM copy made from dirty pages equals
 * the source RAM, device registers and BAR4 are equal on both sides, every
 * job started completed, and a checksum job on the destination agrees
 * with the RAM. Last, DMA throughput with dirty logging off and on.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../bench/bench.h"
#include "dma-test.h"
#include "vmm.h"

struct demo {
	struct vmm vm;
	uint64_t t0;
	uint64_t last_ns;
};

static double ms(uint64_t ns)
{
	return (double)ns / 1e6;
}

static int on_step(void *opaque, enum mu_migrate_step s,
		   const struct mu_migrate_stats *st)
{
	struct demo *d = opaque;
	uint64_t t = now_ns();

	const char *name = mu_client_migrate_step_name(s);

	printf("  %8.2f ms  %s", ms(t - d->t0), name);
	switch (s) {
	case MU_MIGRATE_STEP_LOGGING:
		printf("%*s", (int)(10 - strlen(name)), "");
		if (st->dirty_logging)
			printf("  dirty log on, %llu pages of %llu B copied",
			       (unsigned long long)st->ram_pages,
			       (unsigned long long)st->page_size);
		else
			printf("  no dirty log: RAM moves at the stop");
		break;
	case MU_MIGRATE_STEP_ROUND:
		printf("%*s", (int)(10 - strlen(name)), "");
		printf("  round %u: %llu B device data, %llu dirty pages",
		       st->rounds,
		       (unsigned long long)st->round_bytes[st->rounds - 1],
		       (unsigned long long)st->round_dirty[st->rounds - 1]);
		break;
	case MU_MIGRATE_STEP_STOPPED:
		printf("%*s", (int)(10 - strlen(name)), "");
		printf("  vCPU paused, jobs done so far: %llu",
		       (unsigned long long)d->vm.done);
		break;
	case MU_MIGRATE_STEP_DRAINED:
		printf("%*s", (int)(10 - strlen(name)), "");
		printf("  %llu B device data, %llu last dirty pages",
		       (unsigned long long)st->stopcopy_bytes,
		       (unsigned long long)st->final_dirty);
		break;
	default:
		break;
	}
	printf("\n");
	d->last_ns = t;
	return 0;
}

/* Bitwise on purpose: checks the device's table-driven CRC independently. */
static uint32_t crc32_of(const uint8_t *p, size_t n)
{
	uint32_t c = 0xffffffffu;

	while (n--) {
		c ^= *p++;
		for (int k = 0; k < 8; k++)
			c = c >> 1 ^ (0xedb88320u & -(c & 1));
	}
	return ~c;
}

static int check(bool ok, const char *what)
{
	printf("  [%s] %s\n", ok ? " ok " : "FAIL", what);
	return ok ? 0 : 1;
}

/* One 0.2 s run of 1 MiB FILL jobs: MB/s, or -1. */
static double throughput(mu_client_t *c)
{
	uint64_t t0 = now_ns(), bytes = 0;

	while (now_ns() - t0 < 200000000ull) {
		if (vmm_job(c, DMAT_OP_FILL, 0, VMM_IOVA, 1 << 20,
			    (uint32_t)bytes) < 0)
			return -1;
		bytes += 1 << 20;
	}
	return (double)bytes / ((double)(now_ns() - t0) / 1e9) / 1e6;
}

/* Off and on alternate, five runs each, best of each: the machine's
 * drift hits both alike. */
static int bench_logging(mu_client_t *c, struct vmm *v, bool by_msg)
{
	const struct mu_dma_logging_range rg = {VMM_IOVA, v->ram_size};
	double off = 0, on = 0, x;
	int r;

	printf("\nDMA throughput with dirty page logging (1 MiB FILL jobs, "
	       "%s):\n",
	       by_msg ? "DMA by message" : "mapped RAM");
	for (int i = 0; i < 5; i++) {
		if ((x = throughput(c)) < 0)
			return 1;
		off = x > off ? x : off;
		r = mu_client_dma_log_start(c, 4096, &rg, 1, NULL);
		if (r < 0) {
			fprintf(stderr, PROG ": logging: %s\n", strerror(-r));
			return 1;
		}
		x = throughput(c);
		mu_client_dma_log_stop(c);
		if (x < 0)
			return 1;
		on = x > on ? x : on;
	}
	printf("  logging off %8.1f MB/s\n  logging on  %8.1f MB/s\n"
	       "  ratio on/off %.3f\n",
	       off, on, on / off);
	return 0;
}

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: " PROG " [OPTION]... [--dma-test=PATH]\n"
		"Migrate a busy muser-dma-test between two processes and "
		"prove nothing was lost.\n\n"
		"  --dma-test=PATH   the device program (default: next to "
		"this one in the build tree, or installed beside it)\n"
		"  --ram=MiB         guest RAM (64)\n"
		"  --load=MS         load before the migration starts (500)\n"
		"  --message-dma     map RAM without fds: DMA by message\n"
		"  --no-bench        skip the logging throughput figures\n"
		"  -h, --help        this text\n");
}

/* The build tree's muser-dma-test, else the one installed next to us. */
static const char *default_dmat(const char *argv0, char *buf, size_t len)
{
	const char *slash = strrchr(argv0, '/');
	int n = slash ? (int)(slash - argv0) : 1;
	const char *dir = slash ? argv0 : ".";

	snprintf(buf, len, "%.*s/../../samples/muser-dma-test", n, dir);
	if (access(buf, X_OK) == 0)
		return buf;
	snprintf(buf, len, "%.*s/muser-dma-test", n, dir);
	return buf;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"dma-test", required_argument, NULL, 'd'},
		{"ram", required_argument, NULL, 'r'},
		{"load", required_argument, NULL, 'l'},
		{"message-dma", no_argument, NULL, 'm'},
		{"no-bench", no_argument, NULL, 'n'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	static struct demo d;
	static struct vmm_snapshot ss, ds;
	char path[4096];
	const char *dmat = NULL;
	unsigned long ram_mib = 64, load_ms = 500;
	bool by_msg = false, bench = true;
	struct spawn sp[2];
	mu_client_t *src = NULL, *dst = NULL;
	struct mu_migrate_stats st;
	int o, r, fails = 0;

	setvbuf(stdout, NULL, _IOLBF, 0);
	while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (o) {
		case 'd':
			dmat = optarg;
			break;
		case 'r':
			ram_mib = strtoul(optarg, NULL, 0);
			break;
		case 'l':
			load_ms = strtoul(optarg, NULL, 0);
			break;
		case 'm':
			by_msg = true;
			break;
		case 'n':
			bench = false;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc || ram_mib < 1 || ram_mib > 4096) {
		usage(stderr);
		return 2;
	}
	if (!dmat)
		dmat = default_dmat(argv[0], path, sizeof(path));

	if ((r = vmm_init(&d.vm, ram_mib << 20, 0x5eed)) < 0) {
		fprintf(stderr, PROG ": RAM: %s\n", strerror(-r));
		return 1;
	}
	if ((r = spawn_server(&sp[0], dmat, NULL, 0, &src, NULL)) < 0 ||
	    (r = spawn_server(&sp[1], dmat, NULL, 0, &dst, NULL)) < 0) {
		fprintf(stderr, PROG ": %s: %s\n", dmat, strerror(-r));
		if (src) {
			mu_client_destroy(src);
			spawn_stop(&sp[0]);
		}
		vmm_fini(&d.vm);
		return 1;
	}
	printf("source pid %d, destination pid %d, %lu MiB of RAM%s\n",
	       (int)sp[0].pid, (int)sp[1].pid, ram_mib,
	       by_msg ? " (DMA by message)" : "");
	/* dst is prepared like src while it is RUNNING (see client.h). */
	if ((r = vmm_map(&d.vm, src, false, by_msg)) < 0 ||
	    (r = vmm_map(&d.vm, dst, true, by_msg)) < 0 ||
	    (r = vmm_fill_bar4(src, 42)) < 0 ||
	    (r = vmm_load_start(&d.vm, src)) < 0) {
		fprintf(stderr, PROG ": setup: %s\n", strerror(-r));
		goto out;
	}
	usleep((useconds_t)load_ms * 1000);
	printf("load running: %llu jobs done on the source\n\ntimeline:\n",
	       (unsigned long long)d.vm.done);

	const struct mu_dma_logging_range rg = {VMM_IOVA, d.vm.ram_size};
	const struct mu_migrate_config cfg = {
		.struct_size = sizeof(cfg),
		.ranges = &rg,
		.nr_ranges = 1,
		.opaque = &d,
		.copy_ram = vmm_copy_ram,
		.stop_vm = vmm_stop_vm,
		.resume_vm = vmm_resume_vm,
		.step = on_step,
	};
	/* The callbacks' opaque is the VMM; struct demo starts with it. */
	d.t0 = now_ns();
	r = mu_client_migrate(src, dst, &cfg, &st);
	if (r < 0) {
		fprintf(stderr, PROG ": migration failed: %s\n", strerror(-r));
		goto out;
	}
	printf("\n%u pre-copy rounds, %llu B device data (%llu in pre-copy), "
	       "%llu RAM pages copied\n",
	       st.rounds,
	       (unsigned long long)(st.precopy_bytes + st.stopcopy_bytes),
	       (unsigned long long)st.precopy_bytes,
	       (unsigned long long)st.ram_pages);
	printf("downtime %.2f ms (vCPU paused to destination RUNNING), "
	       "total %.2f ms\n\n",
	       ms(st.downtime_ns), ms(st.total_ns));

	printf("proof:\n");
	fails += check(!memcmp(d.vm.src_ram, d.vm.dst_ram, d.vm.ram_size),
		       "RAM built from the dirty pages equals the source RAM");
	r = vmm_snapshot(src, &ss);
	if (r == 0)
		r = vmm_snapshot(dst, &ds);
	fails += check(r == 0 && !vmm_snapshot_diff(&ss, &ds),
		       "registers and BAR4 equal on both sides");
	uint64_t before = d.vm.done;
	vmm_resume_on(&d.vm, dst);
	usleep((useconds_t)load_ms * 1000);
	vmm_pause(&d.vm);
	r = vmm_load_stop(&d.vm);
	if (r == 0) /* let the last job finish */
		r = vmm_finish(&d.vm, dst);
	printf("  load went on at the destination: %llu more jobs\n",
	       (unsigned long long)(d.vm.done - before));
	fails += check(r == 0, "no DMA job failed on either side");
	uint32_t completed = 0, result = 0;
	mu_client_region_read(dst, 0, DMAT_REG_COMPLETED, &completed, 4);
	fails += check(completed == d.vm.done,
		       "every job started completed, counted on the "
		       "destination");
	uint32_t sum_len =
		(uint32_t)(d.vm.ram_size < DMAT_MAX_LEN ? d.vm.ram_size
							: DMAT_MAX_LEN);
	r = vmm_job(dst, DMAT_OP_CHECKSUM, VMM_IOVA, 0, sum_len, 0);
	mu_client_region_read(dst, 0, DMAT_REG_RESULT, &result, 4);
	fails += check(r == 0 && result == crc32_of(d.vm.dst_ram, sum_len),
		       "the destination's checksum of RAM matches ours");
	if (bench && !fails)
		fails += bench_logging(dst, &d.vm, by_msg);
	r = fails ? -EIO : 0;
	printf("\n%s\n", fails ? "SOMETHING WAS LOST" : "nothing was lost");
out:
	vmm_load_stop(&d.vm);
	mu_client_destroy(src);
	mu_client_destroy(dst);
	spawn_stop(&sp[0]);
	spawn_stop(&sp[1]);
	vmm_fini(&d.vm);
	return r < 0 ? 1 : 0;
}
