/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Message DMA: DMA_READ/DMA_WRITE to the client for maps without an fd.
 *
 * With a twin socket the request and its reply travel there, under
 * twin_lock, from any thread. Without one they share the main socket:
 * only the serving thread may do that (it is the only reader), and
 * commands that arrive while it waits are copied into a queue and handled
 * afterwards, in order.
 *
 * Layout: the spec's {u64 addr, u64 count, data at 16}. When the client
 * proposed version 0.0 (QEMU's native client) QEMU's unpacked struct
 * {u64 addr, u32 count, data at 12, 4 bytes of padding at the end}: a
 * DMA_READ request is byte-identical either way, but DMA_WRITE data and
 * DMA_READ reply data sit at offset 12 for QEMU. The two reply layouts
 * have the same size, so the negotiated mode decides, not the size. A
 * DMA_WRITE reply may be empty (QEMU), 12 or 16 bytes.
 */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "dev-internal.h"

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int send_req(struct mu_dev *dev, struct mu_chan *c, uint16_t id,
		    uint64_t iova, void *buf, size_t len, bool is_write)
{
	static const uint8_t pad[4];
	struct mu_hdr h = {.msg_id = id, .flags = MU_FLAG_TYPE_COMMAND};
	struct mu_dma_access a = {iova, len};
	bool q = dev->dma32 && is_write;
	struct iovec iov[3] = {
		{&a, q ? sizeof(struct mu_dma_access32) : sizeof(a)},
		{buf, len},
		{(void *)pad, sizeof(pad)},
	};

	h.cmd = is_write ? MU_CMD_DMA_WRITE : MU_CMD_DMA_READ;
	return mu_chan_send(c, &h, iov, is_write ? (q ? 3 : 2) : 1, NULL, 0);
}

/* Check a reply and copy read data out before the next receive. */
static int take_reply(const struct mu_dev *dev, const struct mu_msg *m,
		      uint16_t cmd, void *buf, size_t len)
{
	size_t at = dev->dma32 ? sizeof(struct mu_dma_access32)
			       : sizeof(struct mu_dma_access);
	int r = mu_check_reply(m, cmd, 0);

	if (r < 0)
		return r;
	if (cmd == MU_CMD_DMA_WRITE)
		return (m->len == 0 || m->len == 12 || m->len == 16) ? 0
								     : -EBADMSG;
	/* QEMU's reply carries its struct padding: 16 + len with data at 12. */
	if (m->len != sizeof(struct mu_dma_access) + len &&
	    !(dev->dma32 && m->len == at + len))
		return -EBADMSG;
	memcpy(buf, m->payload + at, len);
	return 0;
}

static bool is_our_reply(const struct mu_msg *m, uint16_t id)
{
	return (m->hdr.flags & MU_FLAG_TYPE_MASK) == MU_FLAG_TYPE_REPLY &&
	       m->hdr.msg_id == id;
}

/* The connection can't go on: the serving thread drops it. A device
 * thread (twin socket) can't touch the connection itself. */
static int lost(struct mu_dev *dev, bool main, int err)
{
	if (main) {
		dev->conn_lost = true;
	} else {
		atomic_store(&dev->twin_lost, true);
		mu_wake(dev);
	}
	return err;
}

/*
 * Wait for reply id on c. main: commands that arrive meanwhile are queued
 * (at most MU_QUEUE_MAX) and handled afterwards. The deadline holds
 * however much else the client sends; a client that misses it, or floods
 * the queue, is dropped.
 */
static int wait_reply(struct mu_dev *dev, struct mu_chan *c, bool main,
		      uint16_t id, uint16_t cmd, void *buf, size_t len)
{
	int64_t deadline = now_ms() + MU_DMA_TIMEOUT_MS;
	struct mu_msg m;
	int r;

	for (;;) {
		if (now_ms() > deadline) {
			mu_log(dev, MU_LOG_WARN, "no DMA reply in %d ms",
			       MU_DMA_TIMEOUT_MS);
			return lost(dev, main, -ETIMEDOUT);
		}
		r = mu_chan_recv(c, &m, 0);
		if (r == 1 && is_our_reply(&m, id)) {
			mu_msg_close_fds(&m);
			return take_reply(dev, &m, cmd, buf, len);
		}
		if (r == 1 &&
		    (m.hdr.flags & MU_FLAG_TYPE_MASK) == MU_FLAG_TYPE_COMMAND) {
			if (!main) {
				/* Commands don't travel this way. */
				mu_msg_close_fds(&m);
				if (!(m.hdr.flags & MU_FLAG_NO_REPLY))
					mu_chan_send_error(c, &m.hdr, EINVAL);
				continue;
			}
			r = mu_queue_msg(dev, &m, 0, NULL);
			if (r < 0) {
				mu_msg_close_fds(&m);
				mu_log(dev, MU_LOG_WARN,
				       "client floods commands while DMA "
				       "waits: %s",
				       strerror(-r));
				return lost(dev, main, -ECONNRESET);
			}
			m.nfds = 0;
		} else if (r == 1) {
			mu_log(dev, MU_LOG_WARN, "stray message on DMA path");
			mu_msg_close_fds(&m);
		} else if (mu_chan_refused(r)) {
			if (!main)
				mu_log(dev, MU_LOG_WARN,
				       "bad message on twin socket");
			else if (mu_queue_msg(dev, &m, r, NULL) < 0)
				return lost(dev, main, -ECONNRESET);
		} else if (r != -EAGAIN) {
			return lost(dev, main, -ECONNRESET);
		}
	}
}

static int xfer_twin(struct mu_dev *dev, uint64_t iova, void *buf, size_t len,
		     bool is_write)
{
	uint16_t id, cmd = is_write ? MU_CMD_DMA_WRITE : MU_CMD_DMA_READ;
	int r;

	pthread_mutex_lock(&dev->twin_lock);
	if (!dev->has_twin) {
		pthread_mutex_unlock(&dev->twin_lock);
		return -ENOTCONN;
	}
	id = ++dev->dma_msg_id;
	r = send_req(dev, &dev->twin, id, iova, buf, len, is_write);
	if (r == 0)
		r = wait_reply(dev, &dev->twin, false, id, cmd, buf, len);
	pthread_mutex_unlock(&dev->twin_lock);
	return r;
}

static int xfer_main(struct mu_dev *dev, uint64_t iova, void *buf, size_t len,
		     bool is_write)
{
	uint16_t id, cmd = is_write ? MU_CMD_DMA_WRITE : MU_CMD_DMA_READ;
	int r;

	if (!mu_on_serving_thread(dev)) {
		mu_log(dev, MU_LOG_WARN,
		       "message DMA without twin socket is "
		       "only possible on the serving thread");
		return -EWOULDBLOCK;
	}
	if (dev->conn_lost)
		return -ECONNRESET;
	/* The command being handled lives in the channel buffer. */
	r = mu_pin_dispatch_buffer(dev);
	if (r < 0)
		return r;
	id = ++dev->dma_msg_id;
	r = send_req(dev, &dev->chan, id, iova, buf, len, is_write);
	if (r < 0) {
		dev->conn_lost = true;
		return r;
	}
	r = wait_reply(dev, &dev->chan, true, id, cmd, buf, len);
	/* Commands queued meanwhile, or read along with our reply, are
	 * invisible to a poller of the connection: make the poll fd fire. */
	if (dev->q_head || mu_chan_has_msg(&dev->chan))
		mu_wake(dev);
	return r;
}

int mu_dma_msg_xfer(struct mu_dev *dev, uint64_t iova, void *buf, size_t len,
		    bool is_write)
{
	size_t chunk = dev->peer.max_data_xfer_size;
	size_t n;
	int r;

	if (dev->conn != MU_CONN_READY)
		return -ENOTCONN;
	if (chunk > dev->lim.max_data_xfer_size)
		chunk = dev->lim.max_data_xfer_size;
	while (len) {
		n = len < chunk ? len : chunk;
		r = dev->has_twin ? xfer_twin(dev, iova, buf, n, is_write)
				  : xfer_main(dev, iova, buf, n, is_write);
		if (r < 0)
			return r;
		iova += n;
		buf = (uint8_t *)buf + n;
		len -= n;
	}
	return 0;
}
