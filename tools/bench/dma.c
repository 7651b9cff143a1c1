/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * dma.c - drive the muser-dma-test sample's engine for the DMA figures:
 * a buffer mapped without fd (the server reaches it with DMA_READ/WRITE
 * messages that libmuser-client serves) and a memfd mapped with its fd
 * (the server copies through its own mmap). Completion arrives on an
 * MSI-X eventfd; without interrupts STATUS is polled.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include "bench.h"
#include "dma-test.h"

#define MSG_IOVA 0x100000000ull
#define MEM_IOVA 0x200000000ull
#define MSG_HALF (1u << 20)
#define MEM_HALF (64u << 20)
#define WAIT_MS 5000

struct dmat {
	mu_client_t *c;
	uint8_t *msg;
	uint8_t *mem;
	int memfd, efd;
	bool msg_mapped, mem_mapped;
	uint32_t regs[16]; /* last values written, by register index */
	bool known[16];
};

static int wr(struct dmat *d, unsigned reg, uint32_t val)
{
	return mu_client_region_write(d->c, MU_PCI_BAR0_REGION_INDEX, reg, &val,
				      4);
}

static int ring(struct dmat *d)
{
	uint32_t v = DMAT_CMD_START;
	int r = mu_client_region_write_posted(d->c, MU_PCI_BAR0_REGION_INDEX,
					      DMAT_REG_CMD, &v, 4);

	return r ? r : mu_client_flush_posted(d->c);
}

static int rd(struct dmat *d, unsigned reg, uint32_t *val)
{
	return mu_client_region_read(d->c, MU_PCI_BAR0_REGION_INDEX, reg, val,
				     4);
}

/* Write a setup register only when its value changes. */
static int set_reg(struct dmat *d, unsigned reg, uint32_t val)
{
	unsigned i = reg / 4;
	int ret;

	if (i < 16 && d->known[i] && d->regs[i] == val)
		return 0;
	ret = wr(d, reg, val);
	if (!ret && i < 16) {
		d->regs[i] = val;
		d->known[i] = true;
	}
	return ret;
}

/* Set the MSI-X enable bit in config space, as a driver would. */
static void msix_enable(struct dmat *d)
{
	uint8_t cfg[256];
	unsigned p, steps = 0;

	if (mu_client_region_read(d->c, MU_PCI_CONFIG_REGION_INDEX, 0, cfg,
				  sizeof(cfg)) < 0)
		return;
	for (p = cfg[0x34] & ~3u; p >= 0x40 && p < 0xfc && steps < 48;
	     p = cfg[p + 1] & ~3u, steps++) {
		if (cfg[p] == 0x11) {
			uint16_t ctl = (uint16_t)(cfg[p + 2] | cfg[p + 3] << 8 |
						  0x8000);

			mu_client_region_write(d->c, MU_PCI_CONFIG_REGION_INDEX,
					       p + 2, &ctl, 2);
			return;
		}
	}
}

static int setup_irq(struct dmat *d)
{
	d->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (d->efd < 0)
		return -errno;
	msix_enable(d);
	if (mu_client_irq_set_eventfds(d->c, MU_PCI_MSIX_IRQ_INDEX, 0, 1,
				       &d->efd) < 0 ||
	    wr(d, DMAT_REG_IRQ_CTRL, DMAT_IRQ_EN) < 0) {
		close(d->efd);
		d->efd = -1;
		return wr(d, DMAT_REG_IRQ_CTRL, 0);
	}
	return 0;
}

int dmat_open(mu_client_t *c, struct dmat **out, char *why, size_t len)
{
	uint32_t id = 0, magic = 0;
	struct dmat *d;
	int ret;

	if (mu_client_region_read(c, MU_PCI_CONFIG_REGION_INDEX, 0, &id, 4) <
		    0 ||
	    id != (DMAT_VENDOR | (uint32_t)DMAT_DEVICE << 16)) {
		snprintf(why, len,
			 "needs the muser-dma-test sample (%04x:%04x)",
			 DMAT_VENDOR, DMAT_DEVICE);
		return -ENODEV;
	}
	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->c = c;
	d->memfd = d->efd = -1;
	ret = rd(d, DMAT_REG_MAGIC, &magic);
	if (ret < 0 || magic != DMAT_MAGIC) {
		snprintf(why, len, "BAR0 MAGIC reads %#x", magic);
		free(d);
		return ret < 0 ? ret : -ENODEV;
	}
	d->msg = aligned_alloc(4096, 2 * MSG_HALF);
	if (d->msg) {
		memset(d->msg, 0x3c, 2 * MSG_HALF);
		ret = mu_client_dma_map_buffer(
			c, MSG_IOVA, d->msg, 2 * MSG_HALF,
			MU_DMA_MAP_FLAG_READ | MU_DMA_MAP_FLAG_WRITE);
		d->msg_mapped = ret == 0;
	}
	d->memfd = memfd_create("muser-bench", MFD_CLOEXEC);
	if (d->memfd >= 0 && ftruncate(d->memfd, 2 * MEM_HALF) == 0) {
		d->mem = mmap(NULL, 2 * MEM_HALF, PROT_READ | PROT_WRITE,
			      MAP_SHARED, d->memfd, 0);
		if (d->mem == MAP_FAILED) {
			d->mem = NULL;
		} else {
			memset(d->mem, 0x3c, 2 * MEM_HALF);
			ret = mu_client_dma_map_fd(
				c, MEM_IOVA, 2 * MEM_HALF, d->memfd, 0,
				MU_DMA_MAP_FLAG_READ | MU_DMA_MAP_FLAG_WRITE);
			d->mem_mapped = ret == 0;
		}
	}
	ret = setup_irq(d);
	if (ret < 0) {
		snprintf(why, len, "IRQ_CTRL: %s", strerror(-ret));
		dmat_close(d);
		return ret;
	}
	*out = d;
	return 0;
}

void dmat_close(struct dmat *d)
{
	if (!d)
		return;
	if (mu_client_is_connected(d->c)) {
		wr(d, DMAT_REG_IRQ_CTRL, 0);
		if (d->efd >= 0)
			mu_client_irq_disable(d->c, MU_PCI_MSIX_IRQ_INDEX);
		if (d->msg_mapped)
			mu_client_dma_unmap(d->c, MSG_IOVA, 2 * MSG_HALF);
		if (d->mem_mapped)
			mu_client_dma_unmap(d->c, MEM_IOVA, 2 * MEM_HALF);
	}
	if (d->efd >= 0)
		close(d->efd);
	if (d->mem)
		munmap(d->mem, 2 * MEM_HALF);
	if (d->memfd >= 0)
		close(d->memfd);
	free(d->msg);
	free(d);
}

/* Wait for the operation to finish, serving the server's DMA requests
 * through the client's poll fd meanwhile. */
static int wait_done(struct dmat *d)
{
	uint64_t cnt;
	uint32_t st;
	int ret;

	if (d->efd < 0) {
		do {
			ret = rd(d, DMAT_REG_STATUS, &st);
		} while (!ret && (st & DMAT_STATUS_BUSY));
		return ret;
	}
	for (;;) {
		struct pollfd pfd[2] = {
			{.fd = d->efd, .events = POLLIN},
			{.fd = mu_client_get_poll_fd(d->c), .events = POLLIN},
		};

		ret = poll(pfd, 2, WAIT_MS);
		if (ret < 0 && errno != EINTR)
			return -errno;
		if (pfd[1].revents) {
			ret = mu_client_process(d->c);
			if (ret < 0)
				return ret;
		}
		if ((pfd[0].revents & POLLIN) &&
		    read(d->efd, &cnt, sizeof(cnt)) == sizeof(cnt))
			return 0;
		if (ret == 0) {
			/* no interrupt for WAIT_MS: look at STATUS */
			ret = rd(d, DMAT_REG_STATUS, &st);
			if (ret < 0)
				return ret;
			if (!(st & DMAT_STATUS_BUSY)) {
				if (read(d->efd, &cnt, sizeof(cnt)) < 0)
					cnt = 0;
				return 0;
			}
		}
	}
}

/* One operation: ring the doorbell, wait for completion. */
static int run_once(void *arg)
{
	struct dmat *d = arg;
	/* A doorbell is a posted write, as a guest's MMIO store is: no
	 * round trip before waiting for the interrupt. */
	int ret = d->efd >= 0 ? ring(d) : wr(d, DMAT_REG_CMD, DMAT_CMD_START);

	return ret ? ret : wait_done(d);
}

int dmat_run(struct dmat *d, bool mmap, unsigned op, size_t size,
	     double seconds, struct result *r)
{
	uint64_t base = mmap ? MEM_IOVA : MSG_IOVA;
	size_t half = mmap ? MEM_HALF : MSG_HALF;
	uint64_t ops;
	uint32_t c0 = 0, c1 = 0, st = 0, res = 0;
	int ret;

	if (mmap ? !d->mem_mapped : !d->msg_mapped)
		return -ENXIO;
	if (size > half)
		return -EINVAL;
	if ((ret = set_reg(d, DMAT_REG_SRC_LO, (uint32_t)base)) ||
	    (ret = set_reg(d, DMAT_REG_SRC_HI, (uint32_t)(base >> 32))) ||
	    (ret = set_reg(d, DMAT_REG_DST_LO, (uint32_t)(base + half))) ||
	    (ret = set_reg(d, DMAT_REG_DST_HI,
			   (uint32_t)((base + half) >> 32))) ||
	    (ret = set_reg(d, DMAT_REG_LEN, (uint32_t)size)) ||
	    (ret = set_reg(d, DMAT_REG_OP, op)) ||
	    (ret = set_reg(d, DMAT_REG_FILL, 0xa5a5a5a5u)) ||
	    (ret = rd(d, DMAT_REG_COMPLETED, &c0)))
		return ret;
	ops = r->ops;
	ret = res_run_for(r, seconds, size, run_once, d);
	if (ret)
		return ret;
	ops = r->ops - ops;
	if ((ret = rd(d, DMAT_REG_STATUS, &st)) ||
	    (ret = rd(d, DMAT_REG_COMPLETED, &c1)))
		return ret;
	if (st & DMAT_STATUS_ERROR) {
		rd(d, DMAT_REG_RESULT, &res);
		snprintf(r->note, sizeof(r->note),
			 "device error: STATUS %#x RESULT %u", st, res);
		return -EIO;
	}
	if (c1 - c0 != ops)
		snprintf(r->note, sizeof(r->note),
			 "device completed %u operations, we counted %llu",
			 c1 - c0, (unsigned long long)ops);
	return 0;
}
