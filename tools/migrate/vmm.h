/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * vmm.h - a tiny VMM on libmuser-client for migrating muser-dma-test:
 * "guest RAM" in a memfd shared with the device, a load thread that keeps
 * the device busy with DMA jobs (the vCPU), the RAM copy a migration
 * builds for the destination, and snapshots of device state to compare.
 * Used by muser-migrate-demo and by tests/samples/test-migrate.c.
 */
#ifndef MUSER_TOOLS_VMM_H
#define MUSER_TOOLS_VMM_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "muser/client.h"

#define VMM_IOVA 0x100000000ull

struct vmm {
	size_t ram_size;
	int src_fd, dst_fd;
	uint8_t *src_ram, *dst_ram; /* the source's RAM, the copy for dst */
	mu_client_t *src, *dst;
	uint32_t max_job; /* bytes per job at most */

	pthread_t thread;
	bool thread_started;
	pthread_mutex_t lock;
	pthread_cond_t cv;
	bool paused, parked, quit;
	mu_client_t *cur; /* where the "vCPU" sends its register accesses */
	bool busy;	  /* a job was started and DONE not yet seen */
	uint64_t started, done;
	uint32_t seed;
	int err; /* the load's first error (sticky) */
};

/* RAM of ram_size bytes (a multiple of 4096), filled with a pattern, and
 * a zeroed copy for the destination. */
int vmm_init(struct vmm *v, size_t ram_size, uint32_t seed);
void vmm_fini(struct vmm *v);
/* Map the source's (dst false) or the copy's RAM into c at VMM_IOVA:
 * as the memfd, or with no fd (the device then moves data with
 * DMA_READ/DMA_WRITE messages). */
int vmm_map(struct vmm *v, mu_client_t *c, bool dst, bool by_message);

/* The load thread: random COPY, FILL and CHECKSUM jobs on v->cur. */
int vmm_load_start(struct vmm *v, mu_client_t *c);
/* Stop and join it; returns its first error, or 0. */
int vmm_load_stop(struct vmm *v);
/* After vmm_load_stop(): wait on c for the job the load left in flight. */
int vmm_finish(struct vmm *v, mu_client_t *c);
/* Pause at the next register access boundary (a job may stay in flight
 * in the device), or resume, on c (NULL: where it was). */
int vmm_pause(struct vmm *v);
void vmm_resume_on(struct vmm *v, mu_client_t *c);

/* mu_migrate_config callbacks; opaque is the struct vmm. */
int vmm_copy_ram(void *opaque, uint64_t iova, uint64_t len, uint64_t page_size,
		 const uint64_t *bitmap);
int vmm_stop_vm(void *opaque);
void vmm_resume_vm(void *opaque);

/* Device state as a driver sees it: the registers that are state (not
 * the BAR4 trap counter), and BAR4. */
struct vmm_snapshot {
	uint32_t regs[11];
	uint8_t bar4[0x10000];
};
int vmm_snapshot(mu_client_t *c, struct vmm_snapshot *s);
/* The first differing register's name or "bar4", or NULL if equal. */
const char *vmm_snapshot_diff(const struct vmm_snapshot *a,
			      const struct vmm_snapshot *b);

/* Fill BAR4 with a pattern from seed (device memory that pre-copy
 * moves). */
int vmm_fill_bar4(mu_client_t *c, uint32_t seed);

/* Run one job synchronously on c and wait for it (benchmarks). */
int vmm_job(mu_client_t *c, uint32_t op, uint64_t src, uint64_t dst,
	    uint32_t len, uint32_t fill);

#endif
