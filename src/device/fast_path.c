/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The fast path for REGION_READ and REGION_WRITE, nearly all of a running
 * device's traffic (MMIO and config space accesses). It applies the same
 * payload checks as the general path (mu_check_region_access() is what
 * check.c's table calls too) and sends the same replies, but skips the
 * general reply descriptor: a read's reply is built in one stack buffer,
 * data behind header and request, and leaves with one sendmsg().
 * Anything out of the ordinary - fds attached, other flags, a connection
 * not ready, a large read, a payload that fails the checks - takes the
 * general path, which also logs and answers the error.
 */
#include <stddef.h>
#include <string.h>

#include "dev-internal.h"

/* Reads up to this size are answered from the stack. */
#define FAST_READ_MAX 256u

struct fast_reply {
	struct mu_hdr h;
	struct mu_region_access a;
	uint8_t data[FAST_READ_MAX];
};
/* Sent as one buffer: the wire layout, no padding between the parts. */
_Static_assert(offsetof(struct fast_reply, a) == sizeof(struct mu_hdr) &&
		       offsetof(struct fast_reply, data) ==
			       sizeof(struct mu_hdr) +
				       sizeof(struct mu_region_access),
	       "fast_reply must match the wire layout");

bool mu_fast_region(struct mu_dev *dev, struct mu_msg *m, int *ret)
{
	bool is_write = m->hdr.cmd == MU_CMD_REGION_WRITE;
	struct fast_reply rep;
	void *data;
	int err, sr;

	if (mu_check_region_access(m, &dev->wlim, is_write) < 0)
		return false;
	memcpy(&rep.a, m->payload, sizeof(rep.a));
	if (!is_write && rep.a.count > FAST_READ_MAX)
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
