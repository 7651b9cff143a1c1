/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libFuzzer: framing and validation. The input is split into chunks that
 * are written to a real socketpair (some chunks carrying an eventfd or a
 * memfd), and everything received is validated as a command from a client
 * and as a command from a server.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "wire-core.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct mu_limits lim = {.max_data_xfer = 1 << 16,
				     .max_fds = 4};

/* Take in everything that has arrived; false once the stream is done. */
static bool drain(struct mu_chan *rx)
{
	struct mu_msg m;
	int r;

	for (;;) {
		bool c32;

		r = mu_chan_recv(rx, &m, MU_RECV_NONBLOCK);
		if (r == 1) {
			if ((m.hdr.flags & MU_FLAG_TYPE_MASK) == 0) {
				mu_check_command(&m, &lim);
				mu_check_server_command(&m, &lim, &c32);
			} else {
				mu_check_reply(&m, m.hdr.cmd, 16);
			}
			mu_msg_close_fds(&m);
			continue;
		}
		if (r == -EINVAL || r == -EMSGSIZE)
			continue; /* refused, stream still in sync */
		return r == -EAGAIN;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mu_chan rx;
	size_t off = 0;
	bool live = true;
	int sv[2];

	if (size > 100000)
		return 0;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return 0;
	if (mu_chan_init(&rx, sv[0], (1 << 16) + MU_MSG_OVERHEAD, 4) < 0) {
		close(sv[0]);
		close(sv[1]);
		return 0;
	}
	/* Chunk layout: [len:1][fds:1][bytes...] repeated. */
	while (live && off + 2 <= size) {
		size_t len = data[off] ? data[off] : 256;
		unsigned nfds = data[off + 1] % 4, i;
		int fds[3];
		struct iovec iov;

		off += 2;
		if (len > size - off)
			len = size - off;
		if (len == 0)
			break;
		for (i = 0; i < nfds; i++)
			fds[i] = (i & 1) ? memfd_create("f", MFD_CLOEXEC)
					 : eventfd(0, EFD_CLOEXEC);
		iov.iov_base = (void *)(data + off);
		iov.iov_len = len;
		mu_sendmsg_all(sv[1], &iov, 1, fds, nfds);
		for (i = 0; i < nfds; i++)
			close(fds[i]);
		off += len;
		live = drain(&rx);
	}
	shutdown(sv[1], SHUT_WR);
	while (live && drain(&rx))
		;
	mu_chan_fini(&rx);
	close(sv[1]);
	return 0;
}
