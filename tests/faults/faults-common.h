/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * faults-common.h - shared pieces of the fault-injection suite: fd
 * counting, a scripted raw client on the wire core (which also answers the
 * server's DMA_READ/DMA_WRITE from a local buffer), an in-process test
 * device built on libmuser, and starting a sample server as a child.
 *
 * Nothing here uses cmocka: the helpers also run in forked children and
 * inside malloc-failure sweeps, so they report errors by return value.
 */
#ifndef MUSER_TEST_FAULTS_COMMON_H
#define MUSER_TEST_FAULTS_COMMON_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "muser/device.h"
#include "wire-core.h"

/* ---- time, processes, fds ------------------------------------------------ */

long fl_now_ms(void);
/* Open fds of pid (0: this process), from /proc/PID/fd. */
int fl_fd_count(pid_t pid);
/* Highest open fd number of pid (0: this process). */
int fl_max_fd(pid_t pid);
/* Poll until pid's fd count is want (up to ms); returns the last count. */
int fl_wait_fd_count(pid_t pid, int want, int ms);
/* Wait for a child with a hang guard: the child is SIGKILLed after ms.
 * Returns the wait status, or -1. */
int fl_wait_child(pid_t pid, int ms);

/* Start a server binary with --socket-path=PATH (+ extra args, NULL
 * terminated) and wait until the socket file is there. */
pid_t fl_spawn_server(const char *bin, const char *path,
		      const char *const *extra);
void fl_kill_server(pid_t pid);

/* ---- raw scripted client ----------------------------------------------- */

#define RC_DMA_BUF 0x1000u

struct rc {
	struct mu_chan ch;
	struct mu_chan tw;
	bool has_tw;
	uint16_t id;
	/* One fd-less DMA window the client answers DMA_READ/WRITE from. */
	uint64_t dma_iova;
	uint8_t dma_buf[RC_DMA_BUF];
	int dma_served;
	/* Set by a test: die (SIGKILL) as soon as a DMA command arrives. */
	bool die_on_dma;
};

int rc_connect(struct rc *r, const char *path);
/* Connect, retrying while the server is busy with the previous client. */
int rc_connect_retry(struct rc *r, const char *path, int ms);
void rc_close(struct rc *r);
/* VERSION; twin: propose the twin socket. 0 or the reply's -errno. */
int rc_version(struct rc *r, bool twin);
/* Send one command (header + payload + fds); id returned in *id. */
int rc_send(struct rc *r, uint16_t cmd, uint32_t flags, const void *p,
	    size_t len, const int *fds, unsigned nfds, uint16_t *id);
/* Wait for the reply to id, answering DMA commands meanwhile. Returns the
 * reply payload length or its -errno; -ECONNRESET when the server hung
 * up, -ETIMEDOUT after ms. Reply fds are closed. */
ssize_t rc_wait(struct rc *r, uint16_t id, uint16_t cmd, void *out,
		size_t cap, int ms);
ssize_t rc_call(struct rc *r, uint16_t cmd, const void *p, size_t len,
		const int *fds, unsigned nfds, void *out, size_t cap);
int rc_read32(struct rc *r, uint32_t region, uint64_t off, uint32_t *v);
int rc_write32(struct rc *r, uint32_t region, uint64_t off, uint32_t v);

/* ---- the in-process test device -------------------------------------------- */

/* BAR0 (callback, 4 KiB): registers. */
#define FD_REG_MAGIC 0x00  /* RO */
#define FD_REG_STATE 0x10  /* RW: survives a lost client, cleared by reset */
#define FD_REG_IOVA 0x20   /* RW: DMA address (low 32 bits) */
#define FD_REG_LEN 0x28    /* RW: DMA length (<= 256) */
#define FD_REG_GO_RD 0x2c  /* WO: mu_dma_read(IOVA, LEN) into the buffer */
#define FD_REG_GO_WR 0x30  /* WO: mu_dma_write(IOVA, LEN) from the buffer */
#define FD_REG_RET 0x34    /* RO: result of the last DMA (negative errno) */
#define FD_REG_BUF 0x400   /* 256 bytes: the DMA buffer */
#define FD_MAGIC 0xfa017e57u
#define FD_BAR0_SIZE 0x1000u
#define FD_BAR2_SIZE 0x4000u /* MEM, mappable */
#define FD_BAR4_SIZE 0x2000u /* MEM: MSI-X table at 0, PBA at 0x1000 */
#define FD_MSIX_VECS 4u

struct fdev {
	mu_dev_t *dev;
	char path[108];
	pthread_t thr;
	bool running;
	int run_ret;
	uint8_t bar0[FD_BAR0_SIZE];
	int nreset_lost, nreset_req;
	/* raise(SIGKILL) in the GO callbacks (after the DMA): forked servers */
	bool die_in_dma;
	bool quiet;
};

/* Create and realize the device: on path (listening) when path != NULL,
 * else adopting the connected socket fd (mu_dev_create_fd; on failure the
 * caller still owns fd when *fd_taken is false). 0 or -errno; on failure
 * nothing is left allocated. */
int fdev_create(struct fdev *f, const char *path, int fd, bool *fd_taken);
int fdev_start(struct fdev *f); /* mu_dev_run in a thread */
void fdev_stop(struct fdev *f);
void fdev_destroy(struct fdev *f);

#endif
