/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The client connection: accepting one client at a time (further ones are
 * refused with EBUSY), attaching it, the deadline for its VERSION, the
 * connection state's one setter, and detaching it when it leaves.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "dev-internal.h"

/* Largest VERSION message: header, version and the JSON. */
#define VERSION_MSG_MAX                                                        \
	(sizeof(struct mu_hdr) + sizeof(struct mu_version) + MU_CAPS_JSON_MAX)

static void set_timeo(int fd, int opt, int ms)
{
	struct timeval tv = {.tv_sec = ms / 1000,
			     .tv_usec = (ms % 1000) * 1000};

	setsockopt(fd, SOL_SOCKET, opt, &tv, sizeof(tv));
}

void mu_conn_poll(struct mu_dev *dev, bool on)
{
	struct epoll_event ev = {.events = on ? EPOLLIN : 0};

	ev.data.fd = dev->chan.fd;
	epoll_ctl(dev->epfd, EPOLL_CTL_MOD, dev->chan.fd, &ev);
}

static const char *const conn_names[] = {
	[MU_CONN_NONE] = "NONE",     [MU_CONN_NEGOTIATING] = "NEGOTIATING",
	[MU_CONN_READY] = "READY",   [MU_CONN_DRAINING] = "DRAINING",
	[MU_CONN_BROKEN] = "BROKEN",
};

void mu_conn_set(struct mu_dev *dev, enum mu_conn_state s, const char *why)
{
	if (dev->conn == s)
		return;
	mu_log(dev, MU_LOG_DEBUG, "connection %s -> %s: %s",
	       conn_names[dev->conn], conn_names[s], why);
	dev->conn = s;
}

int mu_attach_fd(struct mu_dev *dev, int fd)
{
	struct epoll_event ev = {.events = EPOLLIN};
	int r;

	r = mu_chan_reopen(&dev->chan, fd, VERSION_MSG_MAX,
			   dev->lim.max_msg_fds);
	if (r < 0) {
		close(fd);
		dev->chan.fd = -1;
		return r;
	}
	dev->chan.max_wait_ms = MU_IDLE_TICK_MS; /* trickling clients */
	mu_fd_set_nonblock(fd, false);
	set_timeo(fd, SO_RCVTIMEO, MU_IDLE_TICK_MS);
	if (dev->lim.send_timeout_ms > 0)
		set_timeo(fd, SO_SNDTIMEO, dev->lim.send_timeout_ms);
	ev.data.fd = fd;
	if (epoll_ctl(dev->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		r = -errno;
		mu_chan_fini(&dev->chan);
		return r;
	}
	mu_conn_set(dev, MU_CONN_NEGOTIATING, "accepted");
	mu_negotiate_timer(dev, true);
	dev->msg_count = 0;
	mu_log(dev, MU_LOG_INFO, "client connected");
	return 0;
}

void mu_negotiate_timer(struct mu_dev *dev, bool on)
{
	struct itimerspec t = {{0, 0}, {0, 0}};
	int ms = dev->lim.negotiate_timeout_ms;

	dev->negotiate_deadline = on && ms > 0 ? mu_now_ms() + ms : 0;
	if (dev->negotiate_deadline) {
		t.it_value.tv_sec = ms / 1000;
		t.it_value.tv_nsec = (long)(ms % 1000) * 1000000;
	}
	timerfd_settime(dev->timer_fd, 0, &t, NULL);
}

/* A connection that never sent VERSION: its time is up? */
bool mu_negotiation_overdue(struct mu_dev *dev)
{
	uint64_t n;
	ssize_t r;

	if (dev->conn != MU_CONN_NEGOTIATING || !dev->negotiate_deadline ||
	    mu_now_ms() < dev->negotiate_deadline)
		return false;
	r = read(dev->timer_fd, &n, sizeof(n)); /* consumed: not level */
	(void)r;
	mu_log(dev, MU_LOG_WARN, "client sent no VERSION in %d ms: dropped",
	       dev->lim.negotiate_timeout_ms);
	return true;
}

void mu_detach(struct mu_dev *dev, const char *why)
{
	bool ready = dev->conn >= MU_CONN_READY;

	if (dev->conn == MU_CONN_NONE)
		return;
	/* Device threads waiting for DMA replies give up now, and new
	 * message DMA fails, before anything below waits for the device. */
	mu_dma_fail_all(dev, -ECONNRESET);
	if (ready && dev->q_head) {
		mu_conn_set(dev, MU_CONN_DRAINING, "detaching");
		mu_queue_run_orphans(dev);
	}
	mu_log(dev, MU_LOG_INFO, "client detached: %s", why);
	mu_conn_set(dev, MU_CONN_NONE, why);
	mu_negotiate_timer(dev, false);
	epoll_ctl(dev->epfd, EPOLL_CTL_DEL, dev->chan.fd, NULL);
	mu_queue_drop(dev);
	if (ready) {
		/* Stop the device's DMA before the maps go away. */
		if (mu_quiesce_sync(dev) < 0)
			mu_log(dev, MU_LOG_WARN, "quiesce on detach failed");
		dev->qs = MU_QS_QUIESCED;
		mu_dlog_stop(dev);
		mu_dma_release(dev);
		mu_irq_release(dev);
		mu_reset_quiesced(dev, MU_RESET_LOST_CONN);
		dev->qs = MU_QS_RUNNING;
		if (dev->cb.detach)
			dev->cb.detach(dev->opaque);
	}
	pthread_mutex_lock(&dev->twin_lock);
	if (dev->has_twin)
		mu_chan_fini(&dev->twin);
	dev->has_twin = false;
	atomic_store(&dev->twin_lost, false);
	pthread_mutex_unlock(&dev->twin_lock);
	mu_chan_fini(&dev->chan);
}

/*
 * One client at a time: a further one gets an error reply to its VERSION
 * (EBUSY: "Device or resource busy", which clients print) and is closed.
 * A client sends VERSION right after connecting; the first refused one in
 * a round may take REFUSE_WAIT_MS to do so, the rest can't hold the device
 * at all. Without a VERSION the reply goes out with id 0, what QEMU's and
 * muser's clients use for their first message. What it sent is read
 * first, so the close doesn't turn into a reset before it reads the reply.
 */
#define REFUSE_WAIT_MS 50

static void refuse_busy(int fd, bool may_wait)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	struct mu_hdr h = {0}, rh;
	uint8_t junk[512];
	ssize_t n;

	if (may_wait)
		poll(&p, 1, REFUSE_WAIT_MS);
	n = recv(fd, &h, sizeof(h), MSG_DONTWAIT);
	rh = (struct mu_hdr){
		.msg_id = n == (ssize_t)sizeof(h) ? h.msg_id : 0,
		.cmd = MU_CMD_VERSION,
		.size = sizeof(rh),
		.flags = MU_FLAG_TYPE_REPLY | MU_FLAG_ERROR,
		.error = EBUSY,
	};
	while (n > 0)
		n = recv(fd, junk, sizeof(junk), MSG_DONTWAIT);
	n = send(fd, &rh, sizeof(rh), MSG_DONTWAIT | MSG_NOSIGNAL);
	(void)n;
	close(fd);
}

static bool client_hung_up(struct mu_dev *dev)
{
	struct pollfd p = {.fd = dev->chan.fd, .events = POLLRDHUP};

	return poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP));
}

/* While a client is attached, further clients are refused. */
void mu_reject_extra(struct mu_dev *dev)
{
	bool first = true;
	int fd;

	if (dev->listen_fd < 0)
		return;
	/* Once the attached client has hung up, the next one in the backlog
	 * is served when its end-of-file is read, not refused. */
	while (!client_hung_up(dev) &&
	       (fd = mu_sock_accept(dev->listen_fd)) >= 0) {
		mu_log(dev, MU_LOG_INFO, "busy: extra client refused");
		refuse_busy(fd, first);
		first = false;
	}
}

/*
 * Out of fds or memory, accept() fails while the connection stays queued,
 * so a level-triggered listener would make every poller spin. Until an
 * accept succeeds again the listener is edge-triggered in the epoll set
 * (the next connection attempt, or any other event, retries) and run()
 * retries on a timer instead of polling it.
 */
static void accept_pause(struct mu_dev *dev, bool paused)
{
	struct epoll_event ev = {.events = EPOLLIN | (paused ? EPOLLET : 0)};

	if (dev->accept_paused == paused)
		return;
	dev->accept_paused = paused;
	ev.data.fd = dev->listen_fd;
	epoll_ctl(dev->epfd, EPOLL_CTL_MOD, dev->listen_fd, &ev);
}

int mu_accept_client(struct mu_dev *dev)
{
	int fd = mu_sock_accept(dev->listen_fd);

	if (fd == -EAGAIN || fd == -ECONNABORTED || fd == -EINTR)
		return 0;
	if (fd == -EMFILE || fd == -ENFILE || fd == -ENOBUFS || fd == -ENOMEM) {
		if (!dev->accept_paused)
			mu_log(dev, MU_LOG_WARN,
			       "cannot accept a client: %s; retrying later",
			       strerror(-fd));
		accept_pause(dev, true);
		return 0;
	}
	if (fd < 0)
		return fd;
	accept_pause(dev, false);
	return mu_attach_fd(dev, fd) < 0 ? 0 : 1;
}

MU_EXPORT int mu_dev_get_poll_fd(mu_dev_t *dev)
{
	if (!dev || !dev->realized)
		return -EINVAL;
	return dev->epfd;
}

MU_EXPORT bool mu_dev_is_attached(mu_dev_t *dev)
{
	return dev && dev->conn >= MU_CONN_READY;
}
