/* SPDX-License-Identifier: BSD-3-Clause */
/* Framing over real socketpairs: round trips, fds, lies, partial I/O. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "testutil.h"
#include "wire-core.h"

struct pair {
	struct mu_chan rx;
	int tx; /* raw sending end */
	int fds_before;
};

static int setup(void **state)
{
	struct pair *p = calloc(1, sizeof(*p));
	int sv[2];

	p->fds_before = count_open_fds();
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(mu_chan_init(&p->rx, sv[0], 1 << 21, 8), 0);
	p->tx = sv[1];
	*state = p;
	return 0;
}

static int teardown(void **state)
{
	struct pair *p = *state;
	int before = p->fds_before;

	mu_chan_fini(&p->rx);
	close(p->tx);
	free(p);
	assert_int_equal(count_open_fds(), before); /* nothing leaked */
	return 0;
}

/* Send a message through a plain sendmsg, as any peer would. */
static void raw_send(int fd, uint16_t id, uint16_t cmd, uint32_t size,
		     const void *payload, size_t len, const int *fds,
		     unsigned nfds)
{
	struct mu_hdr h = {.msg_id = id, .cmd = cmd, .size = size};
	struct iovec iov[2] = {{&h, sizeof(h)}, {(void *)payload, len}};

	assert_int_equal(mu_sendmsg_all(fd, iov, len ? 2 : 1, fds, nfds), 0);
}

static void test_roundtrip_every_command(void **state)
{
	struct pair *p = *state;
	struct mu_chan tx;
	struct mu_msg m;
	uint8_t payload[64];
	unsigned cmd;

	assert_int_equal(mu_chan_init(&tx, dup(p->tx), 1 << 20, 8), 0);
	for (cmd = 1; cmd < MU_CMD_MAX; cmd++) {
		struct mu_hdr h = {.msg_id = (uint16_t)(cmd * 7), .cmd = cmd};
		struct iovec iov = {payload, cmd * 3};

		memset(payload, (int)cmd, sizeof(payload));
		assert_int_equal(mu_chan_send(&tx, &h, &iov, 1, NULL, 0), 0);
		assert_int_equal(mu_chan_recv(&p->rx, &m, 0), 1);
		assert_int_equal(m.hdr.cmd, cmd);
		assert_int_equal(m.hdr.msg_id, cmd * 7);
		assert_int_equal(m.hdr.size, 16 + cmd * 3);
		assert_int_equal(m.len, cmd * 3);
		assert_memory_equal(m.payload, payload, cmd * 3);
		assert_int_equal(m.nfds, 0);
	}
	mu_chan_fini(&tx);
}

static void test_pipelined_messages(void **state)
{
	struct pair *p = *state;
	uint8_t blob[3 * 20];
	struct mu_msg m;
	int i;

	for (i = 0; i < 3; i++) {
		struct mu_hdr h = {.msg_id = (uint16_t)i, .cmd = 9, .size = 20};

		memcpy(blob + i * 20, &h, sizeof(h));
		memset(blob + i * 20 + 16, 'a' + i, 4);
	}
	assert_int_equal(write(p->tx, blob, sizeof(blob)), sizeof(blob));
	for (i = 0; i < 3; i++) {
		assert_int_equal(mu_chan_recv(&p->rx, &m, 0), 1);
		assert_int_equal(m.hdr.msg_id, i);
		assert_int_equal(m.payload[0], 'a' + i);
		if (i < 2)
			assert_true(mu_chan_has_msg(&p->rx));
	}
	assert_false(mu_chan_has_msg(&p->rx));
	assert_int_equal(mu_chan_recv(&p->rx, &m, MU_RECV_NONBLOCK), -EAGAIN);
}

static void test_fds_arrive_with_their_message(void **state)
{
	struct pair *p = *state;
	int efd = eventfd(0, EFD_CLOEXEC), pfd[2];
	struct mu_msg m;
	struct stat st;

	assert_int_equal(pipe2(pfd, O_CLOEXEC), 0);
	/* A (no fds), B (two fds), C (no fds), all queued before reading. */
	raw_send(p->tx, 1, 8, 16 + 4, "AAAA", 4, NULL, 0);
	raw_send(p->tx, 2, 8, 16 + 4, "BBBB", 4, (int[]){efd, pfd[0]}, 2);
	raw_send(p->tx, 3, 8, 16 + 4, "CCCC", 4, NULL, 0);
	close(efd);
	close(pfd[0]);
	close(pfd[1]);
	assert_int_equal(mu_chan_recv(&p->rx, &m, 0), 1);
	assert_int_equal(m.hdr.msg_id, 1);
	assert_int_equal(m.nfds, 0);
	assert_int_equal(mu_chan_recv(&p->rx, &m, 0), 1);
	assert_int_equal(m.hdr.msg_id, 2);
	assert_int_equal(m.nfds, 2);
	assert_int_equal(fstat(m.fds[0], &st), 0);
	assert_int_equal(fcntl(m.fds[1], F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
	mu_msg_close_fds(&m);
	assert_int_equal(mu_chan_recv(&p->rx, &m, 0), 1);
	assert_int_equal(m.hdr.msg_id, 3);
	assert_int_equal(m.nfds, 0);
}

static void test_surplus_fds_refused_and_closed(void **state)
{
	struct pair *p = *state;
	int fds[10], i;
	struct mu_msg m;

	for (i = 0; i < 10; i++)
		fds[i] = eventfd(0, EFD_CLOEXEC);
	raw_send(p->tx, 5, 2, 16 + 32, (uint8_t[32]){0}, 32, fds, 10);
	raw_send(p->tx, 6, 4, 16, NULL, 0, NULL, 0);
	for (i = 0; i < 10; i++)
		close(fds[i]);
	assert_int_equal(mu_chan_recv(&p->rx, &m, 0), -EINVAL);
	assert_int_equal(m.hdr.msg_id, 5); /* so an error reply can go out */
	assert_int_equal(m.nfds, 0);
	assert_int_equal(mu_chan_recv(&p->rx, &m, 0), 1);
	assert_int_equal(m.hdr.msg_id, 6); /* the stream is still in sync */
}

static void test_oversized_message_drained(void **state)
{
	struct pair *p = *state;
	size_t big = 3 << 20;
	uint8_t *junk = calloc(1, big);
	int efd = eventfd(0, EFD_CLOEXEC);
	struct mu_msg m;
	pid_t pid;

	/* A writer process, since the socket buffer can't hold it all. */
	pid = fork();
	if (pid == 0) {
		raw_send(p->tx, 1, 10, (uint32_t)(16 + big), junk, big, &efd,
			 1);
		raw_send(p->tx, 2, 4, 16, NULL, 0, NULL, 0);
		free(junk);
		_exit(0);
	}
	close(efd);
	assert_int_equal(mu_chan_recv(&p->rx, &m, 0), -EMSGSIZE);
	assert_int_equal(m.hdr.msg_id, 1);
	assert_int_equal(mu_chan_recv(&p->rx, &m, 0), 1);
	assert_int_equal(m.hdr.msg_id, 2);
	waitpid(pid, NULL, 0);
	free(junk);
	mu_chan_trim(&p->rx);
}

static void test_size_below_header_is_fatal(void **state)
{
	struct pair *p = *state;
	struct mu_hdr h = {.msg_id = 1, .cmd = 4, .size = 8};
	struct mu_msg m;

	assert_int_equal(write(p->tx, &h, sizeof(h)), sizeof(h));
	assert_int_equal(mu_chan_recv(&p->rx, &m, 0), -EPROTO);
}

static void test_eof(void **state)
{
	struct pair *p = *state;
	struct mu_hdr h = {.msg_id = 1, .cmd = 4, .size = 40};
	struct mu_msg m;

	raw_send(p->tx, 1, 4, 16, NULL, 0, NULL, 0);
	assert_int_equal(write(p->tx, &h, sizeof(h)), sizeof(h));
	shutdown(p->tx, SHUT_WR);
	assert_int_equal(mu_chan_recv(&p->rx, &m, 0), 1);
	/* 16 of 40 bytes then EOF: the peer died mid-message. */
	assert_int_equal(mu_chan_recv(&p->rx, &m, 0), -ECONNRESET);
}

static void test_clean_eof(void **state)
{
	struct pair *p = *state;
	struct mu_msg m;

	shutdown(p->tx, SHUT_WR);
	assert_int_equal(mu_chan_recv(&p->rx, &m, 0), 0);
}

static void test_nonblocking_partial(void **state)
{
	struct pair *p = *state;
	uint8_t msg[24] = {0};
	struct mu_hdr h = {.msg_id = 9, .cmd = 10, .size = 24};
	struct mu_msg m;

	memcpy(msg, &h, sizeof(h));
	assert_int_equal(mu_chan_recv(&p->rx, &m, MU_RECV_NONBLOCK), -EAGAIN);
	assert_int_equal(write(p->tx, msg, 10), 10);
	assert_int_equal(mu_chan_recv(&p->rx, &m, MU_RECV_NONBLOCK), -EAGAIN);
	assert_int_equal(write(p->tx, msg + 10, 14), 14);
	assert_int_equal(mu_chan_recv(&p->rx, &m, MU_RECV_NONBLOCK), 1);
	assert_int_equal(m.hdr.msg_id, 9);
}

struct trickle {
	int fd;
	int efd;
};

/* A peer that writes one byte per syscall, the fd with the first byte. */
static void *trickle_writer(void *arg)
{
	struct trickle *t = arg;
	uint8_t msg[2][40];
	int i, j;

	for (i = 0; i < 2; i++) {
		struct mu_hdr h = {
			.msg_id = (uint16_t)(100 + i), .cmd = 2, .size = 48};

		memcpy(msg[i], &h, sizeof(h));
		memset(msg[i] + 16, 'x', 24);
	}
	for (i = 0; i < 2; i++) {
		/* header + 24 of 32 payload bytes... then the rest */
		for (j = 0; j < 40; j++) {
			struct iovec iov = {&msg[i][j], 1};

			mu_sendmsg_all(t->fd, &iov, 1, &t->efd,
				       (i == 1 && j == 0) ? 1 : 0);
		}
		for (j = 0; j < 8; j++) {
			uint8_t z = 0;
			struct iovec iov = {&z, 1};

			mu_sendmsg_all(t->fd, &iov, 1, NULL, 0);
		}
	}
	return NULL;
}

static void test_one_byte_at_a_time(void **state)
{
	struct pair *p = *state;
	struct trickle t = {p->tx, eventfd(0, EFD_CLOEXEC)};
	struct mu_msg m;
	pthread_t th;

	pthread_create(&th, NULL, trickle_writer, &t);
	assert_int_equal(mu_chan_recv(&p->rx, &m, 0), 1);
	assert_int_equal(m.hdr.msg_id, 100);
	assert_int_equal(m.len, 32);
	assert_int_equal(m.nfds, 0);
	assert_int_equal(mu_chan_recv(&p->rx, &m, 0), 1);
	assert_int_equal(m.hdr.msg_id, 101);
	assert_int_equal(m.nfds, 1);
	mu_msg_close_fds(&m);
	pthread_join(th, NULL);
	close(t.efd);
}

struct send_arg {
	struct mu_chan *c;
	uint8_t *d;
	size_t n;
};

static void *sender(void *x)
{
	struct send_arg *q = x;
	struct mu_hdr h = {.msg_id = 1, .cmd = 10};
	struct iovec iov = {q->d, q->n};

	mu_chan_send(q->c, &h, &iov, 1, NULL, 0);
	return NULL;
}

static void test_large_message_and_trim(void **state)
{
	struct pair *p = *state;
	size_t len = 1 << 20;
	uint8_t *data = malloc(len);
	struct mu_chan tx;
	struct mu_msg m;
	pthread_t th;
	size_t i;

	for (i = 0; i < len; i++)
		data[i] = (uint8_t)(i * 31);
	assert_int_equal(mu_chan_init(&tx, dup(p->tx), 1 << 21, 8), 0);
	struct send_arg a = {&tx, data, len};

	pthread_create(&th, NULL, sender, &a);
	assert_int_equal(mu_chan_recv(&p->rx, &m, 0), 1);
	assert_int_equal(m.len, len);
	assert_memory_equal(m.payload, data, len);
	pthread_join(th, NULL);
	assert_true(p->rx.cap >= len);
	mu_chan_trim(&p->rx);
	assert_int_equal(p->rx.cap, MU_CHAN_MIN_BUF);
	mu_chan_fini(&tx);
	free(data);
}

/* A handler that receives again (message DMA on the main socket) keeps
 * its own message intact by detaching the buffer first. */
static void test_detach_keeps_payload(void **state)
{
	struct pair *p = *state;
	struct mu_msg a, b;
	uint8_t *old;

	raw_send(p->tx, 1, 10, 16 + 8, "payloadA", 8, NULL, 0);
	raw_send(p->tx, 2, 10, 16 + 8, "payloadB", 8, NULL, 0);
	assert_int_equal(mu_chan_recv(&p->rx, &a, 0), 1);
	old = mu_chan_detach_buffer(&p->rx);
	assert_non_null(old);
	assert_true(old != p->rx.buf);
	assert_int_equal(mu_chan_recv(&p->rx, &b, 0), 1);
	assert_int_equal(b.hdr.msg_id, 2);
	assert_memory_equal(b.payload, "payloadB", 8);
	raw_send(p->tx, 3, 10, 16 + 8, "payloadC", 8, NULL, 0);
	assert_int_equal(mu_chan_recv(&p->rx, &b, 0), 1);
	assert_int_equal(b.hdr.msg_id, 3);
	assert_memory_equal(a.payload, "payloadA", 8); /* still intact */
	free(old);
}

struct slow_arg {
	int fd;
};

/* 40 bytes of one message, a byte every 20 ms. */
static void *slow_writer(void *x)
{
	struct slow_arg *a = x;
	uint8_t msg[40] = {0};
	struct mu_hdr h = {.msg_id = 5, .cmd = 4, .size = 40};
	int i;

	memcpy(msg, &h, sizeof(h));
	for (i = 0; i < 40; i++) {
		if (write(a->fd, &msg[i], 1) != 1)
			break;
		usleep(20 * 1000);
	}
	return NULL;
}

/* A peer trickling one byte at a time can't hold a blocking receive past
 * max_wait_ms; the bytes stay, and the message completes later. */
static void test_trickling_peer_bounded(void **state)
{
	struct pair *p = *state;
	struct slow_arg a = {p->tx};
	struct mu_msg m;
	pthread_t th;
	int r, eagain = 0;

	p->rx.max_wait_ms = 50;
	pthread_create(&th, NULL, slow_writer, &a);
	while ((r = mu_chan_recv(&p->rx, &m, 0)) == -EAGAIN)
		eagain++;
	assert_int_equal(r, 1);
	assert_int_equal(m.hdr.msg_id, 5);
	assert_true(eagain >= 5); /* ~800 ms of trickle, 50 ms bound */
	pthread_join(th, NULL);
}

static void test_error_reply(void **state)
{
	struct pair *p = *state;
	struct mu_chan tx;
	struct mu_hdr req = {.msg_id = 77, .cmd = MU_CMD_REGION_READ};
	struct mu_msg m;

	assert_int_equal(mu_chan_init(&tx, dup(p->tx), 4096, 1), 0);
	assert_int_equal(mu_chan_send_error(&tx, &req, EINVAL), 0);
	assert_int_equal(mu_chan_recv(&p->rx, &m, 0), 1);
	assert_int_equal(mu_check_reply(&m, MU_CMD_REGION_READ, 0), -EINVAL);
	assert_int_equal(m.hdr.msg_id, 77);
	assert_int_equal(m.len, 0);
	mu_chan_fini(&tx);
}

/* The fast path's replies: one buffer, header first, size set by us. */
static void test_send_flat(void **state)
{
	struct pair *p = *state;
	struct mu_chan tx;
	struct {
		struct mu_hdr h;
		uint8_t data[20];
	} msg = {.h = {.msg_id = 9,
		       .cmd = MU_CMD_REGION_READ,
		       .flags = MU_FLAG_TYPE_REPLY,
		       .size = 0xdead}};
	struct mu_msg m;

	memset(msg.data, 0x5a, sizeof(msg.data));
	assert_int_equal(mu_chan_init(&tx, dup(p->tx), 4096, 1), 0);
	assert_int_equal(mu_chan_send_flat(&tx, &msg, sizeof(msg)), 0);
	assert_int_equal(mu_chan_recv(&p->rx, &m, 0), 1);
	assert_int_equal(m.hdr.size, sizeof(msg));
	assert_int_equal(m.hdr.msg_id, 9);
	assert_int_equal(m.len, sizeof(msg.data));
	assert_memory_equal(m.payload, msg.data, sizeof(msg.data));
	/* shorter than a header: refused, nothing sent */
	assert_int_equal(mu_chan_send_flat(&tx, &msg, sizeof(msg.h) - 1),
			 -EINVAL);
	assert_int_equal(mu_chan_recv(&p->rx, &m, MU_RECV_NONBLOCK), -EAGAIN);
	mu_chan_fini(&tx);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
		T(test_roundtrip_every_command),
		T(test_pipelined_messages),
		T(test_fds_arrive_with_their_message),
		T(test_surplus_fds_refused_and_closed),
		T(test_oversized_message_drained),
		T(test_size_below_header_is_fatal),
		T(test_eof),
		T(test_clean_eof),
		T(test_nonblocking_partial),
		T(test_one_byte_at_a_time),
		T(test_large_message_and_trim),
		T(test_detach_keeps_payload),
		T(test_trickling_peer_bounded),
		T(test_error_reply),
		T(test_send_flat),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
