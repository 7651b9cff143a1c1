/* SPDX-License-Identifier: BSD-3-Clause */
#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "raw-client.h"

int raw_connect(struct raw *r, const char *path)
{
	int fd = mu_sock_connect(path), e;

	if (fd < 0)
		return fd;
	e = mu_chan_init(&r->ch, fd, (1u << 20) + MU_MSG_OVERHEAD, 16);
	if (e < 0) {
		close(fd);
		return e;
	}
	r->next_id = 1;
	return 0;
}

void raw_close(struct raw *r)
{
	mu_chan_fini(&r->ch);
}

int raw_send(struct raw *r, uint16_t id, uint16_t cmd, uint32_t flags,
	     uint32_t size, const void *payload, size_t len, const int *fds,
	     unsigned nfds)
{
	struct mu_hdr h = {.msg_id = id, .cmd = cmd, .flags = flags};
	struct iovec v[2] = {{&h, sizeof(h)}, {(void *)payload, len}};

	h.size = size ? size : (uint32_t)(sizeof(h) + len);
	return mu_sendmsg_all(r->ch.fd, v, len ? 2 : 1, fds, nfds);
}

int raw_recv(struct raw *r, struct mu_msg *m, int ms)
{
	struct pollfd p = {.fd = r->ch.fd, .events = POLLIN};
	int n;

	for (;;) {
		n = mu_chan_recv(&r->ch, m, MU_RECV_NONBLOCK);
		if (n != -EAGAIN)
			return n;
		n = poll(&p, 1, ms);
		if (n == 0)
			return -ETIMEDOUT;
		if (n < 0 && errno != EINTR)
			return -errno;
	}
}

int raw_negotiate(struct raw *r, uint16_t major, uint16_t minor,
		  const char *json)
{
	uint8_t buf[8192];
	size_t n;
	ssize_t got;
	struct mu_version v = {major, minor};

	if (!json)
		json = "{\"capabilities\":{\"max_msg_fds\":16,"
		       "\"max_data_xfer_size\":1048576}}";
	n = strlen(json) + 1;
	if (n + sizeof(v) > sizeof(buf))
		return -E2BIG;
	memcpy(buf, &v, sizeof(v));
	memcpy(buf + sizeof(v), json, n);
	got = raw_call(r, MU_CMD_VERSION, buf, sizeof(v) + n, NULL, 0, NULL, 0);
	return got < 0 ? (int)got : 0;
}

ssize_t raw_call(struct raw *r, uint16_t cmd, const void *payload, size_t len,
		 const int *fds, unsigned nfds, void *out, size_t out_cap)
{
	uint16_t id = r->next_id++;
	struct mu_msg m;
	int e;

	e = raw_send(r, id, cmd, 0, 0, payload, len, fds, nfds);
	if (e < 0)
		return e;
	e = raw_recv(r, &m, 5000);
	if (e == 0)
		return -ECONNRESET;
	if (e < 0)
		return e;
	if (m.hdr.msg_id != id) {
		mu_msg_close_fds(&m);
		return -EPROTO;
	}
	e = mu_check_reply(&m, cmd, 0);
	if (e == 0 && out)
		memcpy(out, m.payload, m.len < out_cap ? m.len : out_cap);
	mu_msg_close_fds(&m);
	return e < 0 ? e : (ssize_t)m.len;
}

int proc_fd_count(pid_t pid)
{
	char path[64];
	struct dirent *e;
	DIR *d;
	int n = 0;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	d = opendir(path);
	if (!d)
		return -errno;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}
