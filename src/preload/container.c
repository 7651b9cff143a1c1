/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * container.c - the fake /dev/vfio/vfio: API version and extension
 * checks, the type1 IOMMU (SET_IOMMU, IOMMU_GET_INFO with its capability
 * chain) and the DMA map list.
 *
 * The container owns the maps. QEMU maps guest RAM right after the first
 * group joins, before it asks for the device fd, and keeps mapping and
 * unmapping while the firmware runs. Each map is kept here with a dup of
 * its backing fd and sent to every group's server; a group that joins
 * later gets the whole list replayed.
 */
#include <errno.h>
#include <linux/vfio.h>
#include <stdlib.h>
#include <string.h>

#include "preload.h"

#define MP_PAGE_MASK 0xfffull

int mp_container_open(int flags)
{
	struct mp_container *ct = calloc(1, sizeof(*ct));
	int fd, ret;

	if (!ct)
		return -ENOMEM;
	fd = mp_fake_fd("muser-vfio-container", flags);
	if (fd < 0) {
		free(ct);
		return fd;
	}
	ct->fd = fd;
	ret = mp_fd_register(fd, MP_CONTAINER, ct);
	if (ret < 0) {
		mp_real.close(fd);
		free(ct);
		return ret;
	}
	mp_debug("container: fd %d", fd);
	return fd;
}

static void mp_maps_clear(struct mp_container *ct)
{
	for (size_t i = 0; i < ct->nmaps; i++)
		if (ct->maps[i].fd >= 0)
			mp_real.close(ct->maps[i].fd);
	ct->nmaps = 0;
}

void mp_container_free(struct mp_container *ct)
{
	mp_debug("container: freed");
	mp_maps_clear(ct);
	free(ct->maps);
	free(ct);
}

static long mp_check_extension(unsigned long ext)
{
	switch (ext) {
	case VFIO_TYPE1_IOMMU:
	case VFIO_TYPE1v2_IOMMU:
	case VFIO_DMA_CC_IOMMU: /* guest RAM is plain memory: coherent */
	case VFIO_UNMAP_ALL:
		return 1;
	default:
		return 0;
	}
}

/* ---- IOMMU_GET_INFO ------------------------------------------------------ */

static int mp_iommu_get_info(struct mp_container *ct, unsigned long arg)
{
	const size_t minsz = offsetof(struct vfio_iommu_type1_info, cap_offset);
	const size_t infosz = sizeof(struct vfio_iommu_type1_info);
	struct vfio_iommu_type1_info info;
	struct vfio_iommu_type1_info_cap_iova_range iova;
	struct vfio_iova_range range;
	struct vfio_iommu_type1_info_dma_avail avail;
	/* info, the iova range cap with one range, the DMA avail cap; each
	 * cap 8-byte aligned as the kernel lays them out */
	const size_t iova_off = infosz;
	const size_t avail_off = iova_off + sizeof(iova) + sizeof(range);
	const size_t total = (avail_off + sizeof(avail) + 7) & ~(size_t)7;
	uint8_t buf[128];
	uint64_t pgsizes = ~0ull;
	uint32_t argsz, max_maps = MU_DEFAULT_MAX_DMA_MAPS;

	static_assert(sizeof(buf) >= 72, "room for the iommu info chain");
	memcpy(&argsz, (void *)arg, sizeof(argsz));
	if (argsz < minsz)
		return -EINVAL;
	memset(&info, 0, sizeof(info));
	memset(&iova, 0, sizeof(iova));
	memset(&range, 0, sizeof(range));
	memset(&avail, 0, sizeof(avail));
	memset(buf, 0, sizeof(buf));
	pthread_mutex_lock(&mp_iommu_lock);
	if (!ct->iommu) {
		pthread_mutex_unlock(&mp_iommu_lock);
		return -EINVAL;
	}
	/* What every server of the container accepts. */
	for (struct mp_group *g = ct->groups; g; g = g->next) {
		pgsizes &= g->pgsizes;
		if (g->max_dma_maps < max_maps)
			max_maps = g->max_dma_maps;
	}
	if (!ct->groups || !pgsizes)
		pgsizes = MU_DEFAULT_PGSIZES;
	avail.avail = max_maps > ct->nmaps ? max_maps - (uint32_t)ct->nmaps : 0;
	pthread_mutex_unlock(&mp_iommu_lock);

	info.argsz = argsz;
	info.flags = VFIO_IOMMU_INFO_PGSIZES;
	info.iova_pgsizes = pgsizes;
	if (argsz < infosz) {
		/* An old caller without cap_offset: no chain. */
		memcpy((void *)arg, &info, minsz);
		return 0;
	}
	info.flags |= VFIO_IOMMU_INFO_CAPS;
	/* The whole 64-bit space: vfio-user has no reserved windows. */
	iova.header.id = VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE;
	iova.header.version = 1;
	iova.header.next = (uint32_t)avail_off;
	iova.nr_iovas = 1;
	range.start = 0;
	range.end = ~0ull;
	avail.header.id = VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL;
	avail.header.version = 1;
	memcpy(buf, &info, infosz);
	memcpy(buf + iova_off, &iova, sizeof(iova));
	memcpy(buf + iova_off + sizeof(iova), &range, sizeof(range));
	memcpy(buf + avail_off, &avail, sizeof(avail));
	mp_copy_info((void *)arg, argsz, buf, infosz, total,
		     offsetof(struct vfio_iommu_type1_info, cap_offset));
	return 0;
}

/* ---- MAP_DMA / UNMAP_DMA ------------------------------------------------- */

/* Send one map to g's server. A dead server doesn't fail the map: QEMU
 * treats a failed RAM map as fatal, and the device is gone anyway. */
static int mp_map_send(struct mp_group *g, const struct mp_map *m)
{
	int ret;

	if (atomic_load(&g->dead))
		return 0;
	if (m->fd >= 0)
		ret = mu_client_dma_map_fd(g->client, m->iova, m->size, m->fd,
					   m->fd_offset, m->prot);
	else
		ret = mu_client_dma_map_buffer(g->client, m->iova,
					       (void *)(uintptr_t)m->vaddr,
					       m->size, m->prot);
	if (ret < 0 && mp_group_failed(g, ret))
		ret = 0;
	if (ret < 0)
		mp_log(MP_ERR,
		       "%s: DMA map of iova 0x%llx size 0x%llx refused: %s",
		       g->socket, (unsigned long long)m->iova,
		       (unsigned long long)m->size, strerror(-ret));
	return ret;
}

static void mp_unmap_send(struct mp_group *g, const struct mp_map *m)
{
	int ret;

	if (atomic_load(&g->dead))
		return;
	ret = mu_client_dma_unmap(g->client, m->iova, m->size);
	if (ret < 0 && !mp_group_failed(g, ret))
		mp_log(MP_WARN, "%s: DMA unmap of iova 0x%llx failed: %s",
		       g->socket, (unsigned long long)m->iova, strerror(-ret));
}

/* Firmware and option ROMs are always private memory and only small:
 * the warning is for guest RAM, which is never this small. */
#define MP_NOFD_WARN_SIZE (2ull << 20)

static void mp_warn_nofd(const struct mp_map *m, const char *why)
{
	static atomic_bool warned;

	if (m->size >= MP_NOFD_WARN_SIZE && !atomic_exchange(&warned, true))
		mp_log(MP_WARN,
		       "guest memory at iova 0x%llx (%s) is not shareable "
		       "with the device server, so its DMA goes through "
		       "slow DMA_READ/DMA_WRITE messages. Give QEMU "
		       "shared guest RAM: -object memory-backend-memfd,"
		       "id=mem,size=SIZE,share=on -machine memory-backend=mem "
		       "(or memory-backend-file,mem-path=/dev/shm/...,"
		       "share=on)",
		       (unsigned long long)m->iova, why);
	else
		mp_debug("fd-less DMA map iova 0x%llx size 0x%llx (%s)",
			 (unsigned long long)m->iova,
			 (unsigned long long)m->size, why);
}

static int mp_map_dma(struct mp_container *ct, unsigned long arg)
{
	struct vfio_iommu_type1_dma_map dm;
	struct mp_map m;
	char why[160];
	struct mp_group *g, *done;
	int ret;

	memcpy(&dm.argsz, (void *)arg, sizeof(dm.argsz));
	if (dm.argsz < sizeof(dm))
		return -EINVAL;
	memcpy(&dm, (void *)arg, sizeof(dm));
	if (dm.flags & ~(VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE))
		return -EINVAL; /* VADDR updates are not offered */
	if (!dm.size || ((dm.iova | dm.size | dm.vaddr) & MP_PAGE_MASK) ||
	    dm.size - 1 > ~0ull - dm.iova || dm.size - 1 > ~0ull - dm.vaddr)
		return -EINVAL;

	memset(&m, 0, sizeof(m));
	m.iova = dm.iova;
	m.size = dm.size;
	m.vaddr = dm.vaddr;
	m.prot =
		(dm.flags & VFIO_DMA_MAP_FLAG_READ ? MU_DMA_MAP_FLAG_READ : 0) |
		(dm.flags & VFIO_DMA_MAP_FLAG_WRITE ? MU_DMA_MAP_FLAG_WRITE
						    : 0);

	pthread_mutex_lock(&mp_iommu_lock);
	ret = -EINVAL;
	if (!ct->iommu)
		goto out;
	ret = -EEXIST;
	for (size_t i = 0; i < ct->nmaps; i++) {
		const struct mp_map *o = &ct->maps[i];

		if (m.iova <= o->iova + (o->size - 1) &&
		    o->iova <= m.iova + (m.size - 1))
			goto out;
	}
	if (ct->nmaps == ct->cap) {
		size_t cap = ct->cap ? ct->cap * 2 : 16;
		struct mp_map *n = realloc(ct->maps, cap * sizeof(*n));

		ret = -ENOMEM;
		if (!n)
			goto out;
		ct->maps = n;
		ct->cap = cap;
	}
	why[0] = '\0';
	if (mp_memmap_lookup(m.vaddr, m.size, &m.fd, &m.fd_offset, why,
			     sizeof(why)) < 0) {
		m.fd = -1;
		mp_warn_nofd(&m, why);
	}
	for (g = ct->groups; g; g = g->next) {
		ret = mp_map_send(g, &m);
		if (ret < 0)
			break;
	}
	if (ret < 0) {
		for (done = ct->groups; done != g; done = done->next)
			mp_unmap_send(done, &m);
		if (m.fd >= 0)
			mp_real.close(m.fd);
		goto out;
	}
	ct->maps[ct->nmaps++] = m;
	mp_debug("MAP_DMA iova 0x%llx size 0x%llx vaddr 0x%llx fd %d+0x%llx",
		 (unsigned long long)m.iova, (unsigned long long)m.size,
		 (unsigned long long)m.vaddr, m.fd,
		 (unsigned long long)m.fd_offset);
	ret = 0;
out:
	pthread_mutex_unlock(&mp_iommu_lock);
	return ret;
}

static int mp_unmap_dma(struct mp_container *ct, unsigned long arg)
{
	struct vfio_iommu_type1_dma_unmap du;
	uint64_t first, last, total = 0;
	size_t i, j;
	int ret = 0;

	memcpy(&du.argsz, (void *)arg, sizeof(du.argsz));
	if (du.argsz < sizeof(du))
		return -EINVAL;
	memcpy(&du, (void *)arg, sizeof(du));
	if (du.flags & ~VFIO_DMA_UNMAP_FLAG_ALL)
		return -EINVAL; /* no dirty bitmaps, no VADDR */
	if (du.flags & VFIO_DMA_UNMAP_FLAG_ALL) {
		if (du.iova || du.size)
			return -EINVAL;
		first = 0;
		last = ~0ull;
	} else {
		if (!du.size || ((du.iova | du.size) & MP_PAGE_MASK) ||
		    du.size - 1 > ~0ull - du.iova)
			return -EINVAL;
		first = du.iova;
		last = du.iova + (du.size - 1);
	}

	pthread_mutex_lock(&mp_iommu_lock);
	if (!ct->iommu) {
		ret = -EINVAL;
		goto out;
	}
	/* Type1v2: a range may not split a mapping. */
	for (i = 0; i < ct->nmaps; i++) {
		const struct mp_map *m = &ct->maps[i];
		uint64_t mlast = m->iova + (m->size - 1);

		if (mlast >= first && m->iova <= last &&
		    (m->iova < first || mlast > last)) {
			ret = -EINVAL;
			goto out;
		}
	}
	for (i = 0, j = 0; i < ct->nmaps; i++) {
		struct mp_map *m = &ct->maps[i];

		if (m->iova >= first && m->iova + (m->size - 1) <= last) {
			for (struct mp_group *g = ct->groups; g; g = g->next)
				mp_unmap_send(g, m);
			mp_debug("UNMAP_DMA iova 0x%llx size 0x%llx",
				 (unsigned long long)m->iova,
				 (unsigned long long)m->size);
			total += m->size;
			if (m->fd >= 0)
				mp_real.close(m->fd);
			continue;
		}
		ct->maps[j++] = *m;
	}
	ct->nmaps = j;
	du.size = total;
	memcpy((char *)arg + offsetof(struct vfio_iommu_type1_dma_unmap, size),
	       &du.size, sizeof(du.size));
out:
	pthread_mutex_unlock(&mp_iommu_lock);
	return ret;
}

/* ---- groups joining and leaving ----------------------------------------- */

int mp_container_attach(struct mp_container *ct, struct mp_group *g)
{
	size_t i;
	int ret;

	if (g->container)
		return -EBUSY;
	for (i = 0; i < ct->nmaps; i++) {
		ret = mp_map_send(g, &ct->maps[i]);
		if (ret < 0) {
			while (i--)
				mp_unmap_send(g, &ct->maps[i]);
			return ret;
		}
	}
	g->next = ct->groups;
	ct->groups = g;
	g->container = ct;
	mp_container_get(ct);
	mp_debug("group %d joined the container (%zu maps replayed)", g->num,
		 ct->nmaps);
	return 0;
}

void mp_container_detach(struct mp_group *g)
{
	struct mp_container *ct = g->container;
	struct mp_group **pp;

	if (!ct)
		return;
	for (pp = &ct->groups; *pp; pp = &(*pp)->next) {
		if (*pp == g) {
			*pp = g->next;
			break;
		}
	}
	g->next = NULL;
	g->container = NULL;
	if (!atomic_load(&g->dead) && ct->nmaps) {
		int ret = mu_client_dma_unmap_all(g->client);

		if (ret < 0)
			mp_group_failed(g, ret);
	}
	/* Like the kernel: the last group out takes the IOMMU with it. */
	if (!ct->groups) {
		mp_maps_clear(ct);
		ct->iommu = 0;
	}
	mp_debug("group %d left the container", g->num);
	mp_container_put(ct);
}

static int mp_set_iommu(struct mp_container *ct, unsigned long type)
{
	int ret = 0;

	if (type != VFIO_TYPE1_IOMMU && type != VFIO_TYPE1v2_IOMMU)
		return -EINVAL;
	pthread_mutex_lock(&mp_iommu_lock);
	if (!ct->groups)
		ret = -EINVAL;
	else if (ct->iommu)
		ret = -EBUSY;
	else
		ct->iommu = (int)type;
	pthread_mutex_unlock(&mp_iommu_lock);
	return ret;
}

int mp_container_ioctl(struct mp_container *ct, unsigned long req,
		       unsigned long arg)
{
	int ret;

	switch (req) {
	case VFIO_GET_API_VERSION:
		ret = VFIO_API_VERSION;
		break;
	case VFIO_CHECK_EXTENSION:
		ret = (int)mp_check_extension(arg);
		break;
	case VFIO_SET_IOMMU:
		ret = mp_set_iommu(ct, arg);
		break;
	case VFIO_IOMMU_GET_INFO:
		ret = mp_iommu_get_info(ct, arg);
		break;
	case VFIO_IOMMU_MAP_DMA:
		ret = mp_map_dma(ct, arg);
		break;
	case VFIO_IOMMU_UNMAP_DMA:
		ret = mp_unmap_dma(ct, arg);
		break;
	default:
		ret = -ENOTTY;
		break;
	}
	if (req != VFIO_IOMMU_MAP_DMA && req != VFIO_IOMMU_UNMAP_DMA)
		mp_debug("container ioctl 0x%lx (0x%lx) = %d", req, arg, ret);
	return ret;
}
