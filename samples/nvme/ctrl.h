/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * ctrl.h - muser-nvme's controller state, shared by its files:
 *
 *   regs.c     BAR0: registers, doorbells, enable/reset/shutdown, INTx
 *   queue.c    worker threads: fetch commands, post completions, quiesce
 *   admin.c    admin commands
 *   io.c       NVM I/O commands
 *   prp.c      PRP walking and guest memory access (zero-copy or message)
 *   dbbuf.c    Doorbell Buffer Config: shadow doorbells and EventIdx
 *   backing.c  the backing file or block device
 *   main.c     options, PCI description, libmuser callbacks, serving loop
 *
 * Threads: the serving thread runs libmuser (region callbacks, i.e. every
 * register and doorbell access); worker threads do everything that
 * touches guest memory or the backing file. All controller and queue
 * state is under ctrl->lock; nothing holds it across DMA or file I/O,
 * because message DMA from a worker needs the serving thread, which may
 * be waiting for that lock in a doorbell write.
 */
#ifndef MUSER_NVME_CTRL_H
#define MUSER_NVME_CTRL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "muser/device.h"
#include "nvme.h"

#define NVME_MAX_IOQ 64 /* --queues upper bound */
#define NVME_MQES 1023u /* CAP.MQES: 1024 entries per I/O queue */
#define NVME_MDTS 7u	/* 2^7 pages: 512 KiB per command */
#define NVME_MAX_XFER (NVME_PAGE << NVME_MDTS)
#define NVME_AERL 3u	   /* 4 outstanding Asynchronous Event Requests */
#define NVME_ERRLOG 16u	   /* Error Information log entries (ELPE + 1) */
#define NVME_MAX_DYING 16u /* DMA windows being unmapped, see main.c */
#define NVME_BAR0_SIZE 0x4000u
#define NVME_BAR4_SIZE 0x1000u /* MSI-X table at 0, PBA at 0x800 */
#define NVME_MSIX_PBA_OFF 0x800u

struct nvme_sq {
	bool valid;
	bool fetching; /* a worker is copying the entry at head */
	bool deleting; /* Delete I/O SQ waits for its commands */
	uint16_t cqid;
	uint32_t size;
	uint64_t base;
	uint32_t head, tail;
	uint32_t inflight; /* fetched, not yet completed */
	uint32_t gen;	   /* bumped on create and delete */
};

struct nvme_cq {
	bool valid;
	bool ien;
	bool phase; /* tag of the next entry we post */
	uint16_t iv;
	uint32_t size;
	uint64_t base;
	uint32_t head, tail;
	uint32_t reserved; /* slots promised to fetched commands */
	uint32_t nr_sq;	   /* SQs that post here */
	uint32_t gen;
	pthread_mutex_t post; /* keeps entries in slot order */
};

/* A command between fetch and completion. */
struct nvme_cmd {
	struct nvme_sqe sqe;
	uint16_t sqid, cqid;
	uint32_t sq_gen, cq_gen;
	uint32_t dw0; /* completion DW0 */
};

struct nvme_err_entry {
	uint64_t count;
	uint16_t sqid, cid, status, param;
	uint64_t lba;
	uint32_t nsid;
};

struct nvme_backing {
	int fd;
	const char *path;
	uint64_t bytes;
	uint64_t nlb;	/* namespace size in blocks */
	unsigned lbads; /* log2 block size: 9 or 12 */
	bool is_blk;
};

/* Doorbell Buffer Config (dbbuf.c): one entry per doorbell, index 2 * qid
 * for SQ tails and 2 * qid + 1 for CQ heads; I/O queues only. */
#define NVME_NR_DB (2 * (NVME_MAX_IOQ + 1))
struct nvme_dbbuf {
	bool on;
	bool poll;   /* the buffer may have moved: re-read before sleeping */
	bool looker; /* an idle worker looks now and then */
	/* Polling (--poll-us, queue.c): while SQ tails moved in the last
	 * poll_us, one idle worker reads them in a loop instead of
	 * sleeping, and SQ EventIdx is left behind so the host doesn't
	 * ring; then EventIdx is put back and the workers sleep. */
	bool poll_mode;
	bool poller;		   /* a worker is polling now */
	bool no_polling;	   /* the buffer is not mapped: messages only */
	int64_t news_us;	   /* when an SQ tail last moved */
	bool refreshing;	   /* a worker is reading it (one at a time) */
	uint32_t gen;		   /* bumped when it is set up or forgotten */
	uint64_t dbs, eis;	   /* Shadow Doorbell and EventIdx buffers */
	bool live[NVME_NR_DB];	   /* this doorbell is read from dbs */
	uint32_t seen[NVME_NR_DB]; /* last value read from dbs */
	uint32_t ei[NVME_NR_DB];   /* last EventIdx written (~0: unknown) */
	uint32_t qgen[NVME_NR_DB]; /* queue generation when it went live */
};

struct nvme_worker {
	struct nvme_ctrl *c;
	pthread_t thread;
	bool started;
	uint8_t *bounce; /* NVME_MAX_XFER: message DMA and small buffers */
	struct iovec *iov;
	/* Sleeping (queue.c): each worker has its own condition variable. */
	pthread_cond_t wake;
	bool woken; /* atomic: a polling worker reads it without the lock */
	struct nvme_worker *next_idle;
};

struct nvme_ctrl {
	mu_dev_t *dev;
	bool quiet;
	bool no_dbbuf;	  /* --no-shadow-doorbells */
	unsigned max_ioq; /* --queues */
	unsigned nr_workers;
	unsigned poll_us; /* --poll-us: 0 never polls */
	char serial[21];
	uint8_t nguid[16], eui64[8];
	struct nvme_backing b;

	pthread_mutex_t lock;		  /* everything below */
	struct nvme_worker *idle_workers; /* asleep, the last one first */
	pthread_cond_t idle;		  /* a command finished */
	bool stop;

	uint64_t cap;
	uint32_t cc, csts, aqa, intms;
	uint64_t asq, acq;
	bool disabling;	     /* CC.EN 1->0: waiting for commands to finish */
	bool shutting;	     /* CC.SHN: flush once commands finished */
	unsigned busy;	     /* commands held by workers */
	atomic_uint running; /* workers running a command (polling stops) */
	unsigned rr;	     /* round-robin start for the next fetch */
	bool paused;	     /* quiesced for libmuser */
	bool quiesce_pending;
	uint16_t nsq_alloc, ncq_alloc; /* Number of Queues, 1-based */
	struct nvme_sq sq[NVME_MAX_IOQ + 1];
	struct nvme_cq cq[NVME_MAX_IOQ + 1];

	/* Asynchronous events (5.2) */
	uint16_t aer_cid[NVME_AERL + 1];
	unsigned nr_aer;
	uint32_t aen_pending; /* DW0 of a queued event, valid if aen_queued */
	bool aen_queued;
	bool aen_error_masked; /* until the Error log is read */
	struct nvme_err_entry errlog[NVME_ERRLOG];
	uint64_t err_count;

	/* Features (5.21) */
	uint32_t feat_arb, feat_pm, feat_temp, feat_errrec, feat_coalesce;
	uint32_t feat_wce, feat_atomic, feat_aec;
	uint32_t feat_ivc[NVME_MAX_IOQ + 1];

	struct nvme_dbbuf db;

	/* DMA windows going away (main.c) */
	struct {
		uint64_t iova, size;
	} dying[NVME_MAX_DYING];
	atomic_uint nr_dying; /* written under lock, read without */

	/* INTx level as last told to the library (own lock, as dma-test) */
	pthread_mutex_t intx_lock;
	bool intx_level;

	struct nvme_worker *workers;

	/* SMART / Health counters */
	atomic_uint_fast64_t rd_bytes, wr_bytes, rd_cmds, wr_cmds;
	atomic_uint_fast64_t flushes, media_errors;
	atomic_uint_fast64_t doorbell_writes; /* I/O queue doorbell registers */
};

/* ---- regs.c ----------------------------------------------------------------
 */
ssize_t nvme_bar0_access(void *opaque, unsigned region, uint64_t offset,
			 void *buf, size_t count, bool is_write);
/* Back to power-on state (reset callback, CC.EN 1->0); lock held. */
void nvme_ctrl_reset_locked(struct nvme_ctrl *c);
/* Called with the lock held when busy dropped to 0: finish a pending
 * disable or shutdown. Returns true when a shutdown needs its flush
 * (done by the caller without the lock, then nvme_shutdown_done()). */
bool nvme_ctrl_settle_locked(struct nvme_ctrl *c);
void nvme_shutdown_done(struct nvme_ctrl *c, int err);
void nvme_update_intx(struct nvme_ctrl *c);
/* Queue an asynchronous event; lock held. */
void nvme_aen_locked(struct nvme_ctrl *c, uint32_t dw0);
void nvme_log_error_locked(struct nvme_ctrl *c, uint16_t sqid, uint16_t cid,
			   uint16_t status, uint32_t nsid, uint64_t lba);
/* A new SQ tail / CQ head for an existing queue, from a doorbell write or
 * the shadow doorbell buffer: checked the same way for both (a value
 * outside the queue is ignored and reported as an asynchronous event).
 * 0 when taken, -EINVAL when refused; the CQ variant sets *intx when the
 * INTx level may have dropped. Lock held. */
int nvme_sq_tail_locked(struct nvme_ctrl *c, unsigned qid, uint32_t v);
int nvme_cq_head_locked(struct nvme_ctrl *c, unsigned qid, uint32_t v,
			bool *intx);

/* ---- queue.c ---------------------------------------------------------------
 */
int nvme_workers_start(struct nvme_ctrl *c);
void nvme_workers_stop(struct nvme_ctrl *c);
/* There may be work: wake one sleeping worker (a worker that is awake
 * looks before it sleeps again), or all of them. */
void nvme_wake_one_locked(struct nvme_ctrl *c);
void nvme_wake_all_locked(struct nvme_ctrl *c);
/* Post a completion for cmd (drops it if its CQ or the controller went
 * away meanwhile) and raise the CQ's interrupt. */
void nvme_complete(struct nvme_ctrl *c, struct nvme_cmd *cmd, uint16_t status);
/* The CQ's interrupt (MSI-X vector, else the INTx level). */
void nvme_cq_irq(struct nvme_ctrl *c, uint16_t cqid);
uint32_t nvme_cq_free_locked(const struct nvme_cq *cq);
/* Workers may take commands (not paused, disabling, shutting down...). */
bool nvme_may_fetch_locked(const struct nvme_ctrl *c);

/* ---- admin.c / io.c
 * ---------------------------------------------------------- */
/* Run one command; returns the status (0 success) or -1 when the command
 * completes later (Asynchronous Event Request). */
int nvme_admin_exec(struct nvme_worker *w, struct nvme_cmd *cmd);
int nvme_io_exec(struct nvme_worker *w, struct nvme_cmd *cmd);

/* ---- prp.c -----------------------------------------------------------------
 */
#define NVME_MAX_SEGS (NVME_MAX_XFER / NVME_PAGE + 1)
struct nvme_seg {
	uint64_t iova;
	uint32_t len;
};
struct nvme_sgl {
	struct nvme_seg seg[NVME_MAX_SEGS];
	unsigned n;
};
/* Walk PRP1/PRP2 for len bytes (<= NVME_MAX_XFER); NVMe status. */
uint16_t nvme_prp_walk(struct nvme_ctrl *c, uint64_t prp1, uint64_t prp2,
		       uint64_t len, struct nvme_sgl *out);
/* Copy between a buffer and the guest memory the list describes. */
uint16_t nvme_sgl_to_guest(struct nvme_ctrl *c, const struct nvme_sgl *s,
			   const void *buf, uint64_t len);
uint16_t nvme_sgl_from_guest(struct nvme_ctrl *c, const struct nvme_sgl *s,
			     void *buf, uint64_t len);
/* File <-> guest memory: zero-copy through mapped windows, bounce
 * buffer + DMA messages elsewhere. NVMe status. */
uint16_t nvme_sgl_file_io(struct nvme_worker *w, const struct nvme_sgl *s,
			  uint64_t file_off, bool is_read);
/* Small guest accesses (queue entries): 0 or a negative errno. */
int nvme_guest_read(struct nvme_ctrl *c, uint64_t iova, void *buf, size_t len);
int nvme_guest_write(struct nvme_ctrl *c, uint64_t iova, const void *buf,
		     size_t len);
/* One aligned 32-bit value, read or written as a single access (acquire /
 * release ordering) where the memory is mapped, by a DMA message
 * elsewhere; writes are marked dirty for migration logging. Callers hold
 * a `busy` count, so quiesce (and with it unmap) waits for them. */
int nvme_guest_read32(struct nvme_ctrl *c, uint64_t iova, uint32_t *v);
int nvme_guest_write32(struct nvme_ctrl *c, uint64_t iova, uint32_t v);
/* Where the dword at iova is in our address space; NULL if it is only
 * reachable by DMA messages, not at all, or in a dying window. Only the
 * polling worker keeps such a pointer, while it holds a busy count:
 * a quiesce wakes it, and dev_dma_unmap waits until it let go. */
const uint32_t *nvme_guest_map32(struct nvme_ctrl *c, uint64_t iova);
/* Post a completion entry: the status word (with the phase tag) last. */
int nvme_guest_write_cqe(struct nvme_ctrl *c, uint64_t iova,
			 const struct nvme_cqe *e);

/* ---- dbbuf.c ---------------------------------------------------------------
 */
/* Admin Doorbell Buffer Config (NVMe 1.4 5.8); NVMe status. */
int nvme_dbbuf_config(struct nvme_worker *w, struct nvme_cmd *cmd);
/* Forget the buffers (controller reset, shutdown, device reset). */
void nvme_dbbuf_reset_locked(struct nvme_ctrl *c);
/* Doorbell idx (2 * qid + is_cq) is read from the shadow buffer. */
bool nvme_dbbuf_live_locked(const struct nvme_ctrl *c, unsigned idx);
/* Something happened that may need a look at the buffer (a doorbell
 * write, a command done, the last entry of an SQ fetched, resume). */
void nvme_dbbuf_kick_locked(struct nvme_ctrl *c);
/* The host may move a shadow value without ringing: an SQ's EventIdx is
 * behind its tail (we were busy), or a CQ has no room. */
bool nvme_dbbuf_lagging_locked(const struct nvme_ctrl *c);
/* A worker should run nvme_dbbuf_refresh_locked() before sleeping. */
bool nvme_dbbuf_want_refresh_locked(const struct nvme_ctrl *c);
/* Read the shadow doorbells, apply them, update EventIdx and read again
 * (no wakeup lost between the two). Lock held; dropped meanwhile; the
 * caller holds a busy count. Returns true when the INTx level may have
 * changed. */
bool nvme_dbbuf_refresh_locked(struct nvme_ctrl *c);
/* Where the live SQ tails are in the buffer and their last values: what
 * a polling worker watches. Returns how many. */
unsigned nvme_dbbuf_watch_locked(const struct nvme_ctrl *c, uint64_t *at,
				 uint32_t *seen);
/* Read the n watched tails until one differs from seen (1), *stop turns
 * true, a worker runs a command or the clock passes until_us (0); -1 if
 * a tail is only reachable by DMA messages (polling would flood the
 * socket). No lock held; the caller holds a busy count. */
int nvme_dbbuf_poll(struct nvme_ctrl *c, unsigned n, const uint64_t *at,
		    const uint32_t *seen, const bool *stop, int64_t until_us);
int64_t nvme_now_us(void);
/* An I/O queue was created: before it is announced, its entries in the
 * buffers start at 0 (the initial tail/head). Call without the lock. */
void nvme_dbbuf_queue_created(struct nvme_ctrl *c, unsigned idx);

/* ---- backing.c -------------------------------------------------------------
 */
int nvme_backing_open(struct nvme_backing *b, const char *path,
		      unsigned block_size);
void nvme_backing_close(struct nvme_backing *b);
int nvme_backing_flush(struct nvme_backing *b);
int nvme_backing_zero(struct nvme_backing *b, uint64_t off, uint64_t len,
		      uint8_t *scratch, size_t scratch_len);
int nvme_backing_discard(struct nvme_backing *b, uint64_t off, uint64_t len);
/* preadv/pwritev until done; 0 or a negative errno (-EIO at EOF). */
int nvme_backing_rw(struct nvme_backing *b, struct iovec *iov, int n,
		    uint64_t off, bool is_read);

/* ---- main.c
 * ------------------------------------------------------------------ */
/* True when [iova, iova + len) overlaps a window being unmapped. */
bool nvme_dma_dying(struct nvme_ctrl *c, uint64_t iova, uint64_t len);
void nvme_resume_locked(struct nvme_ctrl *c);

#endif
