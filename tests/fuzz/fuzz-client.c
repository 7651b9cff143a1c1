/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libFuzzer: the client's reply and server-command path. A fake server
 * thread answers each request the client sends with the next chunk of the
 * input (optionally with the request's msg_id patched in, so replies get
 * past the id check), may push server commands (DMA_READ/WRITE) of its
 * own, and may attach fds. The client runs through its whole API; any
 * crash, hang or leak is a finding.
 */
#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "client-session.h"
#include "muser/client.h"
#include "wire-core.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct fake {
	int fd;
	const uint8_t *data;
	size_t size;
};

static void *fake_server(void *arg)
{
	struct fake *f = arg;
	struct mu_chan ch;
	struct mu_msg m;
	size_t off = 0;

	if (mu_chan_init(&ch, f->fd, 1 << 21, 16) < 0)
		return NULL;
	/* Chunk: [len lo][len hi][mode][bytes...]; mode bit0 = patch the
	 * msg_id and cmd of the request in, bit1 = attach an eventfd,
	 * bit2 = don't wait for a request first. */
	while (off + 3 <= f->size) {
		size_t len = (size_t)(f->data[off] | f->data[off + 1] << 8);
		uint8_t mode = f->data[off + 2];
		uint8_t buf[4096];
		struct iovec iov;
		int efd = -1, r;

		off += 3;
		if (len > f->size - off)
			len = f->size - off;
		if (len > sizeof(buf))
			len = sizeof(buf);
		memcpy(buf, f->data + off, len);
		off += len;
		if (!(mode & 4)) {
			r = mu_chan_recv(&ch, &m, 0);
			if (r == 0 || r == -ECONNRESET || r == -EPROTO)
				break;
			if (r == 1)
				mu_msg_close_fds(&m);
			if ((mode & 1) && r == 1 && len >= 4) {
				memcpy(buf, &m.hdr.msg_id, 2);
				memcpy(buf + 2, &m.hdr.cmd, 2);
			}
		}
		if (mode & 2)
			efd = eventfd(0, EFD_CLOEXEC);
		iov.iov_base = buf;
		iov.iov_len = len;
		if (len)
			mu_sendmsg_all(ch.fd, &iov, 1, &efd, efd >= 0 ? 1 : 0);
		if (efd >= 0)
			close(efd);
	}
	mu_chan_fini(&ch);
	return NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mu_client_opts o = {.struct_size = sizeof(o),
				   .timeout_ms = 5,
				   .log_level = -1};
	struct fake f;
	mu_client_t *c = NULL;
	pthread_t th;
	int sv[2];

	if (size > 65536)
		return 0;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return 0;
	f.fd = sv[1];
	f.data = data;
	f.size = size;
	pthread_create(&th, NULL, fake_server, &f);
	if (mu_client_adopt(&c, sv[0], &o) == 0) {
		client_session(c);
		mu_client_destroy(c);
	}
	pthread_join(th, NULL);
	return 0;
}
