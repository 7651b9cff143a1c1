/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * test-dma.c - drive the muser-dma-test sample with libmuser-client:
 * copy/fill/checksum over memfd-backed maps (the server mmaps them) and
 * over fd-less maps (DMA_READ/DMA_WRITE messages the client library
 * serves), completion by MSI-X, MSI and INTx, quiesce around unmap, the
 * sparse-mmap BAR, and reset; each with the sample's poll loop and with
 * --blocking (mu_dev_run()).
 */
#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "dma-test.h"
#include "harness.h"

static const char *server_bin;

#define CFG MU_PCI_CONFIG_REGION_INDEX
#define BAR0 MU_PCI_BAR0_REGION_INDEX
#define BAR2 MU_PCI_BAR2_REGION_INDEX
#define BAR4 MU_PCI_BAR4_REGION_INDEX

#define MEM_IOVA 0x10000000ull
#define MEM_SIZE (2 * DMAT_MAX_LEN) /* the largest copy, both sides */
#define BUF_IOVA 0x40000000ull
#define BUF_SIZE (1u << 20)
#define RO_IOVA 0x50000000ull

struct fixture {
	struct server srv;
	mu_client_t *c;
	int memfd;
	uint8_t *mem; /* our view of the memfd */
	uint8_t *buf; /* fd-less map */
	int msix[DMAT_MSIX_VECTORS];
};

static int setup_common(void **state, bool twin, bool blocking)
{
	static const char *const poll_args[] = {"--quiet", NULL};
	static const char *const blocking_args[] = {"--quiet", "--blocking",
						    NULL};
	const char *const *args = blocking ? blocking_args : poll_args;
	struct mu_client_opts opts = {.struct_size = sizeof(opts),
				      .no_twin_socket = !twin};
	struct mu_client_session sess;
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	f->memfd = memfd_create("dma-test", MFD_CLOEXEC);
	if (f->memfd < 0 || ftruncate(f->memfd, MEM_SIZE) < 0)
		return -1;
	f->mem = mmap(NULL, MEM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED,
		      f->memfd, 0);
	f->buf = calloc(1, BUF_SIZE);
	if (f->mem == MAP_FAILED || !f->buf)
		return -1;
	if (server_start(&f->srv, server_bin, args) < 0 ||
	    client_connect_opts(f->srv.sock, &opts, &f->c) < 0 ||
	    mu_client_get_session(f->c, &sess) < 0 || sess.twin_socket != twin)
		return -1;
	if (mu_client_dma_map_fd(f->c, MEM_IOVA, MEM_SIZE, f->memfd, 0,
				 MU_DMA_MAP_FLAG_READ | MU_DMA_MAP_FLAG_WRITE) <
		    0 ||
	    mu_client_dma_map_buffer(f->c, BUF_IOVA, f->buf, BUF_SIZE,
				     MU_DMA_MAP_FLAG_READ |
					     MU_DMA_MAP_FLAG_WRITE) < 0)
		return -1;
	for (unsigned i = 0; i < DMAT_MSIX_VECTORS; i++) {
		f->msix[i] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (f->msix[i] < 0)
			return -1;
	}
	if (mu_client_irq_set_eventfds(f->c, MU_PCI_MSIX_IRQ_INDEX, 0,
				       DMAT_MSIX_VECTORS, f->msix) < 0)
		return -1;
	*state = f;
	return 0;
}

static int dma_setup(void **state)
{
	return setup_common(state, true, false);
}

/* DMA_READ/WRITE share the main socket with the client's requests. */
static int dma_setup_no_twin(void **state)
{
	return setup_common(state, false, false);
}

/* The server runs mu_dev_run() (--blocking). */
static int dma_setup_blocking(void **state)
{
	return setup_common(state, true, true);
}

/* --blocking without twin socket: the worker's message DMA shares the main
 * socket with mu_dev_run(), which hands it the replies. */
static int dma_setup_blocking_no_twin(void **state)
{
	return setup_common(state, false, true);
}

static int dma_teardown(void **state)
{
	struct fixture *f = *state;

	if (!f)
		return 0;
	mu_client_destroy(f->c);
	assert_int_equal(server_stop(&f->srv, SIGTERM), 0);
	server_cleanup(&f->srv);
	for (unsigned i = 0; i < DMAT_MSIX_VECTORS; i++)
		close(f->msix[i]);
	munmap(f->mem, MEM_SIZE);
	close(f->memfd);
	free(f->buf);
	free(f);
	return 0;
}

static uint32_t rd(mu_client_t *c, uint64_t off)
{
	uint32_t v = 0xdeadbeef;

	assert_int_equal(mu_client_region_read(c, BAR0, off, &v, 4), 0);
	return v;
}

static void wr(mu_client_t *c, uint64_t off, uint32_t v)
{
	assert_int_equal(mu_client_region_write(c, BAR0, off, &v, 4), 0);
}

static void wr64(mu_client_t *c, uint64_t off, uint64_t v)
{
	assert_int_equal(mu_client_region_write(c, BAR0, off, &v, 8), 0);
}

static void program(mu_client_t *c, uint32_t op, uint64_t src, uint64_t dst,
		    uint32_t len, uint32_t fill)
{
	wr64(c, DMAT_REG_SRC_LO, src);
	wr64(c, DMAT_REG_DST_LO, dst);
	wr(c, DMAT_REG_LEN, len);
	wr(c, DMAT_REG_OP, op);
	wr(c, DMAT_REG_FILL, fill);
	wr(c, DMAT_REG_CMD, DMAT_CMD_START);
}

/* Wait for an eventfd while serving the server's DMA requests. */
static uint64_t wait_irq(struct fixture *f, int efd, int ms)
{
	for (int waited = 0; waited < ms; waited += 10) {
		struct pollfd p[2] = {
			{.fd = efd, .events = POLLIN},
			{.fd = mu_client_get_poll_fd(f->c), .events = POLLIN},
		};
		uint64_t v;

		if (poll(p, 2, 10) < 0)
			continue;
		/* Unconditionally: a DMA request that arrived together with
		 * the last reply sits in the client's buffer, and its fd
		 * does not show it (reported to libmuser-client). */
		assert_true(mu_client_process(f->c) >= 0);
		if (p[0].revents && read(efd, &v, sizeof(v)) == sizeof(v))
			return v;
	}
	return 0;
}

/* Poll STATUS until BUSY clears; region reads also serve DMA. */
static uint32_t wait_idle(struct fixture *f)
{
	uint32_t st = 0;

	for (int i = 0; i < 20000; i++) {
		st = rd(f->c, DMAT_REG_STATUS);
		if (!(st & DMAT_STATUS_BUSY))
			return st;
		usleep(100);
	}
	fail_msg("operation still busy: status 0x%x", st);
	return st;
}

/* STATUS must say DONE; else show why. */
static void expect_done(struct fixture *f)
{
	uint32_t st = rd(f->c, DMAT_REG_STATUS);

	if (st != DMAT_STATUS_DONE)
		fail_msg("status 0x%x, result %u", st,
			 rd(f->c, DMAT_REG_RESULT));
}

static void fill_random(uint8_t *p, size_t n, unsigned seed)
{
	uint32_t x = seed * 2654435761u + 1;

	for (size_t i = 0; i < n; i++) {
		x ^= x << 13, x ^= x >> 17, x ^= x << 5;
		p[i] = (uint8_t)x;
	}
}

static uint32_t cfg32(mu_client_t *c, uint64_t off)
{
	uint32_t v = 0;

	assert_int_equal(mu_client_region_read(c, CFG, off, &v, 4), 0);
	return v;
}

/* ---- tests ----------------------------------------------------------- */

static void test_identity(void **state)
{
	struct fixture *f = *state;
	const struct mu_client_region *r;
	struct mu_irq_info irq;
	unsigned off, seen = 0;
	int guard = 0;

	assert_int_equal(cfg32(f->c, 0), DMAT_DEVICE << 16 | DMAT_VENDOR);
	assert_int_equal(cfg32(f->c, 0x08), DMAT_CLASS << 8 | DMAT_VERSION);
	assert_int_equal(rd(f->c, DMAT_REG_MAGIC), DMAT_MAGIC);
	assert_int_equal(rd(f->c, DMAT_REG_CAPS) & 0xff, DMAT_MSIX_VECTORS);

	/* Walk the capability list. */
	assert_true((cfg32(f->c, 0x04) >> 16) & 0x10);
	off = cfg32(f->c, 0x34) & 0xfc;
	while (off && guard++ < 48) {
		uint32_t hdr = cfg32(f->c, off);

		switch (hdr & 0xff) {
		case 0x01:
			seen |= 1;
			break;
		case 0x05:
			seen |= 2;
			break;
		case 0x10:
			seen |= 4;
			break;
		case 0x11:
			seen |= 8;
			assert_int_equal((hdr >> 16) & 0x7ff,
					 DMAT_MSIX_VECTORS - 1);
			assert_int_equal(cfg32(f->c, off + 4),
					 DMAT_MSIX_TABLE_OFF | 2);
			assert_int_equal(cfg32(f->c, off + 8),
					 DMAT_MSIX_PBA_OFF | 2);
			break;
		}
		off = (hdr >> 8) & 0xfc;
	}
	assert_int_equal(seen, 0xf);
	/* Extended capability at 0x100: device serial number. */
	assert_int_equal(cfg32(f->c, 0x100) & 0xffff, 0x0003);

	assert_int_equal(mu_client_region_info(f->c, BAR0, &r), 0);
	assert_int_equal(r->size, DMAT_BAR0_SIZE);
	assert_false(r->flags & MU_REGION_INFO_FLAG_MMAP);
	assert_int_equal(mu_client_region_info(f->c, BAR4, &r), 0);
	assert_int_equal(r->size, DMAT_BAR4_SIZE);
	assert_true(r->flags & MU_REGION_INFO_FLAG_MMAP);
	assert_int_equal(r->nr_sparse, 1);
	assert_int_equal(r->sparse[0].offset, DMAT_BAR4_MMAP_OFF);
	assert_int_equal(r->sparse[0].size, DMAT_BAR4_MMAP_SIZE);
	/* BAR4 is 64-bit prefetchable. */
	assert_int_equal(cfg32(f->c, 0x20) & 0xf, 0xc);

	assert_int_equal(mu_client_irq_info(f->c, MU_PCI_MSIX_IRQ_INDEX, &irq),
			 0);
	assert_int_equal(irq.count, DMAT_MSIX_VECTORS);
	assert_int_equal(mu_client_irq_info(f->c, MU_PCI_MSI_IRQ_INDEX, &irq),
			 0);
	assert_int_equal(irq.count, 1);

	/* Registers want 4 or 8 bytes, 4-aligned. */
	uint16_t h;
	assert_true(mu_client_region_read(f->c, BAR0, 0, &h, 2) < 0);
	assert_true(mu_client_region_read(f->c, BAR0, 2, &h, 2) < 0);
	wr(f->c, DMAT_REG_SCRATCH, 0x12345678);
	assert_int_equal(rd(f->c, DMAT_REG_SCRATCH), 0x12345678);
}

static void test_copy_mmapped(void **state)
{
	struct fixture *f = *state;
	const uint32_t len = 3u << 20; /* several chunks, odd size below */
	uint32_t done = rd(f->c, DMAT_REG_COMPLETED);

	fill_random(f->mem, len, 1);
	memset(f->mem + (8u << 20), 0, len);
	wr(f->c, DMAT_REG_IRQ_CTRL, DMAT_IRQ_EN | 1u << DMAT_IRQ_VECTOR_SHIFT);
	program(f->c, DMAT_OP_COPY, MEM_IOVA, MEM_IOVA + (8u << 20), len - 5,
		0);
	assert_true(wait_irq(f, f->msix[1], 5000) > 0);
	assert_int_equal(rd(f->c, DMAT_REG_STATUS), DMAT_STATUS_DONE);
	assert_memory_equal(f->mem + (8u << 20), f->mem, len - 5);
	assert_int_equal(f->mem[(8u << 20) + len - 5], 0);
	assert_int_equal(rd(f->c, DMAT_REG_COMPLETED), done + 1);
	/* Other vectors stayed quiet. */
	assert_int_equal(eventfd_wait(f->msix[0], 0), 0);
	assert_int_equal(eventfd_wait(f->msix[2], 0), 0);
	wr(f->c, DMAT_REG_STATUS, DMAT_STATUS_DONE);
	assert_int_equal(rd(f->c, DMAT_REG_STATUS), 0);
}

static void test_fill_and_checksum(void **state)
{
	struct fixture *f = *state;
	const uint32_t len = 100003;
	static const char check[] = "123456789";

	wr(f->c, DMAT_REG_IRQ_CTRL, DMAT_IRQ_EN | 2u << DMAT_IRQ_VECTOR_SHIFT);
	program(f->c, DMAT_OP_FILL, 0, MEM_IOVA + 4096, len, 0xdeadbeef);
	assert_true(wait_irq(f, f->msix[2], 5000) > 0);
	assert_int_equal(rd(f->c, DMAT_REG_STATUS), DMAT_STATUS_DONE);
	for (uint32_t i = 0; i < len; i++)
		if (f->mem[4096 + i] != (uint8_t)(0xdeadbeef >> 8 * (i % 4)))
			fail_msg("fill byte %u is 0x%02x", i, f->mem[4096 + i]);

	memcpy(f->mem, check, 9);
	program(f->c, DMAT_OP_CHECKSUM, MEM_IOVA, 0, 9, 0);
	assert_true(wait_irq(f, f->msix[2], 5000) > 0);
	assert_int_equal(rd(f->c, DMAT_REG_RESULT), 0xcbf43926);

	fill_random(f->mem, 1u << 20, 7);
	program(f->c, DMAT_OP_CHECKSUM, MEM_IOVA + 1, 0, (1u << 20) - 1, 0);
	assert_true(wait_irq(f, f->msix[2], 5000) > 0);
	assert_int_equal(rd(f->c, DMAT_REG_RESULT),
			 crc32_ref(f->mem + 1, (1u << 20) - 1));

	/* LEN 0 completes at once with CRC 0. */
	program(f->c, DMAT_OP_CHECKSUM, MEM_IOVA, 0, 0, 0);
	assert_true(wait_irq(f, f->msix[2], 5000) > 0);
	assert_int_equal(rd(f->c, DMAT_REG_STATUS), DMAT_STATUS_DONE);
	assert_int_equal(rd(f->c, DMAT_REG_RESULT), 0);
}

/* fd-less map: every byte goes through DMA_READ/DMA_WRITE messages. */
static void test_message_dma(void **state)
{
	struct fixture *f = *state;
	const uint32_t len = 300000;

	fill_random(f->buf, len, 3);
	memset(f->buf + 512 * 1024, 0, len);
	wr(f->c, DMAT_REG_IRQ_CTRL, DMAT_IRQ_EN | 0u << DMAT_IRQ_VECTOR_SHIFT);
	program(f->c, DMAT_OP_COPY, BUF_IOVA, BUF_IOVA + 512 * 1024, len, 0);
	assert_true(wait_irq(f, f->msix[0], 10000) > 0);
	expect_done(f);
	assert_memory_equal(f->buf + 512 * 1024, f->buf, len);

	/* Same with completion found by polling STATUS. */
	program(f->c, DMAT_OP_CHECKSUM, BUF_IOVA, 0, len, 0);
	assert_int_equal(wait_idle(f), DMAT_STATUS_DONE);
	assert_int_equal(rd(f->c, DMAT_REG_RESULT), crc32_ref(f->buf, len));
	(void)eventfd_wait(f->msix[0], 100);

	program(f->c, DMAT_OP_FILL, 0, BUF_IOVA + 10, 1000, 0x01020304);
	assert_int_equal(wait_idle(f), DMAT_STATUS_DONE);
	assert_int_equal(f->buf[10], 4);
	assert_int_equal(f->buf[13], 1);
	(void)eventfd_wait(f->msix[0], 100);

	/* Between the two kinds of map. */
	fill_random(f->mem, 65536, 9);
	program(f->c, DMAT_OP_COPY, MEM_IOVA, BUF_IOVA, 65536, 0);
	assert_int_equal(wait_idle(f), DMAT_STATUS_DONE);
	assert_memory_equal(f->buf, f->mem, 65536);
	(void)eventfd_wait(f->msix[0], 100);
}

/* One operation over two adjacent maps, one with fd (the server touches
 * it in place) and one without (messages), boundaries at odd offsets:
 * the fill pattern keeps its phase from piece to piece. */
static void test_across_maps(void **state)
{
	struct fixture *f = *state;
	const uint64_t edge = MEM_IOVA + MEM_SIZE; /* MEM ends, XB starts */
	const uint32_t xlen = 64u << 10, len = 10007, head = 4097;
	uint8_t *xb = calloc(1, xlen), *want = malloc(len);
	uint8_t *mem_end = f->mem + MEM_SIZE;

	assert_non_null(xb);
	assert_non_null(want);
	assert_int_equal(mu_client_dma_map_buffer(
				 f->c, edge, xb, xlen,
				 MU_DMA_MAP_FLAG_READ | MU_DMA_MAP_FLAG_WRITE),
			 0);
	wr(f->c, DMAT_REG_IRQ_CTRL, 0);

	/* fill: head bytes in MEM, the rest in XB */
	memset(mem_end - head - 8, 0, head + 8);
	program(f->c, DMAT_OP_FILL, 0, edge - head, len, 0x11223344);
	assert_int_equal(wait_idle(f), DMAT_STATUS_DONE);
	for (uint32_t i = 0; i < len; i++) {
		uint8_t b =
			i < head ? mem_end[(int64_t)i - head] : xb[i - head];

		if (b != (uint8_t)(0x11223344u >> 8 * (i % 4)))
			fail_msg("fill byte %u is 0x%02x", i, b);
	}
	assert_int_equal(mem_end[-(int64_t)head - 1], 0);
	assert_int_equal(xb[len - head], 0);

	/* copy from MEM (straddling into XB) to BUF, and back */
	fill_random(mem_end - head, head, 21);
	fill_random(xb, len - head, 22);
	memcpy(want, mem_end - head, head);
	memcpy(want + head, xb, len - head);
	program(f->c, DMAT_OP_COPY, edge - head, BUF_IOVA + 3, len, 0);
	assert_int_equal(wait_idle(f), DMAT_STATUS_DONE);
	assert_memory_equal(f->buf + 3, want, len);
	memset(mem_end - head, 0, head);
	memset(xb, 0, len - head);
	program(f->c, DMAT_OP_COPY, BUF_IOVA + 3, edge - head, len, 0);
	assert_int_equal(wait_idle(f), DMAT_STATUS_DONE);
	assert_memory_equal(mem_end - head, want, head);
	assert_memory_equal(xb, want + head, len - head);

	/* checksum over both */
	program(f->c, DMAT_OP_CHECKSUM, edge - head, 0, len, 0);
	assert_int_equal(wait_idle(f), DMAT_STATUS_DONE);
	assert_int_equal(rd(f->c, DMAT_REG_RESULT), crc32_ref(want, len));

	/* running off the end of XB: nothing is done, DMA_WRITE error */
	program(f->c, DMAT_OP_FILL, 0, edge + xlen - 8, 16, 0x01020304);
	assert_int_equal(wait_idle(f), DMAT_STATUS_ERR(DMAT_ERR_DMA_WRITE));
	assert_int_equal(rd(f->c, DMAT_REG_RESULT), ENOENT);
	wr(f->c, DMAT_REG_STATUS, DMAT_STATUS_ERROR);

	assert_int_equal(mu_client_dma_unmap(f->c, edge, xlen), 0);
	(void)eventfd_wait(f->msix[0], 0);
	free(want);
	free(xb);
}

static void test_errors(void **state)
{
	struct fixture *f = *state;
	uint32_t st;

	wr(f->c, DMAT_REG_IRQ_CTRL, 0);
	program(f->c, 9, MEM_IOVA, MEM_IOVA, 16, 0);
	st = wait_idle(f);
	assert_int_equal(st, DMAT_STATUS_ERR(DMAT_ERR_BAD_OP));

	program(f->c, DMAT_OP_COPY, MEM_IOVA, MEM_IOVA, DMAT_MAX_LEN + 1, 0);
	st = wait_idle(f);
	assert_int_equal(st, DMAT_STATUS_ERR(DMAT_ERR_BAD_LEN));

	/* Nothing is mapped at 0x1000. */
	program(f->c, DMAT_OP_COPY, 0x1000, MEM_IOVA, 16, 0);
	st = wait_idle(f);
	assert_int_equal(st, DMAT_STATUS_ERR(DMAT_ERR_DMA_READ));
	assert_int_equal(rd(f->c, DMAT_REG_RESULT), ENOENT);

	/* A read-only map can't be written. */
	assert_int_equal(mu_client_dma_map_fd(f->c, RO_IOVA, 1u << 20, f->memfd,
					      0, MU_DMA_MAP_FLAG_READ),
			 0);
	program(f->c, DMAT_OP_FILL, 0, RO_IOVA, 16, 0);
	st = wait_idle(f);
	assert_int_equal(st, DMAT_STATUS_ERR(DMAT_ERR_DMA_WRITE));
	assert_int_equal(rd(f->c, DMAT_REG_RESULT), EACCES);
	program(f->c, DMAT_OP_CHECKSUM, RO_IOVA, 0, 16, 0);
	assert_int_equal(wait_idle(f), DMAT_STATUS_DONE);
	assert_int_equal(mu_client_dma_unmap(f->c, RO_IOVA, 1u << 20), 0);

	/* Straddling the end of a map. */
	program(f->c, DMAT_OP_CHECKSUM, MEM_IOVA + MEM_SIZE - 8, 0, 16, 0);
	st = wait_idle(f);
	assert_true(st & DMAT_STATUS_ERROR);

	/* W1C of ERROR takes the code with it. */
	wr(f->c, DMAT_REG_STATUS, DMAT_STATUS_ERROR);
	assert_int_equal(rd(f->c, DMAT_REG_STATUS), 0);
}

/* An unmap while the engine runs waits for it (quiesce). */
static void test_quiesce_unmap(void **state)
{
	struct fixture *f = *state;
	uint32_t st;

	fill_random(f->mem, DMAT_MAX_LEN, 11);
	wr(f->c, DMAT_REG_IRQ_CTRL, 0);
	/* DMAT_MAX_LEN through mmapped memory: the unmap must wait for it. */
	program(f->c, DMAT_OP_COPY, MEM_IOVA, MEM_IOVA + DMAT_MAX_LEN,
		DMAT_MAX_LEN, 0);
	assert_int_equal(mu_client_dma_map_fd(f->c, RO_IOVA, 4096, f->memfd, 0,
					      MU_DMA_MAP_FLAG_READ),
			 0);
	assert_int_equal(mu_client_dma_unmap(f->c, RO_IOVA, 4096), 0);
	st = rd(f->c, DMAT_REG_STATUS);
	assert_int_equal(st, DMAT_STATUS_DONE);
	assert_memory_equal(f->mem + DMAT_MAX_LEN, f->mem, DMAT_MAX_LEN);

	/* Message DMA: the worker needs the client to answer DMA_READs
	 * while the client waits for its DMA_MAP reply. */
	program(f->c, DMAT_OP_CHECKSUM, BUF_IOVA, 0, BUF_SIZE, 0);
	assert_int_equal(mu_client_dma_map_fd(f->c, RO_IOVA, 4096, f->memfd, 0,
					      MU_DMA_MAP_FLAG_READ),
			 0);
	st = rd(f->c, DMAT_REG_STATUS);
	assert_int_equal(st, DMAT_STATUS_DONE);
	assert_int_equal(rd(f->c, DMAT_REG_RESULT),
			 crc32_ref(f->buf, BUF_SIZE));
	assert_int_equal(mu_client_dma_unmap(f->c, RO_IOVA, 4096), 0);
}

static void test_msix_masked_pba(void **state)
{
	struct fixture *f = *state;
	uint32_t ctl = 1, pba = 0;
	const uint64_t vctl = DMAT_MSIX_TABLE_OFF + 3 * 16 + 12;

	/* Mask vector 3 in the table: its completion goes to the PBA. */
	for (unsigned v = 0; v < DMAT_MSIX_VECTORS; v++) {
		uint32_t z = 0;

		assert_int_equal(mu_client_region_write(f->c, BAR2,
							DMAT_MSIX_TABLE_OFF +
								v * 16 + 12,
							&z, 4),
				 0);
	}
	assert_int_equal(mu_client_region_write(f->c, BAR2, vctl, &ctl, 4), 0);
	wr(f->c, DMAT_REG_IRQ_CTRL, DMAT_IRQ_EN | 3u << DMAT_IRQ_VECTOR_SHIFT);
	program(f->c, DMAT_OP_FILL, 0, MEM_IOVA, 64, 0);
	assert_int_equal(wait_idle(f), DMAT_STATUS_DONE);
	assert_int_equal(eventfd_wait(f->msix[3], 200), 0);
	assert_int_equal(
		mu_client_region_read(f->c, BAR2, DMAT_MSIX_PBA_OFF, &pba, 4),
		0);
	assert_int_equal(pba, 1u << 3);
	ctl = 0;
	assert_int_equal(mu_client_region_write(f->c, BAR2, vctl, &ctl, 4), 0);
	assert_true(eventfd_wait(f->msix[3], 2000) > 0);
	assert_int_equal(
		mu_client_region_read(f->c, BAR2, DMAT_MSIX_PBA_OFF, &pba, 4),
		0);
	assert_int_equal(pba, 0);
}

static void test_msi_and_intx(void **state)
{
	struct fixture *f = *state;
	int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);

	assert_true(efd >= 0);
	/* MSI: one vector. */
	assert_int_equal(mu_client_irq_disable(f->c, MU_PCI_MSIX_IRQ_INDEX), 0);
	assert_int_equal(mu_client_irq_set_eventfds(f->c, MU_PCI_MSI_IRQ_INDEX,
						    0, 1, &efd),
			 0);
	wr(f->c, DMAT_REG_IRQ_CTRL, DMAT_IRQ_EN | 2u << DMAT_IRQ_VECTOR_SHIFT);
	program(f->c, DMAT_OP_FILL, 0, MEM_IOVA, 64, 0);
	assert_true(wait_irq(f, efd, 5000) > 0);
	assert_int_equal(mu_client_irq_disable(f->c, MU_PCI_MSI_IRQ_INDEX), 0);

	/* INTx: a level, auto-masked. */
	assert_int_equal(mu_client_irq_set_eventfds(f->c, MU_PCI_INTX_IRQ_INDEX,
						    0, 1, &efd),
			 0);
	wr(f->c, DMAT_REG_STATUS, DMAT_STATUS_DONE | DMAT_STATUS_ERROR);
	program(f->c, DMAT_OP_FILL, 0, MEM_IOVA, 64, 0);
	assert_true(wait_irq(f, efd, 5000) > 0);
	/* Still high: UNMASK delivers it again. */
	assert_int_equal(
		mu_client_irq_mask(f->c, MU_PCI_INTX_IRQ_INDEX, 0, 1, false),
		0);
	assert_true(wait_irq(f, efd, 2000) > 0);
	/* W1C lowers it: UNMASK is quiet. */
	wr(f->c, DMAT_REG_STATUS, DMAT_STATUS_DONE);
	assert_int_equal(
		mu_client_irq_mask(f->c, MU_PCI_INTX_IRQ_INDEX, 0, 1, false),
		0);
	assert_int_equal(wait_irq(f, efd, 200), 0);
	/* Next completion, next interrupt. */
	program(f->c, DMAT_OP_FILL, 0, MEM_IOVA, 64, 0);
	assert_true(wait_irq(f, efd, 5000) > 0);
	wr(f->c, DMAT_REG_STATUS, DMAT_STATUS_DONE);
	assert_int_equal(mu_client_irq_disable(f->c, MU_PCI_INTX_IRQ_INDEX), 0);

	/* Back to MSI-X for whatever runs next. */
	assert_int_equal(mu_client_irq_set_eventfds(f->c, MU_PCI_MSIX_IRQ_INDEX,
						    0, DMAT_MSIX_VECTORS,
						    f->msix),
			 0);
	close(efd);
}

static void test_bar4(void **state)
{
	struct fixture *f = *state;
	uint8_t *map = NULL, back[64], pat[64];
	uint32_t traps = rd(f->c, DMAT_REG_BAR4_TRAPS);
	void *addr;

	assert_int_equal(mu_client_region_mmap(f->c, BAR4, DMAT_BAR4_MMAP_OFF,
					       DMAT_BAR4_MMAP_SIZE,
					       PROT_READ | PROT_WRITE, &addr),
			 0);
	map = addr;
	fill_random(pat, sizeof(pat), 5);
	memcpy(map + 0x100, pat, sizeof(pat));
	assert_int_equal(mu_client_region_read(f->c, BAR4,
					       DMAT_BAR4_MMAP_OFF + 0x100, back,
					       sizeof(back)),
			 0);
	assert_memory_equal(back, pat, sizeof(pat));
	/* Message writes to the mappable part show through the mapping. */
	assert_int_equal(mu_client_region_write(f->c, BAR4, DMAT_BAR4_MMAP_SIZE,
						pat, 16),
			 0);
	assert_memory_equal(map + DMAT_BAR4_MMAP_SIZE - DMAT_BAR4_MMAP_OFF, pat,
			    16);
	/* They were not trapped. */
	assert_int_equal(rd(f->c, DMAT_REG_BAR4_TRAPS), traps);

	/* Page 0 is trapped: memory semantics, counted. */
	assert_int_equal(mu_client_region_write(f->c, BAR4, 8, pat, 8), 0);
	assert_int_equal(mu_client_region_read(f->c, BAR4, 8, back, 8), 0);
	assert_memory_equal(back, pat, 8);
	assert_int_equal(rd(f->c, DMAT_REG_BAR4_TRAPS), traps + 2);
	/* ...and can't be mapped. */
	assert_true(mu_client_region_mmap(f->c, BAR4, 0, 4096, PROT_READ,
					  &addr) < 0);
	munmap(map, DMAT_BAR4_MMAP_SIZE);
}

static void test_reset(void **state)
{
	struct fixture *f = *state;

	wr(f->c, DMAT_REG_IRQ_CTRL, DMAT_IRQ_EN);
	wr(f->c, DMAT_REG_SCRATCH, 7);
	assert_int_not_equal(rd(f->c, DMAT_REG_COMPLETED), 0);
	assert_int_equal(mu_client_reset(f->c), 0);
	assert_int_equal(rd(f->c, DMAT_REG_COMPLETED), 0);
	assert_int_equal(rd(f->c, DMAT_REG_IRQ_CTRL), 0);
	assert_int_equal(rd(f->c, DMAT_REG_SCRATCH), 0);
	assert_int_equal(rd(f->c, DMAT_REG_MAGIC), DMAT_MAGIC);
}

/* --fd=N over a socketpair, message DMA included; exit 0 at hang-up. */
static void test_fd_mode(void **state)
{
	uint8_t *buf = calloc(1, 8192);
	char fdarg[32];
	mu_client_t *c;
	int sv[2], st;
	pid_t pid;

	(void)state;
	assert_non_null(buf);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	snprintf(fdarg, sizeof(fdarg), "--fd=%d", sv[1]);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(sv[0]);
		execl(server_bin, server_bin, fdarg, "--quiet", (char *)NULL);
		_exit(127);
	}
	close(sv[1]);
	assert_int_equal(mu_client_adopt(&c, sv[0], NULL), 0);
	assert_int_equal(mu_client_dma_map_buffer(
				 c, BUF_IOVA, buf, 8192,
				 MU_DMA_MAP_FLAG_READ | MU_DMA_MAP_FLAG_WRITE),
			 0);
	program(c, DMAT_OP_FILL, 0, BUF_IOVA, 8192, 0x55aa55aa);
	for (int i = 0; i < 5000; i++) {
		if (!(rd(c, DMAT_REG_STATUS) & DMAT_STATUS_BUSY))
			break;
		usleep(200);
	}
	assert_int_equal(rd(c, DMAT_REG_STATUS), DMAT_STATUS_DONE);
	assert_int_equal(buf[8191], 0x55);
	mu_client_destroy(c);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	free(buf);
}

static void test_sigterm(void **state)
{
	struct server s;
	struct stat st;
	mu_client_t *c;

	(void)state;
	assert_int_equal(server_start(&s, server_bin, NULL), 0);
	assert_int_equal(client_connect(s.sock, &c), 0);
	assert_int_equal(rd(c, DMAT_REG_MAGIC), DMAT_MAGIC);
	assert_int_equal(server_stop(&s, SIGTERM), 0);
	assert_int_not_equal(stat(s.sock, &st), 0);
	mu_client_destroy(c);
	server_cleanup(&s);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_identity),
		cmocka_unit_test(test_copy_mmapped),
		cmocka_unit_test(test_fill_and_checksum),
		cmocka_unit_test(test_message_dma),
		cmocka_unit_test(test_across_maps),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_quiesce_unmap),
		cmocka_unit_test(test_msix_masked_pba),
		cmocka_unit_test(test_msi_and_intx),
		cmocka_unit_test(test_bar4),
		cmocka_unit_test(test_reset),
	};

	const struct CMUnitTest no_twin[] = {
		cmocka_unit_test(test_message_dma),
		cmocka_unit_test(test_across_maps),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_quiesce_unmap),
		cmocka_unit_test(test_msi_and_intx),
	};
	/* The same through mu_dev_run(). */
	const struct CMUnitTest blocking[] = {
		cmocka_unit_test(test_identity),
		cmocka_unit_test(test_copy_mmapped),
		cmocka_unit_test(test_fill_and_checksum),
		cmocka_unit_test(test_message_dma),
		cmocka_unit_test(test_across_maps),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_quiesce_unmap),
		cmocka_unit_test(test_msi_and_intx),
		cmocka_unit_test(test_reset),
	};
	const struct CMUnitTest blocking_no_twin[] = {
		cmocka_unit_test(test_message_dma),
		cmocka_unit_test(test_across_maps),
		cmocka_unit_test(test_quiesce_unmap),
	};
	const struct CMUnitTest process[] = {
		cmocka_unit_test(test_fd_mode),
		cmocka_unit_test(test_sigterm),
	};
	int fails;

	if (argc < 2) {
		fprintf(stderr, "usage: %s PATH-TO-muser-dma-test\n", argv[0]);
		return 2;
	}
	server_bin = argv[1];
	signal(SIGPIPE, SIG_IGN);
	fails = cmocka_run_group_tests_name("dma-test", tests, dma_setup,
					    dma_teardown);
	fails += cmocka_run_group_tests_name("dma-test-no-twin", no_twin,
					     dma_setup_no_twin, dma_teardown);
	fails += cmocka_run_group_tests_name("dma-test-blocking", blocking,
					     dma_setup_blocking, dma_teardown);
	fails += cmocka_run_group_tests_name(
		"dma-test-blocking-no-twin", blocking_no_twin,
		dma_setup_blocking_no_twin, dma_teardown);
	fails += cmocka_run_group_tests_name("dma-test-process", process, NULL,
					     NULL);
	return fails ? 1 : 0;
}
