/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * RLIMIT_NOFILE reached, on both sides.
 *
 * Server: the muser-dma-test sample (argv[1]) runs as a child; prlimit()
 * lowers its RLIMIT_NOFILE to its current fd count plus a few, then a
 * client sends SET_IRQS with more eventfds than fit, DMA_MAP with a memfd
 * when no fd fits, and extra clients knock while one is attached and
 * while none is. The server must answer with errors and keep serving;
 * once the limit is back it must serve a new client with its fd count at
 * the baseline.
 *
 * Client: in forked children with a low RLIMIT_NOFILE, mu_client_connect
 * (with and without the twin socket) and REGION_INFO of a mappable
 * region (its reply carries an fd) must fail cleanly: an error, no crash,
 * and after mu_client_destroy() the fd count of the baseline.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dma-test.h"
#include "faults-common.h"
#include "muser/client.h"

static int failed;
static const char *sock;
static pid_t srv;

#define CHECK(cond, ...)                                                       \
	do {                                                                   \
		if (!(cond)) {                                                 \
			printf("not ok - " __VA_ARGS__);                       \
			printf("  [%s:%d]\n", __FILE__, __LINE__);             \
			failed++;                                              \
		}                                                              \
	} while (0)

static void set_nofile(pid_t pid, rlim_t soft)
{
	struct rlimit old, l;

	prlimit(pid, RLIMIT_NOFILE, NULL, &old);
	l = old;
	l.rlim_cur = soft;
	if (prlimit(pid, RLIMIT_NOFILE, &l, NULL) < 0)
		printf("# prlimit: %s\n", strerror(errno));
}

static rlim_t hard_nofile(pid_t pid)
{
	struct rlimit l;

	prlimit(pid, RLIMIT_NOFILE, NULL, &l);
	return l.rlim_max;
}

/* The soft limit that leaves exactly `room` fd numbers free in pid (0:
 * this process): RLIMIT_NOFILE bounds fd numbers, and holes below the
 * highest open fd are free slots too. */
static rlim_t limit_for_room(pid_t pid, int room)
{
	char path[64];
	static bool used[65536];
	int mx = fl_max_fd(pid), n, holes = 0;

	memset(used, 0, sizeof(used));
	for (n = 0; n <= mx && n < 65536; n++) {
		if (pid)
			snprintf(path, sizeof(path), "/proc/%d/fd/%d",
				 (int)pid, n);
		else
			snprintf(path, sizeof(path), "/proc/self/fd/%d", n);
		used[n] = access(path, F_OK) == 0;
	}
	for (n = 0;; n++) {
		if (n <= mx && used[n])
			continue;
		if (holes == room)
			return (rlim_t)n;
		holes++;
	}
}

static void leave_room(pid_t pid, int room)
{
	set_nofile(pid, limit_for_room(pid, room));
}

static bool alive(pid_t pid)
{
	int st;

	return waitpid(pid, &st, WNOHANG) == 0;
}

static int healthy(void)
{
	struct rc r;
	uint32_t v = 0;
	int e = rc_connect_retry(&r, sock, 5000);

	if (e == 0)
		e = rc_version(&r, true);
	if (e == 0)
		e = rc_read32(&r, 0, DMAT_REG_MAGIC, &v);
	rc_close(&r);
	return e ? e : (v == DMAT_MAGIC ? 0 : -EIO);
}

static int memfd_of(size_t size)
{
	int fd = memfd_create("faults", MFD_CLOEXEC);

	if (fd >= 0 && ftruncate(fd, (off_t)size) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* ---- server side ------------------------------------------------------------ */

static void server_cases(void)
{
	struct mu_irq_set set = {20,
				 MU_IRQ_SET_DATA_EVENTFD |
					 MU_IRQ_SET_ACTION_TRIGGER,
				 MU_PCI_MSIX_IRQ_INDEX, 0, 4};
	struct mu_dma_map map = {32, 3, 0, 0x10000, 0x1000};
	struct mu_device_info di = {16, 0, 0, 0};
	rlim_t hard = hard_nofile(srv);
	int base, efd[4], mfd, i;
	struct rc r, x[3];
	ssize_t e;

	CHECK(healthy() == 0, "server healthy at start\n");
	usleep(100 * 1000);
	base = fl_fd_count(srv);

	/* SET_IRQS with 4 eventfds when 2 fit. */
	CHECK(rc_connect(&r, sock) == 0 && rc_version(&r, false) == 0,
	      "connect\n");
	usleep(20 * 1000);
	leave_room(srv, 2);
	for (i = 0; i < 4; i++)
		efd[i] = eventfd(0, EFD_CLOEXEC);
	e = rc_call(&r, MU_CMD_DEVICE_SET_IRQS, &set, sizeof(set), efd, 4,
		    NULL, 0);
	CHECK(e < 0 && e != -ECONNRESET,
	      "SET_IRQS with 4 fds at the limit: got %zd, want an error "
	      "reply\n",
	      e);
	printf("# SET_IRQS 4 eventfds, 2 fit: %s\n", strerror((int)-e));
	e = rc_call(&r, MU_CMD_DEVICE_GET_INFO, &di, sizeof(di), NULL, 0, NULL,
		    0);
	CHECK(e == 16, "GET_INFO after the refused SET_IRQS: %zd\n", e);
	set.index = MU_PCI_INTX_IRQ_INDEX;
	set.count = 1;
	e = rc_call(&r, MU_CMD_DEVICE_SET_IRQS, &set, sizeof(set), efd, 1,
		    NULL, 0);
	CHECK(e == 0, "SET_IRQS with 1 fd that fits: %zd\n", e);

	/* DMA_MAP with a memfd when no fd fits. */
	leave_room(srv, 0);
	mfd = memfd_of(0x1000);
	e = rc_call(&r, MU_CMD_DMA_MAP, &map, sizeof(map), &mfd, 1, NULL, 0);
	CHECK(e < 0 && e != -ECONNRESET,
	      "DMA_MAP memfd with no fd left: %zd, want an error reply\n", e);
	printf("# DMA_MAP memfd, no fd left: %s\n", strerror((int)-e));
	e = rc_call(&r, MU_CMD_DEVICE_GET_INFO, &di, sizeof(di), NULL, 0, NULL,
		    0);
	CHECK(e == 16, "GET_INFO after the refused DMA_MAP: %zd\n", e);
	leave_room(srv, 1);
	e = rc_call(&r, MU_CMD_DMA_MAP, &map, sizeof(map), &mfd, 1, NULL, 0);
	CHECK(e == 0, "DMA_MAP memfd with 1 fd left: %zd\n", e);
	close(mfd);

	/* Extra clients while one is attached and no fd is left. */
	leave_room(srv, 0);
	for (i = 0; i < 3; i++)
		CHECK(rc_connect(&x[i], sock) == 0, "extra connect %d\n", i);
	usleep(300 * 1000); /* past an idle tick: the server tries accept */
	e = rc_call(&r, MU_CMD_DEVICE_GET_INFO, &di, sizeof(di), NULL, 0, NULL,
		    0);
	CHECK(e == 16, "attached client served while extras wait: %zd\n", e);
	CHECK(alive(srv), "server alive with extra clients at the limit\n");
	rc_close(&r);
	/* The attached client left: one fd is free for the first extra. */
	e = rc_version(&x[0], false);
	CHECK(e == 0, "first extra client served after the first left: %zd\n",
	      e);
	for (i = 0; i < 3; i++)
		rc_close(&x[i]);
	for (i = 0; i < 4; i++)
		close(efd[i]);

	set_nofile(srv, hard);
	if (alive(srv)) {
		int h = healthy();

		CHECK(h == 0, "server healthy at the end: %s\n", strerror(-h));
		CHECK(fl_wait_fd_count(srv, base, 5000) == base,
		      "server fds %d, baseline %d\n", fl_fd_count(srv), base);
	}
}

/* Nobody attached, no fd left, a client knocks: accept() fails with
 * EMFILE. The server must survive it and serve that client once fds are
 * back. (Known to fail: see tests/faults/meson.build.) */
static void idle_accept_case(void)
{
	rlim_t hard = hard_nofile(srv);
	struct rc r;
	ssize_t e;

	CHECK(healthy() == 0, "server healthy at start\n");
	usleep(100 * 1000);
	leave_room(srv, 0);
	CHECK(rc_connect(&r, sock) == 0, "connect at the limit\n");
	usleep(300 * 1000);
	CHECK(alive(srv), "server survives accept() failing with EMFILE "
			  "while idle\n");
	if (alive(srv)) {
		set_nofile(srv, hard);
		e = rc_version(&r, false);
		CHECK(e == 0, "the waiting client is served once fds are "
			      "back: %zd\n",
		      e);
	}
	rc_close(&r);
}

/* ---- client side (forked children) --------------------------------------------- */

static int child_connect(int room, bool twin, int *err)
{
	struct mu_client_opts o = {.struct_size = sizeof(o),
				   .timeout_ms = 5000,
				   .no_twin_socket = !twin};
	struct rlimit l;
	mu_client_t *c = NULL;
	int base = fl_fd_count(0);

	getrlimit(RLIMIT_NOFILE, &l);
	l.rlim_cur = limit_for_room(0, room);
	setrlimit(RLIMIT_NOFILE, &l);
	*err = mu_client_connect(&c, sock, &o);
	if (*err == 0)
		mu_client_destroy(c);
	l.rlim_cur = l.rlim_max; /* counting fds needs one */
	setrlimit(RLIMIT_NOFILE, &l);
	return fl_fd_count(0) == base ? 0 : 1;
}

static int child_region_info(int *err)
{
	struct mu_client_opts o = {.struct_size = sizeof(o),
				   .timeout_ms = 5000,
				   .no_twin_socket = true};
	const struct mu_client_region *reg;
	struct mu_irq_info ii;
	struct rlimit l;
	mu_client_t *c = NULL;
	int base = fl_fd_count(0), e;

	if (mu_client_connect(&c, sock, &o) < 0)
		return 2;
	getrlimit(RLIMIT_NOFILE, &l);
	l.rlim_cur = limit_for_room(0, 0);
	setrlimit(RLIMIT_NOFILE, &l);
	*err = mu_client_region_info(c, 4, &reg);
	l.rlim_cur = l.rlim_max;
	setrlimit(RLIMIT_NOFILE, &l);
	/* The connection may live on or be closed; either way no crash. */
	e = mu_client_irq_info(c, 0, &ii);
	printf("# region info without a free fd: %s; then the connection "
	       "%s\n",
	       strerror(-*err), e == 0 ? "still works" : strerror(-e));
	mu_client_destroy(c);
	return fl_fd_count(0) == base ? 0 : 1;
}

/* Run fn in a child; it reports the errno through the pipe. */
static void client_case(const char *what, int which, int room, bool twin)
{
	int pp[2], err = 0, st;
	pid_t pid;

	if (pipe(pp) < 0)
		return;
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		int r;

		close(pp[0]);
		r = which == 0 ? child_connect(room, twin, &err)
			       : child_region_info(&err);
		fflush(stdout);
		if (write(pp[1], &err, sizeof(err)) != sizeof(err))
			_exit(3);
		_exit(r);
	}
	close(pp[1]);
	if (read(pp[0], &err, sizeof(err)) != sizeof(err))
		err = 1;
	close(pp[0]);
	st = fl_wait_child(pid, 20000);
	printf("# client %s: %s\n", what, err ? strerror(-err) : "success");
	CHECK(st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0,
	      "client %s: crashed or leaked fds (status %#x)\n", what, st);
}

int main(int argc, char **argv)
{
	static const char *const extra[] = {"--quiet", NULL};
	char path[108];

	if (argc < 2) {
		fprintf(stderr, "usage: %s MUSER-DMA-TEST\n", argv[0]);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	snprintf(path, sizeof(path), "/tmp/mu-faults-rl-%d.sock", getpid());
	sock = path;
	srv = fl_spawn_server(argv[1], path, extra);
	if (srv <= 0) {
		printf("not ok - server did not start\n");
		return 1;
	}
	if (argc > 2 && !strcmp(argv[2], "idle-accept")) {
		idle_accept_case();
		if (alive(srv))
			fl_kill_server(srv);
		printf("%s\n", failed ? "FAILED" : "PASSED");
		return failed ? 1 : 0;
	}
	server_cases();
	client_case("connect, no fd free", 0, 0, true);
	client_case("connect, 1 fd free, twin", 0, 1, true);
	client_case("connect, 1 fd free, no twin", 0, 1, false);
	client_case("connect, 2 fds free, twin", 0, 2, true);
	client_case("region info with mmap fd, no fd free", 1, 0, false);
	CHECK(healthy() == 0, "server healthy after the client cases\n");
	fl_kill_server(srv);
	printf("%s\n", failed ? "FAILED" : "PASSED");
	return failed ? 1 : 0;
}
