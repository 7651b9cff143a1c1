/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * nvme-host.h - a tiny NVMe host driver on libmuser-client for the
 * muser-nvme tests: it starts the sample on a temporary backing file,
 * gives it guest memory (a memfd the server maps, and a plain buffer it
 * reaches by DMA messages), builds queues there and rings doorbells with
 * region writes, as a VMM's guest would.
 */
#ifndef MUSER_TEST_NVME_HOST_H
#define MUSER_TEST_NVME_HOST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "harness.h"
#include "nvme.h"

#define BAR0 MU_PCI_BAR0_REGION_INDEX
#define NVECS 5 /* --queues=4: admin + 4 */

/* Guest memory: MEM is mapped with an fd (the server mmaps it: zero
 * copy), BUF without (every access is a DMA_READ/DMA_WRITE message). */
#define MEM_IOVA 0x100000ull
#define MEM_SIZE (16u << 20)
#define BUF_IOVA 0x40000000ull
#define BUF_SIZE (2u << 20)
#define ASQ_IOVA (MEM_IOVA + 0x0000)
#define ACQ_IOVA (MEM_IOVA + 0x1000)
#define SQ1_IOVA (MEM_IOVA + 0x2000)
#define CQ1_IOVA (MEM_IOVA + 0x3000)
#define LIST_IOVA (MEM_IOVA + 0x10000) /* PRP list pages */
#define DATA_IOVA (MEM_IOVA + 0x100000)
#define DATA_SIZE (8u << 20)
#define IMG_SIZE (4u << 20)
#define QENTRIES 64u

struct hq {
	uint64_t iova;
	uint32_t size, tail, head;
	bool phase;
};

struct fx {
	struct server srv;
	char dir[64], img[96];
	mu_client_t *c;
	int memfd;
	uint8_t *mem, *buf;
	int efd[NVECS];
	struct hq sq[5], cq[5];
	uint64_t nlb;
	unsigned bs;
};

/* cmocka setup/teardown: a fresh server per test, 512-byte blocks (or
 * 4096 for fx_setup_4k), controller enabled with 64-entry admin queues. */
int fx_setup(void **state);
int fx_setup_4k(void **state);
int fx_setup_disabled(void **state); /* not enabled */
int fx_setup_no_dbbuf(void **state); /* --no-shadow-doorbells */
int fx_setup_threads(void **state);  /* 4 workers, no polling */
int fx_setup_poll(void **state);     /* --poll-us=200000 */
/* muser-nvme's exit status with one more option and a backing file that
 * does not exist (1 once the options were accepted), -1 if it died. */
int nvme_exit_status(const char *arg);
int fx_teardown(void **state);

/* Host pointer for a guest address in MEM or BUF (fails the test else). */
uint8_t *gp(struct fx *f, uint64_t iova);

uint32_t rd32(struct fx *f, uint64_t off);
uint64_t rd64(struct fx *f, uint64_t off);
void wr32(struct fx *f, uint64_t off, uint32_t v);
/* Poll CSTS until (CSTS & mask) == want; false on timeout. */
bool wait_csts(struct fx *f, uint32_t mask, uint32_t want, int ms);
/* AQA/ASQ/ACQ, CC (IOSQES 6, IOCQES 4, EN), wait for RDY. */
void enable(struct fx *f, uint32_t entries);

/* Put cmd at qid's SQ tail and ring the doorbell. */
void submit(struct fx *f, unsigned qid, const struct nvme_sqe *cmd);
/* Next completion of CQ qid within ms (serving the server's DMA
 * messages meanwhile); rings the CQ head doorbell. 0 or -ETIMEDOUT. */
int reap(struct fx *f, unsigned qid, struct nvme_cqe *out, int ms);
/* The same without the head doorbell: the caller tells the controller
 * the new head (f->cq[qid].head) its own way. */
int reap_entry(struct fx *f, unsigned qid, struct nvme_cqe *out, int ms);
/* submit + reap: the status field (15 bits: SC, SCT, DNR...). */
uint16_t exec(struct fx *f, unsigned qid, struct nvme_sqe *cmd, uint32_t *dw0);

/* Queue pair qid: CQ at cq_iova (interrupts on vector qid), SQ at
 * sq_iova, both `entries` big; asserts success. */
void create_qpair(struct fx *f, unsigned qid, uint64_t sq_iova,
		  uint64_t cq_iova, uint32_t entries);
uint16_t identify(struct fx *f, uint8_t cns, uint32_t nsid, uint64_t iova);

/* A Read/Write/Write Zeroes command for nlb blocks at slba. */
struct nvme_sqe rw_cmd(uint8_t op, uint64_t slba, uint32_t nlb, uint64_t prp1,
		       uint64_t prp2);
/* Build PRP1/PRP2 (and a list at LIST_IOVA if needed) for a buffer of
 * len bytes at iova; returns the command with them filled in. */
void set_prps(struct fx *f, struct nvme_sqe *cmd, uint64_t iova, uint32_t len);

void fill_random(uint8_t *p, size_t n, unsigned seed);
/* The backing file's bytes at off. */
void read_img(struct fx *f, uint64_t off, void *buf, size_t len);

#define SC(sct, sc) ((uint16_t)(NVME_STATUS(sct, sc) | NVME_DNR))
/* Status without CRD/More, which we never set. */
#define STATUS(st) ((uint16_t)((st) & ~0x3800u))

/* A test program's main: argv[1] is muser-nvme; runs the n tests as
 * the group name. 0 all passed, 1 some failed, 2 usage. */
struct CMUnitTest;
int nvme_run_tests(int argc, char **argv, const char *name,
		   const struct CMUnitTest *tests, size_t n);

#endif
