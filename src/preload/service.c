/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * service.c - a background thread that serves the servers' DMA_READ and
 * DMA_WRITE requests (fd-less maps) while no QEMU thread is waiting on
 * the connection. QEMU never polls our sockets, so without it a device
 * doing DMA on its own (not inside a register access) would stall.
 * The thread blocks every signal so QEMU's signal handling is unchanged.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "preload.h"

#define MP_SVC_MAX 256

static pthread_mutex_t mp_svc_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t mp_svc_cond = PTHREAD_COND_INITIALIZER;
static struct mp_group *mp_svc[MP_SVC_MAX];
static struct mp_group *mp_svc_busy;
static int mp_svc_wake = -1;
static bool mp_svc_started;

static void mp_svc_kick(void)
{
	uint64_t one = 1;

	if (mp_svc_wake >= 0 && write(mp_svc_wake, &one, sizeof(one)) < 0)
		return; /* already signalled (counter full): fine */
}

static bool mp_svc_has(struct mp_group *g)
{
	for (int i = 0; i < MP_SVC_MAX; i++)
		if (mp_svc[i] == g)
			return true;
	return false;
}

static void *mp_svc_thread(void *arg)
{
	struct pollfd pfd[MP_SVC_MAX + 1];
	struct mp_group *who[MP_SVC_MAX + 1];

	(void)arg;
	for (;;) {
		nfds_t n = 1;
		uint64_t v;

		pfd[0].fd = mp_svc_wake;
		pfd[0].events = POLLIN;
		pthread_mutex_lock(&mp_svc_lock);
		for (int i = 0; i < MP_SVC_MAX; i++) {
			struct mp_group *g = mp_svc[i];
			int fd;

			if (!g || atomic_load(&g->dead))
				continue;
			fd = mu_client_get_poll_fd(g->client);
			if (fd < 0)
				continue;
			pfd[n].fd = fd;
			pfd[n].events = POLLIN;
			who[n++] = g;
		}
		pthread_mutex_unlock(&mp_svc_lock);

		if (poll(pfd, n, -1) < 0) {
			if (errno == EINTR)
				continue;
			mp_log(MP_ERR, "service thread: poll: %s",
			       strerror(errno));
			return NULL;
		}
		if (pfd[0].revents && read(mp_svc_wake, &v, sizeof(v)) < 0)
			v = 0;
		for (nfds_t i = 1; i < n; i++) {
			struct mp_group *g = who[i];
			int ret;

			if (!pfd[i].revents)
				continue;
			pthread_mutex_lock(&mp_svc_lock);
			if (!mp_svc_has(g)) {
				pthread_mutex_unlock(&mp_svc_lock);
				continue;
			}
			mp_svc_busy = g;
			pthread_mutex_unlock(&mp_svc_lock);

			ret = mu_client_process(g->client);
			if (ret < 0 && ret != -EAGAIN && ret != -EINTR)
				mp_group_failed(g, ret);
			else if (pfd[i].revents & (POLLHUP | POLLERR))
				mp_group_failed(g, -ECONNRESET);
			else if (ret == 0)
				/* A QEMU thread waiting for a reply is
				 * reading the socket right now and serves
				 * what came: don't spin on the same data. */
				usleep(200);

			pthread_mutex_lock(&mp_svc_lock);
			mp_svc_busy = NULL;
			pthread_cond_broadcast(&mp_svc_cond);
			pthread_mutex_unlock(&mp_svc_lock);
		}
	}
	return NULL;
}

static void mp_svc_start(void)
{
	sigset_t all, old;
	pthread_attr_t attr;
	pthread_t t;

	mp_svc_wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (mp_svc_wake < 0) {
		mp_log(MP_ERR, "service thread: eventfd: %s", strerror(errno));
		return;
	}
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&t, &attr, mp_svc_thread, NULL) == 0)
		mp_svc_started = true;
	else
		mp_log(MP_ERR, "cannot start the service thread");
	pthread_attr_destroy(&attr);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
}

void mp_service_add(struct mp_group *g)
{
	pthread_mutex_lock(&mp_svc_lock);
	if (!mp_svc_started)
		mp_svc_start();
	for (int i = 0; i < MP_SVC_MAX; i++) {
		if (!mp_svc[i]) {
			mp_svc[i] = g;
			break;
		}
	}
	mp_svc_kick();
	pthread_mutex_unlock(&mp_svc_lock);
}

void mp_service_remove(struct mp_group *g)
{
	pthread_mutex_lock(&mp_svc_lock);
	for (int i = 0; i < MP_SVC_MAX; i++)
		if (mp_svc[i] == g)
			mp_svc[i] = NULL;
	/* The thread may be inside mu_client_process(g->client). */
	while (mp_svc_busy == g)
		pthread_cond_wait(&mp_svc_cond, &mp_svc_lock);
	mp_svc_kick();
	pthread_mutex_unlock(&mp_svc_lock);
}
