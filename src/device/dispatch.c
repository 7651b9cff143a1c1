/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The dispatch table: command number -> {handler, name, needs quiesce}.
 * Every message passes mu_check_command() first, so handlers see payloads
 * whose sizes and counts are already consistent. Handlers return 0 with a
 * reply described in struct mu_reply, or a negative errno that becomes an
 * error reply; NO_REPLY commands never get a reply, not even an error.
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "commands.h"
#include "dev-internal.h"

/* The handlers, from the one command list (commands.h) that also gives
 * wire/check.c its rules: a command is validated and served, or neither. */
#define HANDLER(id, min_len, max_fds, check, handler, flags)                   \
	[MU_CMD_##id] = handler,

static const mu_handler_fn handlers[MU_CMD_MAX] = {MU_COMMANDS(HANDLER)};

#undef HANDLER

void *mu_reply_inline(struct mu_reply *r, size_t len)
{
	r->iov[0].iov_base = r->buf;
	r->iov[0].iov_len = len;
	r->iovcnt = 1;
	return r->buf;
}

void *mu_reply_alloc(struct mu_reply *r, size_t len)
{
	if (len <= sizeof(r->buf))
		return mu_reply_inline(r, len);
	r->heap = malloc(len);
	if (!r->heap)
		return NULL;
	r->iov[0].iov_base = r->heap;
	r->iov[0].iov_len = len;
	r->iovcnt = 1;
	return r->heap;
}

int mu_reply_refused(struct mu_dev *dev, const struct mu_hdr *h, int err)
{
	bool early = dev->conn == MU_CONN_NEGOTIATING;

	mu_log(dev, MU_LOG_WARN, "%s (id %u): refused: %s", mu_cmd_name(h->cmd),
	       h->msg_id, strerror(-err));
	if ((h->flags & MU_FLAG_TYPE_MASK) != MU_FLAG_TYPE_COMMAND ||
	    (h->flags & MU_FLAG_NO_REPLY))
		return early ? -ECONNABORTED : 0;
	if (mu_chan_send_error(&dev->chan, h, err) < 0)
		return -EPIPE;
	/* Before VERSION the client gets one chance. */
	return early ? -ECONNABORTED : 0;
}

int mu_send_reply(struct mu_dev *dev, const struct mu_msg *m,
		  struct mu_reply *r, int err)
{
	struct mu_hdr h;

	if (dev->conn == MU_CONN_DRAINING)
		return 0; /* nobody to answer */
	if (m->hdr.flags & MU_FLAG_NO_REPLY) {
		if (err)
			mu_log(dev, MU_LOG_WARN, "%s (id %u, no reply): %s",
			       mu_cmd_name(m->hdr.cmd), m->hdr.msg_id,
			       strerror(-err));
		return 0;
	}
	if (err) {
		mu_log(dev, MU_LOG_DEBUG, "%s (id %u): %s",
		       mu_cmd_name(m->hdr.cmd), m->hdr.msg_id, strerror(-err));
		return mu_chan_send_error(&dev->chan, &m->hdr, err);
	}
	h.msg_id = m->hdr.msg_id;
	h.cmd = m->hdr.cmd;
	h.flags = MU_FLAG_TYPE_REPLY;
	h.error = 0;
	return mu_chan_send(&dev->chan, &h, r->iov, r->iovcnt, r->fds, r->nfds);
}

int mu_reply_sent_slow(struct mu_dev *dev, const struct mu_msg *m, int sr)
{
	if (sr == -EPIPE || sr == -ECONNRESET) {
		/* The client is gone, but what it sent before going is
		 * still to be done, in order: go on reading until EOF. */
		if (dev->conn == MU_CONN_READY)
			mu_conn_set(dev, MU_CONN_DRAINING, "a reply failed");
		return 0;
	}
	if (sr < 0)
		mu_log(dev, MU_LOG_WARN, "sending %s reply: %s",
		       mu_cmd_name(m->hdr.cmd), strerror(-sr));
	return sr < 0 ? sr : 0;
}

/* Reads up to this size are answered from the stack. */
#define SMALL_READ_MAX 256u

struct small_reply {
	struct mu_hdr h;
	struct mu_region_access a;
	uint8_t data[SMALL_READ_MAX];
};
/* Sent as one buffer: the wire layout, no padding between the parts. */
_Static_assert(offsetof(struct small_reply, a) == sizeof(struct mu_hdr) &&
		       offsetof(struct small_reply, data) ==
			       sizeof(struct mu_hdr) +
				       sizeof(struct mu_region_access),
	       "small_reply must match the wire layout");

/*
 * A plain REGION_READ/WRITE (no flags but NO_REPLY, no fds) on a ready
 * connection: nearly all traffic. Its payload check is the one
 * mu_check_command() would apply (the same inline function); a reply of
 * up to SMALL_READ_MAX bytes is built on the stack and sent as one
 * buffer. false: not this case, serve it the general way.
 */
static int finish(struct mu_dev *dev, struct mu_msg *m, struct mu_reply *r,
		  int err);

static void reply_init(struct mu_reply *r)
{
	r->iovcnt = 0;
	r->nfds = 0;
	r->fds = NULL;
	r->own_fd = -1;
	r->close_conn = false;
	r->heap = NULL;
}

static bool region_small(struct mu_dev *dev, struct mu_msg *m, int *ret)
{
	bool is_write = m->hdr.cmd == MU_CMD_REGION_WRITE;
	struct small_reply rep;
	void *data;
	int err, sr;

	if ((m->hdr.cmd != MU_CMD_REGION_READ &&
	     m->hdr.cmd != MU_CMD_REGION_WRITE) ||
	    (m->hdr.flags & ~MU_FLAG_NO_REPLY) || m->nfds ||
	    mu_check_region_access(m, &dev->wlim, is_write) < 0)
		return false;
	memcpy(&rep.a, m->payload, sizeof(rep.a));
	if (!is_write && rep.a.count > SMALL_READ_MAX)
		return false;
	data = is_write ? (void *)(m->payload + sizeof(rep.a)) : rep.data;
	err = mu_region_access(dev, rep.a.region, rep.a.offset, data,
			       rep.a.count, is_write);
	if (__builtin_expect(dev->reset_due != 0, 0) && is_write && err == 0) {
		/* A config write asked for a reset: the general tail. */
		struct mu_reply r;

		reply_init(&r);
		memcpy(mu_reply_inline(&r, sizeof(rep.a)), &rep.a,
		       sizeof(rep.a));
		*ret = finish(dev, m, &r, 0);
		return true;
	}
	if (err < 0 || (m->hdr.flags & MU_FLAG_NO_REPLY)) {
		sr = mu_send_reply(dev, m, NULL, err);
	} else {
		rep.h.msg_id = m->hdr.msg_id;
		rep.h.cmd = m->hdr.cmd;
		rep.h.flags = MU_FLAG_TYPE_REPLY;
		rep.h.error = 0;
		sr = mu_chan_send_flat(&dev->chan, &rep,
				       sizeof(rep.h) + sizeof(rep.a) +
					       (is_write ? 0 : rep.a.count));
	}
	*ret = mu_reply_sent(dev, m, sr);
	return true;
}

/* A negotiated connection's command: check it, quiesce the device if the
 * command needs it (1: parked, it runs again once quiesced), run it. */
static int run_command(struct mu_dev *dev, struct mu_msg *m, struct mu_reply *r)
{
	int err = mu_check_command(m, &dev->wlim);

	if (err < 0)
		return err;
	if (m->hdr.cmd == MU_CMD_VERSION)
		return -EINVAL; /* negotiated already */
	if (!handlers[m->hdr.cmd])
		return -ENOSYS;
	if (mu_cmd_flags(m->hdr.cmd) & MU_OP_QUIESCE) {
		err = mu_quiesce_for(dev, m);
		if (err != 0)
			return err;
	}
	return handlers[m->hdr.cmd](dev, m, r);
}

/* Before VERSION nothing else is understood, and a failed VERSION ends
 * the connection. */
static int negotiate(struct mu_dev *dev, struct mu_msg *m, struct mu_reply *r)
{
	int err = -EINVAL;

	if (m->hdr.cmd != MU_CMD_VERSION)
		mu_log(dev, MU_LOG_WARN, "first command must be VERSION");
	else
		err = mu_check_command(m, &dev->wlim);
	if (err == 0)
		err = mu_h_version(dev, m, r);
	if (err < 0)
		r->close_conn = true;
	return err;
}

/*
 * After a command ran (err: its result; 1 parked): a reset a config write
 * asked for runs first, holding the reply until the device is reset; then
 * the reply goes out and what it held is freed.
 */
static int finish(struct mu_dev *dev, struct mu_msg *m, struct mu_reply *r,
		  int err)
{
	int sr = 0;

	mu_msg_close_fds(m);
	if (err == 1)
		return 0; /* parked until the device is quiesced */
	/* Nested (a handler waits for DMA): after that handler, unheld. */
	if (dev->reset_due && err == 0 && !dev->nest &&
	    mu_reset_run_due(dev, m, r) == 1)
		goto out; /* the parked reset sends the reply */
	sr = mu_send_reply(dev, m, r, err);
out:
	if (r->own_fd >= 0)
		close(r->own_fd);
	if (r->heap)
		free(r->heap);
	sr = mu_reply_sent(dev, m, sr);
	if (sr < 0)
		return sr;
	return r->close_conn ? -ECONNABORTED : 0;
}

int mu_dispatch(struct mu_dev *dev, struct mu_msg *m)
{
	struct mu_reply r;
	int err, sr;

	if ((m->hdr.flags & MU_FLAG_TYPE_MASK) == MU_FLAG_TYPE_REPLY) {
		/* The answer to a device thread's DMA request (or stray). */
		mu_dma_route_reply(dev, m);
		return 0;
	}
	switch (dev->conn) {
	case MU_CONN_READY:
		if (region_small(dev, m, &sr))
			return sr;
		reply_init(&r);
		err = run_command(dev, m, &r);
		break;
	case MU_CONN_NEGOTIATING:
		reply_init(&r);
		err = negotiate(dev, m, &r);
		break;
	default: /* DRAINING, BROKEN: run what was sent; no reply goes out */
		reply_init(&r);
		err = run_command(dev, m, &r);
		break;
	}
	return finish(dev, m, &r, err);
}
