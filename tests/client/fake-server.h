/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A scriptable fake vfio-user server for the client tests, built on the
 * wire core: one thread serving one end of a socketpair. It answers
 * VERSION as configured, then passes every message to a handler (the
 * default one emulates a small device); tests override the handler to
 * lie, stall, reorder or hang up.
 */
#ifndef FAKE_SERVER_H
#define FAKE_SERVER_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "muser/client.h"
#include "wire-core.h"
#include "testutil.h"

struct fake_server;

/* mu_region_info_cap_sparse_mmap without its flexible array, so tests can
 * embed it in reply structs. */
struct fs_sparse_hdr {
	struct mu_info_cap_header header;
	uint32_t nr_areas;
	uint32_t reserved;
} MU_PACKED;

/* Return 0 to go on, <0 to stop serving (the socket is closed). */
typedef int (*fs_handler)(struct fake_server *fs, struct mu_msg *m);

enum fs_twin {
	FS_TWIN_NONE,	  /* no twin_socket in the reply */
	FS_TWIN_OK,	  /* supported, fd_index 0, one socket passed */
	FS_TWIN_NO_INDEX, /* supported, no fd_index */
	FS_TWIN_NO_FD,	  /* supported, fd_index 0, nothing passed */
	FS_TWIN_BAD_FD,	  /* supported, fd_index 0, a pipe passed */
};

#define FS_BAR0_SIZE 0x10000u
#define FS_NUM_REGIONS 9u
#define FS_CAPTURE 512u

struct fake_server {
	pthread_t thr;
	struct mu_chan ch;
	struct mu_chan twin; /* server end of the twin socket */
	bool has_twin;
	int client_fd;

	/* VERSION reply */
	uint16_t major, minor;
	const char *json; /* raw caps JSON; NULL: built from the fields */
	uint32_t max_msg_fds, max_data_xfer_size;
	bool write_multiple;
	enum fs_twin twin_mode;
	int version_extra_fds; /* surplus fds in the VERSION reply */
	int version_errno;     /* answer VERSION with this error */
	bool close_at_version; /* hang up instead of answering */

	fs_handler handler;
	void *opaque;

	/* the default device */
	pthread_mutex_t lock;
	uint8_t bar0[FS_BAR0_SIZE];
	int bar1_fd; /* memfd behind the mappable region 1 */
	unsigned n_read, n_write, n_write_noreply, n_multi, n_multi_entries;
	unsigned n_info, n_set_irqs, n_reset, n_map, n_unmap;
	uint32_t max_count_seen;
	uint32_t irq_starts[64], irq_counts[64], irq_nfds[64];
	uint32_t mig_state;

	/* the last request received, before the handler saw it: command,
	 * full payload length, fd count and its first FS_CAPTURE bytes */
	uint16_t last_cmd;
	size_t last_len;
	unsigned last_nfds;
	uint8_t last[FS_CAPTURE];

	/* last DMA exchange run by fs_dma() */
	int dma_err;
	uint8_t dma_data[4096];
	size_t dma_len;
};

/* Initialise with defaults (twin OK, write_multiple, 16 fds, 1 MiB). */
void fs_init(struct fake_server *fs);
/* Start the server thread; the client end is fs->client_fd. */
int fs_start(struct fake_server *fs);
/* Join the server thread and close everything it holds. */
void fs_stop(struct fake_server *fs);

/* The default device handler (tests call it for what they don't fake). */
int fs_default(struct fake_server *fs, struct mu_msg *m);
/* Send a reply to m with payload parts and fds. */
int fs_reply(struct fake_server *fs, struct mu_msg *m, const void *p1,
	     size_t l1, const void *p2, size_t l2, const int *fds,
	     unsigned nfds);
int fs_error(struct fake_server *fs, struct mu_msg *m, int err);
/* Send raw bytes (a lying header and all). */
int fs_raw(struct fake_server *fs, const void *buf, size_t len, const int *fds,
	   unsigned nfds);

/* Run one DMA command against the client and wait for its reply (on the
 * twin socket when there is one). count32 picks QEMU's layout. Sets
 * dma_err (0 or the client's errno) and dma_data/dma_len. */
int fs_dma(struct fake_server *fs, bool write, bool count32, uint64_t addr,
	   const void *data, uint32_t count);

#endif
