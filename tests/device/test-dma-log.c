/* SPDX-License-Identifier: BSD-3-Clause */
/* libmuser: dirty page logging (DEVICE_FEATURE DMA_LOGGING_*): probe, the
 * bits that writes through every path set, report-and-clear, page size
 * conversion, every refused input, and logging ending with the client. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <cmocka.h>

#include "helpers.h"

#define PG 4096ull
#define IOVA 0x100000ull
#define RW (MU_DMA_READ | MU_DMA_WRITE)
#define F_GET MU_DEVICE_FEATURE_GET
#define F_SET MU_DEVICE_FEATURE_SET
#define F_PROBE MU_DEVICE_FEATURE_PROBE
#define START MU_DEVICE_FEATURE_DMA_LOGGING_START
#define STOP MU_DEVICE_FEATURE_DMA_LOGGING_STOP
#define REPORT MU_DEVICE_FEATURE_DMA_LOGGING_REPORT

static uint8_t rbuf[(2u << 20) + 64]; /* the last reply */
static size_t rlen;

static int feature(struct tc *c, uint32_t flags, uint32_t argsz,
		   const void *data, size_t dlen)
{
	static uint8_t req[8 + 16 + 300 * 16];
	struct mu_device_feature f = {argsz, flags};

	memcpy(req, &f, sizeof(f));
	if (dlen)
		memcpy(req + sizeof(f), data, dlen);
	rlen = 0;
	return tc_call(c, MU_CMD_DEVICE_FEATURE, 0, req, sizeof(f) + dlen, NULL,
		       0, rbuf, sizeof(rbuf), &rlen, NULL, NULL);
}

/* START with n ranges given as iova, length pairs. */
static int start(struct tc *c, uint64_t page, unsigned n, const uint64_t *r)
{
	uint8_t d[16 + 300 * 16];
	struct mu_dma_logging_control ctl = {page, n, 0};

	memcpy(d, &ctl, sizeof(ctl));
	memcpy(d + sizeof(ctl), r, n * 16);
	return feature(c, F_SET | START, 8 + 16 + n * 16, d, 16 + n * 16);
}

/* REPORT; *bits gets the first bitmap word. */
static int report(struct tc *c, uint64_t iova, uint64_t len, uint64_t page,
		  uint64_t *bits)
{
	struct mu_dma_logging_report rep = {iova, len, page};
	uint64_t words = (len / page + 63) / 64;
	int r = feature(c, F_GET | REPORT, (uint32_t)(32 + words * 8), &rep,
			sizeof(rep));

	if (r == 0) {
		assert_int_equal(rlen, 32 + words * 8);
		assert_memory_equal(rbuf + 8, &rep, sizeof(rep));
		memcpy(bits, rbuf + 32, 8);
	}
	return r;
}

static uint64_t take(struct tc *c, uint64_t iova, uint64_t len, uint64_t page)
{
	uint64_t bits = ~0ull;

	assert_int_equal(report(c, iova, len, page, &bits), 0);
	return bits;
}

static int dma_map(struct tc *c, uint64_t iova, uint64_t size, int fd)
{
	struct mu_dma_map m = {sizeof(m), RW, 0, iova, size};

	return tc_call(c, MU_CMD_DMA_MAP, 0, &m, sizeof(m),
		       fd >= 0 ? &fd : NULL, fd >= 0, NULL, 0, NULL, NULL,
		       NULL);
}

static int stop(struct tc *c)
{
	return feature(c, F_SET | STOP, 8, NULL, 0);
}

static void *run_bare(void *dev)
{
	mu_dev_run(dev);
	return NULL;
}

static void test_probe(void **state)
{
	struct tc *c = &((struct fx *)*state)->c, c2;
	static const struct mu_pci_id id = {0x494f, 1, 0, 0, 0xff0000, 0};
	char path[64];
	mu_dev_t *bare;
	pthread_t thr;
	uint32_t argsz;

	assert_int_equal(feature(c, F_PROBE | START, 8, NULL, 0), 0);
	assert_int_equal(rlen, 8);
	memcpy(&argsz, rbuf, 4);
	assert_int_equal(argsz, 8);
	assert_int_equal(feature(c, F_PROBE | F_SET | START, 8, NULL, 0), 0);
	assert_int_equal(feature(c, F_PROBE | F_SET | STOP, 8, NULL, 0), 0);
	assert_int_equal(feature(c, F_PROBE | F_GET | REPORT, 8, NULL, 0), 0);
	assert_int_equal(feature(c, F_PROBE | F_GET | START, 8, NULL, 0),
			 -EINVAL);
	assert_int_equal(feature(c, F_PROBE | F_GET | F_SET | STOP, 8, NULL, 0),
			 -EINVAL);
	assert_int_equal(feature(c, F_PROBE | F_SET | REPORT, 8, NULL, 0),
			 -EINVAL);
	assert_int_equal(feature(c, F_GET | START, 8, NULL, 0), -EINVAL);
	/* a device without migration has no logging */
	snprintf(path, sizeof(path), "/tmp/mu-dlog-%d.sock", getpid());
	assert_int_equal(mu_dev_create(&bare, path, NULL), 0);
	mu_dev_set_log(bare, NULL, NULL, 0);
	assert_int_equal(mu_pci_setup(bare, &id, MU_PCI_EXPRESS), 0);
	assert_int_equal(mu_dev_realize(bare), 0);
	pthread_create(&thr, NULL, run_bare, bare);
	assert_int_equal(tc_open(&c2, path), 0);
	assert_int_equal(feature(&c2, F_PROBE | START, 8, NULL, 0), -ENOTTY);
	assert_int_equal(report(&c2, IOVA, PG, PG, &(uint64_t){0}), -ENOTTY);
	/* the payload is checked first, whatever the device */
	assert_int_equal(feature(&c2, F_GET | REPORT, 64, NULL, 0), -EINVAL);
	tc_close(&c2);
	mu_dev_stop(bare);
	pthread_join(thr, NULL);
	mu_dev_destroy(bare);
}

/* Writes through every fd-backed path; bits exact; report clears. */
static void test_fd_map(void **state)
{
	struct fx *x = *state;
	struct tc *c = &x->c;
	mu_dev_t *dev = x->t.dev;
	const uint64_t r[] = {IOVA + 20 * PG, 4 * PG, IOVA, 16 * PG};
	int mfd = memfd_create("guest", 0);
	uint8_t data[6 * PG] = {1};
	struct mu_dma_unmap unmap = {sizeof(unmap), 0, IOVA, 32 * PG};
	struct mu_sg sg;
	struct iovec iov;

	assert_int_equal(ftruncate(mfd, 32 * PG), 0);
	assert_int_equal(dma_map(c, IOVA, 32 * PG, mfd), 0);
	close(mfd);
	assert_int_equal(start(c, PG, 2, r), 0);
	assert_int_equal(rlen, 8 + 16 + 2 * 16); /* the request echoed */
	assert_int_equal(start(c, PG, 2, r), -EBUSY);
	assert_int_equal(mu_dma_write(dev, IOVA + 0x10, data, 4), 0);
	assert_int_equal(mu_dma_write(dev, IOVA + 3 * PG - 2, data, 4), 0);
	/* pages 15..20: 16..19 are in no range */
	assert_int_equal(mu_dma_write(dev, IOVA + 15 * PG, data, 6 * PG), 0);
	assert_int_equal(mu_dma_write(dev, IOVA + 30 * PG, data, 8), 0);
	assert_int_equal(mu_dma_mark_dirty(dev, IOVA + 5 * PG, 2 * PG), 0);
	assert_int_equal(mu_dma_mark_dirty(dev, 1ull << 40, 1), 0);
	assert_int_equal(mu_dma_mark_dirty(dev, UINT64_MAX, 2), -EINVAL);
	assert_int_equal(mu_dma_addr_to_sg(dev, IOVA + 8 * PG, PG, RW, &sg, 1),
			 1);
	assert_int_equal(mu_dma_sg_map(dev, &sg, 1, &iov), 1);
	assert_int_equal(
		mu_dma_addr_to_sg(dev, IOVA + 9 * PG, PG, MU_DMA_READ, &sg, 1),
		1);
	assert_int_equal(mu_dma_sg_map(dev, &sg, 1, &iov), 1);
	assert_int_equal(mu_dma_read(dev, IOVA + 10 * PG, data, 8), 0);
	assert_int_equal(take(c, IOVA, 16 * PG, PG),
			 1u << 0 | 1u << 2 | 1u << 3 | 1u << 5 | 1u << 6 |
				 1u << 8 | 1u << 15);
	assert_int_equal(take(c, IOVA + 20 * PG, 4 * PG, PG), 1);
	assert_int_equal(take(c, IOVA, 16 * PG, PG), 0); /* cleared */
	assert_int_equal(take(c, IOVA + 20 * PG, 4 * PG, PG), 0);
	/* a sub-range reports and clears only its own pages */
	assert_int_equal(mu_dma_write(dev, IOVA + 2 * PG, data, 3 * PG), 0);
	assert_int_equal(take(c, IOVA + 3 * PG, 8 * PG, PG), 0x3);
	assert_int_equal(take(c, IOVA, 16 * PG, PG), 1u << 2);
	/* an unmapped window keeps its bits for the next report */
	assert_int_equal(mu_dma_write(dev, IOVA + PG, data, 1), 0);
	assert_int_equal(tc_call(c, MU_CMD_DMA_UNMAP, 0, &unmap, sizeof(unmap),
				 NULL, 0, NULL, 0, NULL, NULL, NULL),
			 0);
	assert_int_equal(take(c, IOVA, 16 * PG, PG), 1u << 1);
	/* after STOP nothing is recorded; STOP again is fine */
	assert_int_equal(stop(c), 0);
	assert_int_equal(rlen, 8);
	assert_int_equal(stop(c), 0);
	assert_int_equal(mu_dma_mark_dirty(dev, IOVA, PG), 0);
	assert_int_equal(start(c, PG, 2, r), 0);
	assert_int_equal(take(c, IOVA, 16 * PG, PG), 0);
	assert_int_equal(stop(c), 0);
}

/* Report page sizes above and below the logging page size. */
static void test_page_sizes(void **state)
{
	struct fx *x = *state;
	struct tc *c = &x->c;
	const uint64_t r[] = {IOVA, 64 * PG};

	assert_int_equal(start(c, PG, 1, r), 0);
	assert_int_equal(mu_dma_mark_dirty(x->t.dev, IOVA + 3 * PG, 1), 0);
	assert_int_equal(mu_dma_mark_dirty(x->t.dev, IOVA + 9 * PG, 1), 0);
	/* 8 KiB: page 3 is bit 1, page 9 bit 4 */
	assert_int_equal(take(c, IOVA, 64 * PG, 2 * PG), 1u << 1 | 1u << 4);
	assert_int_equal(take(c, IOVA, 64 * PG, PG), 0);
	assert_int_equal(stop(c), 0);
	assert_int_equal(start(c, 4 * PG, 1, r), 0);
	assert_int_equal(mu_dma_mark_dirty(x->t.dev, IOVA + 5 * PG, 1), 0);
	/* 4 KiB reports of a 16 KiB log: pages 4..7 */
	assert_int_equal(take(c, IOVA, 64 * PG, PG), 0xf0);
	/* ranges and reports must be whole logging pages */
	assert_int_equal(report(c, IOVA + PG, 4 * PG, PG, &(uint64_t){0}),
			 -EINVAL);
	assert_int_equal(stop(c), 0);
}

/* DMA_WRITE messages to a map without fd, from a device thread. */
struct wr {
	mu_dev_t *dev;
	uint8_t buf[5000];
	int ret;
};

static void *writer(void *p)
{
	struct wr *w = p;

	w->ret = mu_dma_write(w->dev, IOVA + PG + 100, w->buf, sizeof(w->buf));
	return NULL;
}

static void test_msg_map(void **state)
{
	struct fx *x = *state;
	struct tc *c = &x->c;
	const uint64_t r[] = {IOVA, 4 * PG};
	static struct wr w;
	static uint8_t got[8192];
	struct mu_hdr h, rh;
	pthread_t thr;
	size_t len;

	w.dev = x->t.dev;
	memset(w.buf, 0x5a, sizeof(w.buf));
	assert_int_equal(dma_map(c, IOVA, 4 * PG, -1), 0);
	assert_int_equal(start(c, PG, 1, r), 0);
	pthread_create(&thr, NULL, writer, &w);
	assert_int_equal(tc_recv(c, &c->c, &h, got, sizeof(got), &len, 3000),
			 1);
	assert_int_equal(h.cmd, MU_CMD_DMA_WRITE);
	assert_int_equal(len, 16 + sizeof(w.buf));
	assert_memory_equal(got + 16, w.buf, sizeof(w.buf));
	rh = (struct mu_hdr){
		.msg_id = h.msg_id, .cmd = h.cmd, .flags = MU_FLAG_TYPE_REPLY};
	assert_int_equal(mu_chan_send(&c->c, &rh, NULL, 0, NULL, 0), 0);
	pthread_join(thr, NULL);
	assert_int_equal(w.ret, 0);
	assert_int_equal(take(c, IOVA, 4 * PG, PG), 0x6); /* pages 1, 2 */
	assert_int_equal(take(c, IOVA, 4 * PG, PG), 0);
	assert_int_equal(stop(c), 0);
}

static void test_bad_start(void **state)
{
	struct tc *c = &((struct fx *)*state)->c;
	static uint64_t many[2 * 300];
	const uint64_t ok[] = {IOVA, 4 * PG};
	const uint64_t zero[] = {IOVA, 0};
	const uint64_t overlap[] = {IOVA, 4 * PG, IOVA + 3 * PG, 4 * PG};
	const uint64_t odd_iova[] = {IOVA + 8, 4 * PG};
	const uint64_t odd_len[] = {IOVA, 4 * PG + 8};
	const uint64_t wrap[] = {UINT64_MAX - PG + 1, 2 * PG};
	const uint64_t huge[] = {0, 1ull << 50};  /* 32 GiB of bitmap */
	const uint64_t cut[] = {PG, 2, IOVA, PG}; /* num_ranges 2, 1 range */
	unsigned i;

	assert_int_equal(start(c, 0, 1, ok), -EINVAL);
	assert_int_equal(start(c, 3, 1, ok), -EINVAL);
	assert_int_equal(start(c, 2048, 1, ok), -EINVAL);
	assert_int_equal(start(c, 3 * PG, 1, ok), -EINVAL);
	assert_int_equal(start(c, PG, 0, ok), -EINVAL);
	for (i = 0; i < 300; i++) {
		many[2 * i] = IOVA + 2 * i * PG;
		many[2 * i + 1] = PG;
	}
	assert_int_equal(start(c, PG, 257, many), -E2BIG);
	assert_int_equal(start(c, PG, 1, zero), -EINVAL);
	assert_int_equal(start(c, PG, 2, overlap), -EINVAL);
	assert_int_equal(start(c, PG, 1, odd_iova), -EINVAL);
	assert_int_equal(start(c, PG, 1, odd_len), -EINVAL);
	assert_int_equal(start(c, PG, 1, wrap), -EOVERFLOW);
	assert_int_equal(start(c, PG, 1, huge), -E2BIG);
	/* truncated: 2 ranges announced, 1 sent; control cut short */
	assert_int_equal(feature(c, F_SET | START, 64, cut, 32), -EINVAL);
	assert_int_equal(feature(c, F_SET | START, 64, cut, 12), -EINVAL);
	assert_int_equal(feature(c, F_SET | START, 64, NULL, 0), -EINVAL);
	/* none of that started anything; the connection still works */
	assert_int_equal(report(c, IOVA, PG, PG, &(uint64_t){0}), -EINVAL);
	assert_int_equal(start(c, PG, 256, many), 0);
	assert_int_equal(start(c, PG, 1, ok), -EBUSY);
	assert_int_equal(stop(c), 0);
	assert_int_equal(tc_cfg32(c, 0) & 0xffff, 0x494f);
}

static void test_bad_report(void **state)
{
	struct fx *x = *state;
	struct tc *c = &x->c;
	const uint64_t r[] = {IOVA, 16 * PG, 1ull << 36, 1ull << 36};
	struct mu_dma_logging_report rep = {IOVA, 16 * PG, PG};
	uint64_t b;
	uint32_t argsz;

	assert_int_equal(report(c, IOVA, 16 * PG, PG, &b), -EINVAL);
	assert_int_equal(start(c, PG, 2, r), 0);
	assert_int_equal(mu_dma_mark_dirty(x->t.dev, IOVA, 1), 0);
	assert_int_equal(report(c, IOVA - PG, 2 * PG, PG, &b), -EINVAL);
	assert_int_equal(report(c, IOVA + 15 * PG, 2 * PG, PG, &b), -EINVAL);
	assert_int_equal(report(c, IOVA + 32 * PG, PG, PG, &b), -EINVAL);
	assert_int_equal(report(c, IOVA + 8, PG, PG, &b), -EINVAL);
	assert_int_equal(report(c, IOVA, PG, 2048, &b), -EINVAL);
	assert_int_equal(report(c, IOVA, PG, 3 * PG, &b), -EINVAL);
	assert_int_equal(report(c, IOVA, 0, PG, &b), -EINVAL);
	assert_int_equal(report(c, UINT64_MAX - PG + 1, 2 * PG, PG, &b),
			 -EOVERFLOW);
	/* 64 GiB in 4 KiB pages: a 2 MiB bitmap, over the 1 MiB limit */
	assert_int_equal(report(c, 1ull << 36, 1ull << 36, PG, &b), -E2BIG);
	assert_int_equal(report(c, 1ull << 36, 1ull << 36, 2 * PG, &b), 0);
	/* truncated; the wrong operation */
	assert_int_equal(feature(c, F_GET | REPORT, 64, &rep, 16), -EINVAL);
	assert_int_equal(feature(c, F_SET | REPORT, 64, &rep, 24), -EINVAL);
	/* argsz without room for the bitmap: the size needed, bits kept */
	assert_int_equal(feature(c, F_GET | REPORT, 32, &rep, 24), 0);
	assert_int_equal(rlen, 8);
	memcpy(&argsz, rbuf, 4);
	assert_int_equal(argsz, 40);
	assert_int_equal(take(c, IOVA, 16 * PG, PG), 1);
	assert_int_equal(stop(c), 0);
	assert_int_equal(tc_cfg32(c, 0) & 0xffff, 0x494f);
}

/* DEVICE_RESET and a departing client end logging. */
static void test_reset_and_detach(void **state)
{
	struct fx *x = *state;
	const uint64_t r[] = {IOVA, 4 * PG};
	uint64_t b;

	assert_int_equal(start(&x->c, PG, 1, r), 0);
	assert_int_equal(tc_call(&x->c, MU_CMD_DEVICE_RESET, 0, NULL, 0, NULL,
				 0, NULL, 0, NULL, NULL, NULL),
			 0);
	assert_int_equal(report(&x->c, IOVA, PG, PG, &b), -EINVAL);
	assert_int_equal(start(&x->c, PG, 1, r), 0);
	assert_int_equal(mu_dma_mark_dirty(x->t.dev, IOVA, 1), 0);
	tc_close(&x->c);
	assert_int_equal(tc_open(&x->c, x->t.path), 0);
	assert_int_equal(x->t.ndetach, 1);
	assert_int_equal(report(&x->c, IOVA, PG, PG, &b), -EINVAL);
	assert_int_equal(start(&x->c, PG, 1, r), 0); /* not EBUSY */
	assert_int_equal(take(&x->c, IOVA, 4 * PG, PG), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_probe, fx_setup,
						fx_teardown),
		cmocka_unit_test_setup_teardown(test_fd_map, fx_setup,
						fx_teardown),
		cmocka_unit_test_setup_teardown(test_page_sizes, fx_setup,
						fx_teardown),
		cmocka_unit_test_setup_teardown(test_msg_map, fx_setup,
						fx_teardown),
		cmocka_unit_test_setup_teardown(test_bad_start, fx_setup,
						fx_teardown),
		cmocka_unit_test_setup_teardown(test_bad_report, fx_setup,
						fx_teardown),
		cmocka_unit_test_setup_teardown(test_reset_and_detach, fx_setup,
						fx_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
