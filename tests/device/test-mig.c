/* SPDX-License-Identifier: BSD-3-Clause */
/* libmuser: DEVICE_FEATURE migration v2, MIG_DATA_READ/WRITE, IO_FDS. */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <cmocka.h>

#include "helpers.h"


static int feature(struct tc *c, uint32_t flags, uint32_t argsz,
		   const void *data, size_t dlen, void *out, size_t cap,
		   size_t *rl)
{
	uint8_t buf[64];
	struct mu_device_feature f = {argsz, flags};

	memcpy(buf, &f, sizeof(f));
	if (dlen)
		memcpy(buf + sizeof(f), data, dlen);
	return tc_call(c, MU_CMD_DEVICE_FEATURE, 0, buf, sizeof(f) + dlen, NULL,
		       0, out, cap, rl, NULL, NULL);
}

static int set_state(struct tc *c, uint32_t s)
{
	struct mu_feature_mig_state st = {s, 0};
	uint8_t out[16];

	return feature(
		c, MU_DEVICE_FEATURE_SET | MU_DEVICE_FEATURE_MIG_DEVICE_STATE,
		16, &st, sizeof(st), out, sizeof(out), NULL);
}

static uint32_t get_state(struct tc *c)
{
	uint8_t out[16];
	uint32_t s;

	assert_int_equal(feature(c,
				 MU_DEVICE_FEATURE_GET |
					 MU_DEVICE_FEATURE_MIG_DEVICE_STATE,
				 16, NULL, 0, out, sizeof(out), NULL),
			 0);
	memcpy(&s, out + 8, 4);
	return s;
}

static void test_features(void **state)
{
	struct tc *c = &((struct fx *)*state)->c;
	uint8_t out[32];
	uint64_t flags;
	uint32_t argsz;
	size_t rl;

	assert_int_equal(
		feature(c, MU_DEVICE_FEATURE_GET | MU_DEVICE_FEATURE_MIGRATION,
			16, NULL, 0, out, sizeof(out), &rl),
		0);
	assert_int_equal(rl, 16);
	memcpy(&flags, out + 8, 8);
	assert_int_equal(flags, MU_MIGRATION_STOP_COPY | MU_MIGRATION_PRE_COPY);
	/* argsz too small: header with the size needed */
	assert_int_equal(
		feature(c, MU_DEVICE_FEATURE_GET | MU_DEVICE_FEATURE_MIGRATION,
			8, NULL, 0, out, sizeof(out), &rl),
		0);
	assert_int_equal(rl, 8);
	memcpy(&argsz, out, 4);
	assert_int_equal(argsz, 16);
	assert_int_equal(feature(c,
				 MU_DEVICE_FEATURE_PROBE |
					 MU_DEVICE_FEATURE_GET |
					 MU_DEVICE_FEATURE_SET |
					 MU_DEVICE_FEATURE_MIG_DEVICE_STATE,
				 8, NULL, 0, NULL, 0, NULL),
			 0);
	assert_int_equal(feature(c,
				 MU_DEVICE_FEATURE_PROBE |
					 MU_DEVICE_FEATURE_DMA_LOGGING_START,
				 8, NULL, 0, NULL, 0, NULL),
			 0); /* logging comes with migration: test-dma-log.c */
	assert_int_equal(feature(c, MU_DEVICE_FEATURE_GET | 99, 8, NULL, 0,
				 NULL, 0, NULL),
			 -ENOTTY);
	/* GET and SET together without PROBE */
	assert_int_equal(
		feature(c, MU_DEVICE_FEATURE_GET | MU_DEVICE_FEATURE_SET | 1, 8,
			NULL, 0, NULL, 0, NULL),
		-EINVAL);
}

static void test_state_machine(void **state)
{
	struct fx *f = *state;
	struct tc *c = &f->c;

	assert_int_equal(get_state(c), MU_MIG_STATE_RUNNING);
	/* RUNNING -> STOP_COPY goes through STOP */
	f->t.nmig = 0;
	assert_int_equal(set_state(c, MU_MIG_STATE_STOP_COPY), 0);
	assert_int_equal(f->t.nmig, 2);
	assert_int_equal(f->t.mig_to[0], MU_MIG_STATE_STOP);
	assert_int_equal(f->t.mig_to[1], MU_MIG_STATE_STOP_COPY);
	assert_int_equal(get_state(c), MU_MIG_STATE_STOP_COPY);
	/* not allowed */
	assert_int_equal(set_state(c, MU_MIG_STATE_PRE_COPY), -EINVAL);
	assert_int_equal(set_state(c, MU_MIG_STATE_RUNNING_P2P), -EINVAL);
	assert_int_equal(set_state(c, MU_MIG_STATE_ERROR), -EINVAL);
	assert_int_equal(set_state(c, 99), -EINVAL);
	/* PRE_COPY -> STOP goes through RUNNING (no saving interior) */
	assert_int_equal(set_state(c, MU_MIG_STATE_RUNNING), 0);
	assert_int_equal(set_state(c, MU_MIG_STATE_PRE_COPY), 0);
	f->t.nmig = 0;
	assert_int_equal(set_state(c, MU_MIG_STATE_STOP), 0);
	assert_int_equal(f->t.nmig, 2);
	assert_int_equal(f->t.mig_to[0], MU_MIG_STATE_RUNNING);
	/* SET payload missing */
	assert_int_equal(feature(c,
				 MU_DEVICE_FEATURE_SET |
					 MU_DEVICE_FEATURE_MIG_DEVICE_STATE,
				 16, NULL, 0, NULL, 0, NULL),
			 -EINVAL);
	/* DEVICE_RESET returns to RUNNING */
	assert_int_equal(tc_call(c, MU_CMD_DEVICE_RESET, 0, NULL, 0, NULL, 0,
				 NULL, 0, NULL, NULL, NULL),
			 0);
	assert_int_equal(get_state(c), MU_MIG_STATE_RUNNING);
}

static void test_mig_data(void **state)
{
	struct fx *f = *state;
	struct tc *c = &f->c;
	struct mu_mig_data d = {64, 32};
	uint8_t out[128], req[8 + 10];
	size_t rl;

	memcpy(f->t.mig, "0123456789abcdefghij", 20);
	f->t.mig_len = 20;
	/* not in a saving state */
	assert_int_equal(tc_call(c, MU_CMD_MIG_DATA_READ, 0, &d, sizeof(d),
				 NULL, 0, NULL, 0, NULL, NULL, NULL),
			 -EINVAL);
	assert_int_equal(set_state(c, MU_MIG_STATE_STOP_COPY), 0);
	assert_int_equal(tc_call(c, MU_CMD_MIG_DATA_READ, 0, &d, sizeof(d),
				 NULL, 0, out, sizeof(out), &rl, NULL, NULL),
			 0);
	assert_int_equal(rl, 8 + 20);
	memcpy(&d, out, 8);
	assert_int_equal(d.size, 20);
	assert_int_equal(d.argsz, 28);
	assert_memory_equal(out + 8, "0123456789abcdefghij", 20);
	/* write only in RESUMING */
	d = (struct mu_mig_data){8, 10};
	memcpy(req, &d, 8);
	memcpy(req + 8, "ABCDEFGHIJ", 10);
	assert_int_equal(tc_call(c, MU_CMD_MIG_DATA_WRITE, 0, req, sizeof(req),
				 NULL, 0, NULL, 0, NULL, NULL, NULL),
			 -EINVAL);
	assert_int_equal(set_state(c, MU_MIG_STATE_RESUMING), 0);
	assert_int_equal(tc_call(c, MU_CMD_MIG_DATA_WRITE, 0, req, sizeof(req),
				 NULL, 0, NULL, 0, NULL, NULL, NULL),
			 0);
	assert_int_equal(f->t.mig_len, 10);
	assert_memory_equal(f->t.mig, "ABCDEFGHIJ", 10);
	/* size lies */
	d.size = 11;
	memcpy(req, &d, 8);
	assert_int_equal(tc_call(c, MU_CMD_MIG_DATA_WRITE, 0, req, sizeof(req),
				 NULL, 0, NULL, 0, NULL, NULL, NULL),
			 -EINVAL);
	assert_int_equal(set_state(c, MU_MIG_STATE_RUNNING), 0);
}

static void test_io_fds(void **state)
{
	struct td t;
	struct tc c;
	int efd = eventfd(0, 0), fds[4];
	unsigned nf = 0;
	struct mu_region_io_fds_request rq = {16, 0, 0, 0};
	uint8_t out[128];
	struct mu_region_io_fds_reply rep;
	struct mu_sub_region_ioeventfd e;
	size_t rl;

	(void)state;
	td_create(&t, MU_PCI_EXPRESS);
	/* realized already: added after, still reported */
	assert_int_equal(mu_dev_add_ioeventfd(t.dev, 0, 0x100, 4, efd,
					      MU_IOEVENTFD_FLAG_DATAMATCH, 7),
			 0);
	assert_int_equal(
		mu_dev_add_ioeventfd(t.dev, 0, TD_BAR0_SIZE, 4, efd, 0, 0),
		-EINVAL);
	td_start(&t);
	assert_int_equal(tc_open(&c, t.path), 0);
	assert_int_equal(tc_call(&c, MU_CMD_DEVICE_GET_REGION_IO_FDS, 0, &rq,
				 sizeof(rq), NULL, 0, out, sizeof(out), &rl,
				 fds, &nf),
			 0);
	memcpy(&rep, out, sizeof(rep));
	assert_int_equal(rl, 16);
	assert_int_equal(rep.argsz, 56);
	assert_int_equal(rep.count, 1);
	assert_int_equal(nf, 0);
	rq.argsz = 56;
	assert_int_equal(tc_call(&c, MU_CMD_DEVICE_GET_REGION_IO_FDS, 0, &rq,
				 sizeof(rq), NULL, 0, out, sizeof(out), &rl,
				 fds, &nf),
			 0);
	assert_int_equal(rl, 56);
	assert_int_equal(nf, 1);
	memcpy(&e, out + 16, sizeof(e));
	assert_int_equal(e.offset, 0x100);
	assert_int_equal(e.size, 4);
	assert_int_equal(e.fd_index, 0);
	assert_int_equal(e.type, MU_IO_FD_TYPE_IOEVENTFD);
	assert_int_equal(e.datamatch, 7);
	{
		uint64_t one = 1, v = 0;

		assert_int_equal(write(fds[0], &one, 8), 8);
		assert_int_equal(read(efd, &v, 8), 8);
		assert_int_equal(v, 1);
	}
	close(fds[0]);
	rq.flags = 1;
	assert_int_equal(tc_call(&c, MU_CMD_DEVICE_GET_REGION_IO_FDS, 0, &rq,
				 sizeof(rq), NULL, 0, NULL, 0, NULL, NULL,
				 NULL),
			 -EINVAL);
	tc_close(&c);
	td_destroy(&t);
	close(efd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_features, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_state_machine, fx_setup,
						fx_teardown),
		cmocka_unit_test_setup_teardown(test_mig_data, fx_setup, fx_teardown),
		cmocka_unit_test(test_io_fds),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
