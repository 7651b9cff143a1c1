/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * dev-internal.h - libmuser's private state and the functions its files
 * share. One struct mu_dev per device; nothing global.
 *
 * Threads: one serving thread runs process()/run() and every handler.
 * Device threads may call mu_irq_*, mu_dma_*, mu_pci_config_read and
 * mu_dev_quiesce_done/stop. dev->lock guards config space and IRQ state;
 * dev->dma_lock (rwlock) guards the DMA maps; dev->twin_lock the twin
 * socket. Callbacks are never called with dev->lock held.
 */
#ifndef MU_DEV_INTERNAL_H
#define MU_DEV_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "muser/device.h"
#include "wire-core.h"

#define MU_CFG_STD_SIZE 256u
#define MU_CFG_EXP_SIZE 4096u
#define MU_PAGE 4096u
/* Idle wake-up of a blocked run(): stop and extra clients are noticed. */
#define MU_IDLE_TICK_MS 250
/* Check for (and drop) extra clients every this many messages. */
#define MU_EXTRA_CHECK_EVERY 4096u
/* Waiting for a client's DMA reply or an asynchronous quiesce. */
#define MU_DMA_TIMEOUT_MS 5000
#define MU_QUIESCE_TIMEOUT_MS 5000
/* Replies up to this size are built on the stack. */
#define MU_REPLY_INLINE 64u
/* DMA logging: ranges per START (Linux's LOG_MAX_RANGES with 4 KiB
 * pages) and bytes of bitmap for all of them (2 TiB at 4 KiB pages). */
#define MU_DLOG_MAX_RANGES 256u
#define MU_DLOG_MAX_BITMAP (64ull << 20)

struct mu_region {
	uint64_t size;
	uint32_t flags; /* MU_REGION_*; 0 = not set up */
	mu_region_access_fn access;
	struct mu_sparse_mmap_area *sparse;
	unsigned nr_sparse;
	uint32_t type, subtype;
	int memfd;
	int client_fd; /* what the client gets: memfd, or a read-only reopen */
	uint8_t *mem;
	/* Every access goes to the callback (no memory, no MSI-X table
	 * or PBA inside): set at realize, lets accesses skip those checks. */
	bool plain;
};

struct mu_ioefd {
	unsigned region;
	uint64_t offset;
	uint32_t size, flags;
	int fd;
	uint64_t datamatch;
};

struct mu_irq_vec {
	int efd;
	bool masked;  /* by SET_IRQS MASK (INTx: also auto-mask) */
	bool pending; /* fired while masked */
};

struct mu_irq_index {
	uint32_t count;
	struct mu_irq_vec *vec; /* allocated at realize */
};

struct mu_msi_state {
	unsigned cap; /* config offset, 0 = none */
	unsigned nvec;
	bool addr64, pvm;
};

struct mu_msix_state {
	unsigned cap;
	unsigned nvec;
	unsigned table_bar, pba_bar;
	uint32_t table_off, pba_off;
	uint8_t *table;	 /* nvec * 16 bytes */
	uint64_t *pba;	 /* (nvec + 63) / 64 words */
	bool fn_mask;	 /* cached from the cap's control word */
	bool table_used; /* the client wrote the table since reset */
};

struct mu_dmap {
	uint64_t iova, size;
	uint32_t prot;
	uint8_t *vaddr; /* NULL: message DMA */
	void *base;	/* mmap base and length, for munmap */
	size_t maplen;
	uint64_t id;
};

/* A command copied out of the channel buffer (queued while waiting for a
 * DMA reply on the main socket, or while an async quiesce is pending). */
struct mu_qmsg {
	struct mu_qmsg *next;
	struct mu_hdr hdr;
	int err; /* refused by the framing layer: reply with this */
	/* Parked after it ran (quiesce.c): a reset is due, then data is
	 * the reply to send; the command itself does not run again. */
	enum mu_reset_reason reset;
	size_t len;
	unsigned nfds;
	int fds[MU_MAX_FDS_LIMIT];
	uint8_t data[];
};

struct mu_reply {
	struct iovec iov[3];
	int iovcnt;
	const int *fds;
	unsigned nfds;
	int own_fd;	 /* closed after sending (twin client end) */
	bool close_conn; /* drop the client after this reply */
	void *heap;	 /* freed after sending */
	uint8_t buf[MU_REPLY_INLINE] __attribute__((aligned(8)));
};

/* The client connection; changed only by mu_conn_set(), which logs. */
enum mu_conn_state {
	MU_CONN_NONE,	     /* no client */
	MU_CONN_NEGOTIATING, /* accepted, waiting for VERSION */
	MU_CONN_READY,	     /* negotiated: commands are served */
	/* A reply could not be sent: the client is gone, but what it sent
	 * before going still runs, in order, unanswered, until EOF. */
	MU_CONN_DRAINING,
	/* The stream is lost (seen in a nested receive, or a DMA reply never
	 * came): the client is dropped once the current command is done. */
	MU_CONN_BROKEN,
};

/* quiesce.c */
enum mu_quiesce_state {
	MU_QS_RUNNING,
	MU_QS_PARKED,	/* quiesce returned -EBUSY; a command or reset waits */
	MU_QS_QUIESCED, /* parked work runs; no second quiesce is asked for */
};

/* Commands queued while the server waits for a DMA reply on the main
 * socket; a client that sends more is dropped. */
#define MU_QUEUE_MAX 1024
/* QEMU's native client sends a message with one non-blocking write and
 * takes a partial write for a whole one, so a DMA_READ reply larger than
 * its socket's free send buffer (Linux default about 208 KiB) arrives cut
 * short and the stream is lost. Ask it for at most this much at a time. */
#define MU_QEMU_DMA_READ_MAX (64u << 10)
/* Message DMA started from inside a command served while another waits. */
#define MU_NEST_MAX 4

/*
 * Where DMA_READ/DMA_WRITE carry their data (docs/protocol.md 9a). A
 * client that proposed 0.0 is QEMU's native client, whose releases
 * differ; the first message DMA asks it which layout it reads.
 */
enum mu_dma_layout {
	MU_DMA_SPEC,	   /* {u64 addr, u64 count, data at 16} */
	MU_DMA_UNPROBED,   /* a 0.0 client, not asked yet */
	MU_DMA_PROBING,	   /* the question is out */
	MU_DMA_NARROW,	   /* QEMU 10.1: {u64 addr, u32 count, data at 12} */
	MU_DMA_UNTELLABLE, /* the answer fit neither: no message DMA */
};

/* One DMA request on the main socket waiting for its reply. The serving
 * thread routes the reply here (mu_dma_route_reply) from wherever it
 * reads: its loop, a nested wait, a parked quiesce. */
struct mu_dma_wait {
	struct mu_dma_wait *next;
	uint16_t id, cmd;
	void *buf; /* DMA_READ: the data goes here */
	size_t len;
	bool probe; /* the layout question: result is the raw answer */
	bool done;
	int result;
};

struct mu_dev {
	void *opaque;
	mu_log_fn log_fn;
	void *log_opaque;
	int log_level;
	struct mu_dev_limits lim;
	struct mu_dev_callbacks cb;
	bool realized;

	/* sockets */
	char *path;
	dev_t sock_dev; /* the socket file we bound: unlink only that */
	ino_t sock_ino;
	int listen_fd, epfd, wake_fd;
	int timer_fd;		    /* armed while a client negotiates */
	int64_t negotiate_deadline; /* ms, 0: none */
	bool accept_paused;	    /* out of fds: listener edge-triggered */
	bool fd_mode;
	enum mu_conn_state conn;
	struct mu_chan chan;
	struct mu_chan twin;
	bool has_twin;
	pthread_mutex_t twin_lock;
	struct mu_caps peer;
	atomic_ushort dma_msg_id;

	/* message DMA on the main socket: wait_lock guards waits, the
	 * layout and what wait_cond announces (a wait done, the layout
	 * settled) */
	pthread_mutex_t wait_lock;
	pthread_cond_t wait_cond; /* CLOCK_MONOTONIC */
	struct mu_dma_wait *waits;
	bool waits_open; /* a client is READY and not being dropped */
	enum mu_dma_layout dma_layout;
	size_t dma_read_chunk; /* most data asked for in one DMA_READ */
	unsigned nest; /* depth of mu_serve_wait() on the serving thread */
	struct mu_limits wlim;

	/* serving */
	atomic_bool stop;
	atomic_bool wake_pending;
	/* A device thread found the connection broken (twin socket lost, a
	 * DMA reply never came): the serving thread drops the client once
	 * what was sent on the main socket is done. */
	atomic_bool twin_lost;
	pthread_t serve_tid;
	atomic_bool serving;
	bool from_chan;	 /* the message being dispatched is in chan.buf */
	uint8_t *pinned; /* old channel buffer the current message lives in */
	struct mu_qmsg *q_head, *q_tail;
	unsigned q_len;	   /* bounded by MU_QUEUE_MAX */
	uint32_t max_maps; /* DMA windows agreed in VERSION */
	unsigned msg_count;

	/* quiesce.c */
	enum mu_quiesce_state qs;
	struct mu_qmsg *parked; /* the command (or reset) waiting for it */
	enum mu_reset_reason reset_due; /* asked for by a config write */
	atomic_bool quiesce_done;
	atomic_int quiesce_err;

	/* PCI config space */
	pthread_mutex_t lock;
	bool pci_ready;
	enum mu_pci_kind kind;
	uint32_t cfg_size;
	uint8_t *cfg, *wmask, *w1c, *cfg_reset;
	uint8_t cap_last;  /* offset of the last standard cap (0: none) */
	uint8_t cap_end;   /* first free byte for the next standard cap */
	uint16_t ext_last; /* last extended cap (0: none) */
	uint16_t ext_end;
	unsigned pm_cap, exp_cap;
	uint8_t pm_state; /* last power state seen (D0..D3) */
	struct mu_msi_state msi;
	struct mu_msix_state msix;

	/* regions */
	struct mu_region *regions;
	unsigned nr_regions;
	struct mu_ioefd *ioefds;
	unsigned nr_ioefds;

	/* interrupts */
	struct mu_irq_index irqs[MU_PCI_NUM_IRQS];
	bool intx_level;

	/* DMA */
	pthread_rwlock_t dma_lock;
	struct mu_dmap *maps; /* sorted by iova */
	unsigned nr_maps, cap_maps;
	uint64_t map_id;

	/* migration */
	enum mu_mig_state mig_state;
	/* dirty page logging (dma_log.c): set under the dma_lock write lock
	 * by the serving thread; dlog_on mirrors dlog != NULL for the
	 * lock-free check in mu_dlog_mark() */
	struct mu_dlog *dlog;
	atomic_bool dlog_on;

	/* sandbox.c: once sandboxed, the socket file is removed by the
	 * sandbox's helper process: its index there, else -1 */
	int sbx_file;
};

/* ---- ctx.c ----------------------------------------------------------------
 */
void mu_log_impl(struct mu_dev *dev, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
#define mu_log(dev, level, ...)                                                \
	do {                                                                   \
		if ((level) <= (dev)->log_level && (dev)->log_fn)              \
			mu_log_impl((dev), (level), __VA_ARGS__);              \
	} while (0)

/* ---- wake.c ---------------------------------------------------------------
 */
/* Wake the serving thread (async-signal-safe). */
void mu_wake(struct mu_dev *dev);
/* Serving thread: consume a pending wake-up. */
void mu_drain_wake(struct mu_dev *dev);
int mu_poll_one(int fd, int timeout_ms);
int64_t mu_now_ms(void);

/* ---- conn.c ---------------------------------------------------------------
 */
int mu_attach_fd(struct mu_dev *dev, int fd);
/* Move the connection to state s (why: for the debug log). */
void mu_conn_set(struct mu_dev *dev, enum mu_conn_state s, const char *why);
/* Watch the client socket in the poll set, or stop watching it. */
void mu_conn_poll(struct mu_dev *dev, bool on);
/* A connection that never sent VERSION: its time is up? */
bool mu_negotiation_overdue(struct mu_dev *dev);
/* Accept a waiting client: 1 attached, 0 none (or retry later), -errno. */
int mu_accept_client(struct mu_dev *dev);
/* While a client is attached, further ones are refused. */
void mu_reject_extra(struct mu_dev *dev);

/* ---- serve.c --------------------------------------------------------------
 */
/* The client is gone: run what it sent before going, unanswered (detach),
 * or drop it all. */
void mu_queue_run_orphans(struct mu_dev *dev);
void mu_queue_drop(struct mu_dev *dev);
/* Dispatch a queued or parked copy of a command. */
int mu_dispatch_qmsg(struct mu_dev *dev, struct mu_qmsg *q);
/* Arm (on) or disarm the deadline for a new connection's VERSION. */
void mu_negotiate_timer(struct mu_dev *dev, bool on);
void mu_detach(struct mu_dev *dev, const char *why);
int mu_queue_msg(struct mu_dev *dev, const struct mu_msg *m, int err,
		 struct mu_qmsg **out);
void mu_qmsg_free(struct mu_qmsg *q);
bool mu_on_serving_thread(struct mu_dev *dev);
int mu_pin_dispatch_buffer(struct mu_dev *dev);
/*
 * Serving thread: wait until done(arg) or the deadline while reading the
 * main socket: replies go to their DMA waits; with nest, commands that may
 * run while a handler waits (mu_cmd_nestable) are served at once, in
 * order, others queued with everything after them; without, all are
 * queued. 0, -ETIMEDOUT, or -ECONNRESET (the client is gone).
 */
int mu_serve_wait(struct mu_dev *dev, bool (*done)(void *), void *arg,
		  int64_t deadline_ms, bool nest);

/* ---- dispatch.c -----------------------------------------------------------
 */
/* Handle one received command; negative: drop the client. */
int mu_dispatch(struct mu_dev *dev, struct mu_msg *m);
/* Answer m: err < 0 an error reply, else r (NULL is fine when err < 0 or
 * m is NO_REPLY); nothing once the peer is gone. Returns the send result. */
int mu_send_reply(struct mu_dev *dev, const struct mu_msg *m,
		  struct mu_reply *r, int err);
/* After sending m's reply: a vanished peer is noted (serving goes on to
 * EOF), another failure logged and returned. */
int mu_reply_sent_slow(struct mu_dev *dev, const struct mu_msg *m, int sr);
static inline int mu_reply_sent(struct mu_dev *dev, const struct mu_msg *m,
				int sr)
{
	return sr == 0 ? 0 : mu_reply_sent_slow(dev, m, sr);
}
/* A refused message: error reply unless NO_REPLY. */
int mu_reply_refused(struct mu_dev *dev, const struct mu_hdr *h, int err);
/* Set the reply to one inline buffer of len bytes; returns it. */
void *mu_reply_inline(struct mu_reply *r, size_t len);
void *mu_reply_alloc(struct mu_reply *r, size_t len);

typedef int (*mu_handler_fn)(struct mu_dev *dev, struct mu_msg *m,
			     struct mu_reply *r);
int mu_h_version(struct mu_dev *, struct mu_msg *, struct mu_reply *);
int mu_h_dma_map(struct mu_dev *, struct mu_msg *, struct mu_reply *);
int mu_h_dma_unmap(struct mu_dev *, struct mu_msg *, struct mu_reply *);
int mu_h_get_info(struct mu_dev *, struct mu_msg *, struct mu_reply *);
int mu_h_region_info(struct mu_dev *, struct mu_msg *, struct mu_reply *);
int mu_h_io_fds(struct mu_dev *, struct mu_msg *, struct mu_reply *);
int mu_h_irq_info(struct mu_dev *, struct mu_msg *, struct mu_reply *);
int mu_h_set_irqs(struct mu_dev *, struct mu_msg *, struct mu_reply *);
int mu_h_region_read(struct mu_dev *, struct mu_msg *, struct mu_reply *);
int mu_h_region_write(struct mu_dev *, struct mu_msg *, struct mu_reply *);
int mu_h_reset(struct mu_dev *, struct mu_msg *, struct mu_reply *);
int mu_h_write_multi(struct mu_dev *, struct mu_msg *, struct mu_reply *);
int mu_h_feature(struct mu_dev *, struct mu_msg *, struct mu_reply *);
int mu_h_mig_read(struct mu_dev *, struct mu_msg *, struct mu_reply *);
int mu_h_mig_write(struct mu_dev *, struct mu_msg *, struct mu_reply *);

/* ---- region.c, region_access.c ---------------------------------------------
 */
/* Is this access allowed at all (index, permission, range)? */
int mu_region_access_ok(const struct mu_dev *dev, unsigned index, uint64_t off,
			size_t count, bool is_write);
int mu_region_access(struct mu_dev *dev, unsigned index, uint64_t off,
		     void *buf, size_t count, bool is_write);
void mu_regions_free(struct mu_dev *dev);
/* After MSI-X is set up: note which regions are plain callbacks. */
void mu_regions_realize(struct mu_dev *dev);

/* ---- pci_config.c ---------------------------------------------------------
 */
int mu_pci_cfg_access(struct mu_dev *dev, uint64_t off, void *buf, size_t count,
		      bool is_write);
int mu_pci_realize(struct mu_dev *dev);
void mu_pci_reset_cfg(struct mu_dev *dev);
void mu_pci_free(struct mu_dev *dev);
/* Little-endian config helpers (caller holds dev->lock or not yet
 * realized). */
static inline void mu_cfg_set16(uint8_t *p, unsigned off, uint16_t v)
{
	p[off] = (uint8_t)v;
	p[off + 1] = (uint8_t)(v >> 8);
}
static inline void mu_cfg_set32(uint8_t *p, unsigned off, uint32_t v)
{
	mu_cfg_set16(p, off, (uint16_t)v);
	mu_cfg_set16(p, off + 2, (uint16_t)(v >> 16));
}
static inline uint16_t mu_cfg_get16(const uint8_t *p, unsigned off)
{
	return (uint16_t)(p[off] | p[off + 1] << 8);
}
static inline uint32_t mu_cfg_get32(const uint8_t *p, unsigned off)
{
	return mu_cfg_get16(p, off) | (uint32_t)mu_cfg_get16(p, off + 2) << 16;
}

/* ---- pci_caps.c -----------------------------------------------------------
 */
/* After a config write of val to [off, off+len): apply cap side effects
 * (FLR, PM reset, MSI/MSI-X masks). Called without dev->lock. */
void mu_pci_caps_written(struct mu_dev *dev, uint32_t off, size_t len,
			 const uint8_t *val);

/* ---- msix.c ---------------------------------------------------------------
 */
/* 1 when [off, off+count) of region index is the MSI-X table or PBA (and
 * was handled), 0 when not, negative errno on a bad access. */
int mu_msix_access(struct mu_dev *dev, unsigned index, uint64_t off, void *buf,
		   size_t count, bool is_write);
int mu_msix_realize(struct mu_dev *dev);
void mu_msix_reset(struct mu_dev *dev);
/* dev->lock held: fire or leave pending per MSI-X masks. */
int mu_msix_fire_locked(struct mu_dev *dev, uint32_t vec);
/* dev->lock held: fire pending, now unmasked vectors. */
void mu_msix_flush_locked(struct mu_dev *dev);

/* ---- irq.c ----------------------------------------------------------------
 */
int mu_irq_realize(struct mu_dev *dev);
void mu_irq_release(struct mu_dev *dev); /* close eventfds (detach) */
void mu_irq_reset(struct mu_dev *dev);
void mu_irq_free(struct mu_dev *dev);
int mu_irq_signal(int efd);
/* dev->lock held: MSI mask bits changed in config space. */
void mu_msi_flush_locked(struct mu_dev *dev);

/* ---- dma.c / dma_msg.c ----------------------------------------------------
 */
void mu_dma_release(struct mu_dev *dev); /* drop every map (detach) */
void mu_dma_free(struct mu_dev *dev);
int mu_dma_msg_xfer(struct mu_dev *dev, uint64_t iova, void *buf, size_t len,
		    bool is_write);
/* Set the layout for a newly negotiated client (proposed minor). */
void mu_dma_msg_attach(struct mu_dev *dev, uint16_t minor);

/* ---- dma_wait.c -----------------------------------------------------------
 */
void mu_dma_wait_init(struct mu_dev *dev);
void mu_dma_wait_fini(struct mu_dev *dev);
/* Send a request on the main socket and wait for its reply: the serving
 * thread keeps serving meanwhile, another thread sleeps. */
int mu_dma_wait_xfer(struct mu_dev *dev, struct mu_dma_wait *w,
		     struct mu_hdr *h, const struct iovec *iov, int iovcnt);
/* Wait until done(arg), evaluated under wait_lock, or the deadline: the
 * serving thread keeps serving (mu_serve_wait), another thread sleeps on
 * wait_cond. 0, -ETIMEDOUT or -ECONNRESET. */
int mu_dma_wait_until(struct mu_dev *dev, bool (*done)(void *), void *arg,
		      int64_t deadline);
/* A device thread found the connection broken: the serving thread drops
 * it (twin_lost + wake). */
void mu_conn_broken(struct mu_dev *dev);
/* A reply arrived on the main socket (serving thread). */
void mu_dma_route_reply(struct mu_dev *dev, struct mu_msg *m);
/* The connection is gone: every wait ends with err. */
void mu_dma_fail_all(struct mu_dev *dev, int err);
/* w's verdict from its reply m: the raw answer for the layout probe,
 * else the checked reply with DMA_READ data copied out. */
void mu_dma_complete(const struct mu_dev *dev, struct mu_dma_wait *w,
		     const struct mu_msg *m);
/* Check a DMA reply and copy DMA_READ data out (layout-aware). */
int mu_dma_take_reply(const struct mu_dev *dev, const struct mu_msg *m,
		      uint16_t cmd, void *buf, size_t len);

/* ---- quiesce.c ------------------------------------------------------------
 */
/* Quiesce the device for command m unless it is already: 0 done, 1 parked
 * (m runs again, quiesced, when the device says so), or -errno. */
int mu_quiesce_for(struct mu_dev *dev, struct mu_msg *m);
/* A config write asks for a reset (FLR, D3hot->D0). The dispatcher runs
 * it, quiesced, before the command's reply r goes out (m, r NULL: no
 * reply to hold): 0 done, 1 parked with the reply. */
void mu_reset_request(struct mu_dev *dev, enum mu_reset_reason why);
int mu_reset_run_due(struct mu_dev *dev, const struct mu_msg *m,
		     const struct mu_reply *r);
/* Parked work whose quiesce has finished runs now: 1 it ran, 0 nothing
 * to run yet (the client stays, even a BROKEN one: what it sent before
 * breaking is still done), -errno: drop the client. Cheap when nothing is
 * parked. */
int mu_resume_parked(struct mu_dev *dev);
/* The client is gone: forget parked work and requests. */
void mu_quiesce_drop(struct mu_dev *dev);
/* Detach only: quiesce, waiting in place (nobody left to serve). */
int mu_quiesce_sync(struct mu_dev *dev);
/* mu_dev_quiesce_done() has been called (a mu_serve_wait predicate). */
bool mu_quiesce_finished(void *dev);

/* ---- reset.c --------------------------------------------------------------
 */
/* Reset with the device quiesced. */
int mu_reset_quiesced(struct mu_dev *dev, enum mu_reset_reason why);

/* ---- migration.c ----------------------------------------------------------
 */
bool mu_mig_supported(const struct mu_dev *dev);
void mu_mig_reset(struct mu_dev *dev);
/* A DEVICE_FEATURE reply: the header, then len bytes of data; an argsz
 * too small for them gets the header alone with the size needed. */
int mu_feature_reply(struct mu_reply *r, uint32_t argsz, uint32_t flags,
		     const void *data, size_t len);

/* ---- dma_log.c -------------------------------------------------------------
 */
struct mu_dlog;
/* DMA_LOGGING_START/STOP/REPORT (m passed check.c). */
int mu_dlog_feature(struct mu_dev *dev, const struct mu_msg *m,
		    const struct mu_device_feature *f, struct mu_reply *r);
/* Stop logging and free the bitmaps (serving thread, or destroy). */
void mu_dlog_stop(struct mu_dev *dev);
/* [iova, iova + len) was written (no overflow): set its dirty bits.
 * _locked: dma_lock held (read or write). */
void mu_dlog_mark_locked(struct mu_dev *dev, uint64_t iova, uint64_t len);
void mu_dlog_mark_slow(struct mu_dev *dev, uint64_t iova, uint64_t len);
/* Logging off costs this one branch. */
static inline void mu_dlog_mark(struct mu_dev *dev, uint64_t iova, uint64_t len)
{
	if (__builtin_expect(
		    atomic_load_explicit(&dev->dlog_on, memory_order_acquire),
		    0))
		mu_dlog_mark_slow(dev, iova, len);
}

#endif
