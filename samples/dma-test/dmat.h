/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * dmat.h - muser-dma-test's device state, shared by the engine
 * (dma-test.c) and its migration support (migrate.c).
 */
#ifndef MUSER_DMAT_H
#define MUSER_DMAT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "muser/device.h"

/* Message DMA: at most this much per mu_dma_read()/mu_dma_write() call,
 * through the bounce buffer (libmuser cuts it into DMA_READ/WRITE
 * messages of the negotiated max_data_xfer_size, 1 MiB by default). */
#define MSG_CHUNK (1u << 20)
/* Mapped memory: pieces of at most this much between abort checks. */
#define MAP_PIECE (1u << 20)
/* The fill pattern, ready to copy from (phase 0, 4-byte period). */
#define PAT_BYTES 4096u

struct job {
	uint64_t src, dst;
	uint32_t len, op, fill;
};

enum job_state {
	JOB_IDLE,
	JOB_QUEUED,  /* CMD written, the worker has not taken it yet */
	JOB_RUNNING, /* the worker moves data */
};

struct dmat {
	mu_dev_t *dev;
	bool quiet;
	bool blocking; /* --blocking: serve with mu_dev_run() */
	uint16_t vendor, device;

	pthread_mutex_t lock; /* everything below */
	pthread_cond_t wake;  /* worker: a job or stop */
	pthread_cond_t idle;  /* reset: the worker let go of the job */
	pthread_t thread;
	bool thread_started;
	bool stop;
	enum job_state state;
	bool abort;	      /* reset: give up the running job */
	bool quiesce_pending; /* call mu_dev_quiesce_done() when idle */
	struct job job;

	uint64_t src, dst;
	uint32_t len, op, fill;
	uint32_t status, result, irq_ctrl, completed, scratch, bar4_traps;
	/* false while migration has the device stopped (STOP, STOP_COPY,
	 * RESUMING): a START is queued but the worker does not take it */
	bool running;

	/* INTx level as last told to the library; own lock so that the
	 * register lock is never held across a library call. */
	pthread_mutex_t intx_lock;
	bool intx_level;

	/* Owned by the worker. */
	uint8_t *buf;	   /* bounce buffer: MSG_CHUNK + 4 bytes */
	size_t buf_filled; /* buf[0..buf_filled) holds buf_fill's pattern */
	uint32_t buf_fill;
	uint32_t pat_fill; /* pat holds this pattern (pat_valid) */
	bool pat_valid;
	uint8_t pat[PAT_BYTES];

	/* Migration (migrate.c), on the serving thread only. */
	struct dmat_mig *mig;
};


/* dma-test.c: recompute the INTx level from STATUS and IRQ_CTRL (no
 * locks held); let the worker look for a queued job again. */
void dmat_update_intx(struct dmat *d);
void dmat_kick(struct dmat *d);

/* migrate.c: the mig_* callbacks, and freeing what they hold. */
int dmat_mig_transition(void *opaque, enum mu_mig_state to);
ssize_t dmat_mig_read(void *opaque, void *buf, size_t len);
ssize_t dmat_mig_write(void *opaque, const void *buf, size_t len);
void dmat_mig_free(struct dmat *d);

#endif
