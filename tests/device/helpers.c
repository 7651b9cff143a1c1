/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <cmocka.h>

#include "helpers.h"

uint32_t td_next_max_dma_maps;
int td_next_negotiate_ms;

static ssize_t td_access(void *opaque, unsigned region, uint64_t off, void *buf,
			 size_t count, bool is_write)
{
	struct td *t = opaque;
	uint8_t *mem = region == 0 ? t->bar0 : t->bar1;

	t->nacc++;
	if (region == 0 && is_write && off == TD_DMA_READ_REG)
		t->dma_ret =
			mu_dma_read(t->dev, t->dma_iova, t->dmabuf, t->dma_len);
	if (region == 0 && is_write && off == TD_DMA_WRITE_REG)
		t->dma_ret = mu_dma_write(t->dev, t->dma_iova, t->dmabuf,
					  t->dma_len);
	if (is_write)
		memcpy(mem + off, buf, count);
	else
		memcpy(buf, mem + off, count);
	return (ssize_t)count;
}

static int td_reset(void *o, enum mu_reset_reason why)
{
	struct td *t = o;

	t->nreset++;
	t->last_reset = why;
	return 0;
}

static int td_quiesce(void *o)
{
	struct td *t = o;

	t->nquiesce++;
	return t->quiesce_busy ? -EBUSY : 0;
}

static void td_map(void *o, const struct mu_dma_region *r)
{
	(void)r;
	((struct td *)o)->nmap++;
}

static void td_unmap(void *o, const struct mu_dma_region *r)
{
	(void)r;
	((struct td *)o)->nunmap++;
}

static void td_attach(void *o)
{
	((struct td *)o)->nattach++;
}

static void td_detach(void *o)
{
	((struct td *)o)->ndetach++;
}

/* Vendor cap body byte 0 reads the device's live value. */
static int td_cfg_read(void *o, uint32_t off, void *buf, size_t len)
{
	struct td *t = o;
	uint32_t live = (uint32_t)t->vndr_off + 3;

	if (t->vndr_off > 0 && off <= live && live < off + len)
		((uint8_t *)buf)[live - off] = t->vndr_live;
	return 0;
}

static void td_cfg(void *o, uint32_t off, size_t len)
{
	struct td *t = o;

	(void)len;
	t->ncfg++;
	t->last_cfg_off = off;
}

static int td_mig(void *o, enum mu_mig_state to)
{
	struct td *t = o;

	if (t->nmig < 16)
		t->mig_to[t->nmig++] = to;
	if (to == MU_MIG_STATE_STOP_COPY || to == MU_MIG_STATE_PRE_COPY)
		t->mig_pos = 0;
	if (to == MU_MIG_STATE_RESUMING)
		t->mig_len = 0;
	return 0;
}

static ssize_t td_mig_read(void *o, void *buf, size_t len)
{
	struct td *t = o;
	size_t n = t->mig_len - t->mig_pos;

	n = n < len ? n : len;
	memcpy(buf, t->mig + t->mig_pos, n);
	t->mig_pos += n;
	return (ssize_t)n;
}

static ssize_t td_mig_write(void *o, const void *buf, size_t len)
{
	struct td *t = o;

	if (t->mig_len + len > sizeof(t->mig))
		return -ENOSPC;
	memcpy(t->mig + t->mig_len, buf, len);
	t->mig_len += len;
	return (ssize_t)len;
}

static void quiet(void *o, int level, const char *msg)
{
	(void)o;
	if (getenv("MU_TEST_VERBOSE"))
		fprintf(stderr, "dev[%d] %s\n", level, msg);
}

void td_create(struct td *t, enum mu_pci_kind kind)
{
	static int seq;
	struct mu_pci_id id = {0x494f, 0x0dc8, 0x494f, 0x0001, 0xff0000, 1};
	static const struct mu_sparse_mmap_area s2 = {0x8000, 0x8000};
	static const struct mu_sparse_mmap_area s4 = {0x3000, 0x1000};
	struct mu_region_desc d = {.struct_size = sizeof(d)};
	struct mu_dev_callbacks cb = {
		.struct_size = sizeof(cb),
		.reset = td_reset,
		.quiesce = td_quiesce,
		.dma_map = td_map,
		.dma_unmap = td_unmap,
		.attach = td_attach,
		.detach = td_detach,
		.config_written = td_cfg,
		.config_read = td_cfg_read,
		.mig_transition = td_mig,
		.mig_read = td_mig_read,
		.mig_write = td_mig_write,
		.mig_flags = MU_MIGRATION_PRE_COPY,
	};
	uint8_t body[5] = {1, 2, 3, 4, 5};

	memset(t, 0, sizeof(*t));
	snprintf(t->path, sizeof(t->path), "/tmp/mu-test-%d-%d.sock", getpid(),
		 seq++);
	assert_int_equal(mu_dev_create(&t->dev, t->path, t), 0);
	mu_dev_set_log(t->dev, quiet, NULL, MU_LOG_DEBUG);
	if (td_next_max_dma_maps) {
		struct mu_dev_limits l = {.struct_size = sizeof(l),
					  .max_data_xfer_size = 64,
					  .max_dma_maps = td_next_max_dma_maps,
					  .max_msg_fds = 8,
					  .twin_socket = true};

		assert_int_equal(mu_dev_set_limits(t->dev, &l), 0);
		td_next_max_dma_maps = 0;
	}
	if (td_next_negotiate_ms) {
		struct mu_dev_limits l = {.struct_size = sizeof(l),
					  .max_data_xfer_size = 1u << 20,
					  .max_dma_maps = 65535,
					  .max_msg_fds = 16,
					  .twin_socket = true,
					  .send_timeout_ms = 5000,
					  .negotiate_timeout_ms =
						  td_next_negotiate_ms};

		assert_int_equal(mu_dev_set_limits(t->dev, &l), 0);
		td_next_negotiate_ms = 0;
	}
	assert_int_equal(mu_pci_setup(t->dev, &id, kind), 0);
	assert_int_equal(mu_pci_set_intx_pin(t->dev, 1), 0);
	d.size = TD_BAR0_SIZE;
	d.flags = MU_REGION_RW;
	d.access = td_access;
	assert_int_equal(mu_dev_setup_region(t->dev, 0, &d), 0);
	d.size = TD_BAR1_SIZE;
	d.flags = MU_REGION_RW | MU_REGION_BAR_IO;
	assert_int_equal(mu_dev_setup_region(t->dev, 1, &d), 0);
	d.access = NULL;
	d.size = TD_BAR2_SIZE;
	d.flags = MU_REGION_RW | MU_REGION_MEM | MU_REGION_BAR_64 |
		  MU_REGION_BAR_PREFETCH;
	d.sparse = &s2;
	d.nr_sparse = 1;
	assert_int_equal(mu_dev_setup_region(t->dev, 2, &d), 0);
	d.size = TD_BAR4_SIZE;
	d.flags = MU_REGION_RW | MU_REGION_MEM;
	d.sparse = &s4;
	assert_int_equal(mu_dev_setup_region(t->dev, 4, &d), 0);
	d.sparse = NULL;
	d.nr_sparse = 0;
	d.size = TD_ROM_SIZE;
	d.flags = MU_REGION_READ | MU_REGION_MEM;
	assert_int_equal(
		mu_dev_setup_region(t->dev, MU_PCI_ROM_REGION_INDEX, &d), 0);
	d.size = 4096;
	d.flags = MU_REGION_RW | MU_REGION_MEM;
	d.type = MU_REGION_TYPE_PCI_VENDOR_TYPE | 0x1234;
	d.subtype = 1;
	assert_int_equal(mu_dev_setup_region(t->dev, TD_DEVSPEC, &d), 0);
	assert_true(mu_pci_add_pm_cap(t->dev) > 0);
	assert_true(mu_pci_add_msi_cap(t->dev, TD_MSI_VECS, true, true) > 0);
	assert_true(mu_pci_add_msix_cap(t->dev, TD_MSIX_VECS, 4, 0, 4, 0x2000) >
		    0);
	if (kind == MU_PCI_EXPRESS) {
		assert_true(mu_pci_add_express_cap(t->dev, MU_PCIE_ENDPOINT) >
			    0);
		assert_int_equal(
			mu_pci_add_dsn_cap(t->dev, 0x1122334455667788ull),
			0x100);
		assert_true(mu_pci_add_ext_vendor_cap(t->dev, 0x42, 1, body,
						      5) > 0x100);
	}
	t->vndr_off = mu_pci_add_vendor_cap(t->dev, body, 5);
	assert_true(t->vndr_off > 0);
	assert_int_equal(mu_dev_set_callbacks(t->dev, &cb), 0);
	assert_int_equal(mu_dev_realize(t->dev), 0);
}

static void *run_thread(void *arg)
{
	struct td *t = arg;

	t->run_ret = mu_dev_run(t->dev);
	return NULL;
}

void td_start(struct td *t)
{
	assert_int_equal(pthread_create(&t->thr, NULL, run_thread, t), 0);
	t->running = true;
}

void td_stop(struct td *t)
{
	if (!t->running)
		return;
	mu_dev_stop(t->dev);
	pthread_join(t->thr, NULL);
	t->running = false;
}

void td_destroy(struct td *t)
{
	td_stop(t);
	mu_dev_destroy(t->dev);
	t->dev = NULL;
	assert_int_equal(access(t->path, F_OK), -1);
}

int tc_connect(struct tc *c, const char *path)
{
	int fd = mu_sock_connect(path);

	memset(c, 0, sizeof(*c));
	c->twin = -1;
	c->tw.fd = -1;
	if (fd < 0)
		return fd;
	return mu_chan_init(&c->c, fd, (2u << 20), 16);
}

void tc_close(struct tc *c)
{
	mu_chan_fini(&c->c);
	if (c->twin >= 0)
		mu_chan_fini(&c->tw);
	c->twin = -1;
}

int tc_raw(struct tc *c, const void *p, size_t len)
{
	struct iovec v = {(void *)p, len};

	return mu_sendmsg_all(c->c.fd, &v, 1, NULL, 0);
}

int tc_recv(struct tc *c, struct mu_chan *ch, struct mu_hdr *h, void *buf,
	    size_t cap, size_t *len, int timeout_ms)
{
	struct mu_msg m;
	struct pollfd p = {.fd = ch->fd, .events = POLLIN};
	int r;

	(void)c;
	for (;;) {
		if (!mu_chan_has_msg(ch)) {
			r = poll(&p, 1, timeout_ms);
			if (r == 0)
				return -ETIMEDOUT;
		}
		r = mu_chan_recv(ch, &m, MU_RECV_NONBLOCK);
		if (r == -EAGAIN)
			continue;
		if (r <= 0)
			return r;
		break;
	}
	*h = m.hdr;
	if (len)
		*len = m.len;
	if (buf)
		memcpy(buf, m.payload, m.len < cap ? m.len : cap);
	mu_msg_close_fds(&m);
	return 1;
}

int tc_call(struct tc *c, uint16_t cmd, uint32_t flags, const void *p,
	    size_t len, const int *fds, unsigned nfds, void *reply, size_t cap,
	    size_t *rlen, int *rfds, unsigned *nrfds)
{
	struct mu_hdr h = {.msg_id = ++c->id, .cmd = cmd, .flags = flags};
	struct iovec v = {(void *)p, len};
	struct mu_msg m;
	int r;

	r = mu_chan_send(&c->c, &h, &v, len ? 1 : 0, fds, nfds);
	if (r < 0)
		return r;
	if (flags & MU_FLAG_NO_REPLY)
		return 0;
	for (;;) {
		r = mu_chan_recv(&c->c, &m, 0);
		if (r <= 0)
			return r == 0 ? -ECONNRESET : r;
		if (m.hdr.msg_id == h.msg_id)
			break;
		mu_msg_close_fds(&m);
	}
	r = mu_check_reply(&m, cmd, 0);
	if (rlen)
		*rlen = m.len;
	if (reply && r == 0)
		memcpy(reply, m.payload, m.len < cap ? m.len : cap);
	if (rfds) {
		*nrfds = m.nfds;
		memcpy(rfds, m.fds, m.nfds * sizeof(int));
		m.nfds = 0;
	} else {
		mu_msg_close_fds(&m);
	}
	return r;
}

int tc_version(struct tc *c, uint16_t major, uint16_t minor, const char *json)
{
	uint8_t buf[600];
	struct mu_version v = {major, minor};
	size_t n = json ? strlen(json) + 1 : 0, rl = 0;
	int fds[4];
	unsigned nf = 0, i;
	int r;

	memcpy(buf, &v, sizeof(v));
	if (n)
		memcpy(buf + sizeof(v), json, n);
	memset(c->json, 0, sizeof(c->json));
	r = tc_call(c, MU_CMD_VERSION, 0, buf, sizeof(v) + n, NULL, 0, buf,
		    sizeof(buf) - 1, &rl, fds, &nf);
	if (r == 0 && rl > sizeof(v)) {
		size_t jl = rl - sizeof(v);

		if (jl >= sizeof(c->json))
			jl = sizeof(c->json) - 1;
		memcpy(c->json, buf + sizeof(v), jl);
		c->json[jl] = 0;
	}
	if (r == 0 && nf == 1) {
		c->twin = fds[0];
		mu_chan_init(&c->tw, fds[0], 2u << 20, 0);
	} else {
		for (i = 0; i < nf; i++)
			close(fds[i]);
	}
	return r;
}

int tc_open(struct tc *c, const char *path)
{
	int r = tc_connect(c, path);

	if (r < 0)
		return r;
	return tc_version(c, 0, 2, "{\"capabilities\":{\"max_msg_fds\":16}}");
}

int tc_read(struct tc *c, uint32_t region, uint64_t off, void *buf,
	    uint32_t count)
{
	struct mu_region_access a = {off, region, count};
	uint8_t *rep = malloc(sizeof(a) + count);
	size_t rl = 0;
	int r;

	r = tc_call(c, MU_CMD_REGION_READ, 0, &a, sizeof(a), NULL, 0, rep,
		    sizeof(a) + count, &rl, NULL, NULL);
	if (r == 0 && rl != sizeof(a) + count)
		r = -EBADMSG;
	if (r == 0)
		memcpy(buf, rep + sizeof(a), count);
	free(rep);
	return r;
}

int tc_write(struct tc *c, uint32_t region, uint64_t off, const void *buf,
	     uint32_t count)
{
	struct mu_region_access a = {off, region, count};
	uint8_t *req = malloc(sizeof(a) + count);
	int r;

	memcpy(req, &a, sizeof(a));
	memcpy(req + sizeof(a), buf, count);
	r = tc_call(c, MU_CMD_REGION_WRITE, 0, req, sizeof(a) + count, NULL, 0,
		    NULL, 0, NULL, NULL, NULL);
	free(req);
	return r;
}

uint32_t tc_cfg32(struct tc *c, uint32_t off)
{
	uint32_t v = 0xdeadbeef;

	assert_int_equal(tc_read(c, MU_PCI_CONFIG_REGION_INDEX, off, &v, 4), 0);
	return v;
}

void tc_cfg_w32(struct tc *c, uint32_t off, uint32_t v)
{
	assert_int_equal(tc_write(c, MU_PCI_CONFIG_REGION_INDEX, off, &v, 4),
			 0);
}

int fx_setup(void **state)
{
	static struct fx f;

	td_create(&f.t, MU_PCI_EXPRESS);
	td_start(&f.t);
	assert_int_equal(tc_open(&f.c, f.t.path), 0);
	*state = &f;
	return 0;
}

int fx_teardown(void **state)
{
	struct fx *f = *state;

	tc_close(&f->c);
	td_destroy(&f->t);
	return 0;
}
