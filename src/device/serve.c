/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Serving: receive and dispatch the client's messages (connection
 * handling is in conn.c), the queue of commands that wait, and waiting
 * while serving. Two entry points share serve_step():
 *
 * - mu_dev_process(): non-blocking, for the caller's event loop. The poll
 *   fd is an epoll set of the listener, the client and a wake eventfd, so
 *   it stays the same for the device's life.
 * - mu_dev_run(): blocking. A synchronous request costs one recvmsg() and
 *   one sendmsg(): the client socket has SO_RCVTIMEO set to an idle tick,
 *   so the blocking recvmsg() itself returns now and then to let run()
 *   notice mu_dev_stop() and drop extra clients; poll() is only used while
 *   no client is attached. (The wire core retries EINTR inside
 *   mu_chan_recv(), so a signal alone cannot interrupt the receive.)
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "commands.h"
#include "dev-internal.h"

void mu_qmsg_free(struct mu_qmsg *q)
{
	unsigned i;

	if (!q)
		return;
	for (i = 0; i < q->nfds; i++)
		if (q->fds[i] >= 0)
			close(q->fds[i]);
	free(q);
}

void mu_queue_drop(struct mu_dev *dev)
{
	struct mu_qmsg *q;

	dev->q_len = 0;
	while ((q = dev->q_head)) {
		dev->q_head = q->next;
		mu_qmsg_free(q);
	}
	dev->q_tail = NULL;
	mu_quiesce_drop(dev);
}

/* Commands that arrived whole before the client went away (queued while
 * a DMA reply was awaited) still happen, in order, as the client sent
 * them; there is just nobody left to answer. */
void mu_queue_run_orphans(struct mu_dev *dev)
{
	struct mu_qmsg *q;

	while ((q = dev->q_head)) {
		dev->q_head = q->next;
		dev->q_len--;
		if (!q->err) {
			q->hdr.flags |= MU_FLAG_NO_REPLY;
			mu_dispatch_qmsg(dev, q);
		}
		mu_qmsg_free(q);
	}
	dev->q_tail = NULL;
}

int mu_queue_msg(struct mu_dev *dev, const struct mu_msg *m, int err,
		 struct mu_qmsg **out)
{
	struct mu_qmsg *q;
	unsigned i;

	if (!out && dev->q_len >= MU_QUEUE_MAX)
		return -ENOBUFS;
	q = malloc(sizeof(*q) + m->len);
	if (!q)
		return -ENOMEM;
	q->next = NULL;
	q->hdr = m->hdr;
	q->err = err;
	q->reset = 0;
	q->len = err ? 0 : m->len;
	q->nfds = err ? 0 : m->nfds;
	if (q->len)
		memcpy(q->data, m->payload, q->len);
	for (i = 0; i < q->nfds; i++)
		q->fds[i] = m->fds[i];
	if (out) {
		*out = q;
	} else {
		if (dev->q_tail)
			dev->q_tail->next = q;
		else
			dev->q_head = q;
		dev->q_tail = q;
		dev->q_len++;
	}
	return 0;
}

bool mu_on_serving_thread(struct mu_dev *dev)
{
	return atomic_load(&dev->serving) &&
	       pthread_equal(pthread_self(), dev->serve_tid);
}

/*
 * A handler that makes the channel receive again (message DMA on the main
 * socket) would move the buffer its own message lives in. Hand the channel
 * a fresh buffer with the unread bytes and keep the old one alive until
 * the dispatch ends. Relies on struct mu_chan's documented fields.
 */
int mu_pin_dispatch_buffer(struct mu_dev *dev)
{
	if (!dev->from_chan || dev->pinned)
		return 0;
	dev->pinned = mu_chan_detach_buffer(&dev->chan);
	return dev->pinned ? 0 : -ENOMEM;
}

int mu_dispatch_qmsg(struct mu_dev *dev, struct mu_qmsg *q)
{
	struct mu_msg m;
	unsigned i;

	if (q->err)
		return mu_reply_refused(dev, &q->hdr, q->err);
	m.hdr = q->hdr;
	m.payload = q->data;
	m.len = q->len;
	m.nfds = q->nfds;
	for (i = 0; i < q->nfds; i++)
		m.fds[i] = q->fds[i];
	q->nfds = 0; /* the dispatcher owns and closes them now */
	return mu_dispatch(dev, &m);
}

/*
 * A message received while something waits (a handler's DMA reply, a
 * quiesce): a reply goes to its DMA wait; a command is served now if nest
 * allows it and nothing is queued ahead of it (order is kept), else it is
 * queued with everything after it. Negative: the client must go.
 */
static int take_while_waiting(struct mu_dev *dev, struct mu_msg *m, int r,
			      bool nest)
{
	struct mu_qmsg *q;
	bool from;

	if (r == 1 &&
	    (m->hdr.flags & MU_FLAG_TYPE_MASK) == MU_FLAG_TYPE_REPLY) {
		mu_dma_route_reply(dev, m);
		return 0;
	}
	if (r == 1 && nest && !dev->q_head && dev->nest < MU_NEST_MAX &&
	    dev->conn == MU_CONN_READY &&
	    (mu_cmd_flags(m->hdr.cmd) & MU_OP_NEST)) {
		/* A copy: DMA inside it would move the channel buffer. */
		if (mu_queue_msg(dev, m, 0, &q) < 0) {
			mu_msg_close_fds(m);
			return mu_reply_refused(dev, &m->hdr, -ENOMEM);
		}
		m->nfds = 0;
		from = dev->from_chan;
		dev->from_chan = false;
		r = mu_dispatch_qmsg(dev, q);
		dev->from_chan = from;
		mu_qmsg_free(q);
		return r;
	}
	if (r != 1 && !dev->q_head)
		return mu_reply_refused(dev, &m->hdr, r);
	if (mu_queue_msg(dev, m, r == 1 ? 0 : r, NULL) < 0) {
		mu_msg_close_fds(m);
		mu_log(dev, MU_LOG_WARN,
		       "client floods commands while the device waits");
		return -ECONNRESET;
	}
	if (r == 1)
		m->nfds = 0;
	return 0;
}

int mu_serve_wait(struct mu_dev *dev, bool (*done)(void *), void *arg,
		  int64_t deadline_ms, bool nest)
{
	struct pollfd p[2];
	struct mu_msg m;
	int64_t left;
	int r = 0;

	if (mu_pin_dispatch_buffer(dev) < 0)
		return -ENOMEM;
	dev->nest++;
	while (!done(arg)) {
		if (dev->conn != MU_CONN_READY) {
			r = -ECONNRESET;
			break;
		}
		left = deadline_ms - mu_now_ms();
		if (left <= 0) {
			r = -ETIMEDOUT;
			break;
		}
		if (!mu_chan_has_msg(&dev->chan)) {
			p[0] = (struct pollfd){.fd = dev->chan.fd,
					       .events = POLLIN};
			p[1] = (struct pollfd){.fd = dev->wake_fd,
					       .events = POLLIN};
			if (poll(p, 2, (int)left) < 0 && errno != EINTR) {
				r = -errno;
				break;
			}
			mu_drain_wake(dev);
			if (!p[0].revents)
				continue;
		}
		r = mu_chan_recv(&dev->chan, &m, MU_RECV_NONBLOCK);
		if (r == -EAGAIN) {
			r = 0;
			continue;
		}
		if (r == 1 || mu_chan_refused(r))
			r = take_while_waiting(dev, &m, r, nest);
		else
			r = -ECONNRESET; /* closed or broken */
		if (r < 0) {
			mu_conn_set(dev, MU_CONN_BROKEN, "nested receive");
			r = -ECONNRESET;
			break;
		}
	}
	dev->nest--;
	if (r == -ECONNRESET)
		mu_dma_fail_all(dev, -ECONNRESET);
	/* Commands queued meanwhile, or read along with a reply, are
	 * invisible to a poller of the connection: make the poll fd fire. */
	if (dev->q_head || mu_chan_has_msg(&dev->chan))
		mu_wake(dev);
	return r;
}

/* An async quiesce is pending: go on reading, so that device threads get
 * their DMA replies (the device may be waiting for them to finish), and
 * queue commands until the parked one has run. */
static int serve_parked(struct mu_dev *dev, int flags)
{
	struct mu_msg m;
	int r;

	if (dev->conn == MU_CONN_BROKEN)
		return 0;
	do {
		r = mu_chan_recv(&dev->chan, &m, flags);
		if (r == -EAGAIN)
			return 0;
		if (r == 1 || mu_chan_refused(r))
			r = take_while_waiting(dev, &m, r, false);
		else
			r = -ECONNRESET;
		if (r < 0) {
			/* Handled when the parked command has run. */
			mu_conn_set(dev, MU_CONN_BROKEN,
				    "receive while parked");
			mu_dma_fail_all(dev, -ECONNRESET);
			mu_conn_poll(dev, false);
			return 0;
		}
		flags |= MU_RECV_NONBLOCK;
	} while (mu_chan_has_msg(&dev->chan));
	return 0;
}

static const char *lost_reason(int r)
{
	if (r == 0)
		return "client closed the connection";
	if (r == -ECONNRESET)
		return "client left mid-message";
	if (r == -EPROTO)
		return "framing lost";
	return "socket error";
}

/* Handle one message: 1 handled, 0 nothing ready, -ENOTCONN client gone. */
static int serve_step(struct mu_dev *dev, int flags)
{
	struct mu_msg m;
	struct mu_qmsg *q;
	bool twin_gone;
	int r;

	/* The twin socket died under a device thread: drop the client, but
	 * only once what it already sent on the main socket is done (its end
	 * of that is closing too, most likely): read without waiting until
	 * nothing is left. */
	twin_gone = atomic_load_explicit(&dev->twin_lost, memory_order_relaxed);
	if (twin_gone)
		flags |= MU_RECV_NONBLOCK;
	if (dev->qs == MU_QS_PARKED)
		return serve_parked(dev, flags);
	q = dev->q_head;
	if (q) {
		dev->q_len--;
		dev->q_head = q->next;
		if (!dev->q_head)
			dev->q_tail = NULL;
		r = mu_dispatch_qmsg(dev, q);
		mu_qmsg_free(q);
	} else {
		r = mu_chan_recv(&dev->chan, &m, flags);
		if (r == -EAGAIN && twin_gone) {
			mu_detach(dev, "twin socket lost");
			return -ENOTCONN;
		}
		if (r == -EAGAIN && mu_negotiation_overdue(dev)) {
			mu_detach(dev, "no VERSION in time");
			return -ENOTCONN;
		}
		if (r == -EAGAIN)
			return 0;
		if (r == 1) {
			dev->from_chan = true;
			r = mu_dispatch(dev, &m);
			dev->from_chan = false;
		} else if (mu_chan_refused(r)) {
			r = mu_reply_refused(dev, &m.hdr, r);
		} else {
			mu_detach(dev, lost_reason(r));
			return -ENOTCONN;
		}
	}
	if (dev->pinned) {
		free(dev->pinned);
		dev->pinned = NULL;
	}
	if (r < 0 || dev->conn == MU_CONN_BROKEN) {
		mu_detach(dev, r == -ECONNABORTED ? "refused" : "lost");
		return -ENOTCONN;
	}
	if (dev->reset_due) /* asked for inside a nested command */
		mu_reset_run_due(dev, NULL, NULL);
	if (dev->chan.cap > 16 * MU_CHAN_MIN_BUF)
		mu_chan_trim(&dev->chan);
	return 1;
}

static void resume_parked(struct mu_dev *dev)
{
	int r = mu_resume_parked(dev);

	if (r == 0)
		return; /* still parked */
	if (r < 0 || dev->conn == MU_CONN_BROKEN)
		mu_detach(dev, "lost");
	else if (dev->conn != MU_CONN_NONE && dev->qs == MU_QS_RUNNING)
		mu_conn_poll(dev, true);
}

static void enter(struct mu_dev *dev)
{
	dev->serve_tid = pthread_self();
	atomic_store(&dev->serving, true);
}

MU_EXPORT int mu_dev_process(mu_dev_t *dev)
{
	int n = 0, r;

	if (!dev || !dev->realized)
		return -EINVAL;
	enter(dev);
	mu_drain_wake(dev);
	if (dev->qs == MU_QS_PARKED)
		resume_parked(dev);
	if (dev->conn == MU_CONN_NONE) {
		if (dev->fd_mode)
			return -ENOTCONN;
		r = mu_accept_client(dev);
		if (r <= 0)
			return r;
	}
	r = serve_step(dev, MU_RECV_NONBLOCK);
	if (r == 0)
		mu_reject_extra(dev); /* woken by the listener, most likely */
	while (r == 1) {
		n++;
		if (++dev->msg_count % MU_EXTRA_CHECK_EVERY == 0)
			mu_reject_extra(dev);
		/* Only what is buffered already: no extra syscall. */
		if (!dev->q_head && !mu_chan_has_msg(&dev->chan))
			break;
		r = serve_step(dev, MU_RECV_NONBLOCK);
	}
	if (r == -ENOTCONN && dev->fd_mode && n == 0)
		return -ENOTCONN;
	return n;
}

static int wait_idle(struct mu_dev *dev)
{
	struct pollfd p[2] = {
		{.fd = dev->wake_fd, .events = POLLIN},
		{.fd = dev->listen_fd, .events = POLLIN},
	};
	int r;

	/* A paused listener is retried every MU_IDLE_TICK_MS, not polled. */
	r = poll(p, dev->conn == MU_CONN_NONE && !dev->accept_paused ? 2 : 1,
		 dev->accept_paused ? MU_IDLE_TICK_MS : -1);
	if (r < 0 && errno != EINTR)
		return -errno;
	return 0;
}

/* run() while a command is parked: serve_parked() what arrives, and
 * resume as soon as the device says it is quiesced. */
static int wait_parked(struct mu_dev *dev)
{
	if (dev->conn == MU_CONN_BROKEN)
		return wait_idle(dev);
	mu_serve_wait(dev, mu_quiesce_finished, dev,
		      mu_now_ms() + MU_IDLE_TICK_MS, false);
	return 0;
}

MU_EXPORT int mu_dev_run(mu_dev_t *dev)
{
	int r = 0;

	if (!dev || !dev->realized)
		return -EINVAL;
	enter(dev);
	while (!atomic_load(&dev->stop)) {
		mu_drain_wake(dev);
		if (dev->qs == MU_QS_PARKED)
			resume_parked(dev);
		if (dev->conn == MU_CONN_NONE) {
			if (dev->fd_mode) {
				r = -ENOTCONN;
				break;
			}
			r = mu_accept_client(dev);
			if (r == 0)
				r = wait_idle(dev);
			if (r < 0)
				break;
			continue;
		}
		if (dev->qs == MU_QS_PARKED) {
			r = wait_parked(dev);
			if (r < 0)
				break;
			continue;
		}
		r = serve_step(dev, 0);
		if (r == 0 ||
		    (r == 1 && ++dev->msg_count % MU_EXTRA_CHECK_EVERY == 0))
			mu_reject_extra(dev);
		r = 0;
	}
	atomic_store(&dev->stop, false);
	return r;
}

/* Async-signal-safe: an atomic store and a write(). */
MU_EXPORT void mu_dev_stop(mu_dev_t *dev)
{
	if (!dev)
		return;
	atomic_store(&dev->stop, true);
	mu_wake(dev);
}
