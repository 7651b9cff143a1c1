/* SPDX-License-Identifier: BSD-3-Clause */
/* Every validation rule of mu_check_command, driven by lying messages. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

#include "wire-core.h"

static const struct mu_limits lim = {.max_data_xfer = 4096, .max_fds = 8};

static struct mu_msg *mk(uint16_t cmd, const void *p, size_t len,
			 unsigned nfds)
{
	static struct mu_msg m;
	static uint8_t buf[1 << 16];
	unsigned i;

	memset(&m, 0, sizeof(m));
	memcpy(buf, p, len);
	m.hdr.cmd = cmd;
	m.hdr.size = (uint32_t)(16 + len);
	m.payload = buf;
	m.len = len;
	m.nfds = nfds;
	for (i = 0; i < nfds; i++)
		m.fds[i] = 1000 + (int)i; /* never used: checks don't touch */
	return &m;
}

#define CHECK(cmd, obj, nfds) mu_check_command(mk(cmd, &(obj), sizeof(obj), nfds), &lim)

static void test_header_rules(void **state)
{
	struct mu_device_info di = {.argsz = 16};
	struct mu_msg *m;

	(void)state;
	assert_int_equal(CHECK(MU_CMD_DEVICE_GET_INFO, di, 0), 0);
	m = mk(MU_CMD_DEVICE_GET_INFO, &di, sizeof(di), 0);
	m->hdr.flags = 1u << 9; /* unknown flag bit */
	assert_int_equal(mu_check_command(m, &lim), -EINVAL);
	m->hdr.flags = MU_FLAG_TYPE_REPLY; /* a reply is not a command */
	assert_int_equal(mu_check_command(m, &lim), -EINVAL);
	m->hdr.flags = MU_FLAG_ERROR;
	assert_int_equal(mu_check_command(m, &lim), -EINVAL);
	m->hdr.flags = MU_FLAG_NO_REPLY;
	assert_int_equal(mu_check_command(m, &lim), 0);
	assert_int_equal(CHECK(0, di, 0), -ENOSYS);
	assert_int_equal(CHECK(19, di, 0), -ENOSYS);
	assert_int_equal(CHECK(0xffff, di, 0), -ENOSYS);
	assert_int_equal(CHECK(MU_CMD_DIRTY_PAGES, di, 0), -ENOTSUP);
	assert_int_equal(CHECK(MU_CMD_DMA_READ, di, 0), -EINVAL);
	assert_int_equal(CHECK(MU_CMD_DMA_WRITE, di, 0), -EINVAL);
	/* fds where the command takes none */
	assert_int_equal(CHECK(MU_CMD_DEVICE_GET_INFO, di, 1), -EINVAL);
	/* truncated fixed part */
	assert_int_equal(mu_check_command(mk(MU_CMD_DEVICE_GET_INFO, &di, 8, 0),
					  &lim),
			 -EINVAL);
	di.argsz = 8; /* argsz below the fixed reply */
	assert_int_equal(CHECK(MU_CMD_DEVICE_GET_INFO, di, 0), -EINVAL);
}

static void test_version(void **state)
{
	uint8_t v[4] = {0};
	static uint8_t huge[8192];

	(void)state;
	assert_int_equal(CHECK(MU_CMD_VERSION, v, 0), 0);
	assert_int_equal(mu_check_command(mk(MU_CMD_VERSION, v, 2, 0), &lim),
			 -EINVAL);
	assert_int_equal(CHECK(MU_CMD_VERSION, huge, 0), -E2BIG);
	assert_int_equal(CHECK(MU_CMD_VERSION, v, 1), -EINVAL);
}

static void test_dma_map(void **state)
{
	struct mu_dma_map d = {.argsz = 32, .flags = 3, .addr = 0x1000,
			       .size = 0x1000};

	(void)state;
	assert_int_equal(CHECK(MU_CMD_DMA_MAP, d, 0), 0);
	assert_int_equal(CHECK(MU_CMD_DMA_MAP, d, 1), 0);
	assert_int_equal(CHECK(MU_CMD_DMA_MAP, d, 2), -EINVAL);
	d.flags = 4;
	assert_int_equal(CHECK(MU_CMD_DMA_MAP, d, 0), -EINVAL);
	d.flags = 3;
	d.size = 0;
	assert_int_equal(CHECK(MU_CMD_DMA_MAP, d, 0), -EINVAL);
	d.size = UINT64_MAX; /* addr + size wraps */
	assert_int_equal(CHECK(MU_CMD_DMA_MAP, d, 0), -EINVAL);
	d.size = 0x1000;
	d.offset = UINT64_MAX - 10; /* offset + size wraps */
	assert_int_equal(CHECK(MU_CMD_DMA_MAP, d, 1), -EINVAL);
	assert_int_equal(CHECK(MU_CMD_DMA_MAP, d, 0), -EINVAL); /* no fd */
	d.offset = 0;
	d.argsz = 16;
	assert_int_equal(CHECK(MU_CMD_DMA_MAP, d, 0), -EINVAL);
	d.argsz = 64; /* says more than was sent */
	assert_int_equal(CHECK(MU_CMD_DMA_MAP, d, 0), -EINVAL);
}

static void test_dma_unmap(void **state)
{
	struct mu_dma_unmap u = {.argsz = 24, .addr = 0x1000, .size = 0x1000};

	(void)state;
	assert_int_equal(CHECK(MU_CMD_DMA_UNMAP, u, 0), 0);
	assert_int_equal(CHECK(MU_CMD_DMA_UNMAP, u, 1), -EINVAL);
	u.flags = MU_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP;
	assert_int_equal(CHECK(MU_CMD_DMA_UNMAP, u, 0), -ENOTSUP);
	u.flags = 1u << 5;
	assert_int_equal(CHECK(MU_CMD_DMA_UNMAP, u, 0), -EINVAL);
	u.flags = MU_DMA_UNMAP_FLAG_ALL; /* needs addr = size = 0 */
	assert_int_equal(CHECK(MU_CMD_DMA_UNMAP, u, 0), -EINVAL);
	u.addr = u.size = 0;
	assert_int_equal(CHECK(MU_CMD_DMA_UNMAP, u, 0), 0);
	u.flags = 0;
	assert_int_equal(CHECK(MU_CMD_DMA_UNMAP, u, 0), -EINVAL);
	u.addr = 0xfffffffffffff000ull;
	u.size = 0x2000;
	assert_int_equal(CHECK(MU_CMD_DMA_UNMAP, u, 0), -EINVAL);
}

static void test_region_info_and_io_fds(void **state)
{
	struct mu_region_info ri = {.argsz = 32, .index = 0};
	struct mu_region_io_fds_request io = {.argsz = 16};

	(void)state;
	assert_int_equal(CHECK(MU_CMD_DEVICE_GET_REGION_INFO, ri, 0), 0);
	ri.argsz = 31;
	assert_int_equal(CHECK(MU_CMD_DEVICE_GET_REGION_INFO, ri, 0), -EINVAL);
	assert_int_equal(CHECK(MU_CMD_DEVICE_GET_REGION_IO_FDS, io, 0), 0);
	io.flags = 1;
	assert_int_equal(CHECK(MU_CMD_DEVICE_GET_REGION_IO_FDS, io, 0),
			 -EINVAL);
}

static void test_set_irqs(void **state)
{
	struct {
		struct mu_irq_set s;
		uint8_t b[4];
	} __attribute__((packed)) sb = {{.argsz = 24,
					 .flags = MU_IRQ_SET_DATA_BOOL |
						  MU_IRQ_SET_ACTION_MASK,
					 .count = 4},
					{1, 0, 1, 0}};
	struct mu_irq_set s = {.argsz = 20,
			       .flags = MU_IRQ_SET_DATA_EVENTFD |
					MU_IRQ_SET_ACTION_TRIGGER,
			       .count = 2};

	(void)state;
	assert_int_equal(CHECK(MU_CMD_DEVICE_SET_IRQS, s, 2), 0);
	assert_int_equal(CHECK(MU_CMD_DEVICE_SET_IRQS, s, 0), 0); /* deassign */
	assert_int_equal(CHECK(MU_CMD_DEVICE_SET_IRQS, s, 1), -EINVAL);
	assert_int_equal(CHECK(MU_CMD_DEVICE_SET_IRQS, s, 9), -EINVAL);
	s.flags = MU_IRQ_SET_DATA_EVENTFD | MU_IRQ_SET_DATA_BOOL |
		  MU_IRQ_SET_ACTION_TRIGGER;
	assert_int_equal(CHECK(MU_CMD_DEVICE_SET_IRQS, s, 0), -EINVAL);
	s.flags = MU_IRQ_SET_DATA_NONE | MU_IRQ_SET_ACTION_MASK |
		  MU_IRQ_SET_ACTION_UNMASK;
	assert_int_equal(CHECK(MU_CMD_DEVICE_SET_IRQS, s, 0), -EINVAL);
	s.flags = MU_IRQ_SET_DATA_NONE | MU_IRQ_SET_ACTION_TRIGGER | (1u << 6);
	assert_int_equal(CHECK(MU_CMD_DEVICE_SET_IRQS, s, 0), -EINVAL);
	s.flags = MU_IRQ_SET_DATA_NONE | MU_IRQ_SET_ACTION_TRIGGER;
	assert_int_equal(CHECK(MU_CMD_DEVICE_SET_IRQS, s, 0), 0);
	assert_int_equal(CHECK(MU_CMD_DEVICE_SET_IRQS, s, 1), -EINVAL);
	s.start = UINT32_MAX;
	assert_int_equal(CHECK(MU_CMD_DEVICE_SET_IRQS, s, 0), -EINVAL);
	assert_int_equal(CHECK(MU_CMD_DEVICE_SET_IRQS, sb, 0), 0);
	sb.s.count = 5; /* more bools claimed than sent */
	assert_int_equal(CHECK(MU_CMD_DEVICE_SET_IRQS, sb, 0), -EINVAL);
	sb.s.count = 3;
	assert_int_equal(CHECK(MU_CMD_DEVICE_SET_IRQS, sb, 0), -EINVAL);
}

static void test_region_access(void **state)
{
	struct {
		struct mu_region_access a;
		uint8_t d[4];
	} __attribute__((packed)) w = {{.offset = 0, .region = 0, .count = 4},
				       {1, 2, 3, 4}};
	struct mu_region_access r = {.offset = 8, .region = 2, .count = 4};

	(void)state;
	assert_int_equal(CHECK(MU_CMD_REGION_READ, r, 0), 0);
	r.count = 0;
	assert_int_equal(CHECK(MU_CMD_REGION_READ, r, 0), -EINVAL);
	r.count = 4097;
	assert_int_equal(CHECK(MU_CMD_REGION_READ, r, 0), -E2BIG);
	r.count = 8;
	r.offset = UINT64_MAX - 3;
	assert_int_equal(CHECK(MU_CMD_REGION_READ, r, 0), -EINVAL);
	assert_int_equal(CHECK(MU_CMD_REGION_READ, w, 0), -EINVAL); /* extra */
	assert_int_equal(CHECK(MU_CMD_REGION_WRITE, w, 0), 0);
	w.a.count = 8; /* claims more data than carried */
	assert_int_equal(CHECK(MU_CMD_REGION_WRITE, w, 0), -EINVAL);
	w.a.count = 2; /* claims less */
	assert_int_equal(CHECK(MU_CMD_REGION_WRITE, w, 0), -EINVAL);
	w.a.count = 0xffffffff;
	assert_int_equal(CHECK(MU_CMD_REGION_WRITE, w, 0), -E2BIG);
	w.a.count = 4;
	w.a.offset = UINT64_MAX;
	assert_int_equal(CHECK(MU_CMD_REGION_WRITE, w, 0), -EINVAL);
}

static void test_reset_and_features(void **state)
{
	uint8_t none[1] = {0};
	struct mu_device_feature f = {.argsz = 16,
				      .flags = MU_DEVICE_FEATURE_GET |
					       MU_DEVICE_FEATURE_MIGRATION};

	(void)state;
	assert_int_equal(mu_check_command(mk(MU_CMD_DEVICE_RESET, none, 0, 0),
					  &lim),
			 0);
	assert_int_equal(CHECK(MU_CMD_DEVICE_RESET, none, 0), -EINVAL);
	assert_int_equal(CHECK(MU_CMD_DEVICE_FEATURE, f, 0), 0);
	f.flags |= MU_DEVICE_FEATURE_SET; /* GET|SET without PROBE */
	assert_int_equal(CHECK(MU_CMD_DEVICE_FEATURE, f, 0), -EINVAL);
	f.flags |= MU_DEVICE_FEATURE_PROBE;
	assert_int_equal(CHECK(MU_CMD_DEVICE_FEATURE, f, 0), 0);
	f.flags = MU_DEVICE_FEATURE_MIGRATION; /* no operation at all */
	assert_int_equal(CHECK(MU_CMD_DEVICE_FEATURE, f, 0), -EINVAL);
	f.flags = MU_DEVICE_FEATURE_GET | (1u << 20);
	assert_int_equal(CHECK(MU_CMD_DEVICE_FEATURE, f, 0), -EINVAL);
	f.flags = MU_DEVICE_FEATURE_GET;
	f.argsz = 4;
	assert_int_equal(CHECK(MU_CMD_DEVICE_FEATURE, f, 0), -EINVAL);
}

/* The data a feature's GET/SET needs must be there; a probe needs none. */
static void test_feature_data(void **state)
{
	struct {
		struct mu_device_feature f;
		struct mu_dma_logging_control c;
		struct mu_dma_logging_range r[2];
	} __attribute__((packed))
	st = {{64, MU_DEVICE_FEATURE_SET | MU_DEVICE_FEATURE_DMA_LOGGING_START},
	      {4096, 2, 0},
	      {{0, 4096}, {8192, 4096}}};
	struct {
		struct mu_device_feature f;
		struct mu_dma_logging_report r;
	} __attribute__((packed))
	rep = {{64,
		MU_DEVICE_FEATURE_GET | MU_DEVICE_FEATURE_DMA_LOGGING_REPORT},
	       {0, 4096, 4096}};
	struct mu_device_feature f = {
		8, MU_DEVICE_FEATURE_SET | MU_DEVICE_FEATURE_MIG_DEVICE_STATE};
	const struct mu_limits *l = &lim;

	(void)state;
	assert_int_equal(CHECK(MU_CMD_DEVICE_FEATURE, st, 0), 0);
	/* one range short, the control cut, no data at all */
	assert_int_equal(
		mu_check_command(
			mk(MU_CMD_DEVICE_FEATURE, &st, sizeof(st) - 1, 0), l),
		-EINVAL);
	assert_int_equal(
		mu_check_command(mk(MU_CMD_DEVICE_FEATURE, &st, 20, 0), l),
		-EINVAL);
	assert_int_equal(
		mu_check_command(mk(MU_CMD_DEVICE_FEATURE, &st, 8, 0), l),
		-EINVAL);
	st.c.num_ranges = 0xffffffff; /* count * 16 must not wrap */
	assert_int_equal(CHECK(MU_CMD_DEVICE_FEATURE, st, 0), -EINVAL);
	st.f.flags |= MU_DEVICE_FEATURE_PROBE;
	assert_int_equal(
		mu_check_command(mk(MU_CMD_DEVICE_FEATURE, &st, 8, 0), l), 0);
	assert_int_equal(CHECK(MU_CMD_DEVICE_FEATURE, rep, 0), 0);
	assert_int_equal(
		mu_check_command(
			mk(MU_CMD_DEVICE_FEATURE, &rep, sizeof(rep) - 8, 0), l),
		-EINVAL);
	assert_int_equal(CHECK(MU_CMD_DEVICE_FEATURE, f, 0), -EINVAL);
	f.flags |= MU_DEVICE_FEATURE_PROBE;
	assert_int_equal(CHECK(MU_CMD_DEVICE_FEATURE, f, 0), 0);
}

static void test_write_multi(void **state)
{
	struct {
		struct mu_write_multi w;
		struct mu_write_multi_entry e[2];
	} __attribute__((packed)) wm = {{2},
					{{.offset = 0, .count = 4},
					 {.offset = 8, .count = 8}}};
	struct mu_write_multi zero = {0};

	(void)state;
	assert_int_equal(CHECK(MU_CMD_REGION_WRITE_MULTI, wm, 0), 0);
	wm.e[1].count = 9;
	assert_int_equal(CHECK(MU_CMD_REGION_WRITE_MULTI, wm, 0), -EINVAL);
	wm.e[1].count = 0;
	assert_int_equal(CHECK(MU_CMD_REGION_WRITE_MULTI, wm, 0), -EINVAL);
	wm.e[1].count = 4;
	wm.w.wr_cnt = 3; /* more entries than bytes */
	assert_int_equal(CHECK(MU_CMD_REGION_WRITE_MULTI, wm, 0), -EINVAL);
	wm.w.wr_cnt = UINT64_MAX / 8; /* count * 24 wraps */
	assert_int_equal(CHECK(MU_CMD_REGION_WRITE_MULTI, wm, 0), -EINVAL);
	assert_int_equal(CHECK(MU_CMD_REGION_WRITE_MULTI, zero, 0), -EINVAL);
}

static void test_mig_data(void **state)
{
	struct mu_mig_data r = {.argsz = 8 + 64, .size = 64};
	struct {
		struct mu_mig_data d;
		uint8_t b[16];
	} __attribute__((packed)) w = {{.argsz = 8, .size = 16}, {0}};

	(void)state;
	assert_int_equal(CHECK(MU_CMD_MIG_DATA_READ, r, 0), 0);
	r.size = 1 << 20;
	assert_int_equal(CHECK(MU_CMD_MIG_DATA_READ, r, 0), -E2BIG);
	assert_int_equal(CHECK(MU_CMD_MIG_DATA_WRITE, w, 0), 0);
	w.d.size = 17;
	assert_int_equal(CHECK(MU_CMD_MIG_DATA_WRITE, w, 0), -EINVAL);
}

/* Server -> client DMA commands: both layouts told apart by length. */
static void test_server_dma_commands(void **state)
{
	struct mu_dma_access a = {.addr = 0x1000, .count = 4};
	struct mu_dma_access32 a32 = {.addr = 0x1000, .count = 4};
	struct {
		struct mu_dma_access a;
		uint8_t d[4];
	} __attribute__((packed)) w = {{0x1000, 4}, {1, 2, 3, 4}};
	struct {
		struct mu_dma_access32 a;
		uint8_t d[4];
	} __attribute__((packed)) w32 = {{0x1000, 4}, {1, 2, 3, 4}};
	struct mu_msg *m;
	bool c32 = true;

	(void)state;
	m = mk(MU_CMD_DMA_READ, &a, sizeof(a), 0);
	assert_int_equal(mu_check_server_command(m, &lim, &c32), 0);
	assert_false(c32);
	m = mk(MU_CMD_DMA_READ, &a32, sizeof(a32), 0);
	assert_int_equal(mu_check_server_command(m, &lim, &c32), 0);
	assert_true(c32);
	m = mk(MU_CMD_DMA_WRITE, &w, sizeof(w), 0);
	assert_int_equal(mu_check_server_command(m, &lim, &c32), 0);
	assert_false(c32);
	m = mk(MU_CMD_DMA_WRITE, &w32, sizeof(w32), 0);
	assert_int_equal(mu_check_server_command(m, &lim, &c32), 0);
	assert_true(c32);
	w.a.count = 5; /* claims more data than carried */
	m = mk(MU_CMD_DMA_WRITE, &w, sizeof(w), 0);
	assert_int_equal(mu_check_server_command(m, &lim, &c32), -EINVAL);
	w.a.count = 2; /* libvfio-user pads its last chunk: accepted */
	m = mk(MU_CMD_DMA_WRITE, &w, sizeof(w), 0);
	assert_int_equal(mu_check_server_command(m, &lim, &c32), 0);
	assert_false(c32);
	w.a.count = 4;
	m = mk(MU_CMD_DMA_READ, &w, sizeof(w), 0); /* READ carries no data */
	assert_int_equal(mu_check_server_command(m, &lim, &c32), -EINVAL);
	a.count = 1ull << 40; /* high half of a u64 count set */
	m = mk(MU_CMD_DMA_READ, &a, sizeof(a), 0);
	assert_int_equal(mu_check_server_command(m, &lim, &c32), -E2BIG);
	a.count = 8192;
	m = mk(MU_CMD_DMA_READ, &a, sizeof(a), 0);
	assert_int_equal(mu_check_server_command(m, &lim, &c32), -E2BIG);
	a.count = 4;
	m = mk(MU_CMD_DMA_READ, &a, sizeof(a), 1);
	assert_int_equal(mu_check_server_command(m, &lim, &c32), -EINVAL);
	a.addr = UINT64_MAX - 1;
	m = mk(MU_CMD_DMA_READ, &a, sizeof(a), 0);
	assert_int_equal(mu_check_server_command(m, &lim, &c32), -EINVAL);
	m = mk(MU_CMD_REGION_READ, &a, sizeof(a), 0);
	assert_int_equal(mu_check_server_command(m, &lim, &c32), -ENOSYS);
}

static void test_replies(void **state)
{
	struct mu_msg *m = mk(MU_CMD_REGION_READ, "abcd", 4, 0);

	(void)state;
	m->hdr.flags = MU_FLAG_TYPE_REPLY;
	assert_int_equal(mu_check_reply(m, MU_CMD_REGION_READ, 4), 0);
	assert_int_equal(mu_check_reply(m, MU_CMD_REGION_READ, 8), -EBADMSG);
	assert_int_equal(mu_check_reply(m, MU_CMD_REGION_WRITE, 0), -EPROTO);
	m->hdr.flags = MU_FLAG_TYPE_COMMAND;
	assert_int_equal(mu_check_reply(m, MU_CMD_REGION_READ, 0), -EBADMSG);
	m->hdr.flags = MU_FLAG_TYPE_REPLY | MU_FLAG_ERROR;
	m->hdr.error = EPERM;
	assert_int_equal(mu_check_reply(m, MU_CMD_REGION_READ, 4), -EPERM);
	m->hdr.error = 0; /* error bit without errno */
	assert_int_equal(mu_check_reply(m, MU_CMD_REGION_READ, 4), -EIO);
	m->hdr.error = 0x7fffffff;
	assert_int_equal(mu_check_reply(m, MU_CMD_REGION_READ, 4), -EIO);
	assert_string_equal(mu_cmd_name(MU_CMD_REGION_WRITE_MULTI),
			    "REGION_WRITE_MULTI");
	assert_string_equal(mu_cmd_name(999), "UNKNOWN");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_header_rules),
		cmocka_unit_test(test_version),
		cmocka_unit_test(test_dma_map),
		cmocka_unit_test(test_dma_unmap),
		cmocka_unit_test(test_region_info_and_io_fds),
		cmocka_unit_test(test_set_irqs),
		cmocka_unit_test(test_region_access),
		cmocka_unit_test(test_reset_and_features),
		cmocka_unit_test(test_feature_data),
		cmocka_unit_test(test_write_multi),
		cmocka_unit_test(test_mig_data),
		cmocka_unit_test(test_server_dma_commands),
		cmocka_unit_test(test_replies),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
