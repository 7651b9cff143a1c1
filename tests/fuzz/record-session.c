/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * record-session SERVER-SOCKET OUTDIR: seeds for the fuzzers, recorded
 * from real sessions. A proxy between libmuser-client and a running
 * server (muser-dma-test) writes what the client sent, with its fds, in
 * fuzz-server's chunk format (OUTDIR/server/...), and what the server
 * answered in fuzz-client's format (OUTDIR/client/...).
 *
 * Session "rich": negotiation, discovery, config reads, register writes,
 * interrupts, DMA maps with and without fd, a copy whose source needs
 * DMA_READ messages, posted writes, reset, unmap. Session "api": exactly
 * the calls fuzz-client makes (client-session.h), so its seed lines up.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "client-session.h"
#include "muser/client.h"
#include "wire-core.h"
#include "../../samples/dma-test/dma-test.h"

struct proxy {
	int listen_fd;
	const char *server;
	FILE *to_server; /* fuzz-server chunks */
	FILE *to_client; /* fuzz-client chunks */
};

/* fuzz-server's fd kinds: 1 eventfd, 2 memfd/file, 3 anything else. */
static unsigned fd_kind(int fd)
{
	char path[64], t[128];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, t, sizeof(t) - 1);
	if (n < 0)
		return 3;
	t[n] = 0;
	if (strstr(t, "eventfd"))
		return 1;
	if (t[0] == '/')
		return 2;
	return 3;
}

static void record_to_server(FILE *f, const uint8_t *p, size_t n,
			     const int *fds, unsigned nfds)
{
	unsigned cnt = nfds > 3 ? 3 : nfds, kinds = cnt, i;

	for (i = 0; i < cnt; i++)
		kinds |= fd_kind(fds[i]) << (2 + 2 * i);
	while (n) {
		size_t part = n > 255 ? 255 : n;

		fputc((int)part, f);
		fputc((int)kinds, f);
		fwrite(p, 1, part, f);
		p += part;
		n -= part;
		kinds = 0;
	}
}

/* One message from the server: replies wait for a request and take its
 * id (mode 1), server commands go out unasked (mode 4). */
static void record_to_client(FILE *f, const struct mu_msg *m)
{
	uint8_t mode = (m->hdr.flags & MU_FLAG_TYPE_MASK) == MU_FLAG_TYPE_REPLY
			       ? 1
			       : 4;
	size_t n = sizeof(m->hdr) + m->len;

	if (m->nfds)
		mode |= 2;
	fputc((int)(n & 0xff), f);
	fputc((int)(n >> 8), f);
	fputc(mode, f);
	fwrite(&m->hdr, 1, sizeof(m->hdr), f);
	fwrite(m->payload, 1, m->len, f);
}

/* Forward one read from a to b; false at EOF. */
static bool pump_raw(int a, int b, FILE *rec)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int) * 16)];
	} ctl;
	uint8_t buf[65536];
	struct iovec iov = {buf, sizeof(buf)};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1,
			    .msg_control = ctl.buf,
			    .msg_controllen = sizeof(ctl.buf)};
	int fds[16];
	unsigned nfds = 0, i;
	struct cmsghdr *cm;
	ssize_t n = recvmsg(a, &mh, MSG_CMSG_CLOEXEC);

	if (n <= 0)
		return false;
	for (cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm))
		if (cm->cmsg_type == SCM_RIGHTS) {
			nfds = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
			memcpy(fds, CMSG_DATA(cm), nfds * sizeof(int));
		}
	record_to_server(rec, buf, (size_t)n, fds, nfds);
	iov.iov_len = (size_t)n;
	mu_sendmsg_all(b, &iov, 1, fds, nfds);
	for (i = 0; i < nfds; i++)
		close(fds[i]);
	return true;
}

static void *proxy_thread(void *arg)
{
	struct proxy *p = arg;
	struct mu_chan from_server;
	int c = mu_sock_accept(p->listen_fd), s = mu_sock_connect(p->server);
	struct pollfd pf[2] = {{c, POLLIN, 0}, {s, POLLIN, 0}};

	if (c < 0 || s < 0 || mu_chan_init(&from_server, s, 1 << 21, 16) < 0)
		return NULL;
	for (;;) {
		if (poll(pf, 2, -1) < 0)
			break;
		if (pf[0].revents && !pump_raw(c, s, p->to_server))
			break;
		if (pf[1].revents) {
			struct mu_msg m;
			int r = mu_chan_recv(&from_server, &m, MU_RECV_NONBLOCK);

			while (r == 1) {
				struct mu_hdr h = m.hdr;
				struct iovec iov[2] = {{&h, sizeof(h)},
						       {(void *)m.payload,
							m.len}};

				record_to_client(p->to_client, &m);
				mu_sendmsg_all(c, iov, 2, m.fds, m.nfds);
				mu_msg_close_fds(&m);
				r = mu_chan_recv(&from_server, &m,
						 MU_RECV_NONBLOCK);
			}
			if (r != -EAGAIN)
				break;
		}
	}
	close(c);
	mu_chan_fini(&from_server);
	return NULL;
}

static int w32(mu_client_t *c, uint32_t reg, uint32_t v)
{
	return mu_client_region_write(c, 0, reg, &v, 4);
}

static void rich_session(mu_client_t *c)
{
	const struct mu_client_region *reg;
	struct mu_device_info di;
	struct mu_irq_info ii;
	uint8_t cfg[256], *src = aligned_alloc(4096, 8192);
	int mfd = memfd_create("guest", MFD_CLOEXEC), efd[4], i;
	uint32_t st = 0, wr = 0x12345678;

	if (ftruncate(mfd, 1 << 16) < 0)
		return;
	mu_client_device_info(c, &di);
	for (i = 0; i < 9; i++)
		mu_client_region_info(c, (unsigned)i, &reg);
	for (i = 0; i < 5; i++)
		mu_client_irq_info(c, (unsigned)i, &ii);
	mu_client_region_read(c, MU_PCI_CONFIG_REGION_INDEX, 0, cfg,
			      sizeof(cfg));
	wr = 0x0006; /* memory + bus master */
	mu_client_region_write(c, MU_PCI_CONFIG_REGION_INDEX, 4, &wr, 2);
	for (i = 0; i < 4; i++)
		efd[i] = eventfd(0, EFD_CLOEXEC);
	mu_client_irq_set_eventfds(c, MU_PCI_MSIX_IRQ_INDEX, 0, 4, efd);
	mu_client_dma_map_fd(c, 0x100000, 1 << 16, mfd, 0,
			     MU_DMA_MAP_FLAG_READ | MU_DMA_MAP_FLAG_WRITE);
	memset(src, 0xa5, 8192);
	mu_client_dma_map_buffer(c, 0x200000, src, 8192, MU_DMA_MAP_FLAG_READ);
	w32(c, DMAT_REG_SRC_LO, 0x200000);
	w32(c, DMAT_REG_DST_LO, 0x100000);
	w32(c, DMAT_REG_LEN, 8192);
	w32(c, DMAT_REG_OP, DMAT_OP_COPY);
	w32(c, DMAT_REG_IRQ_CTRL, DMAT_IRQ_EN);
	w32(c, DMAT_REG_CMD, DMAT_CMD_START);
	for (i = 0; i < 1000 && !(st & DMAT_STATUS_DONE); i++)
		mu_client_region_read(c, 0, DMAT_REG_STATUS, &st, 4);
	mu_client_region_write_posted(c, 0, DMAT_REG_SCRATCH, &wr, 4);
	mu_client_region_write_posted(c, 0, DMAT_REG_SCRATCH, &wr, 2);
	mu_client_flush(c);
	mu_client_irq_mask(c, MU_PCI_MSIX_IRQ_INDEX, 0, 1, true);
	mu_client_irq_mask(c, MU_PCI_MSIX_IRQ_INDEX, 0, 1, false);
	mu_client_reset(c);
	mu_client_dma_unmap(c, 0x200000, 8192);
	mu_client_dma_unmap_all(c);
	mu_client_irq_disable(c, MU_PCI_MSIX_IRQ_INDEX);
	for (i = 0; i < 4; i++)
		close(efd[i]);
	close(mfd);
	free(src);
}

static int record(const char *server, const char *outdir, const char *name,
		  void (*session)(mu_client_t *))
{
	struct mu_client_opts o = {.struct_size = sizeof(o),
				   .no_twin_socket = true};
	char path[512], sock[108];
	struct proxy p = {.server = server};
	mu_client_t *c;
	pthread_t th;
	int r;

	snprintf(sock, sizeof(sock), "/tmp/mu-record-%d.sock", getpid());
	p.listen_fd = mu_sock_listen(sock, 1);
	snprintf(path, sizeof(path), "%s/server/%s", outdir, name);
	p.to_server = fopen(path, "wb");
	snprintf(path, sizeof(path), "%s/client/%s", outdir, name);
	p.to_client = fopen(path, "wb");
	if (p.listen_fd < 0 || !p.to_server || !p.to_client) {
		fprintf(stderr, "record-session: can't set up %s\n", name);
		return 1;
	}
	pthread_create(&th, NULL, proxy_thread, &p);
	r = mu_client_connect(&c, sock, &o);
	if (r == 0) {
		session(c);
		mu_client_destroy(c);
	}
	pthread_join(th, NULL);
	fclose(p.to_server);
	fclose(p.to_client);
	close(p.listen_fd);
	unlink(sock);
	if (r < 0)
		fprintf(stderr, "record-session: connect: %s\n", strerror(-r));
	return r < 0;
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: %s SERVER-SOCKET OUTDIR\n", argv[0]);
		return 2;
	}
	return record(argv[1], argv[2], "recorded-rich", rich_session) |
	       record(argv[1], argv[2], "recorded-api", client_session);
}
