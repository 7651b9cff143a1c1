/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * broken-server - a small vfio-user server written raw over the socket,
 * correct enough for muser-conform's basic checks, that breaks exactly one
 * rule chosen on the command line. The conformance tests point
 * muser-conform at it and expect the check guarding that rule to FAIL.
 *
 *   broken-server MODE SOCKET_PATH
 *
 * MODE is one of:
 *   none        follow the rules (a baseline for the test itself)
 *   wrong-id    reply with the server's own message counter instead of
 *               echoing the request's id (it only works while the client
 *               numbers its requests 1, 2, 3 ...)
 *   desync      refuse a REGION_WRITE to a bad region without reading the
 *               rest of its payload, so the stream desynchronises
 *   fd-leak     keep every fd that came with a refused command
 *   oob         accept region accesses past the end of a region
 *   no-reply    answer commands sent with NO_REPLY
 *   crash       abort() on the first REGION_READ
 *   hang        stop serving (but stay alive) on the first REGION_READ
 *
 * One client at a time, served until it hangs up. Wire structs come from
 * muser's own <muser/wire.h>; nothing here uses libmuser.
 */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include "muser/wire.h"

#define MAX_PAYLOAD (2u << 20) /* drains what the checker sends */
#define MAX_FDS 8u
#define REG_SIZE 256u
#define NUM_REGIONS 9u
#define NUM_IRQS 5u

enum mode { NONE, WRONG_ID, DESYNC, FD_LEAK, OOB, NO_REPLY, CRASH, HANG };

struct conn {
	int fd;
	enum mode mode;
	bool negotiated;
	uint16_t counter; /* wrong-id: the server's own numbering */
	uint8_t bar0[REG_SIZE];
	uint8_t config[REG_SIZE];
	uint8_t payload[MAX_PAYLOAD];
	int fds[MAX_FDS];
	unsigned nfds;
};

static int read_full(int fd, void *buf, size_t len)
{
	uint8_t *p = buf;

	while (len) {
		ssize_t n = read(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* The header, with any fds that came with its first byte. */
static int read_header(struct conn *c, struct mu_hdr *h)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * 64)];
		struct cmsghdr align;
	} u;
	struct iovec iov = {h, sizeof(*h)};
	struct msghdr msg = {
		.msg_iov = &iov,
		.msg_iovlen = 1,
		.msg_control = u.buf,
		.msg_controllen = sizeof(u.buf),
	};
	struct cmsghdr *cm;
	ssize_t n;

	c->nfds = 0;
	do
		n = recvmsg(c->fd, &msg, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n <= 0)
		return -1;
	for (cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm)) {
		size_t i, k;

		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		k = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (i = 0; i < k; i++) {
			int fd;

			memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int),
			       sizeof(fd));
			if (c->nfds < MAX_FDS)
				c->fds[c->nfds++] = fd;
			else
				close(fd);
		}
	}
	if ((size_t)n < sizeof(*h) &&
	    read_full(c->fd, (uint8_t *)h + n, sizeof(*h) - (size_t)n) < 0)
		return -1;
	return 0;
}

static void drop_fds(struct conn *c)
{
	unsigned i;

	for (i = 0; i < c->nfds; i++)
		close(c->fds[i]);
	c->nfds = 0;
}

static int reply(struct conn *c, const struct mu_hdr *req, int err,
		 const void *p, size_t len)
{
	struct mu_hdr h = {
		.msg_id = c->mode == WRONG_ID ? c->counter : req->msg_id,
		.cmd = req->cmd,
		.flags = MU_FLAG_TYPE_REPLY,
	};
	struct iovec iov[2];
	struct msghdr msg = {.msg_iov = iov, .msg_iovlen = 1};

	if ((req->flags & MU_FLAG_NO_REPLY) && c->mode != NO_REPLY)
		return 0;
	if (err) {
		h.flags |= MU_FLAG_ERROR;
		h.error = (uint32_t)err;
		len = 0;
	}
	h.size = (uint32_t)(sizeof(h) + len);
	iov[0] = (struct iovec){&h, sizeof(h)};
	if (len) {
		iov[1] = (struct iovec){(void *)p, len};
		msg.msg_iovlen = 2;
	}
	if (sendmsg(c->fd, &msg, MSG_NOSIGNAL) != (ssize_t)h.size)
		return -1;
	return 0;
}

static uint8_t *region_mem(struct conn *c, uint32_t region)
{
	if (region == MU_PCI_BAR0_REGION_INDEX)
		return c->bar0;
	if (region == MU_PCI_CONFIG_REGION_INDEX)
		return c->config;
	return NULL;
}

/* 0 if [off, off + count) lies in the region, else an errno. In oob mode
 * anything goes for an implemented region (the access wraps inside the
 * backing store, so only the protocol is broken, not memory). */
static int check_access(struct conn *c, const struct mu_region_access *a)
{
	if (!region_mem(c, a->region) || !a->count || a->count > REG_SIZE)
		return EINVAL;
	if (c->mode == OOB)
		return 0;
	if (a->offset > REG_SIZE || a->count > REG_SIZE - a->offset)
		return EINVAL;
	return 0;
}

static void copy_region(uint8_t *mem, uint64_t off, uint8_t *buf,
			uint32_t count, bool write)
{
	uint32_t i;

	for (i = 0; i < count; i++) {
		uint8_t *p = &mem[(off + i) % REG_SIZE];

		if (write)
			*p = buf[i];
		else
			buf[i] = *p;
	}
}

static int handle_version(struct conn *c, const struct mu_hdr *h, size_t len)
{
	static const char caps[] =
		"{\"capabilities\":{\"max_msg_fds\":8,\"max_data_xfer_size\":"
		"1048576,\"max_dma_maps\":64,\"pgsizes\":4096}}";
	uint8_t out[sizeof(struct mu_version) + sizeof(caps)];
	struct mu_version v;

	if (c->negotiated || c->nfds || len < sizeof(v))
		return reply(c, h, EINVAL, NULL, 0);
	memcpy(&v, c->payload, sizeof(v));
	if (v.major != 0)
		return reply(c, h, ENOTSUP, NULL, 0);
	if (v.minor > 2)
		v.minor = 2;
	memcpy(out, &v, sizeof(v));
	memcpy(out + sizeof(v), caps, sizeof(caps));
	c->negotiated = true;
	return reply(c, h, 0, out, sizeof(out));
}

static int handle(struct conn *c, const struct mu_hdr *h, size_t len)
{
	uint8_t *p = c->payload;

	if (h->cmd == MU_CMD_VERSION)
		return handle_version(c, h, len);
	if (!c->negotiated)
		return reply(c, h, EINVAL, NULL, 0);
	/* Only DMA_MAP may carry an fd here (and that one is not kept). */
	if (c->nfds && (h->cmd != MU_CMD_DMA_MAP || c->nfds > 1))
		return reply(c, h, EINVAL, NULL, 0);
	switch (h->cmd) {
	case MU_CMD_DEVICE_GET_INFO: {
		struct mu_device_info i = {
			sizeof(i), MU_DEVICE_FLAGS_PCI | MU_DEVICE_FLAGS_RESET,
			NUM_REGIONS, NUM_IRQS};

		if (len < sizeof(i))
			return reply(c, h, EINVAL, NULL, 0);
		return reply(c, h, 0, &i, sizeof(i));
	}
	case MU_CMD_DEVICE_GET_REGION_INFO: {
		struct mu_region_info ri;

		if (len < sizeof(ri))
			return reply(c, h, EINVAL, NULL, 0);
		memcpy(&ri, p, sizeof(ri));
		if (ri.index >= NUM_REGIONS)
			return reply(c, h, EINVAL, NULL, 0);
		ri = (struct mu_region_info){.argsz = sizeof(ri),
					     .index = ri.index};
		if (region_mem(c, ri.index)) {
			ri.flags = MU_REGION_INFO_FLAG_READ |
				   MU_REGION_INFO_FLAG_WRITE;
			ri.size = REG_SIZE;
		}
		return reply(c, h, 0, &ri, sizeof(ri));
	}
	case MU_CMD_DEVICE_GET_IRQ_INFO: {
		struct mu_irq_info ii;

		if (len < sizeof(ii))
			return reply(c, h, EINVAL, NULL, 0);
		memcpy(&ii, p, sizeof(ii));
		if (ii.index >= NUM_IRQS)
			return reply(c, h, EINVAL, NULL, 0);
		ii = (struct mu_irq_info){.argsz = sizeof(ii),
					  .index = ii.index};
		return reply(c, h, 0, &ii, sizeof(ii));
	}
	case MU_CMD_REGION_READ: {
		static uint8_t out[sizeof(struct mu_region_access) + REG_SIZE];
		struct mu_region_access a;
		int e;

		if (c->mode == CRASH)
			abort();
		if (c->mode == HANG)
			for (;;)
				pause();
		if (len != sizeof(a))
			return reply(c, h, EINVAL, NULL, 0);
		memcpy(&a, p, sizeof(a));
		e = check_access(c, &a);
		if (e)
			return reply(c, h, e, NULL, 0);
		memcpy(out, &a, sizeof(a));
		copy_region(region_mem(c, a.region), a.offset, out + sizeof(a),
			    a.count, false);
		return reply(c, h, 0, out, sizeof(a) + a.count);
	}
	case MU_CMD_REGION_WRITE: {
		struct mu_region_access a;
		int e;

		if (len < sizeof(a))
			return reply(c, h, EINVAL, NULL, 0);
		memcpy(&a, p, sizeof(a));
		if (len != sizeof(a) + a.count)
			return reply(c, h, EINVAL, NULL, 0);
		e = check_access(c, &a);
		if (e)
			return reply(c, h, e, NULL, 0);
		copy_region(region_mem(c, a.region), a.offset, p + sizeof(a),
			    a.count, true);
		return reply(c, h, 0, &a, sizeof(a));
	}
	case MU_CMD_DMA_MAP:
		if (len < sizeof(struct mu_dma_map))
			return reply(c, h, EINVAL, NULL, 0);
		return reply(c, h, 0, NULL, 0);
	case MU_CMD_DMA_UNMAP:
		if (len < sizeof(struct mu_dma_unmap))
			return reply(c, h, EINVAL, NULL, 0);
		return reply(c, h, 0, p, sizeof(struct mu_dma_unmap));
	case MU_CMD_DEVICE_RESET:
		return reply(c, h, len ? EINVAL : 0, NULL, 0);
	default:
		return reply(c, h, ENOSYS, NULL, 0);
	}
}

/* desync: a REGION_WRITE to a region that does not exist is refused
 * after its fixed part, and the data behind it is left in the stream. */
static bool refuse_early(struct conn *c, const struct mu_hdr *h, size_t len,
			 int *ret)
{
	struct mu_region_access a;

	if (c->mode != DESYNC || h->cmd != MU_CMD_REGION_WRITE ||
	    len < sizeof(a))
		return false;
	if (read_full(c->fd, &a, sizeof(a)) < 0) {
		*ret = -1;
		return true;
	}
	if (region_mem(c, a.region)) {
		memcpy(c->payload, &a, sizeof(a));
		*ret = read_full(c->fd, c->payload + sizeof(a),
				 len - sizeof(a));
		if (*ret == 0)
			*ret = handle(c, h, len);
		return true;
	}
	*ret = reply(c, h, EINVAL, NULL, 0);
	return true;
}

static void serve(struct conn *c)
{
	for (;;) {
		struct mu_hdr h;
		size_t len;
		int r;

		if (read_header(c, &h) < 0)
			break;
		c->counter++;
		if (h.size < sizeof(h) || h.size - sizeof(h) > MAX_PAYLOAD)
			break; /* can't resynchronise: hang up */
		len = h.size - sizeof(h);
		if (!refuse_early(c, &h, len, &r)) {
			if (read_full(c->fd, c->payload, len) < 0)
				break;
			r = handle(c, &h, len);
		}
		/* fd-leak: whatever came with a refused command is kept. */
		if (c->mode != FD_LEAK)
			drop_fds(c);
		if (r < 0)
			break;
	}
	drop_fds(c);
}

static int parse_mode(const char *s, enum mode *m)
{
	static const struct {
		const char *name;
		enum mode mode;
	} modes[] = {
		{"none", NONE},	    {"wrong-id", WRONG_ID},
		{"desync", DESYNC}, {"fd-leak", FD_LEAK},
		{"oob", OOB},	    {"no-reply", NO_REPLY},
		{"crash", CRASH},   {"hang", HANG},
	};
	size_t i;

	for (i = 0; i < sizeof(modes) / sizeof(*modes); i++) {
		if (!strcmp(s, modes[i].name)) {
			*m = modes[i].mode;
			return 0;
		}
	}
	return -1;
}

int main(int argc, char **argv)
{
	struct rlimit no_core = {0, 0};
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	static struct conn c;
	enum mode mode;
	int lfd;

	if (argc != 3 || parse_mode(argv[1], &mode) < 0 ||
	    strlen(argv[2]) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "usage: broken-server MODE SOCKET_PATH\n");
		return 2;
	}
	setrlimit(RLIMIT_CORE, &no_core); /* crash mode: no core file */
	signal(SIGPIPE, SIG_IGN);
	strcpy(sa.sun_path, argv[2]);
	unlink(sa.sun_path);
	lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(lfd, 16) < 0) {
		perror("broken-server: listen");
		return 1;
	}
	for (;;) {
		int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			perror("broken-server: accept");
			return 1;
		}
		memset(&c, 0, sizeof(c));
		c.fd = fd;
		c.mode = mode;
		c.config[0] = 0x34; /* vendor 0x1234, device 0x0001 */
		c.config[1] = 0x12;
		c.config[2] = 0x01;
		serve(&c);
		close(fd);
	}
}
