/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Reset (DEVICE_RESET, PCIe FLR, PM D3hot->D0, lost connection) and the
 * synchronous form of quiesce used where a command cannot be parked.
 */
#include <errno.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

#include "dev-internal.h"

bool mu_quiesce_finished(void *p)
{
	return atomic_load(&((struct mu_dev *)p)->quiesce_done);
}

/* Ask the device to stop DMA; if it answers -EBUSY wait (bounded) for
 * mu_dev_quiesce_done() from another thread. */
int mu_quiesce_sync(struct mu_dev *dev)
{
	int64_t deadline;
	uint64_t v;
	ssize_t n = 0;
	int r;

	if (!dev->cb.quiesce || dev->quiesced)
		return 0;
	r = dev->cb.quiesce(dev->opaque);
	if (r != -EBUSY)
		return r;
	deadline = mu_now_ms() + MU_QUIESCE_TIMEOUT_MS;
	/* Inside a command (a config write asking for FLR): device threads
	 * may need DMA replies to get to a stop, so keep reading. */
	if (dev->conn == MU_CONN_READY && mu_on_serving_thread(dev)) {
		r = mu_serve_wait(dev, mu_quiesce_finished, dev, deadline,
				  false);
		if (r < 0)
			return r;
	}
	/* Otherwise (detach: the client is gone) only wake-ups matter. */
	while (!atomic_load(&dev->quiesce_done)) {
		int64_t left = deadline - mu_now_ms();

		if (left <= 0)
			return -ETIMEDOUT;
		mu_poll_one(dev->wake_fd, (int)left);
		if (atomic_exchange(&dev->wake_pending, false))
			n = read(dev->wake_fd, &v, sizeof(v));
	}
	(void)n;
	atomic_store(&dev->quiesce_done, false);
	return atomic_load(&dev->quiesce_err);
}

int mu_dev_do_reset(struct mu_dev *dev, enum mu_reset_reason why)
{
	bool was = dev->quiesced;
	int r;

	r = mu_quiesce_sync(dev);
	if (r < 0)
		return r;
	dev->quiesced = true;
	if (why != MU_RESET_LOST_CONN) {
		mu_pci_reset_cfg(dev);
		dev->pm_state = 0;
		mu_irq_reset(dev);
		mu_mig_reset(dev);
		mu_dlog_stop(dev);
	}
	r = dev->cb.reset ? dev->cb.reset(dev->opaque, why) : 0;
	dev->quiesced = was;
	return r;
}

int mu_h_reset(struct mu_dev *dev, struct mu_msg *m, struct mu_reply *r)
{
	(void)m;
	(void)r;
	return mu_dev_do_reset(dev, MU_RESET_CLIENT_REQ);
}
