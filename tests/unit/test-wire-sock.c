/* SPDX-License-Identifier: BSD-3-Clause */
/* Socket setup: stale files, live servers, non-sockets, adoption. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "testutil.h"
#include "wire-core.h"

static char path[128];

static int setup(void **state)
{
	(void)state;
	snprintf(path, sizeof(path), "/tmp/mu-sock-test-%d.sock", getpid());
	unlink(path);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	unlink(path);
	return 0;
}

static void test_listen_connect_accept(void **state)
{
	int before = count_open_fds(), l, c, a;

	(void)state;
	l = mu_sock_listen(path, 4);
	assert_true(l >= 0);
	c = mu_sock_connect(path);
	assert_true(c >= 0);
	a = mu_sock_accept(l);
	assert_true(a >= 0);
	assert_int_equal(fcntl(a, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
	assert_int_equal(mu_sock_check_adoptable(a), 0);
	/* Nothing pending on a non-blocking listener: -EAGAIN. */
	assert_int_equal(mu_fd_set_nonblock(l, true), 0);
	assert_int_equal(mu_sock_accept(l), -EAGAIN);
	close(a);
	close(c);
	close(l);
	assert_int_equal(count_open_fds(), before);
}

static void test_stale_socket_replaced(void **state)
{
	int l;

	(void)state;
	l = mu_sock_listen(path, 4);
	assert_true(l >= 0);
	close(l); /* the file stays behind, as after a crash */
	assert_int_equal(mu_sock_connect(path), -ECONNREFUSED);
	l = mu_sock_listen(path, 4);
	assert_true(l >= 0);
	close(l);
}

static void test_live_server_kept(void **state)
{
	int l, r;

	(void)state;
	l = mu_sock_listen(path, 4);
	assert_true(l >= 0);
	r = mu_sock_listen(path, 4);
	assert_int_equal(r, -EADDRINUSE);
	close(l);
}

static void test_regular_file_not_unlinked(void **state)
{
	int fd;
	struct stat st;

	(void)state;
	fd = open(path, O_CREAT | O_WRONLY, 0600);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(mu_sock_listen(path, 4), -EEXIST);
	assert_int_equal(stat(path, &st), 0); /* still there */
}

static void test_bad_paths(void **state)
{
	char longp[200];

	(void)state;
	memset(longp, 'x', sizeof(longp));
	longp[sizeof(longp) - 1] = 0;
	assert_int_equal(mu_sock_listen(longp, 1), -ENAMETOOLONG);
	assert_int_equal(mu_sock_connect(longp), -ENAMETOOLONG);
	assert_int_equal(mu_sock_listen("", 1), -EINVAL);
	assert_int_equal(mu_sock_connect(NULL), -EINVAL);
	assert_int_equal(mu_sock_connect("/nonexistent/dir/x.sock"), -ENOENT);
}

static void test_adoptable(void **state)
{
	int p[2], sv[2];

	(void)state;
	assert_int_equal(pipe(p), 0);
	assert_int_equal(mu_sock_check_adoptable(p[0]), -ENOTSOCK);
	close(p[0]);
	close(p[1]);
	assert_int_equal(socketpair(AF_UNIX, SOCK_DGRAM, 0, sv), 0);
	assert_int_equal(mu_sock_check_adoptable(sv[0]), -EPROTOTYPE);
	close(sv[0]);
	close(sv[1]);
	assert_int_equal(mu_sock_check_adoptable(-1), -EBADF);
	assert_int_equal(mu_sock_pair(sv), 0);
	assert_int_equal(mu_sock_check_adoptable(sv[1]), 0);
	close(sv[0]);
	close(sv[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
		T(test_listen_connect_accept),
		T(test_stale_socket_replaced),
		T(test_live_server_kept),
		T(test_regular_file_not_unlinked),
		T(test_bad_paths),
		T(test_adoptable),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
