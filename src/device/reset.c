/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Reset: DEVICE_RESET, PCIe FLR and PM D3hot->D0 (requested by a config
 * write, run by the serving loop once the command is done: quiesce.c),
 * and the lost connection. The device is quiesced when these run.
 */
#include "dev-internal.h"

int mu_reset_quiesced(struct mu_dev *dev, enum mu_reset_reason why)
{
	if (why != MU_RESET_LOST_CONN) {
		mu_pci_reset_cfg(dev);
		dev->pm_state = 0;
		mu_irq_reset(dev);
		mu_mig_reset(dev);
		mu_dlog_stop(dev);
	}
	return dev->cb.reset ? dev->cb.reset(dev->opaque, why) : 0;
}

int mu_h_reset(struct mu_dev *dev, struct mu_msg *m, struct mu_reply *r)
{
	(void)m;
	(void)r;
	/* MU_OP_QUIESCE: the dispatcher quiesced the device first. */
	return mu_reset_quiesced(dev, MU_RESET_CLIENT_REQ);
}
