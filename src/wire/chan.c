/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Message framing over a stream socket. One recvmsg() may bring several
 * pipelined messages, so a request costs one read and one write. fds that
 * arrive with a read belong to the message holding the read's last byte:
 * Linux ends a stream read right after the segment that carried fds, and a
 * sender passes a message's fds with that message's bytes.
 */
#include <errno.h>
#include <linux/futex.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "wire-core.h"

#define MAX_SEND_IOV 16

/* Everything but the send lock and the epoch (see struct mu_chan). */
static void chan_clear(struct mu_chan *c, int fd)
{
	c->fd = fd;
	c->buf = NULL;
	c->cap = c->head = c->tail = 0;
	c->pos = 0;
	c->fdq = NULL;
	c->nfdq = c->fdq_cap = 0;
	c->max_msg = 0;
	c->max_fds = 0;
	c->discard = 0;
	c->bad_err = 0;
	c->bad_lo = c->bad_hi = 0;
	c->max_wait_ms = 0;
}

static void send_lock_slow(struct mu_chan *c)
{
	while (atomic_exchange_explicit(&c->slock, 2, memory_order_acquire))
		syscall(SYS_futex, &c->slock, FUTEX_WAIT_PRIVATE, 2, NULL,
			NULL, 0);
}

static inline void send_lock(struct mu_chan *c)
{
	int free_ = 0;

	if (!atomic_compare_exchange_strong_explicit(&c->slock, &free_, 1,
						     memory_order_acquire,
						     memory_order_relaxed))
		send_lock_slow(c);
}

static inline void send_unlock(struct mu_chan *c)
{
	if (atomic_exchange_explicit(&c->slock, 0, memory_order_release) == 2)
		syscall(SYS_futex, &c->slock, FUTEX_WAKE_PRIVATE, 1, NULL, NULL,
			0);
}

int mu_chan_init(struct mu_chan *c, int fd, size_t max_msg, unsigned max_fds)
{
	atomic_init(&c->slock, 0);
	c->epoch = 0;
	return mu_chan_reopen(c, fd, max_msg, max_fds);
}

int mu_chan_reopen(struct mu_chan *c, int fd, size_t max_msg, unsigned max_fds)
{
	chan_clear(c, fd);
	c->buf = malloc(MU_CHAN_MIN_BUF);
	if (!c->buf)
		return -ENOMEM;
	c->cap = MU_CHAN_MIN_BUF;
	mu_chan_set_limits(c, max_msg, max_fds);
	return 0;
}

/*
 * Let one whole message of the size we accept sit in the socket's send
 * buffer. Linux's default (~208 KiB) cuts a 1 MiB message into five
 * sends, each waiting for the peer to drain the last: more wake-ups per
 * message. Both sides negotiate the same data size, so our receive limit
 * is also about the largest message we send. Best effort: the kernel caps
 * it at net.core.wmem_max, and a non-socket fd just says ENOTSOCK.
 */
static void size_send_buffer(const struct mu_chan *c)
{
	int want;

	if (c->fd < 0 || c->max_msg <= MU_SNDBUF_DEFAULT)
		return;
	want = c->max_msg > MU_SNDBUF_MAX ? (int)MU_SNDBUF_MAX
					  : (int)c->max_msg;
	setsockopt(c->fd, SOL_SOCKET, SO_SNDBUF, &want, sizeof(want));
}

void mu_chan_set_limits(struct mu_chan *c, size_t max_msg, unsigned max_fds)
{
	c->max_msg = max_msg < sizeof(struct mu_hdr) ? sizeof(struct mu_hdr)
						     : max_msg;
	c->max_fds = max_fds > MU_MAX_FDS_LIMIT ? MU_MAX_FDS_LIMIT : max_fds;
	size_send_buffer(c);
}

static void close_queued_before(struct mu_chan *c, uint64_t pos)
{
	size_t i, j = 0;

	for (i = 0; i < c->nfdq; i++) {
		if (c->fdq[i].pos < pos) {
			if (c->fdq[i].fd >= 0)
				close(c->fdq[i].fd);
		} else {
			c->fdq[j++] = c->fdq[i];
		}
	}
	c->nfdq = j;
}

void mu_chan_fini(struct mu_chan *c)
{
	close_queued_before(c, UINT64_MAX);
	free(c->fdq);
	free(c->buf);
	send_lock(c);
	if (c->fd >= 0)
		close(c->fd);
	c->epoch++;
	chan_clear(c, -1);
	send_unlock(c);
}

void mu_chan_trim(struct mu_chan *c)
{
	uint8_t *nb;
	size_t n = c->tail - c->head;

	if (c->cap <= 16 * MU_CHAN_MIN_BUF || n > MU_CHAN_MIN_BUF)
		return;
	nb = malloc(MU_CHAN_MIN_BUF);
	if (!nb)
		return;
	memcpy(nb, c->buf + c->head, n);
	free(c->buf);
	c->buf = nb;
	c->cap = MU_CHAN_MIN_BUF;
	c->head = 0;
	c->tail = n;
}

uint8_t *mu_chan_detach_buffer(struct mu_chan *c)
{
	size_t n = c->tail - c->head;
	size_t cap = n > MU_CHAN_MIN_BUF ? n : MU_CHAN_MIN_BUF;
	uint8_t *nb = malloc(cap), *old = c->buf;

	if (!nb)
		return NULL;
	memcpy(nb, c->buf + c->head, n);
	c->buf = nb;
	c->cap = cap;
	c->head = 0;
	c->tail = n;
	return old;
}

static int queue_fd(struct mu_chan *c, uint64_t pos, int fd)
{
	if (c->nfdq == c->fdq_cap) {
		size_t ncap = c->fdq_cap ? c->fdq_cap * 2 : 4;
		struct mu_fd_tag *q = realloc(c->fdq, ncap * sizeof(*q));

		if (!q)
			return -ENOMEM;
		c->fdq = q;
		c->fdq_cap = ncap;
	}
	c->fdq[c->nfdq].pos = pos;
	c->fdq[c->nfdq].fd = fd;
	c->nfdq++;
	return 0;
}

/* Make room for `need` bytes counted from head. need <= max_msg. */
static int reserve(struct mu_chan *c, size_t need)
{
	size_t n = c->tail - c->head, ncap;
	uint8_t *nb;

	if (c->cap - c->head >= need && c->tail < c->cap)
		return 0;
	if (c->head > 0) {
		memmove(c->buf, c->buf + c->head, n);
		c->head = 0;
		c->tail = n;
	}
	if (c->cap >= need && c->tail < c->cap)
		return 0;
	ncap = c->cap * 2 > need ? c->cap * 2 : need;
	if (ncap < c->tail + 1)
		ncap = c->tail + 1;
	nb = realloc(c->buf, ncap);
	if (!nb)
		return -ENOMEM;
	c->buf = nb;
	c->cap = ncap;
	return 0;
}

/* The message holding stream byte pos lost fds: fail it with err. Needs no
 * allocation, so it works when the fd queue could not grow. Two marks
 * before the first is consumed widen the range (a neighbour may fail too:
 * better than a message passing without its fds). */
static void mark_bad(struct mu_chan *c, uint64_t pos, int err)
{
	if (!c->bad_err) {
		c->bad_lo = c->bad_hi = pos;
		c->bad_err = err;
		return;
	}
	if (pos < c->bad_lo)
		c->bad_lo = pos;
	if (pos > c->bad_hi)
		c->bad_hi = pos;
}

/* One recvmsg into the buffer. Returns bytes read, 0 on EOF, -errno. */
static inline __attribute__((always_inline)) ssize_t fill(struct mu_chan *c,
							  int flags)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int) * MU_MAX_FDS_LIMIT)];
	} ctl;
	struct iovec iov = {c->buf + c->tail, c->cap - c->tail};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
	struct cmsghdr *cm;
	uint64_t last;
	ssize_t n;
	int rf = MSG_CMSG_CLOEXEC, err = 0;

	if (flags & MU_RECV_NONBLOCK)
		rf |= MSG_DONTWAIT;
	mh.msg_control = ctl.buf;
	mh.msg_controllen = sizeof(ctl.buf);
	do
		n = mu_sys_recvmsg(c->fd, &mh, rf);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	c->tail += (size_t)n;
	if (!mh.msg_controllen && !(mh.msg_flags & MSG_CTRUNC))
		return n; /* the common case: no fds */
	last = c->pos + (c->tail - c->head) - (n ? 1 : 0);
	for (cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
		size_t i, cnt;
		int fd;

		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		cnt = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (i = 0; i < cnt; i++) {
			memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int),
			       sizeof(fd));
			if (err || (err = queue_fd(c, last, fd)) < 0)
				close(fd);
		}
	}
	/* Our control buffer holds the most fds a sender can pass, so a
	 * truncation means the kernel could not install them here (fd limit).
	 * Either way the message lost fds: it must fail, not pass short. */
	if (mh.msg_flags & MSG_CTRUNC)
		mark_bad(c, last, -EMFILE);
	else if (err)
		mark_bad(c, last, err);
	return n;
}

/* Drop buffered bytes of a refused message; true once it is all gone. */
static bool drain_buffered(struct mu_chan *c)
{
	size_t n = c->tail - c->head;

	if (n > c->discard)
		n = (size_t)c->discard;
	c->head += n;
	c->pos += n;
	c->discard -= n;
	close_queued_before(c, c->pos);
	if (c->bad_err && c->bad_hi < c->pos)
		c->bad_err = 0;
	if (c->head == c->tail)
		c->head = c->tail = 0;
	return c->discard == 0;
}

bool mu_chan_has_msg(const struct mu_chan *c)
{
	struct mu_hdr h;
	size_t avail = c->tail - c->head;

	if (c->discard || avail < sizeof(h))
		return false;
	memcpy(&h, c->buf + c->head, sizeof(h));
	return h.size < sizeof(h) || h.size > c->max_msg || avail >= h.size;
}

/* Move the fds tagged inside [start, end) into m; -EINVAL if too many,
 * the mark_bad() error if the message lost fds on the way in. */
static int collect_fds(struct mu_chan *c, struct mu_msg *m, uint64_t start,
		       uint64_t end)
{
	size_t i, j = 0;
	int r = 0;

	m->nfds = 0;
	if (!c->nfdq && !c->bad_err)
		return 0; /* the common case: no fds anywhere */
	if (c->bad_err && c->bad_lo < end && c->bad_hi >= start)
		r = c->bad_err;
	if (c->bad_err && c->bad_hi < end)
		c->bad_err = 0; /* consumed */

	m->nfds = 0;
	for (i = 0; i < c->nfdq; i++) {
		struct mu_fd_tag t = c->fdq[i];

		if (t.pos >= end) {
			c->fdq[j++] = t;
			continue;
		}
		if (t.pos < start || m->nfds >= c->max_fds) {
			if (t.pos >= start && !r)
				r = -EINVAL;
			close(t.fd);
			continue;
		}
		m->fds[m->nfds++] = t.fd;
	}
	c->nfdq = j;
	if (r < 0)
		mu_msg_close_fds(m);
	return r;
}

/* Only runs once a message is partly in: the common path never asks
 * the clock. */
static bool partial_too_long(const struct mu_chan *c, struct timespec *t0)
{
	struct timespec now;
	int64_t ms;

	clock_gettime(CLOCK_MONOTONIC, &now);
	if (!t0->tv_sec && !t0->tv_nsec) {
		*t0 = now;
		return false;
	}
	ms = (int64_t)(now.tv_sec - t0->tv_sec) * 1000 +
	     (now.tv_nsec - t0->tv_nsec) / 1000000;
	return ms >= c->max_wait_ms;
}

int mu_chan_recv(struct mu_chan *c, struct mu_msg *m, int flags)
{
	struct timespec t0 = {0, 0};

	for (;;) {
		size_t avail, need = sizeof(struct mu_hdr);
		ssize_t n;
		int r;

		if (c->discard && !drain_buffered(c))
			goto more;
		avail = c->tail - c->head;
		if (!avail) {
			/* Empty (the usual state between requests): start
			 * over at the front, no move, no reserve(). */
			c->head = c->tail = 0;
			goto more;
		}
		if (avail >= sizeof(struct mu_hdr)) {
			memcpy(&m->hdr, c->buf + c->head, sizeof(m->hdr));
			m->nfds = 0;
			m->payload = NULL;
			m->len = 0;
			if (m->hdr.size < sizeof(struct mu_hdr))
				return -EPROTO; /* framing lost: unrecoverable
						 */
			if (m->hdr.size > c->max_msg) {
				c->discard = m->hdr.size;
				drain_buffered(c);
				return -EMSGSIZE;
			}
			if (avail >= m->hdr.size) {
				uint64_t start = c->pos;

				m->payload = c->buf + c->head + sizeof(m->hdr);
				m->len = m->hdr.size - sizeof(m->hdr);
				c->head += m->hdr.size;
				c->pos += m->hdr.size;
				r = collect_fds(c, m, start, c->pos);
				if (r < 0) {
					m->payload = NULL;
					m->len = 0;
					return r;
				}
				return 1;
			}
			need = m->hdr.size;
		}
		r = reserve(c, need);
		if (r < 0)
			return r;
	more:
		/* While draining, drain_buffered() left the buffer empty. */
		if ((c->tail > c->head || c->discard) && c->max_wait_ms > 0 &&
		    !(flags & MU_RECV_NONBLOCK) && partial_too_long(c, &t0))
			return -EAGAIN;
		n = fill(c, flags);
		if (n < 0)
			return (int)n;
		if (n == 0)
			return (c->tail == c->head && !c->discard)
				       ? 0
				       : -ECONNRESET;
	}
}

void mu_msg_close_fds_slow(struct mu_msg *m)
{
	unsigned i;

	for (i = 0; i < m->nfds; i++)
		if (m->fds[i] >= 0)
			close(m->fds[i]);
	m->nfds = 0;
}

int mu_msg_take_fd(struct mu_msg *m, unsigned i)
{
	int fd;

	if (i >= m->nfds || m->fds[i] < 0)
		return -EBADF;
	fd = m->fds[i];
	m->fds[i] = -1;
	return fd;
}

/* A first sendmsg of mh returned n, not everything: retry an interrupted
 * call, send the rest of a partial one, turn failures into -errno. */
static int send_rest(int fd, struct msghdr *mh, ssize_t n)
{
	for (;;) {
		if (n < 0 && errno == EINTR) {
			n = mu_sys_sendmsg(fd, mh, MSG_NOSIGNAL);
			continue;
		}
		if (n < 0)
			return errno == EWOULDBLOCK ? -ETIMEDOUT : -errno;
		/* The rest is plain data: fds went with the first bytes. */
		mh->msg_control = NULL;
		mh->msg_controllen = 0;
		while (mh->msg_iovlen > 0 &&
		       (size_t)n >= mh->msg_iov->iov_len) {
			n -= (ssize_t)mh->msg_iov->iov_len;
			mh->msg_iov++;
			mh->msg_iovlen--;
		}
		if (mh->msg_iovlen == 0)
			return 0;
		mh->msg_iov->iov_base = (char *)mh->msg_iov->iov_base + n;
		mh->msg_iov->iov_len -= (size_t)n;
		n = mu_sys_sendmsg(fd, mh, MSG_NOSIGNAL);
	}
}

/* Send every byte of mh (total bytes); fds go with the first sendmsg. */
static int send_all(int fd, struct msghdr *mh, size_t total)
{
	ssize_t n = mu_sys_sendmsg(fd, mh, MSG_NOSIGNAL);

	if ((size_t)n == total)
		return 0; /* the common case: all of it at once */
	return send_rest(fd, mh, n);
}

union mu_fd_ctl {
	struct cmsghdr align;
	char buf[CMSG_SPACE(sizeof(int) * MU_MAX_FDS_LIMIT)];
};

static void put_fds(struct msghdr *mh, union mu_fd_ctl *ctl, const int *fds,
		    unsigned nfds)
{
	struct cmsghdr *cm;

	memset(ctl->buf, 0, CMSG_SPACE(sizeof(int) * nfds));
	mh->msg_control = ctl->buf;
	mh->msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
	cm = CMSG_FIRSTHDR(mh);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
	memcpy(CMSG_DATA(cm), fds, sizeof(int) * nfds);
}

int mu_sendmsg_all(int fd, struct iovec *iov, int iovcnt, const int *fds,
		   unsigned nfds)
{
	struct msghdr mh = {.msg_iov = iov, .msg_iovlen = (size_t)iovcnt};
	union mu_fd_ctl ctl;
	size_t total = 0;
	int i;

	if (nfds > MU_MAX_FDS_LIMIT || iovcnt < 0)
		return -EINVAL;
	for (i = 0; i < iovcnt; i++)
		total += iov[i].iov_len;
	if (nfds)
		put_fds(&mh, &ctl, fds, nfds);
	return send_all(fd, &mh, total);
}

static int chan_send(struct mu_chan *c, const uint32_t *epoch,
		     struct mu_hdr *hdr, const struct iovec *iov, int iovcnt,
		     const int *fds, unsigned nfds)
{
	struct iovec v[MAX_SEND_IOV + 1];
	struct msghdr mh = {.msg_iov = v, .msg_iovlen = (size_t)iovcnt + 1};
	union mu_fd_ctl ctl;
	size_t total = sizeof(*hdr);
	int i, r;

	if (iovcnt < 0 || iovcnt > MAX_SEND_IOV || nfds > MU_MAX_FDS_LIMIT)
		return -EINVAL;
	v[0].iov_base = hdr;
	v[0].iov_len = sizeof(*hdr);
	for (i = 0; i < iovcnt; i++) {
		v[i + 1] = iov[i];
		total += iov[i].iov_len;
	}
	if (total > UINT32_MAX)
		return -EMSGSIZE;
	hdr->size = (uint32_t)total;
	if (nfds)
		put_fds(&mh, &ctl, fds, nfds);
	send_lock(c);
	if (epoch && *epoch != c->epoch)
		r = -ENOTCONN;
	else
		r = c->fd < 0 ? -ENOTCONN : send_all(c->fd, &mh, total);
	send_unlock(c);
	return r;
}

int mu_chan_send(struct mu_chan *c, struct mu_hdr *hdr, const struct iovec *iov,
		 int iovcnt, const int *fds, unsigned nfds)
{
	return chan_send(c, NULL, hdr, iov, iovcnt, fds, nfds);
}

int mu_chan_send_epoch(struct mu_chan *c, uint32_t epoch, struct mu_hdr *hdr,
		       const struct iovec *iov, int iovcnt)
{
	return chan_send(c, &epoch, hdr, iov, iovcnt, NULL, 0);
}

int mu_chan_send_flat(struct mu_chan *c, void *msg, size_t len)
{
	struct iovec v = {msg, len};
	struct msghdr mh = {.msg_iov = &v, .msg_iovlen = 1};
	struct mu_hdr *h = msg;
	int r;

	if (len < sizeof(*h) || len > UINT32_MAX)
		return -EINVAL;
	h->size = (uint32_t)len;
	send_lock(c);
	r = send_all(c->fd, &mh, len);
	send_unlock(c);
	return r;
}

int mu_chan_send_error(struct mu_chan *c, const struct mu_hdr *req, int err)
{
	struct mu_hdr h = {
		.msg_id = req->msg_id,
		.cmd = req->cmd,
		.flags = MU_FLAG_TYPE_REPLY | MU_FLAG_ERROR,
		.error = (uint32_t)(err < 0 ? -err : err),
	};

	return mu_chan_send(c, &h, NULL, 0, NULL, 0);
}
