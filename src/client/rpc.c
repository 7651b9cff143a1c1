/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The request/reply engine. Each request lives on its caller's stack in
 * the pending list, keyed by msg_id. There is no reader thread: a waiting
 * caller that finds nobody reading becomes the leader, reads the socket,
 * completes whichever request a reply belongs to (waking its owner) and
 * serves the server's DMA commands, until its own reply is in; then it
 * hands the role to the next waiter. Single-threaded, a request is one
 * sendmsg and one blocking recvmsg (SO_RCVTIMEO gives the timeout, so no
 * poll is needed). Only when a twin socket must be watched alongside the
 * main one (fd-less DMA maps exist) does the leader poll both.
 */
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "client-internal.h"

enum { LEAD_DONE = 0, LEAD_TIMEOUT = 1 };

static bool id_in_use(struct mu_client *c, uint16_t id)
{
	struct mu_req *r;
	unsigned i;

	for (r = c->pending; r; r = r->next)
		if (r->msg_id == id)
			return true;
	if (!c->nr_timed_out)
		return false; /* the usual case: skip 64 compares */
	for (i = 0; i < MU_CLIENT_TIMED_OUT_RING; i++)
		if (c->timed_out[i] == id)
			return true;
	return false;
}

uint16_t mu_rpc_alloc_id_locked(struct mu_client *c)
{
	uint16_t id = c->next_id++;
	unsigned tries = 0;

	/* Skip ids still awaited; both sets are tiny next to 65536. */
	while (id_in_use(c, id) && tries++ < 65536)
		id = c->next_id++;
	return id;
}

static void remove_req_locked(struct mu_client *c, struct mu_req *req)
{
	struct mu_req **pp;

	for (pp = &c->pending; *pp; pp = &(*pp)->next) {
		if (*pp == req) {
			*pp = req->next;
			return;
		}
	}
}

static void note_timeout_locked(struct mu_client *c, struct mu_req *req)
{
	remove_req_locked(c, req);
	if (c->timed_out[c->timed_out_pos] > 0xffff)
		c->nr_timed_out++; /* else an older id drops out */
	c->timed_out[c->timed_out_pos] = req->msg_id;
	c->timed_out_pos = (c->timed_out_pos + 1) % MU_CLIENT_TIMED_OUT_RING;
	req->done = true;
	req->result = -ETIMEDOUT;
	mu_client_log(c, MU_LOG_WARN, "%s (msg_id %u) timed out",
		      mu_cmd_name(req->call->cmd), req->msg_id);
}

static bool was_timed_out_locked(struct mu_client *c, uint16_t id)
{
	unsigned i;

	for (i = 0; c->nr_timed_out && i < MU_CLIENT_TIMED_OUT_RING; i++) {
		if (c->timed_out[i] == id) {
			c->timed_out[i] = UINT32_MAX;
			c->nr_timed_out--;
			return true;
		}
	}
	return false;
}

int mu_rpc_send_error(struct mu_client *c, int r)
{
	if (r == -EPIPE || r == -ECONNREFUSED)
		r = -ECONNRESET;
	/* A failed or partial send leaves the stream unusable. */
	mu_client_kill(c, r);
	return r;
}

/* ---- sending ---------------------------------------------------------- */

int mu_rpc_flush_batch_locked(struct mu_client *c)
{
	struct mu_write_multi wm = {c->nwm};
	struct iovec iov[2] = {
		{&wm, sizeof(wm)},
		{c->wm, c->nwm * sizeof(c->wm[0])},
	};
	struct mu_hdr h = {.cmd = MU_CMD_REGION_WRITE_MULTI,
			   .flags = MU_FLAG_TYPE_COMMAND | MU_FLAG_NO_REPLY};
	int r;

	if (!c->nwm)
		return 0;
	pthread_mutex_lock(&c->lock);
	h.msg_id = mu_rpc_alloc_id_locked(c);
	pthread_mutex_unlock(&c->lock);
	c->nwm = 0;
	__atomic_store_n(&c->posted_pending, true, __ATOMIC_RELAXED);
	r = mu_chan_send(&c->chan, &h, iov, 2, NULL, 0);
	return r < 0 ? mu_rpc_send_error(c, r) : 0;
}

static int send_msg(struct mu_client *c, struct mu_hdr *h,
		    const struct iovec *iov, int iovcnt, const int *fds,
		    unsigned nfds)
{
	int r;

	pthread_mutex_lock(&c->send_lock);
	/* Posted writes still batched must reach the server first. */
	r = mu_rpc_flush_batch_locked(c);
	if (r == 0) {
		r = mu_chan_send(&c->chan, h, iov, iovcnt, fds, nfds);
		if (r < 0)
			r = mu_rpc_send_error(c, r);
	}
	if (r == 0 && (h->flags & MU_FLAG_NO_REPLY))
		__atomic_store_n(&c->posted_pending, true, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&c->send_lock);
	return r;
}

int mu_rpc_post(struct mu_client *c, uint16_t cmd, const struct iovec *iov,
		int iovcnt)
{
	struct mu_hdr h = {.cmd = cmd,
			   .flags = MU_FLAG_TYPE_COMMAND | MU_FLAG_NO_REPLY};

	pthread_mutex_lock(&c->lock);
	if (c->dead) {
		pthread_mutex_unlock(&c->lock);
		return -ENOTCONN;
	}
	h.msg_id = mu_rpc_alloc_id_locked(c);
	pthread_mutex_unlock(&c->lock);
	return send_msg(c, &h, iov, iovcnt, NULL, 0);
}

/* ---- receiving -------------------------------------------------------- */

static long ms_until(const struct timespec *dl)
{
	struct timespec now;
	long ms;

	clock_gettime(CLOCK_MONOTONIC, &now);
	ms = (long)(dl->tv_sec - now.tv_sec) * 1000 +
	     (dl->tv_nsec - now.tv_nsec) / 1000000;
	return ms < 0 ? 0 : ms;
}

/* Keep SO_RCVTIMEO close to want (ms), without a syscall per request in
 * the common case (the value already set is the full timeout). */
static void tune_rcvtimeo(struct mu_client *c, long want)
{
	struct timeval tv;
	long cur = c->cur_rcvtimeo;

	if (want < 1)
		want = 1;
	if (cur > 0 && cur <= want + 2 && cur * 2 >= want)
		return;
	tv.tv_sec = want / 1000;
	tv.tv_usec = (want % 1000) * 1000;
	if (setsockopt(c->chan.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) ==
	    0)
		c->cur_rcvtimeo = (int)want;
}

static void rcvtimeo_forever(struct mu_client *c)
{
	struct timeval tv = {0, 0};

	if (c->cur_rcvtimeo < 0)
		return;
	if (setsockopt(c->chan.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) ==
	    0)
		c->cur_rcvtimeo = -1;
}

static bool twin_watched(struct mu_client *c)
{
	return c->has_twin &&
	       __atomic_load_n(&c->nbuf_maps, __ATOMIC_RELAXED) > 0;
}

/*
 * Receive one message from either socket. *src is the channel it came
 * from. Returns 1, LEAD_TIMEOUT-style -EAGAIN when the deadline passed
 * (or nothing is there with block false), 0 on EOF, or -errno.
 */
static int recv_one(struct mu_client *c, struct mu_msg *m,
		    const struct timespec *dl, bool block, struct mu_chan **src)
{
	for (;;) {
		struct pollfd pfd[2];
		long rem = -1;
		int r, n;

		*src = &c->chan;
		if (mu_chan_has_msg(&c->chan))
			return mu_chan_recv(&c->chan, m, 0);
		if (c->has_twin && mu_chan_has_msg(&c->twin)) {
			*src = &c->twin;
			return mu_chan_recv(&c->twin, m, 0);
		}
		if (block && dl) {
			rem = ms_until(dl);
			if (rem == 0)
				return -EAGAIN;
		}
		if (!block) {
			r = mu_chan_recv(&c->chan, m, MU_RECV_NONBLOCK);
			if (r != -EAGAIN || !c->has_twin)
				return r;
			*src = &c->twin;
			return mu_chan_recv(&c->twin, m, MU_RECV_NONBLOCK);
		}
		if (!twin_watched(c)) {
			/* Fast path: block in recvmsg, bounded by
			 * SO_RCVTIMEO. Without fd-less maps, DMA commands
			 * on the twin are unlikely (the server can mmap, or
			 * gets EFAULT) but still served, between slices. */
			bool slice = c->has_twin;

			if (slice && (rem < 0 || rem > MU_CLIENT_TWIN_SLICE_MS))
				tune_rcvtimeo(c, MU_CLIENT_TWIN_SLICE_MS);
			else if (dl)
				tune_rcvtimeo(c, rem);
			else
				rcvtimeo_forever(c);
			r = mu_chan_recv(&c->chan, m, 0);
			if (r != -EAGAIN)
				return r;
			if (c->has_twin) {
				*src = &c->twin;
				r = mu_chan_recv(&c->twin, m, MU_RECV_NONBLOCK);
				if (r != -EAGAIN)
					return r;
			}
			continue; /* timed out (or partial): re-check */
		}
		pfd[0] = (struct pollfd){.fd = c->chan.fd, .events = POLLIN};
		pfd[1] = (struct pollfd){.fd = c->twin.fd, .events = POLLIN};
		do
			n = poll(pfd, 2,
				 rem > INT32_MAX ? INT32_MAX : (int)rem);
		while (n < 0 && errno == EINTR);
		if (n < 0)
			return -errno;
		if (n == 0)
			continue;
		if (pfd[0].revents) {
			r = mu_chan_recv(&c->chan, m, MU_RECV_NONBLOCK);
			if (r != -EAGAIN)
				return r;
		}
		if (pfd[1].revents) {
			*src = &c->twin;
			r = mu_chan_recv(&c->twin, m, MU_RECV_NONBLOCK);
			if (r != -EAGAIN)
				return r;
		}
	}
}

static int scatter(const struct mu_call *call, const uint8_t *p, size_t len)
{
	int i;

	for (i = 0; i < call->riovcnt && len; i++) {
		size_t n = call->riov[i].iov_len < len ? call->riov[i].iov_len
						       : len;

		memcpy(call->riov[i].iov_base, p, n);
		p += n;
		len -= n;
	}
	return 0;
}

static size_t riov_cap(const struct mu_call *call)
{
	size_t n = 0;
	int i;

	for (i = 0; i < call->riovcnt; i++)
		n += call->riov[i].iov_len;
	return n;
}

/*
 * Hand a reply to the request it answers. Returns 1 when it completed
 * own, 0 otherwise, or a fatal -errno (the server broke the protocol;
 * the owner of the reply already has its error).
 */
static int complete(struct mu_client *c, struct mu_msg *m, struct mu_req *own)
{
	struct mu_req *req;
	struct mu_call *call;
	int r = 0, fatal = 0;
	bool peer_error;

	pthread_mutex_lock(&c->lock);
	for (req = c->pending; req; req = req->next)
		if (req->msg_id == m->hdr.msg_id)
			break;
	if (!req) {
		bool late = was_timed_out_locked(c, m->hdr.msg_id);

		pthread_mutex_unlock(&c->lock);
		mu_msg_close_fds(m);
		if (late)
			return 0;
		mu_client_log(c, MU_LOG_ERR,
			      "reply with unknown msg_id %u (cmd %u)",
			      m->hdr.msg_id, m->hdr.cmd);
		return -EPROTO;
	}
	remove_req_locked(c, req);
	call = req->call;
	r = mu_check_reply_peer(m, call->cmd, call->rmin, &peer_error);
	if (peer_error) {
		/* The server's own error: the connection is fine. */
		mu_msg_close_fds(m);
	} else {
		if (r == 0 && m->len > riov_cap(call) && !call->rtrunc)
			r = -EBADMSG;
		if (r == 0 && m->nfds > call->rfds_max)
			r = -EPROTO;
		if (r < 0) {
			mu_client_log(c, MU_LOG_ERR,
				      "bad %s reply (msg_id %u, flags %#x, "
				      "cmd %u, %zu bytes, %u fds): %s",
				      mu_cmd_name(call->cmd), m->hdr.msg_id,
				      m->hdr.flags, m->hdr.cmd, m->len, m->nfds,
				      strerror(-r));
			mu_msg_close_fds(m);
			fatal = r;
		} else {
			scatter(call, m->payload, m->len);
			call->rlen = m->len;
			if (m->nfds)
				memcpy(call->rfds, m->fds,
				       m->nfds * sizeof(int));
			call->nrfds = m->nfds;
			m->nfds = 0;
			/* Replies come in order: posted writes before it
			 * are processed. */
			__atomic_store_n(&c->posted_pending, false,
					 __ATOMIC_RELAXED);
		}
	}
	req->result = r;
	req->done = true;
	if (req != own)
		pthread_cond_signal(&req->cond);
	pthread_mutex_unlock(&c->lock);
	if (fatal)
		return fatal;
	return req == own;
}

static int handle(struct mu_client *c, struct mu_chan *src, struct mu_msg *m,
		  struct mu_req *own)
{
	if ((m->hdr.flags & MU_FLAG_TYPE_MASK) == MU_FLAG_TYPE_COMMAND) {
		int r = mu_dma_serve(c, src,
				     src == &c->chan ? &c->send_lock : NULL, m);

		return r < 0 ? r : 0;
	}
	if (src != &c->chan) {
		mu_client_log(c, MU_LOG_ERR, "reply on the twin socket");
		mu_msg_close_fds(m);
		return -EPROTO;
	}
	return complete(c, m, own);
}

/*
 * Read and dispatch until own is complete (LEAD_DONE), the deadline
 * passes (LEAD_TIMEOUT), or the connection breaks (-errno). With own NULL
 * only what is readable without blocking is processed; *served counts
 * the messages handled.
 */
/* Whole messages already read from either socket. */
static bool buffered(struct mu_client *c)
{
	return mu_chan_has_msg(&c->chan) ||
	       (c->has_twin && mu_chan_has_msg(&c->twin));
}

static int lead(struct mu_client *c, struct mu_req *own,
		const struct timespec *dl, int *served)
{
	bool draining = false;
	struct mu_msg m;
	struct mu_chan *src;
	int r;

	for (;;) {
		if (draining && !buffered(c))
			return LEAD_DONE;
		r = recv_one(c, &m, dl, own != NULL, &src);
		if (r == -EAGAIN)
			return own ? LEAD_TIMEOUT : LEAD_DONE;
		if (r == 0) {
			mu_client_log(c, MU_LOG_INFO, "server closed the %s",
				      src == &c->chan ? "socket"
						      : "twin socket");
			return -ECONNRESET;
		}
		if (r < 0) {
			mu_client_log(c, MU_LOG_ERR, "receive failed: %s",
				      strerror(-r));
			if (r == -EMSGSIZE || r == -EINVAL)
				r = -EBADMSG; /* refused by framing */
			/* -EMFILE/-ENOMEM: its fds could not be taken in
			 * here; say so rather than blame the server. */
			return r;
		}
		r = handle(c, src, &m, own);
		if (r < 0)
			return r;
		if (served)
			(*served)++;
		if (r == 1) {
			/* Ours is done. A server command that came in the
			 * same read would otherwise sit in the buffer while
			 * the poll fd stays quiet: serve what is buffered. */
			own = NULL;
			dl = NULL;
			draining = true;
		}
	}
}

static void wake_waiters_locked(struct mu_client *c)
{
	struct mu_req *r;

	/* Someone must take over reading; the first to wake does. */
	for (r = c->pending; r; r = r->next)
		pthread_cond_signal(&r->cond);
}

static int wait_reply(struct mu_client *c, struct mu_req *req,
		      const struct timespec *dl)
{
	pthread_mutex_lock(&c->lock);
	while (!req->done) {
		if (!c->leader) {
			int r;

			c->leader = true;
			pthread_mutex_unlock(&c->lock);
			r = lead(c, req, dl, NULL);
			pthread_mutex_lock(&c->lock);
			c->leader = false;
			if (r == LEAD_TIMEOUT && !req->done)
				note_timeout_locked(c, req);
			else if (r < 0)
				mu_client_kill_locked(c, r);
			wake_waiters_locked(c);
			continue;
		}
		if (dl) {
			if (pthread_cond_timedwait(&req->cond, &c->lock, dl) ==
				    ETIMEDOUT &&
			    !req->done)
				note_timeout_locked(c, req);
		} else {
			pthread_cond_wait(&req->cond, &c->lock);
		}
	}
	pthread_mutex_unlock(&c->lock);
	return req->result;
}

int mu_rpc_call(struct mu_client *c, struct mu_call *call)
{
	struct mu_req req = {.call = call};
	struct mu_hdr h = {.cmd = call->cmd,
			   .flags = MU_FLAG_TYPE_COMMAND | call->flags};
	struct timespec dl;
	bool has_dl = mu_client_deadline(c, &dl);
	int r;

	call->rlen = 0;
	call->nrfds = 0;
	pthread_cond_init(&req.cond, &c->condattr);
	pthread_mutex_lock(&c->lock);
	if (c->dead) {
		pthread_mutex_unlock(&c->lock);
		pthread_cond_destroy(&req.cond);
		return -ENOTCONN;
	}
	req.msg_id = h.msg_id = mu_rpc_alloc_id_locked(c);
	/* In the table before it is sent: the reply may beat us back. */
	req.next = c->pending;
	c->pending = &req;
	pthread_mutex_unlock(&c->lock);

	r = send_msg(c, &h, call->iov, call->iovcnt, call->fds, call->nfds);
	if (r < 0) {
		/* send_msg killed the connection, which failed req. */
		pthread_mutex_lock(&c->lock);
		remove_req_locked(c, &req);
		pthread_mutex_unlock(&c->lock);
		pthread_cond_destroy(&req.cond);
		return r;
	}
	r = wait_reply(c, &req, has_dl ? &dl : NULL);
	pthread_cond_destroy(&req.cond);
	if (r < 0) {
		unsigned i;

		for (i = 0; i < call->nrfds; i++)
			close(call->rfds[i]);
		call->nrfds = 0;
	}
	return r;
}

/* ---- event-loop integration ---------------------------------------- */

MU_EXPORT int mu_client_process(mu_client_t *c)
{
	int r, served = 0;

	if (!c)
		return -EINVAL;
	pthread_mutex_lock(&c->lock);
	if (c->dead) {
		pthread_mutex_unlock(&c->lock);
		return -ENOTCONN;
	}
	if (c->leader) {
		/* A waiting caller is reading; it serves everything. */
		pthread_mutex_unlock(&c->lock);
		return 0;
	}
	c->leader = true;
	pthread_mutex_unlock(&c->lock);
	r = lead(c, NULL, NULL, &served);
	pthread_mutex_lock(&c->lock);
	c->leader = false;
	if (r < 0)
		mu_client_kill_locked(c, r);
	wake_waiters_locked(c);
	pthread_mutex_unlock(&c->lock);
	return r < 0 ? r : served;
}

/* ---- raw requests ----------------------------------------------------- */

MU_EXPORT ssize_t mu_client_request(mu_client_t *c, uint16_t cmd,
				    const void *payload, size_t len,
				    const int *fds, unsigned nfds, void *reply,
				    size_t reply_cap, int *rfds,
				    unsigned *nrfds)
{
	int got[MU_MAX_FDS_LIMIT];
	struct iovec iov = {(void *)payload, len};
	struct iovec riov = {reply, reply ? reply_cap : 0};
	struct mu_call call = {
		.cmd = cmd,
		.iov = &iov,
		.iovcnt = len ? 1 : 0,
		.fds = fds,
		.nfds = nfds,
		.riov = &riov,
		.riovcnt = 1,
		.rtrunc = true,
		.rfds = got,
	};
	unsigned i, keep;
	int r;

	if (!c || (len && !payload) || (nfds && !fds))
		return -EINVAL;
	if (cmd == MU_CMD_VERSION || nfds > c->sess.max_msg_fds ||
	    len > (size_t)c->sess.max_data_xfer_size + MU_MSG_OVERHEAD)
		return -EINVAL;
	call.rfds_max = c->our_fds;
	r = mu_rpc_call(c, &call);
	if (r < 0)
		return r;
	keep = (rfds && nrfds) ? *nrfds : 0;
	for (i = 0; i < call.nrfds; i++) {
		if (i < keep)
			rfds[i] = got[i];
		else
			close(got[i]);
	}
	if (nrfds)
		*nrfds = call.nrfds < keep ? call.nrfds : keep;
	return (ssize_t)call.rlen;
}

int mu_rpc_simple(struct mu_client *c, uint16_t cmd, const void *req,
		  size_t req_len, void *rep, size_t rep_len, size_t rmin,
		  size_t *rlen)
{
	struct iovec iov = {(void *)req, req_len}, riov = {rep, rep_len};
	struct mu_call call = {
		.cmd = cmd,
		.iov = &iov,
		.iovcnt = 1,
		.riov = &riov,
		.riovcnt = 1,
		.rmin = rmin,
	};
	int r = mu_rpc_call(c, &call);

	if (rlen)
		*rlen = call.rlen;
	return r;
}
