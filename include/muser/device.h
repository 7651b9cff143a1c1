/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * muser/device.h - libmuser, the device side of vfio-user.
 *
 * A device program describes its PCI function (identity, regions, config
 * space capabilities, interrupts), supplies callbacks, and libmuser speaks
 * vfio-user for it on a UNIX socket. The library does not own the event
 * loop: poll mu_dev_get_poll_fd() and call mu_dev_process(), or call
 * mu_dev_run() in small programs. All functions return 0 (or a count) on
 * success and a negative errno on failure. There is no global state: any
 * number of devices may live in one process.
 *
 * Life cycle: mu_dev_create*() -> mu_pci_setup(), mu_dev_setup_region(),
 * mu_pci_add_*_cap(), mu_dev_setup_irq(), mu_dev_set_callbacks() ->
 * mu_dev_realize() -> serve (run/process) -> mu_dev_destroy().
 */
#ifndef MUSER_DEVICE_H
#define MUSER_DEVICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "muser/export.h"
#include "muser/log.h"
#include "muser/wire.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mu_dev mu_dev_t;

/* ---- logging ------------------------------------------------------------ */

/* Levels: enum mu_log_level in muser/log.h (shared with the client). */

/* msg has no trailing newline. Called from the thread that hit the event. */
typedef void (*mu_log_fn)(void *opaque, int level, const char *msg);

/* ---- creation ----------------------------------------------------------- */

/* Listen on socket_path (a stale socket file is replaced; a live server
 * there gives -EADDRINUSE). The socket file is removed on destroy. */
MU_EXPORT int mu_dev_create(mu_dev_t **out, const char *socket_path,
			    void *opaque);
/* Serve exactly one already-connected AF_UNIX stream socket (for example
 * one end of a socketpair from a parent process; the spec's --fd=N). The
 * device takes ownership of fd. When that client leaves there is no next
 * one: process()/run() return -ENOTCONN. */
MU_EXPORT int mu_dev_create_fd(mu_dev_t **out, int fd, void *opaque);
MU_EXPORT void mu_dev_destroy(mu_dev_t *dev);
MU_EXPORT void *mu_dev_opaque(mu_dev_t *dev);
/* Default: stderr at MU_LOG_WARN. fn NULL silences the device. */
MU_EXPORT void mu_dev_set_log(mu_dev_t *dev, mu_log_fn fn, void *opaque,
			      int level);

/* Limits announced to the client in VERSION (before realize). */
struct mu_dev_limits {
	size_t struct_size;	     /* sizeof(struct mu_dev_limits) */
	uint32_t max_data_xfer_size; /* default 1 MiB */
	uint32_t max_dma_maps;	     /* default 65535 */
	uint32_t max_msg_fds;	     /* default 16 */
	bool twin_socket;	     /* offer the twin socket (default true) */
	int send_timeout_ms; /* drop a client that stops reading (5000) */
	/* Drop a connection that sends no VERSION in this long (5000), so
	 * an idle one can't hold the device; 0: wait for ever. */
	int negotiate_timeout_ms;
};
MU_EXPORT int mu_dev_set_limits(mu_dev_t *dev,
				const struct mu_dev_limits *limits);

/* ---- PCI identity and config space --------------------------------------- */

struct mu_pci_id {
	uint16_t vendor_id, device_id;
	uint16_t subsys_vendor_id, subsys_id;
	uint32_t class_code; /* 24 bits: base class, sub class, prog-if */
	uint8_t revision;
};

enum mu_pci_kind {
	MU_PCI_CONVENTIONAL, /* 256-byte config space */
	MU_PCI_EXPRESS,	     /* 4 KiB config space with extended caps */
};

MU_EXPORT int mu_pci_setup(mu_dev_t *dev, const struct mu_pci_id *id,
			   enum mu_pci_kind kind);
/* The config space bytes (256 or 4096). The device may set fields it owns
 * (e.g. read-only device-specific registers) before realize; afterwards
 * it should go through mu_pci_config_read/write for thread safety. */
MU_EXPORT uint8_t *mu_pci_config_space(mu_dev_t *dev);
/* Interrupt pin (1 = INTA#) reported in config space; 0 = none. */
MU_EXPORT int mu_pci_set_intx_pin(mu_dev_t *dev, uint8_t pin);

/* Capabilities: each returns the config-space offset it placed the cap at,
 * or a negative errno. They are chained in the order added. */
MU_EXPORT int mu_pci_add_pm_cap(mu_dev_t *dev);
MU_EXPORT int mu_pci_add_msi_cap(mu_dev_t *dev, unsigned nvec, bool addr64,
				 bool per_vector_mask);
/* MSI-X with table and PBA inside BARs; libmuser emulates both (those
 * ranges never reach the region callback) and honours the function mask
 * and per-vector masks: a masked vector's trigger sets its PBA bit and
 * fires on unmask. The BARs must be set up with mu_dev_setup_region().
 * Per-vector table masks count only once the client has written the table
 * since reset: QEMU emulates the table itself and never writes ours. */
MU_EXPORT int mu_pci_add_msix_cap(mu_dev_t *dev, unsigned nvec,
				  unsigned table_bar, uint32_t table_offset,
				  unsigned pba_bar, uint32_t pba_offset);
enum mu_pcie_type {
	MU_PCIE_ENDPOINT = 0x0,
	MU_PCIE_LEGACY_ENDPOINT = 0x1,
	MU_PCIE_RC_INTEGRATED = 0x9,
};
MU_EXPORT int mu_pci_add_express_cap(mu_dev_t *dev, enum mu_pcie_type type);
/* Vendor-specific cap (id 0x09): body follows the 3-byte id/next/len. */
MU_EXPORT int mu_pci_add_vendor_cap(mu_dev_t *dev, const void *body,
				    size_t len);
/* Extended capabilities (PCI Express kind only). */
MU_EXPORT int mu_pci_add_dsn_cap(mu_dev_t *dev, uint64_t serial);
MU_EXPORT int mu_pci_add_ext_vendor_cap(mu_dev_t *dev, uint16_t vsec_id,
					uint8_t vsec_rev, const void *body,
					size_t len);

/* Thread-safe access to config space as the client sees it. */
MU_EXPORT int mu_pci_config_read(mu_dev_t *dev, uint32_t offset, void *buf,
				 size_t len);

/* ---- regions ------------------------------------------------------------- */

/* Region access callback: returns count or a negative errno. offset+count
 * is always inside the region and count <= max_data_xfer_size. */
typedef ssize_t (*mu_region_access_fn)(void *opaque, unsigned region,
				       uint64_t offset, void *buf, size_t count,
				       bool is_write);

#define MU_REGION_READ (1u << 0)
#define MU_REGION_WRITE (1u << 1)
#define MU_REGION_RW (MU_REGION_READ | MU_REGION_WRITE)
/* Backed by memory libmuser allocates (a memfd the client may mmap);
 * accesses not covered by sparse areas still go to the memory, unless a
 * callback is given, then the callback sees them. */
#define MU_REGION_MEM (1u << 2)
#define MU_REGION_BAR_IO (1u << 3)	 /* I/O space BAR */
#define MU_REGION_BAR_64 (1u << 4)	 /* 64-bit memory BAR */
#define MU_REGION_BAR_PREFETCH (1u << 5) /* prefetchable memory BAR */

struct mu_region_desc {
	size_t struct_size; /* sizeof(struct mu_region_desc) */
	uint64_t size;	    /* BARs: a power of two */
	uint32_t flags;
	mu_region_access_fn access;
	/* MU_REGION_MEM: the parts the client may mmap; none = whole region */
	const struct mu_sparse_mmap_area *sparse;
	unsigned nr_sparse;
	/* Device-specific regions (index >= MU_PCI_NUM_REGIONS): the
	 * VFIO_REGION_INFO_CAP_TYPE type and subtype. */
	uint32_t type, subtype;
};

/* index: MU_PCI_BAR0_REGION_INDEX..BAR5, ROM, VGA, or a device-specific
 * index >= MU_PCI_NUM_REGIONS. The config region is the library's. */
MU_EXPORT int mu_dev_setup_region(mu_dev_t *dev, unsigned index,
				  const struct mu_region_desc *desc);
/* The memory of an MU_REGION_MEM region (valid until destroy). */
MU_EXPORT void *mu_region_mem(mu_dev_t *dev, unsigned index);

/* An ioeventfd the client may wire to a doorbell (GET_REGION_IO_FDS). The
 * device keeps ownership of fd and polls it itself. flags:
 * MU_IOEVENTFD_FLAG_DATAMATCH. size 0 = any width. Call before serving
 * (after mu_dev_setup_region() of that region). */
MU_EXPORT int mu_dev_add_ioeventfd(mu_dev_t *dev, unsigned region,
				   uint64_t offset, uint32_t size, int fd,
				   uint32_t flags, uint64_t datamatch);

/* ---- interrupts ---------------------------------------------------------- */

/* Declare an IRQ index (MU_PCI_INTX_IRQ_INDEX .. MU_PCI_REQ_IRQ_INDEX)
 * with count vectors. MSI/MSI-X counts come from their caps. */
MU_EXPORT int mu_dev_setup_irq(mu_dev_t *dev, unsigned index, uint32_t count);
/* Fire vector `vector` of `index`. Thread-safe. A masked vector is left
 * pending (MSI-X: PBA bit) and fires on unmask. Returns 0 when signalled,
 * 1 when left pending, -ENOENT when the client has no eventfd for it. */
MU_EXPORT int mu_irq_trigger(mu_dev_t *dev, unsigned index, uint32_t vector);
/* INTx is level-triggered and auto-masked: assert fires (once) and masks;
 * the client's UNMASK re-fires while the line is still asserted. */
MU_EXPORT int mu_irq_set_intx(mu_dev_t *dev, bool asserted);
/* Fire the interrupt the client enabled: MSI-X, else MSI, else INTx: then
 * the line is asserted (vector ignored) and stays so until
 * mu_irq_set_intx(dev, false). */
MU_EXPORT int mu_irq_notify(mu_dev_t *dev, uint32_t vector);
/* Which index the client has enabled (-1: none). */
MU_EXPORT int mu_irq_active_index(mu_dev_t *dev);

/* ---- DMA ------------------------------------------------------------------
 */

#define MU_DMA_READ MU_DMA_MAP_FLAG_READ
#define MU_DMA_WRITE MU_DMA_MAP_FLAG_WRITE

struct mu_dma_region {
	uint64_t iova, size;
	uint32_t prot;
	void *vaddr; /* NULL when the client gave no fd (message DMA) */
};

/* One contiguous piece of a guest range inside one DMA mapping. */
struct mu_sg {
	uint64_t iova, len;
	uint32_t prot; /* the access asked for in mu_dma_addr_to_sg() */
	int map;       /* internal: mapping slot */
	uint64_t gen;
};

/* Split [iova, iova+len) into segments; returns how many were needed
 * (may exceed max: then sg holds the first max), -ENOENT when part of the
 * range is unmapped, -EACCES when prot is not allowed. */
MU_EXPORT int mu_dma_addr_to_sg(mu_dev_t *dev, uint64_t iova, uint64_t len,
				uint32_t prot, struct mu_sg *sg, int max);
/* Pointers to mmapped segments (fd-backed maps only: else -EFAULT). They
 * stay valid until the matching dma_unmap callback; unmap waits for the
 * quiesce callback, so a device with its own threads must stop using them
 * when quiesced. While the client logs dirty pages, segments asked for
 * with MU_DMA_WRITE are marked dirty here, at map time; a write through
 * the pointers after that may follow a report that cleared the marks, so
 * mark it again with mu_dma_mark_dirty() once written. */
MU_EXPORT int mu_dma_sg_map(mu_dev_t *dev, const struct mu_sg *sg, int nr,
			    struct iovec *iov);
/* Copy between guest memory and buf. Uses the mapping when the client
 * gave an fd, else DMA_READ/DMA_WRITE messages (over the twin socket when
 * negotiated). Safe against a concurrent unmap: the unmap waits. Callable
 * from any thread. Message DMA without a twin socket from a device thread
 * needs the serving thread running (it routes the reply); from a callback
 * on the serving thread, region accesses, info queries and SET_IRQS that
 * arrive meanwhile are served nested (docs/protocol.md 7). A client that
 * does not answer within 5 s gives -ETIMEDOUT; -EPROTO when a 0.0 client's
 * DMA layout can't be told (docs/protocol.md 9a). */
MU_EXPORT int mu_dma_read(mu_dev_t *dev, uint64_t iova, void *buf, size_t len);
MU_EXPORT int mu_dma_write(mu_dev_t *dev, uint64_t iova, const void *buf,
			   size_t len);
MU_EXPORT int mu_dma_count(mu_dev_t *dev);
/* Dirty page logging (DEVICE_FEATURE DMA_LOGGING_*, offered on devices
 * with migration callbacks): mu_dma_write() and writable mu_dma_sg_map()
 * segments are marked by the library. Call this after the device wrote
 * [iova, iova + len) through a pointer of its own (sg_map, the dma_map
 * callback's vaddr). Any thread; logging off costs one branch, on a few
 * atomic ORs per page. Pages outside the logged ranges are ignored.
 * 0, or -EINVAL when the range wraps. */
MU_EXPORT int mu_dma_mark_dirty(mu_dev_t *dev, uint64_t iova, size_t len);

/* ---- callbacks ------------------------------------------------------------
 */

/* DEVICE_RESET, FLR and PM resets also restore config space to its state
 * at realize, clear IRQ masks/pending state and the MSI-X table, and set
 * the migration state to RUNNING; a lost connection keeps all of that
 * (the callback still sees MU_RESET_LOST_CONN). */
enum mu_reset_reason {
	MU_RESET_CLIENT_REQ = 1, /* DEVICE_RESET */
	MU_RESET_FLR = 2,	 /* PCIe function level reset */
	MU_RESET_LOST_CONN = 3,	 /* the client went away */
	MU_RESET_PCI_PM = 4,	 /* power state D3hot -> D0 */
};

struct mu_dev_callbacks {
	size_t struct_size; /* sizeof(struct mu_dev_callbacks): ABI growth */
	/* Reset device state (registers, engines). */
	int (*reset)(void *opaque, enum mu_reset_reason why);
	/* Stop touching DMA memory before map/unmap/reset. Return 0 when
	 * quiesced, or -EBUSY and call mu_dev_quiesce_done() later (from
	 * any thread); the library then finishes the pending operation. */
	int (*quiesce)(void *opaque);
	void (*dma_map)(void *opaque, const struct mu_dma_region *r);
	void (*dma_unmap)(void *opaque, const struct mu_dma_region *r);
	/* A client connected (after VERSION) or left. */
	void (*attach)(void *opaque);
	void (*detach)(void *opaque);
	/* The client enabled/disabled/masked interrupts of an index. */
	void (*irq_state)(void *opaque, unsigned index, uint32_t start,
			  uint32_t count, bool enabled);
	/* After a config space write the library applied. */
	void (*config_written)(void *opaque, uint32_t offset, size_t len);
	/* Migration v2 (all three, or none: then no migration feature).
	 * mig_transition runs with the device quiesced. mig_read may return
	 * fewer bytes than asked; the library calls it again until the
	 * client's buffer is full or it returns 0 (nothing more for now: in
	 * PRE_COPY the client moves on to another round; in STOP_COPY 0 is
	 * the end of the stream). mig_write gets the bytes in order. */
	int (*mig_transition)(void *opaque, enum mu_mig_state to);
	ssize_t (*mig_read)(void *opaque, void *buf, size_t len);
	ssize_t (*mig_write)(void *opaque, const void *buf, size_t len);
	/* Migration flags offered besides MU_MIGRATION_STOP_COPY, e.g.
	 * MU_MIGRATION_PRE_COPY (then PRE_COPY arcs are allowed). Added in
	 * 0.1; callers passing an older struct_size get 0. */
	uint64_t mig_flags;
	/* A config space read the client makes: buf already holds what the
	 * library emulates; the device may change it (live status bits,
	 * vendor-specific capability contents). Return 0, or a negative
	 * errno for an error reply. Called without library locks held. */
	int (*config_read)(void *opaque, uint32_t offset, void *buf,
			   size_t len);
};

MU_EXPORT int mu_dev_set_callbacks(mu_dev_t *dev,
				   const struct mu_dev_callbacks *cb);
MU_EXPORT void mu_dev_quiesce_done(mu_dev_t *dev, int err);

/* ---- serving ------------------------------------------------------------ */

/* Check the description and freeze it; required before serving. */
MU_EXPORT int mu_dev_realize(mu_dev_t *dev);
/* The fd to poll for input (POLLIN): an epoll set holding the listening
 * socket, the client connection and an internal wake-up eventfd. It is
 * stable for the device's life (asking again after each process() is
 * harmless). */
MU_EXPORT int mu_dev_get_poll_fd(mu_dev_t *dev);
/* Non-blocking: accept a pending client, then handle every whole message
 * already received. Returns the number of messages handled (>= 0);
 * -ENOTCONN when a client created with mu_dev_create_fd() has left; other
 * negative errnos are fatal for the device. A client that misbehaves or
 * leaves is dropped (state kept, DMA and IRQ fds released) and the next
 * one is accepted. */
MU_EXPORT int mu_dev_process(mu_dev_t *dev);
/* Blocking: serve clients one after another until mu_dev_stop() (safe
 * from a signal handler or another thread) or a fatal error. A synchronous
 * request costs one recvmsg() and one sendmsg(); the receive wakes every
 * 250 ms when idle, so stop takes effect within that while a client is
 * attached and at once otherwise. Extra clients are accepted and closed
 * while one is attached (noticed when idle, or every 4096 messages).
 * libmuser's socket calls are not cancellation points (they bypass glibc's
 * cancellable wrappers, which cost as much as the rest of a request):
 * stop a serving thread with mu_dev_stop(), not pthread_cancel(). */
MU_EXPORT int mu_dev_run(mu_dev_t *dev);
MU_EXPORT void mu_dev_stop(mu_dev_t *dev);
MU_EXPORT bool mu_dev_is_attached(mu_dev_t *dev);

/* ---- sandbox -------------------------------------------------------------
 *
 * Confine the whole process to what serving needs, so that a device its
 * client compromises can do nothing else (docs/security.md). Call once,
 * after realize and after every fd and thread the program needs up front
 * exists (socket files, control sockets, backing files), from the thread
 * that serves. It is process-wide (every thread) and cannot be undone.
 * Each level includes the ones before it:
 *   MU_SANDBOX_NONE        nothing is done.
 *   MU_SANDBOX_SECCOMP     no_new_privs and a seccomp allowlist of the
 *                          system calls libmuser makes while serving (socket
 *                          I/O on fds it has, eventfd writes, mmap of
 *                          received fds without PROT_EXEC, memory, clocks,
 *                          futex, threads, signals to itself, exit). No
 *                          open, unlink, socket, connect, fork or exec.
 *   MU_SANDBOX_NAMESPACES  before the filter, unshare user, mount, network,
 *                          IPC and UTS namespaces: root loses its powers
 *                          over the host, no network even with a declared
 *                          socket(). The process must be single-threaded.
 *   MU_SANDBOX_STRICT      and close every fd that is neither a device's
 *                          nor declared in keep_fds (0-2 stay).
 * A call the filter does not allow writes "muser sandbox: ..." with the
 * call's name to fd 2 and kills the process with SIGSYS; with
 * MU_SANDBOX_LOG_ONLY it fails with EPERM instead (for developing a
 * device's list of extra calls; not a security boundary).
 */
enum mu_sandbox_level {
	MU_SANDBOX_NONE = 0,
	MU_SANDBOX_SECCOMP = 1,
	MU_SANDBOX_NAMESPACES = 2,
	MU_SANDBOX_STRICT = 3,
};

/* Log and fail with EPERM instead of killing the process. */
#define MU_SANDBOX_LOG_ONLY (1u << 0)
/* Namespaces the process may not create are skipped (logged at warning
 * level) instead of failing the call. */
#define MU_SANDBOX_BEST_EFFORT (1u << 1)

struct mu_sandbox_opts {
	size_t struct_size; /* sizeof(struct mu_sandbox_opts) */
	enum mu_sandbox_level level;
	uint32_t flags; /* MU_SANDBOX_LOG_ONLY, MU_SANDBOX_BEST_EFFORT */
	/* More system calls the device makes, by name ("pread64",
	 * "fdatasync"), allowed with any arguments. */
	const char *const *syscalls;
	unsigned nr_syscalls;
	/* fds MU_SANDBOX_STRICT keeps (a backing file, a control socket). */
	const int *keep_fds;
	unsigned nr_keep_fds;
	/* Files of the program's own (a control socket) to remove later
	 * with mu_dev_sandbox_unlink(), or when the process ends: the
	 * sandbox forbids unlink, so a helper process does it (only for
	 * these, and only if still the same file). They must exist. The
	 * devices' socket files are handled like this already. */
	const char *const *remove_files;
	unsigned nr_remove_files;
	/* Other devices of this process, treated as dev is: their fds are
	 * kept and their socket files removed at destroy. */
	mu_dev_t *const *devs;
	unsigned nr_devs;
};

/*
 * Sandbox the process at opts->level (opts NULL: MU_SANDBOX_SECCOMP).
 * dev (and opts->devs) must be realized. With a socket file or
 * remove_files, a helper process is forked first: it waits, does
 * nothing else, ignores SIGINT/SIGTERM so that it outlives the process,
 * and is reaped by libmuser at exit() (don't reap it with waitpid(-1)).
 * 0, or: -EINVAL for bad
 * options or an unknown syscall name, -EBADF for a declared fd that is
 * not open, -ENOENT for a remove_files entry that does not exist,
 * -EALREADY when the process is already sandboxed, -ENOSYS when the
 * kernel or this build of libmuser has no seccomp (nothing was changed),
 * another negative errno when a namespace can't be made (without
 * MU_SANDBOX_BEST_EFFORT; e.g. -EINVAL with threads running) or the
 * filter can't be loaded.
 */
MU_EXPORT int mu_dev_sandbox(mu_dev_t *dev, const struct mu_sandbox_opts *opts);
/* The level this process was sandboxed at; MU_SANDBOX_NONE before. */
MU_EXPORT enum mu_sandbox_level mu_dev_sandbox_level(void);
/* Remove path: unlink() before the sandbox; once sandboxed, through the
 * helper, for a path given (as the same string) in remove_files. 0 or a
 * negative errno (-ENOENT: not declared, or already gone). */
MU_EXPORT int mu_dev_sandbox_unlink(const char *path);

#ifdef __cplusplus
}
#endif
#endif /* MUSER_DEVICE_H */
