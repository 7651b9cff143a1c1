/* SPDX-License-Identifier: BSD-3-Clause */
/* libmuser: life cycle, VERSION, GET_INFO, regions, errors, reconnect. */
#include <errno.h>
#include <malloc.h>
#include <poll.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "helpers.h"

static void test_version(void **state)
{
	struct td t;
	struct tc c;
	uint8_t buf[600];
	struct mu_version v = {0, 7};
	size_t rl;

	(void)state;
	td_create(&t, MU_PCI_EXPRESS);
	td_start(&t);
	assert_int_equal(tc_open(&c, t.path), 0);
	assert_non_null(strstr(c.json, "\"write_multiple\":true"));
	assert_non_null(strstr(c.json, "\"max_msg_fds\":16"));
	assert_non_null(strstr(c.json, "\"pgsizes\":4096"));
	assert_null(strstr(c.json, "twin_socket"));
	assert_int_equal(c.twin, -1);
	/* a second VERSION is refused, the connection stays */
	assert_int_equal(tc_call(&c, MU_CMD_VERSION, 0, &v, sizeof(v), NULL, 0,
				 NULL, 0, NULL, NULL, NULL),
			 -EINVAL);
	tc_close(&c);
	/* minor = min(proposed, 2) */
	assert_int_equal(tc_connect(&c, t.path), 0);
	assert_int_equal(tc_call(&c, MU_CMD_VERSION, 0, &v, sizeof(v), NULL, 0,
				 buf, sizeof(buf), &rl, NULL, NULL),
			 0);
	memcpy(&v, buf, sizeof(v));
	assert_int_equal(v.major, 0);
	assert_int_equal(v.minor, 2);
	tc_close(&c);
	assert_int_equal(tc_connect(&c, t.path), 0);
	assert_int_equal(tc_version(&c, 0, 1, NULL), 0);
	tc_close(&c);
	td_destroy(&t);
}

static void expect_closed(struct tc *c)
{
	struct mu_hdr h;

	assert_true(tc_recv(c, &c->c, &h, NULL, 0, NULL, 2000) <= 0);
}

static void test_version_errors(void **state)
{
	struct td t;
	struct tc c;
	struct mu_device_info di = {.argsz = sizeof(di)};

	(void)state;
	td_create(&t, MU_PCI_EXPRESS);
	td_start(&t);
	/* major mismatch: ENOTSUP, then closed */
	assert_int_equal(tc_connect(&c, t.path), 0);
	assert_int_equal(tc_version(&c, 1, 0, NULL), -ENOTSUP);
	expect_closed(&c);
	tc_close(&c);
	/* first command not VERSION: EINVAL, then closed */
	assert_int_equal(tc_connect(&c, t.path), 0);
	assert_int_equal(tc_call(&c, MU_CMD_DEVICE_GET_INFO, 0, &di, sizeof(di),
				 NULL, 0, NULL, 0, NULL, NULL, NULL),
			 -EINVAL);
	expect_closed(&c);
	tc_close(&c);
	/* bad JSON and wrong types */
	assert_int_equal(tc_connect(&c, t.path), 0);
	assert_int_equal(tc_version(&c, 0, 2, "{\"capabilities\":"), -EINVAL);
	expect_closed(&c);
	tc_close(&c);
	assert_int_equal(tc_connect(&c, t.path), 0);
	assert_int_equal(
		tc_version(&c, 0, 2,
			   "{\"capabilities\":{\"max_msg_fds\":\"x\"}}"),
		-EINVAL);
	tc_close(&c);
	/* unknown keys and the old migration object are ignored */
	assert_int_equal(tc_connect(&c, t.path), 0);
	assert_int_equal(
		tc_version(&c, 0, 0,
			   "{\"capabilities\":{\"migration\":{\"pgsize\":"
			   "4096},\"foo\":1}}"),
		0);
	tc_close(&c);
	td_destroy(&t);
}

static void test_twin_negotiation(void **state)
{
	struct td t;
	struct tc c;

	(void)state;
	td_create(&t, MU_PCI_EXPRESS);
	td_start(&t);
	assert_int_equal(tc_connect(&c, t.path), 0);
	assert_int_equal(
		tc_version(&c, 0, 2,
			   "{\"capabilities\":{\"twin_socket\":{\"supported\":"
			   "true}}}"),
		0);
	assert_non_null(strstr(
		c.json, "\"twin_socket\":{\"supported\":true,\"fd_index\":0}"));
	assert_true(c.twin >= 0);
	tc_close(&c);
	td_destroy(&t);
}

static void test_get_info(void **state)
{
	struct td t;
	struct tc c;
	struct mu_device_info di = {.argsz = sizeof(di)};

	(void)state;
	td_create(&t, MU_PCI_EXPRESS);
	td_start(&t);
	assert_int_equal(tc_open(&c, t.path), 0);
	assert_int_equal(tc_call(&c, MU_CMD_DEVICE_GET_INFO, 0, &di, sizeof(di),
				 NULL, 0, &di, sizeof(di), NULL, NULL, NULL),
			 0);
	assert_int_equal(di.argsz, 16);
	assert_int_equal(di.flags, MU_DEVICE_FLAGS_PCI | MU_DEVICE_FLAGS_RESET);
	assert_int_equal(di.num_regions, TD_DEVSPEC + 1);
	assert_int_equal(di.num_irqs, 5);
	/* argsz too small */
	di.argsz = 8;
	assert_int_equal(tc_call(&c, MU_CMD_DEVICE_GET_INFO, 0, &di, sizeof(di),
				 NULL, 0, NULL, 0, NULL, NULL, NULL),
			 -EINVAL);
	/* lying size: payload shorter than the struct */
	assert_int_equal(tc_call(&c, MU_CMD_DEVICE_GET_INFO, 0, &di, 4, NULL, 0,
				 NULL, 0, NULL, NULL, NULL),
			 -EINVAL);
	tc_close(&c);
	td_destroy(&t);
}

static int region_info(struct tc *c, uint32_t index, uint32_t argsz,
		       uint8_t *out, size_t cap, size_t *rl, int *fd)
{
	struct mu_region_info ri = {.argsz = argsz, .index = index};
	int fds[4];
	unsigned nf = 0, i;
	int r;

	r = tc_call(c, MU_CMD_DEVICE_GET_REGION_INFO, 0, &ri, sizeof(ri), NULL,
		    0, out, cap, rl, fds, &nf);
	*fd = nf ? fds[0] : -1;
	for (i = 1; i < nf; i++)
		close(fds[i]);
	return r;
}

static void test_region_info(void **state)
{
	struct td t;
	struct tc c;
	uint8_t buf[256];
	struct mu_region_info ri;
	struct mu_region_info_cap_sparse_mmap sp;
	struct mu_region_info_cap_type ty;
	struct mu_sparse_mmap_area area;
	size_t rl;
	int fd;
	uint8_t *map;
	uint32_t v = 0x12345678;

	(void)state;
	td_create(&t, MU_PCI_EXPRESS);
	td_start(&t);
	assert_int_equal(tc_open(&c, t.path), 0);
	/* BAR0: callback region, no mmap */
	assert_int_equal(region_info(&c, 0, 32, buf, sizeof(buf), &rl, &fd), 0);
	memcpy(&ri, buf, sizeof(ri));
	assert_int_equal(rl, 32);
	assert_int_equal(ri.size, TD_BAR0_SIZE);
	assert_int_equal(ri.flags,
			 MU_REGION_INFO_FLAG_READ | MU_REGION_INFO_FLAG_WRITE);
	assert_int_equal(fd, -1);
	/* config space */
	assert_int_equal(region_info(&c, MU_PCI_CONFIG_REGION_INDEX, 32, buf,
				     sizeof(buf), &rl, &fd),
			 0);
	memcpy(&ri, buf, sizeof(ri));
	assert_int_equal(ri.size, 4096);
	/* BAR3 is BAR2's upper half: absent */
	assert_int_equal(region_info(&c, 3, 32, buf, sizeof(buf), &rl, &fd), 0);
	memcpy(&ri, buf, sizeof(ri));
	assert_int_equal(ri.size, 0);
	assert_int_equal(ri.flags, 0);
	/* BAR2: argsz too small -> fixed part, needed size, no fd */
	assert_int_equal(region_info(&c, 2, 32, buf, sizeof(buf), &rl, &fd), 0);
	memcpy(&ri, buf, sizeof(ri));
	assert_int_equal(rl, 32);
	assert_int_equal(ri.argsz, 32 + 16 + 16);
	assert_int_equal(ri.cap_offset, 0);
	assert_false(ri.flags & MU_REGION_INFO_FLAG_CAPS); /* no chain here */
	assert_int_equal(fd, -1);
	/* the memfd's size is sealed: the client can't shrink it under us */
	{
		int f2;

		assert_int_equal(
			region_info(&c, 2, 64, buf, sizeof(buf), &rl, &f2), 0);
		assert_true(f2 >= 0);
		assert_int_equal(ftruncate(f2, 0), -1);
		assert_int_equal(errno, EPERM);
		close(f2);
	}
	/* full: sparse cap and the memfd */
	assert_int_equal(region_info(&c, 2, 64, buf, sizeof(buf), &rl, &fd), 0);
	memcpy(&ri, buf, sizeof(ri));
	assert_int_equal(rl, 64);
	assert_int_equal(ri.flags, MU_REGION_INFO_FLAG_READ |
					   MU_REGION_INFO_FLAG_WRITE |
					   MU_REGION_INFO_FLAG_MMAP |
					   MU_REGION_INFO_FLAG_CAPS);
	assert_int_equal(ri.cap_offset, 32);
	memcpy(&sp, buf + 32, sizeof(sp));
	memcpy(&area, buf + 48, sizeof(area));
	assert_int_equal(sp.header.id, MU_REGION_INFO_CAP_SPARSE_MMAP);
	assert_int_equal(sp.header.next, 0);
	assert_int_equal(sp.nr_areas, 1);
	assert_int_equal(area.offset, 0x8000);
	assert_int_equal(area.size, 0x8000);
	assert_true(fd >= 0);
	map = mmap(NULL, TD_BAR2_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
		   (off_t)ri.offset);
	assert_true(map != MAP_FAILED);
	assert_int_equal(tc_write(&c, 2, 0x8010, &v, 4), 0);
	assert_memory_equal(map + 0x8010, &v, 4);
	map[0x8020] = 0x5a;
	assert_int_equal(tc_read(&c, 2, 0x8020, &v, 1), 0);
	assert_int_equal(v & 0xff, 0x5a);
	assert_ptr_equal(map[0x8010],
			 ((uint8_t *)mu_region_mem(t.dev, 2))[0x8010]);
	munmap(map, TD_BAR2_SIZE);
	close(fd);
	/* device-specific region: type cap */
	assert_int_equal(
		region_info(&c, TD_DEVSPEC, 256, buf, sizeof(buf), &rl, &fd),
		0);
	memcpy(&ri, buf, sizeof(ri));
	assert_int_equal(ri.argsz, 48);
	memcpy(&ty, buf + ri.cap_offset, sizeof(ty));
	assert_int_equal(ty.header.id, MU_REGION_INFO_CAP_TYPE);
	assert_int_equal(ty.type, MU_REGION_TYPE_PCI_VENDOR_TYPE | 0x1234);
	assert_int_equal(ty.subtype, 1);
	assert_true(fd >= 0);
	close(fd);
	/* unknown index */
	assert_int_equal(region_info(&c, 40, 32, buf, sizeof(buf), &rl, &fd),
			 -EINVAL);
	/* argsz below the struct */
	assert_int_equal(region_info(&c, 0, 16, buf, sizeof(buf), &rl, &fd),
			 -EINVAL);
	tc_close(&c);
	td_destroy(&t);
}

static void test_region_rw(void **state)
{
	struct td t;
	struct tc c;
	uint32_t v = 0xa5a5f00d, r = 0;
	uint64_t q = 0;
	struct mu_region_access a;
	uint8_t big[64];

	(void)state;
	td_create(&t, MU_PCI_EXPRESS);
	td_start(&t);
	assert_int_equal(tc_open(&c, t.path), 0);
	assert_int_equal(tc_write(&c, 0, 0x10, &v, 4), 0);
	assert_memory_equal(t.bar0 + 0x10, &v, 4);
	assert_int_equal(tc_read(&c, 0, 0x10, &r, 4), 0);
	assert_int_equal(r, v);
	assert_int_equal(tc_write(&c, 1, 0xfc, &v, 4), 0); /* IO BAR end */
	/* unaligned, odd sizes */
	assert_int_equal(tc_read(&c, 0, 0x11, &q, 3), 0);
	assert_int_equal(q, 0xa5a5f0);
	memset(big, 0x77, sizeof(big));
	assert_int_equal(tc_write(&c, 0, 0x100, big, sizeof(big)), 0);
	assert_memory_equal(t.bar0 + 0x100, big, sizeof(big));
	/* outside the region: error, never a callback */
	t.nacc = 0;
	assert_int_equal(tc_read(&c, 0, TD_BAR0_SIZE - 2, &r, 4), -EINVAL);
	assert_int_equal(tc_write(&c, 0, TD_BAR0_SIZE, &v, 4), -EINVAL);
	assert_int_equal(tc_read(&c, 0, UINT64_MAX - 1, &r, 4), -EINVAL);
	assert_int_equal(tc_read(&c, 3, 0, &r, 4), -EINVAL);  /* absent */
	assert_int_equal(tc_read(&c, 50, 0, &r, 4), -EINVAL); /* unknown */
	assert_int_equal(tc_write(&c, MU_PCI_ROM_REGION_INDEX, 0, &v, 4),
			 -EINVAL); /* read-only */
	assert_int_equal(tc_read(&c, MU_PCI_CONFIG_REGION_INDEX, 4094, &r, 4),
			 -EINVAL);
	assert_int_equal(t.nacc, 0);
	/* count 0 and count > max_data_xfer_size */
	a = (struct mu_region_access){0, 0, 0};
	assert_int_equal(tc_call(&c, MU_CMD_REGION_READ, 0, &a, sizeof(a), NULL,
				 0, NULL, 0, NULL, NULL, NULL),
			 -EINVAL);
	a.count = (1u << 20) + 1;
	assert_int_equal(tc_call(&c, MU_CMD_REGION_READ, 0, &a, sizeof(a), NULL,
				 0, NULL, 0, NULL, NULL, NULL),
			 -E2BIG);
	/* lying: write count says 8, 4 bytes of data follow */
	{
		uint8_t req[20];

		a = (struct mu_region_access){0, 0, 8};
		memcpy(req, &a, sizeof(a));
		memcpy(req + 16, &v, 4);
		assert_int_equal(tc_call(&c, MU_CMD_REGION_WRITE, 0, req,
					 sizeof(req), NULL, 0, NULL, 0, NULL,
					 NULL, NULL),
				 -EINVAL);
	}
	/* an fd where none is allowed */
	{
		int fd = dup(0);

		a = (struct mu_region_access){0, 0, 4};
		assert_int_equal(tc_call(&c, MU_CMD_REGION_READ, 0, &a,
					 sizeof(a), &fd, 1, NULL, 0, NULL, NULL,
					 NULL),
				 -EINVAL);
		close(fd);
	}
	assert_int_equal(t.nacc, 0);
	/* still usable */
	assert_int_equal(tc_read(&c, 0, 0x10, &r, 4), 0);
	assert_int_equal(r, v);
	/* MEM region without sparse coverage still goes to memory */
	assert_int_equal(tc_write(&c, 2, 0x10, &v, 4), 0);
	assert_memory_equal((uint8_t *)mu_region_mem(t.dev, 2) + 0x10, &v, 4);
	/* small reads are answered from the stack, large ones through
	 * the reply descriptor: the same bytes either way, in every kind
	 * of region */
	{
		static const size_t sizes[] = {1, 255, 256, 257, 1024, 4096};
		static uint8_t got[4096];
		uint8_t *mem = mu_region_mem(t.dev, 2);

		for (size_t i = 0; i < sizeof(t.bar0); i++)
			t.bar0[i] = (uint8_t)(i * 7 + 3);
		for (size_t i = 0; i < 4096; i++)
			mem[i] = (uint8_t)(i * 5 + 1);
		for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
			size_t n = sizes[k];

			memset(got, 0, n);
			assert_int_equal(tc_read(&c, 0, 0, got, n), 0);
			assert_memory_equal(got, t.bar0, n);
			memset(got, 0, n);
			assert_int_equal(tc_read(&c, 2, 0, got, n), 0);
			assert_memory_equal(got, mem, n);
			assert_int_equal(tc_read(&c, MU_PCI_CONFIG_REGION_INDEX,
						 0, got, n),
					 0);
			assert_int_equal(mu_pci_config_read(t.dev, 0, &r, 4),
					 0);
			assert_memory_equal(got, &r, n < 4 ? n : 4);
		}
	}
	tc_close(&c);
	td_destroy(&t);
}

static void test_no_reply(void **state)
{
	struct td t;
	struct tc c;
	uint8_t req[20];
	struct mu_region_access a = {TD_BAR0_SIZE, 0, 4};
	struct mu_device_info di = {.argsz = sizeof(di)};
	struct mu_hdr h;
	uint32_t v = 0x1234;

	(void)state;
	td_create(&t, MU_PCI_EXPRESS);
	td_start(&t);
	assert_int_equal(tc_open(&c, t.path), 0);
	memcpy(req, &a, sizeof(a));
	memcpy(req + 16, &v, 4);
	/* failing posted write: no reply at all */
	assert_int_equal(tc_call(&c, MU_CMD_REGION_WRITE, MU_FLAG_NO_REPLY, req,
				 sizeof(req), NULL, 0, NULL, 0, NULL, NULL,
				 NULL),
			 0);
	/* working posted write */
	a.offset = 0x20;
	memcpy(req, &a, sizeof(a));
	assert_int_equal(tc_call(&c, MU_CMD_REGION_WRITE, MU_FLAG_NO_REPLY, req,
				 sizeof(req), NULL, 0, NULL, 0, NULL, NULL,
				 NULL),
			 0);
	assert_int_equal(tc_call(&c, MU_CMD_DEVICE_GET_INFO, 0, &di, sizeof(di),
				 NULL, 0, NULL, 0, NULL, NULL, NULL),
			 0);
	assert_memory_equal(t.bar0 + 0x20, &v, 4);
	/* nothing else arrives */
	assert_int_equal(tc_recv(&c, &c.c, &h, NULL, 0, NULL, 100), -ETIMEDOUT);
	tc_close(&c);
	td_destroy(&t);
}

static void test_write_multi(void **state)
{
	struct td t;
	struct tc c;
	struct {
		struct mu_write_multi w;
		struct mu_write_multi_entry e[3];
	} __attribute__((packed))
	m = {{3},
	     {{0x40, 0, 4, {1, 2, 3, 4}},
	      {0x44, 0, 2, {5, 6}},
	      {0x80, 2, 8, {1, 1, 1, 1, 2, 2, 2, 2}}}};
	uint64_t cnt = 0;

	(void)state;
	td_create(&t, MU_PCI_EXPRESS);
	td_start(&t);
	assert_int_equal(tc_open(&c, t.path), 0);
	assert_int_equal(tc_call(&c, MU_CMD_REGION_WRITE_MULTI, 0, &m,
				 sizeof(m), NULL, 0, &cnt, sizeof(cnt), NULL,
				 NULL, NULL),
			 0);
	assert_int_equal(cnt, 3);
	assert_memory_equal(t.bar0 + 0x40, "\x01\x02\x03\x04\x05\x06", 6);
	assert_memory_equal((uint8_t *)mu_region_mem(t.dev, 2) + 0x80,
			    "\x01\x01\x01\x01\x02\x02\x02\x02", 8);
	/* bad entry count 9 */
	m.e[1].count = 9;
	assert_int_equal(tc_call(&c, MU_CMD_REGION_WRITE_MULTI, 0, &m,
				 sizeof(m), NULL, 0, NULL, 0, NULL, NULL, NULL),
			 -EINVAL);
	/* a bad region in the last entry: nothing at all is written */
	m.e[1].count = 2;
	m.e[0].data[0] = 0x99;
	m.e[2].region = 99;
	assert_int_equal(tc_call(&c, MU_CMD_REGION_WRITE_MULTI, 0, &m,
				 sizeof(m), NULL, 0, NULL, 0, NULL, NULL, NULL),
			 -EINVAL);
	assert_int_equal(t.bar0[0x40], 0x01);
	m.e[2].region = 2;
	/* wr_cnt lies */
	m.e[1].count = 2;
	m.w.wr_cnt = 4;
	assert_int_equal(tc_call(&c, MU_CMD_REGION_WRITE_MULTI, 0, &m,
				 sizeof(m), NULL, 0, NULL, 0, NULL, NULL, NULL),
			 -EINVAL);
	tc_close(&c);
	td_destroy(&t);
}

static void test_unknown_commands(void **state)
{
	struct td t;
	struct tc c;
	uint8_t p[16] = {0};
	struct mu_hdr h = {.msg_id = 9,
			   .cmd = MU_CMD_DEVICE_GET_INFO,
			   .size = 32,
			   .flags = 0x40};

	(void)state;
	td_create(&t, MU_PCI_EXPRESS);
	td_start(&t);
	assert_int_equal(tc_open(&c, t.path), 0);
	assert_int_equal(
		tc_call(&c, 99, 0, p, 8, NULL, 0, NULL, 0, NULL, NULL, NULL),
		-ENOSYS);
	assert_int_equal(tc_call(&c, MU_CMD_DIRTY_PAGES, 0, p, 8, NULL, 0, NULL,
				 0, NULL, NULL, NULL),
			 -ENOTSUP);
	assert_int_equal(tc_call(&c, MU_CMD_DMA_READ, 0, p, 16, NULL, 0, NULL,
				 0, NULL, NULL, NULL),
			 -EINVAL);
	/* unknown header flag bit */
	{
		uint8_t raw[32];
		struct mu_hdr rh;

		memcpy(raw, &h, sizeof(h));
		memset(raw + 16, 0, 16);
		raw[16] = 16;
		assert_int_equal(tc_raw(&c, raw, sizeof(raw)), 0);
		assert_int_equal(tc_recv(&c, &c.c, &rh, NULL, 0, NULL, 2000),
				 1);
		assert_int_equal(rh.msg_id, 9);
		assert_true(rh.flags & MU_FLAG_ERROR);
		assert_int_equal(rh.error, EINVAL);
	}
	/* still alive */
	assert_int_equal(tc_cfg32(&c, 0), 0x0dc8494f);
	tc_close(&c);
	td_destroy(&t);
}

static void test_reconnect_keeps_state(void **state)
{
	struct td t;
	struct tc c;
	uint32_t v = 0xcafe0001, r = 0;

	(void)state;
	td_create(&t, MU_PCI_EXPRESS);
	td_start(&t);
	assert_int_equal(tc_open(&c, t.path), 0);
	assert_int_equal(tc_write(&c, 2, 0x100, &v, 4), 0);
	tc_cfg_w32(&c, 0x0c, 0x10); /* cache line size */
	tc_close(&c);
	assert_int_equal(tc_open(&c, t.path), 0);
	assert_int_equal(tc_read(&c, 2, 0x100, &r, 4), 0);
	assert_int_equal(r, v);
	assert_int_equal(tc_cfg32(&c, 0x0c) & 0xff, 0x10);
	assert_int_equal(t.nattach, 2);
	assert_int_equal(t.ndetach, 1);
	assert_int_equal(t.last_reset, MU_RESET_LOST_CONN);
	tc_close(&c);
	td_destroy(&t);
}

static void test_extra_client_refused(void **state)
{
	struct td t;
	struct tc c, c2;
	struct mu_hdr h;

	(void)state;
	td_create(&t, MU_PCI_EXPRESS);
	td_start(&t);
	assert_int_equal(tc_open(&c, t.path), 0);
	assert_int_equal(tc_connect(&c2, t.path), 0);
	/* its VERSION gets EBUSY, something a client can print */
	assert_int_equal(tc_version(&c2, 0, 2, NULL), -EBUSY);
	assert_true(tc_recv(&c2, &c2.c, &h, NULL, 0, NULL, 3000) <= 0);
	tc_close(&c2);
	/* a client that connects and says nothing gets the same */
	assert_int_equal(tc_connect(&c2, t.path), 0);
	assert_int_equal(tc_recv(&c2, &c2.c, &h, NULL, 0, NULL, 3000), 1);
	assert_int_equal(h.cmd, MU_CMD_VERSION);
	assert_int_equal(h.msg_id, 0);
	assert_int_equal(h.flags, MU_FLAG_TYPE_REPLY | MU_FLAG_ERROR);
	assert_int_equal(h.error, EBUSY);
	tc_close(&c2);
	assert_int_equal(tc_cfg32(&c, 0), 0x0dc8494f);
	tc_close(&c);
	/* the next one is served */
	assert_int_equal(tc_open(&c, t.path), 0);
	tc_close(&c);
	td_destroy(&t);
}

/* A connection that never negotiates can't hold the device: it is dropped
 * after negotiate_timeout_ms (even if it sends nothing at all), and the
 * next client is served. */
static void test_idle_connection_dropped(void **state)
{
	struct mu_dev_limits l = {.struct_size = sizeof(l),
				  .max_data_xfer_size = 4096,
				  .max_dma_maps = 1,
				  .max_msg_fds = 1,
				  .negotiate_timeout_ms = -1};
	struct td t;
	struct tc c, idle;
	struct mu_hdr h;

	(void)state;
	td_next_negotiate_ms = 300;
	td_create(&t, MU_PCI_EXPRESS);
	assert_int_equal(mu_dev_set_limits(t.dev, &l), -EINVAL); /* realized */
	td_start(&t);
	assert_int_equal(tc_connect(&idle, t.path), 0);
	/* another client meanwhile: busy */
	assert_int_equal(tc_connect(&c, t.path), 0);
	assert_int_equal(tc_version(&c, 0, 2, NULL), -EBUSY);
	tc_close(&c);
	/* the idle one is closed by the server */
	assert_true(tc_recv(&idle, &idle.c, &h, NULL, 0, NULL, 3000) <= 0);
	tc_close(&idle);
	assert_int_equal(tc_open(&c, t.path), 0);
	assert_int_equal(tc_cfg32(&c, 0), 0x0dc8494f);
	tc_close(&c);
	td_destroy(&t);
}

static void test_two_devices(void **state)
{
	struct td a, b;
	struct tc ca, cb;
	uint32_t v = 1, w = 2, r;

	(void)state;
	td_create(&a, MU_PCI_EXPRESS);
	td_create(&b, MU_PCI_CONVENTIONAL);
	td_start(&a);
	td_start(&b);
	assert_int_equal(tc_open(&ca, a.path), 0);
	assert_int_equal(tc_open(&cb, b.path), 0);
	assert_int_equal(tc_write(&ca, 0, 0, &v, 4), 0);
	assert_int_equal(tc_write(&cb, 0, 0, &w, 4), 0);
	assert_int_equal(tc_read(&ca, 0, 0, &r, 4), 0);
	assert_int_equal(r, 1);
	assert_int_equal(tc_read(&cb, 0, 0, &r, 4), 0);
	assert_int_equal(r, 2);
	/* conventional: 256-byte config space */
	assert_int_equal(tc_read(&cb, MU_PCI_CONFIG_REGION_INDEX, 0x100, &r, 4),
			 -EINVAL);
	tc_close(&ca);
	tc_close(&cb);
	td_destroy(&a);
	td_destroy(&b);
}

static void test_client_disappears(void **state)
{
	struct td t;
	struct tc c;
	struct mu_hdr h = {
		.msg_id = 1, .cmd = MU_CMD_REGION_WRITE, .size = 16 + 16 + 4};
	int before = count_open_fds();

	(void)state;
	td_create(&t, MU_PCI_EXPRESS);
	td_start(&t);
	/* mid-header */
	assert_int_equal(tc_open(&c, t.path), 0);
	assert_int_equal(tc_raw(&c, &h, 7), 0);
	tc_close(&c);
	/* mid-payload */
	assert_int_equal(tc_open(&c, t.path), 0);
	assert_int_equal(tc_raw(&c, &h, sizeof(h)), 0);
	assert_int_equal(tc_raw(&c, "abc", 3), 0);
	tc_close(&c);
	/* before VERSION completes */
	assert_int_equal(tc_connect(&c, t.path), 0);
	tc_close(&c);
	/* after an fd was sent with a truncated message */
	assert_int_equal(tc_open(&c, t.path), 0);
	{
		int fd = dup(0);
		struct iovec v = {&h, 10};

		assert_int_equal(mu_sendmsg_all(c.c.fd, &v, 1, &fd, 1), 0);
		close(fd);
	}
	tc_close(&c);
	assert_int_equal(tc_open(&c, t.path), 0);
	assert_int_equal(tc_cfg32(&c, 0), 0x0dc8494f);
	tc_close(&c);
	td_destroy(&t);
	assert_int_equal(count_open_fds(), before);
}

static void test_process_mode_and_fd_leak(void **state)
{
	struct td t;
	struct tc c;
	struct pollfd p;
	int before = count_open_fds(), n, pfd;
	uint32_t v = 7;
	struct mu_region_access a = {0, 0, 4};
	struct mu_hdr h = {.msg_id = 1, .cmd = MU_CMD_REGION_READ}, rh;
	struct iovec iov = {&a, sizeof(a)};
	uint8_t rep[32];
	size_t rl;

	(void)state;
	td_create(&t, MU_PCI_EXPRESS);
	pfd = mu_dev_get_poll_fd(t.dev);
	assert_true(pfd >= 0);
	assert_int_equal(mu_dev_process(t.dev), 0); /* nothing pending */
	assert_int_equal(tc_connect(&c, t.path), 0);
	/* VERSION by hand so that this thread can serve in between */
	{
		uint8_t vb[4] = {0, 0, 2, 0};
		struct mu_hdr vh = {.msg_id = 1, .cmd = MU_CMD_VERSION};
		struct iovec vi = {vb, 4};

		assert_int_equal(mu_chan_send(&c.c, &vh, &vi, 1, NULL, 0), 0);
	}
	p = (struct pollfd){.fd = pfd, .events = POLLIN};
	assert_int_equal(poll(&p, 1, 2000), 1);
	n = mu_dev_process(t.dev);
	assert_true(n >= 0);
	if (n == 0) { /* accepted first, message next */
		assert_int_equal(poll(&p, 1, 2000), 1);
		n = mu_dev_process(t.dev);
	}
	assert_int_equal(n, 1);
	assert_int_equal(tc_recv(&c, &c.c, &rh, NULL, 0, NULL, 1000), 1);
	assert_true(mu_dev_is_attached(t.dev));
	memcpy(t.bar0, &v, 4);
	/* two pipelined reads, one process() call */
	assert_int_equal(mu_chan_send(&c.c, &h, &iov, 1, NULL, 0), 0);
	assert_int_equal(mu_chan_send(&c.c, &h, &iov, 1, NULL, 0), 0);
	assert_int_equal(poll(&p, 1, 2000), 1);
	n = mu_dev_process(t.dev);
	if (n == 1)
		n += mu_dev_process(t.dev);
	assert_int_equal(n, 2);
	assert_int_equal(tc_recv(&c, &c.c, &rh, rep, sizeof(rep), &rl, 1000),
			 1);
	assert_int_equal(rl, 20);
	assert_memory_equal(rep + 16, &v, 4);
	assert_int_equal(tc_recv(&c, &c.c, &rh, rep, sizeof(rep), &rl, 1000),
			 1);
	assert_int_equal(rl, 20);
	tc_close(&c);
	assert_int_equal(poll(&p, 1, 2000), 1);
	assert_true(mu_dev_process(t.dev) >= 0);
	assert_false(mu_dev_is_attached(t.dev));
	td_destroy(&t);
	assert_int_equal(count_open_fds(), before);
}

static void test_create_fd(void **state)
{
	struct mu_pci_id id = {1, 2, 3, 4, 0xff0000, 0};
	mu_dev_t *dev;
	struct tc c;
	int sv[2], before = count_open_fds();

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(mu_dev_create_fd(&dev, sv[0], NULL), 0);
	mu_dev_set_log(dev, NULL, NULL, 0);
	assert_int_equal(mu_pci_setup(dev, &id, MU_PCI_CONVENTIONAL), 0);
	assert_int_equal(mu_dev_realize(dev), 0);
	memset(&c, 0, sizeof(c));
	c.twin = -1;
	assert_int_equal(mu_chan_init(&c.c, sv[1], 1 << 20, 4), 0);
	{
		uint8_t vb[4] = {0, 0, 2, 0};
		struct mu_hdr vh = {.msg_id = 1, .cmd = MU_CMD_VERSION};
		struct iovec vi = {vb, 4};
		struct mu_hdr h;

		assert_int_equal(mu_chan_send(&c.c, &vh, &vi, 1, NULL, 0), 0);
		assert_int_equal(mu_dev_process(dev), 1);
		assert_int_equal(tc_recv(&c, &c.c, &h, NULL, 0, NULL, 1000), 1);
		assert_false(h.flags & MU_FLAG_ERROR);
	}
	tc_close(&c);
	assert_int_equal(mu_dev_process(dev), -ENOTCONN);
	assert_int_equal(mu_dev_process(dev), -ENOTCONN);
	assert_int_equal(mu_dev_run(dev), -ENOTCONN);
	mu_dev_destroy(dev);
	assert_int_equal(count_open_fds(), before);
	/* not a socket */
	assert_int_equal(mu_dev_create_fd(&dev, 0, NULL) < 0, 1);
}

static void test_socket_path(void **state)
{
	struct td t;
	mu_dev_t *d2;
	int fd;
	char path[64];

	(void)state;
	td_create(&t, MU_PCI_EXPRESS);
	/* a live server owns the path */
	assert_int_equal(mu_dev_create(&d2, t.path, NULL), -EADDRINUSE);
	td_destroy(&t);
	/* a stale socket file is reclaimed */
	snprintf(path, sizeof(path), "/tmp/mu-test-stale-%d.sock", getpid());
	fd = mu_sock_listen(path, 1);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(access(path, F_OK), 0);
	assert_int_equal(mu_dev_create(&d2, path, NULL), 0);
	mu_dev_destroy(d2);
	assert_int_equal(access(path, F_OK), -1);
	/* a newer server's socket at our path is not ours to remove */
	assert_int_equal(mu_dev_create(&d2, path, NULL), 0);
	assert_int_equal(unlink(path), 0);
	fd = mu_sock_listen(path, 1);
	assert_true(fd >= 0);
	mu_dev_destroy(d2);
	assert_int_equal(access(path, F_OK), 0);
	close(fd);
	unlink(path);
}

/* Negotiation limits: a client that takes no fds, no common page size. */
static void test_negotiation_subsets(void **state)
{
	uint8_t buf[256];
	struct mu_region_info ri;
	struct td t;
	struct tc c;
	size_t rl;
	int fd;

	(void)state;
	td_create(&t, MU_PCI_EXPRESS);
	td_start(&t);
	assert_int_equal(tc_connect(&c, t.path), 0);
	assert_int_equal(
		tc_version(&c, 0, 2, "{\"capabilities\":{\"pgsizes\":8192}}"),
		-ENOTSUP);
	tc_close(&c);
	assert_int_equal(tc_connect(&c, t.path), 0);
	assert_int_equal(tc_version(&c, 0, 2,
				    "{\"capabilities\":{\"max_msg_fds\":0,"
				    "\"max_dma_maps\":3,"
				    "\"twin_socket\":{\"supported\":true}}}"),
			 0);
	assert_true(c.twin < 0); /* no fd for the twin either */
	assert_non_null(strstr(c.json, "\"max_dma_maps\":3"));
	assert_int_equal(region_info(&c, 2, 256, buf, sizeof(buf), &rl, &fd),
			 0);
	memcpy(&ri, buf, sizeof(ri));
	assert_false(ri.flags & MU_REGION_INFO_FLAG_MMAP);
	assert_int_equal(fd, -1);
	tc_close(&c);
	td_destroy(&t);
}

static void test_footprint(void **state)
{
	struct td *t = calloc(1, sizeof(*t));
	struct tc c;
	struct mallinfo2 m0, m1;
	int n;

	(void)state;
	assert_int_equal(tc_connect(&c, "/nonexistent"), -ENOENT);
	m0 = mallinfo2();
	td_create(t, MU_PCI_EXPRESS);
	td_start(t);
	assert_int_equal(tc_open(&c, t->path), 0);
	assert_int_equal(tc_cfg32(&c, 0), 0x0dc8494f);
	m1 = mallinfo2();
	n = (int)(m1.uordblks - m0.uordblks);
	/* includes this client's own 4 KiB channel buffer */
	assert_true(n < 64 * 1024);
	tc_close(&c);
	td_destroy(t);
	free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_version),
		cmocka_unit_test(test_version_errors),
		cmocka_unit_test(test_twin_negotiation),
		cmocka_unit_test(test_get_info),
		cmocka_unit_test(test_region_info),
		cmocka_unit_test(test_region_rw),
		cmocka_unit_test(test_no_reply),
		cmocka_unit_test(test_write_multi),
		cmocka_unit_test(test_unknown_commands),
		cmocka_unit_test(test_reconnect_keeps_state),
		cmocka_unit_test(test_extra_client_refused),
		cmocka_unit_test(test_idle_connection_dropped),
		cmocka_unit_test(test_two_devices),
		cmocka_unit_test(test_client_disappears),
		cmocka_unit_test(test_process_mode_and_fd_leak),
		cmocka_unit_test(test_create_fd),
		cmocka_unit_test(test_socket_path),
		cmocka_unit_test(test_negotiation_subsets),
		cmocka_unit_test(test_footprint),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
