/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * PCI configuration space with real semantics. Three byte arrays describe
 * it: the values, a write mask (1 = writable bit) and a write-1-to-clear
 * mask. BAR size masks fall out of the write mask: an all-ones sizing
 * write keeps only the writable address bits, so the read-back shows the
 * size and the read-only type bits, exactly as hardware does.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "dev-internal.h"

#define PCI_COMMAND 0x04
#define PCI_STATUS 0x06
#define PCI_STATUS_CAP_LIST 0x10
#define PCI_STATUS_W1C 0xf900
/* IO, memory, bus master, parity, SERR, INTx disable */
#define PCI_COMMAND_WMASK 0x0547
#define PCI_BAR0 0x10
#define PCI_ROM 0x30
#define PCI_INT_LINE 0x3c
#define PCI_INT_PIN 0x3d

MU_EXPORT int mu_pci_setup(mu_dev_t *dev, const struct mu_pci_id *id,
			   enum mu_pci_kind kind)
{
	uint32_t size;
	uint8_t *c;

	if (!dev || !id || dev->realized || dev->pci_ready ||
	    (kind != MU_PCI_CONVENTIONAL && kind != MU_PCI_EXPRESS))
		return -EINVAL;
	size = kind == MU_PCI_EXPRESS ? MU_CFG_EXP_SIZE : MU_CFG_STD_SIZE;
	/* values, write mask, W1C mask, reset image */
	dev->cfg = calloc(4, size);
	if (!dev->cfg)
		return -ENOMEM;
	dev->wmask = dev->cfg + size;
	dev->w1c = dev->cfg + 2 * size;
	dev->cfg_reset = dev->cfg + 3 * size;
	dev->cfg_size = size;
	dev->kind = kind;
	c = dev->cfg;
	mu_cfg_set16(c, 0x00, id->vendor_id);
	mu_cfg_set16(c, 0x02, id->device_id);
	c[0x08] = id->revision;
	c[0x09] = (uint8_t)id->class_code;
	c[0x0a] = (uint8_t)(id->class_code >> 8);
	c[0x0b] = (uint8_t)(id->class_code >> 16);
	c[0x0e] = 0; /* type 0 header, single function */
	mu_cfg_set16(c, 0x2c, id->subsys_vendor_id);
	mu_cfg_set16(c, 0x2e, id->subsys_id);
	mu_cfg_set16(dev->wmask, PCI_COMMAND, PCI_COMMAND_WMASK);
	mu_cfg_set16(dev->w1c, PCI_STATUS, PCI_STATUS_W1C);
	dev->wmask[0x0c] = 0xff; /* cache line size */
	dev->wmask[0x0d] = 0xff; /* latency timer */
	dev->wmask[PCI_INT_LINE] = 0xff;
	dev->cap_end = 0x40;
	dev->ext_end = 0x100;
	dev->pci_ready = true;
	return 0;
}

MU_EXPORT uint8_t *mu_pci_config_space(mu_dev_t *dev)
{
	return dev ? dev->cfg : NULL;
}

MU_EXPORT int mu_pci_set_intx_pin(mu_dev_t *dev, uint8_t pin)
{
	if (!dev || !dev->pci_ready || dev->realized || pin > 4)
		return -EINVAL;
	dev->cfg[PCI_INT_PIN] = pin;
	dev->irqs[MU_PCI_INTX_IRQ_INDEX].count = pin ? 1 : 0;
	return 0;
}

MU_EXPORT int mu_pci_config_read(mu_dev_t *dev, uint32_t offset, void *buf,
				 size_t len)
{
	if (!dev || !dev->pci_ready || !buf ||
	    !mu_range_ok(offset, len, dev->cfg_size))
		return -EINVAL;
	pthread_mutex_lock(&dev->lock);
	memcpy(buf, dev->cfg + offset, len);
	pthread_mutex_unlock(&dev->lock);
	return 0;
}

/* Type bits and size masks of BAR i; returns how many BAR slots it used. */
static unsigned setup_bar(struct mu_dev *dev, unsigned i)
{
	const struct mu_region *reg = &dev->regions[i];
	unsigned off = PCI_BAR0 + 4 * i;
	uint64_t mask = ~(reg->size - 1);
	uint32_t type;

	if (reg->flags & MU_REGION_BAR_IO) {
		mu_cfg_set32(dev->cfg, off, 0x1);
		mu_cfg_set32(dev->wmask, off, (uint32_t)mask & ~0x3u);
		return 1;
	}
	type = (reg->flags & MU_REGION_BAR_64 ? 0x4 : 0) |
	       (reg->flags & MU_REGION_BAR_PREFETCH ? 0x8 : 0);
	mu_cfg_set32(dev->cfg, off, type);
	mu_cfg_set32(dev->wmask, off, (uint32_t)mask & ~0xfu);
	if (!(reg->flags & MU_REGION_BAR_64))
		return 1;
	mu_cfg_set32(dev->cfg, off + 4, 0);
	mu_cfg_set32(dev->wmask, off + 4, (uint32_t)(mask >> 32));
	return 2;
}

int mu_pci_realize(struct mu_dev *dev)
{
	const struct mu_region *rom = &dev->regions[MU_PCI_ROM_REGION_INDEX];
	unsigned i;

	for (i = 0; i <= MU_PCI_BAR5_REGION_INDEX;) {
		if (!dev->regions[i].flags) {
			i++;
			continue;
		}
		if ((dev->regions[i].flags & MU_REGION_BAR_64) &&
		    dev->regions[i + 1].flags) {
			mu_log(dev, MU_LOG_ERR,
			       "BAR%u is 64-bit: BAR%u must stay unused", i,
			       i + 1);
			return -EINVAL;
		}
		i += setup_bar(dev, i);
	}
	if (rom->flags) {
		mu_cfg_set32(dev->cfg, PCI_ROM, 0);
		mu_cfg_set32(dev->wmask, PCI_ROM,
			     ((uint32_t) ~(rom->size - 1) & 0xfffff800u) | 1u);
	}
	memcpy(dev->cfg_reset, dev->cfg, dev->cfg_size);
	return 0;
}

void mu_pci_reset_cfg(struct mu_dev *dev)
{
	pthread_mutex_lock(&dev->lock);
	memcpy(dev->cfg, dev->cfg_reset, dev->cfg_size);
	pthread_mutex_unlock(&dev->lock);
}

void mu_pci_free(struct mu_dev *dev)
{
	free(dev->cfg);
	dev->cfg = dev->wmask = dev->w1c = dev->cfg_reset = NULL;
	free(dev->msix.table);
	free(dev->msix.pba);
	dev->msix.table = NULL;
	dev->msix.pba = NULL;
}

/* Apply a write byte by byte: writable bits take the new value, W1C bits
 * are cleared where a 1 is written, everything else is kept. */
static void apply_write(struct mu_dev *dev, uint32_t off, const uint8_t *v,
			size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		uint32_t a = off + (uint32_t)i;
		uint8_t b =
			(dev->cfg[a] & ~dev->wmask[a]) | (v[i] & dev->wmask[a]);

		dev->cfg[a] = b & ~(v[i] & dev->w1c[a]);
	}
}

int mu_pci_cfg_access(struct mu_dev *dev, uint64_t off, void *buf, size_t count,
		      bool is_write)
{
	if (!mu_range_ok(off, count, dev->cfg_size))
		return -EINVAL;
	pthread_mutex_lock(&dev->lock);
	if (!is_write) {
		memcpy(buf, dev->cfg + off, count);
		pthread_mutex_unlock(&dev->lock);
		if (dev->cb.config_read)
			return dev->cb.config_read(dev->opaque, (uint32_t)off,
						   buf, count);
		return 0;
	}
	apply_write(dev, (uint32_t)off, buf, count);
	pthread_mutex_unlock(&dev->lock);
	mu_pci_caps_written(dev, (uint32_t)off, count, buf);
	if (dev->cb.config_written)
		dev->cb.config_written(dev->opaque, (uint32_t)off, count);
	return 0;
}
