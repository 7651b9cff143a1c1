/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libmuser-client against a fake server (tests/client/fake-server.c):
 * negotiation, discovery, region access, posted writes, DMA serving,
 * IRQs, hostile replies, concurrency, timeouts, migration data (with
 * libvfio-user's padding), dirty page logging. Every test checks that
 * no fd leaked.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "fake-server.h"

struct env {
	struct fake_server fs;
	mu_client_t *c;
	int fds_before;
	struct mu_client_opts opts;
};

static void quiet(void *opaque, int level, const char *msg)
{
	(void)opaque;
	(void)level;
	if (getenv("MU_TEST_VERBOSE"))
		fprintf(stderr, "client log: %s\n", msg);
}

static void env_init(struct env *e)
{
	e->fds_before = count_open_fds();
	fs_init(&e->fs);
	memset(&e->opts, 0, sizeof(e->opts));
	e->opts.struct_size = sizeof(e->opts);
	e->opts.log = quiet;
	e->opts.log_level = 7;
	e->c = NULL;
}

/* Start the server and connect; returns mu_client_adopt's result. */
static int env_connect(struct env *e)
{
	int r;

	assert_int_equal(fs_start(&e->fs), 0);
	r = mu_client_adopt(&e->c, e->fs.client_fd, &e->opts);
	if (r < 0) {
		close(e->fs.client_fd); /* still ours on failure */
		e->c = NULL;
	}
	return r;
}

static void env_fini(struct env *e)
{
	mu_client_destroy(e->c);
	fs_stop(&e->fs);
	assert_int_equal(count_open_fds(), e->fds_before);
}

static struct env *env_up(void)
{
	struct env *e = calloc(1, sizeof(*e));

	env_init(e);
	assert_int_equal(env_connect(e), 0);
	return e;
}

static void env_down(struct env *e)
{
	env_fini(e);
	free(e);
}

/* ---- basics ---------------------------------------------------------- */

static void test_connect_basic(void **state)
{
	struct env *e = env_up();
	struct mu_client_session s;
	struct mu_device_info d;
	struct mu_irq_info ii;
	uint32_t v = 0xdeadbeef, got = 0;

	(void)state;
	assert_true(mu_client_is_connected(e->c));
	assert_int_equal(mu_client_get_session(e->c, &s), 0);
	assert_int_equal(s.major, 0);
	assert_int_equal(s.minor, 2);
	assert_true(s.twin_socket);
	assert_true(s.write_multiple);
	assert_int_equal(s.max_msg_fds, 16);
	assert_int_equal(s.max_data_xfer_size, 1u << 20);
	assert_int_equal(mu_client_get_poll_fd(e->c) >= 0, 1);

	assert_int_equal(mu_client_device_info(e->c, &d), 0);
	assert_int_equal(d.num_regions, FS_NUM_REGIONS);
	assert_int_equal(d.num_irqs, 5);
	assert_true(d.flags & MU_DEVICE_FLAGS_RESET);

	assert_int_equal(mu_client_region_write(e->c, 0, 0x40, &v, 4), 0);
	assert_int_equal(mu_client_region_read(e->c, 0, 0x40, &got, 4), 0);
	assert_int_equal(got, v);
	/* Out of range for the device: the server's errno, still up. */
	assert_int_equal(mu_client_region_read(e->c, 0, FS_BAR0_SIZE, &got, 4),
			 -EINVAL);
	assert_true(mu_client_is_connected(e->c));

	assert_int_equal(mu_client_irq_info(e->c, MU_PCI_MSIX_IRQ_INDEX, &ii),
			 0);
	assert_int_equal(ii.count, 16);
	assert_int_equal(mu_client_irq_info(e->c, 9, &ii), -EINVAL);
	assert_int_equal(mu_client_reset(e->c), 0);
	assert_int_equal(e->fs.n_reset, 1);
	env_down(e);
}

static void test_connect_path(void **state)
{
	mu_client_t *c = NULL;
	int before = count_open_fds();

	(void)state;
	assert_int_equal(mu_client_connect(&c, "/nonexistent/muser.sock", NULL),
			 -ENOENT);
	assert_int_equal(mu_client_adopt(&c, -1, NULL), -EBADF);
	assert_int_equal(count_open_fds(), before);
}

/* ---- negotiation ---------------------------------------------------- */

struct nego_case {
	const char *name;
	void (*setup)(struct fake_server *fs, struct mu_client_opts *o);
	int expect;
};

static void n_default(struct fake_server *fs, struct mu_client_opts *o)
{
	(void)fs;
	(void)o;
}
static void n_no_twin(struct fake_server *fs, struct mu_client_opts *o)
{
	(void)o;
	fs->twin_mode = FS_TWIN_NONE;
}
static void n_twin_no_index(struct fake_server *fs, struct mu_client_opts *o)
{
	(void)o;
	fs->twin_mode = FS_TWIN_NO_INDEX;
}
static void n_twin_no_fd(struct fake_server *fs, struct mu_client_opts *o)
{
	(void)o;
	fs->twin_mode = FS_TWIN_NO_FD;
}
static void n_twin_pipe(struct fake_server *fs, struct mu_client_opts *o)
{
	(void)o;
	fs->twin_mode = FS_TWIN_BAD_FD;
}
static void n_twin_unasked(struct fake_server *fs, struct mu_client_opts *o)
{
	(void)fs;
	o->no_twin_socket = true;
}
static void n_major1(struct fake_server *fs, struct mu_client_opts *o)
{
	(void)o;
	fs->major = 1;
}
static void n_minor3(struct fake_server *fs, struct mu_client_opts *o)
{
	(void)o;
	fs->minor = 3;
}
static void n_minor0_nocaps(struct fake_server *fs, struct mu_client_opts *o)
{
	(void)o;
	fs->minor = 0;
	fs->json = "";
	fs->twin_mode = FS_TWIN_NONE;
}
static void n_bad_json(struct fake_server *fs, struct mu_client_opts *o)
{
	(void)o;
	fs->json = "{\"capabilities\":{\"max_msg_fds\":\"many\"}}";
}
static void n_garbage(struct fake_server *fs, struct mu_client_opts *o)
{
	(void)o;
	fs->json = "{not json";
}
static void n_error(struct fake_server *fs, struct mu_client_opts *o)
{
	(void)o;
	fs->version_errno = ENOTSUP;
}
static void n_close(struct fake_server *fs, struct mu_client_opts *o)
{
	(void)o;
	fs->close_at_version = true;
}
static void n_extra_fds(struct fake_server *fs, struct mu_client_opts *o)
{
	(void)o;
	fs->twin_mode = FS_TWIN_NONE;
	fs->version_extra_fds = 2;
}
static void n_twin_extra(struct fake_server *fs, struct mu_client_opts *o)
{
	(void)o;
	fs->version_extra_fds = 1;
}

static const struct nego_case nego_cases[] = {
	{"default", n_default, 0},
	{"no twin", n_no_twin, 0},
	{"twin without fd_index", n_twin_no_index, -EPROTO},
	{"twin fd_index without fd", n_twin_no_fd, -EPROTO},
	{"twin fd is a pipe", n_twin_pipe, -EPROTO},
	{"twin we did not offer", n_twin_unasked, -EPROTO},
	{"major 1", n_major1, -EPROTO},
	{"minor 3", n_minor3, -EPROTO},
	{"0.0 without caps", n_minor0_nocaps, 0},
	{"wrong cap type", n_bad_json, -EBADMSG},
	{"garbage json", n_garbage, -EBADMSG},
	{"error reply", n_error, -ENOTSUP},
	{"hang up", n_close, -ECONNRESET},
	{"surplus fds", n_extra_fds, -EPROTO},
	{"twin plus surplus fd", n_twin_extra, -EPROTO},
};

static void test_negotiation(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(nego_cases) / sizeof(nego_cases[0]); i++) {
		struct env e;
		int r;

		env_init(&e);
		nego_cases[i].setup(&e.fs, &e.opts);
		r = env_connect(&e);
		if (r != nego_cases[i].expect)
			fail_msg("case '%s': got %d, want %d",
				 nego_cases[i].name, r, nego_cases[i].expect);
		if (r == 0 && nego_cases[i].setup == n_minor0_nocaps) {
			struct mu_client_session s;

			mu_client_get_session(e.c, &s);
			assert_int_equal(s.max_msg_fds, 1);
			assert_int_equal(s.max_data_xfer_size, 1u << 20);
			assert_false(s.twin_socket);
			assert_false(s.write_multiple);
		}
		env_fini(&e);
	}
}

/* ---- region access ------------------------------------------------- */

static void test_region_split(void **state)
{
	struct env *e = calloc(1, sizeof(*e));
	uint8_t out[1000], in[1000];
	struct mu_client_session s;
	size_t i;

	(void)state;
	env_init(e);
	e->fs.max_data_xfer_size = 64;
	assert_int_equal(env_connect(e), 0);
	mu_client_get_session(e->c, &s);
	assert_int_equal(s.max_data_xfer_size, 64);
	for (i = 0; i < sizeof(out); i++)
		out[i] = (uint8_t)(i * 7);
	assert_int_equal(mu_client_region_write(e->c, 0, 3, out, sizeof(out)),
			 0);
	assert_int_equal(e->fs.n_write, 16);
	assert_int_equal(mu_client_region_read(e->c, 0, 3, in, sizeof(in)), 0);
	assert_int_equal(e->fs.n_read, 16);
	assert_int_equal(e->fs.max_count_seen, 64);
	assert_memory_equal(in, out, sizeof(in));
	assert_memory_equal(e->fs.bar0 + 3, out, sizeof(out));
	/* Offset overflow is refused before anything is sent. */
	assert_int_equal(mu_client_region_read(e->c, 0, UINT64_MAX - 1, in, 4),
			 -EINVAL);
	env_down(e);
}

static void test_posted_multi(void **state)
{
	struct env *e = env_up();
	uint32_t i, v;

	(void)state;
	for (i = 0; i < 100; i++)
		assert_int_equal(
			mu_client_region_write_posted(e->c, 0, i * 4, &i, 4),
			0);
	assert_int_equal(mu_client_flush(e->c), 0);
	assert_int_equal(e->fs.n_multi, 2);
	assert_int_equal(e->fs.n_multi_entries, 100);
	assert_int_equal(e->fs.n_info, 1);
	assert_int_equal(e->fs.n_write, 0);
	for (i = 0; i < 100; i++) {
		memcpy(&v, e->fs.bar0 + i * 4, 4);
		assert_int_equal(v, i);
	}
	/* Nothing posted since: flush is free. */
	assert_int_equal(mu_client_flush(e->c), 0);
	assert_int_equal(e->fs.n_info, 1);
	/* A batched write is seen by the next synchronous read. */
	v = 0xabcd1234;
	assert_int_equal(mu_client_region_write_posted(e->c, 0, 0x800, &v, 4),
			 0);
	v = 0;
	assert_int_equal(mu_client_region_read(e->c, 0, 0x800, &v, 4), 0);
	assert_int_equal(v, 0xabcd1234);
	/* A doorbell: sent by flush_posted without any request after it. */
	v = 0x5a5a5a5a;
	assert_int_equal(mu_client_region_write_posted(e->c, 0, 0x900, &v, 4),
			 0);
	assert_int_equal(mu_client_flush_posted(e->c), 0);
	for (i = 0; i < 2000; i++) {
		pthread_mutex_lock(&e->fs.lock);
		memcpy(&v, e->fs.bar0 + 0x900, 4);
		pthread_mutex_unlock(&e->fs.lock);
		if (v == 0x5a5a5a5a)
			break;
		usleep(1000);
	}
	assert_int_equal(v, 0x5a5a5a5a);
	assert_int_equal(e->fs.n_info, 1); /* no synchronous request */
	env_down(e);
}

static void test_posted_plain(void **state)
{
	struct env *e = calloc(1, sizeof(*e));
	uint8_t big[100];
	uint32_t i;

	(void)state;
	env_init(e);
	e->fs.write_multiple = false;
	assert_int_equal(env_connect(e), 0);
	memset(big, 0x5a, sizeof(big));
	for (i = 0; i < 10; i++)
		assert_int_equal(
			mu_client_region_write_posted(e->c, 0, i * 4, &i, 4),
			0);
	assert_int_equal(
		mu_client_region_write_posted(e->c, 0, 0x100, big, sizeof(big)),
		0);
	assert_int_equal(mu_client_flush(e->c), 0);
	assert_int_equal(e->fs.n_write_noreply, 11);
	assert_int_equal(e->fs.n_multi, 0);
	assert_int_equal(e->fs.bar0[0x100 + 99], 0x5a);
	env_down(e);
}

/* ---- region info and mmap ------------------------------------------- */

static void test_region_info(void **state)
{
	struct env *e = env_up();
	const struct mu_client_region *r, *r2;
	uint32_t pat = 0x11223344, *p;
	void *addr;

	(void)state;
	assert_int_equal(mu_client_region_info(e->c, 0, &r), 0);
	assert_int_equal(r->size, FS_BAR0_SIZE);
	assert_int_equal(r->fd, -1);
	assert_int_equal(r->nr_sparse, 0);
	assert_int_equal(
		mu_client_region_mmap(e->c, 0, 0, 4096, PROT_READ, &addr),
		-ENOTSUP);

	assert_int_equal(mu_client_region_info(e->c, 1, &r), 0);
	assert_true(r->flags & MU_REGION_INFO_FLAG_MMAP);
	assert_true(r->fd >= 0);
	assert_int_equal(r->nr_sparse, 2);
	assert_int_equal(r->sparse[1].offset, 0x3000);
	assert_true(r->has_type);
	assert_int_equal(r->type, 0x1234);
	assert_int_equal(r->subtype, 7);
	assert_int_equal(mu_client_region_info(e->c, 1, &r2), 0);
	assert_ptr_equal(r, r2); /* cached */
	assert_int_equal(mu_client_region_info(e->c, FS_NUM_REGIONS, &r2),
			 -EINVAL);

	/* Only inside a sparse area. */
	assert_int_equal(mu_client_region_mmap(e->c, 1, 0, 4096,
					       PROT_READ | PROT_WRITE, &addr),
			 -EINVAL);
	assert_int_equal(pwrite(e->fs.bar1_fd, &pat, 4, 0x3010), 4);
	assert_int_equal(mu_client_region_mmap(e->c, 1, 0x3000, 4096,
					       PROT_READ | PROT_WRITE, &addr),
			 0);
	p = (uint32_t *)((uint8_t *)addr + 0x10);
	assert_int_equal(*p, pat);
	*p = 0x55667788;
	assert_int_equal(pread(e->fs.bar1_fd, &pat, 4, 0x3010), 4);
	assert_int_equal(pat, 0x55667788);
	assert_int_equal(mu_client_region_munmap(e->c, addr, 4096), 0);
	assert_int_equal(mu_client_region_munmap(e->c, addr, 4096), -EINVAL);
	/* Left for destroy to unmap. */
	assert_int_equal(
		mu_client_region_mmap(e->c, 1, 0x1000, 4096, PROT_READ, &addr),
		0);
	env_down(e);
}

/* Region-info replies a hostile server might send, for index 2. */
enum ri_lie {
	RI_LOOP,
	RI_BACKWARDS,
	RI_TOO_MANY_AREAS,
	RI_AREA_OUTSIDE,
	RI_CAP_OUTSIDE,
	RI_FD_NO_MMAP,
	RI_MMAP_NO_FD,
	RI_WRONG_INDEX,
	RI_SHORT,
	RI_LEN_NE_ARGSZ,
	RI_BIG_ARGSZ, /* legit: needs a retry with more room */
	RI_TWO_FDS,
	RI_NEXT_PAST_END, /* sparse cap's next far beyond the reply */
	RI_COUNT,
};

static int ri_handler(struct fake_server *fs, struct mu_msg *m)
{
	enum ri_lie lie = (enum ri_lie)(uintptr_t)fs->opaque;
	struct {
		struct mu_region_info ri;
		struct fs_sparse_hdr sp;
		struct mu_sparse_mmap_area a[1];
		struct mu_region_info_cap_type ty;
	} MU_PACKED b;
	uint8_t big[2048];
	struct mu_region_info req;
	int fds[2] = {fs->bar1_fd, fs->bar1_fd};
	unsigned nfds = 1;
	size_t len = sizeof(b);

	if (m->hdr.cmd != MU_CMD_DEVICE_GET_REGION_INFO)
		return fs_default(fs, m);
	memcpy(&req, m->payload, sizeof(req));
	if (req.index != 2)
		return fs_default(fs, m);
	memset(&b, 0, sizeof(b));
	b.ri.argsz = sizeof(b);
	b.ri.index = 2;
	b.ri.flags = MU_REGION_INFO_FLAG_READ | MU_REGION_INFO_FLAG_MMAP |
		     MU_REGION_INFO_FLAG_CAPS;
	b.ri.size = 0x2000;
	b.ri.cap_offset = 32;
	b.sp.header.id = MU_REGION_INFO_CAP_SPARSE_MMAP;
	b.sp.header.next = 64;
	b.sp.nr_areas = 1;
	b.a[0] = (struct mu_sparse_mmap_area){0, 0x1000};
	b.ty.header.id = MU_REGION_INFO_CAP_TYPE;
	switch (lie) {
	case RI_LOOP:
		b.ty.header.next = 32;
		break;
	case RI_BACKWARDS:
		b.ri.cap_offset = 8;
		break;
	case RI_TOO_MANY_AREAS:
		b.sp.nr_areas = 1000;
		break;
	case RI_AREA_OUTSIDE:
		b.a[0] = (struct mu_sparse_mmap_area){0x1800, 0x1000};
		break;
	case RI_CAP_OUTSIDE:
		b.ty.header.next = 4000;
		break;
	case RI_FD_NO_MMAP:
		b.ri.flags &= ~MU_REGION_INFO_FLAG_MMAP;
		break;
	case RI_MMAP_NO_FD:
		nfds = 0;
		break;
	case RI_WRONG_INDEX:
		b.ri.index = 3;
		break;
	case RI_SHORT:
		len = 24;
		break;
	case RI_LEN_NE_ARGSZ:
		b.ri.argsz = 72;
		break;
	case RI_TWO_FDS:
		nfds = 2;
		break;
	case RI_NEXT_PAST_END:
		/* A parser bounded by next would read 4 areas past the end. */
		b.sp.header.next = 0xfffffff0u;
		b.sp.nr_areas = 4;
		break;
	case RI_BIG_ARGSZ:
		/* Type cap far out at 1800: needs argsz 1816. */
		memset(big, 0, sizeof(big));
		b.ri.argsz = 1816;
		b.sp.header.next = 1800;
		memcpy(big, &b, 64);
		memcpy(big + 1800, &b.ty, sizeof(b.ty));
		if (req.argsz < 1816)
			return fs_reply(fs, m, &b.ri, sizeof(b.ri), NULL, 0,
					NULL, 0);
		return fs_reply(fs, m, big, 1816, NULL, 0, fds, 1);
	default:
		break;
	}
	return fs_reply(fs, m, &b, len, NULL, 0, fds, nfds);
}

static void test_region_info_hostile(void **state)
{
	static const int want[RI_COUNT] = {
		[RI_LOOP] = -EBADMSG,
		[RI_BACKWARDS] = -EBADMSG,
		[RI_TOO_MANY_AREAS] = -EBADMSG,
		[RI_AREA_OUTSIDE] = -EBADMSG,
		[RI_CAP_OUTSIDE] = -EBADMSG,
		[RI_FD_NO_MMAP] = -EPROTO,
		[RI_MMAP_NO_FD] = -EPROTO,
		[RI_WRONG_INDEX] = -EBADMSG,
		[RI_SHORT] = -EBADMSG,
		[RI_LEN_NE_ARGSZ] = -EBADMSG,
		[RI_BIG_ARGSZ] = 0,
		[RI_TWO_FDS] = -EPROTO,
		[RI_NEXT_PAST_END] = -EBADMSG,
	};
	int i;

	(void)state;
	for (i = 0; i < RI_COUNT; i++) {
		struct env *e = calloc(1, sizeof(*e));
		const struct mu_client_region *r;
		uint32_t v;
		int got;

		env_init(e);
		e->fs.handler = ri_handler;
		e->fs.opaque = (void *)(uintptr_t)i;
		assert_int_equal(env_connect(e), 0);
		got = mu_client_region_info(e->c, 2, &r);
		if (got != want[i])
			fail_msg("lie %d: got %d want %d", i, got, want[i]);
		if (want[i] == 0) {
			assert_true(r->has_type);
			assert_int_equal(r->nr_sparse, 1);
			assert_true(r->fd >= 0);
			assert_true(mu_client_is_connected(e->c));
		} else {
			assert_false(mu_client_is_connected(e->c));
			assert_int_equal(
				mu_client_region_read(e->c, 0, 0, &v, 4),
				-ENOTCONN);
		}
		env_down(e);
	}
}

/* ---- DMA -------------------------------------------------------------- */

/* A REGION_WRITE to region 0 at DMA_DOORBELL makes the fake server run
 * the DMA described by the written struct before it replies. */
#define DMA_DOORBELL 0xf000u

struct dma_script {
	uint32_t write, count32;
	uint64_t addr;
	uint32_t count;
	uint8_t data[64];
} MU_PACKED;

static int dma_handler(struct fake_server *fs, struct mu_msg *m)
{
	struct mu_region_access a;
	struct dma_script s;

	if (m->hdr.cmd != MU_CMD_REGION_WRITE)
		return fs_default(fs, m);
	memcpy(&a, m->payload, sizeof(a));
	if (a.offset != DMA_DOORBELL || a.count != sizeof(s))
		return fs_default(fs, m);
	memcpy(&s, m->payload + sizeof(a), sizeof(s));
	if (fs_dma(fs, s.write, s.count32, s.addr, s.data, s.count) < 0)
		return -1;
	return fs_reply(fs, m, &a, sizeof(a), NULL, 0, NULL, 0);
}

static void run_dma(struct env *e, bool write, bool count32, uint64_t addr,
		    uint32_t count, const void *data)
{
	struct dma_script s = {write, count32, addr, count, {0}};

	if (data)
		memcpy(s.data, data, count);
	assert_int_equal(
		mu_client_region_write(e->c, 0, DMA_DOORBELL, &s, sizeof(s)),
		0);
}

static void dma_buffer_case(bool twin)
{
	struct env *e = calloc(1, sizeof(*e));
	uint8_t *buf = aligned_alloc(4096, 8192);
	uint8_t w[16];
	uint64_t addr, cnt;
	const uint64_t iova = 0x100000;
	int i;

	env_init(e);
	e->fs.handler = dma_handler;
	if (!twin)
		e->fs.twin_mode = FS_TWIN_NONE;
	assert_int_equal(env_connect(e), 0);
	for (i = 0; i < 8192; i++)
		buf[i] = (uint8_t)i;
	assert_int_equal(mu_client_dma_map_buffer(
				 e->c, iova, buf, 8192,
				 MU_DMA_MAP_FLAG_READ | MU_DMA_MAP_FLAG_WRITE),
			 0);
	assert_int_equal(e->fs.n_map, 1);
	/* Overlapping and misaligned maps are refused locally. */
	assert_int_equal(mu_client_dma_map_buffer(e->c, iova + 4096, buf, 4096,
						  MU_DMA_MAP_FLAG_READ),
			 -EEXIST);
	assert_int_equal(mu_client_dma_map_buffer(e->c, 0x123, buf, 4096,
						  MU_DMA_MAP_FLAG_READ),
			 -EINVAL);

	/* DMA_READ, spec layout: reply {addr, u64 count, data}. */
	run_dma(e, false, false, iova + 8, 16, NULL);
	assert_int_equal(e->fs.dma_err, 0);
	assert_int_equal(e->fs.dma_len, 32);
	memcpy(&addr, e->fs.dma_data, 8);
	memcpy(&cnt, e->fs.dma_data + 8, 8);
	assert_int_equal(addr, iova + 8);
	assert_int_equal(cnt, 16);
	assert_memory_equal(e->fs.dma_data + 16, buf + 8, 16);

	/* DMA_READ, QEMU layout: {addr, u32 count, data@12}. */
	run_dma(e, false, true, iova + 100, 16, NULL);
	assert_int_equal(e->fs.dma_err, 0);
	assert_int_equal(e->fs.dma_len, 28);
	assert_memory_equal(e->fs.dma_data + 12, buf + 100, 16);

	/* DMA_WRITE in both layouts. */
	memset(w, 0xee, sizeof(w));
	run_dma(e, true, false, iova + 4000, 16, w);
	assert_int_equal(e->fs.dma_err, 0);
	assert_int_equal(e->fs.dma_len, 16);
	assert_memory_equal(buf + 4000, w, 16);
	memset(w, 0x77, sizeof(w));
	run_dma(e, true, true, iova + 8000, 16, w);
	assert_int_equal(e->fs.dma_err, 0);
	assert_int_equal(e->fs.dma_len, 12);
	assert_memory_equal(buf + 8000, w, 16);

	/* Out of bounds, unmapped, wrapping. */
	run_dma(e, false, false, iova + 8192 - 8, 16, NULL);
	assert_int_equal(e->fs.dma_err, EFAULT);
	run_dma(e, true, false, 0x5000, 16, w);
	assert_int_equal(e->fs.dma_err, EFAULT);
	run_dma(e, false, false, UINT64_MAX - 4, 16, NULL);
	assert_int_equal(e->fs.dma_err, EINVAL);
	assert_int_equal(buf[8176], 0xf0);
	assert_int_equal(buf[8191], 0xff);

	/* A read-only map refuses DMA_WRITE. */
	assert_int_equal(mu_client_dma_unmap(e->c, iova, 8192), 0);
	assert_int_equal(mu_client_dma_unmap(e->c, iova, 8192), -ENOENT);
	assert_int_equal(mu_client_dma_map_buffer(e->c, iova, buf, 4096,
						  MU_DMA_MAP_FLAG_READ),
			 0);
	run_dma(e, true, false, iova, 4, w);
	assert_int_equal(e->fs.dma_err, EACCES);
	run_dma(e, false, false, iova, 4, NULL);
	assert_int_equal(e->fs.dma_err, 0);
	assert_int_equal(mu_client_dma_unmap_all(e->c), 0);
	run_dma(e, false, false, iova, 4, NULL);
	assert_int_equal(e->fs.dma_err, EFAULT);
	assert_true(mu_client_is_connected(e->c));
	env_down(e);
	free(buf);
}

/* A server that refuses DMA_UNMAP. */
static int unmap_refuser(struct fake_server *fs, struct mu_msg *m)
{
	if (m->hdr.cmd == MU_CMD_DMA_UNMAP)
		return fs_error(fs, m, EBUSY);
	return dma_handler(fs, m);
}

/* The caller takes its memory back when it unmaps, whatever the server
 * says: afterwards the server can't reach it any more. */
static void test_dma_unmap_refused(void **state)
{
	struct env *e = calloc(1, sizeof(*e));
	uint8_t *buf = aligned_alloc(4096, 4096);
	const uint64_t iova = 0x100000;

	(void)state;
	env_init(e);
	e->fs.handler = unmap_refuser;
	assert_int_equal(env_connect(e), 0);
	memset(buf, 0x11, 4096);
	assert_int_equal(mu_client_dma_map_buffer(e->c, iova, buf, 4096,
						  MU_DMA_MAP_FLAG_READ |
							  MU_DMA_MAP_FLAG_WRITE),
			 0);
	assert_int_equal(mu_client_dma_unmap(e->c, iova, 4096), -EBUSY);
	run_dma(e, false, false, iova, 4, NULL);
	assert_int_equal(e->fs.dma_err, EFAULT);
	assert_int_equal(mu_client_dma_map_buffer(e->c, iova, buf, 4096,
						  MU_DMA_MAP_FLAG_READ),
			 0);
	assert_int_equal(mu_client_dma_unmap_all(e->c), -EBUSY);
	run_dma(e, false, false, iova, 4, NULL);
	assert_int_equal(e->fs.dma_err, EFAULT);
	env_down(e);
	free(buf);
}

static void test_dma_buffer_twin(void **state)
{
	(void)state;
	dma_buffer_case(true);
}

static void test_dma_buffer_main(void **state)
{
	(void)state;
	dma_buffer_case(false);
}

static void test_dma_fd(void **state)
{
	struct env *e = env_up();
	int mfd = memfd_create("dma", MFD_CLOEXEC);
	uint8_t w[8] = {1, 2, 3, 4, 5, 6, 7, 8}, r8[8];

	(void)state;
	assert_true(mfd >= 0);
	assert_int_equal(ftruncate(mfd, 16384), 0);
	assert_int_equal(pwrite(mfd, "hello dma", 9, 4096 + 64), 9);
	e->fs.handler = dma_handler;
	assert_int_equal(mu_client_dma_map_fd(e->c, 0x200000, 8192, mfd, 4096,
					      MU_DMA_MAP_FLAG_READ |
						      MU_DMA_MAP_FLAG_WRITE),
			 0);
	close(mfd); /* the library keeps what it needs */
	run_dma(e, false, false, 0x200000 + 64, 9, NULL);
	assert_int_equal(e->fs.dma_err, 0);
	assert_memory_equal(e->fs.dma_data + 16, "hello dma", 9);
	run_dma(e, true, false, 0x200000 + 128, 8, w);
	assert_int_equal(e->fs.dma_err, 0);
	run_dma(e, false, true, 0x200000 + 128, 8, NULL);
	memcpy(r8, e->fs.dma_data + 12, 8);
	assert_memory_equal(r8, w, 8);
	assert_int_equal(mu_client_dma_map_fd(e->c, 0x400000, 4096, 999, 0,
					      MU_DMA_MAP_FLAG_READ),
			 -EBADF);
	env_down(e);
}

/* ---- IRQs ------------------------------------------------------------- */

static void test_irq_batches(void **state)
{
	struct env *e = calloc(1, sizeof(*e));
	int efd[6], i, saved;

	(void)state;
	env_init(e);
	e->fs.max_msg_fds = 2;
	assert_int_equal(env_connect(e), 0);
	for (i = 0; i < 6; i++)
		efd[i] = eventfd(0, EFD_CLOEXEC);
	saved = efd[3];
	efd[3] = -1; /* de-assign vector 3+start */
	assert_int_equal(mu_client_irq_set_eventfds(e->c, MU_PCI_MSIX_IRQ_INDEX,
						    4, 6, efd),
			 0);
	/* [4,5] [6] [7 de-assign] [8,9] */
	assert_int_equal(e->fs.n_set_irqs, 4);
	assert_int_equal(e->fs.irq_starts[0], 4);
	assert_int_equal(e->fs.irq_counts[0], 2);
	assert_int_equal(e->fs.irq_nfds[0], 2);
	assert_int_equal(e->fs.irq_starts[1], 6);
	assert_int_equal(e->fs.irq_counts[1], 1);
	assert_int_equal(e->fs.irq_starts[2], 7);
	assert_int_equal(e->fs.irq_nfds[2], 0);
	assert_int_equal(e->fs.irq_starts[3], 8);
	assert_int_equal(e->fs.irq_counts[3], 2);
	assert_int_equal(mu_client_irq_mask(e->c, 0, 0, 1, true), 0);
	assert_int_equal(mu_client_irq_mask(e->c, 0, 0, 1, false), 0);
	assert_int_equal(mu_client_irq_trigger(e->c, 0, 0, 1), 0);
	assert_int_equal(mu_client_irq_disable(e->c, MU_PCI_MSIX_IRQ_INDEX), 0);
	assert_int_equal(e->fs.n_set_irqs, 8);
	assert_int_equal(e->fs.irq_counts[7], 0);
	efd[3] = 12345; /* not an fd */
	assert_int_equal(mu_client_irq_set_eventfds(e->c, 2, 0, 6, efd),
			 -EBADF);
	efd[3] = saved;
	for (i = 0; i < 6; i++)
		close(efd[i]);
	env_down(e);
}

/* ---- hostile replies to REGION_READ ---------------------------------- */

enum lie {
	LIE_WRONG_ID,
	LIE_WRONG_CMD,
	LIE_SHORT,
	LIE_LONG,
	LIE_COUNT_MISMATCH,
	LIE_OVERSIZED,
	LIE_SURPLUS_FD,
	LIE_CLOSE,
	LIE_NOT_REPLY,
	LIE_BAD_FLAGS,
	LIE_HDR_TOO_SMALL,
	LIE_TRUNCATED,
	LIE_ERROR, /* an honest error: connection stays */
	LIE_ERROR_ZERO,
	LIE_MAX,
};

static int lie_handler(struct fake_server *fs, struct mu_msg *m)
{
	enum lie lie = (enum lie)(uintptr_t)fs->opaque;
	struct mu_region_access a;
	struct {
		struct mu_hdr h;
		struct mu_region_access a;
		uint32_t data;
	} MU_PACKED msg;
	int efd;

	if (m->hdr.cmd != MU_CMD_REGION_READ)
		return fs_default(fs, m);
	memcpy(&a, m->payload, sizeof(a));
	memset(&msg, 0, sizeof(msg));
	msg.h.msg_id = m->hdr.msg_id;
	msg.h.cmd = m->hdr.cmd;
	msg.h.size = sizeof(msg);
	msg.h.flags = MU_FLAG_TYPE_REPLY;
	msg.a = a;
	switch (lie) {
	case LIE_WRONG_ID:
		msg.h.msg_id++;
		break;
	case LIE_WRONG_CMD:
		msg.h.cmd = MU_CMD_REGION_WRITE;
		break;
	case LIE_SHORT:
		msg.h.size = sizeof(msg) - 2;
		break;
	case LIE_LONG: {
		uint8_t b[64] = {0};

		msg.h.size = sizeof(msg) + sizeof(b);
		fs_raw(fs, &msg, sizeof(msg), NULL, 0);
		return fs_raw(fs, b, sizeof(b), NULL, 0);
	}
	case LIE_COUNT_MISMATCH:
		msg.a.count = 3;
		break;
	case LIE_OVERSIZED:
		msg.h.size = 64u << 20;
		break;
	case LIE_SURPLUS_FD:
		efd = eventfd(0, EFD_CLOEXEC);
		fs_raw(fs, &msg, sizeof(msg), &efd, 1);
		close(efd);
		return 0;
	case LIE_CLOSE:
		return -1;
	case LIE_NOT_REPLY:
		msg.h.flags = 2;
		break;
	case LIE_BAD_FLAGS:
		msg.h.flags |= 1u << 20;
		break;
	case LIE_HDR_TOO_SMALL:
		msg.h.size = 8;
		break;
	case LIE_TRUNCATED:
		fs_raw(fs, &msg, sizeof(msg) - 3, NULL, 0);
		return -1;
	case LIE_ERROR:
		return fs_error(fs, m, EIO);
	case LIE_ERROR_ZERO:
		msg.h.flags |= MU_FLAG_ERROR;
		msg.h.size = sizeof(msg.h);
		return fs_raw(fs, &msg, sizeof(msg.h), NULL, 0);
	default:
		break;
	}
	return fs_raw(fs, &msg, sizeof(msg), NULL, 0);
}

static void test_hostile_replies(void **state)
{
	static const int want[LIE_MAX] = {
		[LIE_WRONG_ID] = -EPROTO,
		[LIE_WRONG_CMD] = -EPROTO,
		[LIE_SHORT] = -EBADMSG,
		[LIE_LONG] = -EBADMSG,
		[LIE_COUNT_MISMATCH] = -EPROTO,
		[LIE_OVERSIZED] = -EBADMSG,
		[LIE_SURPLUS_FD] = -EPROTO,
		[LIE_CLOSE] = -ECONNRESET,
		[LIE_NOT_REPLY] = -EBADMSG,
		[LIE_BAD_FLAGS] = -EBADMSG,
		[LIE_HDR_TOO_SMALL] = -EPROTO,
		[LIE_TRUNCATED] = -ECONNRESET,
		[LIE_ERROR] = -EIO,
		[LIE_ERROR_ZERO] = -EIO,
	};
	int i;

	(void)state;
	for (i = 0; i < LIE_MAX; i++) {
		struct env *e = calloc(1, sizeof(*e));
		uint32_t v = 0;
		int got;

		env_init(e);
		e->fs.handler = lie_handler;
		e->fs.opaque = (void *)(uintptr_t)i;
		assert_int_equal(env_connect(e), 0);
		got = mu_client_region_read(e->c, 0, 0, &v, 4);
		if (got != want[i])
			fail_msg("lie %d: got %d (%s) want %d", i, got,
				 strerror(-got), want[i]);
		if (i == LIE_ERROR || i == LIE_ERROR_ZERO) {
			assert_true(mu_client_is_connected(e->c));
			assert_int_equal(
				mu_client_region_write(e->c, 0, 0, &v, 4), 0);
		} else {
			assert_false(mu_client_is_connected(e->c));
			assert_int_equal(
				mu_client_region_write(e->c, 0, 0, &v, 4),
				-ENOTCONN);
			assert_int_equal(mu_client_region_write_posted(
						 e->c, 0, 0, &v, 4),
					 -ENOTCONN);
			assert_int_equal(mu_client_process(e->c), -ENOTCONN);
		}
		env_down(e);
	}
}

/* ---- timeouts -------------------------------------------------------- */

/* Swallow the first REGION_READ; answer it late, just before the next. */
static int late_handler(struct fake_server *fs, struct mu_msg *m)
{
	static struct mu_msg held;
	static uint8_t held_payload[16];
	static bool holding;

	if (m->hdr.cmd != MU_CMD_REGION_READ)
		return fs_default(fs, m);
	if (!fs->opaque) {
		held = *m;
		memcpy(held_payload, m->payload, 16);
		held.payload = held_payload;
		held.nfds = 0;
		holding = true;
		fs->opaque = (void *)1;
		return 0;
	}
	if (holding) {
		holding = false;
		fs_default(fs, &held); /* the late reply */
	}
	return fs_default(fs, m);
}

static void test_timeout(void **state)
{
	struct env *e = calloc(1, sizeof(*e));
	struct timespec t0, t1;
	uint32_t v = 0;
	long ms;

	(void)state;
	env_init(e);
	e->opts.timeout_ms = 200;
	e->fs.handler = late_handler;
	assert_int_equal(env_connect(e), 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(mu_client_region_read(e->c, 0, 0, &v, 4), -ETIMEDOUT);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ms = (t1.tv_sec - t0.tv_sec) * 1000 +
	     (t1.tv_nsec - t0.tv_nsec) / 1000000;
	assert_true(ms >= 190 && ms < 1000);
	/* Still connected; the late reply is dropped, not mistaken. */
	assert_true(mu_client_is_connected(e->c));
	e->fs.bar0[0] = 42;
	assert_int_equal(mu_client_region_read(e->c, 0, 0, &v, 4), 0);
	assert_int_equal(v, 42);
	assert_int_equal(mu_client_set_timeout(e->c, -1), 0);
	assert_int_equal(mu_client_region_read(e->c, 0, 0, &v, 4), 0);
	env_down(e);
}

/* ---- concurrency ------------------------------------------------------ */

struct worker {
	mu_client_t *c;
	unsigned id;
	int err;
};

#define WORKER_OPS 2000

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	uint32_t i, v;
	int r;

	for (i = 0; i < WORKER_OPS; i++) {
		uint64_t off = w->id * 256 + (i % 32) * 4;
		uint32_t want = (w->id << 24) | i;

		r = mu_client_region_write(w->c, 0, off, &want, 4);
		if (r == 0)
			r = mu_client_region_read(w->c, 0, off, &v, 4);
		if (r == 0 && v != want)
			r = -EILSEQ;
		if (r < 0) {
			w->err = r;
			return NULL;
		}
	}
	return NULL;
}

/* Answer pairs of requests in reverse order when two are queued. */
static int reorder_handler(struct fake_server *fs, struct mu_msg *m)
{
	static uint8_t payload[64];
	struct mu_msg first = *m, second;
	int r;

	if (m->len > sizeof(payload) || m->nfds)
		return fs_default(fs, m);
	memcpy(payload, m->payload, m->len);
	first.payload = payload;
	r = mu_chan_recv(&fs->ch, &second, MU_RECV_NONBLOCK);
	if (r == 1) {
		r = fs_default(fs, &second);
		mu_msg_close_fds(&second);
		if (r < 0)
			return r;
	} else if (r == 0 || (r < 0 && r != -EAGAIN)) {
		return -1;
	}
	return fs_default(fs, &first);
}

static void test_concurrent(void **state)
{
	struct env *e = calloc(1, sizeof(*e));
	struct worker w[4];
	pthread_t t[4];
	unsigned i;

	(void)state;
	env_init(e);
	e->fs.handler = reorder_handler;
	assert_int_equal(env_connect(e), 0);
	for (i = 0; i < 4; i++) {
		w[i] = (struct worker){e->c, i, 0};
		pthread_create(&t[i], NULL, worker_main, &w[i]);
	}
	for (i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(w[i].err, 0);
	}
	assert_int_equal(e->fs.n_read, 4 * WORKER_OPS);
	env_down(e);
}

/* The server dies while four threads wait. */
static int die_handler(struct fake_server *fs, struct mu_msg *m)
{
	if (m->hdr.cmd != MU_CMD_REGION_READ)
		return fs_default(fs, m);
	if (++fs->n_read < 4)
		return 0; /* swallow until all four wait */
	usleep(20000);
	return -1;
}

static void *die_worker(void *arg)
{
	struct worker *w = arg;
	uint32_t v;

	w->err = mu_client_region_read(w->c, 0, 0, &v, 4);
	return NULL;
}

static void test_server_death(void **state)
{
	struct env *e = calloc(1, sizeof(*e));
	struct worker w[4];
	pthread_t t[4];
	unsigned i;

	(void)state;
	env_init(e);
	e->fs.handler = die_handler;
	assert_int_equal(env_connect(e), 0);
	for (i = 0; i < 4; i++) {
		w[i] = (struct worker){e->c, i, 0};
		pthread_create(&t[i], NULL, die_worker, &w[i]);
	}
	for (i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(w[i].err, -ECONNRESET);
	}
	assert_false(mu_client_is_connected(e->c));
	assert_int_equal(mu_client_reset(e->c), -ENOTCONN);
	env_down(e);
}

/* ---- migration and raw requests --------------------------------------- */

static void test_migration_raw(void **state)
{
	struct env *e = env_up();
	struct mu_device_info req = {.argsz = 16}, rep;
	uint64_t flags = 0;
	uint32_t st = 0;
	ssize_t n;

	(void)state;
	assert_int_equal(mu_client_mig_flags(e->c, &flags), 0);
	assert_int_equal(flags, MU_MIGRATION_STOP_COPY);
	assert_int_equal(mu_client_mig_set_state(e->c, MU_MIG_STATE_STOP), 0);
	assert_int_equal(mu_client_mig_get_state(e->c, &st), 0);
	assert_int_equal(st, MU_MIG_STATE_STOP);
	/* The fake has no MIG_DATA: the server's errno comes back. */
	assert_int_equal(mu_client_mig_read(e->c, &st, 4), -ENOSYS);

	n = mu_client_request(e->c, MU_CMD_DEVICE_GET_INFO, &req, sizeof(req),
			      NULL, 0, &rep, 8, NULL, NULL);
	assert_int_equal(n, 16); /* full length, truncated copy */
	assert_int_equal(rep.argsz, 16);
	n = mu_client_request(e->c, 77, NULL, 0, NULL, 0, NULL, 0, NULL, NULL);
	assert_int_equal(n, -ENOSYS);
	assert_true(mu_client_is_connected(e->c));
	env_down(e);
}

/* ---- migration data: libvfio-user's padding and argsz ------------------- */

enum mig_mode {
	MIG_PAD,	      /* libvfio-user: short reads padded to size */
	MIG_NOPAD,	      /* muser: 8 + bytes returned */
	MIG_LIE_OVER_REQUEST, /* size > the size asked for */
	MIG_LIE_OVER_PAYLOAD, /* size > the data actually sent */
	MIG_LIE_ARGSZ,	      /* argsz = the padded length, not 8 + size */
	MIG_LIE_LONG,	      /* payload longer than 8 + the size asked */
};

static struct {
	uint8_t src[100]; /* the device's stream */
	size_t pos;
	uint8_t dst[256]; /* what MIG_DATA_WRITE delivered */
	size_t dst_len;
	uint32_t wr_argsz[8], wr_size[8];
	unsigned nwr;
} mig;

static void mig_reset(void)
{
	size_t i;

	memset(&mig, 0, sizeof(mig));
	for (i = 0; i < sizeof(mig.src); i++)
		mig.src[i] = (uint8_t)(i * 7 + 1);
}

static int mig_handler(struct fake_server *fs, struct mu_msg *m)
{
	struct mu_limits lim = {fs->max_data_xfer_size, fs->max_msg_fds};
	enum mig_mode mode = (enum mig_mode)(uintptr_t)fs->opaque;
	struct mu_mig_data d, *out;
	size_t n, len;
	int r;

	if (m->hdr.cmd != MU_CMD_MIG_DATA_READ &&
	    m->hdr.cmd != MU_CMD_MIG_DATA_WRITE)
		return fs_default(fs, m);
	/* What muser's own server accepts, the client must send. */
	r = mu_check_command(m, &lim);
	if (r < 0)
		return fs_error(fs, m, -r);
	memcpy(&d, m->payload, sizeof(d));
	if (m->hdr.cmd == MU_CMD_MIG_DATA_WRITE) {
		if (mig.nwr < 8) {
			mig.wr_argsz[mig.nwr] = d.argsz;
			mig.wr_size[mig.nwr] = d.size;
		}
		mig.nwr++;
		/* libvfio-user's rule (handle_mig_data_write). */
		if (d.argsz < sizeof(d) + d.size ||
		    mig.dst_len + d.size > sizeof(mig.dst))
			return fs_error(fs, m, EINVAL);
		memcpy(mig.dst + mig.dst_len, m->payload + sizeof(d), d.size);
		mig.dst_len += d.size;
		return fs_reply(fs, m, NULL, 0, NULL, 0, NULL, 0);
	}
	if (d.argsz < sizeof(d) + d.size) /* libvfio-user's rule */
		return fs_error(fs, m, EINVAL);
	n = sizeof(mig.src) - mig.pos;
	if (n > d.size)
		n = d.size;
	len = sizeof(d) + (mode == MIG_NOPAD ? n : d.size);
	out = calloc(1, sizeof(d) + d.size + 8);
	memcpy(out + 1, mig.src + mig.pos, n);
	mig.pos += n;
	out->size = (uint32_t)n;
	out->argsz = (uint32_t)(sizeof(d) + n);
	switch (mode) {
	case MIG_LIE_OVER_REQUEST:
		out->size = d.size + 1;
		out->argsz = out->size + 8;
		break;
	case MIG_LIE_OVER_PAYLOAD:
		len = sizeof(d) + 4;
		out->size = 10;
		out->argsz = 18;
		break;
	case MIG_LIE_ARGSZ:
		out->argsz = (uint32_t)(sizeof(d) + d.size);
		break;
	case MIG_LIE_LONG:
		len += 8;
		break;
	default:
		break;
	}
	r = fs_reply(fs, m, out, len, NULL, 0, NULL, 0);
	free(out);
	return r;
}

static void test_mig_data_interop(void **state)
{
	struct env *e = calloc(1, sizeof(*e));
	uint8_t buf[4096], data[150];
	struct mu_mig_data wire;
	size_t i;

	(void)state;
	mig_reset();
	env_init(e);
	e->fs.handler = mig_handler;
	e->fs.opaque = (void *)(uintptr_t)MIG_PAD;
	e->fs.max_data_xfer_size = 64; /* 64-byte chunks */
	assert_int_equal(env_connect(e), 0);

	/* 64 + 36: the last reply is 8 + 64 bytes with size 36. */
	memset(buf, 0xee, sizeof(buf));
	assert_int_equal(mu_client_mig_read(e->c, buf, sizeof(buf)), 100);
	assert_memory_equal(buf, mig.src, 100);
	/* The request on the wire: argsz 8 + 64, size 64. */
	assert_int_equal(e->fs.last_len, 8);
	memcpy(&wire, e->fs.last, sizeof(wire));
	assert_int_equal(wire.argsz, 72);
	assert_int_equal(wire.size, 64);
	/* End of stream: a padded reply with size 0. */
	assert_int_equal(mu_client_mig_read(e->c, buf, sizeof(buf)), 0);
	/* muser's unpadded short reply is fine too. */
	mig.pos = 90;
	e->fs.opaque = (void *)(uintptr_t)MIG_NOPAD;
	assert_int_equal(mu_client_mig_read(e->c, buf, 30), 10);
	assert_memory_equal(buf, mig.src + 90, 10);

	/* MIG_DATA_WRITE: argsz = 8 + size in every chunk. */
	for (i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(255 - i);
	assert_int_equal(mu_client_mig_write(e->c, data, sizeof(data)), 0);
	assert_int_equal(mig.nwr, 3);
	assert_int_equal(mig.wr_size[0], 64);
	assert_int_equal(mig.wr_argsz[0], 72);
	assert_int_equal(mig.wr_argsz[1], 72);
	assert_int_equal(mig.wr_size[2], 22);
	assert_int_equal(mig.wr_argsz[2], 30);
	assert_int_equal(mig.dst_len, sizeof(data));
	assert_memory_equal(mig.dst, data, sizeof(data));
	assert_int_equal(e->fs.last_len, 30);
	memcpy(&wire, e->fs.last, sizeof(wire));
	assert_int_equal(wire.argsz, 30);
	assert_int_equal(wire.size, 22);
	assert_memory_equal(e->fs.last + 8, data + 128, 22);
	assert_true(mu_client_is_connected(e->c));
	env_down(e);
}

static void test_mig_data_lies(void **state)
{
	static const enum mig_mode lies[] = {
		MIG_LIE_OVER_REQUEST,
		MIG_LIE_OVER_PAYLOAD,
		MIG_LIE_ARGSZ,
		MIG_LIE_LONG,
	};
	uint8_t buf[4096];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(lies) / sizeof(lies[0]); i++) {
		struct env *e = calloc(1, sizeof(*e));
		ssize_t got;

		mig_reset();
		env_init(e);
		e->fs.handler = mig_handler;
		e->fs.opaque = (void *)(uintptr_t)lies[i];
		assert_int_equal(env_connect(e), 0);
		got = mu_client_mig_read(e->c, buf, sizeof(buf));
		if (got != -EBADMSG)
			fail_msg("lie %d: got %zd want %d", (int)lies[i], got,
				 -EBADMSG);
		assert_false(mu_client_is_connected(e->c));
		env_down(e);
	}
}

/* ---- dirty page logging ----------------------------------------------- */

enum dlog_mode {
	DLOG_OK,
	DLOG_PICK,	 /* START answers with page size 8192 */
	DLOG_HDR_ONLY,	 /* START answers with the 8-byte header alone */
	DLOG_NONE,	 /* no DMA logging: ENOTTY, as muser's server */
	DLOG_SHORT,	 /* REPORT: bitmap 8 bytes short (argsz agrees) */
	DLOG_LONG,	 /* REPORT: bitmap 8 bytes long (argsz agrees) */
	DLOG_FLAGS,	 /* REPORT: SET instead of GET echoed */
	DLOG_FDS,	 /* REPORT: an eventfd attached */
	DLOG_TAIL,	 /* REPORT: a bit past the range */
	DLOG_ECHO,	 /* REPORT: iova echoed wrong */
	DLOG_ARGSZ,	 /* REPORT: argsz != the payload length */
	DLOG_START_ECHO, /* START: a range echoed wrong */
};

static bool dlog_started;

static int dlog_handler(struct fake_server *fs, struct mu_msg *m)
{
	enum dlog_mode mode = (enum dlog_mode)(uintptr_t)fs->opaque;
	struct mu_device_feature f;
	struct mu_dma_logging_report rq;
	uint8_t out[512];
	uint64_t bm[2] = {0x8000000000000021ull, 1ull << 35};
	size_t need, len;
	int efd, r;

	if (m->hdr.cmd != MU_CMD_DEVICE_FEATURE || m->len < sizeof(f))
		return fs_default(fs, m);
	memcpy(&f, m->payload, sizeof(f));
	switch (f.flags & MU_DEVICE_FEATURE_MASK) {
	case MU_DEVICE_FEATURE_DMA_LOGGING_START:
	case MU_DEVICE_FEATURE_DMA_LOGGING_STOP:
	case MU_DEVICE_FEATURE_DMA_LOGGING_REPORT:
		break;
	default:
		return fs_default(fs, m);
	}
	if (mode == DLOG_NONE)
		return fs_error(fs, m, ENOTTY);
	if (f.flags & MU_DEVICE_FEATURE_PROBE)
		return fs_reply(fs, m, m->payload, m->len, NULL, 0, NULL, 0);
	if ((f.flags & MU_DEVICE_FEATURE_MASK) ==
	    MU_DEVICE_FEATURE_DMA_LOGGING_START) {
		/* libvfio-user: the request echoed. */
		len = m->len < sizeof(out) ? m->len : sizeof(out);
		memcpy(out, m->payload, len);
		if (mode == DLOG_PICK) {
			uint64_t ps = 8192;

			memcpy(out + 8, &ps, 8);
		}
		if (mode == DLOG_HDR_ONLY) {
			len = 8;
			f.argsz = 8;
			memcpy(out, &f, 8);
		}
		if (mode == DLOG_START_ECHO)
			out[len - 1] ^= 1;
		dlog_started = true;
		return fs_reply(fs, m, out, len, NULL, 0, NULL, 0);
	}
	if ((f.flags & MU_DEVICE_FEATURE_MASK) ==
	    MU_DEVICE_FEATURE_DMA_LOGGING_STOP) {
		dlog_started = false;
		return fs_reply(fs, m, m->payload, m->len, NULL, 0, NULL, 0);
	}
	if (!dlog_started || m->len < sizeof(f) + sizeof(rq))
		return fs_error(fs, m, EINVAL);
	memcpy(&rq, m->payload + sizeof(f), sizeof(rq));
	need = (size_t)mu_client_dma_log_bitmap_size(rq.length, rq.page_size);
	if (need != sizeof(bm))
		return fs_error(fs, m, EINVAL);
	memset(out, 0, sizeof(out));
	if (mode == DLOG_SHORT)
		need -= 8;
	if (mode == DLOG_LONG)
		need += 8;
	if (mode == DLOG_TAIL)
		bm[1] |= 1ull << 36;
	if (mode == DLOG_ECHO)
		rq.iova += 4096;
	if (mode == DLOG_FLAGS)
		f.flags ^= MU_DEVICE_FEATURE_GET | MU_DEVICE_FEATURE_SET;
	len = sizeof(f) + sizeof(rq) + need;
	f.argsz = (uint32_t)len + (mode == DLOG_ARGSZ ? 8 : 0);
	memcpy(out, &f, sizeof(f));
	memcpy(out + sizeof(f), &rq, sizeof(rq));
	memcpy(out + sizeof(f) + sizeof(rq), bm,
	       need < sizeof(bm) ? need : sizeof(bm));
	if (mode != DLOG_FDS)
		return fs_reply(fs, m, out, len, NULL, 0, NULL, 0);
	efd = eventfd(0, EFD_CLOEXEC);
	r = fs_reply(fs, m, out, len, NULL, 0, &efd, 1);
	close(efd);
	return r;
}

static void test_dma_log(void **state)
{
	struct env *e = calloc(1, sizeof(*e));
	const struct mu_dma_logging_range ranges[2] = {
		{0x100000, 0x64000},
		{0x800000, 0x1000},
	};
	struct {
		struct mu_device_feature f;
		struct mu_dma_logging_control ctl;
		struct mu_dma_logging_range r[2];
	} MU_PACKED want_start = {
		{8 + 16 + 32,
		 MU_DEVICE_FEATURE_SET | MU_DEVICE_FEATURE_DMA_LOGGING_START},
		{4096, 2, 0},
		{ranges[0], ranges[1]}};
	struct {
		struct mu_device_feature f;
		struct mu_dma_logging_report rep;
	} MU_PACKED want_rep = {
		{8 + 24 + 16,
		 MU_DEVICE_FEATURE_GET | MU_DEVICE_FEATURE_DMA_LOGGING_REPORT},
		{0x100000, 0x64000, 4096}};
	struct mu_device_feature want_stop = {
		8, MU_DEVICE_FEATURE_SET | MU_DEVICE_FEATURE_DMA_LOGGING_STOP};
	struct mu_device_feature want_probe = {
		8, MU_DEVICE_FEATURE_PROBE | MU_DEVICE_FEATURE_GET |
			   MU_DEVICE_FEATURE_DMA_LOGGING_REPORT};
	uint64_t bm[3] = {0, 0, 0x5a5a}, ps = 0;

	(void)state;
	dlog_started = false;
	env_init(e);
	e->fs.handler = dlog_handler;
	e->fs.opaque = (void *)(uintptr_t)DLOG_OK;
	assert_int_equal(env_connect(e), 0);

	assert_int_equal(mu_client_dma_log_probe(e->c), 1);
	assert_int_equal(e->fs.last_len, 8); /* the last of three probes */
	assert_memory_equal(e->fs.last, &want_probe, 8);

	/* REPORT before START: the server's errno, still connected. */
	assert_int_equal(mu_client_dma_log_report(e->c, 0x100000, 0x64000, 4096,
						  bm, sizeof(bm)),
			 -EINVAL);
	assert_true(mu_client_is_connected(e->c));

	assert_int_equal(mu_client_dma_log_start(e->c, 4096, ranges, 2, &ps),
			 0);
	assert_int_equal(ps, 4096);
	assert_int_equal(e->fs.last_len, sizeof(want_start));
	assert_memory_equal(e->fs.last, &want_start, sizeof(want_start));

	/* 0x64000 bytes = 100 pages: two words, the third untouched. */
	assert_int_equal(mu_client_dma_log_bitmap_size(0x64000, 4096), 16);
	assert_int_equal(mu_client_dma_log_report(e->c, 0x100000, 0x64000, 4096,
						  bm, sizeof(bm)),
			 0);
	assert_int_equal(e->fs.last_len, sizeof(want_rep));
	assert_memory_equal(e->fs.last, &want_rep, sizeof(want_rep));
	assert_true(bm[0] == 0x8000000000000021ull);
	assert_true(bm[1] == 1ull << 35);
	assert_true(bm[2] == 0x5a5a);

	assert_int_equal(mu_client_dma_log_stop(e->c), 0);
	assert_int_equal(e->fs.last_len, 8);
	assert_memory_equal(e->fs.last, &want_stop, 8);

	/* Refused before anything is sent. */
	assert_int_equal(mu_client_dma_log_start(e->c, 0, NULL, 0, NULL),
			 -EINVAL);
	assert_int_equal(mu_client_dma_log_start(e->c, 3000, NULL, 0, NULL),
			 -EINVAL);
	assert_int_equal(mu_client_dma_log_start(e->c, 4096, NULL, 1, NULL),
			 -EINVAL);
	assert_int_equal(
		mu_client_dma_log_report(e->c, 0, 0, 4096, bm, sizeof(bm)),
		-EINVAL);
	assert_int_equal(mu_client_dma_log_report(e->c, UINT64_MAX, 2, 1, bm,
						  sizeof(bm)),
			 -EINVAL);
	assert_int_equal(
		mu_client_dma_log_report(e->c, 0, 0x64000, 4096, bm, 8),
		-ENOSPC);
	assert_int_equal(mu_client_dma_log_report(e->c, 0, 1ull << 62, 1, bm,
						  sizeof(bm)),
			 -ENOSPC);
	assert_int_equal(mu_client_dma_log_bitmap_size(1, 3), 0);
	assert_int_equal(mu_client_dma_log_bitmap_size(64 * 4096 + 1, 4096),
			 16);

	/* nr_ranges 0 (all memory), the server picks its page size. */
	e->fs.opaque = (void *)(uintptr_t)DLOG_PICK;
	assert_int_equal(mu_client_dma_log_start(e->c, 4096, NULL, 0, &ps), 0);
	assert_int_equal(ps, 8192);
	assert_int_equal(e->fs.last_len, 24);
	e->fs.opaque = (void *)(uintptr_t)DLOG_HDR_ONLY;
	assert_int_equal(mu_client_dma_log_start(e->c, 4096, ranges, 1, &ps),
			 0);
	assert_int_equal(ps, 4096);
	assert_true(mu_client_is_connected(e->c));
	env_fini(e);

	/* A server without DMA logging (ENOTTY), or the fake's default
	 * device (ENOTSUP): not supported, and the connection stays. */
	env_init(e);
	e->fs.handler = dlog_handler;
	e->fs.opaque = (void *)(uintptr_t)DLOG_NONE;
	assert_int_equal(env_connect(e), 0);
	assert_int_equal(mu_client_dma_log_probe(e->c), 0);
	assert_int_equal(mu_client_dma_log_stop(e->c), -ENOTTY);
	assert_true(mu_client_is_connected(e->c));
	env_fini(e);
	env_init(e);
	assert_int_equal(env_connect(e), 0);
	assert_int_equal(mu_client_dma_log_probe(e->c), 0);
	assert_true(mu_client_is_connected(e->c));
	env_down(e);
}

static void test_dma_log_hostile(void **state)
{
	static const struct {
		enum dlog_mode mode;
		int err;
	} lies[] = {
		{DLOG_SHORT, -EBADMSG}, {DLOG_LONG, -EBADMSG},
		{DLOG_FLAGS, -EBADMSG}, {DLOG_FDS, -EPROTO},
		{DLOG_TAIL, -EBADMSG},	{DLOG_ECHO, -EBADMSG},
		{DLOG_ARGSZ, -EBADMSG}, {DLOG_START_ECHO, -EBADMSG},
	};
	const struct mu_dma_logging_range range = {0x100000, 0x64000};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(lies) / sizeof(lies[0]); i++) {
		struct env *e = calloc(1, sizeof(*e));
		uint64_t bm[2];
		int got;

		dlog_started = false;
		env_init(e);
		e->fs.handler = dlog_handler;
		e->fs.opaque = (void *)(uintptr_t)lies[i].mode;
		assert_int_equal(env_connect(e), 0);
		got = mu_client_dma_log_start(e->c, 4096, &range, 1, NULL);
		if (lies[i].mode != DLOG_START_ECHO) {
			assert_int_equal(got, 0);
			got = mu_client_dma_log_report(e->c, 0x100000, 0x64000,
						       4096, bm, sizeof(bm));
		}
		if (got != lies[i].err)
			fail_msg("lie %d: got %d (%s) want %d",
				 (int)lies[i].mode, got, strerror(-got),
				 lies[i].err);
		assert_false(mu_client_is_connected(e->c));
		assert_int_equal(mu_client_dma_log_stop(e->c), -ENOTCONN);
		env_down(e);
	}
}

/* A DMA command arriving while nobody waits is served by process(). */
static void test_process(void **state)
{
	struct env *e = env_up();
	uint8_t *buf = aligned_alloc(4096, 4096);
	struct mu_hdr h = {.msg_id = 9, .cmd = MU_CMD_DMA_READ};
	struct mu_dma_access a = {0x10000, 8};
	struct iovec iov = {&a, sizeof(a)};
	struct mu_msg m;

	(void)state;
	memset(buf, 0x3c, 4096);
	assert_int_equal(mu_client_dma_map_buffer(e->c, 0x10000, buf, 4096,
						  MU_DMA_MAP_FLAG_READ),
			 0);
	assert_int_equal(mu_client_process(e->c), 0);
	pthread_mutex_lock(&e->fs.lock);
	assert_int_equal(mu_chan_send(&e->fs.twin, &h, &iov, 1, NULL, 0), 0);
	pthread_mutex_unlock(&e->fs.lock);
	usleep(10000);
	assert_int_equal(mu_client_process(e->c), 1);
	assert_int_equal(mu_chan_recv(&e->fs.twin, &m, 0), 1);
	assert_int_equal(m.len, 24);
	assert_int_equal(m.payload[16], 0x3c);
	env_down(e);
	free(buf);
}

/* A server that sends a DMA request in the same write as a reply: the
 * request is already in the client's buffer when the call returns, so
 * the poll fd stays quiet. The client must serve it before returning. */
static int reply_plus_dma(struct fake_server *fs, struct mu_msg *m)
{
	struct mu_device_info di = {16, MU_DEVICE_FLAGS_PCI, 9, 5};
	struct mu_hdr rh = {.msg_id = m->hdr.msg_id,
			    .cmd = m->hdr.cmd,
			    .size = 16 + sizeof(di),
			    .flags = MU_FLAG_TYPE_REPLY};
	struct mu_hdr dh = {.msg_id = 77, .cmd = MU_CMD_DMA_READ, .size = 32};
	struct mu_dma_access a = {0x10000, 8};
	uint8_t both[32 + 32];

	if ((m->hdr.flags & MU_FLAG_TYPE_MASK) == MU_FLAG_TYPE_REPLY &&
	    m->hdr.cmd == MU_CMD_DMA_READ && m->hdr.msg_id == 77) {
		/* The server thread holds fs->lock around handlers. */
		fs->dma_len = m->len < sizeof(fs->dma_data) ? m->len : 0;
		memcpy(fs->dma_data, m->payload, fs->dma_len);
		return 0;
	}
	if (m->hdr.cmd != MU_CMD_DEVICE_GET_INFO)
		return fs_default(fs, m);
	memcpy(both, &rh, 16);
	memcpy(both + 16, &di, 16);
	memcpy(both + 32, &dh, 16);
	memcpy(both + 48, &a, 16);
	return fs_raw(fs, both, sizeof(both), NULL, 0);
}

static void test_dma_request_behind_reply(void **state)
{
	uint8_t *buf = aligned_alloc(4096, 4096);
	struct mu_device_info di;
	struct env e;
	size_t got = 0;
	int i;

	(void)state;
	env_init(&e);
	e.fs.twin_mode = FS_TWIN_NONE;
	e.fs.handler = reply_plus_dma;
	assert_int_equal(env_connect(&e), 0);
	memset(buf, 0x5a, 4096);
	assert_int_equal(mu_client_dma_map_buffer(e.c, 0x10000, buf, 4096,
						  MU_DMA_MAP_FLAG_READ),
			 0);
	assert_int_equal(mu_client_device_info(e.c, &di), 0);
	/* Answered by the call itself, without mu_client_process(). */
	for (i = 0; i < 2000 && !got; i++) {
		pthread_mutex_lock(&e.fs.lock);
		got = e.fs.dma_len;
		pthread_mutex_unlock(&e.fs.lock);
		if (!got)
			usleep(1000);
	}
	assert_int_equal(got, 24);
	assert_int_equal(e.fs.dma_data[16], 0x5a);
	env_fini(&e);
	free(buf);
}

/* ---- region I/O fds, DMA map limit ------------------------------------ */

static int iofds_handler(struct fake_server *fs, struct mu_msg *m)
{
	struct mu_region_io_fds_request req;
	struct mu_region_io_fds_reply rep;
	struct mu_sub_region_ioeventfd s[3];
	int efd[2], r;
	unsigned i;

	if (m->hdr.cmd != MU_CMD_DEVICE_GET_REGION_IO_FDS)
		return fs_default(fs, m);
	memcpy(&req, m->payload, sizeof(req));
	rep = (struct mu_region_io_fds_reply){16 + sizeof(s), 0, req.index, 3};
	if (req.argsz < rep.argsz)
		return fs_reply(fs, m, &rep, sizeof(rep), NULL, 0, NULL, 0);
	memset(s, 0, sizeof(s));
	for (i = 0; i < 3; i++) {
		s[i].offset = i * 8;
		s[i].size = 4;
		s[i].fd_index = i == 2 ? 0 : i; /* entry 2 shares fd 0 */
		s[i].datamatch = i;
	}
	if (fs->opaque)
		s[1].fd_index = 5; /* lie: no such fd */
	efd[0] = eventfd(0, EFD_CLOEXEC);
	efd[1] = eventfd(0, EFD_CLOEXEC);
	r = fs_reply(fs, m, &rep, sizeof(rep), s, sizeof(s), efd, 2);
	close(efd[0]);
	close(efd[1]);
	return r;
}

static void test_io_fds_and_limits(void **state)
{
	struct env *e = calloc(1, sizeof(*e));
	struct mu_sub_region_ioeventfd subs[4];
	uint8_t *buf = aligned_alloc(4096, 4 * 4096);
	int fds[4], i;

	(void)state;
	env_init(e);
	e->fs.handler = iofds_handler;
	e->fs.json = "{\"capabilities\":{\"max_dma_maps\":2,"
		     "\"max_msg_fds\":4}}";
	e->fs.twin_mode = FS_TWIN_NONE;
	assert_int_equal(env_connect(e), 0);
	/* Too little room: the count comes back, nothing filled in. */
	assert_int_equal(mu_client_region_io_fds(e->c, 0, subs, fds, 1), 3);
	assert_int_equal(mu_client_region_io_fds(e->c, 0, subs, fds, 4), 3);
	assert_int_equal(subs[2].datamatch, 2);
	for (i = 0; i < 3; i++) {
		assert_true(fds[i] >= 0);
		close(fds[i]);
	}
	assert_int_equal(fds[0] != fds[2], 1); /* shared fd duplicated */

	assert_int_equal(mu_client_dma_map_buffer(e->c, 0, buf, 4096,
						  MU_DMA_MAP_FLAG_READ),
			 0);
	assert_int_equal(mu_client_dma_map_buffer(e->c, 4096, buf + 4096, 4096,
						  MU_DMA_MAP_FLAG_READ),
			 0);
	assert_int_equal(mu_client_dma_map_buffer(e->c, 8192, buf + 8192, 4096,
						  MU_DMA_MAP_FLAG_READ),
			 -ENOSPC);
	assert_int_equal(e->fs.n_map, 2);

	/* A lying fd_index is refused and closes the connection. */
	e->fs.opaque = (void *)1;
	assert_int_equal(mu_client_region_io_fds(e->c, 0, subs, fds, 4),
			 -EBADMSG);
	assert_false(mu_client_is_connected(e->c));
	env_down(e);
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_connect_basic),
		cmocka_unit_test(test_connect_path),
		cmocka_unit_test(test_negotiation),
		cmocka_unit_test(test_region_split),
		cmocka_unit_test(test_posted_multi),
		cmocka_unit_test(test_posted_plain),
		cmocka_unit_test(test_region_info),
		cmocka_unit_test(test_region_info_hostile),
		cmocka_unit_test(test_dma_buffer_twin),
		cmocka_unit_test(test_dma_buffer_main),
		cmocka_unit_test(test_dma_fd),
		cmocka_unit_test(test_irq_batches),
		cmocka_unit_test(test_hostile_replies),
		cmocka_unit_test(test_timeout),
		cmocka_unit_test(test_concurrent),
		cmocka_unit_test(test_server_death),
		cmocka_unit_test(test_migration_raw),
		cmocka_unit_test(test_mig_data_interop),
		cmocka_unit_test(test_mig_data_lies),
		cmocka_unit_test(test_dma_log),
		cmocka_unit_test(test_dma_log_hostile),
		cmocka_unit_test(test_process),
		cmocka_unit_test(test_dma_request_behind_reply),
		cmocka_unit_test(test_dma_unmap_refused),
		cmocka_unit_test(test_io_fds_and_limits),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
