/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * MSI-X table and PBA, emulated inside their BARs. A vector fires only
 * when neither the function mask, its table mask nor a SET_IRQS mask
 * holds it; otherwise its PBA bit is set and it fires on unmask.
 *
 * Interop: QEMU emulates the MSI-X table itself and never writes ours, so
 * our table's reset state (all vectors masked) would silence it forever.
 * Per-vector table masks therefore count only once the client has written
 * the table since the last reset (see docs/device-guide.md).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "dev-internal.h"

#define ENTRY 16u
#define CTRL 12u

static size_t table_size(const struct mu_dev *dev)
{
	return (size_t)dev->msix.nvec * ENTRY;
}

static size_t pba_size(const struct mu_dev *dev)
{
	return (dev->msix.nvec + 63) / 64 * 8;
}

int mu_msix_realize(struct mu_dev *dev)
{
	struct mu_msix_state *x = &dev->msix;

	if (!x->cap)
		return 0;
	if (!(dev->regions[x->table_bar].flags) ||
	    !mu_range_ok(x->table_off, table_size(dev),
			 dev->regions[x->table_bar].size) ||
	    !(dev->regions[x->pba_bar].flags) ||
	    !mu_range_ok(x->pba_off, pba_size(dev),
			 dev->regions[x->pba_bar].size)) {
		mu_log(dev, MU_LOG_ERR, "MSI-X table/PBA outside their BARs");
		return -EINVAL;
	}
	if (x->table_bar == x->pba_bar &&
	    x->table_off < x->pba_off + pba_size(dev) &&
	    x->pba_off < x->table_off + table_size(dev))
		return -EINVAL;
	x->table = calloc(x->nvec, ENTRY);
	x->pba = calloc(pba_size(dev) / 8, 8);
	if (!x->table || !x->pba)
		return -ENOMEM;
	mu_msix_reset(dev);
	return 0;
}

/* Reset state: every vector masked, nothing pending. */
void mu_msix_reset(struct mu_dev *dev)
{
	struct mu_msix_state *x = &dev->msix;
	unsigned i;

	if (!x->table)
		return;
	pthread_mutex_lock(&dev->lock);
	memset(x->table, 0, table_size(dev));
	for (i = 0; i < x->nvec; i++)
		x->table[i * ENTRY + CTRL] = 1;
	memset(x->pba, 0, pba_size(dev));
	x->fn_mask = false;
	x->table_used = false;
	pthread_mutex_unlock(&dev->lock);
}

static bool vec_masked(const struct mu_dev *dev, uint32_t vec)
{
	const struct mu_msix_state *x = &dev->msix;

	if (x->fn_mask || dev->irqs[MU_PCI_MSIX_IRQ_INDEX].vec[vec].masked)
		return true;
	return x->table_used && (x->table[vec * ENTRY + CTRL] & 1);
}

int mu_msix_fire_locked(struct mu_dev *dev, uint32_t vec)
{
	struct mu_irq_vec *v = &dev->irqs[MU_PCI_MSIX_IRQ_INDEX].vec[vec];

	if (vec_masked(dev, vec)) {
		dev->msix.pba[vec / 64] |= 1ull << (vec % 64);
		return 1;
	}
	if (v->efd < 0)
		return -ENOENT;
	return mu_irq_signal(v->efd);
}

void mu_msix_flush_locked(struct mu_dev *dev)
{
	struct mu_irq_vec *vecs = dev->irqs[MU_PCI_MSIX_IRQ_INDEX].vec;
	uint32_t i;

	if (!dev->msix.pba || !vecs)
		return;
	for (i = 0; i < dev->msix.nvec; i++) {
		uint64_t bit = 1ull << (i % 64);

		if (!(dev->msix.pba[i / 64] & bit) || vec_masked(dev, i) ||
		    vecs[i].efd < 0)
			continue;
		dev->msix.pba[i / 64] &= ~bit;
		mu_irq_signal(vecs[i].efd);
	}
}

/* Writes may be any size; reserved control bits stay zero. */
static void table_write(struct mu_dev *dev, uint64_t off, const void *buf,
			size_t count)
{
	struct mu_msix_state *x = &dev->msix;
	size_t first = off / ENTRY, last = (off + count - 1) / ENTRY, i;

	memcpy(x->table + off, buf, count);
	for (i = first; i <= last; i++) {
		x->table[i * ENTRY + CTRL] &= 1;
		memset(x->table + i * ENTRY + CTRL + 1, 0, 3);
	}
	x->table_used = true;
	mu_msix_flush_locked(dev);
}

static bool inside(uint64_t off, size_t count, uint64_t start, size_t len)
{
	return off >= start && mu_range_ok(off - start, count, len);
}

static bool overlaps(uint64_t off, size_t count, uint64_t start, size_t len)
{
	return off < start + len && start < off + count;
}

int mu_msix_access(struct mu_dev *dev, unsigned index, uint64_t off, void *buf,
		   size_t count, bool is_write)
{
	struct mu_msix_state *x = &dev->msix;
	bool t = index == x->table_bar &&
		 overlaps(off, count, x->table_off, table_size(dev));
	bool p = index == x->pba_bar &&
		 overlaps(off, count, x->pba_off, pba_size(dev));

	if (!t && !p)
		return 0;
	if ((t && !inside(off, count, x->table_off, table_size(dev))) ||
	    (p && !inside(off, count, x->pba_off, pba_size(dev))))
		return -EINVAL; /* straddles the table or PBA edge */
	pthread_mutex_lock(&dev->lock);
	if (t && is_write)
		table_write(dev, off - x->table_off, buf, count);
	else if (t)
		memcpy(buf, x->table + (off - x->table_off), count);
	else if (!is_write) /* PBA: read-only, writes ignored */
		memcpy(buf, (uint8_t *)x->pba + (off - x->pba_off), count);
	pthread_mutex_unlock(&dev->lock);
	return 1;
}
