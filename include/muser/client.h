/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * muser/client.h - libmuser-client, the client side of vfio-user.
 *
 * For VMMs, test harnesses and tools: connect to a device server,
 * negotiate, discover regions and IRQs, access regions (messages or mmap),
 * give the server DMA access to memory, wire interrupts to eventfds, reset.
 * Every call is thread-safe: several threads may have requests in flight
 * on one connection; replies are matched by message id. Server-to-client
 * commands (DMA_READ/DMA_WRITE) are served by whichever thread is waiting,
 * and by mu_client_process() when the caller polls mu_client_get_poll_fd().
 * All functions return 0 (or a count) or a negative errno. The server is
 * not trusted: every reply is validated, and a misbehaving server gets
 * -EPROTO / -EBADMSG and the connection is closed (-ENOTCONN after).
 * The library's socket calls are not thread cancellation points: bound
 * waits with the request timeout, not pthread_cancel().
 */
#ifndef MUSER_CLIENT_H
#define MUSER_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "muser/export.h"
#include "muser/log.h"
#include "muser/wire.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mu_client mu_client_t;

typedef void (*mu_client_log_fn)(void *opaque, int level, const char *msg);

struct mu_client_opts {
	size_t struct_size;  /* sizeof(struct mu_client_opts) */
	int timeout_ms;	     /* per request; 0 = default 5000, <0 = forever */
	bool no_twin_socket; /* don't propose the twin socket */
	bool no_write_multiple;	     /* don't use REGION_WRITE_MULTI */
	uint32_t max_data_xfer_size; /* our receive limit; default 1 MiB */
	uint32_t max_msg_fds;	     /* our receive limit; default 16 */
	mu_client_log_fn log;
	void *log_opaque;
	int log_level; /* enum mu_log_level; default MU_LOG_WARN */
};

/* opts may be NULL for defaults. */
MU_EXPORT int mu_client_connect(mu_client_t **out, const char *socket_path,
				const struct mu_client_opts *opts);
/* Take ownership of an already-connected AF_UNIX stream socket (made
 * blocking; the library sets its timeouts). On failure the caller still
 * owns fd. */
MU_EXPORT int mu_client_adopt(mu_client_t **out, int fd,
			      const struct mu_client_opts *opts);
/* Unmaps region mmaps the library made, closes all fds. */
MU_EXPORT void mu_client_destroy(mu_client_t *c);
MU_EXPORT int mu_client_set_timeout(mu_client_t *c, int timeout_ms);

/* What was negotiated. */
struct mu_client_session {
	uint16_t major, minor;
	uint32_t max_msg_fds;	     /* server's receive limit */
	uint32_t max_data_xfer_size; /* min of both sides */
	uint32_t max_dma_maps;
	uint64_t pgsizes;
	bool twin_socket;
	bool write_multiple;
};
MU_EXPORT int mu_client_get_session(mu_client_t *c,
				    struct mu_client_session *out);
MU_EXPORT bool mu_client_is_connected(mu_client_t *c);

/* ---- discovery ------------------------------------------------------------
 */

MU_EXPORT int mu_client_device_info(mu_client_t *c, struct mu_device_info *out);

struct mu_client_region {
	uint32_t index, flags; /* MU_REGION_INFO_FLAG_* */
	uint64_t size, offset;
	bool has_type;
	uint32_t type, subtype;
	uint32_t nr_sparse;
	struct mu_sparse_mmap_area *sparse; /* owned by the library */
	int fd; /* owned by the library; -1 when not mappable */
};
/* Cached after the first call; the struct stays valid until destroy. */
MU_EXPORT int mu_client_region_info(mu_client_t *c, unsigned index,
				    const struct mu_client_region **out);
MU_EXPORT int mu_client_irq_info(mu_client_t *c, unsigned index,
				 struct mu_irq_info *out);
/* GET_REGION_IO_FDS: up to max entries into subs, and fds[i] the fd for
 * subs[i] (owned by the caller; shared fds come as dups). Returns the
 * number of entries the server has; when that is > max nothing is
 * filled in: call again with more room. */
MU_EXPORT int mu_client_region_io_fds(mu_client_t *c, unsigned index,
				      struct mu_sub_region_ioeventfd *subs,
				      int *fds, unsigned max);

/* ---- region access ---------------------------------------------------------
 */

/* Synchronous; split at max_data_xfer_size. Returns 0 or -errno. */
MU_EXPORT int mu_client_region_read(mu_client_t *c, unsigned region,
				    uint64_t offset, void *buf, size_t len);
MU_EXPORT int mu_client_region_write(mu_client_t *c, unsigned region,
				     uint64_t offset, const void *buf,
				     size_t len);
/* Posted write (NO_REPLY). Writes of <= 8 bytes are batched into
 * REGION_WRITE_MULTI when the server offers it; the batch goes out when
 * full, on mu_client_flush(), and before any other request. Errors of
 * posted writes are not reported (see docs/protocol.md). */
MU_EXPORT int mu_client_region_write_posted(mu_client_t *c, unsigned region,
					    uint64_t offset, const void *buf,
					    size_t len);
/* Send pending posted writes and wait until the server processed them. */
MU_EXPORT int mu_client_flush(mu_client_t *c);
/* Send pending posted writes now, without waiting: a doorbell that must
 * go out before the caller waits for the device's interrupt. */
MU_EXPORT int mu_client_flush_posted(mu_client_t *c);
/* mmap [offset, offset+len) of a mappable region (must lie inside one
 * sparse area when the region has them; offset page aligned). Undo with
 * mu_client_region_munmap(), or leave it to destroy; don't munmap() it
 * yourself (destroy would unmap it again). -ENOTSUP if not mappable,
 * -EACCES if prot exceeds the region's READ/WRITE flags. */
MU_EXPORT int mu_client_region_mmap(mu_client_t *c, unsigned region,
				    uint64_t offset, size_t len, int prot,
				    void **addr);
MU_EXPORT int mu_client_region_munmap(mu_client_t *c, void *addr, size_t len);

/* ---- DMA ------------------------------------------------------------------
 */

/* Map [iova, iova+size) to fd at fd_offset (memfd or shared file; the
 * server mmaps it). prot: MU_DMA_MAP_FLAG_READ|WRITE. */
MU_EXPORT int mu_client_dma_map_fd(mu_client_t *c, uint64_t iova, uint64_t size,
				   int fd, uint64_t fd_offset, uint32_t prot);
/* Map without fd: the server reaches buf with DMA_READ/DMA_WRITE, which
 * the library serves, bounds-checked, from buf. buf must stay valid until
 * unmapped. */
MU_EXPORT int mu_client_dma_map_buffer(mu_client_t *c, uint64_t iova, void *buf,
				       uint64_t size, uint32_t prot);
MU_EXPORT int mu_client_dma_unmap(mu_client_t *c, uint64_t iova, uint64_t size);
MU_EXPORT int mu_client_dma_unmap_all(mu_client_t *c);

/* ---- interrupts
 * --------------------------------------------------------------- */

/* fds[i] is signalled for vector start+i; the library sends dups, so the
 * caller keeps its fds. count 0 disables the whole index. */
MU_EXPORT int mu_client_irq_set_eventfds(mu_client_t *c, unsigned index,
					 uint32_t start, uint32_t count,
					 const int *fds);
MU_EXPORT int mu_client_irq_disable(mu_client_t *c, unsigned index);
MU_EXPORT int mu_client_irq_mask(mu_client_t *c, unsigned index, uint32_t start,
				 uint32_t count, bool mask);
MU_EXPORT int mu_client_irq_trigger(mu_client_t *c, unsigned index,
				    uint32_t start, uint32_t count);

/* ---- other
 * -------------------------------------------------------------------- */

MU_EXPORT int mu_client_reset(mu_client_t *c);

/* Migration v2 through DEVICE_FEATURE / MIG_DATA_*. */
MU_EXPORT int mu_client_mig_flags(mu_client_t *c, uint64_t *flags);
MU_EXPORT int mu_client_mig_get_state(mu_client_t *c, uint32_t *state);
MU_EXPORT int mu_client_mig_set_state(mu_client_t *c, uint32_t state);
/* Returns bytes read (< len: no more data for now; in STOP_COPY the
 * stream is complete). Bytes of buf past the returned count may be
 * overwritten (a server may pad a short reply, see docs/protocol.md). */
MU_EXPORT ssize_t mu_client_mig_read(mu_client_t *c, void *buf, size_t len);
MU_EXPORT int mu_client_mig_write(mu_client_t *c, const void *buf, size_t len);

/* ---- dirty page logging (DEVICE_FEATURE DMA_LOGGING_*) ---------------------
 * Linux's VFIO_DEVICE_FEATURE_DMA_LOGGING_START/STOP/REPORT over vfio-user.
 * A reply that does not match its request (sizes, echoed fields, flags,
 * bitmap bits past the range, any fd) closes the connection with -EBADMSG
 * (-EPROTO for fds); the dirty log must then be taken as lost.
 */

/* 1 if the server supports START and STOP (SET) and REPORT (GET), 0 if it
 * does not (it answered ENOTTY, EINVAL, ENOTSUP or ENOSYS), or -errno. */
MU_EXPORT int mu_client_dma_log_probe(mu_client_t *c);
/* Start logging DMA writes to ranges[0..nr_ranges) (nr_ranges 0: all
 * memory) at page_size granularity (a power of two; the server may pick
 * another one, stored in *chosen_page_size when not NULL). -EINVAL for a
 * zero or non-power-of-two page_size or an empty or wrapping range,
 * -E2BIG if the ranges don't fit in one message. */
MU_EXPORT int mu_client_dma_log_start(mu_client_t *c, uint64_t page_size,
				      const struct mu_dma_logging_range *ranges,
				      uint32_t nr_ranges,
				      uint64_t *chosen_page_size);
MU_EXPORT int mu_client_dma_log_stop(mu_client_t *c);
/* Bytes of bitmap a report of length bytes at page_size needs: one bit per
 * page, rounded up to whole u64 words. 0 if length is 0 or page_size is
 * not a power of two. */
MU_EXPORT uint64_t mu_client_dma_log_bitmap_size(uint64_t length,
						 uint64_t page_size);
/* Read and clear the log of [iova, iova+length): page n (from iova, of
 * page_size bytes, a power of two) is bit n % 64 of bitmap[n / 64]. The
 * first mu_client_dma_log_bitmap_size() bytes of bitmap are overwritten
 * (not ORed as Linux's ioctl does); the rest of bitmap_len is untouched.
 * -ENOSPC if bitmap_len is smaller; -E2BIG if that bitmap exceeds our
 * max_data_xfer_size (split the range at a multiple of 64 pages). On any
 * error the bitmap's contents are undefined. */
MU_EXPORT int mu_client_dma_log_report(mu_client_t *c, uint64_t iova,
				       uint64_t length, uint64_t page_size,
				       uint64_t *bitmap, size_t bitmap_len);

/* ---- moving a device: live migration ---------------------------------------
 * mu_client_migrate() moves a device's state from src to dst, two servers
 * of the same device kind; docs/protocol.md 9 has the sequence and what
 * is committed when. The caller prepares dst like src (DMA maps of the
 * same memory, IRQ eventfds) while dst is RUNNING, before the call:
 * libvfio-user refuses DMA_MAP in STOP. The caller's RAM moves through
 * copy_ram(): once whole, then the pages the device dirtied per round
 * (dirty page logging when src offers it, else whole again at stop).
 *
 *   src RUNNING --(PRE_COPY rounds: device data + dirty RAM)--> stop_vm()
 *   --> src STOP_COPY --(the rest)--> dst STOP (loads) --> dst RUNNING
 *   (the commit point) --> src STOP.
 *
 * On failure before the commit point src is RUNNING again (when its
 * connection still works), resume_vm() has been called if stop_vm() was,
 * dst has been reset, and the error is returned. After it, the migration
 * stands even if src can no longer be stopped (logged).
 */
enum mu_migrate_step {
	MU_MIGRATE_STEP_BEGIN,	   /* checks done, nothing changed yet */
	MU_MIGRATE_STEP_LOGGING,   /* src logs DMA writes; RAM copied whole */
	MU_MIGRATE_STEP_RESUMING,  /* dst in RESUMING */
	MU_MIGRATE_STEP_PRE_COPY,  /* src in PRE_COPY */
	MU_MIGRATE_STEP_ROUND,	   /* a pre-copy round was moved */
	MU_MIGRATE_STEP_STOPPED,   /* stop_vm() returned */
	MU_MIGRATE_STEP_STOP_COPY, /* src in STOP_COPY */
	MU_MIGRATE_STEP_DRAINED,   /* all device data and RAM are on dst */
	MU_MIGRATE_STEP_LOADED,	   /* dst in STOP: it accepted the state */
	MU_MIGRATE_STEP_RUNNING,   /* dst RUNNING: committed */
	MU_MIGRATE_STEP_DONE,	   /* src in STOP */
	MU_MIGRATE_STEP_COUNT
};

#define MU_MIGRATE_MAX_ROUNDS 64

struct mu_migrate_stats {
	unsigned rounds;	 /* pre-copy rounds moved */
	uint64_t page_size;	 /* of the dirty log; 0 without one */
	uint64_t precopy_bytes;	 /* device data during PRE_COPY */
	uint64_t stopcopy_bytes; /* device data during STOP_COPY */
	uint64_t ram_pages;	 /* pages copied, the first whole copy too */
	uint64_t round_bytes[MU_MIGRATE_MAX_ROUNDS]; /* device data per round */
	uint64_t round_dirty[MU_MIGRATE_MAX_ROUNDS]; /* dirty pages per round */
	uint64_t final_dirty; /* dirty pages found after the stop */
	uint64_t downtime_ns; /* stop_vm() to dst RUNNING */
	uint64_t total_ns;
	bool dirty_logging; /* src logged DMA writes */
};

struct mu_migrate_config {
	size_t struct_size; /* sizeof(struct mu_migrate_config) */
	/* The caller's RAM as src sees it (IOVA ranges) and the page size to
	 * log at (0: 4096). nr_ranges 0: no RAM to move. */
	const struct mu_dma_logging_range *ranges;
	uint32_t nr_ranges;
	uint64_t page_size;
	/* Stop pre-copy after this many rounds (0: 8, at most
	 * MU_MIGRATE_MAX_ROUNDS), or once a round moved at most
	 * converge_bytes of device data and dirty RAM (0: 64 KiB). */
	unsigned max_rounds;
	uint64_t converge_bytes;
	void *opaque;
	/* Copy [iova, iova+len) of the caller's RAM to the destination: the
	 * pages whose bit is set in bitmap (bit n of word n/64 is the page at
	 * iova + n * page_size), or every page when bitmap is NULL. 0 or a
	 * negative errno (aborts). */
	int (*copy_ram)(void *opaque, uint64_t iova, uint64_t len,
			uint64_t page_size, const uint64_t *bitmap);
	/* Pause the vCPUs (and anything else driving src) before STOP_COPY;
	 * resume them when the migration is abandoned after that. */
	int (*stop_vm)(void *opaque);
	void (*resume_vm)(void *opaque);
	/* Told of each step as it is reached (NULL: not told); a negative
	 * return abandons the migration there (tests, operator abort). */
	int (*step)(void *opaque, enum mu_migrate_step step,
		    const struct mu_migrate_stats *so_far);
};

MU_EXPORT int mu_client_migrate(mu_client_t *src, mu_client_t *dst,
				const struct mu_migrate_config *cfg,
				struct mu_migrate_stats *stats);
MU_EXPORT const char *mu_client_migrate_step_name(enum mu_migrate_step s);

/* Raw request for tools and tests: sends cmd with payload and fds, waits
 * for the reply, copies up to reply_cap bytes of its payload. Returns the
 * full reply payload length (may exceed reply_cap), or -errno (the
 * server's for an error reply). Reply fds are stored in rfds (up to
 * *nrfds; the rest closed) and *nrfds updated. VERSION is refused. */
MU_EXPORT ssize_t mu_client_request(mu_client_t *c, uint16_t cmd,
				    const void *payload, size_t len,
				    const int *fds, unsigned nfds, void *reply,
				    size_t reply_cap, int *rfds,
				    unsigned *nrfds);

/* Event-loop integration: poll this fd (the twin socket when negotiated,
 * else the main socket) and call mu_client_process() when it is readable
 * to serve the server's DMA requests while no request is in flight.
 * process() never blocks; it returns the number of messages handled.
 * While a caller waits for a reply, DMA commands are served by that
 * caller: at once on the main socket; on the twin socket at once when
 * fd-less (buffer) maps exist (the waiter polls both sockets), otherwise
 * within 50 ms (servers with fd maps normally mmap them). */
MU_EXPORT int mu_client_get_poll_fd(mu_client_t *c);
MU_EXPORT int mu_client_process(mu_client_t *c);

#ifdef __cplusplus
}
#endif
#endif /* MUSER_CLIENT_H */
