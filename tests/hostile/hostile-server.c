/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The hostile-input suite: every malformed input a client can send, each
 * over a real socket to a running device server (a sample program). Each
 * case asserts the outcome (an error reply with the right errno, or a clean
 * close), then a fresh client must still be served correctly and the
 * server's fd count must be back to where it was.
 *
 * usage: hostile-server SERVER-BINARY [SERVER-ARGS...]
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "raw-client.h"

#define EXP_CLOSE (-1000) /* the server closes the connection */
#define EXP_OK 0          /* a successful reply */
#define EXP_ANY (-1001)   /* any outcome; only survival is checked */

enum fd_kind { FD_NONE, FD_EVENT, FD_PIPE, FD_NULL, FD_SOCK, FD_MEMFD };

struct hcase {
	const char *name;
	bool before_version;
	uint16_t cmd;
	uint32_t flags, size; /* size 0 = honest */
	const void *payload;
	size_t len;
	enum fd_kind fdk;
	unsigned nfds;
	int (*custom)(struct raw *r); /* returns the outcome itself */
	int expect;                   /* errno, EXP_OK, EXP_CLOSE, EXP_ANY */
};

#define P(type, ...) &(type){__VA_ARGS__}, sizeof(type)
#define RA(off, reg, cnt) P(struct mu_region_access, off, reg, cnt)

static const char *sock_path;
static pid_t server_pid;

static int make_fd(enum fd_kind k)
{
	int p[2], fd;

	switch (k) {
	case FD_EVENT:
		return eventfd(0, EFD_CLOEXEC);
	case FD_PIPE:
		if (pipe2(p, O_CLOEXEC) < 0)
			return -1;
		close(p[0]);
		return p[1];
	case FD_NULL:
		return open("/dev/null", O_RDWR | O_CLOEXEC);
	case FD_SOCK:
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, p) < 0)
			return -1;
		close(p[1]);
		return p[0];
	case FD_MEMFD:
		fd = memfd_create("hostile", MFD_CLOEXEC);
		if (fd >= 0 && ftruncate(fd, 4096) < 0) {
			close(fd);
			return -1;
		}
		return fd;
	default:
		return -1;
	}
}

/* Outcome of the next message: -errno of an error reply, 0 for success,
 * EXP_CLOSE when the server hung up. */
static int outcome(struct raw *r)
{
	struct mu_msg m;
	int n = raw_recv(r, &m, 5000), e;

	if (n == 0 || n == -ECONNRESET)
		return EXP_CLOSE;
	if (n < 0)
		return n == -ETIMEDOUT ? -ETIMEDOUT : EXP_CLOSE;
	e = mu_check_reply(&m, m.hdr.cmd, 0);
	mu_msg_close_fds(&m);
	if (e == 0)
		return 0;
	return e;
}

static int send_one(struct raw *r, const struct hcase *c)
{
	int fds[MU_MAX_FDS_LIMIT];
	unsigned i;
	int e;

	for (i = 0; i < c->nfds; i++)
		fds[i] = make_fd(c->fdk);
	e = raw_send(r, 0x4242, c->cmd, c->flags, c->size, c->payload, c->len,
		     fds, c->nfds);
	for (i = 0; i < c->nfds; i++)
		close(fds[i]);
	return e;
}

/* ---- custom cases ------------------------------------------------------ */

static int c_truncated_header(struct raw *r)
{
	uint8_t half[8] = {1, 0, 4, 0, 32, 0, 0, 0};

	if (write(r->ch.fd, half, sizeof(half)) < 0)
		return -errno;
	return EXP_ANY; /* then we close: the server must just survive */
}

static int c_truncated_payload(struct raw *r)
{
	struct mu_region_access a = {0, 7, 4};

	raw_send(r, 9, MU_CMD_REGION_WRITE, 0, 16 + 16 + 64, &a, sizeof(a),
		 NULL, 0);
	return EXP_ANY;
}

static int c_huge_size_then_close(struct raw *r)
{
	raw_send(r, 9, MU_CMD_REGION_WRITE, 0, 0xfffffff0u, NULL, 0, NULL, 0);
	return outcome(r) == -EMSGSIZE ? -EMSGSIZE : -EPROTO;
}

/* A failing NO_REPLY command must not produce a reply: the next message
 * to arrive has to be the reply to the following synchronous command. */
static int c_posted_bad_write(struct raw *r)
{
	struct mu_region_access a = {0, 99, 4};
	struct mu_device_info di = {16, 0, 0, 0};
	uint8_t buf[20] = {0};
	struct mu_msg m;
	int n;

	memcpy(buf, &a, sizeof(a));
	raw_send(r, 500, MU_CMD_REGION_WRITE, MU_FLAG_NO_REPLY, 0, buf,
		 sizeof(buf), NULL, 0);
	raw_send(r, 501, MU_CMD_DEVICE_GET_INFO, 0, 0, &di, sizeof(di), NULL,
		 0);
	n = raw_recv(r, &m, 5000);
	if (n != 1)
		return EXP_CLOSE;
	mu_msg_close_fds(&m);
	if (m.hdr.msg_id != 501)
		return -EPROTO;
	return mu_check_reply(&m, MU_CMD_DEVICE_GET_INFO, 16);
}

/* A reply nobody asked for is dropped without an answer. */
static int c_stray_reply(struct raw *r)
{
	struct mu_device_info di = {16, 0, 0, 0};
	struct mu_msg m;

	raw_send(r, 600, MU_CMD_DEVICE_GET_INFO, MU_FLAG_TYPE_REPLY, 0, &di,
		 sizeof(di), NULL, 0);
	raw_send(r, 601, MU_CMD_DEVICE_GET_INFO, 0, 0, &di, sizeof(di), NULL,
		 0);
	if (raw_recv(r, &m, 5000) != 1)
		return EXP_CLOSE;
	mu_msg_close_fds(&m);
	if (m.hdr.msg_id != 601)
		return -EPROTO;
	return mu_check_reply(&m, MU_CMD_DEVICE_GET_INFO, 16);
}

static int c_version_twice(struct raw *r)
{
	return raw_negotiate(r, 0, 2, NULL);
}

static int c_request_flood(struct raw *r)
{
	struct mu_region_access a = {0, MU_PCI_CONFIG_REGION_INDEX, 4};
	struct mu_msg m;
	int i, got = 0, n;

	/* 20000 requests written without reading a single reply. */
	if (fork() == 0) {
		for (i = 0; i < 20000; i++)
			if (raw_send(r, (uint16_t)i, MU_CMD_REGION_READ, 0, 0,
				     &a, sizeof(a), NULL, 0) < 0)
				break;
		_exit(0);
	}
	usleep(200 * 1000);
	while ((n = raw_recv(r, &m, 5000)) == 1)
		if (++got == 20000)
			break;
	wait(NULL);
	/* Either every reply arrived, or the server dropped the hog. */
	return (got == 20000 || n == 0) ? EXP_OK : -EPROTO;
}

static int c_close_mid_message(struct raw *r)
{
	uint8_t junk[100];
	struct mu_hdr h = {1, MU_CMD_REGION_WRITE, 16 + 16 + 100, 0, 0};

	memset(junk, 0xab, sizeof(junk));
	if (write(r->ch.fd, &h, sizeof(h)) < 0 ||
	    write(r->ch.fd, junk, 50) < 0)
		return -errno;
	return EXP_ANY;
}

static int c_dma_map_beyond_fd(struct raw *r)
{
	struct mu_dma_map d = {32, 3, 0, 0x100000, 0x10000};
	int fd = make_fd(FD_MEMFD), e;

	e = (int)raw_call(r, MU_CMD_DMA_MAP, &d, sizeof(d), &fd, 1, NULL, 0);
	close(fd);
	return e;
}

static int map_fdless(struct raw *r, uint64_t addr, uint64_t size)
{
	struct mu_dma_map d = {32, 3, 0, addr, size};

	return (int)raw_call(r, MU_CMD_DMA_MAP, &d, sizeof(d), NULL, 0, NULL, 0);
}

static int c_dma_overlap(struct raw *r)
{
	int e = map_fdless(r, 0x200000, 0x2000);

	if (e)
		return -EPROTO;
	return map_fdless(r, 0x201000, 0x2000);
}

static int c_dma_flood(struct raw *r)
{
	uint64_t i;
	int e = 0;

	for (i = 0; i < 70000 && e == 0; i++)
		e = map_fdless(r, 0x100000000ull + i * 0x1000, 0x1000);
	return e;
}

static int c_unmap_partial(struct raw *r)
{
	struct mu_dma_unmap u = {24, 0, 0x300000, 0x1000};

	if (map_fdless(r, 0x300000, 0x2000))
		return -EPROTO;
	return (int)raw_call(r, MU_CMD_DMA_UNMAP, &u, sizeof(u), NULL, 0, NULL,
			     0);
}

static int c_dma_map_fd_ok_then_leave(struct raw *r)
{
	struct mu_dma_map d = {32, 3, 0, 0x100000, 0x1000};
	int fd = make_fd(FD_MEMFD), e;

	e = (int)raw_call(r, MU_CMD_DMA_MAP, &d, sizeof(d), &fd, 1, NULL, 0);
	close(fd);
	return e; /* the map's fd must be released when we leave */
}

static int c_many_fds(struct raw *r)
{
	struct mu_device_info di = {16, 0, 0, 0};
	int fds[253], i, e;

	for (i = 0; i < 253; i++)
		fds[i] = eventfd(0, EFD_CLOEXEC);
	e = raw_send(r, 7, MU_CMD_DEVICE_GET_INFO, 0, 0, &di, sizeof(di), fds,
		     253);
	for (i = 0; i < 253; i++)
		close(fds[i]);
	return e < 0 ? e : outcome(r);
}

static int c_irqs_set_then_leave(struct raw *r)
{
	struct mu_irq_set s = {20, MU_IRQ_SET_DATA_EVENTFD |
					   MU_IRQ_SET_ACTION_TRIGGER,
			       MU_PCI_INTX_IRQ_INDEX, 0, 1};
	int fd = make_fd(FD_EVENT), e;

	e = (int)raw_call(r, MU_CMD_DEVICE_SET_IRQS, &s, sizeof(s), &fd, 1,
			  NULL, 0);
	close(fd);
	return e;
}

static int c_deep_json(struct raw *r)
{
	char json[2100];

	memset(json, '[', 2000);
	json[2000] = 0;
	return raw_negotiate(r, 0, 2, json);
}

static int c_huge_json(struct raw *r)
{
	static char json[6000];

	memset(json, ' ', sizeof(json) - 3);
	json[0] = '{';
	json[sizeof(json) - 3] = '}';
	json[sizeof(json) - 2] = 0;
	return raw_negotiate(r, 0, 2, json);
}

#define JSON_CASE(fn, text)                                                    \
	static int fn(struct raw *r)                                           \
	{                                                                      \
		return raw_negotiate(r, 0, 2, text);                           \
	}
JSON_CASE(c_json_invalid, "{\"capabilities\":")
JSON_CASE(c_json_array, "[1,2,3]")
JSON_CASE(c_json_bad_type, "{\"capabilities\":{\"max_msg_fds\":\"many\"}}")
JSON_CASE(c_json_negative, "{\"capabilities\":{\"max_data_xfer_size\":-5}}")
JSON_CASE(c_json_bad_twin, "{\"capabilities\":{\"twin_socket\":7}}")

static int c_major_mismatch(struct raw *r)
{
	return raw_negotiate(r, 1, 0, NULL);
}

/* ---- the table ----------------------------------------------------------- */

#define PRE(cmd) {"cmd " #cmd " before VERSION", true, cmd, 0, 0, P(struct mu_device_info, 16), FD_NONE, 0, NULL, EINVAL}

static const struct hcase cases[] = {
	PRE(MU_CMD_DMA_MAP),
	PRE(MU_CMD_DMA_UNMAP),
	PRE(MU_CMD_DEVICE_GET_INFO),
	PRE(MU_CMD_DEVICE_GET_REGION_INFO),
	PRE(MU_CMD_DEVICE_GET_REGION_IO_FDS),
	PRE(MU_CMD_DEVICE_GET_IRQ_INFO),
	PRE(MU_CMD_DEVICE_SET_IRQS),
	PRE(MU_CMD_REGION_READ),
	PRE(MU_CMD_REGION_WRITE),
	PRE(MU_CMD_DMA_READ),
	PRE(MU_CMD_DMA_WRITE),
	PRE(MU_CMD_DEVICE_RESET),
	PRE(MU_CMD_DIRTY_PAGES),
	PRE(MU_CMD_REGION_WRITE_MULTI),
	PRE(MU_CMD_DEVICE_FEATURE),
	PRE(MU_CMD_MIG_DATA_READ),
	PRE(MU_CMD_MIG_DATA_WRITE),
	{"size below header", true, MU_CMD_VERSION, 0, 8, NULL, 0, FD_NONE, 0, NULL, EXP_CLOSE},
	{"huge size", false, 0, 0, 0, NULL, 0, FD_NONE, 0, c_huge_size_then_close, EMSGSIZE},
	{"truncated header", true, 0, 0, 0, NULL, 0, FD_NONE, 0, c_truncated_header, EXP_ANY},
	{"truncated payload", false, 0, 0, 0, NULL, 0, FD_NONE, 0, c_truncated_payload, EXP_ANY},
	{"close mid-message", false, 0, 0, 0, NULL, 0, FD_NONE, 0, c_close_mid_message, EXP_ANY},
	{"major version 1", true, 0, 0, 0, NULL, 0, FD_NONE, 0, c_major_mismatch, ENOTSUP},
	{"short VERSION", true, MU_CMD_VERSION, 0, 0, "\0", 2, FD_NONE, 0, NULL, EINVAL},
	{"VERSION with an fd", true, MU_CMD_VERSION, 0, 0, "\0\0\2\0", 4, FD_EVENT, 1, NULL, EINVAL},
	{"invalid JSON", true, 0, 0, 0, NULL, 0, FD_NONE, 0, c_json_invalid, EINVAL},
	{"JSON array", true, 0, 0, 0, NULL, 0, FD_NONE, 0, c_json_array, EINVAL},
	{"JSON wrong type", true, 0, 0, 0, NULL, 0, FD_NONE, 0, c_json_bad_type, EINVAL},
	{"JSON negative", true, 0, 0, 0, NULL, 0, FD_NONE, 0, c_json_negative, EINVAL},
	{"JSON bad twin", true, 0, 0, 0, NULL, 0, FD_NONE, 0, c_json_bad_twin, EINVAL},
	{"JSON deeply nested", true, 0, 0, 0, NULL, 0, FD_NONE, 0, c_deep_json, EINVAL},
	/* Before VERSION the frame limit is small: refused by size. */
	{"JSON huge", true, 0, 0, 0, NULL, 0, FD_NONE, 0, c_huge_json, EMSGSIZE},
	{"VERSION twice", false, 0, 0, 0, NULL, 0, FD_NONE, 0, c_version_twice, EINVAL},
	{"unknown command 0", false, 0, 0, 0, P(struct mu_device_info, 16), FD_NONE, 0, NULL, ENOSYS},
	{"unknown command 19", false, 19, 0, 0, P(struct mu_device_info, 16), FD_NONE, 0, NULL, ENOSYS},
	{"unknown command 0xffff", false, 0xffff, 0, 0, NULL, 0, FD_NONE, 0, NULL, ENOSYS},
	{"removed DIRTY_PAGES", false, MU_CMD_DIRTY_PAGES, 0, 0, NULL, 0, FD_NONE, 0, NULL, ENOTSUP},
	{"stray reply from client dropped", false, 0, 0, 0, NULL, 0, FD_NONE, 0, c_stray_reply, EXP_OK},
	{"unknown flag bits", false, MU_CMD_DEVICE_GET_INFO, 1u << 12, 0, P(struct mu_device_info, 16), FD_NONE, 0, NULL, EINVAL},
	{"error bit in command", false, MU_CMD_DEVICE_GET_INFO, MU_FLAG_ERROR, 0, P(struct mu_device_info, 16), FD_NONE, 0, NULL, EINVAL},
	{"GET_INFO argsz 8", false, MU_CMD_DEVICE_GET_INFO, 0, 0, P(struct mu_device_info, 8), FD_NONE, 0, NULL, EINVAL},
	{"GET_INFO truncated", false, MU_CMD_DEVICE_GET_INFO, 0, 0, "\x10\0\0\0", 4, FD_NONE, 0, NULL, EINVAL},
	{"GET_INFO with eventfd", false, MU_CMD_DEVICE_GET_INFO, 0, 0, P(struct mu_device_info, 16), FD_EVENT, 1, NULL, EINVAL},
	{"253 fds with GET_INFO", false, 0, 0, 0, NULL, 0, FD_NONE, 0, c_many_fds, EINVAL},
	{"REGION_INFO index 99", false, MU_CMD_DEVICE_GET_REGION_INFO, 0, 0, P(struct mu_region_info, 32, 0, 99), FD_NONE, 0, NULL, EINVAL},
	{"REGION_INFO index huge", false, MU_CMD_DEVICE_GET_REGION_INFO, 0, 0, P(struct mu_region_info, 32, 0, 0xffffffff), FD_NONE, 0, NULL, EINVAL},
	{"REGION_INFO argsz 16", false, MU_CMD_DEVICE_GET_REGION_INFO, 0, 0, P(struct mu_region_info, 16, 0, 0), FD_NONE, 0, NULL, EINVAL},
	{"IRQ_INFO index 99", false, MU_CMD_DEVICE_GET_IRQ_INFO, 0, 0, P(struct mu_irq_info, 16, 0, 99), FD_NONE, 0, NULL, EINVAL},
	{"IO_FDS index 99", false, MU_CMD_DEVICE_GET_REGION_IO_FDS, 0, 0, P(struct mu_region_io_fds_request, 16, 0, 99), FD_NONE, 0, NULL, EINVAL},
	{"IO_FDS flags", false, MU_CMD_DEVICE_GET_REGION_IO_FDS, 0, 0, P(struct mu_region_io_fds_request, 16, 1, 0), FD_NONE, 0, NULL, EINVAL},
	{"READ region 99", false, MU_CMD_REGION_READ, 0, 0, RA(0, 99, 4), FD_NONE, 0, NULL, EINVAL},
	{"READ beyond config", false, MU_CMD_REGION_READ, 0, 0, RA(0x10000, 7, 4), FD_NONE, 0, NULL, EINVAL},
	{"READ straddling end", false, MU_CMD_REGION_READ, 0, 0, RA(4094, 7, 8), FD_NONE, 0, NULL, EINVAL},
	{"READ offset wraps", false, MU_CMD_REGION_READ, 0, 0, RA(UINT64_MAX - 1, 7, 4), FD_NONE, 0, NULL, EINVAL},
	{"READ count 0", false, MU_CMD_REGION_READ, 0, 0, RA(0, 7, 0), FD_NONE, 0, NULL, EINVAL},
	{"READ count 4 GiB", false, MU_CMD_REGION_READ, 0, 0, RA(0, 7, 0xffffffff), FD_NONE, 0, NULL, E2BIG},
	{"READ with trailing bytes", false, MU_CMD_REGION_READ, 0, 0, P(uint8_t[20], 0, 0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0, 4), FD_NONE, 0, NULL, EINVAL},
	{"WRITE count lies high", false, MU_CMD_REGION_WRITE, 0, 0, RA(0, 7, 64), FD_NONE, 0, NULL, EINVAL},
	{"WRITE region 99", false, MU_CMD_REGION_WRITE, 0, 0, P(uint8_t[20], 0, 0, 0, 0, 0, 0, 0, 0, 99, 0, 0, 0, 4), FD_NONE, 0, NULL, EINVAL},
	{"WRITE beyond config", false, MU_CMD_REGION_WRITE, 0, 0, P(uint8_t[20], 0, 0, 1, 0, 0, 0, 0, 0, 7, 0, 0, 0, 4), FD_NONE, 0, NULL, EINVAL},
	{"posted bad WRITE gets no reply", false, 0, 0, 0, NULL, 0, FD_NONE, 0, c_posted_bad_write, EXP_OK},
	{"SET_IRQS index 99", false, MU_CMD_DEVICE_SET_IRQS, 0, 0, P(struct mu_irq_set, 20, MU_IRQ_SET_DATA_NONE | MU_IRQ_SET_ACTION_TRIGGER, 99, 0, 1), FD_NONE, 0, NULL, EINVAL},
	{"SET_IRQS vectors beyond count", false, MU_CMD_DEVICE_SET_IRQS, 0, 0, P(struct mu_irq_set, 20, MU_IRQ_SET_DATA_EVENTFD | MU_IRQ_SET_ACTION_TRIGGER, 0, 0, 2), FD_EVENT, 2, NULL, EINVAL},
	{"SET_IRQS two data flags", false, MU_CMD_DEVICE_SET_IRQS, 0, 0, P(struct mu_irq_set, 20, MU_IRQ_SET_DATA_NONE | MU_IRQ_SET_DATA_BOOL | MU_IRQ_SET_ACTION_TRIGGER, 0, 0, 1), FD_NONE, 0, NULL, EINVAL},
	{"SET_IRQS fd count mismatch", false, MU_CMD_DEVICE_SET_IRQS, 0, 0, P(struct mu_irq_set, 20, MU_IRQ_SET_DATA_EVENTFD | MU_IRQ_SET_ACTION_TRIGGER, 0, 0, 1), FD_EVENT, 3, NULL, EINVAL},
	{"SET_IRQS pipe not eventfd", false, MU_CMD_DEVICE_SET_IRQS, 0, 0, P(struct mu_irq_set, 20, MU_IRQ_SET_DATA_EVENTFD | MU_IRQ_SET_ACTION_TRIGGER, 0, 0, 1), FD_PIPE, 1, NULL, EINVAL},
	{"SET_IRQS /dev/null", false, MU_CMD_DEVICE_SET_IRQS, 0, 0, P(struct mu_irq_set, 20, MU_IRQ_SET_DATA_EVENTFD | MU_IRQ_SET_ACTION_TRIGGER, 0, 0, 1), FD_NULL, 1, NULL, EINVAL},
	{"SET_IRQS socket", false, MU_CMD_DEVICE_SET_IRQS, 0, 0, P(struct mu_irq_set, 20, MU_IRQ_SET_DATA_EVENTFD | MU_IRQ_SET_ACTION_TRIGGER, 0, 0, 1), FD_SOCK, 1, NULL, EINVAL},
	{"SET_IRQS start wraps", false, MU_CMD_DEVICE_SET_IRQS, 0, 0, P(struct mu_irq_set, 20, MU_IRQ_SET_DATA_NONE | MU_IRQ_SET_ACTION_MASK, 0, 0xffffffff, 2), FD_NONE, 0, NULL, EINVAL},
	{"SET_IRQS eventfd then leave", false, 0, 0, 0, NULL, 0, FD_NONE, 0, c_irqs_set_then_leave, EXP_OK},
	{"DMA_MAP /dev/null", false, MU_CMD_DMA_MAP, 0, 0, P(struct mu_dma_map, 32, 3, 0, 0x100000, 0x1000), FD_NULL, 1, NULL, EINVAL},
	{"DMA_MAP pipe", false, MU_CMD_DMA_MAP, 0, 0, P(struct mu_dma_map, 32, 3, 0, 0x100000, 0x1000), FD_PIPE, 1, NULL, EINVAL},
	{"DMA_MAP socket", false, MU_CMD_DMA_MAP, 0, 0, P(struct mu_dma_map, 32, 3, 0, 0x100000, 0x1000), FD_SOCK, 1, NULL, EINVAL},
	{"DMA_MAP two fds", false, MU_CMD_DMA_MAP, 0, 0, P(struct mu_dma_map, 32, 3, 0, 0x100000, 0x1000), FD_MEMFD, 2, NULL, EINVAL},
	{"DMA_MAP beyond the fd", false, 0, 0, 0, NULL, 0, FD_NONE, 0, c_dma_map_beyond_fd, EINVAL},
	{"DMA_MAP size 0", false, MU_CMD_DMA_MAP, 0, 0, P(struct mu_dma_map, 32, 3, 0, 0x100000, 0), FD_NONE, 0, NULL, EINVAL},
	{"DMA_MAP address wraps", false, MU_CMD_DMA_MAP, 0, 0, P(struct mu_dma_map, 32, 3, 0, UINT64_MAX - 0xfff, 0x2000), FD_NONE, 0, NULL, EINVAL},
	{"DMA_MAP unknown prot", false, MU_CMD_DMA_MAP, 0, 0, P(struct mu_dma_map, 32, 0x80, 0, 0x100000, 0x1000), FD_NONE, 0, NULL, EINVAL},
	{"DMA_MAP overlap", false, 0, 0, 0, NULL, 0, FD_NONE, 0, c_dma_overlap, EEXIST},
	{"DMA_MAP flood", false, 0, 0, 0, NULL, 0, FD_NONE, 0, c_dma_flood, ENOSPC},
	{"DMA_MAP memfd then leave", false, 0, 0, 0, NULL, 0, FD_NONE, 0, c_dma_map_fd_ok_then_leave, EXP_OK},
	{"DMA_UNMAP unknown", false, MU_CMD_DMA_UNMAP, 0, 0, P(struct mu_dma_unmap, 24, 0, 0x900000, 0x1000), FD_NONE, 0, NULL, ENOENT},
	{"DMA_UNMAP partial", false, 0, 0, 0, NULL, 0, FD_NONE, 0, c_unmap_partial, ENOENT},
	{"DMA_UNMAP dirty bitmap", false, MU_CMD_DMA_UNMAP, 0, 0, P(struct mu_dma_unmap, 24, 1, 0x900000, 0x1000), FD_NONE, 0, NULL, ENOTSUP},
	{"DMA_UNMAP all with range", false, MU_CMD_DMA_UNMAP, 0, 0, P(struct mu_dma_unmap, 24, 2, 0x900000, 0x1000), FD_NONE, 0, NULL, EINVAL},
	{"DMA_UNMAP wraps", false, MU_CMD_DMA_UNMAP, 0, 0, P(struct mu_dma_unmap, 24, 0, UINT64_MAX, 2), FD_NONE, 0, NULL, EINVAL},
	{"WRITE_MULTI zero entries", false, MU_CMD_REGION_WRITE_MULTI, 0, 0, P(uint64_t, 0), FD_NONE, 0, NULL, EINVAL},
	{"WRITE_MULTI count lies", false, MU_CMD_REGION_WRITE_MULTI, 0, 0, P(uint64_t, 1000), FD_NONE, 0, NULL, EINVAL},
	{"WRITE_MULTI bad region", false, MU_CMD_REGION_WRITE_MULTI, 0, 0, P(uint8_t[32], 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 99, 0, 0, 0, 4), FD_NONE, 0, NULL, EINVAL},
	{"WRITE_MULTI 9-byte entry", false, MU_CMD_REGION_WRITE_MULTI, 0, 0, P(uint8_t[32], 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0, 9), FD_NONE, 0, NULL, EINVAL},
	{"FEATURE unknown", false, MU_CMD_DEVICE_FEATURE, 0, 0, P(struct mu_device_feature, 8, MU_DEVICE_FEATURE_GET | 0x77), FD_NONE, 0, NULL, ENOTTY},
	{"FEATURE get and set", false, MU_CMD_DEVICE_FEATURE, 0, 0, P(struct mu_device_feature, 8, MU_DEVICE_FEATURE_GET | MU_DEVICE_FEATURE_SET | 2), FD_NONE, 0, NULL, EINVAL},
	{"FEATURE argsz 4", false, MU_CMD_DEVICE_FEATURE, 0, 0, P(struct mu_device_feature, 4, MU_DEVICE_FEATURE_GET | 1), FD_NONE, 0, NULL, EINVAL},
	{"MIG_DATA_READ while running", false, MU_CMD_MIG_DATA_READ, 0, 0, P(struct mu_mig_data, 8 + 64, 64), FD_NONE, 0, NULL, EINVAL},
	{"MIG_DATA_WRITE size lies", false, MU_CMD_MIG_DATA_WRITE, 0, 0, P(struct mu_mig_data, 8, 64), FD_NONE, 0, NULL, EINVAL},
	{"RESET with payload", false, MU_CMD_DEVICE_RESET, 0, 0, "abcd", 4, FD_NONE, 0, NULL, EINVAL},
	{"DMA_READ from client", false, MU_CMD_DMA_READ, 0, 0, P(struct mu_dma_access, 0x1000, 4), FD_NONE, 0, NULL, EINVAL},
	{"request flood", false, 0, 0, 0, NULL, 0, FD_NONE, 0, c_request_flood, EXP_OK},
};

/* ---- driver -------------------------------------------------------------- */

static int connect_retry(struct raw *r)
{
	int i, e = -1;

	/* The server drops the previous client asynchronously. */
	for (i = 0; i < 200; i++) {
		e = raw_connect(r, sock_path);
		if (e == 0) {
			e = raw_negotiate(r, 0, 2, NULL);
			if (e == 0)
				return 0;
			raw_close(r);
		}
		usleep(10 * 1000);
	}
	return e;
}

/* A well-behaved session: negotiate, read the config header. */
static int healthy_session(uint32_t *ids)
{
	struct mu_region_access a = {0, MU_PCI_CONFIG_REGION_INDEX, 4};
	uint8_t out[20];
	struct raw r;
	ssize_t n;

	if (connect_retry(&r) < 0)
		return -1;
	n = raw_call(&r, MU_CMD_REGION_READ, &a, sizeof(a), NULL, 0, out,
		     sizeof(out));
	raw_close(&r);
	if (n != 20)
		return -1;
	memcpy(ids, out + 16, 4);
	return 0;
}

static int wait_fd_count(int want)
{
	int i, n = -1;

	for (i = 0; i < 300; i++) {
		n = proc_fd_count(server_pid);
		if (n == want)
			return n;
		usleep(10 * 1000);
	}
	return n;
}

static const char *describe(int v, char *buf, size_t len)
{
	if (v == EXP_CLOSE)
		return "close";
	if (v == EXP_OK)
		return "success";
	if (v == EXP_ANY)
		return "anything";
	snprintf(buf, len, "%s", strerror(v < 0 ? -v : v));
	return buf;
}

static int run_case(const struct hcase *c, uint32_t ids, int base_fds)
{
	char b1[64], b2[64];
	struct raw r;
	uint32_t now;
	int got, fds;

	if (c->before_version) {
		if (raw_connect(&r, sock_path) < 0)
			return -1;
	} else if (connect_retry(&r) < 0) {
		return -1;
	}
	if (c->custom) {
		got = c->custom(&r);
	} else {
		got = send_one(&r, c);
		if (got == 0)
			got = (c->flags & MU_FLAG_NO_REPLY) ? EXP_ANY : outcome(&r);
	}
	raw_close(&r);
	if (c->expect != EXP_ANY && got != EXP_ANY &&
	    !(c->expect == EXP_CLOSE && got == EXP_CLOSE) &&
	    !(c->expect == EXP_OK && got == 0) &&
	    !(c->expect > 0 && got == -c->expect)) {
		printf("not ok - %s: expected %s, got %s\n", c->name,
		       describe(c->expect, b1, sizeof(b1)),
		       describe(got, b2, sizeof(b2)));
		return -1;
	}
	if (healthy_session(&now) < 0 || now != ids) {
		printf("not ok - %s: server no longer serves a new client\n",
		       c->name);
		return -1;
	}
	fds = wait_fd_count(base_fds);
	if (fds != base_fds) {
		printf("not ok - %s: server fds %d, was %d\n", c->name, fds,
		       base_fds);
		return -1;
	}
	printf("ok - %s\n", c->name);
	return 0;
}

int main(int argc, char **argv)
{
	static char path[108];
	size_t i, n = sizeof(cases) / sizeof(cases[0]);
	int failed = 0, base_fds;
	uint32_t ids;
	char **sargv;

	if (argc < 2) {
		fprintf(stderr, "usage: %s SERVER [ARGS...]\n", argv[0]);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	snprintf(path, sizeof(path), "/tmp/mu-hostile-%d.sock", getpid());
	sock_path = path;
	sargv = calloc((size_t)argc + 2, sizeof(char *));
	sargv[0] = argv[1];
	for (i = 2; i < (size_t)argc; i++)
		sargv[i - 1] = argv[i];
	{
		static char opt[140];

		snprintf(opt, sizeof(opt), "--socket-path=%s", path);
		sargv[argc - 1] = opt;
	}
	server_pid = fork();
	if (server_pid == 0) {
		execv(sargv[0], sargv);
		_exit(127);
	}
	free(sargv);
	if (healthy_session(&ids) < 0) {
		fprintf(stderr, "server did not come up\n");
		kill(server_pid, SIGKILL);
		return 1;
	}
	base_fds = wait_fd_count(-1);
	usleep(100 * 1000);
	base_fds = proc_fd_count(server_pid);
	printf("1..%zu\n", n);
	for (i = 0; i < n; i++)
		if (run_case(&cases[i], ids, base_fds) < 0)
			failed++;
	kill(server_pid, SIGTERM);
	waitpid(server_pid, NULL, 0);
	printf("%zu passed, %d failed\n", n - (size_t)failed, failed);
	return failed ? 1 : 0;
}
