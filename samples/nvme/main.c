/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * muser-nvme - an NVM Express controller as a vfio-user device, backed by
 * a file or block device, that Linux's nvme driver binds to and uses.
 *
 * This file: options, the PCI function (class 01:08:02, BAR0 registers
 * and doorbells, BAR4 the MSI-X table and PBA, a vector per queue, INTx
 * as fallback), libmuser's callbacks and the serving loop. ctrl.h says
 * which file does what.
 *
 * Quiesce. libmuser calls quiesce before it changes the DMA maps or
 * resets the device; the workers then stop taking commands and the last
 * one to finish its command reports the device quiesced. libmuser has no
 * "resume" call, so the workers start again at the first sign that the
 * operation is over: the dma_map or reset callback, the dma_unmap
 * callback (see below), or any BAR access, which libmuser never serves
 * while a quiesced operation is pending. The dma_unmap callback comes
 * before the window is gone, so it records the window as "dying" and
 * lets the workers go on: they never turn a dying window into pointers
 * (they use mu_dma_read/mu_dma_write there, which wait for the unmap or
 * fail cleanly), and the record is dropped at the next of those signs.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "ctrl.h"
#include "sample.h"

struct opts {
	struct nvme_ctrl *c;
	const char *backing;
	unsigned block_size;
	const char *serial;
	uint16_t vendor, device;
};

/* ---- quiesce, DMA windows, reset --------------------------------------------
 */

void nvme_resume_locked(struct nvme_ctrl *c)
{
	atomic_store(&c->nr_dying, 0);
	if (c->paused) {
		c->paused = false;
		nvme_wake_all_locked(c);
		/* The host may have written shadow doorbells meanwhile. */
		nvme_dbbuf_kick_locked(c);
	}
}

bool nvme_dma_dying(struct nvme_ctrl *c, uint64_t iova, uint64_t len)
{
	bool hit = false;

	if (!atomic_load(&c->nr_dying))
		return false;
	pthread_mutex_lock(&c->lock);
	for (unsigned i = 0; i < atomic_load(&c->nr_dying) && !hit; i++)
		hit = iova < c->dying[i].iova + c->dying[i].size &&
		      c->dying[i].iova < iova + len;
	pthread_mutex_unlock(&c->lock);
	return hit;
}

static int dev_quiesce(void *opaque)
{
	struct nvme_ctrl *c = opaque;
	int r = 0;

	pthread_mutex_lock(&c->lock);
	c->paused = true;
	if (c->busy) {
		/* The worker that finishes the last command calls
		 * mu_dev_quiesce_done() (queue.c). */
		c->quiesce_pending = true;
		r = -EBUSY;
		nvme_wake_all_locked(c); /* a polling worker stops now */
	}
	pthread_mutex_unlock(&c->lock);
	return r;
}

static void dev_dma_map(void *opaque, const struct mu_dma_region *r)
{
	struct nvme_ctrl *c = opaque;

	pthread_mutex_lock(&c->lock);
	nvme_resume_locked(c);
	/* A shadow doorbell read may have failed while it was unmapped. */
	nvme_dbbuf_kick_locked(c);
	pthread_mutex_unlock(&c->lock);
	if (!c->quiet)
		printf("dma map iova=0x%" PRIx64 " size=0x%" PRIx64 " %s\n",
		       r->iova, r->size, r->vaddr ? "mmapped" : "messages");
}

static void dev_dma_unmap(void *opaque, const struct mu_dma_region *r)
{
	struct nvme_ctrl *c = opaque;
	unsigned n;

	pthread_mutex_lock(&c->lock);
	n = atomic_load(&c->nr_dying);
	if (n < NVME_MAX_DYING) {
		c->dying[n].iova = r->iova;
		c->dying[n].size = r->size;
		atomic_store(&c->nr_dying, n + 1);
		c->paused = false;
	} /* else stay paused until the operation is over */
	/* Workers go on (see above). A polling worker holds pointers into
	 * guest memory for a while (queue.c); woken, it stops, and the
	 * window must not go before it has. */
	nvme_wake_all_locked(c);
	while (c->db.poller)
		pthread_cond_wait(&c->idle, &c->lock);
	pthread_mutex_unlock(&c->lock);
	if (!c->quiet)
		printf("dma unmap iova=0x%" PRIx64 " size=0x%" PRIx64 "\n",
		       r->iova, r->size);
}

static int dev_reset(void *opaque, enum mu_reset_reason why)
{
	struct nvme_ctrl *c = opaque;
	struct timespec until;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 6; /* past libmuser's 5 s DMA reply timeout */
	pthread_mutex_lock(&c->lock);
	/* Normally quiesced already; wait for stragglers anyway. */
	c->paused = true;
	nvme_wake_all_locked(c); /* a polling worker stops now */
	while (c->busy &&
	       pthread_cond_timedwait(&c->idle, &c->lock, &until) == 0) {
	}
	/* A lost client resets the controller too: its queues live in
	 * the memory of a VM that is gone, and every driver starts by
	 * disabling the controller anyway. */
	nvme_ctrl_reset_locked(c);
	nvme_resume_locked(c);
	pthread_mutex_unlock(&c->lock);
	nvme_update_intx(c);
	if (!c->quiet)
		printf("reset (reason %d)\n", why);
	return 0;
}

static void dev_irq_state(void *opaque, unsigned index, uint32_t start,
			  uint32_t count, bool enabled)
{
	(void)index, (void)start, (void)count, (void)enabled;
	/* Moving between INTx and MSI-X changes who carries interrupts. */
	nvme_update_intx(opaque);
}

/* BAR4 outside the MSI-X table and PBA (which libmuser emulates). */
static ssize_t bar4_access(void *opaque, unsigned region, uint64_t offset,
			   void *buf, size_t count, bool is_write)
{
	(void)opaque, (void)region, (void)offset;
	if (!is_write)
		memset(buf, 0, count);
	return (ssize_t)count;
}

/* ---- options
 * ------------------------------------------------------------------ */

static int opt_backing(void *ctx, const char *arg)
{
	((struct opts *)ctx)->backing = arg;
	return 0;
}

static int opt_block_size(void *ctx, const char *arg)
{
	uint64_t v;

	if (sample_parse_u64(arg, 4096, &v) < 0 || (v != 512 && v != 4096)) {
		fprintf(stderr, "%s: --block-size must be 512 or 4096\n",
			sample_prog);
		return -EINVAL;
	}
	((struct opts *)ctx)->block_size = (unsigned)v;
	return 0;
}

static int opt_queues(void *ctx, const char *arg)
{
	uint64_t v;

	if (sample_parse_u64(arg, NVME_MAX_IOQ, &v) < 0 || v < 1) {
		fprintf(stderr, "%s: --queues must be 1..%u\n", sample_prog,
			NVME_MAX_IOQ);
		return -EINVAL;
	}
	((struct opts *)ctx)->c->max_ioq = (unsigned)v;
	return 0;
}

static int opt_threads(void *ctx, const char *arg)
{
	uint64_t v;

	if (sample_parse_u64(arg, 16, &v) < 0 || v < 1) {
		fprintf(stderr, "%s: --threads must be 1..16\n", sample_prog);
		return -EINVAL;
	}
	((struct opts *)ctx)->c->nr_workers = (unsigned)v;
	return 0;
}

static int opt_poll_us(void *ctx, const char *arg)
{
	uint64_t v;

	if (sample_parse_u64(arg, 1000000, &v) < 0) {
		fprintf(stderr, "%s: --poll-us must be 0..1000000\n",
			sample_prog);
		return -EINVAL;
	}
	((struct opts *)ctx)->c->poll_us = (unsigned)v;
	return 0;
}

static int opt_serial(void *ctx, const char *arg)
{
	size_t n = strlen(arg);

	for (size_t i = 0; i < n; i++)
		if (arg[i] < 0x21 || arg[i] > 0x7e)
			n = 0;
	if (n == 0 || n > 20) {
		fprintf(stderr,
			"%s: --serial takes 1 to 20 printable ASCII "
			"characters\n",
			sample_prog);
		return -EINVAL;
	}
	((struct opts *)ctx)->serial = arg;
	return 0;
}

static int opt_pci_id(void *ctx, const char *arg)
{
	struct opts *o = ctx;

	return sample_parse_pci_id(arg, &o->vendor, &o->device);
}

static int opt_quiet(void *ctx, const char *arg)
{
	(void)arg;
	((struct opts *)ctx)->c->quiet = true;
	return 0;
}

static int opt_no_dbbuf(void *ctx, const char *arg)
{
	(void)arg;
	((struct opts *)ctx)->c->no_dbbuf = true;
	return 0;
}

static const struct sample_opt options[] = {
	{"backing", true, "PATH", "file or block device holding namespace 1",
	 opt_backing},
	{"block-size", true, "N", "logical block size: 512 (default) or 4096",
	 opt_block_size},
	{"queues", true, "N", "I/O queue pairs offered, 1..64 (4)", opt_queues},
	{"threads", true, "N", "worker threads, 1..16 (2)", opt_threads},
	{"poll-us", true, "US",
	 "with shadow doorbells, poll them this long after the host last "
	 "added a command (300; 0: never)",
	 opt_poll_us},
	{"serial", true, "STR", "serial number (default: from the backing)",
	 opt_serial},
	{"pci-id", true, "VVVV:DDDD", "vendor and device ID (7e57:0002)",
	 opt_pci_id},
	{"no-shadow-doorbells", false, NULL,
	 "no Doorbell Buffer Config (every doorbell is a register write)",
	 opt_no_dbbuf},
	{"quiet", false, NULL, "print nothing but errors", opt_quiet},
};

/* ---- identity
 * ---------------------------------------------------------------- */

static uint64_t fnv1a(const void *p, size_t n, uint64_t h)
{
	const uint8_t *b = p;

	while (n--)
		h = (h ^ *b++) * 0x100000001b3ull;
	return h;
}

/* Serial, NGUID and EUI-64 from the backing file's identity, so two
 * devices on two files never look like one namespace to Linux (which
 * refuses duplicate identifiers). */
static void make_ids(struct nvme_ctrl *c, const char *serial)
{
	struct stat st;
	uint64_t h, h2;

	if (fstat(c->b.fd, &st) < 0)
		memset(&st, 0, sizeof(st));
	h = fnv1a(&st.st_dev, sizeof(st.st_dev), 0xcbf29ce484222325ull);
	h = fnv1a(&st.st_ino, sizeof(st.st_ino), h);
	if (serial)
		snprintf(c->serial, sizeof(c->serial), "%s", serial);
	else
		snprintf(c->serial, sizeof(c->serial), "MU%016" PRIx64, h);
	h = fnv1a(c->serial, strlen(c->serial), 0xcbf29ce484222325ull);
	h2 = fnv1a(&h, sizeof(h), h);
	memcpy(c->nguid, &h, 8);
	memcpy(c->nguid + 8, &h2, 8);
	/* An IEEE-style EUI-64 with a locally administered OUI. */
	c->eui64[0] = 0x02;
	memcpy(c->eui64 + 1, &h2, 7);
}

/* ---- setup and main
 * ---------------------------------------------------------- */

static int setup(struct nvme_ctrl *c, const struct opts *o)
{
	const struct mu_pci_id id = {
		.vendor_id = o->vendor,
		.device_id = o->device,
		.subsys_vendor_id = o->vendor,
		.subsys_id = o->device,
		.class_code = NVME_PCI_CLASS,
		.revision = 1,
	};
	const struct mu_region_desc bar0 = {
		.struct_size = sizeof(bar0),
		.size = NVME_BAR0_SIZE,
		.flags = MU_REGION_RW | MU_REGION_BAR_64,
		.access = nvme_bar0_access,
	};
	const struct mu_region_desc bar4 = {
		.struct_size = sizeof(bar4),
		.size = NVME_BAR4_SIZE,
		.flags = MU_REGION_RW,
		.access = bar4_access,
	};
	const struct mu_dev_callbacks cb = {
		.struct_size = sizeof(cb),
		.reset = dev_reset,
		.quiesce = dev_quiesce,
		.dma_map = dev_dma_map,
		.dma_unmap = dev_dma_unmap,
		.irq_state = dev_irq_state,
	};
	const char *what;
	int r;

#define STEP(call)                                                             \
	do {                                                                   \
		what = #call;                                                  \
		if ((r = (call)) < 0)                                          \
			goto fail;                                             \
	} while (0)
	STEP(mu_pci_setup(c->dev, &id, MU_PCI_EXPRESS));
	STEP(mu_pci_set_intx_pin(c->dev, 1));
	STEP(mu_dev_setup_region(c->dev, MU_PCI_BAR0_REGION_INDEX, &bar0));
	STEP(mu_dev_setup_region(c->dev, MU_PCI_BAR4_REGION_INDEX, &bar4));
	STEP(mu_pci_add_pm_cap(c->dev));
	STEP(mu_pci_add_express_cap(c->dev, MU_PCIE_ENDPOINT));
	/* One vector per queue, the admin queue's included. */
	STEP(mu_pci_add_msix_cap(c->dev, c->max_ioq + 1,
				 MU_PCI_BAR4_REGION_INDEX, 0,
				 MU_PCI_BAR4_REGION_INDEX, NVME_MSIX_PBA_OFF));
	STEP(mu_dev_setup_irq(c->dev, MU_PCI_INTX_IRQ_INDEX, 1));
	STEP(mu_dev_set_callbacks(c->dev, &cb));
	STEP(mu_dev_realize(c->dev));
#undef STEP
	return 0;
fail:
	fprintf(stderr, "%s: %s: %s\n", sample_prog, what, strerror(-r));
	return r;
}

static void ctrl_init(struct nvme_ctrl *c)
{
	pthread_mutex_init(&c->lock, NULL);
	pthread_mutex_init(&c->intx_lock, NULL);
	pthread_cond_init(&c->idle, NULL);
	for (unsigned i = 0; i <= NVME_MAX_IOQ; i++)
		pthread_mutex_init(&c->cq[i].post, NULL);
	/* CAP (3.1.1): MQES, contiguous queues required, 16 s timeout
	 * (CSTS.RDY waits for commands in flight), doorbell stride 4, NVM
	 * command set, 4 KiB pages only. */
	c->cap = NVME_CAP_MQES(NVME_MQES) | NVME_CAP_CQR | NVME_CAP_TO(32) |
		 NVME_CAP_CSS_NVM | NVME_CAP_MPSMIN(0) | NVME_CAP_MPSMAX(0);
	nvme_ctrl_reset_locked(c);
}

int main(int argc, char **argv)
{
	static struct nvme_ctrl ctrl = {
		.max_ioq = 4, .nr_workers = 2, .poll_us = 300};
	struct nvme_ctrl *c = &ctrl;
	struct opts o = {.c = c,
			 .block_size = 512,
			 .vendor = NVME_PCI_VENDOR,
			 .device = NVME_PCI_DEVICE};
	struct sample_args args;
	int r, sigfd;

	setvbuf(stdout, NULL, _IOLBF, 0);
	r = sample_parse_args(argc, argv,
			      "An NVMe controller backed by a file or block "
			      "device, as a vfio-user device.",
			      options, sizeof(options) / sizeof(options[0]), &o,
			      &args);
	if (r)
		return r > 0 ? 0 : 2;
	if (!o.backing) {
		fprintf(stderr, "%s: --backing=PATH is required\n",
			sample_prog);
		return 2;
	}
	r = nvme_backing_open(&c->b, o.backing, o.block_size);
	if (r < 0) {
		fprintf(stderr, "%s: %s: %s\n", sample_prog, o.backing,
			r == -ENOSPC   ? "smaller than one block"
			: r == -EINVAL ? "not a file or block device"
				       : strerror(-r));
		return 1;
	}
	make_ids(c, o.serial);
	ctrl_init(c);
	sigfd = sample_signals_init(NULL, NULL, 0);
	if (sigfd < 0 || sample_dev_create(&args, &c->dev, c) < 0) {
		nvme_backing_close(&c->b);
		return 1;
	}
	sample_signals_set_dev(c->dev);
	r = setup(c, &o);
	if (r == 0) {
		/* Before the workers: namespaces want one thread. The workers
		 * need the backing file and fallocate() for Write Zeroes and
		 * Deallocate; preadv/pwritev/fdatasync are on the base list. */
		static const char *const calls[] = {"fallocate"};
		const struct sample_sandbox_extra extra = {
			.keep_fds = &c->b.fd,
			.nr_keep_fds = 1,
			.syscalls = calls,
			.nr_syscalls = 1,
		};

		r = sample_sandbox(&args, c->dev, NULL, &extra);
	}
	if (r == 0) {
		r = nvme_workers_start(c);
		if (r < 0)
			fprintf(stderr, "%s: workers: %s\n", sample_prog,
				strerror(-r));
	}
	if (r == 0) {
		if (!c->quiet) {
			printf("namespace 1: %" PRIu64 " blocks of %u bytes "
			       "on %s, serial %s\n",
			       c->b.nlb, 1u << c->b.lbads, o.backing,
			       c->serial);
			if (args.socket_path)
				printf("listening on %s\n", args.socket_path);
		}
		r = sample_serve(c->dev, sigfd);
	}
	nvme_workers_stop(c);
	sample_signals_fini();
	mu_dev_destroy(c->dev);
	nvme_backing_flush(&c->b); /* a clean exit leaves nothing unsaved */
	nvme_backing_close(&c->b);
	return r < 0 ? 1 : 0;
}
