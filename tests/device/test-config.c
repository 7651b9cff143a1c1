/* SPDX-License-Identifier: BSD-3-Clause */
/* libmuser: PCI config space semantics over the wire. */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "helpers.h"

static void test_header(void **state)
{
	struct tc *c = &((struct fx *)*state)->c;

	assert_int_equal(tc_cfg32(c, 0x00), 0x0dc8494f);
	assert_int_equal(tc_cfg32(c, 0x08), 0xff000001); /* class, rev */
	assert_int_equal(tc_cfg32(c, 0x2c), 0x0001494f);
	assert_int_equal(tc_cfg32(c, 0x0c) >> 16 & 0x7f, 0); /* type 0 */
	/* vendor/device id are read-only */
	tc_cfg_w32(c, 0x00, 0xffffffff);
	assert_int_equal(tc_cfg32(c, 0x00), 0x0dc8494f);
	/* command: only the defined bits stick */
	tc_cfg_w32(c, 0x04, 0x0000ffff);
	assert_int_equal(tc_cfg32(c, 0x04) & 0xffff, 0x0547);
	tc_cfg_w32(c, 0x04, 0);
	/* interrupt pin RO, line RW */
	tc_cfg_w32(c, 0x3c, 0x0000ff0b);
	assert_int_equal(tc_cfg32(c, 0x3c) & 0xffff, 0x010b);
}

static void test_status_w1c(void **state)
{
	struct fx *f = *state;
	uint8_t *cfg = mu_pci_config_space(f->t.dev);
	uint16_t st;

	/* the device raises "received master abort" (bit 13) */
	cfg[0x07] |= 0x20;
	st = (uint16_t)(tc_cfg32(&f->c, 0x04) >> 16);
	assert_true(st & 0x2000);
	assert_true(st & 0x0010); /* capabilities list */
	/* writing 0 keeps it, writing 1 clears it, cap list bit is RO */
	tc_cfg_w32(&f->c, 0x04, 0x00000000);
	assert_true(tc_cfg32(&f->c, 0x04) >> 16 & 0x2000);
	tc_cfg_w32(&f->c, 0x04, 0xffff0000);
	st = (uint16_t)(tc_cfg32(&f->c, 0x04) >> 16);
	assert_false(st & 0x2000);
	assert_true(st & 0x0010);
}

static void test_bar_sizing(void **state)
{
	struct tc *c = &((struct fx *)*state)->c;
	uint64_t size;

	/* BAR0: 32-bit memory, 4 KiB */
	tc_cfg_w32(c, 0x10, 0xffffffff);
	assert_int_equal(tc_cfg32(c, 0x10), 0xfffff000);
	tc_cfg_w32(c, 0x10, 0xfebc1234);
	assert_int_equal(tc_cfg32(c, 0x10), 0xfebc1000);
	/* BAR1: I/O, 256 bytes */
	tc_cfg_w32(c, 0x14, 0xffffffff);
	assert_int_equal(tc_cfg32(c, 0x14), 0xffffff01);
	/* BAR2/3: 64-bit prefetchable, 64 KiB */
	tc_cfg_w32(c, 0x18, 0xffffffff);
	tc_cfg_w32(c, 0x1c, 0xffffffff);
	assert_int_equal(tc_cfg32(c, 0x18), 0xffff000c);
	assert_int_equal(tc_cfg32(c, 0x1c), 0xffffffff);
	size = ~(((uint64_t)tc_cfg32(c, 0x1c) << 32 | tc_cfg32(c, 0x18)) &
		 ~0xfull) +
	       1;
	assert_int_equal(size, TD_BAR2_SIZE);
	/* BAR4: 32-bit, 16 KiB; BAR5 absent reads 0 */
	tc_cfg_w32(c, 0x20, 0xffffffff);
	assert_int_equal(tc_cfg32(c, 0x20), 0xffffc000);
	tc_cfg_w32(c, 0x24, 0xffffffff);
	assert_int_equal(tc_cfg32(c, 0x24), 0);
	/* ROM: size mask plus enable bit */
	tc_cfg_w32(c, 0x30, 0xfffff800);
	assert_int_equal(tc_cfg32(c, 0x30), 0xffff8000);
	tc_cfg_w32(c, 0x30, 0xffffffff);
	assert_int_equal(tc_cfg32(c, 0x30), 0xffff8001);
	tc_cfg_w32(c, 0x30, 0);
}

static void test_odd_accesses(void **state)
{
	struct tc *c = &((struct fx *)*state)->c;
	uint8_t b[7];

	assert_int_equal(tc_read(c, MU_PCI_CONFIG_REGION_INDEX, 1, b, 7), 0);
	assert_int_equal(b[0], 0x49);
	assert_int_equal(b[1], 0xc8);
	assert_int_equal(tc_read(c, MU_PCI_CONFIG_REGION_INDEX, 4095, b, 1), 0);
	assert_int_equal(tc_read(c, MU_PCI_CONFIG_REGION_INDEX, 4095, b, 2),
			 -EINVAL);
	/* a 1-byte write into the middle of the latency timer */
	b[0] = 0x40;
	assert_int_equal(tc_write(c, MU_PCI_CONFIG_REGION_INDEX, 0x0d, b, 1),
			 0);
	assert_int_equal(tc_cfg32(c, 0x0c) >> 8 & 0xff, 0x40);
}

static void test_cap_walk(void **state)
{
	struct tc *c = &((struct fx *)*state)->c;
	uint8_t ids[8], n = 0, ptr;
	uint32_t h;
	unsigned off;

	ptr = (uint8_t)tc_cfg32(c, 0x34);
	while (ptr && n < 8) {
		h = tc_cfg32(c, ptr & ~3u);
		ids[n++] = (uint8_t)h;
		ptr = (uint8_t)(h >> 8);
	}
	assert_int_equal(n, 5);
	assert_int_equal(ids[0], 0x01); /* PM */
	assert_int_equal(ids[1], 0x05); /* MSI */
	assert_int_equal(ids[2], 0x11); /* MSI-X */
	assert_int_equal(ids[3], 0x10); /* PCIe */
	assert_int_equal(ids[4], 0x09); /* vendor */
	/* extended caps: DSN then VSEC */
	h = tc_cfg32(c, 0x100);
	assert_int_equal(h & 0xffff, 0x0003);
	assert_int_equal(tc_cfg32(c, 0x104), 0x55667788);
	assert_int_equal(tc_cfg32(c, 0x108), 0x11223344);
	off = h >> 20;
	assert_true(off > 0x100);
	h = tc_cfg32(c, off);
	assert_int_equal(h & 0xffff, 0x000b);
	assert_int_equal(h >> 20, 0);
	assert_int_equal(tc_cfg32(c, off + 4), 0x00d10042);
	assert_int_equal(tc_cfg32(c, off + 8), 0x04030201);
	/* extended caps are read-only */
	tc_cfg_w32(c, 0x104, 0);
	assert_int_equal(tc_cfg32(c, 0x104), 0x55667788);
}

static unsigned find_cap(struct tc *c, uint8_t id)
{
	uint8_t ptr = (uint8_t)tc_cfg32(c, 0x34);

	while (ptr) {
		uint32_t h = tc_cfg32(c, ptr);

		if ((h & 0xff) == id)
			return ptr;
		ptr = (uint8_t)(h >> 8);
	}
	return 0;
}

static void test_config_read_hook(void **state)
{
	struct fx *f = *state;
	unsigned v = find_cap(&f->c, 0x09);

	assert_int_equal(v, (unsigned)f->t.vndr_off);
	f->t.vndr_live = 0x42;
	assert_int_equal(tc_cfg32(&f->c, v) >> 24, 0x42);
	f->t.vndr_live = 0x43; /* the device changes it: the client sees it */
	assert_int_equal(tc_cfg32(&f->c, v) >> 24, 0x43);
	/* the rest of the cap is the library's: id 9, length 8 */
	assert_int_equal(tc_cfg32(&f->c, v) & 0xff, 0x09);
	assert_int_equal((tc_cfg32(&f->c, v) >> 16) & 0xff, 8);
}

static void test_flr_and_config_written(void **state)
{
	struct fx *f = *state;
	unsigned exp = find_cap(&f->c, 0x10);
	int n;

	assert_true(exp);
	assert_true(tc_cfg32(&f->c, exp + 4) & (1u << 28)); /* FLR cap */
	tc_cfg_w32(&f->c, 0x3c, 0x0a);
	assert_int_equal(f->t.last_cfg_off, 0x3c);
	n = f->t.nreset;
	f->t.nquiesce = 0;
	tc_cfg_w32(&f->c, exp + 8, 0x8000 | 0x2810);
	assert_int_equal(f->t.nreset, n + 1);
	assert_int_equal(f->t.last_reset, MU_RESET_FLR);
	assert_int_equal(f->t.nquiesce, 1);
	/* Initiate FLR reads back 0; config was reset (line = 0) */
	assert_int_equal(tc_cfg32(&f->c, exp + 8) & 0x8000, 0);
	assert_int_equal(tc_cfg32(&f->c, 0x3c) & 0xff, 0);
	/* DEVICE_RESET */
	assert_int_equal(tc_call(&f->c, MU_CMD_DEVICE_RESET, 0, NULL, 0, NULL,
				 0, NULL, 0, NULL, NULL, NULL),
			 0);
	assert_int_equal(f->t.last_reset, MU_RESET_CLIENT_REQ);
	/* with a payload: refused */
	assert_int_equal(tc_call(&f->c, MU_CMD_DEVICE_RESET, 0, "x", 1, NULL, 0,
				 NULL, 0, NULL, NULL, NULL),
			 -EINVAL);
}

/* FLR while the device quiesces asynchronously: the write's reply waits
 * for the reset, and a read sent right after it sees the reset state. */
static void test_flr_async_quiesce(void **state)
{
	struct fx *f = *state;
	unsigned exp = find_cap(&f->c, 0x10);
	struct {
		struct mu_region_access a;
		uint32_t v;
	} w = {{exp + 8, MU_PCI_CONFIG_REGION_INDEX, 4}, 0x8000 | 0x2810};
	struct mu_region_access rd = {0x3c, MU_PCI_CONFIG_REGION_INDEX, 4};
	struct mu_hdr hw = {.msg_id = 41, .cmd = MU_CMD_REGION_WRITE};
	struct mu_hdr hr = {.msg_id = 42, .cmd = MU_CMD_REGION_READ}, rh;
	struct iovec iw = {&w, sizeof(w)}, ir = {&rd, sizeof(rd)};
	uint8_t buf[64];
	uint32_t line;
	size_t len;
	int n;

	tc_cfg_w32(&f->c, 0x3c, 0x0a);
	n = f->t.nreset;
	f->t.quiesce_busy = true;
	assert_int_equal(mu_chan_send(&f->c.c, &hw, &iw, 1, NULL, 0), 0);
	assert_int_equal(mu_chan_send(&f->c.c, &hr, &ir, 1, NULL, 0), 0);
	/* nothing is answered while the device is busy quiescing */
	assert_int_equal(tc_recv(&f->c, &f->c.c, &rh, NULL, 0, NULL, 300),
			 -ETIMEDOUT);
	assert_int_equal(f->t.nreset, n);
	f->t.quiesce_busy = false;
	mu_dev_quiesce_done(f->t.dev, 0);
	assert_int_equal(
		tc_recv(&f->c, &f->c.c, &rh, buf, sizeof(buf), &len, 3000), 1);
	assert_int_equal(rh.msg_id, 41);
	assert_false(rh.flags & MU_FLAG_ERROR);
	assert_int_equal(len, sizeof(struct mu_region_access));
	assert_int_equal(f->t.nreset, n + 1);
	assert_int_equal(f->t.last_reset, MU_RESET_FLR);
	assert_int_equal(
		tc_recv(&f->c, &f->c.c, &rh, buf, sizeof(buf), &len, 3000), 1);
	assert_int_equal(rh.msg_id, 42);
	assert_int_equal(len, sizeof(rd) + 4);
	memcpy(&line, buf + sizeof(rd), 4);
	assert_int_equal(line & 0xff, 0); /* reset before the read ran */
	/* a failed quiesce: no reset, the write still answered */
	f->t.quiesce_busy = true;
	assert_int_equal(mu_chan_send(&f->c.c, &hw, &iw, 1, NULL, 0), 0);
	assert_int_equal(tc_recv(&f->c, &f->c.c, &rh, NULL, 0, NULL, 200),
			 -ETIMEDOUT);
	f->t.quiesce_busy = false;
	mu_dev_quiesce_done(f->t.dev, -EIO);
	assert_int_equal(tc_recv(&f->c, &f->c.c, &rh, NULL, 0, NULL, 3000), 1);
	assert_int_equal(rh.msg_id, 41);
	assert_int_equal(f->t.nreset, n + 1);
	tc_cfg_w32(&f->c, 0x3c, 0x0b); /* and the connection serves on */
	assert_int_equal(tc_cfg32(&f->c, 0x3c) & 0xff, 0x0b);
}

static void test_pm(void **state)
{
	struct tc *c = &((struct fx *)*state)->c;
	unsigned pm = find_cap(c, 0x01);

	assert_true(pm);
	tc_cfg_w32(c, pm + 4, 3);
	assert_int_equal(tc_cfg32(c, pm + 4) & 3, 3);
	tc_cfg_w32(c, pm + 4, 0);
	assert_int_equal(tc_cfg32(c, pm + 4) & 0xb, 0x8); /* No_Soft_Reset */
}

static void test_config_read_api(void **state)
{
	struct fx *f = *state;
	uint32_t v;

	assert_int_equal(mu_pci_config_read(f->t.dev, 0, &v, 4), 0);
	assert_int_equal(v, 0x0dc8494f);
	assert_int_equal(mu_pci_config_read(f->t.dev, 4094, &v, 4), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_header, fx_setup,
						fx_teardown),
		cmocka_unit_test_setup_teardown(test_status_w1c, fx_setup,
						fx_teardown),
		cmocka_unit_test_setup_teardown(test_bar_sizing, fx_setup,
						fx_teardown),
		cmocka_unit_test_setup_teardown(test_odd_accesses, fx_setup,
						fx_teardown),
		cmocka_unit_test_setup_teardown(test_cap_walk, fx_setup,
						fx_teardown),
		cmocka_unit_test_setup_teardown(test_config_read_hook, fx_setup,
						fx_teardown),
		cmocka_unit_test_setup_teardown(test_flr_and_config_written,
						fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_flr_async_quiesce,
						fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_pm, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_config_read_api, fx_setup,
						fx_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
