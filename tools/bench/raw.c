/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * raw.c - the floors muser is measured against, in the same run: a raw
 * UNIX socketpair ping-pong with a forked echo peer (one read and one
 * write per request, as a server's minimum), a 1 MiB-chunk stream,
 * memcpy, and a remote copy: a forked process copying inside shared
 * memory when asked over the socket - what any device in another process
 * pays for a copy, with no vfio-user in between.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <linux/close_range.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"

#define CHUNK (1u << 20)
#define BATCH 8u /* chunks per acknowledged batch */
/* Header room on top of the data in libmuser's largest message. */
#define MSG_OVERHEAD 4096u

static void echo_loop(int fd)
{
	uint8_t buf[4096];

	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));

		if (n <= 0)
			_exit(0);
		if (write(fd, buf, buf[0]) != buf[0])
			_exit(0);
	}
}

static void sink_loop(int fd)
{
	uint8_t *buf = malloc(CHUNK);
	uint64_t got = 0;

	if (!buf)
		_exit(1);
	for (;;) {
		ssize_t n = read(fd, buf, CHUNK);

		if (n <= 0)
			_exit(0);
		got += (uint64_t)n;
		if (got >= (uint64_t)BATCH * CHUNK) {
			got -= (uint64_t)BATCH * CHUNK;
			if (write(fd, buf, 1) != 1)
				_exit(0);
		}
	}
}

/* The remote copier's shared memory: two halves of COPY_HALF bytes. */
static uint8_t *copy_mem;
static size_t copy_half;

static void copy_loop(int fd)
{
	uint64_t len;

	for (;;) {
		if (read(fd, &len, sizeof(len)) != sizeof(len))
			_exit(0);
		if (len <= copy_half)
			memmove(copy_mem + copy_half, copy_mem, len);
		if (write(fd, "", 1) != 1)
			_exit(0);
	}
}

static int peer_start(struct raw_peer *p, void (*loop)(int))
{
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	p->pid = fork();
	if (p->pid < 0) {
		int e = errno;

		close(sv[0]);
		close(sv[1]);
		return -e;
	}
	if (p->pid == 0) {
		/* keep only our end: the other peer's fds must see EOF */
		if (dup2(sv[1], 3) < 0)
			_exit(1);
		close_range(4, ~0u, 0);
		loop(3);
		_exit(0);
	}
	close(sv[1]);
	p->fd = sv[0];
	return 0;
}

int raw_echo_start(struct raw_peer *p)
{
	return peer_start(p, echo_loop);
}

int raw_sink_start(struct raw_peer *p)
{
	/* The send buffer muser's libraries give a socket for 1 MiB of
	 * data (src/wire/chan.c): the floor gets the same tuning. */
	int sndbuf = (int)(CHUNK + MSG_OVERHEAD);
	int ret = peer_start(p, sink_loop);

	if (ret == 0)
		setsockopt(p->fd, SOL_SOCKET, SO_SNDBUF, &sndbuf,
			   sizeof(sndbuf));
	return ret;
}

int raw_copier_start(struct raw_peer *p, size_t half)
{
	int fd = memfd_create("muser-bench-raw", MFD_CLOEXEC), ret;

	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t)(2 * half)) < 0) {
		ret = -errno;
		close(fd);
		return ret;
	}
	copy_mem =
		mmap(NULL, 2 * half, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (copy_mem == MAP_FAILED) {
		copy_mem = NULL;
		return -ENOMEM;
	}
	copy_half = half;
	memset(copy_mem, 0x3c, 2 * half); /* no first-touch faults timed */
	ret = peer_start(p, copy_loop);
	munmap(copy_mem, 2 * half); /* the child keeps its own mapping */
	copy_mem = NULL;
	return ret;
}

void raw_stop(struct raw_peer *p)
{
	if (p->pid <= 0)
		return;
	close(p->fd);
	waitpid(p->pid, NULL, 0); /* EOF ends the peer */
	p->pid = 0;
}

static int read_full(int fd, void *buf, size_t len)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = read(fd, (uint8_t *)buf + got, len - got);

		if (n <= 0)
			return n ? -errno : -ECONNRESET;
		got += (size_t)n;
	}
	return 0;
}

static int write_full(int fd, const void *buf, size_t len)
{
	size_t put = 0;

	while (put < len) {
		ssize_t n = write(fd, (const uint8_t *)buf + put, len - put);

		if (n < 0)
			return -errno;
		put += (size_t)n;
	}
	return 0;
}

struct pingpong_op {
	struct raw_peer *p;
	size_t req, rep;
	uint8_t buf[256];
};

static int pingpong_once(void *arg)
{
	struct pingpong_op *o = arg;
	int ret = write_full(o->p->fd, o->buf, o->req);

	return ret ? ret : read_full(o->p->fd, o->buf + 128, o->rep);
}

int raw_pingpong(struct raw_peer *p, size_t req, size_t rep, double seconds,
		 struct result *r)
{
	struct pingpong_op o = {p, req, rep, {0}};

	if (req > 128 || rep > 128 || !req || !rep)
		return -EINVAL;
	o.buf[0] = (uint8_t)rep;
	return res_run_for(r, seconds, rep, pingpong_once, &o);
}

int raw_stream(struct raw_peer *p, double seconds, struct result *r)
{
	uint8_t *buf = malloc(CHUNK), ack;
	uint64_t start = now_ns(), end = start + (uint64_t)(seconds * 1e9);
	uint64_t t, chunks = 0;
	int ret = 0;

	if (!buf)
		return -ENOMEM;
	memset(buf, 0x5a, CHUNK);
	do {
		for (unsigned i = 0; i < BATCH && !ret; i++)
			ret = write_full(p->fd, buf, CHUNK);
		if (!ret)
			ret = read_full(p->fd, &ack, 1);
		if (ret)
			break;
		chunks += BATCH;
		t = now_ns();
	} while (t < end);
	free(buf);
	if (!ret)
		res_add(r, chunks, chunks * CHUNK, t - start);
	return ret;
}

struct remote_op {
	struct raw_peer *p;
	uint64_t len;
};

static int remote_copy_once(void *arg)
{
	struct remote_op *o = arg;
	struct pollfd pfd = {.fd = o->p->fd, .events = POLLIN};
	uint8_t ack;
	int ret = write_full(o->p->fd, &o->len, sizeof(o->len));

	/* wait as muser-bench waits for a DMA completion: poll() */
	if (!ret && poll(&pfd, 1, -1) < 0)
		ret = -errno;
	return ret ? ret : read_full(o->p->fd, &ack, 1);
}

int raw_remote_copy(struct raw_peer *p, size_t size, double seconds,
		    struct result *r)
{
	struct remote_op o = {p, size};

	return res_run_for(r, seconds, size, remote_copy_once, &o);
}

struct memcpy_op {
	uint8_t *src, *dst;
	size_t size;
};

static int memcpy_once(void *arg)
{
	struct memcpy_op *o = arg;

	memcpy(o->dst, o->src, o->size);
	__asm__ volatile("" : : "r"(o->dst) : "memory");
	return 0;
}

int bench_memcpy(size_t size, double seconds, struct result *r)
{
	struct memcpy_op o = {aligned_alloc(4096, size),
			      aligned_alloc(4096, size), size};
	int ret = -ENOMEM;

	if (o.src && o.dst) {
		memset(o.src, 0xa5, size);
		memset(o.dst, 0, size);
		ret = res_run_for(r, seconds, size, memcpy_once, &o);
	}
	free(o.src);
	free(o.dst);
	return ret;
}
