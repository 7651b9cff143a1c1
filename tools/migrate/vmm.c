/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * vmm.c - the tiny VMM of vmm.h: RAM, a load thread playing the vCPU
 * that drives muser-dma-test, and the migration callbacks.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "dma-test.h"
#include "vmm.h"

#define BAR0 0u
#define BAR4 4u
#define POLL_LIMIT 10000000u /* STATUS reads before a job counts as hung */

static uint32_t rnd(uint32_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

static int ram_alloc(size_t size, int *fd, uint8_t **p)
{
	*fd = memfd_create("muser-vmm-ram", MFD_CLOEXEC);
	if (*fd < 0)
		return -errno;
	if (ftruncate(*fd, (off_t)size) < 0)
		goto fail;
	*p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE,
		  *fd, 0);
	if (*p != MAP_FAILED)
		return 0;
fail:;
	int r = -errno;

	close(*fd);
	*fd = -1;
	*p = NULL;
	return r;
}

int vmm_init(struct vmm *v, size_t ram_size, uint32_t seed)
{
	int r;

	memset(v, 0, sizeof(*v));
	v->src_fd = v->dst_fd = -1;
	if (!ram_size || ram_size % 4096)
		return -EINVAL;
	v->ram_size = ram_size;
	v->seed = seed ? seed : 1;
	v->max_job = 256 << 10;
	pthread_mutex_init(&v->lock, NULL);
	pthread_cond_init(&v->cv, NULL);
	if ((r = ram_alloc(ram_size, &v->src_fd, &v->src_ram)) < 0 ||
	    (r = ram_alloc(ram_size, &v->dst_fd, &v->dst_ram)) < 0) {
		vmm_fini(v);
		return r;
	}
	for (size_t i = 0; i < ram_size; i += 4) {
		uint32_t w = rnd(&v->seed);

		memcpy(v->src_ram + i, &w, 4);
	}
	return 0;
}

void vmm_fini(struct vmm *v)
{
	if (v->src_ram)
		munmap(v->src_ram, v->ram_size);
	if (v->dst_ram)
		munmap(v->dst_ram, v->ram_size);
	if (v->src_fd >= 0)
		close(v->src_fd);
	if (v->dst_fd >= 0)
		close(v->dst_fd);
	v->src_ram = v->dst_ram = NULL;
	v->src_fd = v->dst_fd = -1;
	pthread_mutex_destroy(&v->lock);
	pthread_cond_destroy(&v->cv);
}

int vmm_map(struct vmm *v, mu_client_t *c, bool dst, bool by_message)
{
	const uint32_t prot = MU_DMA_MAP_FLAG_READ | MU_DMA_MAP_FLAG_WRITE;

	if (by_message)
		return mu_client_dma_map_buffer(c, VMM_IOVA,
						dst ? v->dst_ram : v->src_ram,
						v->ram_size, prot);
	return mu_client_dma_map_fd(c, VMM_IOVA, v->ram_size,
				    dst ? v->dst_fd : v->src_fd, 0, prot);
}

/* ---- registers and jobs ------------------------------------------------ */

static int wr(mu_client_t *c, uint64_t off, uint32_t val)
{
	return mu_client_region_write(c, BAR0, off, &val, 4);
}

static int rd(mu_client_t *c, uint64_t off, uint32_t *val)
{
	return mu_client_region_read(c, BAR0, off, val, 4);
}

static int program(mu_client_t *c, uint32_t op, uint64_t src, uint64_t dst,
		   uint32_t len, uint32_t fill)
{
	int r;

	if ((r = wr(c, DMAT_REG_SRC_LO, (uint32_t)src)) < 0 ||
	    (r = wr(c, DMAT_REG_SRC_HI, (uint32_t)(src >> 32))) < 0 ||
	    (r = wr(c, DMAT_REG_DST_LO, (uint32_t)dst)) < 0 ||
	    (r = wr(c, DMAT_REG_DST_HI, (uint32_t)(dst >> 32))) < 0 ||
	    (r = wr(c, DMAT_REG_LEN, len)) < 0 ||
	    (r = wr(c, DMAT_REG_OP, op)) < 0 ||
	    (r = wr(c, DMAT_REG_FILL, fill)) < 0)
		return r;
	return wr(c, DMAT_REG_CMD, DMAT_CMD_START);
}

/* One look at STATUS: 1 and DONE acknowledged, 0 still busy, -EIO for a
 * failed job, or the transport's error. */
static int poll_done(mu_client_t *c)
{
	uint32_t st;
	int r = rd(c, DMAT_REG_STATUS, &st);

	if (r < 0)
		return r;
	if (st & DMAT_STATUS_ERROR)
		return -EIO;
	if (!(st & DMAT_STATUS_DONE))
		return 0;
	r = wr(c, DMAT_REG_STATUS, DMAT_STATUS_DONE);
	return r < 0 ? r : 1;
}

int vmm_job(mu_client_t *c, uint32_t op, uint64_t src, uint64_t dst,
	    uint32_t len, uint32_t fill)
{
	int r = program(c, op, src, dst, len, fill);

	for (unsigned i = 0; r == 0 && i < POLL_LIMIT; i++)
		r = poll_done(c);
	return r == 1 ? 0 : r < 0 ? r : -ETIMEDOUT;
}

/* ---- the load thread ---------------------------------------------------- */

/* A random job inside RAM; COPY never overlaps itself. */
static int start_random(struct vmm *v, mu_client_t *c)
{
	uint64_t pages = v->ram_size / 4096;
	uint32_t len = 4 + (rnd(&v->seed) % v->max_job & ~3u);
	uint32_t op = 1 + rnd(&v->seed) % 3;
	uint64_t a = VMM_IOVA + (rnd(&v->seed) % pages) * 4096;
	uint64_t b = VMM_IOVA + (rnd(&v->seed) % pages) * 4096;
	uint64_t end = VMM_IOVA + v->ram_size;

	if (a + len > end)
		a = end - len;
	if (b + len > end)
		b = end - len;
	if (op == DMAT_OP_COPY && (a < b + len && b < a + len))
		op = DMAT_OP_FILL;
	return program(c, op, a, b, len, rnd(&v->seed));
}

static void *load_main(void *arg)
{
	struct vmm *v = arg;
	unsigned polls = 0;

	for (;;) {
		mu_client_t *c;
		int r;

		pthread_mutex_lock(&v->lock);
		while (v->paused && !v->quit) {
			v->parked = true;
			pthread_cond_broadcast(&v->cv);
			pthread_cond_wait(&v->cv, &v->lock);
		}
		v->parked = false;
		c = v->cur;
		if (v->quit) {
			pthread_mutex_unlock(&v->lock);
			break;
		}
		pthread_mutex_unlock(&v->lock);

		if (!v->busy) {
			r = start_random(v, c);
			if (r == 0) {
				v->busy = true;
				v->started++;
				polls = 0;
			}
		} else {
			r = poll_done(c);
			if (r == 1) {
				v->busy = false;
				v->done++;
				r = 0;
			} else if (r == 0 && ++polls > POLL_LIMIT) {
				r = -ETIMEDOUT;
			}
		}
		if (r < 0) {
			pthread_mutex_lock(&v->lock);
			if (!v->err)
				v->err = r;
			v->parked = true; /* gone: nobody waits for it */
			pthread_cond_broadcast(&v->cv);
			pthread_mutex_unlock(&v->lock);
			break;
		}
	}
	return NULL;
}

int vmm_load_start(struct vmm *v, mu_client_t *c)
{
	int r;

	v->cur = c;
	v->quit = v->paused = v->parked = false;
	r = pthread_create(&v->thread, NULL, load_main, v);
	if (r)
		return -r;
	v->thread_started = true;
	return 0;
}

int vmm_load_stop(struct vmm *v)
{
	if (v->thread_started) {
		pthread_mutex_lock(&v->lock);
		v->quit = true;
		pthread_cond_broadcast(&v->cv);
		pthread_mutex_unlock(&v->lock);
		pthread_join(v->thread, NULL);
		v->thread_started = false;
	}
	return v->err;
}

int vmm_finish(struct vmm *v, mu_client_t *c)
{
	int r = 0;

	for (unsigned i = 0; v->busy && i < POLL_LIMIT; i++) {
		r = poll_done(c);
		if (r < 0)
			return r;
		if (r == 1) {
			v->busy = false;
			v->done++;
		}
	}
	return v->busy ? -ETIMEDOUT : 0;
}

int vmm_pause(struct vmm *v)
{
	pthread_mutex_lock(&v->lock);
	v->paused = true;
	while (v->thread_started && !v->parked)
		pthread_cond_wait(&v->cv, &v->lock);
	pthread_mutex_unlock(&v->lock);
	return 0;
}

void vmm_resume_on(struct vmm *v, mu_client_t *c)
{
	pthread_mutex_lock(&v->lock);
	if (c)
		v->cur = c;
	v->paused = false;
	pthread_cond_broadcast(&v->cv);
	pthread_mutex_unlock(&v->lock);
}

/* ---- migration callbacks ------------------------------------------------ */

int vmm_copy_ram(void *opaque, uint64_t iova, uint64_t len, uint64_t page_size,
		 const uint64_t *bitmap)
{
	struct vmm *v = opaque;
	uint64_t off = iova - VMM_IOVA;

	if (iova < VMM_IOVA || off > v->ram_size || len > v->ram_size - off)
		return -ERANGE;
	if (!bitmap) {
		memcpy(v->dst_ram + off, v->src_ram + off, len);
		return 0;
	}
	for (uint64_t p = 0; p * page_size < len; p++) {
		uint64_t n = len - p * page_size;

		if (!(bitmap[p / 64] >> (p % 64) & 1))
			continue;
		if (n > page_size)
			n = page_size;
		memcpy(v->dst_ram + off + p * page_size,
		       v->src_ram + off + p * page_size, n);
	}
	return 0;
}

int vmm_stop_vm(void *opaque)
{
	return vmm_pause(opaque);
}

void vmm_resume_vm(void *opaque)
{
	vmm_resume_on(opaque, NULL);
}

/* ---- device state -------------------------------------------------------- */

static const struct {
	uint32_t off;
	const char *name;
} state_regs[11] = {
	{DMAT_REG_SRC_LO, "SRC_LO"},
	{DMAT_REG_SRC_HI, "SRC_HI"},
	{DMAT_REG_DST_LO, "DST_LO"},
	{DMAT_REG_DST_HI, "DST_HI"},
	{DMAT_REG_LEN, "LEN"},
	{DMAT_REG_OP, "OP"},
	{DMAT_REG_FILL, "FILL"},
	{DMAT_REG_STATUS, "STATUS"},
	{DMAT_REG_RESULT, "RESULT"},
	{DMAT_REG_IRQ_CTRL, "IRQ_CTRL"},
	{DMAT_REG_COMPLETED, "COMPLETED"},
};

int vmm_snapshot(mu_client_t *c, struct vmm_snapshot *s)
{
	int r;

	for (unsigned i = 0; i < 11; i++)
		if ((r = rd(c, state_regs[i].off, &s->regs[i])) < 0)
			return r;
	return mu_client_region_read(c, BAR4, 0, s->bar4, sizeof(s->bar4));
}

const char *vmm_snapshot_diff(const struct vmm_snapshot *a,
			      const struct vmm_snapshot *b)
{
	for (unsigned i = 0; i < 11; i++)
		if (a->regs[i] != b->regs[i])
			return state_regs[i].name;
	return memcmp(a->bar4, b->bar4, sizeof(a->bar4)) ? "bar4" : NULL;
}

int vmm_fill_bar4(mu_client_t *c, uint32_t seed)
{
	uint32_t buf[DMAT_BAR4_SIZE / 4];

	seed = seed ? seed : 1;
	for (unsigned i = 0; i < DMAT_BAR4_SIZE / 4; i++)
		buf[i] = rnd(&seed);
	return mu_client_region_write(c, BAR4, 0, buf, sizeof(buf));
}
