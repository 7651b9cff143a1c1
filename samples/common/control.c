/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * control.c - line-based control socket for the sample devices.
 */
#include "control.h"

#include "muser/device.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

static int listen_unix(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct stat st;
	int fd, err;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	/* Only ever remove a socket file: a typo must not eat a real file. */
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode))
			return -EEXIST;
		unlink(path);
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(fd, CONTROL_MAX_CLIENTS) < 0) {
		err = -errno;
		close(fd);
		return err;
	}
	return fd;
}

int control_open(struct control *c, const char *path, control_fn fn,
		 void *opaque)
{
	int fd = listen_unix(path);

	memset(c, 0, sizeof(*c));
	c->listen_fd = -1;
	for (unsigned i = 0; i < CONTROL_MAX_CLIENTS; i++)
		c->clients[i].fd = -1;
	if (fd < 0)
		return fd;
	c->path = strdup(path);
	if (!c->path) {
		close(fd);
		return -ENOMEM;
	}
	c->listen_fd = fd;
	c->fn = fn;
	c->opaque = opaque;
	return 0;
}

static void drop_client(struct control_client *cl)
{
	close(cl->fd);
	cl->fd = -1;
	cl->len = 0;
}

void control_close(struct control *c)
{
	if (c->listen_fd < 0)
		return;
	for (unsigned i = 0; i < CONTROL_MAX_CLIENTS; i++)
		if (c->clients[i].fd >= 0)
			drop_client(&c->clients[i]);
	close(c->listen_fd);
	c->listen_fd = -1;
	/* unlink(), or through the sandbox's helper (sample_sandbox()
	 * declared the path) */
	mu_dev_sandbox_unlink(c->path);
	free(c->path);
	c->path = NULL;
}

unsigned control_pollfds(const struct control *c, struct pollfd *pfd)
{
	unsigned n = 0;

	if (c->listen_fd < 0)
		return 0;
	pfd[n++] = (struct pollfd){.fd = c->listen_fd, .events = POLLIN};
	for (unsigned i = 0; i < CONTROL_MAX_CLIENTS; i++)
		pfd[n++] = (struct pollfd){.fd = c->clients[i].fd,
					   .events = POLLIN};
	return n;
}

static void send_line(struct control_client *cl, const char *reply)
{
	char out[CONTROL_LINE_MAX + 2];
	int n = snprintf(out, sizeof(out), "%s\n", reply);

	/* Answers are short; a peer that doesn't read them is dropped. */
	if (send(cl->fd, out, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT) != n)
		drop_client(cl);
}

static void client_read(struct control *c, struct control_client *cl)
{
	ssize_t r = recv(cl->fd, cl->buf + cl->len, sizeof(cl->buf) - cl->len,
			 MSG_DONTWAIT);
	char *nl;

	if (r < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (r <= 0) {
		drop_client(cl);
		return;
	}
	cl->len += (size_t)r;
	while (cl->fd >= 0 && (nl = memchr(cl->buf, '\n', cl->len))) {
		char reply[CONTROL_LINE_MAX];
		size_t used = (size_t)(nl - cl->buf) + 1;

		*nl = '\0';
		if (nl > cl->buf && nl[-1] == '\r')
			nl[-1] = '\0';
		reply[0] = '\0';
		c->fn(c->opaque, cl->buf, reply, sizeof(reply));
		send_line(cl, reply);
		if (cl->fd < 0)
			return;
		memmove(cl->buf, cl->buf + used, cl->len - used);
		cl->len -= used;
	}
	if (cl->fd >= 0 && cl->len == sizeof(cl->buf)) {
		send_line(cl, "error: line too long");
		if (cl->fd >= 0)
			drop_client(cl);
	}
}

void control_dispatch(struct control *c, const struct pollfd *pfd, unsigned n)
{
	if (c->listen_fd < 0 || n < 1 + CONTROL_MAX_CLIENTS)
		return;
	for (unsigned i = 0; i < CONTROL_MAX_CLIENTS; i++) {
		struct control_client *cl = &c->clients[i];

		if (cl->fd >= 0 && pfd[1 + i].fd == cl->fd &&
		    pfd[1 + i].revents)
			client_read(c, cl);
	}
	if (pfd[0].revents & POLLIN) {
		int fd = accept4(c->listen_fd, NULL, NULL,
				 SOCK_CLOEXEC | SOCK_NONBLOCK);
		unsigned i;

		if (fd < 0)
			return;
		for (i = 0; i < CONTROL_MAX_CLIENTS; i++)
			if (c->clients[i].fd < 0)
				break;
		if (i == CONTROL_MAX_CLIENTS) {
			static const char busy[] = "error: too many clients\n";

			if (send(fd, busy, sizeof(busy) - 1,
				 MSG_NOSIGNAL | MSG_DONTWAIT) < 0) {
			}
			close(fd);
			return;
		}
		c->clients[i].fd = fd;
		c->clients[i].len = 0;
	}
}
