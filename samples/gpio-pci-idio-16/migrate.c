/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * migrate.c - live migration of the emulated PCI-IDIO-16 (migration v2,
 * STOP_COPY only: the whole state is 7 bytes).
 *
 * What moves: outputs, inputs, the IRQ enable and filter strobes, and the
 * latched change-of-state bits (which are the INTx level). The stream is
 * samples/common/migstream's record format: BEGIN, one state record, END.
 * It is checked as it arrives and applied only at RESUMING -> STOP when
 * whole; a bad one is refused and the board keeps the state it had.
 * Inputs are the outside world: on the destination they are what the
 * source saw until something (the control socket) changes them.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "idio16.h"
#include "migstream.h"
#include "sample.h"

#define MAGIC 0x36314449u /* "ID16" in memory order */
#define FORMAT 1u
#define REC_STATE MS_REC_DEVICE

struct saved {
	uint16_t outputs, inputs;
	uint8_t irq_enabled, filters, latched, reserved;
} __attribute__((packed));

static const struct ms_type types[] = {
	{REC_STATE, 1, sizeof(struct saved), sizeof(struct saved)},
};

struct idio16_mig {
	enum mu_mig_state state;
	struct ms_writer out;
	bool queued;
	struct ms_loader in;
	bool loaded;
	struct saved st;
};

static int load_record(void *opaque, uint16_t type, const void *p, uint32_t len)
{
	struct idio16_mig *m = opaque;

	(void)type, (void)len; /* one type, exact length: checked */
	if (m->loaded)
		return -EINVAL;
	memcpy(&m->st, p, sizeof(m->st));
	if (m->st.irq_enabled > 1 || m->st.filters > 1 ||
	    (m->st.latched & ~(STATUS_CHANGE_LO | STATUS_CHANGE_HI)) ||
	    m->st.reserved)
		return -EINVAL;
	m->loaded = true;
	return 0;
}

ssize_t idio16_mig_read(void *opaque, void *buf, size_t len)
{
	struct idio16 *b = opaque;
	struct idio16_mig *m = b->mig;

	if (!m || m->state != MU_MIG_STATE_STOP_COPY)
		return -EINVAL;
	if (!m->queued) {
		struct ms_begin beg = {MAGIC, FORMAT};
		struct saved s = {b->outputs, b->inputs,  b->irq_enabled,
				  b->filters, b->latched, 0};
		int r;

		ms_writer_reset(&m->out);
		r = ms_put(&m->out, MS_REC_BEGIN, 1, &beg, sizeof(beg), NULL,
			   0);
		if (r == 0)
			r = ms_put(&m->out, REC_STATE, 1, &s, sizeof(s), NULL,
				   0);
		if (r == 0)
			r = ms_put(&m->out, MS_REC_END, 1, NULL, 0, NULL, 0);
		if (r < 0)
			return r;
		m->queued = true;
	}
	return (ssize_t)ms_take(&m->out, buf, len);
}

ssize_t idio16_mig_write(void *opaque, const void *buf, size_t len)
{
	struct idio16 *b = opaque;
	struct idio16_mig *m = b->mig;

	if (!m || m->state != MU_MIG_STATE_RESUMING)
		return -EINVAL;
	return ms_feed_logged(&m->in, buf, len);
}

static int commit(struct idio16 *b, struct idio16_mig *m)
{
	int r = ms_finish(&m->in);

	if (r == 0 && !m->loaded)
		r = -EINVAL;
	if (r < 0) {
		fprintf(stderr,
			"%s: migration: incoming state refused (%s); board "
			"state unchanged\n",
			sample_prog,
			m->in.why ? m->in.why : "stream incomplete");
		return r;
	}
	b->outputs = m->st.outputs;
	b->inputs = m->st.inputs;
	b->irq_enabled = m->st.irq_enabled;
	b->filters = m->st.filters;
	b->latched = m->st.latched;
	return 0;
}

int idio16_mig_transition(void *opaque, enum mu_mig_state to)
{
	struct idio16 *b = opaque;
	struct idio16_mig *m = b->mig;
	int r = 0;

	if (!m) {
		m = calloc(1, sizeof(*m));
		if (!m)
			return -ENOMEM;
		m->state = MU_MIG_STATE_RUNNING;
		m->in.types = types;
		m->in.ntypes = 1;
		m->in.device = MAGIC;
		m->in.format = FORMAT;
		m->in.record = load_record;
		m->in.opaque = m;
		b->mig = m;
	}
	switch (to) {
	case MU_MIG_STATE_STOP:
		if (m->state == MU_MIG_STATE_RESUMING)
			r = commit(b, m);
		b->stopped = true;
		break;
	case MU_MIG_STATE_RUNNING:
		b->stopped = false;
		idio16_set_line(b); /* the level as it is now */
		break;
	case MU_MIG_STATE_STOP_COPY:
		m->queued = false;
		break;
	case MU_MIG_STATE_RESUMING:
		ms_loader_reset(&m->in);
		m->loaded = false;
		break;
	default:
		return -EINVAL; /* no PRE_COPY offered */
	}
	if (r < 0)
		return r;
	if (to != MU_MIG_STATE_STOP_COPY)
		ms_writer_free(&m->out);
	if (to != MU_MIG_STATE_RESUMING)
		ms_loader_free(&m->in);
	if (!b->quiet)
		printf("migration: state %d -> %d\n", m->state, to);
	m->state = to;
	return 0;
}

void idio16_mig_free(struct idio16 *b)
{
	b->stopped = false;
	if (!b->mig)
		return;
	ms_writer_free(&b->mig->out);
	ms_loader_free(&b->mig->in);
	free(b->mig);
	b->mig = NULL;
}
