/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * test-nvme-io.c - muser-nvme's NVM command set driven through
 * libmuser-client without a guest: Read/Write at many offsets and sizes
 * through every PRP shape, in zero-copy guest memory and in memory only
 * reachable by DMA messages, with the backing file checked at the right
 * offsets; then the malformed commands and bad PRPs, each against the
 * status the NVMe 1.4 base specification names for it (section in each
 * comment), with the backing file left untouched.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "nvme-host.h"

#define ST(sc) SC(0, sc)

static void io_qpair(struct fx *f)
{
	create_qpair(f, 1, SQ1_IOVA, CQ1_IOVA, QENTRIES);
}

/* Write len bytes from guest iova to slba, read them back into another
 * guest address, compare with the pattern and the backing file. */
static void roundtrip(struct fx *f, uint64_t wiova, uint64_t riova,
		      uint64_t slba, uint32_t len, unsigned seed)
{
	uint8_t *want = malloc(len), *got = malloc(len);
	struct nvme_sqe c;

	assert_non_null(want);
	assert_non_null(got);
	fill_random(want, len, seed);
	memcpy(gp(f, wiova), want, len);
	c = rw_cmd(NVME_CMD_WRITE, slba, len / f->bs, 0, 0);
	set_prps(f, &c, wiova, len);
	assert_int_equal(exec(f, 1, &c, NULL), 0);
	memset(gp(f, riova), 0, len);
	c = rw_cmd(NVME_CMD_READ, slba, len / f->bs, 0, 0);
	set_prps(f, &c, riova, len);
	assert_int_equal(exec(f, 1, &c, NULL), 0);
	assert_memory_equal(gp(f, riova), want, len);
	read_img(f, slba * f->bs, got, len);
	assert_memory_equal(got, want, len);
	free(want);
	free(got);
}

/* 6.9/6.15 with PRP1 only, PRP1+PRP2, a PRP list, an offset PRP1,
 * zero-copy memory and message-DMA memory. */
static void test_rw_patterns(void **state)
{
	struct fx *f = *state;
	static const uint32_t sizes[] = {512,	1024,  4096,   8192,
					 12288, 65536, 131072, 524288};
	unsigned seed = 1;

	io_qpair(f);
	for (unsigned i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		uint32_t len = sizes[i];

		if (len < f->bs)
			continue;
		uint64_t slba = (seed * 977u) % (f->nlb - len / f->bs);
		/* Page aligned, then offset by a dword-aligned amount. */
		roundtrip(f, DATA_IOVA, DATA_IOVA + (4u << 20), slba, len,
			  seed++);
		roundtrip(f, DATA_IOVA + 0x200, DATA_IOVA + (4u << 20) + 0x600,
			  (slba + 7) % (f->nlb - len / f->bs), len, seed++);
		if (len <= BUF_SIZE / 2)
			roundtrip(f, BUF_IOVA + 0x400, BUF_IOVA + BUF_SIZE / 2,
				  slba / 2, len, seed++);
	}
	/* The last block and the first. */
	roundtrip(f, DATA_IOVA, DATA_IOVA + 0x10000, f->nlb - 1, f->bs, 99);
	roundtrip(f, DATA_IOVA, DATA_IOVA + 0x10000, 0, f->bs, 100);
}

/* Write Zeroes zeroes; Flush and FUA writes succeed; DSM deallocate
 * reads back as zeroes (6.7, 6.8, 6.16). */
static void test_zeroes_flush_dsm(void **state)
{
	struct fx *f = *state;
	uint8_t got[8192], zero[8192] = {0};
	struct nvme_dsm_range *r;
	struct nvme_sqe c;

	io_qpair(f);
	roundtrip(f, DATA_IOVA, DATA_IOVA + 0x100000, 64, 8192, 7);
	c = rw_cmd(NVME_CMD_WRITE_ZEROES, 64, 16, 0, 0);
	assert_int_equal(exec(f, 1, &c, NULL), 0);
	read_img(f, 64 * f->bs, got, sizeof(got));
	assert_memory_equal(got, zero, sizeof(got));

	c = (struct nvme_sqe){.opcode = NVME_CMD_FLUSH, .nsid = 1};
	assert_int_equal(exec(f, 1, &c, NULL), 0);
	c = (struct nvme_sqe){.opcode = NVME_CMD_FLUSH, .nsid = NVME_NSID_ALL};
	assert_int_equal(exec(f, 1, &c, NULL), 0);

	fill_random(gp(f, DATA_IOVA), 4096, 3);
	c = rw_cmd(NVME_CMD_WRITE, 128, 8, DATA_IOVA, 0);
	c.cdw12 |= NVME_RW_FUA;
	assert_int_equal(exec(f, 1, &c, NULL), 0);
	read_img(f, 128 * f->bs, got, 4096);
	assert_memory_equal(got, gp(f, DATA_IOVA), 4096);

	r = (struct nvme_dsm_range *)gp(f, DATA_IOVA + 0x8000);
	memset(r, 0, 4096);
	r[0].slba = 128;
	r[0].nlb = 8;
	c = (struct nvme_sqe){.opcode = NVME_CMD_DSM,
			      .nsid = 1,
			      .prp1 = DATA_IOVA + 0x8000,
			      .cdw10 = 0,
			      .cdw11 = NVME_DSM_AD};
	assert_int_equal(exec(f, 1, &c, NULL), 0);
	read_img(f, 128 * f->bs, got, 4096);
	assert_memory_equal(got, zero, 4096);
	/* A range past the end: LBA Out of Range. */
	r[0].slba = f->nlb - 1;
	r[0].nlb = 2;
	assert_int_equal(STATUS(exec(f, 1, &c, NULL)), ST(NVME_SC_LBA_RANGE));
}

/* Malformed commands: 4.2 (fused, SGL), 6.x (namespace, opcode, LBA
 * range), 5.15.2.1 (MDTS). None touches the backing file. */
static void test_malformed(void **state)
{
	struct fx *f = *state;
	uint8_t before[4096], after[4096];
	struct nvme_sqe c;

	io_qpair(f);
	read_img(f, 0, before, sizeof(before));
	fill_random(gp(f, DATA_IOVA), 4096, 5);

	c = rw_cmd(0x7e, 0, 8, DATA_IOVA, 0); /* no such opcode */
	assert_int_equal(STATUS(exec(f, 1, &c, NULL)),
			 ST(NVME_SC_INVALID_OPCODE));
	c = rw_cmd(NVME_CMD_WRITE, 0, 8, DATA_IOVA, 0);
	c.nsid = 2;
	assert_int_equal(STATUS(exec(f, 1, &c, NULL)), ST(NVME_SC_INVALID_NS));
	c.nsid = 0;
	assert_int_equal(STATUS(exec(f, 1, &c, NULL)), ST(NVME_SC_INVALID_NS));
	c = (struct nvme_sqe){.opcode = NVME_CMD_FLUSH, .nsid = 5};
	assert_int_equal(STATUS(exec(f, 1, &c, NULL)), ST(NVME_SC_INVALID_NS));
	c = rw_cmd(NVME_CMD_WRITE, 0, 8, DATA_IOVA, 0);
	c.flags = 1; /* fused, first */
	assert_int_equal(STATUS(exec(f, 1, &c, NULL)),
			 ST(NVME_SC_INVALID_FIELD));
	c.flags = 1u << 6; /* PSDT: SGL */
	assert_int_equal(STATUS(exec(f, 1, &c, NULL)),
			 ST(NVME_SC_INVALID_FIELD));
	/* LBA range: past the end, straddling it, a huge SLBA whose sum
	 * wraps. */
	c = rw_cmd(NVME_CMD_WRITE, f->nlb, 1, DATA_IOVA, 0);
	assert_int_equal(STATUS(exec(f, 1, &c, NULL)), ST(NVME_SC_LBA_RANGE));
	c = rw_cmd(NVME_CMD_READ, f->nlb - 1, 2, DATA_IOVA, 0);
	assert_int_equal(STATUS(exec(f, 1, &c, NULL)), ST(NVME_SC_LBA_RANGE));
	c = rw_cmd(NVME_CMD_WRITE, UINT64_MAX, 8, DATA_IOVA, 0);
	assert_int_equal(STATUS(exec(f, 1, &c, NULL)), ST(NVME_SC_LBA_RANGE));
	c = rw_cmd(NVME_CMD_WRITE_ZEROES, f->nlb - 4, 8, 0, 0);
	assert_int_equal(STATUS(exec(f, 1, &c, NULL)), ST(NVME_SC_LBA_RANGE));
	/* More than MDTS (512 KiB) in one command. */
	c = rw_cmd(NVME_CMD_WRITE, 0, (1u << 20) / f->bs, DATA_IOVA, 0);
	set_prps(f, &c, DATA_IOVA, 1u << 20);
	assert_int_equal(STATUS(exec(f, 1, &c, NULL)),
			 ST(NVME_SC_INVALID_FIELD));
	read_img(f, 0, after, sizeof(after));
	assert_memory_equal(before, after, sizeof(after));
}

/* 4.3 PRPs: a PRP1 not dword aligned, a PRP2 data pointer or a list
 * entry with an offset, a misaligned list pointer: PRP Offset Invalid;
 * PRPs outside guest memory: Data Transfer Error, and nothing read or
 * written outside mapped memory (the server lives on). */
static void test_bad_prps(void **state)
{
	struct fx *f = *state;
	uint8_t before[3 * 4096], after[3 * 4096];
	uint64_t *list = (uint64_t *)gp(f, LIST_IOVA);
	struct nvme_sqe c;

	io_qpair(f);
	read_img(f, 0, before, sizeof(before));
	fill_random(gp(f, DATA_IOVA), 3 * 4096, 9);

	c = rw_cmd(NVME_CMD_WRITE, 0, 8, DATA_IOVA + 2, 0);
	assert_int_equal(STATUS(exec(f, 1, &c, NULL)),
			 ST(NVME_SC_PRP_OFFSET_INVALID));
	c = rw_cmd(NVME_CMD_WRITE, 0, 16, DATA_IOVA, DATA_IOVA + 0x1200);
	assert_int_equal(STATUS(exec(f, 1, &c, NULL)),
			 ST(NVME_SC_PRP_OFFSET_INVALID));
	list[0] = DATA_IOVA + 0x1000;
	list[1] = DATA_IOVA + 0x2008; /* an entry with an offset */
	c = rw_cmd(NVME_CMD_WRITE, 0, 24, DATA_IOVA, LIST_IOVA);
	assert_int_equal(STATUS(exec(f, 1, &c, NULL)),
			 ST(NVME_SC_PRP_OFFSET_INVALID));
	list[1] = DATA_IOVA + 0x2000;
	c = rw_cmd(NVME_CMD_WRITE, 0, 24, DATA_IOVA, LIST_IOVA + 4);
	assert_int_equal(STATUS(exec(f, 1, &c, NULL)),
			 ST(NVME_SC_PRP_OFFSET_INVALID));

	/* Unmapped: PRP1, PRP2, a list entry, the list itself, a page
	 * straddling the end of guest memory. */
	c = rw_cmd(NVME_CMD_WRITE, 0, 8, 0x7000000000ull, 0);
	assert_int_equal(STATUS(exec(f, 1, &c, NULL)) & 0x7ff,
			 NVME_SC_DATA_XFER_ERROR);
	c = rw_cmd(NVME_CMD_READ, 0, 16, DATA_IOVA, 0x7000000000ull);
	assert_int_equal(STATUS(exec(f, 1, &c, NULL)) & 0x7ff,
			 NVME_SC_DATA_XFER_ERROR);
	list[1] = 0x10000000ull; /* a hole between MEM and BUF */
	c = rw_cmd(NVME_CMD_WRITE, 0, 24, DATA_IOVA, LIST_IOVA);
	assert_int_equal(STATUS(exec(f, 1, &c, NULL)) & 0x7ff,
			 NVME_SC_DATA_XFER_ERROR);
	c = rw_cmd(NVME_CMD_WRITE, 0, 24, DATA_IOVA, 0x7000000000ull);
	assert_int_equal(STATUS(exec(f, 1, &c, NULL)) & 0x7ff,
			 NVME_SC_DATA_XFER_ERROR);
	c = rw_cmd(NVME_CMD_READ, 0, 16, MEM_IOVA + MEM_SIZE - 0x1000,
		   MEM_IOVA + MEM_SIZE);
	assert_int_equal(STATUS(exec(f, 1, &c, NULL)) & 0x7ff,
			 NVME_SC_DATA_XFER_ERROR);
	/* A list pointer in the last qword of a page: the entry there
	 * chains on (more than one page left), and must be page aligned. */
	list[511] = DATA_IOVA + 0x10;
	c = rw_cmd(NVME_CMD_WRITE, 0, 24, DATA_IOVA, LIST_IOVA + 0xff8);
	assert_int_equal(STATUS(exec(f, 1, &c, NULL)),
			 ST(NVME_SC_PRP_OFFSET_INVALID));

	read_img(f, 0, after, sizeof(after));
	assert_memory_equal(before, after, sizeof(after));
	/* And the controller still works. */
	roundtrip(f, DATA_IOVA, DATA_IOVA + 0x10000, 0, 4096, 11);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_rw_patterns, fx_setup,
						fx_teardown),
		cmocka_unit_test_setup_teardown(test_rw_patterns, fx_setup_4k,
						fx_teardown),
		cmocka_unit_test_setup_teardown(test_zeroes_flush_dsm, fx_setup,
						fx_teardown),
		cmocka_unit_test_setup_teardown(test_malformed, fx_setup,
						fx_teardown),
		cmocka_unit_test_setup_teardown(test_bad_prps, fx_setup,
						fx_teardown),
	};

	return nvme_run_tests(argc, argv, "nvme-io", tests,
			      sizeof(tests) / sizeof(tests[0]));
}
