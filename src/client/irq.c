/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Interrupts through DEVICE_SET_IRQS: eventfds per vector (sent in
 * batches of at most the server's max_msg_fds; a -1 entry de-assigns its
 * vector), mask/unmask, trigger, disable.
 */
#include <errno.h>
#include <fcntl.h>

#include "client-internal.h"

static int set_irqs(struct mu_client *c, uint32_t flags, unsigned index,
		    uint32_t start, uint32_t count, const int *fds,
		    unsigned nfds)
{
	struct mu_irq_set req = {
		.argsz = sizeof(req),
		.flags = flags,
		.index = index,
		.start = start,
		.count = count,
	};
	struct iovec iov = {&req, sizeof(req)}, riov = {NULL, 0};
	struct mu_call call = {
		.cmd = MU_CMD_DEVICE_SET_IRQS,
		.iov = &iov,
		.iovcnt = 1,
		.fds = fds,
		.nfds = nfds,
		.riov = &riov,
		.riovcnt = 1,
	};

	return mu_rpc_call(c, &call);
}

MU_EXPORT int mu_client_irq_set_eventfds(mu_client_t *c, unsigned index,
					 uint32_t start, uint32_t count,
					 const int *fds)
{
	const uint32_t ev = MU_IRQ_SET_DATA_EVENTFD | MU_IRQ_SET_ACTION_TRIGGER;
	uint32_t i = 0, maxfds;
	int r = 0;

	if (!c || start + count < start)
		return -EINVAL;
	if (count == 0)
		return mu_client_irq_disable(c, index);
	maxfds = c->sess.max_msg_fds;
	if (maxfds > MU_MAX_FDS_LIMIT)
		maxfds = MU_MAX_FDS_LIMIT;
	/* Bad fds would make sendmsg fail after nothing was sent, but we
	 * could not tell; refuse them up front. */
	for (i = 0; fds && i < count; i++)
		if (fds[i] >= 0 && fcntl(fds[i], F_GETFD) < 0)
			return -EBADF;
	i = 0;
	while (r == 0 && i < count) {
		uint32_t n = 0;

		if (!fds || fds[i] < 0) {
			/* A run of de-assigned vectors: no fds. */
			while (i + n < count && (!fds || fds[i + n] < 0))
				n++;
			r = set_irqs(c, ev, index, start + i, n, NULL, 0);
		} else {
			if (maxfds == 0)
				return -EOPNOTSUPP;
			while (i + n < count && n < maxfds && fds[i + n] >= 0)
				n++;
			r = set_irqs(c, ev, index, start + i, n, fds + i, n);
		}
		i += n;
	}
	return r;
}

MU_EXPORT int mu_client_irq_disable(mu_client_t *c, unsigned index)
{
	if (!c)
		return -EINVAL;
	/* count 0 with DATA_NONE disables the whole index (spec). */
	return set_irqs(c, MU_IRQ_SET_DATA_NONE | MU_IRQ_SET_ACTION_TRIGGER,
			index, 0, 0, NULL, 0);
}

MU_EXPORT int mu_client_irq_mask(mu_client_t *c, unsigned index, uint32_t start,
				 uint32_t count, bool mask)
{
	if (!c || count == 0 || start + count < start)
		return -EINVAL;
	return set_irqs(c,
			MU_IRQ_SET_DATA_NONE |
				(mask ? MU_IRQ_SET_ACTION_MASK
				      : MU_IRQ_SET_ACTION_UNMASK),
			index, start, count, NULL, 0);
}

MU_EXPORT int mu_client_irq_trigger(mu_client_t *c, unsigned index,
				    uint32_t start, uint32_t count)
{
	if (!c || count == 0 || start + count < start)
		return -EINVAL;
	return set_irqs(c, MU_IRQ_SET_DATA_NONE | MU_IRQ_SET_ACTION_TRIGGER,
			index, start, count, NULL, 0);
}
