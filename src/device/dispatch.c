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

#include "dev-internal.h"

struct mu_op {
	mu_handler_fn fn;
	const char *name;
	bool needs_quiesce; /* the device must stop DMA around it */
	/* May run while a handler on the serving thread waits for a DMA
	 * reply (docs/protocol.md 7): what a vCPU may be blocked on. Never
	 * what changes the maps, resets or migrates the device. */
	bool nestable;
};

static const struct mu_op ops[MU_CMD_MAX] = {
	[MU_CMD_VERSION] = {mu_h_version, "VERSION", false, false},
	[MU_CMD_DMA_MAP] = {mu_h_dma_map, "DMA_MAP", true, false},
	[MU_CMD_DMA_UNMAP] = {mu_h_dma_unmap, "DMA_UNMAP", true, false},
	[MU_CMD_DEVICE_GET_INFO] = {mu_h_get_info, "DEVICE_GET_INFO", false,
				    true},
	[MU_CMD_DEVICE_GET_REGION_INFO] = {mu_h_region_info,
					   "DEVICE_GET_REGION_INFO", false,
					   true},
	[MU_CMD_DEVICE_GET_REGION_IO_FDS] = {mu_h_io_fds,
					     "DEVICE_GET_REGION_IO_FDS", false,
					     true},
	[MU_CMD_DEVICE_GET_IRQ_INFO] = {mu_h_irq_info, "DEVICE_GET_IRQ_INFO",
					false, true},
	[MU_CMD_DEVICE_SET_IRQS] = {mu_h_set_irqs, "DEVICE_SET_IRQS", false,
				    true},
	[MU_CMD_REGION_READ] = {mu_h_region_read, "REGION_READ", false, true},
	[MU_CMD_REGION_WRITE] = {mu_h_region_write, "REGION_WRITE", false,
				 true},
	[MU_CMD_DEVICE_RESET] = {mu_h_reset, "DEVICE_RESET", true, false},
	[MU_CMD_REGION_WRITE_MULTI] = {mu_h_write_multi, "REGION_WRITE_MULTI",
				       false, true},
	[MU_CMD_DEVICE_FEATURE] = {mu_h_feature, "DEVICE_FEATURE", false,
				   false},
	[MU_CMD_MIG_DATA_READ] = {mu_h_mig_read, "MIG_DATA_READ", false, false},
	[MU_CMD_MIG_DATA_WRITE] = {mu_h_mig_write, "MIG_DATA_WRITE", false,
				   false},
};

bool mu_cmd_nestable(unsigned cmd)
{
	return cmd < MU_CMD_MAX && ops[cmd].nestable;
}

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

static const char *op_name(unsigned cmd)
{
	return cmd < MU_CMD_MAX && ops[cmd].name ? ops[cmd].name : "UNKNOWN";
}

int mu_reply_refused(struct mu_dev *dev, const struct mu_hdr *h, int err)
{
	bool early = dev->conn != MU_CONN_READY;

	mu_log(dev, MU_LOG_WARN, "%s (id %u): refused: %s", op_name(h->cmd),
	       h->msg_id, strerror(-err));
	if ((h->flags & MU_FLAG_TYPE_MASK) != MU_FLAG_TYPE_COMMAND ||
	    (h->flags & MU_FLAG_NO_REPLY))
		return early ? -ECONNABORTED : 0;
	if (mu_chan_send_error(&dev->chan, h, err) < 0)
		return -EPIPE;
	/* Before VERSION the client gets one chance. */
	return early ? -ECONNABORTED : 0;
}

/* Quiesce before a command that needs it; 1 when parked (async). Also
 * used by handlers whose need depends on the payload (a migration state
 * change): they run again, quiesced, once the device is. */
int mu_quiesce_for(struct mu_dev *dev, struct mu_msg *m)
{
	int r;

	if (!dev->cb.quiesce || dev->quiesced)
		return 0;
	r = dev->cb.quiesce(dev->opaque);
	if (r == -EBUSY) {
		r = mu_park(dev, m);
		return r < 0 ? r : 1;
	}
	return r;
}

static int run_op(struct mu_dev *dev, struct mu_msg *m, struct mu_reply *r)
{
	const struct mu_op *op;
	int err, q;

	if (dev->conn != MU_CONN_READY && m->hdr.cmd != MU_CMD_VERSION) {
		mu_log(dev, MU_LOG_WARN, "first command must be VERSION");
		r->close_conn = true;
		return -EINVAL;
	}
	if (dev->conn == MU_CONN_READY && m->hdr.cmd == MU_CMD_VERSION)
		return -EINVAL; /* negotiated already */
	op = &ops[m->hdr.cmd];
	if (!op->fn)
		return -ENOSYS;
	if (!op->needs_quiesce || dev->quiesced)
		return op->fn(dev, m, r);
	q = mu_quiesce_for(dev, m);
	if (q != 0)
		return q; /* 1: parked, no reply yet */
	dev->quiesced = true;
	err = op->fn(dev, m, r);
	dev->quiesced = false;
	return err;
}

int mu_send_reply(struct mu_dev *dev, const struct mu_msg *m,
		  struct mu_reply *r, int err)
{
	struct mu_hdr h;

	if (dev->peer_gone)
		return 0; /* nobody to answer; see mu_dispatch() */
	if (m->hdr.flags & MU_FLAG_NO_REPLY) {
		if (err)
			mu_log(dev, MU_LOG_WARN, "%s (id %u, no reply): %s",
			       op_name(m->hdr.cmd), m->hdr.msg_id,
			       strerror(-err));
		return 0;
	}
	if (err) {
		mu_log(dev, MU_LOG_DEBUG, "%s (id %u): %s", op_name(m->hdr.cmd),
		       m->hdr.msg_id, strerror(-err));
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
		dev->peer_gone = true;
		return 0;
	}
	if (sr < 0)
		mu_log(dev, MU_LOG_WARN, "sending %s reply: %s",
		       op_name(m->hdr.cmd), strerror(-sr));
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

static bool region_small(struct mu_dev *dev, struct mu_msg *m, int *ret)
{
	bool is_write = m->hdr.cmd == MU_CMD_REGION_WRITE;
	struct small_reply rep;
	void *data;
	int err, sr;

	memcpy(&rep.a, m->payload, sizeof(rep.a));
	if (!is_write && rep.a.count > SMALL_READ_MAX)
		return false;
	data = is_write ? (void *)(m->payload + sizeof(rep.a)) : rep.data;
	err = mu_region_access(dev, rep.a.region, rep.a.offset, data,
			       rep.a.count, is_write);
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

int mu_dispatch(struct mu_dev *dev, struct mu_msg *m)
{
	struct mu_reply r;
	int err, sr;

	if ((m->hdr.flags & MU_FLAG_TYPE_MASK) == MU_FLAG_TYPE_REPLY) {
		/* The answer to a device thread's DMA request (or stray). */
		mu_dma_route_reply(dev, m);
		return 0;
	}
	/* Nearly all traffic: a plain region access on a ready connection.
	 * Its checks are the ones mu_check_command() would apply (the same
	 * inline function), run once; a small reply leaves from the stack. */
	if ((m->hdr.cmd == MU_CMD_REGION_READ ||
	     m->hdr.cmd == MU_CMD_REGION_WRITE) &&
	    !(m->hdr.flags & ~MU_FLAG_NO_REPLY) && !m->nfds &&
	    dev->conn == MU_CONN_READY && !dev->peer_gone) {
		err = mu_check_region_access(m, &dev->wlim,
					     m->hdr.cmd == MU_CMD_REGION_WRITE);
		if (err == 0 && region_small(dev, m, &sr))
			return sr;
	}
	r.iovcnt = 0;
	r.nfds = 0;
	r.fds = NULL;
	r.own_fd = -1;
	r.close_conn = false;
	r.heap = NULL;
	if (dev->conn != MU_CONN_READY && m->hdr.cmd != MU_CMD_VERSION) {
		/* Before negotiation nothing else is understood. */
		mu_log(dev, MU_LOG_WARN, "first command must be VERSION");
		err = -EINVAL;
		r.close_conn = true;
	} else {
		err = mu_check_command(m, &dev->wlim);
		if (err == 0)
			err = run_op(dev, m, &r);
		else if (dev->conn != MU_CONN_READY)
			r.close_conn = true;
	}
	mu_msg_close_fds(m);
	if (err == 1)
		return 0; /* parked until the device is quiesced */
	sr = mu_send_reply(dev, m, &r, err);
	if (r.own_fd >= 0)
		close(r.own_fd);
	if (r.heap)
		free(r.heap);
	sr = mu_reply_sent(dev, m, sr);
	if (sr < 0)
		return sr;
	return r.close_conn ? -ECONNABORTED : 0;
}
