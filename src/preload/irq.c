/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * irq.c - VFIO_DEVICE_SET_IRQS on the fake device fd.
 *
 * QEMU without KVM wires INTx, MSI and MSI-X to eventfds it polls and
 * unmasks INTx with DATA_NONE|UNMASK after the guest's EOI; all of that
 * maps onto vfio-user's SET_IRQS. An eventfd entry of -1 means "no
 * eventfd for this vector" in VFIO, which vfio-user cannot carry (fds
 * travel as SCM_RIGHTS): those vectors get the group's sink eventfd.
 */
#include <errno.h>
#include <linux/vfio.h>
#include <stdlib.h>
#include <string.h>

#include "preload.h"

/* One action on [start, start+count) without data. */
static int mp_irq_action(struct mp_group *g, unsigned index, uint32_t action,
			 uint32_t start, uint32_t count)
{
	switch (action) {
	case VFIO_IRQ_SET_ACTION_TRIGGER:
		if (!count)
			return mu_client_irq_disable(g->client, index);
		return mu_client_irq_trigger(g->client, index, start, count);
	case VFIO_IRQ_SET_ACTION_MASK:
		return mu_client_irq_mask(g->client, index, start, count, true);
	default:
		return mu_client_irq_mask(g->client, index, start, count,
					  false);
	}
}

static int mp_irq_eventfds(struct mp_group *g, const struct vfio_irq_set *s,
			   const uint8_t *data)
{
	struct mu_irq_set ms;
	int32_t *fds;
	int ret;

	if (!s->count)
		return s->flags & VFIO_IRQ_SET_ACTION_TRIGGER
			       ? mu_client_irq_disable(g->client, s->index)
			       : -EINVAL;
	fds = malloc(s->count * sizeof(*fds));
	if (!fds)
		return -ENOMEM;
	memcpy(fds, data, s->count * sizeof(*fds));
	for (uint32_t i = 0; i < s->count; i++)
		if (fds[i] < 0)
			fds[i] = g->sink_fd;
	if (s->flags & VFIO_IRQ_SET_ACTION_TRIGGER) {
		ret = mu_client_irq_set_eventfds(g->client, s->index, s->start,
						 s->count, fds);
	} else {
		/* Mask/unmask eventfds (KVM's resamplefd): pass as is. */
		memset(&ms, 0, sizeof(ms));
		ms.argsz = sizeof(ms);
		ms.flags = s->flags;
		ms.index = s->index;
		ms.start = s->start;
		ms.count = s->count;
		ret = (int)mu_client_request(g->client, MU_CMD_DEVICE_SET_IRQS,
					     &ms, sizeof(ms), fds, s->count,
					     NULL, 0, NULL, NULL);
		if (ret > 0)
			ret = 0;
	}
	free(fds);
	return ret;
}

int mp_irq_set(struct mp_group *g, unsigned long arg)
{
	const size_t minsz = sizeof(struct vfio_irq_set);
	const uint32_t known =
		VFIO_IRQ_SET_DATA_TYPE_MASK | VFIO_IRQ_SET_ACTION_TYPE_MASK;
	struct mu_device_info info;
	struct vfio_irq_set s;
	uint32_t dtype, action;
	const uint8_t *data = (const uint8_t *)arg + minsz;
	size_t dsz = 0;
	int ret;

	memcpy(&s, (void *)arg, sizeof(s.argsz));
	if (s.argsz < minsz)
		return -EINVAL;
	memcpy(&s, (void *)arg, minsz);
	dtype = s.flags & VFIO_IRQ_SET_DATA_TYPE_MASK;
	action = s.flags & VFIO_IRQ_SET_ACTION_TYPE_MASK;
	if ((s.flags & ~known) || !dtype || (dtype & (dtype - 1)) || !action ||
	    (action & (action - 1)))
		return -EINVAL;
	if (dtype == VFIO_IRQ_SET_DATA_BOOL)
		dsz = s.count;
	else if (dtype == VFIO_IRQ_SET_DATA_EVENTFD)
		dsz = (size_t)s.count * sizeof(int32_t);
	if (s.argsz - minsz < dsz)
		return -EINVAL;
	ret = mp_group_device_info(g, &info);
	if (ret < 0)
		return ret;
	if (s.index >= info.num_irqs) {
		/* Indexes we added for QEMU's sake have no vectors. */
		if (s.index < MP_MIN_IRQS && dtype == VFIO_IRQ_SET_DATA_NONE &&
		    !s.count)
			return 0;
		return -EINVAL;
	}
	mp_debug("SET_IRQS index %u flags 0x%x start %u count %u", s.index,
		 s.flags, s.start, s.count);
	if (atomic_load(&g->dead))
		return 0;

	if (dtype == VFIO_IRQ_SET_DATA_NONE) {
		ret = mp_irq_action(g, s.index, action, s.start, s.count);
	} else if (dtype == VFIO_IRQ_SET_DATA_BOOL) {
		ret = 0;
		for (uint32_t i = 0; i < s.count && ret >= 0; i++)
			if (data[i])
				ret = mp_irq_action(g, s.index, action,
						    s.start + i, 1);
	} else {
		ret = mp_irq_eventfds(g, &s, data);
	}
	if (ret < 0 && mp_group_failed(g, ret))
		ret = 0;
	return ret;
}
