/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Live migration between processes: muser-dma-test moved under load with
 * mu_client_migrate() (RAM copied from dirty pages must equal the source,
 * device state must be equal), abandoned at every step, with either
 * process killed at every step, hostile streams on MIG_DATA_WRITE, and
 * the gpio board moved with its lines and interrupt state.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "dma-test.h"
#include "harness.h"
#include "vmm.h"

#define RAM_SIZE (8u << 20)
#define HDR 16u /* a stream record's header (samples/common/migstream.h) */

static const char *dmat_bin, *gpio_bin;

struct pair {
	struct server s[2];
	mu_client_t *c[2];
	struct vmm vm;
};

static void pair_start(struct pair *p, bool by_message)
{
	static const char *const args[] = {"--quiet", NULL};

	memset(p, 0, sizeof(*p));
	assert_int_equal(vmm_init(&p->vm, RAM_SIZE, 7), 0);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(server_start(&p->s[i], dmat_bin, args), 0);
		assert_int_equal(client_connect(p->s[i].sock, &p->c[i]), 0);
		assert_int_equal(vmm_map(&p->vm, p->c[i], i == 1, by_message),
				 0);
	}
	assert_int_equal(vmm_fill_bar4(p->c[0], 99), 0);
}

static void pair_stop(struct pair *p)
{
	vmm_load_stop(&p->vm);
	for (int i = 0; i < 2; i++) {
		mu_client_destroy(p->c[i]);
		if (p->s[i].pid > 0)
			server_stop(&p->s[i], SIGTERM);
		server_cleanup(&p->s[i]);
	}
	vmm_fini(&p->vm);
}

static uint32_t mig_state(mu_client_t *c)
{
	uint32_t s = 0xdead;

	assert_int_equal(mu_client_mig_get_state(c, &s), 0);
	return s;
}

static struct mu_dma_logging_range ram_range = {VMM_IOVA, RAM_SIZE};

static struct mu_migrate_config
config(struct vmm *v, int (*step)(void *, enum mu_migrate_step,
				  const struct mu_migrate_stats *))
{
	return (struct mu_migrate_config){
		.struct_size = sizeof(struct mu_migrate_config),
		.ranges = &ram_range,
		.nr_ranges = 1,
		.opaque = v,
		.copy_ram = vmm_copy_ram,
		.stop_vm = vmm_stop_vm,
		.resume_vm = vmm_resume_vm,
		.step = step,
	};
}

/* The jobs keep completing on c (the load is alive and unharmed). */
static void expect_progress(struct vmm *v)
{
	uint64_t before = v->done;

	for (int i = 0; i < 500 && v->done < before + 3 && !v->err; i++)
		usleep(10000);
	assert_int_equal(v->err, 0);
	assert_true(v->done >= before + 3);
}

/* After a migration: RAM, registers and BAR4 equal on both sides, then
 * the load carries on at the destination and every job completes. */
static void expect_moved(struct pair *p)
{
	static struct vmm_snapshot a, b;
	uint32_t completed = 0;

	assert_int_equal(mig_state(p->c[0]), MU_MIG_STATE_STOP);
	assert_int_equal(mig_state(p->c[1]), MU_MIG_STATE_RUNNING);
	assert_memory_equal(p->vm.src_ram, p->vm.dst_ram, RAM_SIZE);
	assert_int_equal(vmm_snapshot(p->c[0], &a), 0);
	assert_int_equal(vmm_snapshot(p->c[1], &b), 0);
	assert_null(vmm_snapshot_diff(&a, &b));
	vmm_resume_on(&p->vm, p->c[1]);
	expect_progress(&p->vm);
	vmm_pause(&p->vm);
	assert_int_equal(vmm_load_stop(&p->vm), 0);
	assert_int_equal(vmm_finish(&p->vm, p->c[1]), 0);
	assert_int_equal(mu_client_region_read(p->c[1], 0, DMAT_REG_COMPLETED,
					       &completed, 4),
			 0);
	assert_int_equal(completed, (uint32_t)p->vm.done);
}

static void live(bool by_message)
{
	struct pair p;
	struct mu_migrate_stats st;
	struct mu_migrate_config cfg;

	pair_start(&p, by_message);
	cfg = config(&p.vm, NULL);
	assert_int_equal(vmm_load_start(&p.vm, p.c[0]), 0);
	expect_progress(&p.vm);
	assert_int_equal(mu_client_migrate(p.c[0], p.c[1], &cfg, &st), 0);
	assert_true(st.dirty_logging);
	assert_int_equal(st.page_size, 4096);
	assert_true(st.rounds >= 1);
	/* BAR4 (64 KiB) went in pre-copy, not in the downtime. */
	assert_true(st.precopy_bytes >= 0x10000);
	assert_true(st.stopcopy_bytes < 0x1000);
	/* The first copy was whole; the rest came from the dirty log. */
	assert_true(st.ram_pages >= RAM_SIZE / 4096);
	expect_moved(&p);
	pair_stop(&p);
}

static void test_live_mapped(void **state)
{
	(void)state;
	live(false);
}

/* RAM without fds: every device write is a DMA_WRITE message, which the
 * server's library logs. */
static void test_live_by_message(void **state)
{
	(void)state;
	live(true);
}

/* ---- abandoned migrations ----------------------------------------------- */

static enum mu_migrate_step fail_at;
static struct pair *victim_pair;
static int victim; /* -1: abort by returning an error; 0 src, 1 dst: kill */

static int step_fail(void *opaque, enum mu_migrate_step s,
		     const struct mu_migrate_stats *st)
{
	(void)opaque, (void)st;
	if (s != fail_at)
		return 0;
	if (victim < 0)
		return -ECANCELED;
	if (victim_pair->s[victim].pid <= 0)
		return 0; /* already dead (ROUND comes once per round) */
	/* The process dies; the next request to it fails. */
	assert_int_equal(server_stop(&victim_pair->s[victim], SIGKILL),
			 128 + SIGKILL);
	victim_pair->s[victim].pid = 0;
	return 0;
}

static void test_abort_every_step(void **state)
{
	struct pair p;
	struct mu_migrate_config cfg;

	(void)state;
	pair_start(&p, false);
	cfg = config(&p.vm, step_fail);
	victim = -1;
	assert_int_equal(vmm_load_start(&p.vm, p.c[0]), 0);
	for (fail_at = MU_MIGRATE_STEP_BEGIN; fail_at <= MU_MIGRATE_STEP_LOADED;
	     fail_at++) {
		uint64_t bitmap[4];

		print_message("abandon at %s\n",
			      mu_client_migrate_step_name(fail_at));
		assert_int_equal(mu_client_migrate(p.c[0], p.c[1], &cfg, NULL),
				 -ECANCELED);
		/* Source running the load again, logging off, destination
		 * reset to a fresh RUNNING device. */
		assert_int_equal(mig_state(p.c[0]), MU_MIG_STATE_RUNNING);
		assert_int_equal(mig_state(p.c[1]), MU_MIG_STATE_RUNNING);
		assert_true(mu_client_dma_log_report(p.c[0], VMM_IOVA, 4096,
						     4096, bitmap,
						     sizeof(bitmap)) < 0);
		expect_progress(&p.vm);
	}
	/* And then it can still be done. */
	cfg.step = NULL;
	assert_int_equal(mu_client_migrate(p.c[0], p.c[1], &cfg, NULL), 0);
	expect_moved(&p);
	pair_stop(&p);
}

static void kill_at(int who)
{
	struct mu_migrate_config cfg;

	victim = who;
	for (fail_at = MU_MIGRATE_STEP_BEGIN; fail_at <= MU_MIGRATE_STEP_LOADED;
	     fail_at++) {
		struct pair p;
		int r;

		print_message("kill %s at %s\n", who ? "dst" : "src",
			      mu_client_migrate_step_name(fail_at));
		pair_start(&p, false);
		victim_pair = &p;
		cfg = config(&p.vm, step_fail);
		assert_int_equal(vmm_load_start(&p.vm, p.c[0]), 0);
		r = mu_client_migrate(p.c[0], p.c[1], &cfg, NULL);
		if (who == 0 && fail_at >= MU_MIGRATE_STEP_DRAINED) {
			/* Everything had moved: the migration stands and the
			 * destination runs the device. */
			assert_int_equal(r, 0);
			vmm_load_stop(&p.vm);
			assert_int_equal(mig_state(p.c[1]),
					 MU_MIG_STATE_RUNNING);
			pair_stop(&p);
			continue;
		}
		assert_true(r < 0);
		if (who == 1) {
			/* The source goes on as if nothing happened. */
			assert_int_equal(mig_state(p.c[0]),
					 MU_MIG_STATE_RUNNING);
			expect_progress(&p.vm);
		} else {
			/* Nothing to go back to; dst is a fresh device. */
			vmm_load_stop(&p.vm);
			assert_int_equal(mig_state(p.c[1]),
					 MU_MIG_STATE_RUNNING);
		}
		pair_stop(&p);
	}
}

static void test_kill_source(void **state)
{
	(void)state;
	kill_at(0);
}

static void test_kill_destination(void **state)
{
	(void)state;
	kill_at(1);
}

/* ---- hostile streams ------------------------------------------------------
 */

static void put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get_le32(const uint8_t *p)
{
	return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Offsets of the stream's records (up to max); returns how many. */
static unsigned records(const uint8_t *s, size_t len, size_t *off, unsigned max)
{
	unsigned n = 0;

	for (size_t o = 0; o + HDR <= len && n < max;
	     o += HDR + get_le32(s + o + 8))
		off[n++] = o;
	return n;
}

/* Fix a record's CRC after its payload was changed: a lie, not noise. */
static void reseal(uint8_t *rec)
{
	put_le32(rec + 12, crc32_ref(rec + HDR, get_le32(rec + 8)));
}

/* Load stream into c; 0 if the device took it (RESUMING -> STOP). */
static int load(mu_client_t *c, const uint8_t *s, size_t len)
{
	int r;

	assert_int_equal(mu_client_mig_set_state(c, MU_MIG_STATE_RESUMING), 0);
	r = mu_client_mig_write(c, s, len);
	if (r == 0)
		r = mu_client_mig_set_state(c, MU_MIG_STATE_STOP);
	return r;
}

static void test_hostile_streams(void **state)
{
	enum {
		TRUNC_HALF,
		TRUNC_END,
		EMPTY,
		HUGE_LEN,
		BAD_CRC,
		WRONG_DEVICE,
		WRONG_FORMAT,
		BAD_REGS,
		AFTER_END,
		TWICE,
		UNKNOWN_TYPE,
		GARBAGE,
		NCASES
	};
	static const char *const names[] = {
		"truncated",	  "no END",	     "empty",
		"huge record",	  "bad CRC",	     "another device's",
		"unknown format", "lying registers", "data after END",
		"stream twice",	  "unknown record",  "garbage"};
	static uint8_t good[1 << 20], bad[(1 << 21) + 64];
	static struct vmm_snapshot want, got;
	struct pair p;
	size_t len = 0, off[64];
	unsigned nrec;
	ssize_t n;

	(void)state;
	pair_start(&p, false);
	assert_int_equal(vmm_job(p.c[0], DMAT_OP_FILL, 0, VMM_IOVA, 4096, 5),
			 0);
	assert_int_equal(mu_client_region_write(p.c[0], 0, DMAT_REG_SCRATCH,
						&(uint32_t){0x5ca1ab1e}, 4),
			 0);
	/* A good stream from the source, by hand. */
	assert_int_equal(
		mu_client_mig_set_state(p.c[0], MU_MIG_STATE_STOP_COPY), 0);
	do {
		n = mu_client_mig_read(p.c[0], good + len, sizeof(good) - len);
		assert_true(n >= 0);
		len += (size_t)n;
	} while (n > 0);
	assert_int_equal(mu_client_mig_set_state(p.c[0], MU_MIG_STATE_STOP), 0);
	assert_int_equal(vmm_snapshot(p.c[0], &want), 0);
	nrec = records(good, len, off, 64);
	assert_true(nrec >= 3); /* BEGIN, ..., END */
	assert_int_equal(off[nrec - 1] + HDR, len);

	for (int k = 0; k < NCASES; k++) {
		size_t blen = len;
		uint8_t *last = bad + off[nrec - 1];

		print_message("%s stream\n", names[k]);
		memcpy(bad, good, len);
		switch (k) {
		case TRUNC_HALF:
			blen = len / 2;
			break;
		case TRUNC_END:
			blen = off[nrec - 1];
			break;
		case EMPTY:
			blen = 0;
			break;
		case HUGE_LEN: /* a record that claims 2 GiB */
			put_le32(bad + off[1] + 8, 0x80000000u);
			break;
		case BAD_CRC:
			bad[off[1] + HDR + 7] ^= 0x40;
			break;
		case WRONG_DEVICE: /* BEGIN names another device */
			put_le32(bad + HDR, get_le32(bad + HDR) ^ 1);
			reseal(bad);
			break;
		case WRONG_FORMAT:
			put_le32(bad + HDR + 4, 99);
			reseal(bad);
			break;
		case BAD_REGS: /* the register record: reserved bits set */
			for (unsigned i = 1; i + 1 < nrec; i++) {
				uint8_t *r = bad + off[i];

				if (get_le32(r + 8) != 4 + 4096) {
					r[HDR + get_le32(r + 8) - 1] = 0xff;
					reseal(r);
				}
			}
			break;
		case AFTER_END:
			memcpy(bad + len, good + off[1], HDR + 8);
			blen = len + HDR + 8;
			break;
		case TWICE:
			memcpy(bad + len, good, len);
			blen = 2 * len;
			break;
		case UNKNOWN_TYPE: /* END turned into type 0x7777 */
			last[4] = 0x77, last[5] = 0x77;
			break;
		case GARBAGE:
			for (size_t i = 0; i < 4096; i++)
				bad[i] = (uint8_t)(i * 131 + 7);
			blen = 4096;
			break;
		}
		assert_true(load(p.c[1], bad, blen) < 0);
		/* Refused; a reset makes it a fresh, working device. */
		assert_int_equal(mu_client_reset(p.c[1]), 0);
		assert_int_equal(mig_state(p.c[1]), MU_MIG_STATE_RUNNING);
		assert_int_equal(
			vmm_job(p.c[1], DMAT_OP_FILL, 0, VMM_IOVA, 4096, 9), 0);
		assert_int_equal(mu_client_reset(p.c[1]), 0);
	}
	/* The good stream still loads, all of it. */
	assert_int_equal(load(p.c[1], good, len), 0);
	assert_int_equal(mu_client_mig_set_state(p.c[1], MU_MIG_STATE_RUNNING),
			 0);
	assert_int_equal(vmm_snapshot(p.c[1], &got), 0);
	assert_null(vmm_snapshot_diff(&want, &got));
	pair_stop(&p);
}

/* What mu_client_migrate() refuses before touching anything. */
static void test_bad_config(void **state)
{
	struct pair p;
	struct mu_migrate_config cfg, bad;
	const struct mu_dma_logging_range wrap = {UINT64_MAX - 4095, 8192};

	(void)state;
	pair_start(&p, false);
	cfg = config(&p.vm, NULL);
	assert_int_equal(mu_client_migrate(NULL, p.c[1], &cfg, NULL), -EINVAL);
	assert_int_equal(mu_client_migrate(p.c[0], p.c[0], &cfg, NULL),
			 -EINVAL);
	assert_int_equal(mu_client_migrate(p.c[0], p.c[1], NULL, NULL),
			 -EINVAL);
	bad = cfg;
	bad.struct_size = 8;
	assert_int_equal(mu_client_migrate(p.c[0], p.c[1], &bad, NULL),
			 -EINVAL);
	bad = cfg;
	bad.page_size = 3000;
	assert_int_equal(mu_client_migrate(p.c[0], p.c[1], &bad, NULL),
			 -EINVAL);
	bad = cfg;
	bad.max_rounds = MU_MIGRATE_MAX_ROUNDS + 1;
	assert_int_equal(mu_client_migrate(p.c[0], p.c[1], &bad, NULL),
			 -EINVAL);
	bad = cfg;
	bad.copy_ram = NULL;
	assert_int_equal(mu_client_migrate(p.c[0], p.c[1], &bad, NULL),
			 -EINVAL);
	bad = cfg;
	bad.ranges = &wrap;
	assert_int_equal(mu_client_migrate(p.c[0], p.c[1], &bad, NULL),
			 -EINVAL);
	/* A source not RUNNING is not migrated. */
	assert_int_equal(mu_client_mig_set_state(p.c[0], MU_MIG_STATE_STOP), 0);
	assert_int_equal(mu_client_migrate(p.c[0], p.c[1], &cfg, NULL), -EBUSY);
	/* Nothing changed on either side. */
	assert_int_equal(mig_state(p.c[0]), MU_MIG_STATE_STOP);
	assert_int_equal(mig_state(p.c[1]), MU_MIG_STATE_RUNNING);
	pair_stop(&p);
}

/* ---- the gpio board -------------------------------------------------------
 */

static uint8_t gpio_rd(mu_client_t *c, uint64_t off)
{
	uint8_t v = 0xee;

	assert_int_equal(mu_client_region_read(c, 2, off, &v, 1), 0);
	return v;
}

static void test_gpio(void **state)
{
	static const char *const args[] = {"--quiet", "--control", "@CTL@",
					   NULL};
	struct mu_migrate_config cfg = {.struct_size = sizeof(cfg)};
	struct server s[2];
	mu_client_t *c[2];
	char reply[128];
	uint8_t v;

	(void)state;
	for (int i = 0; i < 2; i++) {
		assert_int_equal(server_start(&s[i], gpio_bin, args), 0);
		assert_int_equal(client_connect(s[i].sock, &c[i]), 0);
	}
	/* Outputs 0xa55a, IRQ enabled, an input change latched. */
	v = 0x5a;
	assert_int_equal(mu_client_region_write(c[0], 2, 0, &v, 1), 0);
	v = 0xa5;
	assert_int_equal(mu_client_region_write(c[0], 2, 4, &v, 1), 0);
	(void)gpio_rd(c[0], 2); /* read of IRQ_CTL enables */
	assert_int_equal(
		ctl_cmd(s[0].ctl, "set-inputs 0x1234", reply, sizeof(reply)),
		0);
	v = gpio_rd(c[0], 6);
	assert_true(v & 0x04); /* pending */

	assert_int_equal(mu_client_migrate(c[0], c[1], &cfg, NULL), 0);
	assert_int_equal(mig_state(c[1]), MU_MIG_STATE_RUNNING);
	assert_int_equal(gpio_rd(c[1], 0), 0x5a);
	assert_int_equal(gpio_rd(c[1], 4), 0xa5);
	assert_int_equal(gpio_rd(c[1], 1), 0x34);
	assert_int_equal(gpio_rd(c[1], 5), 0x12);
	assert_int_equal(gpio_rd(c[1], 6), v);
	/* The handler's clear works on the destination. */
	v = 0;
	assert_int_equal(mu_client_region_write(c[1], 2, 1, &v, 1), 0);
	assert_int_equal(gpio_rd(c[1], 6) & 0x07, 0);
	for (int i = 0; i < 2; i++) {
		mu_client_destroy(c[i]);
		assert_int_equal(server_stop(&s[i], SIGTERM), 0);
		server_cleanup(&s[i]);
	}
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_live_mapped),
		cmocka_unit_test(test_live_by_message),
		cmocka_unit_test(test_abort_every_step),
		cmocka_unit_test(test_kill_source),
		cmocka_unit_test(test_kill_destination),
		cmocka_unit_test(test_hostile_streams),
		cmocka_unit_test(test_gpio),
		cmocka_unit_test(test_bad_config),
	};

	if (argc < 3) {
		fprintf(stderr, "usage: %s muser-dma-test muser-gpio-idio16\n",
			argv[0]);
		return 2;
	}
	dmat_bin = argv[1];
	gpio_bin = argv[2];
	signal(SIGPIPE, SIG_IGN);
	if (argc > 3) /* run only the tests matching argv[3] */
		cmocka_set_test_filter(argv[3]);
	return cmocka_run_group_tests_name("migrate", tests, NULL, NULL) ? 1
									 : 0;
}
