/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * harness.h - run a sample device program as a child process on a
 * temporary socket and talk to it, for the samples test suite.
 */
#ifndef MUSER_TEST_SAMPLES_HARNESS_H
#define MUSER_TEST_SAMPLES_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "muser/client.h"

struct server {
	pid_t pid;
	char dir[64];
	char sock[128];
	char ctl[128];
};

/*
 * Start bin with --socket-path=<tmp>/dev.sock and the NULL-terminated
 * extra args (the word "@CTL@" is replaced by <tmp>/ctl.sock), then wait
 * until the device socket (and the control socket, if asked for) exist.
 * Returns 0 or -errno.
 */
int server_start(struct server *s, const char *bin, const char *const *args);
/* Send sig (0: SIGTERM) and reap; returns the exit status, or 128+signal
 * when it was killed, or -1 when it did not exit within 5 s (then it is
 * SIGKILLed). */
int server_stop(struct server *s, int sig);
/* Remove the temporary directory (after server_stop). */
void server_cleanup(struct server *s);

/* Connect a client, retrying while the listener comes up. */
int client_connect(const char *path, mu_client_t **out);
int client_connect_opts(const char *path, const struct mu_client_opts *opts,
			mu_client_t **out);

/* One control-socket round trip: send "cmd\n", read one line. */
int ctl_cmd(const char *path, const char *cmd, char *reply, size_t len);

/* Wait up to ms for fd to be readable; 1 readable, 0 timeout. */
int wait_readable(int fd, int ms);
/* Read an eventfd if it fired within ms: its count, or 0. */
uint64_t eventfd_wait(int efd, int ms);

uint32_t crc32_ref(const void *buf, size_t len);

#endif
