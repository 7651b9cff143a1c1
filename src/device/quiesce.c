/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Quiesce: the device stops its DMA before a command that changes what
 * DMA may touch (DMA_MAP/UNMAP, DEVICE_RESET, a migration state change),
 * before a reset a config write asked for, and before the maps go away
 * when the client leaves.
 *
 * One mechanism: ask the device (cb.quiesce); if it answers -EBUSY, park
 * what needs the quiesce - a command, or a reset - and let everything the
 * client sends after it wait behind it, while the socket is still read so
 * that device threads get their DMA replies. mu_dev_quiesce_done() wakes
 * the serving thread, which runs the parked work with the device
 * quiesced. Only detach, with no client left to serve, waits in place.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "dev-internal.h"

MU_EXPORT void mu_dev_quiesce_done(mu_dev_t *dev, int err)
{
	if (!dev)
		return;
	atomic_store(&dev->quiesce_err, err);
	atomic_store(&dev->quiesce_done, true);
	mu_wake(dev);
}

bool mu_quiesce_finished(void *dev)
{
	return atomic_load(&((struct mu_dev *)dev)->quiesce_done);
}

/* Ask the device; 0 quiesced, -EBUSY it will say so later, -errno. */
static int ask(struct mu_dev *dev)
{
	if (!dev->cb.quiesce || dev->qs == MU_QS_QUIESCED)
		return 0;
	atomic_store(&dev->quiesce_done, false);
	return dev->cb.quiesce(dev->opaque);
}

/* Work is parked: everything after it waits until the device is quiet. */
static void park_done(struct mu_dev *dev)
{
	dev->qs = MU_QS_PARKED;
	/* quiesce_done may already have been called from another thread */
	if (atomic_load(&dev->quiesce_done))
		mu_wake(dev);
}

int mu_quiesce_for(struct mu_dev *dev, struct mu_msg *m)
{
	int r = ask(dev);

	if (r != -EBUSY)
		return r;
	r = mu_queue_msg(dev, m, 0, &dev->parked);
	if (r < 0)
		return r;
	m->nfds = 0; /* now owned by the parked copy */
	park_done(dev);
	return 1;
}

void mu_reset_request(struct mu_dev *dev, enum mu_reset_reason why)
{
	dev->reset_due = why;
}

/* The reply r to m, flattened into a parked record that only resets and
 * answers when it runs. */
static struct mu_qmsg *park_reply(const struct mu_msg *m,
				  const struct mu_reply *r)
{
	struct mu_qmsg *q;
	size_t len = 0;
	int i;

	for (i = 0; r && i < r->iovcnt; i++)
		len += r->iov[i].iov_len;
	q = calloc(1, sizeof(*q) + len);
	if (!q)
		return NULL;
	if (m) {
		q->hdr = m->hdr;
	} else {
		q->hdr.cmd = MU_CMD_REGION_WRITE;
		q->hdr.flags = MU_FLAG_TYPE_COMMAND | MU_FLAG_NO_REPLY;
	}
	for (i = 0; r && i < r->iovcnt; i++) {
		memcpy(q->data + q->len, r->iov[i].iov_base, r->iov[i].iov_len);
		q->len += r->iov[i].iov_len;
	}
	return q;
}

int mu_reset_run_due(struct mu_dev *dev, const struct mu_msg *m,
		     const struct mu_reply *r)
{
	enum mu_reset_reason why = dev->reset_due;
	int err;

	dev->reset_due = 0;
	err = ask(dev);
	if (err == -EBUSY) {
		dev->parked = park_reply(m, r);
		if (dev->parked) {
			dev->parked->reset = why;
			park_done(dev);
			return 1;
		}
		/* No memory to park: wait in place rather than lose it. */
		err = mu_serve_wait(dev, mu_quiesce_finished, dev,
				    mu_now_ms() + MU_QUIESCE_TIMEOUT_MS, false);
		if (err == 0) {
			atomic_store(&dev->quiesce_done, false);
			err = atomic_load(&dev->quiesce_err);
		}
	}
	if (err < 0) {
		mu_log(dev, MU_LOG_WARN, "reset (%d) not done: quiesce: %s",
		       why, strerror(-err));
		return 0;
	}
	mu_reset_quiesced(dev, why);
	return 0;
}

/* A parked reset: reset, then send the reply its command left. */
static int run_parked_reset(struct mu_dev *dev, struct mu_qmsg *q, int err)
{
	struct iovec iov = {.iov_base = q->data, .iov_len = q->len};
	struct mu_msg m = {.hdr = q->hdr};
	struct mu_hdr h;

	if (err)
		mu_log(dev, MU_LOG_WARN, "reset (%d) not done: quiesce: %s",
		       q->reset, strerror(-err));
	else
		mu_reset_quiesced(dev, q->reset);
	if ((q->hdr.flags & MU_FLAG_NO_REPLY) || dev->conn != MU_CONN_READY)
		return 0;
	h.msg_id = q->hdr.msg_id;
	h.cmd = q->hdr.cmd;
	h.flags = MU_FLAG_TYPE_REPLY;
	h.error = 0;
	return mu_reply_sent(dev, &m,
			     mu_chan_send(&dev->chan, &h, &iov, 1, NULL, 0));
}

int mu_resume_parked(struct mu_dev *dev)
{
	struct mu_qmsg *q = dev->parked;
	int err;

	if (dev->qs != MU_QS_PARKED || !atomic_load(&dev->quiesce_done))
		return 0; /* inlined check: this runs before every message */
	atomic_store(&dev->quiesce_done, false);
	err = atomic_load(&dev->quiesce_err);
	dev->parked = NULL;
	dev->qs = MU_QS_QUIESCED;
	if (q && q->reset) {
		err = run_parked_reset(dev, q, err);
	} else if (q) {
		if (err)
			q->err = err;
		err = mu_dispatch_qmsg(dev, q);
	}
	dev->qs = MU_QS_RUNNING;
	mu_qmsg_free(q);
	return err < 0 ? err : 1;
}

void mu_quiesce_drop(struct mu_dev *dev)
{
	mu_qmsg_free(dev->parked);
	dev->parked = NULL;
	dev->reset_due = 0;
	dev->qs = MU_QS_RUNNING;
}

int mu_quiesce_sync(struct mu_dev *dev)
{
	int64_t deadline;
	int r = ask(dev);

	if (r != -EBUSY)
		return r;
	deadline = mu_now_ms() + MU_QUIESCE_TIMEOUT_MS;
	while (!atomic_load(&dev->quiesce_done)) {
		int64_t left = deadline - mu_now_ms();

		if (left <= 0)
			return -ETIMEDOUT;
		mu_poll_one(dev->wake_fd, (int)left);
		mu_drain_wake(dev);
	}
	atomic_store(&dev->quiesce_done, false);
	return atomic_load(&dev->quiesce_err);
}
