/* SPDX-License-Identifier: BSD-3-Clause */
/* The fake server for the client tests; see fake-server.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fake-server.h"

#define BAR1_SIZE 0x4000u

void fs_init(struct fake_server *fs)
{
	memset(fs, 0, sizeof(*fs));
	fs->major = 0;
	fs->minor = 2;
	fs->max_msg_fds = 16;
	fs->max_data_xfer_size = 1u << 20;
	fs->write_multiple = true;
	fs->twin_mode = FS_TWIN_OK;
	fs->client_fd = -1;
	fs->bar1_fd = -1;
	fs->twin.fd = -1;
	pthread_mutex_init(&fs->lock, NULL);
}

int fs_reply(struct fake_server *fs, struct mu_msg *m, const void *p1,
	     size_t l1, const void *p2, size_t l2, const int *fds,
	     unsigned nfds)
{
	struct mu_hdr h = {.msg_id = m->hdr.msg_id,
			   .cmd = m->hdr.cmd,
			   .flags = MU_FLAG_TYPE_REPLY};
	struct iovec iov[2] = {{(void *)p1, l1}, {(void *)p2, l2}};

	if (m->hdr.flags & MU_FLAG_NO_REPLY)
		return 0;
	return mu_chan_send(&fs->ch, &h, iov, 2, fds, nfds);
}

int fs_error(struct fake_server *fs, struct mu_msg *m, int err)
{
	if (m->hdr.flags & MU_FLAG_NO_REPLY)
		return 0;
	return mu_chan_send_error(&fs->ch, &m->hdr, err);
}

int fs_raw(struct fake_server *fs, const void *buf, size_t len, const int *fds,
	   unsigned nfds)
{
	struct iovec iov = {(void *)buf, len};

	return mu_sendmsg_all(fs->ch.fd, &iov, 1, fds, nfds);
}

/* Region 1: mappable, with a sparse cap (2 areas) and a type cap. */
static int region_info(struct fake_server *fs, struct mu_msg *m)
{
	struct mu_region_info req, ri = {0};
	struct {
		struct mu_region_info ri;
		struct fs_sparse_hdr sp;
		struct mu_sparse_mmap_area a[2];
		struct mu_region_info_cap_type ty;
	} MU_PACKED r1;

	memcpy(&req, m->payload, sizeof(req));
	ri.argsz = sizeof(ri);
	ri.index = req.index;
	if (req.index >= FS_NUM_REGIONS)
		return fs_error(fs, m, EINVAL);
	switch (req.index) {
	case 0:
		ri.flags = MU_REGION_INFO_FLAG_READ | MU_REGION_INFO_FLAG_WRITE;
		ri.size = FS_BAR0_SIZE;
		break;
	case 1:
		memset(&r1, 0, sizeof(r1));
		r1.ri.argsz = sizeof(r1);
		r1.ri.index = 1;
		r1.ri.flags =
			MU_REGION_INFO_FLAG_READ | MU_REGION_INFO_FLAG_WRITE |
			MU_REGION_INFO_FLAG_MMAP | MU_REGION_INFO_FLAG_CAPS;
		r1.ri.size = BAR1_SIZE;
		r1.ri.cap_offset = offsetof(__typeof__(r1), sp);
		r1.sp.header.id = MU_REGION_INFO_CAP_SPARSE_MMAP;
		r1.sp.header.version = 1;
		r1.sp.header.next = offsetof(__typeof__(r1), ty);
		r1.sp.nr_areas = 2;
		r1.a[0] = (struct mu_sparse_mmap_area){0x1000, 0x1000};
		r1.a[1] = (struct mu_sparse_mmap_area){0x3000, 0x1000};
		r1.ty.header.id = MU_REGION_INFO_CAP_TYPE;
		r1.ty.header.version = 1;
		r1.ty.type = 0x1234;
		r1.ty.subtype = 7;
		if (req.argsz < sizeof(r1)) {
			ri = r1.ri;
			return fs_reply(fs, m, &ri, sizeof(ri), NULL, 0, NULL,
					0);
		}
		return fs_reply(fs, m, &r1, sizeof(r1), NULL, 0, &fs->bar1_fd,
				1);
	case MU_PCI_CONFIG_REGION_INDEX:
		ri.flags = MU_REGION_INFO_FLAG_READ | MU_REGION_INFO_FLAG_WRITE;
		ri.size = 256;
		break;
	default:
		break;
	}
	return fs_reply(fs, m, &ri, sizeof(ri), NULL, 0, NULL, 0);
}

static int feature(struct fake_server *fs, struct mu_msg *m)
{
	struct mu_device_feature f;
	uint64_t data = 0;

	memcpy(&f, m->payload, sizeof(f));
	switch (f.flags & MU_DEVICE_FEATURE_MASK) {
	case MU_DEVICE_FEATURE_MIGRATION:
		data = MU_MIGRATION_STOP_COPY;
		break;
	case MU_DEVICE_FEATURE_MIG_DEVICE_STATE:
		if (f.flags & MU_DEVICE_FEATURE_SET) {
			memcpy(&fs->mig_state, m->payload + 8, 4);
			return fs_reply(fs, m, m->payload, m->len, NULL, 0,
					NULL, 0);
		}
		data = fs->mig_state;
		break;
	default:
		return fs_error(fs, m, ENOTSUP);
	}
	f.argsz = 16;
	return fs_reply(fs, m, &f, sizeof(f), &data, 8, NULL, 0);
}

int fs_default(struct fake_server *fs, struct mu_msg *m)
{
	struct mu_limits lim = {fs->max_data_xfer_size, fs->max_msg_fds};
	struct mu_region_access a;
	int r = mu_check_command(m, &lim);

	if (r < 0)
		return fs_error(fs, m, -r);
	switch (m->hdr.cmd) {
	case MU_CMD_DEVICE_GET_INFO: {
		struct mu_device_info d = {
			16, MU_DEVICE_FLAGS_RESET | MU_DEVICE_FLAGS_PCI,
			FS_NUM_REGIONS, 5};

		fs->n_info++;
		return fs_reply(fs, m, &d, sizeof(d), NULL, 0, NULL, 0);
	}
	case MU_CMD_DEVICE_GET_REGION_INFO:
		return region_info(fs, m);
	case MU_CMD_DEVICE_GET_IRQ_INFO: {
		struct mu_irq_info i;

		memcpy(&i, m->payload, sizeof(i));
		if (i.index >= 5)
			return fs_error(fs, m, EINVAL);
		i.argsz = 16;
		i.flags = MU_IRQ_INFO_EVENTFD | MU_IRQ_INFO_MASKABLE;
		i.count = i.index == MU_PCI_MSIX_IRQ_INDEX ? 16 : 1;
		return fs_reply(fs, m, &i, sizeof(i), NULL, 0, NULL, 0);
	}
	case MU_CMD_DEVICE_SET_IRQS: {
		struct mu_irq_set s;

		memcpy(&s, m->payload, sizeof(s));
		if (fs->n_set_irqs < 64) {
			fs->irq_starts[fs->n_set_irqs] = s.start;
			fs->irq_counts[fs->n_set_irqs] = s.count;
			fs->irq_nfds[fs->n_set_irqs] = m->nfds;
		}
		fs->n_set_irqs++;
		return fs_reply(fs, m, NULL, 0, NULL, 0, NULL, 0);
	}
	case MU_CMD_REGION_READ:
		memcpy(&a, m->payload, sizeof(a));
		fs->n_read++;
		if (a.count > fs->max_count_seen)
			fs->max_count_seen = a.count;
		if (a.region != 0 ||
		    !mu_range_ok(a.offset, a.count, FS_BAR0_SIZE))
			return fs_error(fs, m, EINVAL);
		return fs_reply(fs, m, &a, sizeof(a), fs->bar0 + a.offset,
				a.count, NULL, 0);
	case MU_CMD_REGION_WRITE:
		memcpy(&a, m->payload, sizeof(a));
		if (m->hdr.flags & MU_FLAG_NO_REPLY)
			fs->n_write_noreply++;
		else
			fs->n_write++;
		if (a.count > fs->max_count_seen)
			fs->max_count_seen = a.count;
		if (a.region != 0 ||
		    !mu_range_ok(a.offset, a.count, FS_BAR0_SIZE))
			return fs_error(fs, m, EINVAL);
		memcpy(fs->bar0 + a.offset, m->payload + sizeof(a), a.count);
		return fs_reply(fs, m, &a, sizeof(a), NULL, 0, NULL, 0);
	case MU_CMD_REGION_WRITE_MULTI: {
		struct mu_write_multi w;
		uint64_t i;

		memcpy(&w, m->payload, sizeof(w));
		fs->n_multi++;
		for (i = 0; i < w.wr_cnt; i++) {
			struct mu_write_multi_entry e;

			memcpy(&e, m->payload + 8 + i * sizeof(e), sizeof(e));
			if (e.region == 0 &&
			    mu_range_ok(e.offset, e.count, FS_BAR0_SIZE))
				memcpy(fs->bar0 + e.offset, e.data, e.count);
			fs->n_multi_entries++;
		}
		return fs_reply(fs, m, &w, sizeof(w), NULL, 0, NULL, 0);
	}
	case MU_CMD_DMA_MAP:
		fs->n_map++;
		return fs_reply(fs, m, NULL, 0, NULL, 0, NULL, 0);
	case MU_CMD_DMA_UNMAP:
		fs->n_unmap++;
		return fs_reply(fs, m, m->payload, m->len, NULL, 0, NULL, 0);
	case MU_CMD_DEVICE_RESET:
		fs->n_reset++;
		return fs_reply(fs, m, NULL, 0, NULL, 0, NULL, 0);
	case MU_CMD_DEVICE_FEATURE:
		return feature(fs, m);
	default:
		return fs_error(fs, m, ENOSYS);
	}
}

int fs_dma(struct fake_server *fs, bool write, bool count32, uint64_t addr,
	   const void *data, uint32_t count)
{
	struct mu_chan *ch = fs->has_twin ? &fs->twin : &fs->ch;
	struct mu_hdr h = {.msg_id = 0x4242,
			   .cmd = write ? MU_CMD_DMA_WRITE : MU_CMD_DMA_READ};
	struct mu_dma_access a = {addr, count};
	struct iovec iov[2] = {
		{&a, count32 ? sizeof(struct mu_dma_access32) : sizeof(a)},
		{(void *)data, write ? count : 0},
	};
	struct mu_msg m;
	int r;

	r = mu_chan_send(ch, &h, iov, 2, NULL, 0);
	if (r < 0)
		return r;
	r = mu_chan_recv(ch, &m, 0);
	if (r <= 0)
		return r < 0 ? r : -ECONNRESET;
	if (m.hdr.msg_id != h.msg_id || m.hdr.cmd != h.cmd ||
	    (m.hdr.flags & MU_FLAG_TYPE_MASK) != MU_FLAG_TYPE_REPLY)
		return -EPROTO;
	fs->dma_err = (m.hdr.flags & MU_FLAG_ERROR) ? (int)m.hdr.error : 0;
	fs->dma_len =
		m.len < sizeof(fs->dma_data) ? m.len : sizeof(fs->dma_data);
	memcpy(fs->dma_data, m.payload, fs->dma_len);
	mu_msg_close_fds(&m);
	return 0;
}

static int version(struct fake_server *fs)
{
	struct mu_msg m;
	struct mu_caps caps;
	struct mu_version v = {fs->major, fs->minor};
	char json[1024];
	int fds[8], nfds = 0, tw[2], i, r;
	size_t jlen;

	r = mu_chan_recv(&fs->ch, &m, 0);
	if (r <= 0 || m.hdr.cmd != MU_CMD_VERSION)
		return -EPROTO;
	mu_msg_close_fds(&m);
	if (fs->close_at_version)
		return -1;
	if (fs->version_errno)
		return fs_error(fs, &m, fs->version_errno);
	mu_caps_defaults(&caps);
	caps.max_msg_fds = fs->max_msg_fds;
	caps.max_data_xfer_size = fs->max_data_xfer_size;
	caps.write_multiple = fs->write_multiple;
	caps.twin_socket = fs->twin_mode != FS_TWIN_NONE;
	caps.twin_fd_index = fs->twin_mode == FS_TWIN_NO_INDEX ? -1 : 0;
	if (fs->twin_mode == FS_TWIN_OK) {
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, tw) < 0)
			return -errno;
		mu_chan_init(&fs->twin, tw[1], fs->max_data_xfer_size + 4096,
			     0);
		fs->has_twin = true;
		fds[nfds++] = tw[0];
	} else if (fs->twin_mode == FS_TWIN_BAD_FD) {
		if (pipe(tw) < 0)
			return -errno;
		close(tw[1]);
		fds[nfds++] = tw[0];
	}
	for (i = 0; i < fs->version_extra_fds && nfds < 8; i++)
		fds[nfds++] = eventfd(0, EFD_CLOEXEC);
	if (fs->json) {
		jlen = strlen(fs->json) + 1;
		memcpy(json, fs->json, jlen);
	} else {
		r = mu_caps_format(&caps, json, sizeof(json));
		if (r < 0)
			return r;
		jlen = (size_t)r;
	}
	r = fs_reply(fs, &m, &v, sizeof(v), json, jlen, fds, (unsigned)nfds);
	/* The peer has its own copies now. */
	for (i = 0; i < nfds; i++)
		close(fds[i]);
	return r;
}

static void *serve(void *arg)
{
	struct fake_server *fs = arg;
	struct mu_msg m;
	int r;

	if (version(fs) < 0)
		goto out;
	for (;;) {
		r = mu_chan_recv(&fs->ch, &m, 0);
		if (r <= 0)
			break;
		pthread_mutex_lock(&fs->lock);
		fs->last_cmd = m.hdr.cmd;
		fs->last_len = m.len;
		fs->last_nfds = m.nfds;
		memcpy(fs->last, m.payload,
		       m.len < FS_CAPTURE ? m.len : FS_CAPTURE);
		r = (fs->handler ? fs->handler : fs_default)(fs, &m);
		pthread_mutex_unlock(&fs->lock);
		mu_msg_close_fds(&m);
		if (r < 0)
			break;
	}
out:
	shutdown(fs->ch.fd, SHUT_RDWR);
	if (fs->has_twin)
		shutdown(fs->twin.fd, SHUT_RDWR);
	return NULL;
}

int fs_start(struct fake_server *fs)
{
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	fs->bar1_fd = memfd_create("fs-bar1", MFD_CLOEXEC);
	if (fs->bar1_fd < 0 || ftruncate(fs->bar1_fd, BAR1_SIZE) < 0)
		return -errno;
	mu_chan_init(&fs->ch, sv[1], fs->max_data_xfer_size + 4096,
		     fs->max_msg_fds ? fs->max_msg_fds : 1);
	fs->client_fd = sv[0];
	return pthread_create(&fs->thr, NULL, serve, fs) ? -EAGAIN : 0;
}

void fs_stop(struct fake_server *fs)
{
	pthread_join(fs->thr, NULL);
	mu_chan_fini(&fs->ch);
	if (fs->has_twin)
		mu_chan_fini(&fs->twin);
	if (fs->bar1_fd >= 0)
		close(fs->bar1_fd);
	pthread_mutex_destroy(&fs->lock);
}
