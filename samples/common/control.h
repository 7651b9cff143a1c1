/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * control.h - a tiny line-based control socket for sample devices: tests
 * and demos connect to a UNIX stream socket, send one command per line
 * and get one line back. It lives in the sample's own poll loop.
 */
#ifndef MUSER_SAMPLE_CONTROL_H
#define MUSER_SAMPLE_CONTROL_H

#include <poll.h>
#include <stddef.h>

#define CONTROL_MAX_CLIENTS 8
#define CONTROL_LINE_MAX 256

/* Handle one command line (no newline); write the answer (no newline)
 * into reply. */
typedef void (*control_fn)(void *opaque, char *line, char *reply,
			   size_t reply_len);

struct control_client {
	int fd;
	size_t len;
	char buf[CONTROL_LINE_MAX];
};

struct control {
	int listen_fd;
	char *path;
	control_fn fn;
	void *opaque;
	struct control_client clients[CONTROL_MAX_CLIENTS];
};

/* Listen on path (a stale socket file there is replaced). */
int control_open(struct control *c, const char *path, control_fn fn,
		 void *opaque);
void control_close(struct control *c);
/* Append this control's fds to pfd (room for 1 + CONTROL_MAX_CLIENTS);
 * returns how many were added. */
unsigned control_pollfds(const struct control *c, struct pollfd *pfd);
/* Handle whatever poll() reported for the fds control_pollfds() added. */
void control_dispatch(struct control *c, const struct pollfd *pfd, unsigned n);

#endif
