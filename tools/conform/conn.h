/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * conn.h - the checker's own raw vfio-user transport. It sends exactly the
 * bytes and fds a check asks for (malformed ones included), reads whatever
 * comes back with a deadline, and serves the server's DMA_READ/DMA_WRITE
 * from the windows the checker mapped, validating each request.
 */
#ifndef MUSER_CONFORM_CONN_H
#define MUSER_CONFORM_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conform.h"

#define CF_MAX_FDS 253u
/* Largest payload the checker keeps (its max_data_xfer_size + slack). */
#define CF_MAX_XFER (1u << 20)
#define CF_RECV_CAP (CF_MAX_XFER + 8192u)
#define CF_MAX_WIN 260u /* dma.max-maps maps up to 257 */

struct cf_msg {
	struct mu_hdr hdr;
	uint8_t *payload; /* hdr.size - 16 bytes, NULL when empty */
	size_t len;
	int fds[CF_MAX_FDS];
	unsigned nfds;
	bool ctrunc; /* the kernel dropped fds (MSG_CTRUNC) */
};

/* A window the checker mapped; DMA to it is served from buf or fd. */
struct cf_window {
	uint64_t iova, size;
	uint32_t prot; /* MU_DMA_MAP_FLAG_* */
	uint8_t *buf;  /* fd-less windows */
	int fd;	       /* fd-backed windows (our copy), else -1 */
};

struct cf_conn {
	int fd, twin;
	uint16_t next_id;
	int timeout_ms;
	bool dead; /* the stream can't be trusted any more */
	int dead_err;
	struct cf_window win[CF_MAX_WIN];
	unsigned nwin;
	struct cf_dma_stats *dma;
};

/* Connect to path (no VERSION sent). */
int cf_conn_open(struct cf_conn **out, const char *path, int timeout_ms,
		 struct cf_dma_stats *dma);
void cf_conn_close(struct cf_conn *c);
/* The pid of the peer (SO_PEERCRED), or -errno. */
int cf_conn_peer_pid(const struct cf_conn *c);

/* Send one message; size 0 = honest (16 + len). Any id may be given. */
int cf_send(struct cf_conn *c, uint16_t id, uint16_t cmd, uint32_t flags,
	    uint32_t size, const void *payload, size_t len, const int *fds,
	    unsigned nfds);
/* The same on a given socket (main or twin), or with a full header. */
int cf_send_on(struct cf_conn *c, int fd, uint16_t id, uint16_t cmd,
	       uint32_t flags, uint32_t size, const void *payload, size_t len,
	       const int *fds, unsigned nfds);
int cf_send_msg(struct cf_conn *c, int fd, const struct mu_hdr *hdr,
		const void *payload, size_t len, const int *fds, unsigned nfds);
int cf_recv_on(struct cf_conn *c, int fd, struct cf_msg *m, int ms);
/* Send raw bytes (a torn or lying message). */
int cf_send_bytes(struct cf_conn *c, const void *buf, size_t len);
/* Next message of any kind from the main socket within ms. 0, or
 * -ETIMEDOUT, -ECONNRESET (server closed), -EMSGSIZE, -errno. */
int cf_recv(struct cf_conn *c, struct cf_msg *m, int ms);
/* Next reply within ms, serving server commands meanwhile. */
int cf_wait(struct cf_conn *c, struct cf_msg *m, int ms);
/* Send cmd with a fresh id and wait for the next reply: 0 when its id
 * matches, -EPROTO when another reply came (m holds it), else -errno. */
int cf_call(struct cf_conn *c, uint16_t cmd, const void *payload, size_t len,
	    const int *fds, unsigned nfds, struct cf_msg *m);
uint16_t cf_next_id(struct cf_conn *c);
void cf_msg_free(struct cf_msg *m);

/* Reply checks: -errno of an error reply (EIO if it carries 0), else 0. */
int cf_reply_errno(const struct cf_msg *m);
bool cf_is_error(const struct cf_msg *m);

/* Track a window the server may DMA to (after a successful DMA_MAP). */
int cf_window_add(struct cf_conn *c, uint64_t iova, uint64_t size,
		  uint32_t prot, uint8_t *buf, int fd);
void cf_window_del(struct cf_conn *c, uint64_t iova, uint64_t size);
void cf_window_clear(struct cf_conn *c);

/* Use a twin socket the server handed over (taken over by the conn). */
void cf_conn_set_twin(struct cf_conn *c, int fd);

/* Evidence text for a transport error. */
const char *cf_conn_strerror(int err, int timeout_ms, char *buf, size_t len);

#endif
