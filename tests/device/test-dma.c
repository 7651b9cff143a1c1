/* SPDX-License-Identifier: BSD-3-Clause */
/* libmuser: DMA_MAP/UNMAP, fd-backed and message DMA (main and twin
 * socket, spec and QEMU layouts), sg, limits, async quiesce. */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <cmocka.h>

#include "helpers.h"

#define IOVA 0x100000ull
#define MSZ 0x10000ull

static int dma_map(struct tc *c, uint64_t iova, uint64_t size, uint64_t off,
		   uint32_t flags, int fd)
{
	struct mu_dma_map m = {sizeof(m), flags, off, iova, size};

	return tc_call(c, MU_CMD_DMA_MAP, 0, &m, sizeof(m),
		       fd >= 0 ? &fd : NULL, fd >= 0 ? 1 : 0, NULL, 0, NULL,
		       NULL, NULL);
}

static int dma_unmap(struct tc *c, uint64_t iova, uint64_t size, uint32_t flags)
{
	struct mu_dma_unmap u = {sizeof(u), flags, iova, size}, r;
	int e = tc_call(c, MU_CMD_DMA_UNMAP, 0, &u, sizeof(u), NULL, 0, &r,
			sizeof(r), NULL, NULL, NULL);

	if (e == 0)
		assert_memory_equal(&r.addr, &u.addr, 16);
	return e;
}

#define RW (MU_DMA_READ | MU_DMA_WRITE)

static void test_map_fd(void **state)
{
	struct td t;
	struct tc c;
	int mfd = memfd_create("guest", 0);
	uint8_t *g, buf[32];
	struct mu_sg sg[4];
	struct iovec iov[4];
	int before = count_open_fds();

	(void)state;
	assert_int_equal(ftruncate(mfd, 2 * MSZ), 0);
	g = mmap(NULL, 2 * MSZ, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
	td_create(&t, MU_PCI_EXPRESS);
	td_start(&t);
	assert_int_equal(tc_open(&c, t.path), 0);
	assert_int_equal(dma_map(&c, IOVA, MSZ, 0, RW, mfd), 0);
	assert_int_equal(dma_map(&c, IOVA + MSZ, MSZ, MSZ, MU_DMA_READ, mfd),
			 0);
	assert_int_equal(mu_dma_count(t.dev), 2);
	assert_int_equal(t.nmap, 2);
	assert_int_equal(t.nquiesce, 2);
	/* errors */
	assert_int_equal(dma_map(&c, IOVA + 0x1000, 0x1000, 0, RW, mfd),
			 -EEXIST);
	assert_int_equal(dma_map(&c, 0x1000, 0x800, 0, RW, mfd), -EINVAL);
	assert_int_equal(dma_map(&c, 0x1000, 0x1000, 0x10, RW, mfd), -EINVAL);
	assert_int_equal(dma_map(&c, 0x1000, 0x1000, 4 * MSZ, RW, mfd),
			 -EINVAL); /* past the end of the fd */
	assert_int_equal(dma_map(&c, 0x1000, 0x1000, 0, 0x4, mfd), -EINVAL);
	assert_int_equal(dma_map(&c, 0x1000, 0, 0, RW, mfd), -EINVAL);
	/* copies */
	memcpy(g + 0x10, "hello", 6);
	assert_int_equal(mu_dma_read(t.dev, IOVA + 0x10, buf, 6), 0);
	assert_string_equal((char *)buf, "hello");
	assert_int_equal(mu_dma_write(t.dev, IOVA + MSZ - 2, "abcd", 4),
			 -EACCES); /* second map is read-only */
	assert_int_equal(mu_dma_write(t.dev, IOVA + 0x20, "abcd", 4), 0);
	assert_memory_equal(g + 0x20, "abcd", 4);
	memcpy(g + MSZ - 2, "xyzw", 4);
	assert_int_equal(mu_dma_read(t.dev, IOVA + MSZ - 2, buf, 4), 0);
	assert_memory_equal(buf, "xyzw", 4);
	assert_int_equal(mu_dma_read(t.dev, IOVA + 2 * MSZ - 2, buf, 4),
			 -ENOENT);
	/* scatter-gather across both maps */
	assert_int_equal(mu_dma_addr_to_sg(t.dev, IOVA + MSZ - 8, 16,
					   MU_DMA_READ, sg, 4),
			 2);
	assert_int_equal(sg[0].len, 8);
	assert_int_equal(sg[1].iova, IOVA + MSZ);
	assert_int_equal(
		mu_dma_addr_to_sg(t.dev, IOVA + MSZ - 8, 16, RW, sg, 4),
		-EACCES);
	assert_int_equal(mu_dma_addr_to_sg(t.dev, IOVA + MSZ - 8, 16,
					   MU_DMA_READ, sg, 1),
			 2);
	assert_int_equal(mu_dma_addr_to_sg(t.dev, IOVA + MSZ - 8, 16,
					   MU_DMA_READ, sg, 4),
			 2);
	assert_int_equal(mu_dma_sg_map(t.dev, sg, 2, iov), 2);
	assert_memory_equal(iov[1].iov_base, "zw", 2);
	/* unmap: exact match only */
	assert_int_equal(dma_unmap(&c, IOVA, 0x1000, 0), -ENOENT);
	assert_int_equal(dma_unmap(&c, IOVA + MSZ, MSZ, 0), 0);
	assert_int_equal(t.nunmap, 1);
	assert_int_equal(mu_dma_sg_map(t.dev, sg, 2, iov), -ENOENT);
	assert_int_equal(dma_unmap(&c, IOVA + MSZ, MSZ, 0), -ENOENT);
	/* unmap all: address and size must be 0 */
	assert_int_equal(dma_unmap(&c, 1, 0, MU_DMA_UNMAP_FLAG_ALL), -EINVAL);
	assert_int_equal(dma_unmap(&c, 0, 0, MU_DMA_UNMAP_FLAG_ALL), 0);
	assert_int_equal(mu_dma_count(t.dev), 0);
	/* maps are dropped with the client */
	assert_int_equal(dma_map(&c, IOVA, MSZ, 0, RW, mfd), 0);
	tc_close(&c);
	assert_int_equal(tc_open(&c, t.path), 0);
	assert_int_equal(mu_dma_count(t.dev), 0);
	tc_close(&c);
	td_destroy(&t);
	munmap(g, 2 * MSZ);
	assert_int_equal(count_open_fds(), before);
	close(mfd);
}

static void test_map_limit(void **state)
{
	struct td t;
	struct tc c;

	(void)state;
	td_next_max_dma_maps = 2;
	td_create(&t, MU_PCI_EXPRESS);
	td_start(&t);
	assert_int_equal(tc_open(&c, t.path), 0);
	assert_non_null(strstr(c.json, "\"max_dma_maps\":2"));
	assert_int_equal(dma_map(&c, 0x1000, 0x1000, 0, RW, -1), 0);
	assert_int_equal(dma_map(&c, 0x3000, 0x1000, 0, RW, -1), 0);
	assert_int_equal(dma_map(&c, 0x5000, 0x1000, 0, RW, -1), -ENOSPC);
	tc_close(&c);
	td_destroy(&t);
}

/* Answer one DMA request on ch like a client would; returns its cmd.
 * qemu: QEMU's unpacked {u64 addr, u32 count, data at 12} struct, whose
 * messages are 4 bytes longer than 12 + count (its sizeof is 16). */
static int serve_dma(struct tc *c, struct mu_chan *ch, uint8_t *guest,
		     uint64_t base, bool qemu)
{
	static const uint8_t pad[4];
	struct mu_hdr h, rh;
	uint8_t buf[512];
	size_t len;
	uint64_t addr, count = 0;
	size_t hl = qemu ? 12 : 16;
	struct iovec iov[3];

	assert_int_equal(tc_recv(c, ch, &h, buf, sizeof(buf), &len, 3000), 1);
	assert_int_equal(h.flags & 0xf, MU_FLAG_TYPE_COMMAND);
	memcpy(&addr, buf, 8);
	memcpy(&count, buf + 8, qemu ? 4 : 8);
	rh = (struct mu_hdr){
		.msg_id = h.msg_id, .cmd = h.cmd, .flags = MU_FLAG_TYPE_REPLY};
	if (h.cmd == MU_CMD_DMA_READ) {
		assert_int_equal(len, 16); /* same bytes in both layouts */
		iov[0] = (struct iovec){buf, hl};
		iov[1] = (struct iovec){guest + (addr - base), count};
		iov[2] = (struct iovec){(void *)pad, sizeof(pad)};
		assert_int_equal(
			mu_chan_send(ch, &rh, iov, qemu ? 3 : 2, NULL, 0), 0);
	} else {
		assert_int_equal(len, 16 + count);
		memcpy(guest + (addr - base), buf + hl, count);
		iov[0] = (struct iovec){buf, hl};
		assert_int_equal(
			mu_chan_send(ch, &rh, iov, qemu ? 0 : 1, NULL, 0), 0);
	}
	return h.cmd;
}

/* BAR0 write that makes the device do DMA, answered by this thread. */
static void kick(struct tc *c, uint32_t reg, uint32_t id)
{
	struct {
		struct mu_region_access a;
		uint32_t v;
	} __attribute__((packed)) w = {{reg, 0, 4}, 0};
	struct mu_hdr h = {.msg_id = (uint16_t)id, .cmd = MU_CMD_REGION_WRITE};
	struct iovec iov = {&w, sizeof(w)};

	assert_int_equal(mu_chan_send(&c->c, &h, &iov, 1, NULL, 0), 0);
}

static void expect_reply(struct tc *c, uint16_t cmd, uint16_t id)
{
	struct mu_hdr h;

	assert_int_equal(tc_recv(c, &c->c, &h, NULL, 0, NULL, 3000), 1);
	assert_int_equal(h.cmd, cmd);
	assert_int_equal(h.msg_id, id);
	assert_false(h.flags & MU_FLAG_ERROR);
}

struct twin_arg {
	struct td *t;
	int ret;
	uint8_t buf[300];
};

static void *twin_reader(void *p)
{
	struct twin_arg *a = p;

	a->ret = mu_dma_read(a->t->dev, 0x4000 + 10, a->buf, sizeof(a->buf));
	return NULL;
}

static void test_msg_dma_twin(void **state)
{
	struct td t;
	struct tc c;
	uint8_t guest[0x1000];
	struct twin_arg a;
	pthread_t thr;
	unsigned i, n;

	(void)state;
	for (i = 0; i < sizeof(guest); i++)
		guest[i] = (uint8_t)(i * 7);
	td_next_max_dma_maps = 8; /* also sets max_data_xfer_size 64 */
	td_create(&t, MU_PCI_EXPRESS);
	td_start(&t);
	assert_int_equal(tc_connect(&c, t.path), 0);
	assert_int_equal(tc_version(&c, 0, 2,
				    "{\"capabilities\":{\"twin_socket\":"
				    "{\"supported\":true}}}"),
			 0);
	assert_true(c.twin >= 0);
	assert_int_equal(dma_map(&c, 0x4000, 0x1000, 0, RW, -1), 0);
	/* from a device thread: over the twin socket, 64-byte chunks */
	a.t = &t;
	pthread_create(&thr, NULL, twin_reader, &a);
	for (n = 0; n < (300 + 63) / 64; n++)
		assert_int_equal(serve_dma(&c, &c.tw, guest, 0x4000, false),
				 MU_CMD_DMA_READ);
	pthread_join(thr, NULL);
	assert_int_equal(a.ret, 0);
	assert_memory_equal(a.buf, guest + 10, 300);
	/* from the serving thread: also over the twin socket */
	t.dma_iova = 0x4000;
	t.dma_len = 8;
	memcpy(t.dmabuf, "12345678", 8);
	kick(&c, TD_DMA_WRITE_REG, 9);
	assert_int_equal(serve_dma(&c, &c.tw, guest, 0x4000, false),
			 MU_CMD_DMA_WRITE);
	expect_reply(&c, MU_CMD_REGION_WRITE, 9);
	assert_memory_equal(guest, "12345678", 8);
	/* an error reply from the client fails the access */
	{
		struct mu_hdr h, rh;

		pthread_create(&thr, NULL, twin_reader, &a);
		assert_int_equal(tc_recv(&c, &c.tw, &h, NULL, 0, NULL, 3000),
				 1);
		rh = (struct mu_hdr){.msg_id = h.msg_id,
				     .cmd = h.cmd,
				     .flags =
					     MU_FLAG_TYPE_REPLY | MU_FLAG_ERROR,
				     .error = EFAULT};
		assert_int_equal(mu_chan_send(&c.tw, &rh, NULL, 0, NULL, 0), 0);
		pthread_join(thr, NULL);
		assert_int_equal(a.ret, -EFAULT);
	}
	tc_close(&c);
	td_destroy(&t);
}

struct race {
	struct td *t;
	int bad;
	volatile int stop;
};

static void *reader(void *p)
{
	struct race *r = p;
	uint8_t b[64];

	while (!r->stop) {
		int e = mu_dma_read(r->t->dev, IOVA + 0x100, b, sizeof(b));

		if (e != 0 && e != -ENOENT)
			r->bad++;
	}
	return NULL;
}

static void test_unmap_during_access(void **state)
{
	struct td t;
	struct tc c;
	struct race r = {&t, 0, 0};
	pthread_t thr;
	int mfd = memfd_create("guest", 0), i;

	(void)state;
	assert_int_equal(ftruncate(mfd, MSZ), 0);
	td_create(&t, MU_PCI_EXPRESS);
	td_start(&t);
	assert_int_equal(tc_open(&c, t.path), 0);
	pthread_create(&thr, NULL, reader, &r);
	for (i = 0; i < 200; i++) {
		assert_int_equal(dma_map(&c, IOVA, MSZ, 0, RW, mfd), 0);
		assert_int_equal(dma_unmap(&c, IOVA, MSZ, 0), 0);
	}
	r.stop = 1;
	pthread_join(thr, NULL);
	assert_int_equal(r.bad, 0);
	tc_close(&c);
	td_destroy(&t);
	close(mfd);
}

static void test_async_quiesce(void **state)
{
	struct td t;
	struct tc c;
	struct mu_dma_map m = {sizeof(m), RW, 0, 0x1000, 0x1000};
	struct mu_hdr h = {.msg_id = 5, .cmd = MU_CMD_DMA_MAP}, rh;
	struct iovec iov = {&m, sizeof(m)};

	(void)state;
	td_create(&t, MU_PCI_EXPRESS);
	td_start(&t);
	assert_int_equal(tc_open(&c, t.path), 0);
	t.quiesce_busy = true;
	assert_int_equal(mu_chan_send(&c.c, &h, &iov, 1, NULL, 0), 0);
	assert_int_equal(tc_recv(&c, &c.c, &rh, NULL, 0, NULL, 300),
			 -ETIMEDOUT);
	assert_int_equal(mu_dma_count(t.dev), 0);
	t.quiesce_busy = false;
	mu_dev_quiesce_done(t.dev, 0);
	assert_int_equal(tc_recv(&c, &c.c, &rh, NULL, 0, NULL, 3000), 1);
	assert_int_equal(rh.msg_id, 5);
	assert_false(rh.flags & MU_FLAG_ERROR);
	assert_int_equal(mu_dma_count(t.dev), 1);
	tc_close(&c);
	td_destroy(&t);
}

/* A DEVICE_RESET parked for an asynchronous quiesce, then the client
 * dies: the reset still runs once the device is quiet (what the client
 * sent before going is done), however often the serving loop comes round
 * meanwhile - here the caller's own loop, mu_dev_process(). */
static void test_parked_reset_client_gone(void **state)
{
	struct td t;
	struct tc c;
	struct mu_hdr h = {.msg_id = 9, .cmd = MU_CMD_DEVICE_RESET};
	int i, n;

	(void)state;
	td_create(&t, MU_PCI_EXPRESS);
	td_start(&t);
	assert_int_equal(tc_open(&c, t.path), 0);
	td_stop(&t); /* the client stays attached; serve it by hand now */
	n = t.nreset;
	t.quiesce_busy = true;
	t.nquiesce = 0;
	assert_int_equal(mu_chan_send(&c.c, &h, NULL, 0, NULL, 0), 0);
	for (i = 0; i < 200 && !t.nquiesce; i++) {
		mu_dev_process(t.dev);
		usleep(1000);
	}
	assert_int_equal(t.nquiesce, 1); /* parked */
	tc_close(&c);
	for (i = 0; i < 20; i++) { /* EOF, then spurious turns */
		mu_dev_process(t.dev);
		usleep(1000);
	}
	assert_int_equal(t.nreset, n); /* not yet: the device is busy */
	assert_true(mu_dev_is_attached(t.dev));
	t.quiesce_busy = false;
	mu_dev_quiesce_done(t.dev, 0);
	for (i = 0; i < 20 && mu_dev_is_attached(t.dev); i++)
		mu_dev_process(t.dev);
	/* the client's reset, then the one for the lost connection */
	assert_int_equal(t.nreset, n + 2);
	assert_int_equal(t.last_reset, MU_RESET_LOST_CONN);
	assert_false(mu_dev_is_attached(t.dev));
	td_destroy(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_map_fd),
		cmocka_unit_test(test_map_limit),
		cmocka_unit_test(test_msg_dma_twin),
		cmocka_unit_test(test_unmap_during_access),
		cmocka_unit_test(test_async_quiesce),
		cmocka_unit_test(test_parked_reset_client_gone),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
