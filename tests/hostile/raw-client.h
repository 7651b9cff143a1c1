/* SPDX-License-Identifier: BSD-3-Clause */
/* A deliberately dumb client on the wire core: sends exactly the bytes and
 * fds a test asks for, and reads back whatever the server answers. */
#ifndef MUSER_RAW_CLIENT_H
#define MUSER_RAW_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "wire-core.h"

struct raw {
	struct mu_chan ch;
	uint16_t next_id;
};

int raw_connect(struct raw *r, const char *path);
void raw_close(struct raw *r);
/* Send header fields as given (size: 0 = computed) + payload + fds. */
int raw_send(struct raw *r, uint16_t id, uint16_t cmd, uint32_t flags,
	     uint32_t size, const void *payload, size_t len, const int *fds,
	     unsigned nfds);
/* Wait (up to ms) for one message; 1 = got one, 0 = EOF, <0 error. */
int raw_recv(struct raw *r, struct mu_msg *m, int ms);
/* VERSION with the given JSON (NULL: a default proposal). Returns 0 or
 * the error of the reply. */
int raw_negotiate(struct raw *r, uint16_t major, uint16_t minor,
		  const char *json);
/* Send a command and wait for its reply; returns reply payload length or
 * the reply's -errno (or -ECONNRESET when the server closed). */
ssize_t raw_call(struct raw *r, uint16_t cmd, const void *payload, size_t len,
		 const int *fds, unsigned nfds, void *out, size_t out_cap);

/* Number of open fds of a process (from /proc/PID/fd). */
int proc_fd_count(pid_t pid);

#endif
