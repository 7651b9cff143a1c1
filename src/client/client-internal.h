/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * client-internal.h - shared state of libmuser-client. Not installed.
 *
 * Threading model (see rpc.c): one mutex `lock` guards the request table
 * and connection state; `send_lock` serialises writes on the main socket
 * and guards the WRITE_MULTI batch (lock order: send_lock, then lock).
 * Whichever waiting thread holds the `leader` role reads the socket(s),
 * completes other threads' requests and serves the server's DMA commands;
 * the others sleep on their own condvar.
 */
#ifndef MUSER_CLIENT_INTERNAL_H
#define MUSER_CLIENT_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>
#include <time.h>

#include "muser/client.h"
#include "wire-core.h"

#define MU_CLIENT_DEFAULT_TIMEOUT_MS 5000
#define MU_CLIENT_DEFAULT_MAX_FDS 16u
/* Posted writes batched into one REGION_WRITE_MULTI. */
#define MU_CLIENT_WM_BATCH 64u
/* Recently timed-out msg_ids whose late replies are dropped silently. */
#define MU_CLIENT_TIMED_OUT_RING 64u
/* Sanity caps on what a server may claim. */
#define MU_CLIENT_MAX_REGIONS 1024u
#define MU_CLIENT_MAX_IRQS 1024u
#define MU_CLIENT_MAX_CAPS 64u
/* With a twin socket but no fd-less maps, the leader blocks on the main
 * socket in slices this long and checks the twin in between. */
/* A blocking receive returns to check the request deadline at least this
 * often while a message trickles in. */
#define MU_CLIENT_TRICKLE_MS 50
#define MU_CLIENT_TWIN_SLICE_MS 50

/* One request/reply exchange as the engine sees it. */
struct mu_call {
	uint16_t cmd;
	uint32_t flags; /* extra header flags (MU_FLAG_NO_REPLY) */
	const struct iovec *iov;
	int iovcnt;
	const int *fds;
	unsigned nfds;
	/* Reply payload is scattered into riov; a longer reply is refused
	 * (-EBADMSG) unless rtrunc. A shorter one than rmin is -EBADMSG. */
	const struct iovec *riov;
	int riovcnt;
	size_t rmin;
	bool rtrunc;
	int *rfds; /* fds the reply may carry; more is -EPROTO */
	unsigned rfds_max;
	/* results */
	size_t rlen;
	unsigned nrfds;
};

struct mu_req {
	struct mu_req *next;
	struct mu_call *call;
	uint16_t msg_id;
	bool done;
	int result;
	pthread_cond_t cond;
};

struct mu_dma_ent {
	uint64_t iova, size;
	uint32_t prot;
	void *buf; /* buffer map, or NULL */
	int fd;	   /* our dup of an fd map, or -1 */
	uint64_t fd_offset;
};

struct mu_mmap_ent {
	void *addr;
	size_t len;
};

struct mu_client {
	pthread_mutex_t lock;
	struct mu_req *pending;
	bool leader;
	int dead; /* 0, or the -errno that ended the connection */
	uint16_t next_id;
	uint32_t timed_out[MU_CLIENT_TIMED_OUT_RING]; /* >0xffff: empty */
	unsigned timed_out_pos;
	unsigned nr_timed_out; /* entries in use: 0 skips the ring scans */
	pthread_condattr_t condattr;

	pthread_mutex_t send_lock;
	struct mu_write_multi_entry wm[MU_CLIENT_WM_BATCH];
	unsigned nwm;
	bool posted_pending; /* posted writes not yet known processed */

	struct mu_chan chan; /* main socket; read by the leader only */
	struct mu_chan twin; /* server->client commands; fd -1 if none */
	bool has_twin;

	int timeout_ms;	  /* <0: forever */
	int cur_rcvtimeo; /* SO_RCVTIMEO now set on the main socket, ms */
	struct mu_client_opts opts;
	struct mu_client_session sess;
	uint32_t our_xfer; /* our receive limit for data */
	unsigned our_fds;  /* our receive limit for fds */

	/* discovery cache, under lock */
	bool have_dev;
	struct mu_device_info dev;
	struct mu_client_region **regions;

	/* DMA table sorted by iova, under dma_lock */
	pthread_rwlock_t dma_lock;
	struct mu_dma_ent *maps;
	unsigned nmaps, maps_cap;
	int nbuf_maps; /* atomic: fd-less maps, the twin must be watched */

	/* region mmaps made for the caller, under lock */
	struct mu_mmap_ent *mmaps;
	unsigned nmmaps, mmaps_cap;
};

/* conn.c */
void mu_client_log(struct mu_client *c, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Mark the connection dead with err (first error wins), fail every
 * pending request. Call with c->lock held. */
void mu_client_kill_locked(struct mu_client *c, int err);
void mu_client_kill(struct mu_client *c, int err);
/* Deadline from now + timeout; false when there is none (forever). */
bool mu_client_deadline(const struct mu_client *c, struct timespec *ts);

/* rpc.c */
int mu_rpc_call(struct mu_client *c, struct mu_call *call);
/* One request buffer out, one reply buffer back (at least rmin bytes,
 * at most rep_len); *rlen gets the reply's length. The common case. */
int mu_rpc_simple(struct mu_client *c, uint16_t cmd, const void *req,
		  size_t req_len, void *rep, size_t rep_len, size_t rmin,
		  size_t *rlen);
/* Send a message that gets no reply (posted writes). */
int mu_rpc_post(struct mu_client *c, uint16_t cmd, const struct iovec *iov,
		int iovcnt);
/* Caller holds send_lock: send the pending WRITE_MULTI batch. */
int mu_rpc_flush_batch_locked(struct mu_client *c);
uint16_t mu_rpc_alloc_id_locked(struct mu_client *c);
/* Map a send failure to what the caller sees. */
int mu_rpc_send_error(struct mu_client *c, int r);

/* dma.c: serve DMA_READ/DMA_WRITE read by the leader from ch. Returns 0
 * or a fatal -errno (the reply could not be sent). slock is the send lock
 * of ch (NULL for the twin, which only the leader writes). */
int mu_dma_serve(struct mu_client *c, struct mu_chan *ch,
		 pthread_mutex_t *slock, struct mu_msg *m);
void mu_dma_fini(struct mu_client *c);

/* region.c */
void mu_region_fini(struct mu_client *c);

/* migration.c: log "what: bad reply", kill the connection, -EBADMSG. */
int mu_bad_reply(struct mu_client *c, const char *what, size_t len);

/* info.c */
void mu_info_fini(struct mu_client *c);
/* One DEVICE_GET_INFO round trip, reply validated (info.c). */
int mu_info_fetch_device(struct mu_client *c, struct mu_device_info *out);

#endif
