/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * wire-core.h - the internal wire core shared by libmuser and
 * libmuser-client: socket transport with fd passing, message framing,
 * validation of every command's payload, and capability negotiation.
 * Not installed; every function returns 0 / a count, or a negative errno.
 */
#ifndef MUSER_WIRE_CORE_H
#define MUSER_WIRE_CORE_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "muser/wire.h"

/* ---- sockets (sock.c) -------------------------------------------------- */

/* Listen on a UNIX socket path. A stale socket file (nobody accepts on it)
 * is replaced; a live server at the path gives -EADDRINUSE. */
int mu_sock_listen(const char *path, int backlog);
/* Accept one connection (CLOEXEC); -EAGAIN when none is pending on a
 * non-blocking listener. */
int mu_sock_accept(int listen_fd);
int mu_sock_connect(const char *path);
/* Check that fd is a connected AF_UNIX stream socket we can adopt. */
int mu_sock_check_adoptable(int fd);
/* True for a socket in listen() state (SO_ACCEPTCONN). */
bool mu_sock_is_listening(int fd);
/* A CLOEXEC socketpair for the twin socket. */
int mu_sock_pair(int fds[2]);
int mu_fd_set_nonblock(int fd, bool nonblock);

/* ---- system calls (sys.c) --------------------------------------------- */

/* recvmsg()/sendmsg() that are not cancellation points (see sys.c). */
ssize_t mu_sys_recvmsg(int fd, struct msghdr *mh, int flags);
ssize_t mu_sys_sendmsg(int fd, const struct msghdr *mh, int flags);

/* ---- framing (chan.c) -------------------------------------------------- */

/* Fixed overhead allowed on top of max_data_xfer_size for one message:
 * the header plus the largest fixed part of any command, rounded up. */
#define MU_MSG_OVERHEAD 4096u
#define MU_CHAN_MIN_BUF 4096u
/* Socket send buffers grow to the largest message, up to this much
 * (messages at most MU_SNDBUF_DEFAULT keep the system default). */
#define MU_SNDBUF_MAX (4u << 20)
#define MU_SNDBUF_DEFAULT (256u << 10)

struct mu_fd_tag {
	uint64_t pos; /* stream offset of the last byte of the read */
	int fd;
};

/* One direction-agnostic message stream over a connected socket. */
struct mu_chan {
	int fd;
	uint8_t *buf;
	size_t cap, head, tail; /* valid bytes are buf[head, tail) */
	uint64_t pos;		/* stream offset of buf[head] */
	struct mu_fd_tag *fdq;	/* received fds not yet given to a message */
	size_t nfdq, fdq_cap;
	size_t max_msg;	  /* largest message accepted, header included */
	unsigned max_fds; /* most fds accepted with one message */
	uint64_t discard; /* bytes of a refused message still to drop */
	int bad_err;	  /* a message in [bad_lo, bad_hi] lost fds */
	uint64_t bad_lo, bad_hi;
	/* Blocking receive: once part of a message is in, give up (-EAGAIN,
	 * bytes kept) after this many ms, so a peer that trickles one byte
	 * at a time can't hold the caller past its own timeouts. 0: no bound.
	 */
	int max_wait_ms;
	/* Senders are serialized (a device thread's DMA request and the
	 * serving thread's replies share one stream): a futex lock, 0 free,
	 * 1 held, 2 held with waiters. epoch counts connections: fini bumps
	 * it under the lock, so a sender that captured an older epoch gets
	 * -ENOTCONN instead of writing into the next client's stream. Both
	 * survive fini and mu_chan_reopen(). */
	_Atomic int slock;
	uint32_t epoch;
};

struct mu_msg {
	struct mu_hdr hdr;
	const uint8_t *payload; /* valid until the next mu_chan_recv */
	size_t len;		/* payload bytes (hdr.size - 16) */
	unsigned nfds;
	int fds[MU_MAX_FDS_LIMIT];
};

#define MU_RECV_NONBLOCK 1

int mu_chan_init(struct mu_chan *c, int fd, size_t max_msg, unsigned max_fds);
/* The same for a channel that served (or was zeroed) before: its send lock
 * and epoch carry on, so a late sender of the last connection is refused. */
int mu_chan_reopen(struct mu_chan *c, int fd, size_t max_msg, unsigned max_fds);
/* Closes the socket and every fd still queued. */
void mu_chan_fini(struct mu_chan *c);
void mu_chan_set_limits(struct mu_chan *c, size_t max_msg, unsigned max_fds);
/*
 * Receive one whole message. Returns 1 with *m filled; 0 when the peer
 * closed the stream cleanly between messages; -EAGAIN (MU_RECV_NONBLOCK)
 * when no whole message is there yet; -ECONNRESET when the peer closed
 * mid-message; -EMSGSIZE / -EINVAL / -EMFILE / -ENOMEM when a message was
 * refused (too big; too many fds; its fds could not be received here):
 * then m->hdr holds its header (so an error reply can be sent), the fds are
 * closed and the rest of its bytes are dropped as they arrive, so the
 * stream stays in sync. Other negative errnos are socket errors.
 */
int mu_chan_recv(struct mu_chan *c, struct mu_msg *m, int flags);
/* mu_chan_recv() refused one message but the stream is still in sync:
 * m->hdr is valid, an error reply can go out and serving can go on. */
static inline bool mu_chan_refused(int r)
{
	return r == -EMSGSIZE || r == -EINVAL || r == -EMFILE || r == -ENOMEM;
}
/* True when a whole message is already buffered (no syscall needed). */
bool mu_chan_has_msg(const struct mu_chan *c);
/* Send header + iov + fds as one message; handles partial writes and EINTR.
 * hdr->size is set by this function. */
int mu_chan_send(struct mu_chan *c, struct mu_hdr *hdr, const struct iovec *iov,
		 int iovcnt, const int *fds, unsigned nfds);
/* mu_chan_send() only while c->epoch is still epoch (checked under the
 * send lock): -ENOTCONN once the connection it was meant for is gone. */
int mu_chan_send_epoch(struct mu_chan *c, uint32_t epoch, struct mu_hdr *hdr,
		       const struct iovec *iov, int iovcnt);
/* Send one message already laid out in one buffer, header first (small
 * region replies); sets the header's size to len. */
int mu_chan_send_flat(struct mu_chan *c, void *msg, size_t len);
/* Convenience: header-only error reply (positive errno). */
int mu_chan_send_error(struct mu_chan *c, const struct mu_hdr *req, int err);
/* Keep the payloads already returned valid across further receives: the
 * buffer holding them goes to the caller (who frees it when done) and the
 * channel goes on in a fresh one with the unread bytes. NULL on ENOMEM. */
uint8_t *mu_chan_detach_buffer(struct mu_chan *c);
/* Give the heap back after a large message (keeps MU_CHAN_MIN_BUF). */
void mu_chan_trim(struct mu_chan *c);

void mu_msg_close_fds_slow(struct mu_msg *m);
static inline void mu_msg_close_fds(struct mu_msg *m)
{
	if (m->nfds)
		mu_msg_close_fds_slow(m);
}
/* Take fd i out of the message (the caller owns it now). */
int mu_msg_take_fd(struct mu_msg *m, unsigned i);

/* Raw I/O helpers with EINTR/partial handling. */
int mu_sendmsg_all(int fd, struct iovec *iov, int iovcnt, const int *fds,
		   unsigned nfds);

/* ---- validation (check.c) --------------------------------------------- */

struct mu_limits {
	uint32_t max_data_xfer; /* our own limit for data in one message */
	unsigned max_fds;	/* our own limit for fds in one message */
};

/* Name of a command for logs ("REGION_READ"), or "UNKNOWN". */
const char *mu_cmd_name(unsigned cmd);
/* MU_OP_* (commands.h) of a command; 0 for one that does not exist. */
unsigned mu_cmd_flags(unsigned cmd);

/*
 * Validate a command message arriving at the server (client -> server
 * commands) before any handler sees it: sizes, argsz, counts against bytes
 * left, offset+count overflow, flag bits and fd counts. Returns 0 or a
 * negative errno to send back in an error reply.
 */
int mu_check_command(const struct mu_msg *m, const struct mu_limits *lim);
/* Same for server -> client commands (DMA_READ/DMA_WRITE) at the client;
 * sets *count32 when the peer used QEMU's u32-count layout. */
int mu_check_server_command(const struct mu_msg *m, const struct mu_limits *lim,
			    bool *count32);
/* Validate a reply header against the command it answers (type, command,
 * error bit, minimum payload). Returns 0, the peer's -errno for an error
 * reply, or -EPROTO / -EBADMSG for a malformed reply. */
int mu_check_reply(const struct mu_msg *m, uint16_t cmd, size_t min_len);
/* The same, and *peer_error tells a well-formed error reply (the peer's
 * own -errno: the stream is fine) from a broken one. */
int mu_check_reply_peer(const struct mu_msg *m, uint16_t cmd, size_t min_len,
			bool *peer_error);

/* REGION_READ / REGION_WRITE payload (the table in check.c uses it, and so
 * does libmuser's dispatcher for plain region accesses, so both refuse
 * exactly the same messages):
 * count 1..max_data_xfer, no offset overflow, data present for a write
 * and absent for a read. */
static inline int mu_check_region_access(const struct mu_msg *m,
					 const struct mu_limits *lim,
					 bool is_write)
{
	struct mu_region_access a;

	if (m->len < sizeof(a))
		return -EINVAL;
	memcpy(&a, m->payload, sizeof(a));
	if (!is_write && m->len != sizeof(a))
		return -EINVAL;
	if (a.count == 0 || a.count > lim->max_data_xfer)
		return a.count ? -E2BIG : -EINVAL;
	if (is_write && m->len != sizeof(a) + a.count)
		return -EINVAL;
	if (a.offset + a.count < a.offset)
		return -EINVAL;
	return 0;
}

/* Overflow-safe range check: [off, off+len) inside [0, size). */
static inline bool mu_range_ok(uint64_t off, uint64_t len, uint64_t size)
{
	return off <= size && len <= size - off;
}

/* ---- capabilities (caps.c) -------------------------------------------- */

struct mu_caps {
	uint32_t max_msg_fds;
	uint32_t max_data_xfer_size;
	uint32_t max_dma_maps;
	uint64_t pgsizes;
	bool twin_socket;
	int twin_fd_index; /* -1 when absent */
	bool write_multiple;
	bool migration; /* old "migration" object present (ignored) */
};

#define MU_CAPS_JSON_MAX 4096u
#define MU_CAPS_JSON_DEPTH 16

void mu_caps_defaults(struct mu_caps *c);
/* Parse the VERSION payload (version + optional JSON). Keys muser does not
 * know are ignored; known keys with the wrong type or range are -EINVAL. */
int mu_version_parse(const uint8_t *payload, size_t len, uint16_t *major,
		     uint16_t *minor, struct mu_caps *caps);
/* Write NUL-terminated JSON for caps into buf; returns bytes incl. NUL.
 * twin_fd_index < 0 omits fd_index. */
int mu_caps_format(const struct mu_caps *c, char *buf, size_t len);

#endif
