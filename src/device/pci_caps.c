/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Capability builders (PM, MSI, MSI-X, PCI Express, vendor-specific and
 * the extended DSN and VSEC caps) and their config-write side effects:
 * PCIe Initiate-FLR, PM D3hot->D0 reset, MSI and MSI-X mask changes.
 */
#include <errno.h>
#include <string.h>

#include "dev-internal.h"

#define PCI_CAP_PTR 0x34
#define CAP_PM 0x01
#define CAP_MSI 0x05
#define CAP_VNDR 0x09
#define CAP_EXP 0x10
#define CAP_MSIX 0x11
#define EXT_DSN 0x0003
#define EXT_VSEC 0x000b

#define PM_CTRL 4
#define PM_NO_SOFT_RESET 0x08
#define EXP_DEVCAP 4
#define EXP_DEVCAP_FLR (1u << 28)
#define EXP_DEVCTL 8
#define EXP_DEVCTL_FLR 0x8000
#define EXP_SIZE 0x3c
#define MSIX_CTRL 2
#define MSIX_FN_MASK 0x4000

static bool can_add(struct mu_dev *dev)
{
	return dev && dev->pci_ready && !dev->realized;
}

/* Reserve len bytes for a standard cap and link it; returns its offset. */
static int cap_alloc(struct mu_dev *dev, uint8_t id, unsigned len)
{
	unsigned off = dev->cap_end;

	if (off + len > MU_CFG_STD_SIZE)
		return -ENOSPC;
	dev->cfg[off] = id;
	dev->cfg[off + 1] = 0;
	if (dev->cap_last)
		dev->cfg[dev->cap_last + 1] = (uint8_t)off;
	else
		dev->cfg[PCI_CAP_PTR] = (uint8_t)off;
	dev->cfg[0x06] |= 0x10; /* status: capabilities list */
	dev->cap_last = (uint8_t)off;
	dev->cap_end = (uint8_t)((off + len + 3) & ~3u);
	if (dev->cap_end == 0) /* wrapped past 0xff */
		dev->cap_end = 0xfc;
	return (int)off;
}

MU_EXPORT int mu_pci_add_pm_cap(mu_dev_t *dev)
{
	int off;

	if (!can_add(dev) || dev->pm_cap)
		return -EINVAL;
	off = cap_alloc(dev, CAP_PM, 8);
	if (off < 0)
		return off;
	mu_cfg_set16(dev->cfg, off + 2, 0x0003); /* PM spec 1.2 */
	/* No_Soft_Reset: D3hot->D0 keeps state unless the device clears it
	 * in config space before realize. */
	mu_cfg_set16(dev->cfg, off + PM_CTRL, PM_NO_SOFT_RESET);
	mu_cfg_set16(dev->wmask, off + PM_CTRL, 0x0103); /* state, PME_En */
	mu_cfg_set16(dev->w1c, off + PM_CTRL, 0x8000);	 /* PME_Status */
	dev->pm_cap = (unsigned)off;
	return off;
}

MU_EXPORT int mu_pci_add_msi_cap(mu_dev_t *dev, unsigned nvec, bool addr64,
				 bool per_vector_mask)
{
	unsigned len = 10, log2 = 0, data;
	uint16_t ctl;
	int off;

	if (!can_add(dev) || dev->msi.cap || !nvec || nvec > 32 ||
	    (nvec & (nvec - 1)))
		return -EINVAL;
	while ((1u << log2) < nvec)
		log2++;
	len += addr64 ? 4 : 0;
	len += per_vector_mask ? 10 : 0;
	off = cap_alloc(dev, CAP_MSI, len);
	if (off < 0)
		return off;
	ctl = (uint16_t)(log2 << 1 | (addr64 ? 0x80 : 0) |
			 (per_vector_mask ? 0x100 : 0));
	mu_cfg_set16(dev->cfg, off + 2, ctl);
	mu_cfg_set16(dev->wmask, off + 2, 0x0071); /* enable, MME */
	mu_cfg_set32(dev->wmask, off + 4, 0xfffffffc);
	if (addr64)
		mu_cfg_set32(dev->wmask, off + 8, 0xffffffff);
	data = off + (addr64 ? 12 : 8);
	mu_cfg_set16(dev->wmask, data, 0xffff);
	if (per_vector_mask)
		mu_cfg_set32(dev->wmask, data + 4,
			     nvec == 32 ? 0xffffffffu : (1u << nvec) - 1);
	dev->msi.cap = (unsigned)off;
	dev->msi.nvec = nvec;
	dev->msi.addr64 = addr64;
	dev->msi.pvm = per_vector_mask;
	dev->irqs[MU_PCI_MSI_IRQ_INDEX].count = nvec;
	return off;
}

MU_EXPORT int mu_pci_add_msix_cap(mu_dev_t *dev, unsigned nvec,
				  unsigned table_bar, uint32_t table_offset,
				  unsigned pba_bar, uint32_t pba_offset)
{
	int off;

	if (!can_add(dev) || dev->msix.cap || !nvec || nvec > 2048 ||
	    table_bar > 5 || pba_bar > 5 || (table_offset & 7) ||
	    (pba_offset & 7))
		return -EINVAL;
	off = cap_alloc(dev, CAP_MSIX, 12);
	if (off < 0)
		return off;
	mu_cfg_set16(dev->cfg, off + MSIX_CTRL, (uint16_t)(nvec - 1));
	mu_cfg_set16(dev->wmask, off + MSIX_CTRL, 0xc000); /* enable, mask */
	mu_cfg_set32(dev->cfg, off + 4, table_offset | table_bar);
	mu_cfg_set32(dev->cfg, off + 8, pba_offset | pba_bar);
	dev->msix.cap = (unsigned)off;
	dev->msix.nvec = nvec;
	dev->msix.table_bar = table_bar;
	dev->msix.table_off = table_offset;
	dev->msix.pba_bar = pba_bar;
	dev->msix.pba_off = pba_offset;
	dev->irqs[MU_PCI_MSIX_IRQ_INDEX].count = nvec;
	return off;
}

MU_EXPORT int mu_pci_add_express_cap(mu_dev_t *dev, enum mu_pcie_type type)
{
	uint8_t *c;
	int off;

	if (!can_add(dev) || dev->exp_cap || dev->kind != MU_PCI_EXPRESS ||
	    (type != MU_PCIE_ENDPOINT && type != MU_PCIE_LEGACY_ENDPOINT &&
	     type != MU_PCIE_RC_INTEGRATED))
		return -EINVAL;
	off = cap_alloc(dev, CAP_EXP, EXP_SIZE);
	if (off < 0)
		return off;
	c = dev->cfg + off;
	mu_cfg_set16(c, 2, (uint16_t)(0x2 | type << 4)); /* version 2 */
	mu_cfg_set32(c, EXP_DEVCAP, EXP_DEVCAP_FLR | (1u << 15));
	mu_cfg_set16(c, EXP_DEVCTL, 0x2810); /* MRRS 512, RO, no snoop */
	mu_cfg_set16(dev->wmask, off + EXP_DEVCTL, 0x7fff);
	mu_cfg_set16(dev->w1c, off + 0x0a, 0x000f); /* error status bits */
	if (type != MU_PCIE_RC_INTEGRATED) {
		mu_cfg_set32(c, 0x0c, 0x00000011); /* 2.5 GT/s x1 */
		mu_cfg_set16(dev->wmask, off + 0x10, 0x00cb);
		mu_cfg_set16(c, 0x12, 0x0011);
		mu_cfg_set32(c, 0x2c, 0x00000002);
		mu_cfg_set16(c, 0x30, 0x0001);
	}
	mu_cfg_set16(dev->wmask, off + 0x28, 0x001f); /* completion timeout */
	dev->exp_cap = (unsigned)off;
	return off;
}

MU_EXPORT int mu_pci_add_vendor_cap(mu_dev_t *dev, const void *body, size_t len)
{
	int off;

	if (!can_add(dev) || (len && !body) || len > 252)
		return -EINVAL;
	off = cap_alloc(dev, CAP_VNDR, (unsigned)len + 3);
	if (off < 0)
		return off;
	dev->cfg[off + 2] = (uint8_t)(len + 3);
	if (len)
		memcpy(dev->cfg + off + 3, body, len);
	return off;
}

/* Reserve an extended cap in 4K space; returns its offset. */
static int ext_alloc(struct mu_dev *dev, uint16_t id, uint8_t ver, unsigned len)
{
	unsigned off = dev->ext_end;
	uint32_t h;

	if (!can_add(dev) || dev->kind != MU_PCI_EXPRESS)
		return -EINVAL;
	if (off + len > MU_CFG_EXP_SIZE)
		return -ENOSPC;
	mu_cfg_set32(dev->cfg, off, id | (uint32_t)ver << 16);
	if (dev->ext_last) {
		h = mu_cfg_get32(dev->cfg, dev->ext_last);
		mu_cfg_set32(dev->cfg, dev->ext_last,
			     (h & 0xfffff) | (uint32_t)off << 20);
	}
	dev->ext_last = (uint16_t)off;
	dev->ext_end = (uint16_t)((off + len + 3) & ~3u);
	return (int)off;
}

MU_EXPORT int mu_pci_add_dsn_cap(mu_dev_t *dev, uint64_t serial)
{
	int off = ext_alloc(dev, EXT_DSN, 1, 12);

	if (off < 0)
		return off;
	mu_cfg_set32(dev->cfg, off + 4, (uint32_t)serial);
	mu_cfg_set32(dev->cfg, off + 8, (uint32_t)(serial >> 32));
	return off;
}

MU_EXPORT int mu_pci_add_ext_vendor_cap(mu_dev_t *dev, uint16_t vsec_id,
					uint8_t vsec_rev, const void *body,
					size_t len)
{
	int off;

	if ((len && !body) || len > 0xfff - 8 || vsec_rev > 0xf)
		return -EINVAL;
	off = ext_alloc(dev, EXT_VSEC, 1, (unsigned)len + 8);
	if (off < 0)
		return off;
	mu_cfg_set32(dev->cfg, off + 4,
		     vsec_id | (uint32_t)vsec_rev << 16 |
			     (uint32_t)(len + 8) << 20);
	if (len)
		memcpy(dev->cfg + off + 8, body, len);
	return off;
}

/* ---- side effects of config writes --------------------------------------- */

static bool touches(uint32_t off, size_t len, unsigned reg, unsigned n)
{
	return off < reg + n && reg < off + len;
}

static void msix_ctrl_written(struct mu_dev *dev)
{
	uint16_t ctl;

	pthread_mutex_lock(&dev->lock);
	ctl = mu_cfg_get16(dev->cfg, dev->msix.cap + MSIX_CTRL);
	dev->msix.fn_mask = ctl & MSIX_FN_MASK;
	mu_msix_flush_locked(dev);
	pthread_mutex_unlock(&dev->lock);
}

static void pm_written(struct mu_dev *dev)
{
	uint16_t csr;
	uint8_t state;

	pthread_mutex_lock(&dev->lock);
	csr = mu_cfg_get16(dev->cfg, dev->pm_cap + PM_CTRL);
	pthread_mutex_unlock(&dev->lock);
	state = csr & 3;
	if (dev->pm_state == 3 && state == 0 && !(csr & PM_NO_SOFT_RESET)) {
		dev->pm_state = state;
		mu_reset_request(dev, MU_RESET_PCI_PM);
		return;
	}
	dev->pm_state = state;
}

void mu_pci_caps_written(struct mu_dev *dev, uint32_t off, size_t len,
			 const uint8_t *val)
{
	unsigned flr = dev->exp_cap + EXP_DEVCTL + 1;

	if (dev->msix.cap && touches(off, len, dev->msix.cap + MSIX_CTRL, 2))
		msix_ctrl_written(dev);
	if (dev->msi.cap && dev->msi.pvm &&
	    touches(off, len, dev->msi.cap, 24)) {
		pthread_mutex_lock(&dev->lock);
		mu_msi_flush_locked(dev);
		pthread_mutex_unlock(&dev->lock);
	}
	if (dev->pm_cap && touches(off, len, dev->pm_cap + PM_CTRL, 2))
		pm_written(dev);
	/* Initiate FLR is write-only: it always reads back 0. */
	if (dev->exp_cap && touches(off, len, flr, 1) &&
	    (val[flr - off] & (EXP_DEVCTL_FLR >> 8))) {
		mu_log(dev, MU_LOG_INFO, "function level reset");
		mu_reset_request(dev, MU_RESET_FLR);
	}
}
