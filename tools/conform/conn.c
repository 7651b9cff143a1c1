/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * conn.c - the checker's raw transport: connect, send exact bytes and fds,
 * receive one message at a time against a deadline. Sizes the server
 * states are checked before anything is allocated; a stream that broke
 * (EOF, timeout inside a message, a lying size) is marked dead so later
 * calls fail at once instead of waiting again.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "conn.h"
#include "serve.h"

long cf_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int cf_conn_open(struct cf_conn **out, const char *path, int timeout_ms,
		 struct cf_dma_stats *dma)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
	struct cf_conn *c;
	int fd, e;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	memcpy(sa.sun_path, path, strlen(path));
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* A hung server with a full backlog would block connect forever. */
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		e = errno == EINPROGRESS ? -ETIMEDOUT : -errno;
		close(fd);
		return e;
	}
	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0) {
		e = -errno;
		close(fd);
		return e;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		close(fd);
		return -ENOMEM;
	}
	c->fd = fd;
	c->twin = -1;
	c->next_id = 1;
	c->timeout_ms = timeout_ms;
	c->dma = dma;
	*out = c;
	return 0;
}

void cf_conn_close(struct cf_conn *c)
{
	if (!c)
		return;
	cf_window_clear(c);
	if (c->twin >= 0)
		close(c->twin);
	close(c->fd);
	free(c);
}

int cf_conn_peer_pid(const struct cf_conn *c)
{
	struct ucred cr;
	socklen_t l = sizeof(cr);

	if (getsockopt(c->fd, SOL_SOCKET, SO_PEERCRED, &cr, &l) < 0)
		return -errno;
	return cr.pid > 0 ? cr.pid : -ENOENT;
}

void cf_conn_set_twin(struct cf_conn *c, int fd)
{
	if (c->twin >= 0)
		close(c->twin);
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	c->twin = fd;
}

uint16_t cf_next_id(struct cf_conn *c)
{
	return c->next_id++;
}

static int kill_conn(struct cf_conn *c, int err)
{
	if (!c->dead) {
		c->dead = true;
		c->dead_err = err;
	}
	return err;
}

/* ---- sending ----------------------------------------------------------- */

static int send_iov(struct cf_conn *c, int fd, struct iovec *v, int n,
		    const int *fds, unsigned nfds)
{
	char cbuf[CMSG_SPACE(sizeof(int) * CF_MAX_FDS)];
	long deadline = cf_now_ms() + c->timeout_ms;
	bool fds_sent = nfds == 0;

	if (nfds > CF_MAX_FDS)
		return -EINVAL;
	while (n > 0) {
		struct msghdr mh = {.msg_iov = v, .msg_iovlen = (size_t)n};
		struct pollfd p = {.fd = fd, .events = POLLOUT};
		ssize_t r;

		if (!fds_sent) {
			struct cmsghdr *cm;

			memset(cbuf, 0, sizeof(cbuf));
			mh.msg_control = cbuf;
			mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
			cm = CMSG_FIRSTHDR(&mh);
			cm->cmsg_level = SOL_SOCKET;
			cm->cmsg_type = SCM_RIGHTS;
			cm->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
			memcpy(CMSG_DATA(cm), fds, sizeof(int) * nfds);
		}
		r = sendmsg(fd, &mh, MSG_NOSIGNAL);
		if (r < 0) {
			long left = deadline - cf_now_ms();

			if (errno == EINTR)
				continue;
			if (errno != EAGAIN)
				return errno == EPIPE ? -ECONNRESET : -errno;
			if (left <= 0 || poll(&p, 1, (int)left) == 0)
				return -ETIMEDOUT;
			continue;
		}
		fds_sent = true;
		while (n > 0 && (size_t)r >= v->iov_len) {
			r -= (ssize_t)v->iov_len;
			v++;
			n--;
		}
		if (n > 0) {
			v->iov_base = (uint8_t *)v->iov_base + r;
			v->iov_len -= (size_t)r;
		}
	}
	return 0;
}

int cf_send_msg(struct cf_conn *c, int fd, const struct mu_hdr *hdr,
		const void *payload, size_t len, const int *fds, unsigned nfds)
{
	struct mu_hdr h = *hdr;
	struct iovec v[2] = {{&h, sizeof(h)}, {(void *)payload, len}};
	int e;

	if (c->dead)
		return c->dead_err;
	e = send_iov(c, fd, v, len ? 2 : 1, fds, nfds);
	/* A torn send leaves the server mid-message: nothing after it is
	 * meaningful on this connection. */
	return e < 0 ? kill_conn(c, e) : 0;
}

int cf_send_on(struct cf_conn *c, int fd, uint16_t id, uint16_t cmd,
	       uint32_t flags, uint32_t size, const void *payload, size_t len,
	       const int *fds, unsigned nfds)
{
	struct mu_hdr h = {.msg_id = id, .cmd = cmd, .flags = flags};

	if (len > UINT32_MAX - sizeof(h))
		return -E2BIG;
	h.size = size ? size : (uint32_t)(sizeof(h) + len);
	return cf_send_msg(c, fd, &h, payload, len, fds, nfds);
}

int cf_send(struct cf_conn *c, uint16_t id, uint16_t cmd, uint32_t flags,
	    uint32_t size, const void *payload, size_t len, const int *fds,
	    unsigned nfds)
{
	return cf_send_on(c, c->fd, id, cmd, flags, size, payload, len, fds,
			  nfds);
}

int cf_send_bytes(struct cf_conn *c, const void *buf, size_t len)
{
	struct iovec v = {(void *)buf, len};
	int e;

	if (c->dead)
		return c->dead_err;
	e = send_iov(c, c->fd, &v, 1, NULL, 0);
	return e < 0 ? kill_conn(c, e) : 0;
}

/* ---- receiving --------------------------------------------------------- */

static void take_fds(struct msghdr *mh, struct cf_msg *m)
{
	struct cmsghdr *cm;

	for (cm = CMSG_FIRSTHDR(mh); cm; cm = CMSG_NXTHDR(mh, cm)) {
		size_t n, i;
		int fd;

		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		n = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (i = 0; i < n; i++) {
			memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int),
			       sizeof(fd));
			if (m->nfds < CF_MAX_FDS)
				m->fds[m->nfds++] = fd;
			else
				close(fd);
		}
	}
	if (mh->msg_flags & MSG_CTRUNC)
		m->ctrunc = true;
}

/* Read exactly len bytes (into buf) before deadline. */
static int read_exact(int fd, uint8_t *buf, size_t len, long deadline,
		      struct cf_msg *m)
{
	char cbuf[CMSG_SPACE(sizeof(int) * CF_MAX_FDS)];
	size_t got = 0;

	while (got < len) {
		struct iovec v = {buf + got, len - got};
		struct msghdr mh = {.msg_iov = &v,
				    .msg_iovlen = 1,
				    .msg_control = cbuf,
				    .msg_controllen = sizeof(cbuf)};
		struct pollfd p = {.fd = fd, .events = POLLIN};
		long left = deadline - cf_now_ms();
		ssize_t r;

		r = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);
		if (r > 0) {
			take_fds(&mh, m);
			got += (size_t)r;
			continue;
		}
		if (r == 0)
			return -ECONNRESET;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN)
			return -errno;
		if (left <= 0)
			return -ETIMEDOUT;
		if (poll(&p, 1, (int)left) == 0)
			return -ETIMEDOUT;
	}
	return 0;
}

int cf_recv_on(struct cf_conn *c, int fd, struct cf_msg *m, int ms)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	uint8_t hb[sizeof(struct mu_hdr)];
	size_t plen;
	int e;

	memset(m, 0, sizeof(*m));
	if (c->dead)
		return c->dead_err;
	/* Nothing arriving leaves the stream intact: callers that expect
	 * silence (NO_REPLY) go on using the connection. */
	do
		e = poll(&p, 1, ms < 0 ? 0 : ms);
	while (e < 0 && errno == EINTR);
	if (e == 0)
		return -ETIMEDOUT;
	e = read_exact(fd, hb, sizeof(hb), cf_now_ms() + c->timeout_ms, m);
	if (e < 0)
		goto fail;
	memcpy(&m->hdr, hb, sizeof(m->hdr));
	if (m->hdr.size < sizeof(struct mu_hdr)) {
		e = -EBADMSG;
		goto fail;
	}
	plen = m->hdr.size - sizeof(struct mu_hdr);
	if (plen > CF_RECV_CAP) {
		e = -EMSGSIZE;
		goto fail;
	}
	if (plen) {
		m->payload = malloc(plen);
		if (!m->payload) {
			e = -ENOMEM;
			goto fail;
		}
		e = read_exact(fd, m->payload, plen,
			       cf_now_ms() + c->timeout_ms, m);
		if (e < 0)
			goto fail;
		m->len = plen;
	}
	return 0;
fail:
	cf_msg_free(m);
	return kill_conn(c, e);
}

int cf_recv(struct cf_conn *c, struct cf_msg *m, int ms)
{
	return cf_recv_on(c, c->fd, m, ms);
}

static bool is_server_cmd(const struct cf_msg *m)
{
	return (m->hdr.flags & MU_FLAG_TYPE_MASK) == MU_FLAG_TYPE_COMMAND &&
	       (m->hdr.cmd == MU_CMD_DMA_READ ||
		m->hdr.cmd == MU_CMD_DMA_WRITE);
}

int cf_wait(struct cf_conn *c, struct cf_msg *m, int ms)
{
	long deadline = cf_now_ms() + ms;

	for (;;) {
		struct pollfd p[2] = {{.fd = c->fd, .events = POLLIN},
				      {.fd = c->twin, .events = POLLIN}};
		long left = deadline - cf_now_ms();
		int e, n;

		if (c->dead)
			return c->dead_err;
		if (left < 0)
			left = 0;
		n = poll(p, c->twin >= 0 ? 2 : 1, (int)left);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			memset(m, 0, sizeof(*m));
			return kill_conn(c, n < 0 ? -errno : -ETIMEDOUT);
		}
		if (c->twin >= 0 && p[1].revents) {
			e = cf_recv_on(c, c->twin, m, c->timeout_ms);
			if (e < 0)
				return e;
			cf_serve(c, c->twin, m);
			cf_msg_free(m);
			continue;
		}
		e = cf_recv_on(c, c->fd, m, c->timeout_ms);
		if (e < 0)
			return e;
		if (!is_server_cmd(m))
			return 0;
		cf_serve(c, c->fd, m);
		cf_msg_free(m);
	}
}

int cf_call(struct cf_conn *c, uint16_t cmd, const void *payload, size_t len,
	    const int *fds, unsigned nfds, struct cf_msg *m)
{
	uint16_t id = cf_next_id(c);
	int e;

	memset(m, 0, sizeof(*m));
	e = cf_send(c, id, cmd, 0, 0, payload, len, fds, nfds);
	if (e < 0)
		return e;
	e = cf_wait(c, m, c->timeout_ms);
	if (e < 0)
		return e;
	return m->hdr.msg_id == id ? 0 : -EPROTO;
}

void cf_msg_free(struct cf_msg *m)
{
	unsigned i;

	for (i = 0; i < m->nfds; i++)
		close(m->fds[i]);
	m->nfds = 0;
	free(m->payload);
	m->payload = NULL;
	m->len = 0;
}

bool cf_is_error(const struct cf_msg *m)
{
	return (m->hdr.flags & MU_FLAG_ERROR) != 0;
}

int cf_reply_errno(const struct cf_msg *m)
{
	if (!cf_is_error(m))
		return 0;
	return m->hdr.error ? -(int)m->hdr.error : -EIO;
}

const char *cf_conn_strerror(int err, int timeout_ms, char *buf, size_t len)
{
	switch (err) {
	case -ETIMEDOUT:
		snprintf(buf, len, "no reply within %d ms", timeout_ms);
		break;
	case -ECONNRESET:
	case -EPIPE:
		snprintf(buf, len, "server closed the connection");
		break;
	case -EBADMSG:
		snprintf(buf, len, "message header size below 16");
		break;
	case -EMSGSIZE:
		snprintf(buf, len,
			 "message larger than the checker's "
			 "max_data_xfer_size allows");
		break;
	default:
		snprintf(buf, len, "%s", strerror(-err));
	}
	return buf;
}
