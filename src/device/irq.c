/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Interrupts: per-index eventfds from SET_IRQS, masks, pending state, and
 * the device-side triggers. INTx is level-triggered and auto-masked; MSI
 * honours its per-vector mask bits in config space; MSI-X is in msix.c.
 * dev->lock guards all of it, so triggers are safe from any thread.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dev-internal.h"
#include "sandbox.h"

#define PCI_COMMAND_INTX_DISABLE 0x0400
#define PCI_STATUS_INTX 0x08

/*
 * O_NONBLOCK belongs to the open file, which the client shares and may
 * clear again; a counter it filled to the top would then block our write
 * (under dev->lock). Write only when the eventfd says it can take it: a
 * full counter means the interrupt is already pending anyway.
 */
int mu_irq_signal(int efd)
{
	struct pollfd p = {.fd = efd, .events = POLLOUT};
	uint64_t one = 1;

	if (poll(&p, 1, 0) != 1 || !(p.revents & POLLOUT))
		return 0;
	if (write(efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		return -errno;
	return 0;
}

MU_EXPORT int mu_dev_setup_irq(mu_dev_t *dev, unsigned index, uint32_t count)
{
	if (!dev || dev->realized || index >= MU_PCI_NUM_IRQS)
		return -EINVAL;
	if ((index == MU_PCI_INTX_IRQ_INDEX || index == MU_PCI_ERR_IRQ_INDEX ||
	     index == MU_PCI_REQ_IRQ_INDEX) &&
	    count > 1)
		return -EINVAL;
	/* MSI and MSI-X vector counts belong to their capabilities. */
	if ((index == MU_PCI_MSI_IRQ_INDEX && dev->msi.cap) ||
	    (index == MU_PCI_MSIX_IRQ_INDEX && dev->msix.cap))
		return count == dev->irqs[index].count ? 0 : -EINVAL;
	/* MSI-X vectors need the table and PBA the capability brings. */
	if (index == MU_PCI_MSIX_IRQ_INDEX && count)
		return -EINVAL;
	if (count > 2048)
		return -EINVAL;
	dev->irqs[index].count = count;
	if (index == MU_PCI_INTX_IRQ_INDEX && count && dev->cfg &&
	    !dev->cfg[0x3d])
		dev->cfg[0x3d] = 1; /* INTA# */
	return 0;
}

int mu_irq_realize(struct mu_dev *dev)
{
	unsigned i, j;

	for (i = 0; i < MU_PCI_NUM_IRQS; i++) {
		struct mu_irq_index *x = &dev->irqs[i];

		if (!x->count)
			continue;
		x->vec = calloc(x->count, sizeof(*x->vec));
		if (!x->vec)
			return -ENOMEM;
		for (j = 0; j < x->count; j++)
			x->vec[j].efd = -1;
	}
	return 0;
}

static void close_index_locked(struct mu_irq_index *x)
{
	uint32_t j;

	for (j = 0; j < x->count && x->vec; j++) {
		if (x->vec[j].efd >= 0)
			close(x->vec[j].efd);
		x->vec[j].efd = -1;
		x->vec[j].masked = false;
		x->vec[j].pending = false;
	}
}

void mu_irq_release(struct mu_dev *dev)
{
	unsigned i;

	pthread_mutex_lock(&dev->lock);
	for (i = 0; i < MU_PCI_NUM_IRQS; i++)
		close_index_locked(&dev->irqs[i]);
	pthread_mutex_unlock(&dev->lock);
}

void mu_irq_reset(struct mu_dev *dev)
{
	unsigned i, j;

	pthread_mutex_lock(&dev->lock);
	for (i = 0; i < MU_PCI_NUM_IRQS; i++)
		for (j = 0; dev->irqs[i].vec && j < dev->irqs[i].count; j++) {
			dev->irqs[i].vec[j].masked = false;
			dev->irqs[i].vec[j].pending = false;
		}
	dev->intx_level = false;
	pthread_mutex_unlock(&dev->lock);
	mu_msix_reset(dev);
}

void mu_irq_free(struct mu_dev *dev)
{
	unsigned i;

	mu_irq_release(dev);
	for (i = 0; i < MU_PCI_NUM_IRQS; i++) {
		free(dev->irqs[i].vec);
		dev->irqs[i].vec = NULL;
	}
}

/* ---- firing (dev->lock held) ----------------------------------------------
 */

static int fire_plain_locked(struct mu_irq_vec *v)
{
	if (v->masked) {
		v->pending = true;
		return 1;
	}
	if (v->efd < 0)
		return -ENOENT;
	v->pending = false;
	return mu_irq_signal(v->efd);
}

static int fire_intx_locked(struct mu_dev *dev)
{
	struct mu_irq_vec *v = &dev->irqs[MU_PCI_INTX_IRQ_INDEX].vec[0];
	int r;

	if (mu_cfg_get16(dev->cfg, 0x04) & PCI_COMMAND_INTX_DISABLE) {
		v->pending = true;
		return 1;
	}
	r = fire_plain_locked(v);
	if (r == 0)
		v->masked = true; /* auto-masked until the client unmasks */
	return r;
}

static unsigned msi_mask_off(const struct mu_dev *dev)
{
	return dev->msi.cap + (dev->msi.addr64 ? 16 : 12);
}

static int fire_msi_locked(struct mu_dev *dev, uint32_t vec)
{
	unsigned mo = msi_mask_off(dev);

	if (dev->msi.cap && dev->msi.pvm &&
	    (mu_cfg_get32(dev->cfg, mo) & (1u << vec))) {
		mu_cfg_set32(dev->cfg, mo + 4,
			     mu_cfg_get32(dev->cfg, mo + 4) | 1u << vec);
		return 1;
	}
	return fire_plain_locked(&dev->irqs[MU_PCI_MSI_IRQ_INDEX].vec[vec]);
}

void mu_msi_flush_locked(struct mu_dev *dev)
{
	unsigned mo = msi_mask_off(dev);
	uint32_t pend = mu_cfg_get32(dev->cfg, mo + 4);
	uint32_t mask = mu_cfg_get32(dev->cfg, mo);
	uint32_t i;

	for (i = 0; i < dev->msi.nvec; i++) {
		if (!(pend & (1u << i)) || (mask & (1u << i)))
			continue;
		pend &= ~(1u << i);
		fire_plain_locked(&dev->irqs[MU_PCI_MSI_IRQ_INDEX].vec[i]);
	}
	mu_cfg_set32(dev->cfg, mo + 4, pend);
}

static int fire_locked(struct mu_dev *dev, unsigned index, uint32_t vec)
{
	switch (index) {
	case MU_PCI_INTX_IRQ_INDEX:
		return fire_intx_locked(dev);
	case MU_PCI_MSI_IRQ_INDEX:
		return fire_msi_locked(dev, vec);
	case MU_PCI_MSIX_IRQ_INDEX:
		return mu_msix_fire_locked(dev, vec);
	default:
		return fire_plain_locked(&dev->irqs[index].vec[vec]);
	}
}

/* Unmask: fire what waited; INTx re-fires while the line is high. */
static void unmask_locked(struct mu_dev *dev, unsigned index, uint32_t vec)
{
	struct mu_irq_vec *v = &dev->irqs[index].vec[vec];

	v->masked = false;
	if (index == MU_PCI_MSIX_IRQ_INDEX) {
		mu_msix_flush_locked(dev);
		return;
	}
	if (index == MU_PCI_INTX_IRQ_INDEX) {
		if (dev->intx_level || v->pending)
			fire_intx_locked(dev);
		return;
	}
	if (v->pending)
		fire_plain_locked(v);
}

/* ---- public triggers ------------------------------------------------------
 */

MU_EXPORT int mu_irq_trigger(mu_dev_t *dev, unsigned index, uint32_t vector)
{
	int r;

	if (!dev || !dev->realized || index >= MU_PCI_NUM_IRQS ||
	    vector >= dev->irqs[index].count)
		return -EINVAL;
	pthread_mutex_lock(&dev->lock);
	r = fire_locked(dev, index, vector);
	pthread_mutex_unlock(&dev->lock);
	return r;
}

MU_EXPORT int mu_irq_set_intx(mu_dev_t *dev, bool asserted)
{
	uint16_t st;
	int r = 0;

	if (!dev || !dev->realized || !dev->irqs[MU_PCI_INTX_IRQ_INDEX].count)
		return -EINVAL;
	pthread_mutex_lock(&dev->lock);
	st = mu_cfg_get16(dev->cfg, 0x06);
	st = asserted ? st | PCI_STATUS_INTX : st & ~PCI_STATUS_INTX;
	mu_cfg_set16(dev->cfg, 0x06, st);
	if (asserted && !dev->intx_level)
		r = fire_intx_locked(dev);
	else if (!asserted)
		dev->irqs[MU_PCI_INTX_IRQ_INDEX].vec[0].pending = false;
	dev->intx_level = asserted;
	pthread_mutex_unlock(&dev->lock);
	return r;
}

static bool index_enabled_locked(const struct mu_dev *dev, unsigned index)
{
	const struct mu_irq_index *x = &dev->irqs[index];
	uint32_t i;

	for (i = 0; x->vec && i < x->count; i++)
		if (x->vec[i].efd >= 0)
			return true;
	return false;
}

MU_EXPORT int mu_irq_active_index(mu_dev_t *dev)
{
	static const unsigned order[] = {MU_PCI_MSIX_IRQ_INDEX,
					 MU_PCI_MSI_IRQ_INDEX,
					 MU_PCI_INTX_IRQ_INDEX};
	int r = -1;
	unsigned i;

	if (!dev || !dev->realized)
		return -1;
	pthread_mutex_lock(&dev->lock);
	for (i = 0; i < 3 && r < 0; i++)
		if (index_enabled_locked(dev, order[i]))
			r = (int)order[i];
	pthread_mutex_unlock(&dev->lock);
	return r;
}

MU_EXPORT int mu_irq_notify(mu_dev_t *dev, uint32_t vector)
{
	int idx = mu_irq_active_index(dev);

	if (idx < 0)
		return -ENOENT;
	if (idx == MU_PCI_INTX_IRQ_INDEX)
		return mu_irq_set_intx(dev, true);
	return mu_irq_trigger(dev, (unsigned)idx, vector);
}

/* ---- GET_IRQ_INFO / SET_IRQS ----------------------------------------------
 */

int mu_h_irq_info(struct mu_dev *dev, struct mu_msg *m, struct mu_reply *r)
{
	struct mu_irq_info in, *out;

	memcpy(&in, m->payload, sizeof(in));
	if (in.index >= MU_PCI_NUM_IRQS)
		return -EINVAL;
	out = mu_reply_inline(r, sizeof(*out));
	out->argsz = sizeof(*out);
	out->index = in.index;
	out->count = dev->irqs[in.index].count;
	/* Every index supports eventfds and SET_IRQS masking; vectors may
	 * be enabled one by one, so no NORESIZE. */
	out->flags = MU_IRQ_INFO_EVENTFD | MU_IRQ_INFO_MASKABLE;
	if (in.index == MU_PCI_INTX_IRQ_INDEX)
		out->flags |= MU_IRQ_INFO_AUTOMASKED;
	return 0;
}

static void irq_state_cb(struct mu_dev *dev, unsigned index, uint32_t start,
			 uint32_t count, bool on)
{
	if (dev->cb.irq_state)
		dev->cb.irq_state(dev->opaque, index, start, count, on);
}

/*
 * Only an eventfd may be signalled: a pipe or socket would fill up and block
 * the server. Made non-blocking too, though the client can undo that (see
 * mu_irq_signal()).
 */
static int check_eventfd(int fd)
{
	char target[64];
	ssize_t n;
	int fl;

	n = mu_sbx_fd_link(fd, target, sizeof(target) - 1);
	if (n < 0)
		return errno == ENOENT ? 0 : -errno; /* no /proc: trust it */
	target[n] = 0;
	if (strcmp(target, "anon_inode:[eventfd]") != 0)
		return -EINVAL;
	fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return -errno;
	return 0;
}

static int set_eventfds(struct mu_dev *dev, struct mu_msg *m,
			const struct mu_irq_set *s)
{
	struct mu_irq_index *x = &dev->irqs[s->index];
	uint32_t i;
	int r;

	for (i = 0; i < m->nfds; i++) {
		r = check_eventfd(m->fds[i]);
		if (r < 0) {
			mu_log(dev, MU_LOG_WARN,
			       "SET_IRQS: fd %u is not an eventfd", i);
			return r;
		}
	}
	pthread_mutex_lock(&dev->lock);
	for (i = 0; i < s->count; i++) {
		struct mu_irq_vec *v = &x->vec[s->start + i];

		if (v->efd >= 0)
			close(v->efd);
		v->efd = m->nfds ? mu_msg_take_fd(m, i) : -1;
	}
	/* Interrupts that waited for an eventfd go out now. */
	for (i = 0; m->nfds && i < s->count; i++)
		if (!x->vec[s->start + i].masked)
			unmask_locked(dev, s->index, s->start + i);
	pthread_mutex_unlock(&dev->lock);
	irq_state_cb(dev, s->index, s->start, s->count, m->nfds > 0);
	return 0;
}

static int disable_index(struct mu_dev *dev, unsigned index)
{
	pthread_mutex_lock(&dev->lock);
	close_index_locked(&dev->irqs[index]);
	pthread_mutex_unlock(&dev->lock);
	irq_state_cb(dev, index, 0, dev->irqs[index].count, false);
	return 0;
}

static void act_locked(struct mu_dev *dev, const struct mu_irq_set *s,
		       uint32_t action, uint32_t vec)
{
	if (action == MU_IRQ_SET_ACTION_TRIGGER)
		fire_locked(dev, s->index, vec);
	else if (action == MU_IRQ_SET_ACTION_MASK)
		dev->irqs[s->index].vec[vec].masked = true;
	else
		unmask_locked(dev, s->index, vec);
}

int mu_h_set_irqs(struct mu_dev *dev, struct mu_msg *m, struct mu_reply *r)
{
	struct mu_irq_set s;
	uint32_t data, action, i;
	const uint8_t *bools;

	(void)r;
	memcpy(&s, m->payload, sizeof(s));
	bools = m->payload + sizeof(s);
	data = s.flags & MU_IRQ_SET_DATA_TYPE_MASK;
	action = s.flags & MU_IRQ_SET_ACTION_TYPE_MASK;
	if (s.index >= MU_PCI_NUM_IRQS)
		return -EINVAL;
	if (s.count == 0) {
		if (data == MU_IRQ_SET_DATA_NONE &&
		    action == MU_IRQ_SET_ACTION_TRIGGER && s.start == 0)
			return disable_index(dev, s.index);
		return -EINVAL;
	}
	if (!dev->irqs[s.index].vec || s.start >= dev->irqs[s.index].count ||
	    s.count > dev->irqs[s.index].count - s.start)
		return -EINVAL;
	if (data == MU_IRQ_SET_DATA_EVENTFD) {
		if (action != MU_IRQ_SET_ACTION_TRIGGER)
			return -ENOTSUP; /* mask/unmask notifier fds */
		return set_eventfds(dev, m, &s);
	}
	pthread_mutex_lock(&dev->lock);
	for (i = 0; i < s.count; i++)
		if (data == MU_IRQ_SET_DATA_NONE || bools[i])
			act_locked(dev, &s, action, s.start + i);
	pthread_mutex_unlock(&dev->lock);
	return 0;
}
