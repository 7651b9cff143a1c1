/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Waking the serving thread: device threads, signal handlers and
 * mu_dev_stop() write the wake eventfd (which is in the poll set the
 * caller's event loop watches); the serving thread drains it. Also the
 * monotonic clock every deadline here is measured on.
 */
#include <errno.h>
#include <poll.h>
#include <time.h>
#include <unistd.h>

#include "dev-internal.h"

/* Wake the serving thread out of poll (async quiesce, stop). Only
 * async-signal-safe calls here. */
void mu_wake(struct mu_dev *dev)
{
	uint64_t one = 1;
	ssize_t n;

	atomic_store(&dev->wake_pending, true);
	if (dev->wake_fd >= 0)
		n = write(dev->wake_fd, &one, sizeof(one));
	(void)n;
}

int64_t mu_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int mu_poll_one(int fd, int timeout_ms)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	int r = poll(&p, 1, timeout_ms);

	if (r < 0)
		return -errno;
	return r;
}

void mu_drain_wake(struct mu_dev *dev)
{
	uint64_t v;
	ssize_t n;

	if (!atomic_load_explicit(&dev->wake_pending, memory_order_relaxed) ||
	    !atomic_exchange(&dev->wake_pending, false))
		return;
	n = read(dev->wake_fd, &v, sizeof(v));
	(void)n;
}
