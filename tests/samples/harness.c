/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * harness.c - child process and socket helpers for the samples tests.
 */
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool is_socket(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISSOCK(st.st_mode);
}

int server_start(struct server *s, const char *bin, const char *const *args)
{
	const char *argv[32];
	char sockarg[160];
	bool want_ctl = false;
	unsigned n = 0;
	long deadline;

	memset(s, 0, sizeof(*s));
	s->pid = -1;
	snprintf(s->dir, sizeof(s->dir), "/tmp/muser-samples-XXXXXX");
	if (!mkdtemp(s->dir))
		return -errno;
	snprintf(s->sock, sizeof(s->sock), "%s/dev.sock", s->dir);
	snprintf(s->ctl, sizeof(s->ctl), "%s/ctl.sock", s->dir);
	snprintf(sockarg, sizeof(sockarg), "--socket-path=%s", s->sock);

	argv[n++] = bin;
	argv[n++] = sockarg;
	for (; args && *args && n < 30; args++) {
		if (!strcmp(*args, "@CTL@")) {
			argv[n++] = s->ctl;
			want_ctl = true;
		} else {
			argv[n++] = *args;
		}
	}
	argv[n] = NULL;

	s->pid = fork();
	if (s->pid < 0)
		return -errno;
	if (s->pid == 0) {
		execv(bin, (char *const *)argv);
		_exit(127);
	}
	deadline = now_ms() + 5000;
	while (!is_socket(s->sock) || (want_ctl && !is_socket(s->ctl))) {
		int st;

		if (waitpid(s->pid, &st, WNOHANG) == s->pid) {
			s->pid = -1;
			return -ECHILD;
		}
		if (now_ms() > deadline)
			return -ETIMEDOUT;
		usleep(2000);
	}
	return 0;
}

int server_stop(struct server *s, int sig)
{
	long deadline = now_ms() + 5000;
	int st;

	if (s->pid <= 0)
		return -1;
	kill(s->pid, sig ? sig : SIGTERM);
	for (;;) {
		pid_t r = waitpid(s->pid, &st, WNOHANG);

		if (r == s->pid)
			break;
		if (now_ms() > deadline) {
			kill(s->pid, SIGKILL);
			waitpid(s->pid, &st, 0);
			s->pid = -1;
			return -1;
		}
		usleep(2000);
	}
	s->pid = -1;
	if (WIFEXITED(st))
		return WEXITSTATUS(st);
	return 128 + WTERMSIG(st);
}

void server_cleanup(struct server *s)
{
	if (s->pid > 0)
		server_stop(s, SIGKILL);
	if (s->dir[0]) {
		unlink(s->sock);
		unlink(s->ctl);
		rmdir(s->dir);
	}
}

int client_connect(const char *path, mu_client_t **out)
{
	return client_connect_opts(path, NULL, out);
}

int client_connect_opts(const char *path, const struct mu_client_opts *opts,
			mu_client_t **out)
{
	long deadline = now_ms() + 5000;
	int r;

	for (;;) {
		r = mu_client_connect(out, path, opts);
		if (r != -ECONNREFUSED && r != -ENOENT)
			return r;
		if (now_ms() > deadline)
			return r;
		usleep(5000);
	}
}

int ctl_cmd(const char *path, const char *cmd, char *reply, size_t len)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	size_t got = 0;
	int fd, r = 0;

	if (len == 0 || strlen(path) >= sizeof(sa.sun_path))
		return -EINVAL;
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    dprintf(fd, "%s\n", cmd) < 0) {
		r = -errno;
		goto out;
	}
	while (got + 1 < len) {
		ssize_t n;

		if (wait_readable(fd, 5000) != 1) {
			r = -ETIMEDOUT;
			goto out;
		}
		n = read(fd, reply + got, 1);
		if (n <= 0) {
			r = n < 0 ? -errno : -ECONNRESET;
			goto out;
		}
		if (reply[got] == '\n')
			break;
		got++;
	}
	reply[got] = '\0';
out:
	close(fd);
	return r;
}

int wait_readable(int fd, int ms)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	int r;

	do
		r = poll(&p, 1, ms);
	while (r < 0 && errno == EINTR);
	return r > 0 ? 1 : 0;
}

uint64_t eventfd_wait(int efd, int ms)
{
	uint64_t v = 0;

	if (wait_readable(efd, ms) != 1)
		return 0;
	if (read(efd, &v, sizeof(v)) != sizeof(v))
		return 0;
	return v;
}

uint32_t crc32_ref(const void *buf, size_t len)
{
	const uint8_t *p = buf;
	uint32_t crc = 0xffffffffu;

	/* Bitwise on purpose: independent of the sample's table. */
	while (len--) {
		crc ^= *p++;
		for (int k = 0; k < 8; k++)
			crc = crc & 1 ? 0xedb88320u ^ (crc >> 1) : crc >> 1;
	}
	return ~crc;
}
