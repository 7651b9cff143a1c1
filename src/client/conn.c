/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Connection lifecycle: connect or adopt a socket, negotiate VERSION and
 * capabilities (incl. the twin socket), logging, destroy.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "client-internal.h"

void mu_client_log(struct mu_client *c, int level, const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	if (level > c->opts.log_level)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (c->opts.log)
		c->opts.log(c->opts.log_opaque, level, buf);
	else
		fprintf(stderr, "libmuser-client: %s\n", buf);
}

void mu_client_kill_locked(struct mu_client *c, int err)
{
	struct mu_req *r;

	if (!c->dead) {
		__atomic_store_n(&c->dead, err < 0 ? err : -ECONNRESET,
				 __ATOMIC_RELAXED);
		mu_client_log(c, MU_LOG_WARN, "connection closed: %s",
			      strerror(-c->dead));
		/* Wake a leader blocked in recvmsg and fail further sends. */
		shutdown(c->chan.fd, SHUT_RDWR);
		if (c->has_twin)
			shutdown(c->twin.fd, SHUT_RDWR);
	}
	for (r = c->pending; r; r = r->next) {
		r->done = true;
		r->result = c->dead;
		pthread_cond_signal(&r->cond);
	}
	c->pending = NULL;
}

void mu_client_kill(struct mu_client *c, int err)
{
	pthread_mutex_lock(&c->lock);
	mu_client_kill_locked(c, err);
	pthread_mutex_unlock(&c->lock);
}

bool mu_client_deadline(const struct mu_client *c, struct timespec *ts)
{
	int t = __atomic_load_n(&c->timeout_ms, __ATOMIC_RELAXED);

	if (t < 0)
		return false;
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += t / 1000;
	ts->tv_nsec += (long)(t % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
	return true;
}

static void ms_to_tv(int ms, struct timeval *tv)
{
	if (ms < 0)
		ms = 0; /* 0 = block forever */
	tv->tv_sec = ms / 1000;
	tv->tv_usec = (ms % 1000) * 1000;
}

static int apply_timeouts(struct mu_client *c)
{
	struct timeval tv;

	ms_to_tv(c->timeout_ms, &tv);
	if (setsockopt(c->chan.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) <
		    0 ||
	    setsockopt(c->chan.fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) <
		    0)
		return -errno;
	if (c->has_twin && setsockopt(c->twin.fd, SOL_SOCKET, SO_SNDTIMEO, &tv,
				      sizeof(tv)) < 0)
		return -errno;
	c->cur_rcvtimeo = c->timeout_ms;
	return 0;
}

static int norm_timeout(int ms)
{
	return ms == 0 ? MU_CLIENT_DEFAULT_TIMEOUT_MS : (ms < 0 ? -1 : ms);
}

MU_EXPORT int mu_client_set_timeout(mu_client_t *c, int timeout_ms)
{
	struct timeval tv;

	if (!c)
		return -EINVAL;
	__atomic_store_n(&c->timeout_ms, norm_timeout(timeout_ms),
			 __ATOMIC_RELAXED);
	/* The receive timeout is adjusted by the leader as needed; sends
	 * take the new value now. */
	ms_to_tv(c->timeout_ms, &tv);
	if (setsockopt(c->chan.fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) <
	    0)
		return -errno;
	if (c->has_twin)
		setsockopt(c->twin.fd, SOL_SOCKET, SO_SNDTIMEO, &tv,
			   sizeof(tv));
	return 0;
}

/* ---- negotiation ---------------------------------------------------- */

static int take_twin(struct mu_client *c, const struct mu_caps *caps, int *fds,
		     unsigned nfds)
{
	int fd, r;

	if (!caps->twin_socket) {
		/* Not enabled: the server must not send us anything. */
		return nfds ? -EPROTO : 0;
	}
	if (c->opts.no_twin_socket) {
		mu_client_log(c, MU_LOG_ERR,
			      "server enabled a twin socket we did not offer");
		return -EPROTO;
	}
	if (caps->twin_fd_index < 0 || (unsigned)caps->twin_fd_index >= nfds ||
	    nfds != 1) {
		mu_client_log(c, MU_LOG_ERR,
			      "inconsistent twin_socket in VERSION reply "
			      "(fd_index %d, %u fds)",
			      caps->twin_fd_index, nfds);
		return -EPROTO;
	}
	fd = fds[caps->twin_fd_index];
	fds[caps->twin_fd_index] = -1;
	r = mu_sock_check_adoptable(fd);
	if (r < 0) {
		close(fd);
		mu_client_log(c, MU_LOG_ERR, "twin fd is not a UNIX socket");
		return -EPROTO;
	}
	r = mu_chan_init(&c->twin, fd, c->our_xfer + MU_MSG_OVERHEAD, 0);
	c->twin.max_wait_ms = MU_CLIENT_TRICKLE_MS;
	if (r < 0) {
		close(fd);
		return r;
	}
	c->has_twin = true;
	return 0;
}

static int negotiate(struct mu_client *c)
{
	struct mu_caps ours, theirs;
	struct mu_version v = {MU_PROTO_MAJOR, MU_PROTO_MINOR};
	char json[512];
	uint8_t *reply;
	int fds[4] = {-1, -1, -1, -1};
	struct iovec iov[2], riov;
	struct mu_call call = {0};
	uint16_t major, minor;
	unsigned i;
	int n, r;

	mu_caps_defaults(&ours);
	ours.max_msg_fds = c->our_fds;
	ours.max_data_xfer_size = c->our_xfer;
	ours.max_dma_maps = MU_DEFAULT_MAX_DMA_MAPS;
	ours.pgsizes = MU_DEFAULT_PGSIZES;
	ours.twin_socket = !c->opts.no_twin_socket;
	ours.write_multiple = !c->opts.no_write_multiple;
	n = mu_caps_format(&ours, json, sizeof(json));
	if (n < 0)
		return n;
	reply = malloc(sizeof(v) + MU_CAPS_JSON_MAX);
	if (!reply)
		return -ENOMEM;
	iov[0] = (struct iovec){&v, sizeof(v)};
	iov[1] = (struct iovec){json, (size_t)n};
	riov = (struct iovec){reply, sizeof(v) + MU_CAPS_JSON_MAX};
	call.cmd = MU_CMD_VERSION;
	call.iov = iov;
	call.iovcnt = 2;
	call.riov = &riov;
	call.riovcnt = 1;
	call.rmin = sizeof(v);
	call.rfds = fds;
	call.rfds_max = 4;
	r = mu_rpc_call(c, &call);
	if (r < 0)
		goto out;
	r = mu_version_parse(reply, call.rlen, &major, &minor, &theirs);
	if (r < 0) {
		mu_client_log(c, MU_LOG_ERR, "bad VERSION reply: %s",
			      strerror(-r));
		r = -EBADMSG;
		goto out;
	}
	if (major != MU_PROTO_MAJOR || minor > MU_PROTO_MINOR) {
		mu_client_log(c, MU_LOG_ERR,
			      "server answered version %u.%u to our %u.%u",
			      major, minor, MU_PROTO_MAJOR, MU_PROTO_MINOR);
		r = -EPROTO;
		goto out;
	}
	r = take_twin(c, &theirs, fds, call.nrfds);
	if (r < 0)
		goto out;
	c->sess.major = major;
	c->sess.minor = minor;
	c->sess.max_msg_fds = theirs.max_msg_fds;
	c->sess.max_data_xfer_size = theirs.max_data_xfer_size < c->our_xfer
					     ? theirs.max_data_xfer_size
					     : c->our_xfer;
	c->sess.max_dma_maps = theirs.max_dma_maps;
	c->sess.pgsizes = theirs.pgsizes;
	c->sess.twin_socket = c->has_twin;
	c->sess.write_multiple =
		theirs.write_multiple && !c->opts.no_write_multiple;
	mu_chan_set_limits(&c->chan, (size_t)c->our_xfer + MU_MSG_OVERHEAD,
			   c->our_fds);
	mu_client_log(c, MU_LOG_INFO,
		      "negotiated %u.%u: max_msg_fds %u max_data_xfer_size %u "
		      "twin %d write_multiple %d",
		      major, minor, c->sess.max_msg_fds,
		      c->sess.max_data_xfer_size, c->sess.twin_socket,
		      c->sess.write_multiple);
out:
	for (i = 0; i < call.nrfds; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	free(reply);
	if (r < 0)
		mu_client_kill(c, r);
	return r;
}

/* ---- create / destroy ----------------------------------------------- */

static void client_free(struct mu_client *c)
{
	mu_region_fini(c);
	mu_info_fini(c);
	mu_dma_fini(c);
	if (c->has_twin)
		mu_chan_fini(&c->twin);
	mu_chan_fini(&c->chan);
	pthread_rwlock_destroy(&c->dma_lock);
	pthread_condattr_destroy(&c->condattr);
	pthread_mutex_destroy(&c->send_lock);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

/* On failure fd is closed when own_fd, else left to the caller. */
static int client_new(struct mu_client **out, int fd, bool own_fd,
		      const struct mu_client_opts *opts)
{
	struct mu_client *c;
	unsigned i;
	int r;

	c = calloc(1, sizeof(*c));
	if (!c) {
		if (own_fd)
			close(fd);
		return -ENOMEM;
	}
	if (opts) {
		size_t n = opts->struct_size;

		if (n < sizeof(size_t)) {
			free(c);
			if (own_fd)
				close(fd);
			return -EINVAL;
		}
		memcpy(&c->opts, opts,
		       n < sizeof(c->opts) ? n : sizeof(c->opts));
	}
	c->opts.struct_size = sizeof(c->opts);
	if (!opts ||
	    opts->struct_size <= offsetof(struct mu_client_opts, log_level))
		c->opts.log_level = MU_LOG_WARN;
	c->timeout_ms = norm_timeout(c->opts.timeout_ms);
	c->our_xfer = c->opts.max_data_xfer_size ? c->opts.max_data_xfer_size
						 : MU_DEFAULT_MAX_DATA_XFER;
	if (c->our_xfer < 8)
		c->our_xfer = 8;
	/* Keep one message (data + fixed part) inside a u32 msg_size. */
	if (c->our_xfer > UINT32_MAX - MU_MSG_OVERHEAD)
		c->our_xfer = UINT32_MAX - MU_MSG_OVERHEAD;
	c->our_fds = c->opts.max_msg_fds ? c->opts.max_msg_fds
					 : MU_CLIENT_DEFAULT_MAX_FDS;
	if (c->our_fds > MU_MAX_FDS_LIMIT)
		c->our_fds = MU_MAX_FDS_LIMIT;
	for (i = 0; i < MU_CLIENT_TIMED_OUT_RING; i++)
		c->timed_out[i] = UINT32_MAX;
	c->twin.fd = -1;
	pthread_mutex_init(&c->lock, NULL);
	pthread_mutex_init(&c->send_lock, NULL);
	pthread_condattr_init(&c->condattr);
	pthread_condattr_setclock(&c->condattr, CLOCK_MONOTONIC);
	pthread_rwlock_init(&c->dma_lock, NULL);
	r = mu_chan_init(&c->chan, fd,
			 sizeof(struct mu_hdr) + sizeof(struct mu_version) +
				 MU_CAPS_JSON_MAX,
			 4);
	c->chan.max_wait_ms = MU_CLIENT_TRICKLE_MS; /* deadlines hold */
	if (r == 0)
		r = mu_fd_set_nonblock(fd, false);
	if (r == 0)
		r = apply_timeouts(c);
	if (r == 0)
		r = negotiate(c);
	if (r == 0 && c->has_twin)
		r = apply_timeouts(c); /* the twin socket needs its own */
	if (r < 0) {
		if (!own_fd)
			c->chan.fd = -1;
		else
			c->chan.fd = fd; /* also when mu_chan_init failed */
		client_free(c);
		return r;
	}
	*out = c;
	return 0;
}

MU_EXPORT int mu_client_connect(mu_client_t **out, const char *socket_path,
				const struct mu_client_opts *opts)
{
	int fd;

	if (!out || !socket_path)
		return -EINVAL;
	fd = mu_sock_connect(socket_path);
	if (fd < 0)
		return fd;
	return client_new(out, fd, true, opts);
}

MU_EXPORT int mu_client_adopt(mu_client_t **out, int fd,
			      const struct mu_client_opts *opts)
{
	int r;

	if (!out)
		return -EINVAL;
	r = mu_sock_check_adoptable(fd);
	if (r < 0)
		return r;
	return client_new(out, fd, false, opts);
}

MU_EXPORT void mu_client_destroy(mu_client_t *c)
{
	if (!c)
		return;
	/* Posted writes still batched are sent, not silently dropped. */
	pthread_mutex_lock(&c->send_lock);
	if (!c->dead && c->nwm)
		mu_rpc_flush_batch_locked(c);
	pthread_mutex_unlock(&c->send_lock);
	client_free(c);
}

MU_EXPORT int mu_client_get_session(mu_client_t *c,
				    struct mu_client_session *out)
{
	if (!c || !out)
		return -EINVAL;
	*out = c->sess;
	return 0;
}

MU_EXPORT bool mu_client_is_connected(mu_client_t *c)
{
	bool ok;

	if (!c)
		return false;
	pthread_mutex_lock(&c->lock);
	ok = !c->dead;
	pthread_mutex_unlock(&c->lock);
	return ok;
}

MU_EXPORT int mu_client_get_poll_fd(mu_client_t *c)
{
	if (!c)
		return -EINVAL;
	return c->has_twin ? c->twin.fd : c->chan.fd;
}
