/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Device context life cycle: create (socket path or adopted fd), limits,
 * callbacks, logging, realize, destroy.
 */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "dev-internal.h"
#include "sandbox.h"

static void log_stderr(void *opaque, int level, const char *msg)
{
	(void)opaque;
	fprintf(stderr, "muser[%d]: %s\n", level, msg);
}

void mu_log_impl(struct mu_dev *dev, int level, const char *fmt, ...)
{
	char buf[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	dev->log_fn(dev->log_opaque, level, buf);
}

MU_EXPORT void mu_dev_set_log(mu_dev_t *dev, mu_log_fn fn, void *opaque,
			      int level)
{
	if (!dev)
		return;
	dev->log_fn = fn;
	dev->log_opaque = opaque;
	dev->log_level = level;
}

MU_EXPORT void *mu_dev_opaque(mu_dev_t *dev)
{
	return dev ? dev->opaque : NULL;
}

static struct mu_dev *dev_alloc(void *opaque)
{
	struct mu_dev *dev = calloc(1, sizeof(*dev));
	unsigned i;

	if (!dev)
		return NULL;
	dev->opaque = opaque;
	dev->log_fn = log_stderr;
	dev->log_level = MU_LOG_WARN;
	dev->lim.struct_size = sizeof(dev->lim);
	dev->lim.max_data_xfer_size = MU_DEFAULT_MAX_DATA_XFER;
	dev->lim.max_dma_maps = MU_DEFAULT_MAX_DMA_MAPS;
	dev->lim.max_msg_fds = 16;
	dev->lim.twin_socket = true;
	dev->lim.send_timeout_ms = 5000;
	dev->lim.negotiate_timeout_ms = 5000;
	dev->listen_fd = dev->epfd = dev->wake_fd = dev->timer_fd = -1;
	dev->chan.fd = dev->twin.fd = -1;
	dev->sbx_file = -1;
	dev->mig_state = MU_MIG_STATE_RUNNING;
	for (i = 0; i < MU_PCI_NUM_IRQS; i++)
		dev->irqs[i].count = 0;
	/* ERR and REQ exist on every device; they fire only on request. */
	dev->irqs[MU_PCI_ERR_IRQ_INDEX].count = 1;
	dev->irqs[MU_PCI_REQ_IRQ_INDEX].count = 1;
	pthread_mutex_init(&dev->lock, NULL);
	pthread_mutex_init(&dev->twin_lock, NULL);
	mu_dma_wait_init(dev);
	pthread_rwlock_init(&dev->dma_lock, NULL);
	dev->regions = calloc(MU_PCI_NUM_REGIONS, sizeof(*dev->regions));
	if (!dev->regions) {
		free(dev);
		return NULL;
	}
	dev->nr_regions = MU_PCI_NUM_REGIONS;
	for (i = 0; i < dev->nr_regions; i++) {
		dev->regions[i].memfd = -1;
		dev->regions[i].client_fd = -1;
	}
	return dev;
}

/* Remove our socket file, but not one a newer server has put there since
 * (same path, another inode). */
static void unlink_if_ours(struct mu_dev *dev)
{
	struct stat st;

	if (dev->sbx_file >= 0) {
		mu_sbx_unlink_socket(dev);
		return;
	}
	if (mu_sbx_active()) {
		mu_log(dev, MU_LOG_WARN,
		       "sandboxed: %s left behind (device not declared to "
		       "mu_dev_sandbox)",
		       dev->path);
		return;
	}
	if (lstat(dev->path, &st) == 0 && st.st_dev == dev->sock_dev &&
	    st.st_ino == dev->sock_ino)
		unlink(dev->path);
}

MU_EXPORT int mu_dev_create(mu_dev_t **out, const char *socket_path,
			    void *opaque)
{
	struct mu_dev *dev;
	int fd;

	if (!out || !socket_path)
		return -EINVAL;
	dev = dev_alloc(opaque);
	if (!dev)
		return -ENOMEM;
	dev->path = strdup(socket_path);
	if (!dev->path) {
		mu_dev_destroy(dev);
		return -ENOMEM;
	}
	fd = mu_sock_listen(socket_path, 16);
	if (fd < 0) {
		free(dev->path);
		dev->path = NULL; /* not ours: never unlink it */
		mu_dev_destroy(dev);
		return fd;
	}
	dev->listen_fd = fd;
	mu_fd_set_nonblock(fd, true);
	{
		struct stat st;

		if (lstat(socket_path, &st) == 0) {
			dev->sock_dev = st.st_dev;
			dev->sock_ino = st.st_ino;
		}
	}
	*out = dev;
	return 0;
}

MU_EXPORT int mu_dev_create_fd(mu_dev_t **out, int fd, void *opaque)
{
	struct mu_dev *dev;
	int r;

	if (!out)
		return -EINVAL;
	r = mu_sock_check_adoptable(fd);
	if (r < 0)
		return r;
	dev = dev_alloc(opaque);
	if (!dev)
		return -ENOMEM;
	if (mu_sock_is_listening(fd)) {
		/* A listening socket from a supervisor: serve its clients
		 * one after another, as with a path (but never unlink). */
		dev->listen_fd = fd;
		mu_fd_set_nonblock(fd, true);
	} else {
		dev->fd_mode = true;
		dev->chan.fd = fd; /* adopted at realize */
	}
	*out = dev;
	return 0;
}

MU_EXPORT int mu_dev_set_limits(mu_dev_t *dev,
				const struct mu_dev_limits *limits)
{
	struct mu_dev_limits l = dev ? dev->lim : (struct mu_dev_limits){0};
	size_t n;

	if (!dev || !limits || dev->realized)
		return -EINVAL;
	n = limits->struct_size < sizeof(l) ? limits->struct_size : sizeof(l);
	if (n < offsetof(struct mu_dev_limits, max_data_xfer_size))
		return -EINVAL;
	memcpy(&l, limits, n);
	l.struct_size = sizeof(l);
	/* QEMU refuses more than 64 MiB per transfer; below 8 bytes not even
	 * a register fits. */
	if (l.max_data_xfer_size < 8 || l.max_data_xfer_size > (64u << 20) ||
	    l.max_msg_fds < 1 || l.max_msg_fds > MU_MAX_FDS_LIMIT ||
	    l.max_dma_maps == 0)
		return -EINVAL;
	if (l.send_timeout_ms < 0 || l.negotiate_timeout_ms < 0)
		return -EINVAL;
	dev->lim = l;
	return 0;
}

MU_EXPORT int mu_dev_set_callbacks(mu_dev_t *dev,
				   const struct mu_dev_callbacks *cb)
{
	size_t n;

	if (!dev || !cb || dev->realized)
		return -EINVAL;
	n = cb->struct_size < sizeof(dev->cb) ? cb->struct_size
					      : sizeof(dev->cb);
	if (n < sizeof(size_t))
		return -EINVAL;
	memset(&dev->cb, 0, sizeof(dev->cb));
	memcpy(&dev->cb, cb, n);
	dev->cb.struct_size = sizeof(dev->cb);
	/* Migration needs all three callbacks. */
	if ((dev->cb.mig_transition || dev->cb.mig_read || dev->cb.mig_write) &&
	    !(dev->cb.mig_transition && dev->cb.mig_read && dev->cb.mig_write))
		return -EINVAL;
	return 0;
}

static int realize_fds(struct mu_dev *dev)
{
	struct epoll_event ev = {.events = EPOLLIN};

	dev->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (dev->wake_fd < 0)
		return -errno;
	/* Fires when a connection's time to negotiate is up. */
	dev->timer_fd =
		timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (dev->timer_fd < 0)
		return -errno;
	dev->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (dev->epfd < 0)
		return -errno;
	ev.data.fd = dev->timer_fd;
	if (epoll_ctl(dev->epfd, EPOLL_CTL_ADD, dev->timer_fd, &ev) < 0)
		return -errno;
	ev.data.fd = dev->wake_fd;
	if (epoll_ctl(dev->epfd, EPOLL_CTL_ADD, dev->wake_fd, &ev) < 0)
		return -errno;
	if (dev->listen_fd >= 0) {
		ev.data.fd = dev->listen_fd;
		if (epoll_ctl(dev->epfd, EPOLL_CTL_ADD, dev->listen_fd, &ev) <
		    0)
			return -errno;
	}
	return 0;
}

MU_EXPORT int mu_dev_realize(mu_dev_t *dev)
{
	int r, fd;

	if (!dev || dev->realized)
		return -EINVAL;
	if (!dev->pci_ready) {
		mu_log(dev, MU_LOG_ERR, "realize: mu_pci_setup() not called");
		return -EINVAL;
	}
	dev->wlim.max_data_xfer = dev->lim.max_data_xfer_size;
	dev->wlim.max_fds = dev->lim.max_msg_fds;
	r = mu_pci_realize(dev);
	if (r == 0)
		r = mu_msix_realize(dev);
	if (r == 0)
		r = mu_irq_realize(dev);
	if (r == 0)
		r = realize_fds(dev);
	if (r < 0)
		return r;
	mu_regions_realize(dev);
	dev->realized = true;
	if (dev->fd_mode) {
		fd = dev->chan.fd;
		dev->chan.fd = -1;
		r = mu_attach_fd(dev, fd);
		if (r < 0)
			return r;
	}
	return 0;
}

MU_EXPORT void mu_dev_destroy(mu_dev_t *dev)
{
	if (!dev)
		return;
	if (dev->conn != MU_CONN_NONE)
		mu_detach(dev, "destroy");
	else if (dev->fd_mode && dev->chan.fd >= 0 && !dev->realized)
		close(dev->chan.fd);
	if (dev->listen_fd >= 0)
		close(dev->listen_fd);
	if (dev->path)
		unlink_if_ours(dev);
	free(dev->path);
	if (dev->epfd >= 0)
		close(dev->epfd);
	if (dev->wake_fd >= 0)
		close(dev->wake_fd);
	if (dev->timer_fd >= 0)
		close(dev->timer_fd);
	mu_qmsg_free(dev->parked);
	mu_dlog_stop(dev);
	mu_dma_free(dev);
	mu_irq_free(dev);
	mu_regions_free(dev);
	mu_pci_free(dev);
	pthread_mutex_destroy(&dev->lock);
	pthread_mutex_destroy(&dev->twin_lock);
	mu_dma_wait_fini(dev);
	pthread_rwlock_destroy(&dev->dma_lock);
	free(dev);
}
