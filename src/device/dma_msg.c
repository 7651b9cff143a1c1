/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Message DMA: DMA_READ/DMA_WRITE to the client for maps without an fd,
 * in chunks of at most the client's max_data_xfer_size.
 *
 * With a twin socket a request and its reply travel there, under
 * twin_lock, from any thread. Without one they share the main socket
 * (dma_wait.c): from the serving thread, which goes on serving while it
 * waits, or from any other thread, whose reply the serving thread routes.
 *
 * Layout (docs/protocol.md 9a): the spec's {u64 addr, u64 count, data at
 * 16}, except for QEMU's native client, which proposes version 0.0 in
 * every release and whose releases differ: 10.1 declared {u64 addr, u32
 * count, data at 12} in an unpacked struct (4 bytes of padding at the
 * end), 11.1 reads a u64 count with data at 16. Guessing wrong corrupts
 * guest memory, so before the first transfer a 0.0 client is asked: a
 * DMA_WRITE whose u64 count is 1 << 32 with no data. A client that reads
 * a u32 count sees 0 and writes nothing (success); one that reads a u64
 * count refuses it with E2BIG. Any other answer fits neither, and message
 * DMA is refused with EPROTO and a log line that says why.
 *
 * QEMU's client also can't send a message larger than its socket takes at
 * once (it drops the rest of a partial write), so a 0.0 client is asked
 * for at most MU_QEMU_DMA_READ_MAX per DMA_READ.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "dev-internal.h"

#define PROBE_COUNT (1ull << 32)

static bool narrow(const struct mu_dev *dev)
{
	return dev->dma_layout == MU_DMA_NARROW;
}

void mu_dma_msg_attach(struct mu_dev *dev, uint16_t minor)
{
	pthread_mutex_lock(&dev->wait_lock);
	dev->dma_layout = minor == 0 ? MU_DMA_UNPROBED : MU_DMA_SPEC;
	dev->dma_read_chunk = minor == 0 ? MU_QEMU_DMA_READ_MAX : SIZE_MAX;
	dev->waits_open = true;
	pthread_mutex_unlock(&dev->wait_lock);
}

/* Check a reply and copy read data out (wait_lock held, or twin_lock:
 * the layout is settled before any transfer). */
int mu_dma_take_reply(const struct mu_dev *dev, const struct mu_msg *m,
		      uint16_t cmd, void *buf, size_t len)
{
	size_t at = narrow(dev) ? sizeof(struct mu_dma_access32)
				: sizeof(struct mu_dma_access);
	int r = mu_check_reply(m, cmd, 0);

	if (r < 0)
		return r;
	if (cmd == MU_CMD_DMA_WRITE)
		return (m->len == 0 || m->len == 12 || m->len == 16) ? 0
								     : -EBADMSG;
	/* QEMU 10.1's reply carries its struct padding: 16 + len with data
	 * at 12 (12 + len from a 32-bit host). */
	if (m->len != sizeof(struct mu_dma_access) + len &&
	    !(narrow(dev) && m->len == at + len))
		return -EBADMSG;
	memcpy(buf, m->payload + at, len);
	return 0;
}

void mu_dma_complete(const struct mu_dev *dev, struct mu_dma_wait *w,
		     const struct mu_msg *m)
{
	w->result = w->probe
			    ? mu_check_reply(m, w->cmd, 0)
			    : mu_dma_take_reply(dev, m, w->cmd, w->buf, w->len);
}

/* ---- the twin socket ----------------------------------------------------- */

static bool is_reply_to(const struct mu_msg *m, uint16_t id)
{
	return (m->hdr.flags & MU_FLAG_TYPE_MASK) == MU_FLAG_TYPE_REPLY &&
	       m->hdr.msg_id == id;
}

/* twin_lock held. Commands don't travel this way: refused. */
static int twin_wait(struct mu_dev *dev, struct mu_dma_wait *w)
{
	int64_t deadline = mu_now_ms() + MU_DMA_TIMEOUT_MS;
	struct mu_chan *c = &dev->twin;
	struct mu_msg m;
	int r;

	for (;;) {
		if (mu_now_ms() > deadline) {
			mu_log(dev, MU_LOG_WARN,
			       "no reply to %s on the twin socket in %d ms",
			       mu_cmd_name(w->cmd), MU_DMA_TIMEOUT_MS);
			return -ETIMEDOUT;
		}
		r = mu_chan_recv(c, &m, 0);
		if (r == 1 && is_reply_to(&m, w->id)) {
			mu_dma_complete(dev, w, &m);
			mu_msg_close_fds(&m);
			return 0;
		}
		if (r == 1) {
			mu_msg_close_fds(&m);
			if ((m.hdr.flags & MU_FLAG_TYPE_MASK) ==
				    MU_FLAG_TYPE_COMMAND &&
			    !(m.hdr.flags & MU_FLAG_NO_REPLY))
				mu_chan_send_error(c, &m.hdr, EINVAL);
			else
				mu_log(dev, MU_LOG_WARN,
				       "stray message on the twin socket");
		} else if (mu_chan_refused(r)) {
			mu_log(dev, MU_LOG_WARN, "bad message on twin socket");
		} else if (r != -EAGAIN) {
			return -ECONNRESET;
		}
	}
}

static int twin_xfer(struct mu_dev *dev, struct mu_dma_wait *w,
		     struct mu_hdr *h, const struct iovec *iov, int iovcnt)
{
	int r;

	pthread_mutex_lock(&dev->twin_lock);
	if (!dev->has_twin) {
		pthread_mutex_unlock(&dev->twin_lock);
		return -ENOTCONN;
	}
	w->id = (uint16_t)(atomic_fetch_add(&dev->dma_msg_id, 1) + 1);
	h->msg_id = w->id;
	r = mu_chan_send(&dev->twin, h, iov, iovcnt, NULL, 0);
	if (r == 0)
		r = twin_wait(dev, w);
	pthread_mutex_unlock(&dev->twin_lock);
	if (r < 0)
		mu_conn_broken(dev);
	return r;
}

/* ---- one request, either socket ----------------------------------------- */

/* 0 with the client's verdict in w->result, or our own -errno. */
static int exchange(struct mu_dev *dev, struct mu_dma_wait *w,
		    const void *fixed, size_t fixed_len, void *data,
		    size_t data_len)
{
	static const uint8_t pad[4];
	struct mu_hdr h = {.cmd = w->cmd, .flags = MU_FLAG_TYPE_COMMAND};
	struct iovec iov[3] = {
		{(void *)fixed, fixed_len},
		{data, data_len},
		{(void *)pad, sizeof(pad)},
	};
	/* QEMU 10.1 wants its struct's padding after DMA_WRITE data. */
	int n = data_len == 0 ? 1 : (fixed_len == 12 ? 3 : 2);

	if (dev->has_twin)
		return twin_xfer(dev, w, &h, iov, n);
	return mu_dma_wait_xfer(dev, w, &h, iov, n);
}

static int xfer_one(struct mu_dev *dev, uint64_t iova, void *buf, size_t len,
		    bool is_write)
{
	struct mu_dma_wait w = {.cmd = is_write ? MU_CMD_DMA_WRITE
						: MU_CMD_DMA_READ,
				.buf = buf,
				.len = len};
	struct mu_dma_access a = {iova, len};
	size_t fixed = narrow(dev) && is_write ? sizeof(struct mu_dma_access32)
					       : sizeof(a);
	int r;

	/* A DMA_READ request is the same 16 bytes in both layouts: a u32
	 * count followed by zero padding is a u64 count. */
	r = exchange(dev, &w, &a, fixed, is_write ? buf : NULL,
		     is_write ? len : 0);
	return r < 0 ? r : w.result;
}

/* ---- the layout question (a client that proposed 0.0) ------------------- */

/* wait_lock held */
static bool layout_settled(void *p)
{
	return ((struct mu_dev *)p)->dma_layout != MU_DMA_PROBING;
}

static enum mu_dma_layout verdict(struct mu_dev *dev, int answer)
{
	if (answer == 0) {
		mu_log(dev, MU_LOG_INFO,
		       "client reads a u32 DMA count: DMA data at offset 12 "
		       "(QEMU 10.x layout)");
		return MU_DMA_NARROW;
	}
	if (answer == -E2BIG) {
		mu_log(dev, MU_LOG_INFO,
		       "client reads a u64 DMA count: DMA data at offset 16 "
		       "(the spec's layout, QEMU 11.x)");
		return MU_DMA_SPEC;
	}
	mu_log(dev, MU_LOG_ERR,
	       "client proposed version 0.0 but answered the DMA layout probe "
	       "with %s: neither QEMU layout fits, so where it expects DMA "
	       "data can't be told; message DMA is refused (EPROTO)",
	       strerror(-answer));
	return MU_DMA_UNTELLABLE;
}

static int probe(struct mu_dev *dev, uint64_t iova)
{
	struct mu_dma_wait w = {.cmd = MU_CMD_DMA_WRITE, .probe = true};
	struct mu_dma_access a = {iova, PROBE_COUNT};
	enum mu_dma_layout l = MU_DMA_UNPROBED;
	int r;

	r = exchange(dev, &w, &a, sizeof(a), NULL, 0);
	if (r == 0 && w.result != -ECONNRESET)
		l = verdict(dev, w.result);
	pthread_mutex_lock(&dev->wait_lock);
	dev->dma_layout = l;
	pthread_cond_broadcast(&dev->wait_cond);
	pthread_mutex_unlock(&dev->wait_lock);
	return r < 0 ? r : (l == MU_DMA_UNPROBED ? w.result : 0);
}

/* 0 once the layout is known and usable. */
static int settle_layout(struct mu_dev *dev, uint64_t iova)
{
	enum mu_dma_layout l;
	int r = 0;

	pthread_mutex_lock(&dev->wait_lock);
	l = dev->dma_layout;
	if (!dev->waits_open && !dev->has_twin) {
		pthread_mutex_unlock(&dev->wait_lock);
		return -ENOTCONN;
	}
	if (l == MU_DMA_UNPROBED)
		dev->dma_layout = MU_DMA_PROBING;
	pthread_mutex_unlock(&dev->wait_lock);
	if (l == MU_DMA_UNPROBED) {
		r = probe(dev, iova);
		if (r < 0)
			return r;
	} else if (l == MU_DMA_PROBING) {
		/* Another thread asked: wait for the answer. */
		r = mu_dma_wait_until(dev, layout_settled, dev,
				      mu_now_ms() + MU_DMA_TIMEOUT_MS);
		if (r < 0)
			return r;
	}
	pthread_mutex_lock(&dev->wait_lock);
	l = dev->dma_layout;
	pthread_mutex_unlock(&dev->wait_lock);
	if (l == MU_DMA_SPEC || l == MU_DMA_NARROW)
		return 0;
	return l == MU_DMA_UNTELLABLE ? -EPROTO : -EAGAIN;
}

int mu_dma_msg_xfer(struct mu_dev *dev, uint64_t iova, void *buf, size_t len,
		    bool is_write)
{
	size_t chunk = dev->peer.max_data_xfer_size;
	size_t n;
	int r;

	r = settle_layout(dev, iova);
	if (r < 0)
		return r;
	if (chunk > dev->lim.max_data_xfer_size)
		chunk = dev->lim.max_data_xfer_size;
	if (!is_write && chunk > dev->dma_read_chunk)
		chunk = dev->dma_read_chunk;
	while (len) {
		n = len < chunk ? len : chunk;
		r = xfer_one(dev, iova, buf, n, is_write);
		if (r < 0)
			return r;
		iova += n;
		buf = (uint8_t *)buf + n;
		len -= n;
	}
	return 0;
}
