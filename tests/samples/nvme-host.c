/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * nvme-host.c - the test-side NVMe host (see nvme-host.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "nvme-host.h"

static const char *nvme_bin; /* argv[1] of the test program */

int nvme_run_tests(int argc, char **argv, const char *name,
		   const struct CMUnitTest *tests, size_t n)
{
	if (argc < 2) {
		fprintf(stderr, "usage: %s PATH-TO-muser-nvme\n", argv[0]);
		return 2;
	}
	nvme_bin = argv[1];
	signal(SIGPIPE, SIG_IGN);
	return _cmocka_run_group_tests(name, tests, n, NULL, NULL) ? 1 : 0;
}

int nvme_exit_status(const char *arg)
{
	char sock[64];
	int st;
	pid_t pid;

	snprintf(sock, sizeof(sock), "--socket-path=/tmp/muser-nvme-%d.sock",
		 (int)getpid());
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);

		dup2(null, 1);
		dup2(null, 2);
		execl(nvme_bin, nvme_bin, sock, "--backing=/nonexistent", arg,
		      (char *)NULL);
		_exit(127);
	}
	if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st))
		return -1;
	return WEXITSTATUS(st);
}

static int start(void **state, unsigned bs, bool do_enable, const char *extra,
		 const char *extra2)
{
	char bsarg[32], backing[128];
	const char *args[] = {"--quiet", bsarg, backing, extra, extra2, NULL};
	struct fx *f = calloc(1, sizeof(*f));
	int fd;

	if (!f)
		return -1;
	*state = f;
	f->bs = bs;
	f->nlb = IMG_SIZE / bs;
	snprintf(f->dir, sizeof(f->dir), "/tmp/muser-nvme-test-XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	snprintf(f->img, sizeof(f->img), "%s/backing.img", f->dir);
	fd = open(f->img, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || ftruncate(fd, IMG_SIZE) < 0)
		return -1;
	close(fd);
	snprintf(bsarg, sizeof(bsarg), "--block-size=%u", bs);
	snprintf(backing, sizeof(backing), "--backing=%s", f->img);

	f->memfd = memfd_create("nvme-test", MFD_CLOEXEC);
	if (f->memfd < 0 || ftruncate(f->memfd, MEM_SIZE) < 0)
		return -1;
	f->mem = mmap(NULL, MEM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED,
		      f->memfd, 0);
	f->buf = calloc(1, BUF_SIZE);
	if (f->mem == MAP_FAILED || !f->buf)
		return -1;
	if (server_start(&f->srv, nvme_bin, args) < 0 ||
	    client_connect(f->srv.sock, &f->c) < 0)
		return -1;
	if (mu_client_dma_map_fd(f->c, MEM_IOVA, MEM_SIZE, f->memfd, 0,
				 MU_DMA_MAP_FLAG_READ | MU_DMA_MAP_FLAG_WRITE) <
		    0 ||
	    mu_client_dma_map_buffer(f->c, BUF_IOVA, f->buf, BUF_SIZE,
				     MU_DMA_MAP_FLAG_READ |
					     MU_DMA_MAP_FLAG_WRITE) < 0)
		return -1;
	for (unsigned i = 0; i < NVECS; i++) {
		f->efd[i] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (f->efd[i] < 0)
			return -1;
	}
	if (mu_client_irq_set_eventfds(f->c, MU_PCI_MSIX_IRQ_INDEX, 0, NVECS,
				       f->efd) < 0)
		return -1;
	if (do_enable)
		enable(f, QENTRIES);
	return 0;
}

int fx_setup(void **state)
{
	return start(state, 512, true, NULL, NULL);
}

int fx_setup_4k(void **state)
{
	return start(state, 4096, true, NULL, NULL);
}

int fx_setup_disabled(void **state)
{
	return start(state, 512, false, NULL, NULL);
}

int fx_setup_threads(void **state)
{
	return start(state, 512, true, "--threads=4", "--poll-us=0");
}

int fx_setup_poll(void **state)
{
	return start(state, 512, true, "--poll-us=200000", NULL);
}

int fx_setup_no_dbbuf(void **state)
{
	return start(state, 512, true, "--no-shadow-doorbells", NULL);
}

int fx_teardown(void **state)
{
	struct fx *f = *state;

	if (!f)
		return 0;
	if (f->c)
		mu_client_destroy(f->c);
	/* The server must still be alive and exit cleanly on SIGTERM,
	 * whatever the test threw at it. */
	assert_int_equal(server_stop(&f->srv, SIGTERM), 0);
	server_cleanup(&f->srv);
	for (unsigned i = 0; i < NVECS; i++)
		if (f->efd[i] > 0)
			close(f->efd[i]);
	munmap(f->mem, MEM_SIZE);
	close(f->memfd);
	free(f->buf);
	unlink(f->img);
	rmdir(f->dir);
	free(f);
	return 0;
}

uint8_t *gp(struct fx *f, uint64_t iova)
{
	if (iova >= MEM_IOVA && iova < MEM_IOVA + MEM_SIZE)
		return f->mem + (iova - MEM_IOVA);
	if (iova >= BUF_IOVA && iova < BUF_IOVA + BUF_SIZE)
		return f->buf + (iova - BUF_IOVA);
	fail_msg("iova 0x%llx is not guest memory", (unsigned long long)iova);
	return NULL;
}

uint32_t rd32(struct fx *f, uint64_t off)
{
	uint32_t v = 0xdeadbeef;

	assert_int_equal(mu_client_region_read(f->c, BAR0, off, &v, 4), 0);
	return v;
}

uint64_t rd64(struct fx *f, uint64_t off)
{
	uint64_t v = 0;

	assert_int_equal(mu_client_region_read(f->c, BAR0, off, &v, 8), 0);
	return v;
}

void wr32(struct fx *f, uint64_t off, uint32_t v)
{
	assert_int_equal(mu_client_region_write(f->c, BAR0, off, &v, 4), 0);
}

static void wr64(struct fx *f, uint64_t off, uint64_t v)
{
	assert_int_equal(mu_client_region_write(f->c, BAR0, off, &v, 8), 0);
}

bool wait_csts(struct fx *f, uint32_t mask, uint32_t want, int ms)
{
	for (int i = 0; i < ms; i++) {
		if ((rd32(f, NVME_REG_CSTS) & mask) == want)
			return true;
		usleep(1000);
	}
	return false;
}

void enable(struct fx *f, uint32_t entries)
{
	memset(gp(f, ASQ_IOVA), 0, 0x1000);
	memset(gp(f, ACQ_IOVA), 0, 0x1000);
	wr32(f, NVME_REG_AQA, (entries - 1) << 16 | (entries - 1));
	wr64(f, NVME_REG_ASQ, ASQ_IOVA);
	wr64(f, NVME_REG_ACQ, ACQ_IOVA);
	wr32(f, NVME_REG_CC, 6u << 16 | 4u << 20 | NVME_CC_EN);
	assert_true(wait_csts(f, NVME_CSTS_RDY, NVME_CSTS_RDY, 2000));
	f->sq[0] = (struct hq){ASQ_IOVA, entries, 0, 0, true};
	f->cq[0] = (struct hq){ACQ_IOVA, entries, 0, 0, true};
}

void submit(struct fx *f, unsigned qid, const struct nvme_sqe *cmd)
{
	struct hq *q = &f->sq[qid];

	memcpy(gp(f, q->iova + (uint64_t)q->tail * NVME_SQE_SIZE), cmd,
	       sizeof(*cmd));
	q->tail = (q->tail + 1) % q->size;
	wr32(f, NVME_SQ_TDBL(qid), q->tail);
}

int reap_entry(struct fx *f, unsigned qid, struct nvme_cqe *out, int ms)
{
	struct hq *q = &f->cq[qid];

	for (int waited = 0; waited <= ms * 10; waited++) {
		struct nvme_cqe e;

		memcpy(&e, gp(f, q->iova + (uint64_t)q->head * NVME_CQE_SIZE),
		       sizeof(e));
		if ((e.status & 1) == q->phase) {
			*out = e;
			if (++q->head == q->size) {
				q->head = 0;
				q->phase = !q->phase;
			}
			return 0;
		}
		/* Serve DMA_READ/DMA_WRITE for the fd-less buffer. */
		assert_true(mu_client_process(f->c) >= 0);
		usleep(100);
	}
	return -ETIMEDOUT;
}

int reap(struct fx *f, unsigned qid, struct nvme_cqe *out, int ms)
{
	int r = reap_entry(f, qid, out, ms);

	if (r == 0)
		wr32(f, NVME_CQ_HDBL(qid), f->cq[qid].head);
	return r;
}

uint16_t exec(struct fx *f, unsigned qid, struct nvme_sqe *cmd, uint32_t *dw0)
{
	static uint16_t next_cid = 1;
	struct nvme_cqe e;

	cmd->cid = next_cid++;
	submit(f, qid, cmd);
	if (reap(f, qid, &e, 5000) < 0)
		fail_msg("no completion for opcode 0x%x on queue %u",
			 cmd->opcode, qid);
	assert_int_equal(e.cid, cmd->cid);
	assert_int_equal(e.sqid, qid);
	if (dw0)
		*dw0 = e.dw0;
	return (uint16_t)(e.status >> 1);
}

void create_qpair(struct fx *f, unsigned qid, uint64_t sq_iova,
		  uint64_t cq_iova, uint32_t entries)
{
	struct nvme_sqe cq = {.opcode = NVME_ADM_CREATE_CQ,
			      .prp1 = cq_iova,
			      .cdw10 = (entries - 1) << 16 | qid,
			      .cdw11 = qid << 16 | NVME_CQ_IEN | NVME_QUEUE_PC};
	struct nvme_sqe sq = {.opcode = NVME_ADM_CREATE_SQ,
			      .prp1 = sq_iova,
			      .cdw10 = (entries - 1) << 16 | qid,
			      .cdw11 = qid << 16 | NVME_QUEUE_PC};

	memset(gp(f, cq_iova), 0, entries * NVME_CQE_SIZE);
	assert_int_equal(exec(f, 0, &cq, NULL), 0);
	assert_int_equal(exec(f, 0, &sq, NULL), 0);
	f->sq[qid] = (struct hq){sq_iova, entries, 0, 0, true};
	f->cq[qid] = (struct hq){cq_iova, entries, 0, 0, true};
}

uint16_t identify(struct fx *f, uint8_t cns, uint32_t nsid, uint64_t iova)
{
	struct nvme_sqe c = {
		.opcode = NVME_ADM_IDENTIFY, .nsid = nsid, .cdw10 = cns};

	set_prps(f, &c, iova, NVME_IDENTIFY_SIZE);
	return exec(f, 0, &c, NULL);
}

struct nvme_sqe rw_cmd(uint8_t op, uint64_t slba, uint32_t nlb, uint64_t prp1,
		       uint64_t prp2)
{
	return (struct nvme_sqe){.opcode = op,
				 .nsid = 1,
				 .prp1 = prp1,
				 .prp2 = prp2,
				 .cdw10 = (uint32_t)slba,
				 .cdw11 = (uint32_t)(slba >> 32),
				 .cdw12 = nlb - 1};
}

void set_prps(struct fx *f, struct nvme_sqe *cmd, uint64_t iova, uint32_t len)
{
	uint64_t first = NVME_PAGE - (iova & (NVME_PAGE - 1));
	uint64_t *list = (uint64_t *)gp(f, LIST_IOVA);
	uint64_t page = iova - (iova & (NVME_PAGE - 1)) + NVME_PAGE;
	unsigned n = 0;

	cmd->prp1 = iova;
	cmd->prp2 = 0;
	if (len <= first)
		return;
	if (len - first <= NVME_PAGE) {
		cmd->prp2 = page;
		return;
	}
	for (uint64_t done = first; done < len; done += NVME_PAGE)
		list[n++] = page + (done - first);
	cmd->prp2 = LIST_IOVA;
}

void fill_random(uint8_t *p, size_t n, unsigned seed)
{
	uint32_t x = seed * 2654435761u + 1;

	for (size_t i = 0; i < n; i++) {
		x ^= x << 13, x ^= x >> 17, x ^= x << 5;
		p[i] = (uint8_t)x;
	}
}

void read_img(struct fx *f, uint64_t off, void *buf, size_t len)
{
	int fd = open(f->img, O_RDONLY);

	assert_true(fd >= 0);
	assert_int_equal(pread(fd, buf, len, (off_t)off), (ssize_t)len);
	close(fd);
}
