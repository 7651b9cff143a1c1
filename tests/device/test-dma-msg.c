/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libmuser: message DMA on the main socket (no twin), as QEMU's native
 * client sees it. The test plays the client with the wire core and
 * answers DMA_READ/DMA_WRITE in three ways: the spec's layout (a 0.2
 * client), QEMU 10.1's {u64 addr, u32 count, data at 12} (a 0.0 client
 * that reads a u32 count), QEMU 11.1's spec layout behind a 0.0 proposal,
 * and a 0.0 client whose answer to the layout probe fits neither.
 * Checked: data byte for byte at odd sizes and offsets across chunks, in
 * both directions; commands answered while the device waits (the native
 * client's deadlock); message DMA from a device thread; order kept.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "helpers.h"

#define RW (MU_DMA_READ | MU_DMA_WRITE)
#define BASE 0x4000ull
#define GSZ 0x3000u

enum peer {
	SPEC,	  /* proposes 0.2 */
	QEMU_101, /* proposes 0.0, u32 count, data at 12 */
	QEMU_111, /* proposes 0.0, u64 count, data at 16 */
	QEMU_ODD, /* proposes 0.0, answers the probe with EINVAL */
};

struct guest {
	enum peer peer;
	uint8_t mem[GSZ];
	unsigned probes;
};

static int dma_map(struct tc *c, uint64_t iova, uint64_t size)
{
	struct mu_dma_map m = {sizeof(m), RW, 0, iova, size};

	return tc_call(c, MU_CMD_DMA_MAP, 0, &m, sizeof(m), NULL, 0, NULL, 0,
		       NULL, NULL, NULL);
}

static void send_error(struct tc *c, const struct mu_hdr *h, int err)
{
	assert_int_equal(mu_chan_send_error(&c->c, h, err), 0);
}

/*
 * Receive one message; if it is a DMA request, answer it the way g's peer
 * does and return its command, else return its header in *other.
 */
static int serve_one_x(struct tc *c, struct guest *g, struct mu_hdr *other,
		       bool read_reg)
{
	static const uint8_t pad[4];
	uint8_t buf[4096];
	struct mu_hdr h, rh;
	struct iovec iov[3];
	uint64_t addr, count = 0;
	bool narrow = g->peer == QEMU_101;
	size_t len, at = narrow ? 12 : 16;

	assert_int_equal(tc_recv(c, &c->c, &h, buf, sizeof(buf), &len, 3000),
			 1);
	if ((h.flags & 0xf) != MU_FLAG_TYPE_COMMAND) {
		*other = h;
		return 0;
	}
	assert_true(h.cmd == MU_CMD_DMA_READ || h.cmd == MU_CMD_DMA_WRITE);
	assert_true(len >= 16);
	if (read_reg) {
		/* the device waits for this answer: is it still serving? */
		uint32_t v;

		assert_int_equal(tc_read(c, 0, 0, &v, 4), 0);
	}
	memcpy(&addr, buf, 8);
	memcpy(&count, buf + 8, 8);
	if (h.cmd == MU_CMD_DMA_WRITE && len == 16 && count == 1ull << 32) {
		/* the layout probe: a u32 reader sees count 0 */
		assert_int_not_equal(g->peer, SPEC);
		g->probes++;
		if (g->peer == QEMU_101) {
			rh = (struct mu_hdr){.msg_id = h.msg_id,
					     .cmd = h.cmd,
					     .flags = MU_FLAG_TYPE_REPLY};
			assert_int_equal(
				mu_chan_send(&c->c, &rh, NULL, 0, NULL, 0), 0);
		} else {
			send_error(c, &h, g->peer == QEMU_111 ? E2BIG : EINVAL);
		}
		return MU_CMD_DMA_WRITE;
	}
	if (narrow)
		count &= 0xffffffffu;
	assert_true(addr >= BASE && count <= GSZ - (addr - BASE));
	rh = (struct mu_hdr){
		.msg_id = h.msg_id, .cmd = h.cmd, .flags = MU_FLAG_TYPE_REPLY};
	if (h.cmd == MU_CMD_DMA_READ) {
		assert_int_equal(len, 16); /* the same bytes in both layouts */
		iov[0] = (struct iovec){buf, at};
		iov[1] = (struct iovec){g->mem + (addr - BASE), count};
		iov[2] = (struct iovec){(void *)pad, sizeof(pad)};
		assert_int_equal(
			mu_chan_send(&c->c, &rh, iov, narrow ? 3 : 2, NULL, 0),
			0);
	} else {
		/* QEMU 10.1's struct ends with 4 bytes of padding */
		assert_int_equal(len, 16 + count);
		memcpy(g->mem + (addr - BASE), buf + at, count);
		assert_int_equal(mu_chan_send(&c->c, &rh, NULL, 0, NULL, 0), 0);
	}
	return h.cmd;
}

static int serve_one(struct tc *c, struct guest *g, struct mu_hdr *other)
{
	return serve_one_x(c, g, other, false);
}

/* Serve DMA until a non-DMA message comes; it must be cmd/id's reply. */
static void serve_until_reply(struct tc *c, struct guest *g, uint16_t cmd,
			      uint16_t id)
{
	struct mu_hdr h;

	while (serve_one(c, g, &h) != 0)
		;
	assert_int_equal(h.cmd, cmd);
	assert_int_equal(h.msg_id, id);
	assert_false(h.flags & MU_FLAG_ERROR);
}

static void kick(struct tc *c, uint32_t reg, uint16_t id)
{
	struct {
		struct mu_region_access a;
		uint32_t v;
	} __attribute__((packed)) w = {{reg, 0, 4}, 0};
	struct mu_hdr h = {.msg_id = id, .cmd = MU_CMD_REGION_WRITE};
	struct iovec iov = {&w, sizeof(w)};

	assert_int_equal(mu_chan_send(&c->c, &h, &iov, 1, NULL, 0), 0);
}

static void send_get_info(struct tc *c, uint16_t id)
{
	static struct mu_device_info di = {.argsz = sizeof(di)};
	struct mu_hdr h = {.msg_id = id, .cmd = MU_CMD_DEVICE_GET_INFO};
	struct iovec iov = {&di, sizeof(di)};

	assert_int_equal(mu_chan_send(&c->c, &h, &iov, 1, NULL, 0), 0);
}

static void open_peer(struct td *t, struct tc *c, struct guest *g,
		      enum peer peer)
{
	unsigned i;

	g->peer = peer;
	g->probes = 0;
	for (i = 0; i < GSZ; i++) /* a 4-byte shift can't hide */
		g->mem[i] = (uint8_t)(i * 13 + (i >> 8));
	/* max_data_xfer_size 64: transfers go in many chunks */
	td_next_max_dma_maps = 8;
	td_create(t, MU_PCI_EXPRESS);
	td_start(t);
	assert_int_equal(tc_connect(c, t->path), 0);
	assert_int_equal(tc_version(c, 0, peer == SPEC ? 2 : 0, NULL), 0);
	assert_int_equal(dma_map(c, BASE, GSZ), 0);
}

/* On the serving thread (a BAR write's handler does the DMA). */
static void serving_thread_dma(enum peer peer)
{
	struct guest g;
	struct td t;
	struct tc c;
	struct mu_hdr h;
	unsigned i;

	open_peer(&t, &c, &g, peer);
	/* read 201 bytes at an odd offset, across a page boundary */
	t.dma_len = 201;
	t.dma_iova = BASE + 0x1000 - 99;
	kick(&c, TD_DMA_READ_REG, 500);
	if (peer != SPEC) {
		/* the first transfer asks the 0.0 client its layout */
		assert_int_equal(serve_one(&c, &g, &h), MU_CMD_DMA_WRITE);
		assert_int_equal(g.probes, 1);
	}
	/* the first chunk's request is out and the server waits for it: a
	 * register read sent now is answered now (QEMU's vCPU would be
	 * blocked on it, and with it QEMU's answer to our DMA) */
	assert_int_equal(serve_one_x(&c, &g, &h, true), MU_CMD_DMA_READ);
	serve_until_reply(&c, &g, MU_CMD_REGION_WRITE, 500);
	assert_int_equal(t.dma_ret, 0);
	assert_memory_equal(t.dmabuf, g.mem + 0x1000 - 99, 201);
	/* write 255 bytes at offset 3 */
	for (i = 0; i < 255; i++)
		t.dmabuf[i] = (uint8_t)(0xa0 ^ i);
	t.dma_len = 255;
	t.dma_iova = BASE + 3;
	kick(&c, TD_DMA_WRITE_REG, 501);
	serve_until_reply(&c, &g, MU_CMD_REGION_WRITE, 501);
	assert_int_equal(t.dma_ret, 0);
	assert_memory_equal(g.mem + 3, t.dmabuf, 255);
	assert_int_equal(g.mem[2], (uint8_t)(2 * 13)); /* guards intact */
	assert_int_equal(g.mem[258], (uint8_t)(258 * 13 + 1));
	assert_int_equal(g.probes, peer == SPEC ? 0 : 1); /* asked once */
	tc_close(&c);
	td_destroy(&t);
}

static void test_serving_spec(void **s)
{
	(void)s;
	serving_thread_dma(SPEC);
}

static void test_serving_qemu_101(void **s)
{
	(void)s;
	serving_thread_dma(QEMU_101);
}

static void test_serving_qemu_111(void **s)
{
	(void)s;
	serving_thread_dma(QEMU_111);
}

struct worker {
	struct td *t;
	uint64_t iova;
	size_t len;
	bool write;
	uint8_t buf[2500];
	int ret;
};

#define BIG 300000u
static uint8_t big_mem[BIG], big_out[BIG];

struct big_worker {
	struct td *t;
	int ret;
};

static void *big_read(void *p)
{
	struct big_worker *w = p;

	w->ret = mu_dma_read(w->t->dev, BASE, big_out, BIG);
	return NULL;
}

static void *worker_main(void *p)
{
	struct worker *w = p;

	w->ret = w->write ? mu_dma_write(w->t->dev, w->iova, w->buf, w->len)
			  : mu_dma_read(w->t->dev, w->iova, w->buf, w->len);
	return NULL;
}

/* Answer DMA until the worker is done; also send register reads meanwhile
 * and check they are answered (the serving thread is free). */
static void serve_worker(struct tc *c, struct guest *g, struct worker *w)
{
	pthread_t thr;
	struct mu_hdr h;
	int first = w->write ? MU_CMD_DMA_WRITE : MU_CMD_DMA_READ;

	if (g->peer != SPEC && g->probes == 0)
		first = MU_CMD_DMA_WRITE; /* the layout probe */
	pthread_create(&thr, NULL, worker_main, w);
	assert_int_equal(serve_one_x(c, g, &h, true), first);
	for (;;) {
		struct pollfd p = {.fd = c->c.fd, .events = POLLIN};

		if (!mu_chan_has_msg(&c->c) && poll(&p, 1, 200) == 0) {
			/* nothing for 200 ms: the worker must be done */
			break;
		}
		assert_int_not_equal(serve_one(c, g, &h), 0);
	}
	pthread_join(thr, NULL);
}

static void worker_thread_dma(enum peer peer)
{
	struct guest g;
	struct td t;
	struct tc c;
	struct worker w = {.t = &t};
	unsigned i;

	open_peer(&t, &c, &g, peer);
	/* 2047 bytes from offset 1: 32 chunks of 64, the last one short */
	w.iova = BASE + 1;
	w.len = 2047;
	serve_worker(&c, &g, &w);
	assert_int_equal(w.ret, 0);
	assert_int_equal(g.probes, peer == SPEC ? 0 : 1);
	assert_memory_equal(w.buf, g.mem + 1, 2047);
	/* 2500 bytes back to offset 4095 (crosses a page) */
	for (i = 0; i < sizeof(w.buf); i++)
		w.buf[i] = (uint8_t)(i * 7 + 1);
	w.iova = BASE + 4095;
	w.len = 2500;
	w.write = true;
	serve_worker(&c, &g, &w);
	assert_int_equal(w.ret, 0);
	assert_memory_equal(g.mem + 4095, w.buf, 2500);
	assert_int_equal(g.mem[4094], (uint8_t)(4094 * 13 + 15));
	assert_int_equal(g.mem[4095 + 2500],
			 (uint8_t)((4095 + 2500) * 13 + 25));
	tc_close(&c);
	td_destroy(&t);
}

static void test_worker_spec(void **s)
{
	(void)s;
	worker_thread_dma(SPEC);
}

static void test_worker_qemu_101(void **s)
{
	(void)s;
	worker_thread_dma(QEMU_101);
}

static void test_worker_qemu_111(void **s)
{
	(void)s;
	worker_thread_dma(QEMU_111);
}

/* A 0.0 client that answers the probe with something else: message DMA
 * is refused (EPROTO), without asking again, and nothing else breaks. */
static void test_untellable_layout(void **s)
{
	struct guest g;
	struct td t;
	struct tc c;
	struct mu_hdr h;
	uint32_t v;

	(void)s;
	open_peer(&t, &c, &g, QEMU_ODD);
	t.dma_len = 8;
	t.dma_iova = BASE;
	kick(&c, TD_DMA_READ_REG, 600);
	assert_int_equal(serve_one(&c, &g, &h), MU_CMD_DMA_WRITE);
	serve_until_reply(&c, &g, MU_CMD_REGION_WRITE, 600);
	assert_int_equal(t.dma_ret, -EPROTO);
	kick(&c, TD_DMA_WRITE_REG, 601);
	serve_until_reply(&c, &g, MU_CMD_REGION_WRITE, 601);
	assert_int_equal(t.dma_ret, -EPROTO);
	assert_int_equal(g.probes, 1);
	assert_int_equal(tc_read(&c, 0, 0, &v, 4), 0);
	tc_close(&c);
	td_destroy(&t);
}

/* Commands that must not run in the middle of a handler (DMA_UNMAP needs
 * the device quiesced) wait, and so does everything sent after them. */
static void test_order_kept(void **s)
{
	struct guest g;
	struct td t;
	struct tc c;
	struct mu_hdr h;
	struct mu_dma_unmap u = {sizeof(u), 0, BASE, GSZ};
	struct mu_hdr uh = {.msg_id = 70, .cmd = MU_CMD_DMA_UNMAP};
	struct iovec uiov = {&u, sizeof(u)};

	(void)s;
	open_peer(&t, &c, &g, SPEC);
	t.dma_len = 100;
	t.dma_iova = BASE;
	kick(&c, TD_DMA_READ_REG, 700);
	assert_int_equal(mu_chan_send(&c.c, &uh, &uiov, 1, NULL, 0), 0);
	send_get_info(&c, 71);
	/* nothing is answered before the DMA is: 70 is queued, 71 after it */
	assert_int_equal(serve_one(&c, &g, &h), MU_CMD_DMA_READ);
	serve_until_reply(&c, &g, MU_CMD_REGION_WRITE, 700);
	serve_until_reply(&c, &g, MU_CMD_DMA_UNMAP, 70);
	serve_until_reply(&c, &g, MU_CMD_DEVICE_GET_INFO, 71);
	assert_int_equal(t.dma_ret, 0);
	tc_close(&c);
	td_destroy(&t);
}

/* A client that leaves while a device thread waits for its DMA reply:
 * the thread gets an error at once, not after the timeout. */
static void test_client_leaves(void **s)
{
	struct guest g;
	struct td t;
	struct tc c;
	struct mu_hdr h;
	struct worker w = {.t = &t, .iova = BASE, .len = 64};
	pthread_t thr;

	(void)s;
	open_peer(&t, &c, &g, SPEC);
	pthread_create(&thr, NULL, worker_main, &w);
	assert_int_equal(tc_recv(&c, &c.c, &h, NULL, 0, NULL, 3000), 1);
	assert_int_equal(h.cmd, MU_CMD_DMA_READ);
	tc_close(&c);
	pthread_join(thr, NULL);
	assert_true(w.ret == -ECONNRESET || w.ret == -ENOTCONN);
	td_destroy(&t);
}

/* QEMU's client can't send a message larger than its socket takes at
 * once: a 0.0 client is asked for at most 64 KiB per DMA_READ, while a
 * DMA_WRITE (sent by us) keeps the negotiated 1 MiB chunks. */
static void test_qemu_read_chunks(void **s)
{
	struct td t;
	struct tc c;
	struct mu_dma_map m = {sizeof(m), RW, 0, BASE, 0x50000};
	struct big_worker w = {&t, 1};
	pthread_t thr;
	size_t i, n = 0;

	(void)s;
	for (i = 0; i < BIG; i++)
		big_mem[i] = (uint8_t)(i * 31 + (i >> 12));
	td_create(&t, MU_PCI_EXPRESS);
	td_start(&t);
	assert_int_equal(tc_connect(&c, t.path), 0);
	assert_int_equal(tc_version(&c, 0, 0, NULL), 0);
	assert_int_equal(tc_call(&c, MU_CMD_DMA_MAP, 0, &m, sizeof(m), NULL, 0,
				 NULL, 0, NULL, NULL, NULL),
			 0);
	pthread_create(&thr, NULL, big_read, &w);
	for (;;) {
		static uint8_t req[64];
		struct mu_hdr h, rh;
		struct iovec iov[2];
		uint64_t addr, count;
		size_t len;

		assert_int_equal(
			tc_recv(&c, &c.c, &h, req, sizeof(req), &len, 3000), 1);
		assert_int_equal(len, 16);
		memcpy(&addr, req, 8);
		memcpy(&count, req + 8, 8);
		rh = (struct mu_hdr){.msg_id = h.msg_id,
				     .cmd = h.cmd,
				     .flags = MU_FLAG_TYPE_REPLY};
		if (h.cmd == MU_CMD_DMA_WRITE) { /* the probe: 11.1 */
			assert_int_equal(count, 1ull << 32);
			assert_int_equal(mu_chan_send_error(&c.c, &h, E2BIG),
					 0);
			continue;
		}
		assert_int_equal(h.cmd, MU_CMD_DMA_READ);
		assert_true(count <= 64 * 1024);
		iov[0] = (struct iovec){req, 16};
		iov[1] = (struct iovec){big_mem + (addr - BASE), count};
		assert_int_equal(mu_chan_send(&c.c, &rh, iov, 2, NULL, 0), 0);
		n += count;
		if (n == BIG)
			break;
	}
	pthread_join(thr, NULL);
	assert_int_equal(w.ret, 0);
	assert_memory_equal(big_out, big_mem, BIG);
	tc_close(&c);
	td_destroy(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_serving_spec),
		cmocka_unit_test(test_serving_qemu_101),
		cmocka_unit_test(test_serving_qemu_111),
		cmocka_unit_test(test_worker_spec),
		cmocka_unit_test(test_worker_qemu_101),
		cmocka_unit_test(test_worker_qemu_111),
		cmocka_unit_test(test_untellable_layout),
		cmocka_unit_test(test_order_kept),
		cmocka_unit_test(test_client_leaves),
		cmocka_unit_test(test_qemu_read_chunks),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
