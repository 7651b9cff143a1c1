/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * preload.h - internals of libmuser-preload.so, the LD_PRELOAD shim that
 * lets an unmodified kernel-VFIO user (stock QEMU's -device vfio-pci) drive
 * a vfio-user server through libmuser-client.
 *
 * The shim fakes three kinds of file descriptors: the container
 * (/dev/vfio/vfio), groups (/dev/vfio/N for a group number configured for
 * muser) and device fds (from VFIO_GROUP_GET_DEVICE_FD). Each fake fd is a
 * real memfd we own, so close(), fcntl() and /proc/self/fd behave; the
 * fdtable says which fds are fake. Everything else passes through.
 *
 * Locking: mp_iommu_lock serialises the container/group topology and the
 * DMA map lists (rare, slow operations that talk to servers). The fdtable
 * has its own short lock and holds the object refcounts. Region accesses
 * (vCPU threads) only take the fdtable lock for a lookup; libmuser-client
 * is thread-safe. Lock order: mp_iommu_lock, then the fdtable lock.
 */
#ifndef MUSER_PRELOAD_H
#define MUSER_PRELOAD_H

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "muser/client.h"

#define MP_HIDDEN __attribute__((visibility("hidden")))

/* ---- the real libc entry points (interpose.c) -------------------------- */

struct mp_real {
	int (*open)(const char *, int, ...);
	int (*openat)(int, const char *, int, ...);
	int (*close)(int);
	int (*ioctl)(int, unsigned long, ...);
	ssize_t (*pread)(int, void *, size_t, off_t);
	ssize_t (*pwrite)(int, const void *, size_t, off_t);
	ssize_t (*pread_chk)(int, void *, size_t, off_t, size_t);
	void *(*mmap)(void *, size_t, int, int, int, off_t);
	ssize_t (*readlink)(const char *, char *, size_t);
	ssize_t (*readlinkat)(int, const char *, char *, size_t);
};
MP_HIDDEN extern struct mp_real mp_real;
MP_HIDDEN void mp_real_init(void);

/* ---- logging (log.c) ------------------------------------------------------
 */

enum { MP_ERR = 3, MP_WARN = 4, MP_INFO = 6, MP_DEBUG = 7 };
MP_HIDDEN extern int mp_log_level;
MP_HIDDEN void mp_log(int level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
#define mp_debug(...)                                                          \
	do {                                                                   \
		if (mp_log_level >= MP_DEBUG)                                  \
			mp_log(MP_DEBUG, __VA_ARGS__);                         \
	} while (0)
/* libmuser-client's log callback. */
MP_HIDDEN void mp_client_log(void *opaque, int level, const char *msg);

/* ---- objects and the fd table (fdtable.c) ------------------------------- */

enum mp_kind { MP_NONE = 0, MP_CONTAINER, MP_GROUP, MP_DEVICE };

struct mp_map {
	uint64_t iova, size, vaddr;
	uint32_t prot; /* MU_DMA_MAP_FLAG_* */
	int fd;	       /* our dup of the backing file; -1: fd-less map */
	uint64_t fd_offset;
};

struct mp_group;

struct mp_container {
	int fd;
	int refs;  /* the fd + attached groups (fdtable lock) */
	int iommu; /* VFIO_TYPE1*_IOMMU once SET_IOMMU, else 0 */
	struct mp_group *groups;
	struct mp_map *maps;
	size_t nmaps, cap;
};

struct mp_group {
	int num;	       /* the group number N of /dev/vfio/N */
	int refs;	       /* group fds + device fds (fdtable lock) */
	uint64_t pgsizes;      /* negotiated with the server */
	uint32_t max_dma_maps; /* the server's limit */
	char socket[PATH_MAX];
	char name[NAME_MAX + 1]; /* device name; empty: accept any */
	mu_client_t *client;
	struct mp_container *container; /* mp_iommu_lock */
	struct mp_group *next;		/* in container->groups */
	atomic_bool dead;		/* the server is gone */
	atomic_bool warned_nofd;	/* fd-less DMA warning given */
	int sink_fd; /* eventfd standing in for QEMU's -1 irq fds */
	pthread_mutex_t info_lock;
	bool have_info;
	struct mu_device_info info; /* as the server reported it */
};

struct mp_ref {
	enum mp_kind kind;
	void *obj;
};

MP_HIDDEN extern pthread_mutex_t mp_iommu_lock;

/* Register fd as a fake fd of kind for obj (the table takes one ref of
 * obj). Returns 0 or -errno. */
MP_HIDDEN int mp_fd_register(int fd, enum mp_kind kind, void *obj);
/* Look fd up; on a hit take a reference of the object (drop it with
 * mp_ref_put). Lock-free miss path: most fds are not ours. */
MP_HIDDEN bool mp_fd_get(int fd, struct mp_ref *ref);
/* Remove fd from the table (it keeps the reference for the caller). */
MP_HIDDEN bool mp_fd_unregister(int fd, struct mp_ref *ref);
MP_HIDDEN void mp_ref_put(const struct mp_ref *ref);
MP_HIDDEN void mp_group_get(struct mp_group *g);
MP_HIDDEN void mp_group_put(struct mp_group *g);
MP_HIDDEN void mp_container_get(struct mp_container *ct);
MP_HIDDEN void mp_container_put(struct mp_container *ct);
/* A fake fd: a CLOEXEC (per flags) memfd named after what it stands for. */
MP_HIDDEN int mp_fake_fd(const char *what, int open_flags);

/* ---- configuration (config.c) ---------------------------------------------
 */

struct mp_devcfg {
	char socket[PATH_MAX];
	char name[NAME_MAX + 1];    /* empty: any device name */
	char source[PATH_MAX + 64]; /* where we found it, for messages */
};
/* Is group N a muser device? 0 and *cfg filled, or -ENOENT. */
MP_HIDDEN int mp_config_lookup(int group, struct mp_devcfg *cfg);
/* QEMU readlink()s SYSFSDEV/iommu_group before it opens the group:
 * remember which directory stands for which group number. */
MP_HIDDEN void mp_config_learn_link(const char *path, const char *target,
				    size_t len);
/* Parse "/dev/vfio/N"; returns N or -1. */
MP_HIDDEN int mp_config_group_path(const char *path);

/* ---- container (container.c), group (group.c), device (device.c) -------- */

MP_HIDDEN int mp_container_open(int flags);
MP_HIDDEN int mp_container_ioctl(struct mp_container *ct, unsigned long req,
				 unsigned long arg);
/* The last reference is gone (fd closed, no group attached). */
MP_HIDDEN void mp_container_free(struct mp_container *ct);
/* Attach/detach g (mp_iommu_lock held): replays the maps on attach. */
MP_HIDDEN int mp_container_attach(struct mp_container *ct, struct mp_group *g);
MP_HIDDEN void mp_container_detach(struct mp_group *g);

/* *ours false: group num is not a muser device (a real VFIO group). */
MP_HIDDEN int mp_group_open(int num, int flags, bool *ours);
MP_HIDDEN int mp_group_ioctl(struct mp_group *g, unsigned long req,
			     unsigned long arg);
/* The last reference is gone: detach, disconnect, free. */
MP_HIDDEN void mp_group_free(struct mp_group *g);
/* Classify a client error: connection-level errors mark g dead (and
 * return true), once with a warning naming the socket. */
MP_HIDDEN bool mp_group_failed(struct mp_group *g, int err);
MP_HIDDEN int mp_group_device_info(struct mp_group *g,
				   struct mu_device_info *info);

MP_HIDDEN int mp_device_ioctl(struct mp_group *g, unsigned long req,
			      unsigned long arg);
MP_HIDDEN ssize_t mp_device_pread(struct mp_group *g, void *buf, size_t len,
				  uint64_t off);
MP_HIDDEN ssize_t mp_device_pwrite(struct mp_group *g, const void *buf,
				   size_t len, uint64_t off);
MP_HIDDEN void *mp_device_mmap(struct mp_group *g, void *addr, size_t len,
			       int prot, int flags, uint64_t off, int *err);
MP_HIDDEN int mp_irq_set(struct mp_group *g, unsigned long arg);

/* Region offsets on the device fd, as the kernel's vfio-pci uses. */
#define MP_REGION_SHIFT 40
#define MP_REGION_MASK ((1ull << MP_REGION_SHIFT) - 1)
/* QEMU needs config space (7) and VGA (8) indexes, and ERR/REQ irqs. */
#define MP_MIN_REGIONS 9u
#define MP_MIN_IRQS 5u

/* ---- helpers ------------------------------------------------------------- */

/* Copy an info struct followed by its capability chain (buf holds both,
 * with cap offsets relative to buf) into the caller's argsz-sized buffer
 * the way the kernel does: when the chain doesn't fit, only the struct is
 * copied, its argsz says the size needed and cap_offset is cleared. */
MP_HIDDEN void mp_copy_info(void *dst, uint32_t dst_argsz, void *buf,
			    size_t info_size, size_t total,
			    size_t cap_offset_field);

/* ---- guest memory (memmap.c) ------------------------------------------ */

/* Find the shared file or memfd behind [vaddr, vaddr+size): returns 0
 * with *fd (ours, CLOEXEC) and the file offset of vaddr, or -errno with a
 * reason in why (-ENOENT: no such mapping, -EPERM: private/anonymous). */
MP_HIDDEN int mp_memmap_lookup(uint64_t vaddr, uint64_t size, int *fd,
			       uint64_t *offset, char *why, size_t whylen);

/* ---- server-to-client requests (service.c) --------------------------------
 */

/* Serve the server's DMA_READ/DMA_WRITE for g while no QEMU thread is
 * waiting on g: a background thread polls every registered client. */
MP_HIDDEN void mp_service_add(struct mp_group *g);
MP_HIDDEN void mp_service_remove(struct mp_group *g);

#endif
