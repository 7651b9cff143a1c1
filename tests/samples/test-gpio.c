/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * test-gpio.c - drive the muser-gpio-idio16 sample over a real socket
 * with libmuser-client, the way Linux's gpio-pci-idio-16 driver does, and
 * change its inputs through the control socket.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"

static const char *server_bin;

#define CFG MU_PCI_CONFIG_REGION_INDEX
#define BAR2 MU_PCI_BAR2_REGION_INDEX

struct fixture {
	struct server srv;
	mu_client_t *c;
};

static int gpio_setup(void **state)
{
	static const char *const args[] = {"--quiet", "--control", "@CTL@",
					   NULL};
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f || server_start(&f->srv, server_bin, args) < 0 ||
	    client_connect(f->srv.sock, &f->c) < 0) {
		if (f)
			server_cleanup(&f->srv);
		free(f);
		return -1;
	}
	*state = f;
	return 0;
}

static int gpio_teardown(void **state)
{
	struct fixture *f = *state;

	mu_client_destroy(f->c);
	server_stop(&f->srv, SIGTERM);
	server_cleanup(&f->srv);
	free(f);
	return 0;
}

static uint8_t rd8(mu_client_t *c, uint64_t off)
{
	uint8_t v = 0xee;

	assert_int_equal(mu_client_region_read(c, BAR2, off, &v, 1), 0);
	return v;
}

static void wr8(mu_client_t *c, uint64_t off, uint8_t v)
{
	assert_int_equal(mu_client_region_write(c, BAR2, off, &v, 1), 0);
}

static uint32_t cfg32(mu_client_t *c, uint64_t off)
{
	uint32_t v = 0;

	assert_int_equal(mu_client_region_read(c, CFG, off, &v, 4), 0);
	return v;
}

static void ctl(struct fixture *f, const char *cmd, const char *want)
{
	char reply[256];

	assert_int_equal(ctl_cmd(f->srv.ctl, cmd, reply, sizeof(reply)), 0);
	if (want)
		assert_string_equal(reply, want);
}

static void test_identity(void **state)
{
	struct fixture *f = *state;
	struct mu_device_info info;
	const struct mu_client_region *r;
	uint32_t bar;

	assert_int_equal(mu_client_device_info(f->c, &info), 0);
	assert_true(info.flags & MU_DEVICE_FLAGS_PCI);
	assert_true(info.num_regions >= MU_PCI_NUM_REGIONS);

	assert_int_equal(cfg32(f->c, 0x00), 0x0dc8494f);
	assert_int_equal(cfg32(f->c, 0x08) >> 8, 0xff0000);
	assert_int_equal(cfg32(f->c, 0x2c), 0x0dc8494f);
	assert_int_equal((cfg32(f->c, 0x3c) >> 8) & 0xff, 1); /* INTA# */
	/* No capability list: the real card has none. */
	assert_int_equal((cfg32(f->c, 0x04) >> 16) & 0x10, 0);

	/* BAR2 is an 8-byte I/O BAR; the others are not implemented. */
	bar = cfg32(f->c, 0x18);
	assert_int_equal(bar & 1, 1);
	bar = 0xffffffff;
	assert_int_equal(mu_client_region_write(f->c, CFG, 0x18, &bar, 4), 0);
	assert_int_equal(cfg32(f->c, 0x18) & 0xfffc, 0xfff8);
	assert_int_equal(cfg32(f->c, 0x10), 0);
	assert_int_equal(cfg32(f->c, 0x14), 0);

	assert_int_equal(mu_client_region_info(f->c, BAR2, &r), 0);
	assert_int_equal(r->size, 8);
	assert_true(r->flags & MU_REGION_INFO_FLAG_READ);
	assert_true(r->flags & MU_REGION_INFO_FLAG_WRITE);
	assert_false(r->flags & MU_REGION_INFO_FLAG_MMAP);
}

static void test_outputs(void **state)
{
	struct fixture *f = *state;
	uint16_t w = 0x5aa5, back = 0;

	wr8(f->c, 0, 0x34);
	wr8(f->c, 4, 0x12);
	assert_int_equal(rd8(f->c, 0), 0x34);
	assert_int_equal(rd8(f->c, 4), 0x12);
	ctl(f, "get-outputs", "0x1234");

	/* A wider access is a run of byte accesses: 4 gets 0xa5, 5 (an
	 * input register) ignores 0x5a. */
	assert_int_equal(mu_client_region_write(f->c, BAR2, 4, &w, 2), 0);
	ctl(f, "get-outputs", "0xa534");
	assert_int_equal(mu_client_region_read(f->c, BAR2, 0, &back, 2), 0);
	assert_int_equal(back & 0xff, 0x34);
	assert_int_equal(rd8(f->c, 7), 0xff);

	/* Out-of-range accesses get an error, not a callback. */
	assert_true(mu_client_region_read(f->c, BAR2, 8, &back, 1) < 0);
	assert_true(mu_client_region_read(f->c, BAR2, 7, &back, 2) < 0);
}

static void test_inputs(void **state)
{
	struct fixture *f = *state;

	ctl(f, "set-inputs 0xabcd", "ok 0xabcd");
	assert_int_equal(rd8(f->c, 1), 0xcd);
	assert_int_equal(rd8(f->c, 5), 0xab);
	ctl(f, "get-inputs", "0xabcd");
	ctl(f, "toggle-input 15", "ok 0x2bcd");
	ctl(f, "set-inputs 70000", NULL);
	ctl(f, "get-inputs", "0x2bcd");
	ctl(f, "bogus", NULL);
	ctl(f, "set-inputs 0", "ok 0x0000");
}

static void test_intx(void **state)
{
	struct fixture *f = *state;
	int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);

	assert_true(efd >= 0);
	assert_int_equal(mu_client_irq_set_eventfds(f->c, MU_PCI_INTX_IRQ_INDEX,
						    0, 1, &efd),
			 0);

	/* The driver's probe: filters off, IRQ off, clear. */
	wr8(f->c, 3, 0);
	wr8(f->c, 2, 0);
	wr8(f->c, 1, 0);
	/* Disabled: a change is not latched. */
	ctl(f, "set-inputs 0x0001", NULL);
	assert_int_equal(eventfd_wait(efd, 200), 0);
	assert_int_equal(rd8(f->c, 6), 0);

	/* First unmask of a GPIO IRQ: read offset 2 enables. */
	(void)rd8(f->c, 2);
	ctl(f, "set-inputs 0x0000", NULL);
	assert_true(eventfd_wait(efd, 2000) > 0);
	assert_int_equal(rd8(f->c, 6), 0x05);
	/* Reading the status does not clear; a high-byte change adds bit 1. */
	ctl(f, "set-inputs 0x0100", NULL);
	assert_int_equal(rd8(f->c, 6), 0x07);
	/* Auto-masked: no new event until UNMASK, and then one because the
	 * line is still high. */
	assert_int_equal(eventfd_wait(efd, 200), 0);
	assert_int_equal(
		mu_client_irq_mask(f->c, MU_PCI_INTX_IRQ_INDEX, 0, 1, false),
		0);
	assert_true(eventfd_wait(efd, 2000) > 0);

	/* The handler clears by writing offset 1: line low. */
	wr8(f->c, 1, 0);
	assert_int_equal(rd8(f->c, 6), 0);
	assert_int_equal(
		mu_client_irq_mask(f->c, MU_PCI_INTX_IRQ_INDEX, 0, 1, false),
		0);
	assert_int_equal(eventfd_wait(efd, 200), 0);

	/* Next change, next interrupt. */
	ctl(f, "toggle-input 3", NULL);
	assert_true(eventfd_wait(efd, 2000) > 0);
	assert_int_equal(rd8(f->c, 6), 0x05);

	/* Disabling drops the latch. */
	wr8(f->c, 2, 0);
	assert_int_equal(rd8(f->c, 6), 0);
	ctl(f, "status", NULL);

	assert_int_equal(mu_client_irq_disable(f->c, MU_PCI_INTX_IRQ_INDEX), 0);
	close(efd);
}

static void test_sigusr1(void **state)
{
	struct fixture *f = *state;
	char reply[64];
	int tries;

	ctl(f, "set-inputs 0x0010", NULL);
	kill(f->srv.pid, SIGUSR1);
	for (tries = 0; tries < 500; tries++) {
		assert_int_equal(
			ctl_cmd(f->srv.ctl, "get-inputs", reply, sizeof(reply)),
			0);
		if (!strcmp(reply, "0x0011"))
			break;
		usleep(2000);
	}
	assert_string_equal(reply, "0x0011");
}

static void test_reset_and_reconnect(void **state)
{
	struct fixture *f = *state;

	wr8(f->c, 0, 0x0f);
	wr8(f->c, 4, 0xf0);
	/* A client leaving is not a power cycle: outputs stay. */
	mu_client_destroy(f->c);
	f->c = NULL;
	assert_int_equal(client_connect(f->srv.sock, &f->c), 0);
	assert_int_equal(rd8(f->c, 0), 0x0f);
	assert_int_equal(rd8(f->c, 4), 0xf0);
	ctl(f, "get-outputs", "0xf00f");

	/* DEVICE_RESET is: outputs off, IRQ off. */
	assert_int_equal(mu_client_reset(f->c), 0);
	ctl(f, "get-outputs", "0x0000");
	assert_int_equal(rd8(f->c, 0), 0);
}

/* --fd=N: serve a socketpair end; exit 0 when the client leaves. */
static void test_fd_mode(void **state)
{
	int sv[2], st;
	char fdarg[32];
	mu_client_t *c;
	uint32_t id = 0;
	pid_t pid;

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	snprintf(fdarg, sizeof(fdarg), "--fd=%d", sv[1]);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(sv[0]);
		execl(server_bin, server_bin, fdarg, "--quiet", (char *)NULL);
		_exit(127);
	}
	close(sv[1]);
	assert_int_equal(mu_client_adopt(&c, sv[0], NULL), 0);
	assert_int_equal(mu_client_region_read(c, CFG, 0, &id, 4), 0);
	assert_int_equal(id, 0x0dc8494f);
	mu_client_destroy(c);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

static void test_sigterm(void **state)
{
	struct server s;
	struct stat st;
	mu_client_t *c;

	(void)state;
	assert_int_equal(server_start(&s, server_bin, NULL), 0);
	assert_int_equal(client_connect(s.sock, &c), 0);
	/* Clean exit with a client attached, and no stale socket file. */
	assert_int_equal(server_stop(&s, SIGTERM), 0);
	assert_int_not_equal(stat(s.sock, &st), 0);
	mu_client_destroy(c);

	assert_int_equal(server_start(&s, server_bin, NULL), 0);
	assert_int_equal(server_stop(&s, SIGINT), 0);
	server_cleanup(&s);
}

static void test_usage(void **state)
{
	const char *cases[][3] = {
		{"--help", NULL, NULL},
		{"--bogus", NULL, NULL},
		{NULL, NULL, NULL}, /* neither socket nor fd */
		{"--socket-path=/tmp/x", "--fd=3", NULL},
	};
	const int want[] = {0, 2, 2, 2};

	(void)state;
	for (unsigned i = 0; i < 4; i++) {
		int st;
		pid_t pid = fork();

		assert_true(pid >= 0);
		if (pid == 0) {
			int null = open("/dev/null", O_WRONLY);

			dup2(null, 1);
			dup2(null, 2);
			execl(server_bin, server_bin, cases[i][0], cases[i][1],
			      (char *)NULL);
			_exit(127);
		}
		assert_int_equal(waitpid(pid, &st, 0), pid);
		assert_true(WIFEXITED(st));
		assert_int_equal(WEXITSTATUS(st), want[i]);
	}
}

int main(int argc, char **argv)
{
	const struct CMUnitTest attached[] = {
		cmocka_unit_test(test_identity),
		cmocka_unit_test(test_outputs),
		cmocka_unit_test(test_inputs),
		cmocka_unit_test(test_intx),
		cmocka_unit_test(test_sigusr1),
		cmocka_unit_test(test_reset_and_reconnect),
	};
	const struct CMUnitTest alone[] = {
		cmocka_unit_test(test_fd_mode),
		cmocka_unit_test(test_sigterm),
		cmocka_unit_test(test_usage),
	};
	int fails;

	if (argc < 2) {
		fprintf(stderr, "usage: %s PATH-TO-muser-gpio-idio16\n",
			argv[0]);
		return 2;
	}
	server_bin = argv[1];
	signal(SIGPIPE, SIG_IGN);
	fails = cmocka_run_group_tests_name("gpio-attached", attached,
					    gpio_setup, gpio_teardown);
	fails += cmocka_run_group_tests_name("gpio-process", alone, NULL, NULL);
	return fails ? 1 : 0;
}
