/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * group.c - the fake /dev/vfio/N: one group per muser device, holding the
 * libmuser-client connection to its server. Opening the group connects,
 * so a missing server fails QEMU's open of /dev/vfio/N with a message
 * naming the socket, before QEMU builds anything else.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/vfio.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>

#include "preload.h"

#define MP_MAX_GROUPS 256

/* Open groups by number: the kernel lets a group be opened once. */
static struct mp_group *mp_groups[MP_MAX_GROUPS];

static int mp_timeout_ms(void)
{
	const char *t = getenv("MUSER_TIMEOUT_MS");

	return t && *t ? atoi(t) : 5000;
}

bool mp_group_failed(struct mp_group *g, int err)
{
	switch (-err) {
	case ENOTCONN:
	case EPIPE:
	case ECONNRESET:
	case ECONNABORTED:
	case ESHUTDOWN:
	case ETIMEDOUT:
	case EPROTO:
	case EBADMSG:
		break;
	default:
		if (mu_client_is_connected(g->client))
			return false;
	}
	if (!atomic_exchange(&g->dead, true))
		mp_log(MP_ERR,
		       "the vfio-user server of /dev/vfio/%d at %s is gone "
		       "(%s): the device is dead from now on; its reads "
		       "return all ones and writes are dropped",
		       g->num, g->socket, strerror(-err));
	return true;
}

int mp_group_device_info(struct mp_group *g, struct mu_device_info *info)
{
	int ret = 0;

	pthread_mutex_lock(&g->info_lock);
	if (!g->have_info) {
		ret = mu_client_device_info(g->client, &g->info);
		if (ret == 0)
			g->have_info = true;
	}
	if (ret == 0)
		*info = g->info;
	pthread_mutex_unlock(&g->info_lock);
	return ret;
}

static int mp_group_connect(struct mp_group *g, const struct mp_devcfg *cfg)
{
	struct mu_client_opts opts;
	struct mu_client_session s;
	int ret;

	memset(&opts, 0, sizeof(opts));
	opts.struct_size = sizeof(opts);
	opts.timeout_ms = mp_timeout_ms();
	opts.log = mp_client_log;
	opts.log_opaque = g;
	opts.log_level = mp_log_level;
	ret = mu_client_connect(&g->client, cfg->socket, &opts);
	if (ret < 0) {
		mp_log(MP_ERR,
		       "/dev/vfio/%d (%s): cannot connect to the vfio-user "
		       "server at %s: %s%s",
		       g->num, cfg->source, cfg->socket, strerror(-ret),
		       ret == -ENOENT || ret == -ECONNREFUSED
			       ? " (is the device server running?)"
			       : "");
		return ret;
	}
	g->pgsizes = MU_DEFAULT_PGSIZES;
	g->max_dma_maps = MU_DEFAULT_MAX_DMA_MAPS;
	if (mu_client_get_session(g->client, &s) == 0) {
		g->pgsizes = s.pgsizes ? s.pgsizes : MU_DEFAULT_PGSIZES;
		g->max_dma_maps = s.max_dma_maps;
		mp_log(MP_INFO,
		       "/dev/vfio/%d: connected to %s (vfio-user %u.%u)",
		       g->num, cfg->socket, s.major, s.minor);
	}
	return 0;
}

int mp_group_open(int num, int flags, bool *ours)
{
	struct mp_devcfg cfg;
	struct mp_group *g;
	char what[64];
	int fd, ret, slot = -1;

	*ours = false;
	if (mp_config_lookup(num, &cfg) < 0)
		return -ENOENT;
	*ours = true;

	pthread_mutex_lock(&mp_iommu_lock);
	for (int i = 0; i < MP_MAX_GROUPS; i++) {
		if (mp_groups[i] && mp_groups[i]->num == num) {
			pthread_mutex_unlock(&mp_iommu_lock);
			return -EBUSY;
		}
		if (!mp_groups[i] && slot < 0)
			slot = i;
	}
	pthread_mutex_unlock(&mp_iommu_lock);
	if (slot < 0)
		return -ENOSPC;

	g = calloc(1, sizeof(*g));
	if (!g)
		return -ENOMEM;
	g->num = num;
	g->sink_fd = -1;
	pthread_mutex_init(&g->info_lock, NULL);
	snprintf(g->socket, sizeof(g->socket), "%s", cfg.socket);
	snprintf(g->name, sizeof(g->name), "%s", cfg.name);
	/* Stands in for QEMU's "no eventfd" (-1) entries: vfio-user can't
	 * pass -1, so those vectors signal an eventfd nobody reads. */
	g->sink_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	ret = g->sink_fd < 0 ? -errno : mp_group_connect(g, &cfg);
	if (ret < 0)
		goto fail;

	snprintf(what, sizeof(what), "muser-vfio-group-%d", num);
	fd = mp_fake_fd(what, flags);
	ret = fd;
	if (fd < 0)
		goto fail;
	pthread_mutex_lock(&mp_iommu_lock);
	if (mp_groups[slot]) {
		/* Lost a race with another open of a group. */
		pthread_mutex_unlock(&mp_iommu_lock);
		mp_real.close(fd);
		ret = -EBUSY;
		goto fail;
	}
	mp_groups[slot] = g;
	pthread_mutex_unlock(&mp_iommu_lock);
	ret = mp_fd_register(fd, MP_GROUP, g);
	if (ret < 0) {
		mp_real.close(fd);
		pthread_mutex_lock(&mp_iommu_lock);
		mp_groups[slot] = NULL;
		pthread_mutex_unlock(&mp_iommu_lock);
		goto fail;
	}
	mp_service_add(g);
	mp_debug("group %d: fd %d, device '%s', server %s", num, fd, g->name,
		 g->socket);
	return fd;
fail:
	if (g->client)
		mu_client_destroy(g->client);
	if (g->sink_fd >= 0)
		mp_real.close(g->sink_fd);
	pthread_mutex_destroy(&g->info_lock);
	free(g);
	return ret;
}

void mp_group_free(struct mp_group *g)
{
	pthread_mutex_lock(&mp_iommu_lock);
	mp_container_detach(g);
	for (int i = 0; i < MP_MAX_GROUPS; i++)
		if (mp_groups[i] == g)
			mp_groups[i] = NULL;
	pthread_mutex_unlock(&mp_iommu_lock);
	mp_service_remove(g);
	mu_client_destroy(g->client);
	mp_real.close(g->sink_fd);
	pthread_mutex_destroy(&g->info_lock);
	mp_debug("group %d: closed", g->num);
	free(g);
}

static int mp_set_container(struct mp_group *g, unsigned long arg)
{
	struct mp_ref ref;
	int cfd, ret;

	memcpy(&cfd, (void *)arg, sizeof(cfd));
	if (!mp_fd_get(cfd, &ref))
		return -EINVAL; /* a real container: not for our groups */
	if (ref.kind != MP_CONTAINER) {
		mp_ref_put(&ref);
		return -EINVAL;
	}
	pthread_mutex_lock(&mp_iommu_lock);
	ret = mp_container_attach(ref.obj, g);
	pthread_mutex_unlock(&mp_iommu_lock);
	mp_ref_put(&ref);
	return ret;
}

static int mp_get_device_fd(struct mp_group *g, unsigned long arg)
{
	const char *name = (const char *)arg;
	struct mu_device_info info;
	char what[NAME_MAX + 32];
	int fd, ret;

	if (g->name[0] && strcmp(name, g->name) != 0) {
		mp_log(MP_ERR,
		       "/dev/vfio/%d has device '%s', not '%s' (the device "
		       "name is the basename of the sysfsdev directory)",
		       g->num, g->name, name);
		return -ENODEV;
	}
	pthread_mutex_lock(&mp_iommu_lock);
	ret = g->container && g->container->iommu ? 0 : -EINVAL;
	pthread_mutex_unlock(&mp_iommu_lock);
	if (ret < 0)
		return ret;
	memset(&info, 0, sizeof(info));
	ret = mp_group_device_info(g, &info);
	if (ret < 0) {
		mp_log(MP_ERR, "%s: DEVICE_GET_INFO failed: %s", g->socket,
		       strerror(-ret));
		mp_group_failed(g, ret);
		return ret;
	}
	snprintf(what, sizeof(what), "muser-vfio-device:%s", name);
	fd = mp_fake_fd(what, O_CLOEXEC);
	if (fd < 0)
		return fd;
	ret = mp_fd_register(fd, MP_DEVICE, g);
	if (ret < 0) {
		mp_real.close(fd);
		return ret;
	}
	mp_log(MP_INFO, "device %s: fd %d on %s (%u regions, %u irqs)", name,
	       fd, g->socket, info.num_regions, info.num_irqs);
	return fd;
}

int mp_group_ioctl(struct mp_group *g, unsigned long req, unsigned long arg)
{
	struct vfio_group_status st;
	int ret;

	switch (req) {
	case VFIO_GROUP_GET_STATUS:
		memcpy(&st.argsz, (void *)arg, sizeof(st.argsz));
		if (st.argsz < sizeof(st))
			return -EINVAL;
		pthread_mutex_lock(&mp_iommu_lock);
		st.flags = VFIO_GROUP_FLAGS_VIABLE |
			   (g->container ? VFIO_GROUP_FLAGS_CONTAINER_SET : 0);
		pthread_mutex_unlock(&mp_iommu_lock);
		memcpy((char *)arg + offsetof(struct vfio_group_status, flags),
		       &st.flags, sizeof(st.flags));
		ret = 0;
		break;
	case VFIO_GROUP_SET_CONTAINER:
		ret = mp_set_container(g, arg);
		break;
	case VFIO_GROUP_UNSET_CONTAINER:
		pthread_mutex_lock(&mp_iommu_lock);
		ret = g->container ? 0 : -EINVAL;
		mp_container_detach(g);
		pthread_mutex_unlock(&mp_iommu_lock);
		break;
	case VFIO_GROUP_GET_DEVICE_FD:
		ret = mp_get_device_fd(g, arg);
		break;
	default:
		ret = -ENOTTY;
		break;
	}
	mp_debug("group %d ioctl 0x%lx = %d", g->num, req, ret);
	return ret;
}
