/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * DMA requests on the main socket and their replies.
 *
 * Only the serving thread reads the main socket, so it is also the one
 * that sees every DMA reply; it hands each to the request waiting for it
 * (mu_dma_route_reply), from wherever it is reading: its loop, a nested
 * wait, a parked quiesce. A request made on the serving thread itself (a
 * handler doing DMA) waits in mu_serve_wait(), which keeps answering the
 * client's other commands meanwhile: QEMU's native client serves our
 * DMA_READ/WRITE from its main loop, which a vCPU blocks while it waits for
 * a register read; not answering that read would deadlock both sides. A
 * request made on any other thread is sent under the channel's send lock
 * and the thread sleeps until its reply is routed, the client goes, or
 * the deadline passes.
 */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "dev-internal.h"

void mu_dma_wait_init(struct mu_dev *dev)
{
	pthread_condattr_t a;

	pthread_mutex_init(&dev->wait_lock, NULL);
	pthread_condattr_init(&a);
	pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
	pthread_cond_init(&dev->wait_cond, &a);
	pthread_condattr_destroy(&a);
}

void mu_dma_wait_fini(struct mu_dev *dev)
{
	pthread_cond_destroy(&dev->wait_cond);
	pthread_mutex_destroy(&dev->wait_lock);
}

/* wait_lock held */
static void unlink_wait(struct mu_dev *dev, struct mu_dma_wait *w)
{
	struct mu_dma_wait **p;

	for (p = &dev->waits; *p; p = &(*p)->next) {
		if (*p == w) {
			*p = w->next;
			return;
		}
	}
}

void mu_conn_broken(struct mu_dev *dev)
{
	atomic_store(&dev->twin_lost, true);
	mu_wake(dev);
}

struct locked_pred {
	struct mu_dev *dev;
	bool (*done)(void *);
	void *arg;
};

static bool check_locked(void *p)
{
	struct locked_pred *lp = p;
	bool r;

	pthread_mutex_lock(&lp->dev->wait_lock);
	r = lp->done(lp->arg);
	pthread_mutex_unlock(&lp->dev->wait_lock);
	return r;
}

int mu_dma_wait_until(struct mu_dev *dev, bool (*done)(void *), void *arg,
		      int64_t deadline)
{
	struct timespec ts = {.tv_sec = deadline / 1000,
			      .tv_nsec = (deadline % 1000) * 1000000};
	struct locked_pred lp = {dev, done, arg};
	int r = 0;

	if (mu_on_serving_thread(dev))
		return mu_serve_wait(dev, check_locked, &lp, deadline, true);
	pthread_mutex_lock(&dev->wait_lock);
	while (!done(arg) && r == 0)
		r = -pthread_cond_timedwait(&dev->wait_cond, &dev->wait_lock,
					    &ts);
	pthread_mutex_unlock(&dev->wait_lock);
	return r == 0 || done(arg) ? 0 : r;
}

static bool wait_done(void *p)
{
	return ((struct mu_dma_wait *)p)->done;
}

/* Returns 0 when the reply came (its verdict in w->result), or a negative
 * errno of our own: the request could not be sent or was not answered. */
int mu_dma_wait_xfer(struct mu_dev *dev, struct mu_dma_wait *w,
		     struct mu_hdr *h, const struct iovec *iov, int iovcnt)
{
	int64_t deadline = mu_now_ms() + MU_DMA_TIMEOUT_MS;
	bool serving = mu_on_serving_thread(dev);
	uint32_t epoch;
	int r;

	if (serving &&
	    (dev->conn == MU_CONN_BROKEN || dev->conn == MU_CONN_DRAINING))
		return -ECONNRESET;
	pthread_mutex_lock(&dev->wait_lock);
	if (!dev->waits_open) {
		pthread_mutex_unlock(&dev->wait_lock);
		return -ENOTCONN;
	}
	w->id = (uint16_t)(atomic_fetch_add(&dev->dma_msg_id, 1) + 1);
	w->done = false;
	w->result = 0;
	w->next = dev->waits;
	dev->waits = w;
	/* Stable here: detach closes the waits before it closes the socket. */
	epoch = dev->chan.epoch;
	pthread_mutex_unlock(&dev->wait_lock);

	h->msg_id = w->id;
	r = mu_chan_send_epoch(&dev->chan, epoch, h, iov, iovcnt);
	if (r < 0) {
		pthread_mutex_lock(&dev->wait_lock);
		if (!w->done)
			unlink_wait(dev, w);
		pthread_mutex_unlock(&dev->wait_lock);
		if (r == -ENOTCONN)
			return r;
		if (serving)
			mu_conn_set(dev, MU_CONN_BROKEN,
				    "DMA request not sent");
		else
			mu_conn_broken(dev);
		return r;
	}
	r = mu_dma_wait_until(dev, wait_done, w, deadline);
	if (r == 0)
		return 0;
	pthread_mutex_lock(&dev->wait_lock);
	if (!w->done)
		unlink_wait(dev, w);
	pthread_mutex_unlock(&dev->wait_lock);
	if (r == -ETIMEDOUT) {
		/* The stream can't be trusted any more: a late reply would
		 * answer nobody, and the client is stuck or gone. */
		mu_log(dev, MU_LOG_WARN, "no reply to %s (id %u) in %d ms",
		       mu_cmd_name(w->cmd), w->id, MU_DMA_TIMEOUT_MS);
		if (serving)
			mu_conn_set(dev, MU_CONN_BROKEN, "DMA reply overdue");
		else
			mu_conn_broken(dev);
	}
	return r;
}

void mu_dma_route_reply(struct mu_dev *dev, struct mu_msg *m)
{
	struct mu_dma_wait *w;

	pthread_mutex_lock(&dev->wait_lock);
	for (w = dev->waits; w; w = w->next)
		if (w->id == m->hdr.msg_id)
			break;
	if (!w) {
		pthread_mutex_unlock(&dev->wait_lock);
		/* Never answer a reply; a late DMA reply ends up here. */
		mu_log(dev, MU_LOG_WARN, "stray %s reply (id %u) dropped",
		       mu_cmd_name(m->hdr.cmd), m->hdr.msg_id);
		mu_msg_close_fds(m);
		return;
	}
	unlink_wait(dev, w);
	mu_dma_complete(dev, w, m);
	w->done = true;
	pthread_cond_broadcast(&dev->wait_cond);
	pthread_mutex_unlock(&dev->wait_lock);
	mu_msg_close_fds(m);
}

void mu_dma_fail_all(struct mu_dev *dev, int err)
{
	struct mu_dma_wait *w;

	pthread_mutex_lock(&dev->wait_lock);
	dev->waits_open = false;
	while ((w = dev->waits)) {
		dev->waits = w->next;
		w->result = err;
		w->done = true;
	}
	pthread_cond_broadcast(&dev->wait_cond);
	pthread_mutex_unlock(&dev->wait_lock);
}
