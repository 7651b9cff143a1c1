/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * device.c - the fake device fd: device, region and IRQ info, reset, and
 * region access by pread/pwrite/mmap at the kernel's offsets (region
 * index << 40), all forwarded to the server through libmuser-client.
 *
 * Called from QEMU's vCPU threads concurrently: no shim lock is held
 * while a request is in flight (libmuser-client is thread-safe). Once the
 * server is gone, reads return all ones and writes are dropped, like a
 * surprise-removed PCI device, so QEMU and the guest keep running.
 */
#include <errno.h>
#include <linux/vfio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "preload.h"

static int mp_posted_writes = -1;

static bool mp_use_posted(void)
{
	if (mp_posted_writes < 0) {
		const char *p = getenv("MUSER_PRELOAD_POSTED_WRITES");

		mp_posted_writes = p && *p == '1';
	}
	return mp_posted_writes;
}

static uint32_t mp_max(uint32_t a, uint32_t b)
{
	return a > b ? a : b;
}

static int mp_get_info(struct mp_group *g, unsigned long arg)
{
	const size_t minsz =
		offsetof(struct vfio_device_info, num_irqs) + sizeof(uint32_t);
	struct vfio_device_info vi;
	struct mu_device_info info;
	int ret;

	memcpy(&vi.argsz, (void *)arg, sizeof(vi.argsz));
	if (vi.argsz < minsz)
		return -EINVAL;
	ret = mp_group_device_info(g, &info);
	if (ret < 0)
		return ret;
	/* vfio-user devices are PCI; QEMU wants config space (index 7),
	 * the VGA index and the ERR/REQ irq indexes to exist. */
	vi.flags = VFIO_DEVICE_FLAGS_PCI;
	if (info.flags & MU_DEVICE_FLAGS_RESET)
		vi.flags |= VFIO_DEVICE_FLAGS_RESET;
	vi.num_regions = mp_max(info.num_regions, MP_MIN_REGIONS);
	vi.num_irqs = mp_max(info.num_irqs, MP_MIN_IRQS);
	memcpy((char *)arg + sizeof(vi.argsz), &vi.flags, minsz - 4);
	return 0;
}

static int mp_get_region_info(struct mp_group *g, unsigned long arg)
{
	const size_t infosz = sizeof(struct vfio_region_info);
	const struct mu_client_region *r = NULL;
	struct vfio_region_info ri;
	struct mu_device_info info;
	uint8_t *buf;
	size_t total, nsparse = 0;
	int ret;

	memcpy(&ri, (void *)arg, sizeof(ri.argsz));
	if (ri.argsz < infosz)
		return -EINVAL;
	memcpy(&ri, (void *)arg, infosz);
	ret = mp_group_device_info(g, &info);
	if (ret < 0)
		return ret;
	if (ri.index >= mp_max(info.num_regions, MP_MIN_REGIONS))
		return -EINVAL;
	if (ri.index < info.num_regions) {
		ret = mu_client_region_info(g->client, ri.index, &r);
		if (ret < 0) {
			mp_group_failed(g, ret);
			return ret;
		}
	}
	ri.flags = 0;
	ri.cap_offset = 0;
	ri.size = 0;
	ri.offset = (uint64_t)ri.index << MP_REGION_SHIFT;
	total = infosz;
	if (r) {
		ri.flags = r->flags & (VFIO_REGION_INFO_FLAG_READ |
				       VFIO_REGION_INFO_FLAG_WRITE);
		ri.size = r->size;
		if (r->fd >= 0) {
			ri.flags |= VFIO_REGION_INFO_FLAG_MMAP;
			nsparse = r->nr_sparse;
		}
		if (nsparse)
			total += sizeof(struct
					vfio_region_info_cap_sparse_mmap) +
				 nsparse * sizeof(struct
						  vfio_region_sparse_mmap_area);
		total = (total + 7) & ~(size_t)7;
		if (r->has_type)
			total += sizeof(struct vfio_region_info_cap_type);
	}
	buf = calloc(1, total);
	if (!buf)
		return -ENOMEM;
	if (total > infosz) {
		size_t off = infosz;

		ri.flags |= VFIO_REGION_INFO_FLAG_CAPS;
		if (nsparse) {
			struct vfio_region_info_cap_sparse_mmap sp;
			struct vfio_region_sparse_mmap_area a;
			size_t next = off + sizeof(sp) + nsparse * sizeof(a);

			memset(&sp, 0, sizeof(sp));
			sp.header.id = VFIO_REGION_INFO_CAP_SPARSE_MMAP;
			sp.header.version = 1;
			next = (next + 7) & ~(size_t)7;
			sp.header.next = r->has_type ? (uint32_t)next : 0;
			sp.nr_areas = (uint32_t)nsparse;
			memcpy(buf + off, &sp, sizeof(sp));
			for (size_t i = 0; i < nsparse; i++) {
				a.offset = r->sparse[i].offset;
				a.size = r->sparse[i].size;
				memcpy(buf + off + sizeof(sp) + i * sizeof(a),
				       &a, sizeof(a));
			}
			off = next;
		}
		if (r->has_type) {
			struct vfio_region_info_cap_type t;

			memset(&t, 0, sizeof(t));
			t.header.id = VFIO_REGION_INFO_CAP_TYPE;
			t.header.version = 1;
			t.type = r->type;
			t.subtype = r->subtype;
			memcpy(buf + off, &t, sizeof(t));
		}
	}
	memcpy(buf, &ri, infosz);
	mp_copy_info((void *)arg, ri.argsz, buf, infosz, total,
		     offsetof(struct vfio_region_info, cap_offset));
	free(buf);
	mp_debug("region %u: size 0x%llx flags 0x%x", ri.index,
		 (unsigned long long)ri.size, ri.flags);
	return 0;
}

static int mp_get_irq_info(struct mp_group *g, unsigned long arg)
{
	struct vfio_irq_info ii;
	struct mu_device_info info;
	struct mu_irq_info mi;
	int ret;

	memcpy(&ii, (void *)arg, sizeof(ii.argsz));
	if (ii.argsz < sizeof(ii))
		return -EINVAL;
	memcpy(&ii, (void *)arg, sizeof(ii));
	ret = mp_group_device_info(g, &info);
	if (ret < 0)
		return ret;
	if (ii.index >= mp_max(info.num_irqs, MP_MIN_IRQS))
		return -EINVAL;
	ii.flags = 0;
	ii.count = 0;
	if (ii.index < info.num_irqs) {
		ret = mu_client_irq_info(g->client, ii.index, &mi);
		if (ret < 0) {
			mp_group_failed(g, ret);
			return ret;
		}
		ii.flags = mi.flags;
		ii.count = mi.count;
	}
	memcpy((void *)arg, &ii, sizeof(ii));
	mp_debug("irq %u: count %u flags 0x%x", ii.index, ii.count, ii.flags);
	return 0;
}

int mp_device_ioctl(struct mp_group *g, unsigned long req, unsigned long arg)
{
	int ret;

	switch (req) {
	case VFIO_DEVICE_GET_INFO:
		ret = mp_get_info(g, arg);
		break;
	case VFIO_DEVICE_GET_REGION_INFO:
		ret = mp_get_region_info(g, arg);
		break;
	case VFIO_DEVICE_GET_IRQ_INFO:
		ret = mp_get_irq_info(g, arg);
		break;
	case VFIO_DEVICE_SET_IRQS:
		ret = mp_irq_set(g, arg);
		break;
	case VFIO_DEVICE_RESET:
		ret = atomic_load(&g->dead) ? 0 : mu_client_reset(g->client);
		if (ret < 0 && mp_group_failed(g, ret))
			ret = 0;
		mp_debug("device reset = %d", ret);
		break;
	default:
		/* Hot reset, ioeventfds, features, migration: not offered. */
		mp_debug("device ioctl 0x%lx: not supported", req);
		ret = -ENOTTY;
		break;
	}
	return ret;
}

/* QEMU trusts the kernel's (virtualised) interrupt pin and asserts on a
 * value over 4 (INTD#): a dead device's all-ones or a bad server must
 * not take QEMU down, so such a pin reads as 0, "no INTx". */
static void mp_fix_config(struct mp_group *g, uint8_t *buf, size_t len,
			  uint64_t off)
{
	const uint64_t pin = 0x3d; /* PCI_INTERRUPT_PIN */

	if (off > pin || off + len <= pin || buf[pin - off] <= 4)
		return;
	if (!atomic_load(&g->dead))
		mp_log(MP_WARN, "%s: interrupt pin %u is invalid; using none",
		       g->socket, buf[pin - off]);
	buf[pin - off] = 0;
}

ssize_t mp_device_pread(struct mp_group *g, void *buf, size_t len, uint64_t off)
{
	unsigned index = (unsigned)(off >> MP_REGION_SHIFT);
	int ret = 0;

	if (!len)
		return 0;
	if (!atomic_load(&g->dead)) {
		ret = mu_client_region_read(g->client, index,
					    off & MP_REGION_MASK, buf, len);
		if (ret < 0 && !mp_group_failed(g, ret))
			return ret;
	}
	if (ret < 0 || atomic_load(&g->dead))
		memset(buf, 0xff, len); /* a dead device reads all ones */
	if (index == MU_PCI_CONFIG_REGION_INDEX)
		mp_fix_config(g, buf, len, off & MP_REGION_MASK);
	return (ssize_t)len;
}

/* Post writes (MUSER_PRELOAD_POSTED_WRITES=1) only where nothing reads
 * the result behind the socket's back: not config space (read back at
 * once), not a region that can be mapped (a read through the mapping must
 * see the write once pwrite returns, as with kernel VFIO). */
static bool mp_may_post(struct mp_group *g, unsigned index)
{
	const struct mu_client_region *r;

	if (index == MU_PCI_CONFIG_REGION_INDEX || !mp_use_posted())
		return false;
	if (mu_client_region_info(g->client, index, &r) < 0)
		return false;
	return !(r->flags & MU_REGION_INFO_FLAG_MMAP);
}

ssize_t mp_device_pwrite(struct mp_group *g, const void *buf, size_t len,
			 uint64_t off)
{
	unsigned index = (unsigned)(off >> MP_REGION_SHIFT);
	int ret;

	if (!len || atomic_load(&g->dead))
		return (ssize_t)len;
	/* A posted write goes out now: it is one MMIO exit, and no later
	 * request may come to carry a batch (a doorbell, then the guest
	 * waits for the interrupt). */
	if (mp_may_post(g, index)) {
		ret = mu_client_region_write_posted(
			g->client, index, off & MP_REGION_MASK, buf, len);
		if (ret == 0)
			ret = mu_client_flush_posted(g->client);
	} else
		ret = mu_client_region_write(g->client, index,
					     off & MP_REGION_MASK, buf, len);
	if (ret < 0 && !mp_group_failed(g, ret))
		return ret;
	return (ssize_t)len;
}

void *mp_device_mmap(struct mp_group *g, void *addr, size_t len, int prot,
		     int flags, uint64_t off, int *err)
{
	unsigned index = (unsigned)(off >> MP_REGION_SHIFT);
	uint64_t inner = off & MP_REGION_MASK;
	const struct mu_client_region *r;
	bool inside;
	int ret;

	ret = mu_client_region_info(g->client, index, &r);
	if (ret < 0) {
		*err = -ret;
		return MAP_FAILED;
	}
	*err = EINVAL;
	if (r->fd < 0 || !len || inner > r->size || len > r->size - inner)
		return MAP_FAILED;
	inside = r->nr_sparse == 0;
	for (uint32_t i = 0; i < r->nr_sparse; i++)
		if (inner >= r->sparse[i].offset &&
		    inner + len <= r->sparse[i].offset + r->sparse[i].size)
			inside = true;
	if (!inside)
		return MAP_FAILED;
	/* A server fd smaller than it claims would SIGBUS QEMU's vCPU on
	 * first touch: refuse (QEMU then traps the BAR instead). */
	struct stat st;

	if (fstat(r->fd, &st) < 0 || !S_ISREG(st.st_mode) ||
	    r->offset + inner < r->offset ||
	    (uint64_t)st.st_size < r->offset + inner ||
	    len > (uint64_t)st.st_size - (r->offset + inner)) {
		mp_log(MP_WARN,
		       "region %u: the server's fd is smaller than the "
		       "region; not mapping it",
		       index);
		return MAP_FAILED;
	}
	/* The server's memory itself: guest accesses to this part of the
	 * BAR never leave QEMU. The region fd stays open until the group
	 * goes away, and a mapping outlives it anyway. */
	void *p = mp_real.mmap(addr, len, prot, flags, r->fd,
			       (off_t)(r->offset + inner));
	if (p == MAP_FAILED)
		*err = errno;
	mp_debug("mmap region %u +0x%llx len 0x%zx = %p (fd %d offset 0x%llx)",
		 index, (unsigned long long)inner, len, p, r->fd,
		 (unsigned long long)r->offset);
	return p;
}
