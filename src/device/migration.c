/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Migration v2 over DEVICE_FEATURE and MIG_DATA_READ/WRITE. The state
 * machine is two tables: the direct arcs the spec allows, and for every
 * (from, to) pair the next state on the shortest path that has no saving
 * state (PRE_COPY, STOP_COPY) in its interior, as Linux's vfio does.
 * Each arc is one mig_transition() callback; every change is logged.
 * DMA logging (dma_log.c) is offered with migration only: a device
 * without migration can't be migrated, and only a device that knows about
 * migration marks what it writes through its own pointers. Features a
 * device does not have answer ENOTTY, as Linux's VFIO_DEVICE_FEATURE does.
 */
#include <errno.h>
#include <string.h>

#include "dev-internal.h"

#define S_ERR MU_MIG_STATE_ERROR
#define S_STOP MU_MIG_STATE_STOP
#define S_RUN MU_MIG_STATE_RUNNING
#define S_SCOPY MU_MIG_STATE_STOP_COPY
#define S_RES MU_MIG_STATE_RESUMING
#define S_PRE MU_MIG_STATE_PRE_COPY
#define NS MU_MIG_STATE_COUNT

static const char *const state_names[NS] = {
	"ERROR",    "STOP",	   "RUNNING",  "STOP_COPY",
	"RESUMING", "RUNNING_P2P", "PRE_COPY", "PRE_COPY_P2P",
};

/* next_step[from][to]: the first arc to take; S_ERR = not reachable. */
static const uint8_t next_step[NS][NS] = {
	[S_STOP] = {[S_STOP] = S_STOP,
		    [S_RUN] = S_RUN,
		    [S_SCOPY] = S_SCOPY,
		    [S_RES] = S_RES,
		    [S_PRE] = S_RUN},
	[S_RUN] = {[S_STOP] = S_STOP,
		   [S_RUN] = S_RUN,
		   [S_SCOPY] = S_STOP,
		   [S_RES] = S_STOP,
		   [S_PRE] = S_PRE},
	[S_SCOPY] = {[S_STOP] = S_STOP,
		     [S_RUN] = S_STOP,
		     [S_SCOPY] = S_SCOPY,
		     [S_RES] = S_STOP,
		     [S_PRE] = S_ERR},
	[S_RES] = {[S_STOP] = S_STOP,
		   [S_RUN] = S_STOP,
		   [S_SCOPY] = S_STOP,
		   [S_RES] = S_RES,
		   [S_PRE] = S_STOP},
	[S_PRE] = {[S_STOP] = S_RUN,
		   [S_RUN] = S_RUN,
		   [S_SCOPY] = S_SCOPY,
		   [S_RES] = S_RUN,
		   [S_PRE] = S_PRE},
};

bool mu_mig_supported(const struct mu_dev *dev)
{
	return dev->cb.mig_transition != NULL;
}

static bool state_ok(const struct mu_dev *dev, uint32_t s)
{
	if (s == S_PRE)
		return dev->cb.mig_flags & MU_MIGRATION_PRE_COPY;
	return s == S_STOP || s == S_RUN || s == S_SCOPY || s == S_RES;
}

static void set_state(struct mu_dev *dev, enum mu_mig_state to)
{
	mu_log(dev, MU_LOG_INFO, "migration: %s -> %s",
	       state_names[dev->mig_state], state_names[to]);
	dev->mig_state = to;
}

void mu_mig_reset(struct mu_dev *dev)
{
	if (dev->mig_state != S_RUN)
		set_state(dev, S_RUN);
}

static int transition(struct mu_dev *dev, uint32_t to)
{
	int r;

	if (!state_ok(dev, to) || dev->mig_state == S_ERR)
		return -EINVAL;
	while (dev->mig_state != to) {
		uint8_t step = next_step[dev->mig_state][to];

		if (step == S_ERR || !state_ok(dev, step))
			return -EINVAL;
		r = dev->cb.mig_transition(dev->opaque, step);
		if (r < 0) {
			set_state(dev, S_ERR);
			return r;
		}
		set_state(dev, step);
	}
	return 0;
}

/* Reply: the feature header followed by data; a short argsz gets the
 * header alone with the size it needs. */
int mu_feature_reply(struct mu_reply *r, uint32_t argsz, uint32_t flags,
		     const void *data, size_t len)
{
	struct mu_device_feature *f;
	uint32_t need = (uint32_t)(sizeof(*f) + len);

	f = mu_reply_alloc(r, argsz < need ? sizeof(*f) : need);
	if (!f)
		return -ENOMEM;
	f->argsz = need;
	f->flags = flags;
	if (argsz >= need && len)
		memcpy(f + 1, data, len);
	return 0;
}

static int feat_migration(struct mu_dev *dev, const struct mu_device_feature *f,
			  struct mu_reply *r)
{
	struct mu_feature_migration mf = {
		MU_MIGRATION_STOP_COPY |
		(dev->cb.mig_flags & MU_MIGRATION_PRE_COPY)};

	if (f->flags & MU_DEVICE_FEATURE_SET)
		return -EINVAL;
	if (f->flags & MU_DEVICE_FEATURE_PROBE)
		return mu_feature_reply(r, f->argsz, f->flags, NULL, 0);
	return mu_feature_reply(r, f->argsz, f->flags, &mf, sizeof(mf));
}

static int feat_state(struct mu_dev *dev, struct mu_msg *m,
		      const struct mu_device_feature *f, struct mu_reply *r)
{
	struct mu_feature_mig_state st = {0};
	int err;

	if (f->flags & MU_DEVICE_FEATURE_PROBE)
		return mu_feature_reply(r, f->argsz, f->flags, NULL, 0);
	if (f->flags & MU_DEVICE_FEATURE_SET) {
		/* check.c made sure the 8 bytes are there */
		memcpy(&st, m->payload + sizeof(*f), sizeof(st));
		/* The device stops its DMA first, as for DMA_MAP: a job
		 * running at RUNNING -> STOP finishes (its message DMA still
		 * served) before the callback sees the stop, so the state it
		 * saves and the dirty log are final (protocol.md 9). */
		err = mu_quiesce_for(dev, m);
		if (err)
			return err; /* 1: parked, runs again quiesced */
		err = transition(dev, st.device_state);
		if (err < 0)
			return err;
	}
	st.device_state = dev->mig_state;
	st.data_fd = UINT32_MAX; /* -1: vfio-user moves data by message */
	return mu_feature_reply(r, f->argsz, f->flags, &st, sizeof(st));
}

int mu_h_feature(struct mu_dev *dev, struct mu_msg *m, struct mu_reply *r)
{
	struct mu_device_feature f;

	memcpy(&f, m->payload, sizeof(f));
	switch (f.flags & MU_DEVICE_FEATURE_MASK) {
	case MU_DEVICE_FEATURE_MIGRATION:
		return mu_mig_supported(dev) ? feat_migration(dev, &f, r)
					     : -ENOTTY;
	case MU_DEVICE_FEATURE_MIG_DEVICE_STATE:
		return mu_mig_supported(dev) ? feat_state(dev, m, &f, r)
					     : -ENOTTY;
	case MU_DEVICE_FEATURE_DMA_LOGGING_START:
	case MU_DEVICE_FEATURE_DMA_LOGGING_STOP:
	case MU_DEVICE_FEATURE_DMA_LOGGING_REPORT:
		return mu_mig_supported(dev) ? mu_dlog_feature(dev, m, &f, r)
					     : -ENOTTY;
	default:
		return -ENOTTY;
	}
}

int mu_h_mig_read(struct mu_dev *dev, struct mu_msg *m, struct mu_reply *r)
{
	struct mu_mig_data d, *out;
	ssize_t n;

	memcpy(&d, m->payload, sizeof(d));
	if (!mu_mig_supported(dev) ||
	    (dev->mig_state != S_PRE && dev->mig_state != S_SCOPY))
		return -EINVAL;
	if (d.size > d.argsz - sizeof(d))
		d.size = d.argsz - (uint32_t)sizeof(d);
	out = mu_reply_alloc(r, sizeof(d) + d.size);
	if (!out)
		return -ENOMEM;
	/* A short reply tells the client the stream is (for now) drained, so
	 * keep asking the device until the buffer is full or it says 0. */
	size_t got = 0;
	while (got < d.size) {
		n = dev->cb.mig_read(dev->opaque, (uint8_t *)(out + 1) + got,
				     d.size - got);
		if (n < 0)
			return n < -4095 ? -EIO : (int)n;
		if ((size_t)n > d.size - got)
			return -EIO;
		if (n == 0)
			break;
		got += (size_t)n;
	}
	out->argsz = (uint32_t)(sizeof(d) + got);
	out->size = (uint32_t)got;
	r->iov[0].iov_len = out->argsz;
	return 0;
}

int mu_h_mig_write(struct mu_dev *dev, struct mu_msg *m, struct mu_reply *r)
{
	struct mu_mig_data d;
	const uint8_t *p = m->payload + sizeof(d);
	ssize_t n;

	(void)r;
	memcpy(&d, m->payload, sizeof(d));
	if (!mu_mig_supported(dev) || dev->mig_state != S_RES)
		return -EINVAL;
	while (d.size) {
		n = dev->cb.mig_write(dev->opaque, p, d.size);
		if (n <= 0 || (size_t)n > d.size)
			return n < 0 && n >= -4095 ? (int)n : -EIO;
		p += n;
		d.size -= (uint32_t)n;
	}
	return 0;
}
