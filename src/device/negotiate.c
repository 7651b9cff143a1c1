/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * VERSION: the first command of every connection. We answer major 0 and
 * minor min(proposed, ours), announce our receive limits, and set up the
 * twin socket when the client asked for it.
 */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dev-internal.h"

#define CAPS_REPLY_MAX 512u

static void set_timeo(int fd, int opt, int ms)
{
	struct timeval tv = {.tv_sec = ms / 1000,
			     .tv_usec = (ms % 1000) * 1000};

	setsockopt(fd, SOL_SOCKET, opt, &tv, sizeof(tv));
}

static int setup_twin(struct mu_dev *dev, struct mu_reply *r)
{
	int sv[2], err;

	err = mu_sock_pair(sv);
	if (err < 0)
		return err;
	/* Replies to DMA_READ carry data up to the client's chunk size. */
	err = mu_chan_init(&dev->twin, sv[0],
			   dev->lim.max_data_xfer_size + MU_MSG_OVERHEAD, 0);
	if (err < 0) {
		close(sv[0]);
		close(sv[1]);
		return err;
	}
	set_timeo(sv[0], SO_RCVTIMEO, MU_IDLE_TICK_MS);
	dev->twin.max_wait_ms = MU_IDLE_TICK_MS;
	/* A client that stops reading the twin must not hold a device
	 * thread (and twin_lock, and so detach) forever. */
	if (dev->lim.send_timeout_ms > 0)
		set_timeo(sv[0], SO_SNDTIMEO, dev->lim.send_timeout_ms);
	dev->has_twin = true;
	r->own_fd = sv[1];
	r->fds = &r->own_fd;
	r->nfds = 1;
	return 0;
}

static size_t max_cmd_msg(const struct mu_dev *dev)
{
	size_t data = dev->lim.max_data_xfer_size;
	size_t multi = sizeof(struct mu_write_multi) +
		       MU_WRITE_MULTI_MAX * sizeof(struct mu_write_multi_entry);

	return (data > multi ? data : multi) + MU_MSG_OVERHEAD;
}

int mu_h_version(struct mu_dev *dev, struct mu_msg *m, struct mu_reply *r)
{
	struct mu_caps peer, ours;
	struct mu_version *v;
	uint16_t major, minor;
	int err, n;

	err = mu_version_parse(m->payload, m->len, &major, &minor, &peer);
	if (err < 0 || major != MU_PROTO_MAJOR) {
		mu_log(dev, MU_LOG_WARN, "VERSION %u.%u refused: %s", major,
		       minor, err < 0 ? "bad capabilities" : "major");
		r->close_conn = true;
		return err < 0 ? -EINVAL : -ENOTSUP;
	}
	v = mu_reply_alloc(r, sizeof(*v) + CAPS_REPLY_MAX);
	if (!v) {
		r->close_conn = true;
		return -ENOMEM;
	}
	mu_caps_defaults(&ours);
	ours.max_msg_fds = dev->lim.max_msg_fds;
	ours.max_data_xfer_size = dev->lim.max_data_xfer_size;
	/* The reply's numbers are a subset of the proposal's: the fewer
	 * windows of the two, and the page sizes both sides know. */
	ours.max_dma_maps = peer.max_dma_maps < dev->lim.max_dma_maps
				    ? peer.max_dma_maps
				    : dev->lim.max_dma_maps;
	ours.pgsizes = MU_PAGE & peer.pgsizes;
	ours.write_multiple = true;
	if (!ours.pgsizes) {
		mu_log(dev, MU_LOG_WARN,
		       "VERSION refused: no common page size (client %#llx)",
		       (unsigned long long)peer.pgsizes);
		r->close_conn = true;
		return -ENOTSUP;
	}
	/* A client that takes no fds gets neither a twin nor region fds. */
	if (peer.twin_socket && dev->lim.twin_socket && peer.max_msg_fds >= 1) {
		err = setup_twin(dev, r);
		if (err < 0) {
			r->close_conn = true;
			return err;
		}
		ours.twin_socket = true;
		ours.twin_fd_index = 0;
	}
	n = mu_caps_format(&ours, (char *)(v + 1), CAPS_REPLY_MAX);
	if (n < 0) {
		r->close_conn = true;
		return n;
	}
	v->major = MU_PROTO_MAJOR;
	v->minor = minor < MU_PROTO_MINOR ? minor : MU_PROTO_MINOR;
	r->iov[0].iov_len = sizeof(*v) + (size_t)n;
	dev->peer = peer;
	dev->max_maps = ours.max_dma_maps;
	mu_conn_set(dev, MU_CONN_READY, "VERSION");
	mu_negotiate_timer(dev, false);
	mu_dma_msg_attach(dev, minor); /* 0.0: QEMU's native client */
	mu_chan_set_limits(&dev->chan, max_cmd_msg(dev), dev->lim.max_msg_fds);
	mu_log(dev, MU_LOG_INFO, "negotiated 0.%u%s", v->minor,
	       dev->has_twin ? " with twin socket" : "");
	if (dev->cb.attach)
		dev->cb.attach(dev->opaque);
	return 0;
}
