/* SPDX-License-Identifier: BSD-3-Clause */
/* UNIX socket setup: listen (with stale-file recovery), accept, connect. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "wire-core.h"

static int fill_addr(struct sockaddr_un *sa, const char *path)
{
	size_t n = path ? strlen(path) : 0;

	if (n == 0)
		return -EINVAL;
	if (n >= sizeof(sa->sun_path))
		return -ENAMETOOLONG;
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	memcpy(sa->sun_path, path, n + 1);
	return 0;
}

/* A socket file is stale when nobody accepts on it any more. */
static int path_is_stale_socket(const char *path, const struct sockaddr_un *sa)
{
	struct stat st;
	int fd, r;

	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISSOCK(st.st_mode))
		return -EEXIST; /* never unlink something that is not ours */
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	do
		r = connect(fd, (const struct sockaddr *)sa, sizeof(*sa));
	while (r < 0 && errno == EINTR);
	r = r < 0 ? errno : 0;
	close(fd);
	if (r == 0 || r == EAGAIN)
		return -EADDRINUSE; /* a live server owns it */
	return r == ECONNREFUSED ? 1 : -r;
}

int mu_sock_listen(const char *path, int backlog)
{
	struct sockaddr_un sa;
	int fd, r;

	r = fill_addr(&sa, path);
	if (r < 0)
		return r;
	r = path_is_stale_socket(path, &sa);
	if (r < 0)
		return r;
	if (r == 1 && unlink(path) < 0 && errno != ENOENT)
		return -errno;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(fd, backlog > 0 ? backlog : 16) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	return fd;
}

int mu_sock_accept(int listen_fd)
{
	int fd;

	do
		fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
	while (fd < 0 && errno == EINTR);
	if (fd < 0)
		return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	return fd;
}

int mu_sock_connect(const char *path)
{
	struct sockaddr_un sa;
	int fd, r;

	r = fill_addr(&sa, path);
	if (r < 0)
		return r;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	do
		r = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
	while (r < 0 && errno == EINTR);
	if (r < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	return fd;
}

int mu_sock_check_adoptable(int fd)
{
	int type = 0;
	socklen_t len = sizeof(type);
	struct sockaddr_storage ss;
	socklen_t slen = sizeof(ss);

	if (fd < 0)
		return -EBADF;
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0)
		return -errno; /* ENOTSOCK for pipes, files, /dev/null */
	if (type != SOCK_STREAM)
		return -EPROTOTYPE;
	if (getsockname(fd, (struct sockaddr *)&ss, &slen) < 0)
		return -errno;
	if (ss.ss_family != AF_UNIX)
		return -EAFNOSUPPORT;
	return 0;
}

bool mu_sock_is_listening(int fd)
{
	int on = 0;
	socklen_t len = sizeof(on);

	return getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &on, &len) == 0 && on;
}

int mu_sock_pair(int fds[2])
{
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) < 0)
		return -errno;
	return 0;
}

int mu_fd_set_nonblock(int fd, bool nonblock)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0)
		return -errno;
	fl = nonblock ? fl | O_NONBLOCK : fl & ~O_NONBLOCK;
	return fcntl(fd, F_SETFL, fl) < 0 ? -errno : 0;
}
