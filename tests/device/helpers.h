/* SPDX-License-Identifier: BSD-3-Clause */
/* Shared helpers for the libmuser tests: a standard test device, and the
 * client side played with the wire core directly (mu_chan_send/recv). */
#ifndef MU_TEST_HELPERS_H
#define MU_TEST_HELPERS_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "muser/device.h"
#include "wire-core.h"
#include "testutil.h"

/* Standard test device layout. */
#define TD_BAR0_SIZE 0x1000u  /* callback region, 32-bit */
#define TD_BAR1_SIZE 0x100u   /* I/O BAR, callback */
#define TD_BAR2_SIZE 0x10000u /* 64-bit prefetchable MEM, sparse */
#define TD_BAR4_SIZE 0x4000u  /* MEM: MSI-X table at 0, PBA at 0x2000 */
#define TD_ROM_SIZE 0x8000u
#define TD_DEVSPEC 9u /* device-specific region index */
#define TD_MSIX_VECS 8u
#define TD_MSI_VECS 4u

struct td {
	mu_dev_t *dev;
	char path[108];
	pthread_t thr;
	bool running;
	int run_ret;
	uint8_t bar0[TD_BAR0_SIZE];
	uint8_t bar1[TD_BAR1_SIZE];
	int nreset, last_reset, nquiesce, nattach, ndetach, ncfg;
	int nmap, nunmap;
	uint32_t last_cfg_off;
	int vndr_off;	   /* vendor cap; its body byte 0 is live */
	uint8_t vndr_live; /* what config_read puts there */
	int nacc;	   /* region callback calls */
	/* migration data */
	uint8_t mig[256];
	size_t mig_len, mig_pos;
	int mig_to[16], nmig;
	bool quiesce_busy; /* quiesce answers -EBUSY */
	/* BAR0 writes at TD_DMA_READ_REG / TD_DMA_WRITE_REG run message DMA
	 * on the serving thread: dma_len bytes at dma_iova <-> dmabuf. */
	uint64_t dma_iova;
	uint8_t dmabuf[256];
	size_t dma_len;
	int dma_ret;
};

#define TD_DMA_READ_REG 0x800u
#define TD_DMA_WRITE_REG 0x808u
/* Limit applied by the next td_create (0: default). */
extern uint32_t td_next_max_dma_maps;

/* Create the standard device on a fresh socket path (express kind). */
/* negotiate_timeout_ms for the next td_create (0: default). */
extern int td_next_negotiate_ms;
void td_create(struct td *t, enum mu_pci_kind kind);
void td_start(struct td *t); /* mu_dev_run in a thread */
void td_stop(struct td *t);
void td_destroy(struct td *t);

struct tc {
	struct mu_chan c;
	uint16_t id;
	int twin; /* twin socket fd or -1 */
	struct mu_chan tw;
	char json[512]; /* server caps */
};

int tc_connect(struct tc *c, const char *path);
/* Send VERSION (json may be NULL) and read the reply; 0 or -errno. */
int tc_version(struct tc *c, uint16_t major, uint16_t minor, const char *json);
int tc_open(struct tc *c, const char *path); /* connect + default VERSION */
void tc_close(struct tc *c);
/* Send a command and wait for its reply. reply (may be NULL) gets a copy of
 * the payload up to cap bytes; *rlen its length; fds received go to rfds
 * (closed if rfds NULL). Returns 0 or the peer's -errno. */
int tc_call(struct tc *c, uint16_t cmd, uint32_t flags, const void *p,
	    size_t len, const int *fds, unsigned nfds, void *reply, size_t cap,
	    size_t *rlen, int *rfds, unsigned *nrfds);
int tc_read(struct tc *c, uint32_t region, uint64_t off, void *buf,
	    uint32_t count);
int tc_write(struct tc *c, uint32_t region, uint64_t off, const void *buf,
	     uint32_t count);
uint32_t tc_cfg32(struct tc *c, uint32_t off);
void tc_cfg_w32(struct tc *c, uint32_t off, uint32_t v);
/* Send raw bytes. */
int tc_raw(struct tc *c, const void *p, size_t len);
/* Receive one message (copy of payload) with a timeout; 1, 0 (EOF), -errno */
int tc_recv(struct tc *c, struct mu_chan *ch, struct mu_hdr *h, void *buf,
	    size_t cap, size_t *len, int timeout_ms);

/* cmocka fixture: a started express device and a client that negotiated. */
struct fx {
	struct td t;
	struct tc c;
};
int fx_setup(void **state);
int fx_teardown(void **state);

#endif
