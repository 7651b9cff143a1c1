/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * muser-dma-test - a small PCIe DMA engine as a vfio-user device.
 *
 * BAR0 registers describe an operation (copy, fill or CRC-32 over guest
 * memory); writing CMD hands it to a worker thread that moves the data
 * and raises MSI-X, MSI or INTx on completion. Guest memory the client
 * mapped with an fd is reached through mu_dma_addr_to_sg() +
 * mu_dma_sg_map() and touched in place (memmove, pattern stores, CRC on
 * the mapped pointers); fd-less maps go through mu_dma_read()/
 * mu_dma_write(), i.e. DMA_READ/DMA_WRITE messages of up to 1 MiB each
 * (libmuser splits them at the negotiated max_data_xfer_size). The
 * worker does all of it itself, with or without a twin socket (without
 * one, the serving thread routes the replies to it). The quiesce
 * callback holds map/unmap and reset until the worker is idle, and the
 * worker maps its pointers afresh for every piece of a job, so it never
 * holds one across a quiesce. BAR4 is mappable memory with a trapped
 * first page. See README.md.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crc32.h"
#include "dma-test.h"
#include "dmat.h"
#include "muser/device.h"
#include "sample.h"

/* ---- interrupts -------------------------------------------------------- */

/* INTx is a level: high while a completion is flagged in STATUS with
 * interrupts enabled, and the client has not picked MSI or MSI-X. */
void dmat_update_intx(struct dmat *d)
{
	int idx = mu_irq_active_index(d->dev);
	bool level;

	pthread_mutex_lock(&d->intx_lock);
	pthread_mutex_lock(&d->lock);
	level = (d->irq_ctrl & DMAT_IRQ_EN) &&
		(d->status & (DMAT_STATUS_DONE | DMAT_STATUS_ERROR)) &&
		idx != MU_PCI_MSI_IRQ_INDEX && idx != MU_PCI_MSIX_IRQ_INDEX;
	pthread_mutex_unlock(&d->lock);
	if (level != d->intx_level) {
		int r = mu_irq_set_intx(d->dev, level);

		if (r < 0 && r != -ENOENT && !d->quiet)
			fprintf(stderr, "%s: INTx: %s\n", sample_prog,
				strerror(-r));
		d->intx_level = level;
	}
	pthread_mutex_unlock(&d->intx_lock);
}

/* Completion: one message per operation on MSI-X (the vector in
 * IRQ_CTRL) or MSI, else the INTx level. */
static void signal_completion(struct dmat *d)
{
	int idx = mu_irq_active_index(d->dev);
	uint32_t ctrl, vec;

	pthread_mutex_lock(&d->lock);
	ctrl = d->irq_ctrl;
	pthread_mutex_unlock(&d->lock);
	if (!(ctrl & DMAT_IRQ_EN))
		return;
	if (idx == MU_PCI_MSIX_IRQ_INDEX || idx == MU_PCI_MSI_IRQ_INDEX) {
		vec = (ctrl & DMAT_IRQ_VECTOR_MASK) >> DMAT_IRQ_VECTOR_SHIFT;
		if (idx == MU_PCI_MSI_IRQ_INDEX || vec >= DMAT_MSIX_VECTORS)
			vec = 0;
		/* 1 = masked and left pending: the library replays it. */
		int r = mu_irq_notify(d->dev, vec);

		if (r < 0 && r != -ENOENT && !d->quiet)
			fprintf(stderr, "%s: interrupt: %s\n", sample_prog,
				strerror(-r));
		return;
	}
	dmat_update_intx(d);
}

/* ---- the engine ------------------------------------------------------- */

static bool aborted(struct dmat *d)
{
	bool a;

	pthread_mutex_lock(&d->lock);
	a = d->abort;
	pthread_mutex_unlock(&d->lock);
	return a;
}

/* Write `fill`'s pattern over p[0..n): byte i gets byte (phase + i) % 4
 * of fill (little-endian). No byte-by-byte loop over the data: memset
 * when the four bytes agree, else copies from the prepared d->pat. */
static void fill_pattern(struct dmat *d, uint8_t *p, size_t n, uint32_t fill,
			 unsigned phase)
{
	if (fill == (fill & 0xff) * 0x01010101u) {
		memset(p, (int)(fill & 0xff), n);
		return;
	}
	if (!d->pat_valid || d->pat_fill != fill) {
		for (size_t i = 0; i < PAT_BYTES; i += 4)
			memcpy(d->pat + i, &fill, 4);
		d->pat_fill = fill;
		d->pat_valid = true;
	}
	phase %= 4;
	while (n) {
		/* a multiple of 4 per copy keeps the phase */
		size_t k = n < PAT_BYTES - 4 ? n : PAT_BYTES - 4;

		memcpy(p, d->pat + phase, k);
		p += k;
		n -= k;
	}
}

/*
 * The first piece of [iova, iova + *n) that lies in one map: shrinks *n
 * to it and sets *ptr to the mapped memory, or NULL when the map has no
 * fd (then the caller uses messages). Negative errno when part of the
 * range is unmapped (-ENOENT) or lacks prot (-EACCES). The pointer is
 * good until the job ends (quiesce waits for that).
 */
static int map_piece(struct dmat *d, uint64_t iova, size_t *n, uint32_t prot,
		     uint8_t **ptr)
{
	struct mu_sg sg;
	struct iovec iov;
	int r = mu_dma_addr_to_sg(d->dev, iova, *n, prot, &sg, 1);

	if (r < 0)
		return r;
	if (sg.len < *n)
		*n = (size_t)sg.len;
	r = mu_dma_sg_map(d->dev, &sg, 1, &iov);
	if (r == -EFAULT) { /* no fd: DMA_READ/DMA_WRITE messages */
		*ptr = NULL;
		return 0;
	}
	if (r < 0)
		return r;
	*ptr = iov.iov_base;
	return 0;
}

/* Make buf[0 .. want) hold fill's pattern (phase 0). */
static void bounce_fill(struct dmat *d, uint32_t fill, size_t want)
{
	if (d->buf_fill != fill)
		d->buf_filled = 0;
	if (d->buf_filled >= want)
		return;
	fill_pattern(d, d->buf + d->buf_filled, want - d->buf_filled, fill,
		     (unsigned)d->buf_filled);
	d->buf_fill = fill;
	d->buf_filled = want;
}

/* mu_dma_* result -> STATUS (0: go on). */
static uint32_t dma_status(int r, int code, uint32_t *result)
{
	*result = (uint32_t)-r;
	return DMAT_STATUS_ERR(code);
}

/* A source piece with no mapping comes in by message, into the bounce
 * buffer (which then no longer holds a fill pattern). */
static int bounce_src(struct dmat *d, uint64_t iova, size_t n, uint8_t **src)
{
	int r;

	if (*src)
		return 0;
	d->buf_filled = 0;
	r = mu_dma_read(d->dev, iova, d->buf, n);
	if (r < 0)
		return r;
	*src = d->buf;
	return 0;
}

/* Run a job; returns the STATUS bits and sets *result. */
static uint32_t run_job(struct dmat *d, const struct job *j, uint32_t *result)
{
	uint64_t done = 0;
	uint32_t crc = 0;
	int r;

	*result = 0;
	if (j->op < DMAT_OP_COPY || j->op > DMAT_OP_CHECKSUM)
		return DMAT_STATUS_ERR(DMAT_ERR_BAD_OP);
	if (j->len > DMAT_MAX_LEN)
		return DMAT_STATUS_ERR(DMAT_ERR_BAD_LEN);

	while (done < j->len) {
		size_t n =
			j->len - done < MAP_PIECE ? j->len - done : MAP_PIECE;
		uint8_t *src = NULL, *dst = NULL;
		unsigned phase = (unsigned)(done % 4);

		if (aborted(d))
			return DMAT_STATUS_ERR(DMAT_ERR_ABORTED);
		if (j->op != DMAT_OP_FILL) {
			r = map_piece(d, j->src + done, &n, MU_DMA_READ, &src);
			if (r < 0)
				return dma_status(r, DMAT_ERR_DMA_READ, result);
		}
		if (j->op != DMAT_OP_CHECKSUM) {
			r = map_piece(d, j->dst + done, &n, MU_DMA_WRITE, &dst);
			if (r < 0)
				return dma_status(r, DMAT_ERR_DMA_WRITE,
						  result);
		}
		if ((j->op != DMAT_OP_FILL && !src) ||
		    (j->op != DMAT_OP_CHECKSUM && !dst))
			n = n < MSG_CHUNK ? n : MSG_CHUNK;

		switch (j->op) {
		case DMAT_OP_COPY:
			if (src && dst) {
				memmove(dst, src, n);
				mu_dma_mark_dirty(d->dev, j->dst + done, n);
				break;
			}
			if (dst) { /* message source, straight into memory */
				r = mu_dma_read(d->dev, j->src + done, dst, n);
				if (r < 0)
					return dma_status(r, DMAT_ERR_DMA_READ,
							  result);
				mu_dma_mark_dirty(d->dev, j->dst + done, n);
				break;
			}
			r = bounce_src(d, j->src + done, n, &src);
			if (r < 0)
				return dma_status(r, DMAT_ERR_DMA_READ, result);
			r = mu_dma_write(d->dev, j->dst + done, src, n);
			if (r < 0)
				return dma_status(r, DMAT_ERR_DMA_WRITE,
						  result);
			break;
		case DMAT_OP_FILL:
			if (dst) {
				fill_pattern(d, dst, n, j->fill, phase);
				mu_dma_mark_dirty(d->dev, j->dst + done, n);
				break;
			}
			bounce_fill(d, j->fill, phase + n);
			r = mu_dma_write(d->dev, j->dst + done, d->buf + phase,
					 n);
			if (r < 0)
				return dma_status(r, DMAT_ERR_DMA_WRITE,
						  result);
			break;
		default: /* DMAT_OP_CHECKSUM */
			r = bounce_src(d, j->src + done, n, &src);
			if (r < 0)
				return dma_status(r, DMAT_ERR_DMA_READ, result);
			crc = sample_crc32(crc, src, n);
			break;
		}
		done += n;
	}
	if (j->op == DMAT_OP_CHECKSUM)
		*result = crc;
	return DMAT_STATUS_DONE;
}

static const char *op_name(uint32_t op)
{
	switch (op) {
	case DMAT_OP_COPY:
		return "copy";
	case DMAT_OP_FILL:
		return "fill";
	case DMAT_OP_CHECKSUM:
		return "checksum";
	default:
		return "bad-op";
	}
}

/* Publish the outcome of a job. Called with d->lock held; drops it. */
static void finish_job(struct dmat *d, const struct job *j, uint32_t st,
		       uint32_t result)
{
	bool quiesce;

	d->status = st;
	d->result = result;
	d->completed++;
	d->abort = false;
	d->state = JOB_IDLE;
	quiesce = d->quiesce_pending;
	d->quiesce_pending = false;
	pthread_cond_broadcast(&d->idle);
	pthread_mutex_unlock(&d->lock);

	if (!d->quiet)
		printf("%s src=0x%" PRIx64 " dst=0x%" PRIx64 " len=%" PRIu32
		       ": %s status=0x%x result=0x%08x\n",
		       op_name(j->op), j->src, j->dst, j->len,
		       st & DMAT_STATUS_ERROR ? "error" : "done", st, result);
	signal_completion(d);
	if (quiesce)
		mu_dev_quiesce_done(d->dev, 0);
}

static void *worker(void *arg)
{
	struct dmat *d = arg;

	pthread_mutex_lock(&d->lock);
	for (;;) {
		struct job j;
		uint32_t st, result;

		/* A job queued while migration stopped the device waits
		 * for RUNNING (here or on the destination, migrate.c). */
		while (!d->stop && (d->state != JOB_QUEUED || !d->running))
			pthread_cond_wait(&d->wake, &d->lock);
		if (d->stop)
			break;
		j = d->job;
		d->state = JOB_RUNNING;
		pthread_mutex_unlock(&d->lock);

		st = run_job(d, &j, &result);

		pthread_mutex_lock(&d->lock);
		finish_job(d, &j, st, result);
		pthread_mutex_lock(&d->lock);
	}
	pthread_mutex_unlock(&d->lock);
	return NULL;
}

void dmat_kick(struct dmat *d)
{
	pthread_mutex_lock(&d->lock);
	pthread_cond_signal(&d->wake);
	pthread_mutex_unlock(&d->lock);
}

/* Called with d->lock held. */
static void start_job(struct dmat *d)
{
	if (d->status & DMAT_STATUS_BUSY)
		return; /* documented: ignored while busy */
	d->job = (struct job){.src = d->src,
			      .dst = d->dst,
			      .len = d->len,
			      .op = d->op,
			      .fill = d->fill};
	d->status = DMAT_STATUS_BUSY;
	d->result = 0;
	d->state = JOB_QUEUED;
	pthread_cond_signal(&d->wake);
}

/* ---- BAR0 --------------------------------------------------------------- */

static uint32_t reg_read(struct dmat *d, uint64_t off)
{
	switch (off) {
	case DMAT_REG_MAGIC:
		return DMAT_MAGIC;
	case DMAT_REG_CAPS:
		return DMAT_MSIX_VECTORS | DMAT_VERSION << 8 |
		       (DMAT_MAX_LEN >> 20) << 16;
	case DMAT_REG_SRC_LO:
		return (uint32_t)d->src;
	case DMAT_REG_SRC_HI:
		return (uint32_t)(d->src >> 32);
	case DMAT_REG_DST_LO:
		return (uint32_t)d->dst;
	case DMAT_REG_DST_HI:
		return (uint32_t)(d->dst >> 32);
	case DMAT_REG_LEN:
		return d->len;
	case DMAT_REG_OP:
		return d->op;
	case DMAT_REG_FILL:
		return d->fill;
	case DMAT_REG_STATUS:
		return d->status;
	case DMAT_REG_RESULT:
		return d->result;
	case DMAT_REG_IRQ_CTRL:
		return d->irq_ctrl;
	case DMAT_REG_COMPLETED:
		return d->completed;
	case DMAT_REG_SCRATCH:
		return d->scratch;
	case DMAT_REG_BAR4_TRAPS:
		return d->bar4_traps;
	default:
		return 0;
	}
}

/* Returns true when the INTx level may have changed. */
static bool reg_write(struct dmat *d, uint64_t off, uint32_t v)
{
	switch (off) {
	case DMAT_REG_SRC_LO:
		d->src = (d->src & ~0xffffffffull) | v;
		break;
	case DMAT_REG_SRC_HI:
		d->src = (d->src & 0xffffffffull) | (uint64_t)v << 32;
		break;
	case DMAT_REG_DST_LO:
		d->dst = (d->dst & ~0xffffffffull) | v;
		break;
	case DMAT_REG_DST_HI:
		d->dst = (d->dst & 0xffffffffull) | (uint64_t)v << 32;
		break;
	case DMAT_REG_LEN:
		d->len = v;
		break;
	case DMAT_REG_OP:
		d->op = v;
		break;
	case DMAT_REG_FILL:
		d->fill = v;
		break;
	case DMAT_REG_CMD:
		if (v & DMAT_CMD_START) {
			start_job(d);
			return true; /* DONE/ERROR were cleared */
		}
		break;
	case DMAT_REG_STATUS:
		v &= DMAT_STATUS_DONE | DMAT_STATUS_ERROR;
		if (v & DMAT_STATUS_ERROR)
			v |= DMAT_STATUS_CODE_MASK;
		d->status &= ~v;
		return true;
	case DMAT_REG_IRQ_CTRL:
		d->irq_ctrl = v & (DMAT_IRQ_EN | DMAT_IRQ_VECTOR_MASK);
		return true;
	case DMAT_REG_SCRATCH:
		d->scratch = v;
		break;
	default:
		break; /* read-only or unused */
	}
	return false;
}

static ssize_t bar0_access(void *opaque, unsigned region, uint64_t offset,
			   void *buf, size_t count, bool is_write)
{
	struct dmat *d = opaque;
	uint8_t *p = buf;
	bool intx = false;

	(void)region;
	if ((count != 4 && count != 8) || offset % 4)
		return -EINVAL;
	pthread_mutex_lock(&d->lock);
	/* A 64-bit access is two 32-bit ones, low half first. */
	for (size_t i = 0; i < count; i += 4) {
		uint32_t v;

		if (is_write) {
			memcpy(&v, p + i, 4);
			intx |= reg_write(d, offset + i, v);
		} else {
			v = reg_read(d, offset + i);
			memcpy(p + i, &v, 4);
		}
	}
	pthread_mutex_unlock(&d->lock);
	if (intx)
		dmat_update_intx(d);
	return (ssize_t)count;
}

/* The rest of the MSI-X BAR: nothing there. */
static ssize_t bar2_access(void *opaque, unsigned region, uint64_t offset,
			   void *buf, size_t count, bool is_write)
{
	(void)opaque, (void)region, (void)offset;
	if (!is_write)
		memset(buf, 0, count);
	return (ssize_t)count;
}

/* Only page 0 of BAR4 comes here (the rest is a sparse mmap area): it
 * behaves as memory but counts each access, so a client can tell a
 * trapped access from a mapped one. */
static ssize_t bar4_access(void *opaque, unsigned region, uint64_t offset,
			   void *buf, size_t count, bool is_write)
{
	struct dmat *d = opaque;
	uint8_t *mem = mu_region_mem(d->dev, region);

	if (!mem)
		return -EIO;
	pthread_mutex_lock(&d->lock);
	if (is_write)
		memcpy(mem + offset, buf, count);
	else
		memcpy(buf, mem + offset, count);
	d->bar4_traps++;
	pthread_mutex_unlock(&d->lock);
	return (ssize_t)count;
}

/* ---- callbacks ------------------------------------------------------ */

static int dev_quiesce(void *opaque)
{
	struct dmat *d = opaque;
	int r = 0;

	pthread_mutex_lock(&d->lock);
	/* A job queued while stopped is not touched until RUNNING. */
	if (d->state == JOB_RUNNING || (d->state == JOB_QUEUED && d->running)) {
		/* The worker calls mu_dev_quiesce_done() when it finishes
		 * the job. */
		d->quiesce_pending = true;
		r = -EBUSY;
	}
	pthread_mutex_unlock(&d->lock);
	return r;
}

static int dev_reset(void *opaque, enum mu_reset_reason why)
{
	struct dmat *d = opaque;
	bool aborted_job = false;

	pthread_mutex_lock(&d->lock);
	/* Normally quiesced already; if not, stop the worker and wait. */
	if (d->state == JOB_RUNNING) {
		d->abort = true;
		while (d->state == JOB_RUNNING)
			pthread_cond_wait(&d->idle, &d->lock);
	}
	if (d->state == JOB_QUEUED) {
		d->state = JOB_IDLE;
		d->status = DMAT_STATUS_ERR(DMAT_ERR_ABORTED);
		d->completed++;
		aborted_job = true;
	}
	d->abort = false;
	d->quiesce_pending = false;
	/* A client leaving is not a reset of the function: registers stay
	 * for the next one (the running job, if any, was stopped above). */
	if (why != MU_RESET_LOST_CONN) {
		/* the library is back in RUNNING too (a lost connection
		 * keeps the migration state, docs/protocol.md 9) */
		d->running = true;
		d->src = d->dst = 0;
		d->len = d->op = d->fill = 0;
		d->status = d->result = d->irq_ctrl = d->completed = 0;
		d->scratch = 0;
	}
	pthread_mutex_unlock(&d->lock);
	if (why != MU_RESET_LOST_CONN)
		dmat_mig_free(d);
	dmat_update_intx(d);
	if (!d->quiet)
		printf("reset (reason %d)%s\n", why,
		       aborted_job ? ": operation aborted" : "");
	return 0;
}

static void dev_dma_map(void *opaque, const struct mu_dma_region *r)
{
	struct dmat *d = opaque;

	if (!d->quiet)
		printf("dma map iova=0x%" PRIx64 " size=0x%" PRIx64 " %s\n",
		       r->iova, r->size, r->vaddr ? "mmapped" : "messages");
}

static void dev_dma_unmap(void *opaque, const struct mu_dma_region *r)
{
	struct dmat *d = opaque;

	if (!d->quiet)
		printf("dma unmap iova=0x%" PRIx64 " size=0x%" PRIx64 "\n",
		       r->iova, r->size);
}

static void dev_irq_state(void *opaque, unsigned index, uint32_t start,
			  uint32_t count, bool enabled)
{
	(void)index, (void)start, (void)count, (void)enabled;
	/* Switching between INTx and MSI/MSI-X changes the INTx level. */
	dmat_update_intx(opaque);
}

/* ---- setup and main ------------------------------------------------- */

SAMPLE_FLAG_OPT(opt_quiet, struct dmat, quiet)
SAMPLE_FLAG_OPT(opt_blocking, struct dmat, blocking)

static int opt_pci_id(void *ctx, const char *arg)
{
	struct dmat *d = ctx;

	return sample_parse_pci_id(arg, &d->vendor, &d->device);
}

static const struct sample_opt options[] = {
	{"pci-id", true, "VVVV:DDDD", "vendor and device ID (7e57:0001)",
	 opt_pci_id},
	{"blocking", false, NULL, "serve with mu_dev_run() (fewest syscalls)",
	 opt_blocking},
	{"quiet", false, NULL, "don't print operations and DMA maps",
	 opt_quiet},
};

static int setup(struct dmat *d)
{
	const struct mu_pci_id id = {
		.vendor_id = d->vendor,
		.device_id = d->device,
		.subsys_vendor_id = d->vendor,
		.subsys_id = d->device,
		.class_code = DMAT_CLASS,
		.revision = DMAT_VERSION,
	};
	const struct mu_region_desc bar0 = {
		.struct_size = sizeof(bar0),
		.size = DMAT_BAR0_SIZE,
		.flags = MU_REGION_RW,
		.access = bar0_access,
	};
	const struct mu_region_desc bar2 = {
		.struct_size = sizeof(bar2),
		.size = DMAT_BAR2_SIZE,
		.flags = MU_REGION_RW,
		.access = bar2_access,
	};
	static const struct mu_sparse_mmap_area bar4_sparse = {
		.offset = DMAT_BAR4_MMAP_OFF,
		.size = DMAT_BAR4_MMAP_SIZE,
	};
	const struct mu_region_desc bar4 = {
		.struct_size = sizeof(bar4),
		.size = DMAT_BAR4_SIZE,
		.flags = MU_REGION_RW | MU_REGION_MEM | MU_REGION_BAR_64 |
			 MU_REGION_BAR_PREFETCH,
		.access = bar4_access,
		.sparse = &bar4_sparse,
		.nr_sparse = 1,
	};
	const struct mu_dev_callbacks cb = {
		.struct_size = sizeof(cb),
		.reset = dev_reset,
		.quiesce = dev_quiesce,
		.dma_map = dev_dma_map,
		.dma_unmap = dev_dma_unmap,
		.irq_state = dev_irq_state,
		.mig_transition = dmat_mig_transition,
		.mig_read = dmat_mig_read,
		.mig_write = dmat_mig_write,
		.mig_flags = MU_MIGRATION_PRE_COPY,
	};
	const char *what;
	int r;

#define STEP(call)                                                             \
	do {                                                                   \
		what = #call;                                                  \
		if ((r = (call)) < 0)                                          \
			goto fail;                                             \
	} while (0)
	STEP(mu_pci_setup(d->dev, &id, MU_PCI_EXPRESS));
	STEP(mu_pci_set_intx_pin(d->dev, 1));
	STEP(mu_dev_setup_region(d->dev, MU_PCI_BAR0_REGION_INDEX, &bar0));
	STEP(mu_dev_setup_region(d->dev, MU_PCI_BAR2_REGION_INDEX, &bar2));
	STEP(mu_dev_setup_region(d->dev, MU_PCI_BAR4_REGION_INDEX, &bar4));
	STEP(mu_pci_add_pm_cap(d->dev));
	STEP(mu_pci_add_msi_cap(d->dev, 1, true, true));
	STEP(mu_pci_add_express_cap(d->dev, MU_PCIE_ENDPOINT));
	STEP(mu_pci_add_msix_cap(d->dev, DMAT_MSIX_VECTORS,
				 MU_PCI_BAR2_REGION_INDEX, DMAT_MSIX_TABLE_OFF,
				 MU_PCI_BAR2_REGION_INDEX, DMAT_MSIX_PBA_OFF));
	STEP(mu_pci_add_dsn_cap(d->dev, 0x6d75736572000001ull));
	STEP(mu_dev_setup_irq(d->dev, MU_PCI_INTX_IRQ_INDEX, 1));
	STEP(mu_dev_set_callbacks(d->dev, &cb));
	STEP(mu_dev_realize(d->dev));
#undef STEP
	return 0;
fail:
	fprintf(stderr, "%s: %s: %s\n", sample_prog, what, strerror(-r));
	return r;
}

int main(int argc, char **argv)
{
	struct dmat d = {
		.vendor = DMAT_VENDOR, .device = DMAT_DEVICE, .running = true};
	struct sample_args args;
	int r, sigfd;

	setvbuf(stdout, NULL, _IOLBF, 0);
	r = sample_parse_args(argc, argv,
			      "A PCIe DMA engine (copy, fill, CRC-32) with "
			      "MSI-X, as a vfio-user device.",
			      options, sizeof(options) / sizeof(options[0]), &d,
			      &args);
	if (r)
		return r > 0 ? 0 : 2;
	pthread_mutex_init(&d.lock, NULL);
	pthread_mutex_init(&d.intx_lock, NULL);
	pthread_cond_init(&d.wake, NULL);
	pthread_cond_init(&d.idle, NULL);
	d.buf = malloc(MSG_CHUNK + 4);
	if (!d.buf) {
		fprintf(stderr, "%s: out of resources\n", sample_prog);
		return 1;
	}
	sigfd = sample_signals_init(NULL, NULL, 0);
	if (sigfd < 0 || sample_dev_create(&args, &d.dev, &d) < 0) {
		free(d.buf);
		return 1;
	}
	sample_signals_set_dev(d.dev);
	r = setup(&d);
	if (r == 0) /* before the worker: namespaces want one thread */
		r = sample_sandbox(&args, d.dev, NULL, NULL);
	if (r == 0) {
		/* Signals go to the serving thread, not the worker. */
		sigset_t all, old;

		sigfillset(&all);
		pthread_sigmask(SIG_BLOCK, &all, &old);
		r = pthread_create(&d.thread, NULL, worker, &d);
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		if (r) {
			fprintf(stderr, "%s: thread: %s\n", sample_prog,
				strerror(r));
			r = -r;
		} else {
			d.thread_started = true;
		}
	}
	if (r == 0) {
		if (!d.quiet && args.socket_path)
			printf("listening on %s\n", args.socket_path);
		r = d.blocking ? sample_run_blocking(d.dev)
			       : sample_serve(d.dev, sigfd);
	}
	if (d.thread_started) {
		pthread_mutex_lock(&d.lock);
		d.stop = true;
		d.abort = true;
		pthread_cond_signal(&d.wake);
		pthread_mutex_unlock(&d.lock);
		pthread_join(d.thread, NULL);
	}
	sample_signals_fini();
	mu_dev_destroy(d.dev);
	dmat_mig_free(&d);
	free(d.buf);
	return r < 0 ? 1 : 0;
}
