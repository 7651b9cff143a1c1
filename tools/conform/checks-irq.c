/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * checks-irq.c - GET_IRQ_INFO and SET_IRQS: info replies, refused
 * indexes, ranges and flag combinations, and eventfds that really fire.
 * A generic checker can't make a device raise an interrupt, but the spec
 * lets a client trigger one (DATA_NONE | ACTION_TRIGGER): where the server
 * accepts that, the eventfd must be signalled.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "checks.h"

#define IRQFLAGS 0xfu
#define TRIG_NONE (MU_IRQ_SET_DATA_NONE | MU_IRQ_SET_ACTION_TRIGGER)
#define TRIG_EFD (MU_IRQ_SET_DATA_EVENTFD | MU_IRQ_SET_ACTION_TRIGGER)

static const char *irq_name(unsigned i)
{
	static const char *const n[] = {"INTx", "MSI", "MSI-X", "ERR", "REQ"};

	return i < 5 ? n[i] : "index";
}

static int i_info(struct cf_ctx *x)
{
	static const uint32_t maxc[] = {1, 32, 2048, 1, 1};
	char list[160] = "";
	unsigned i, n;
	size_t l = 0;

	if (cf_get_info(x) < 0)
		return CF_FAIL;
	n = x->info.num_irqs < CF_NIRQ_MAX ? x->info.num_irqs : CF_NIRQ_MAX;
	for (i = 0; i < n; i++) {
		struct mu_irq_info ii;

		if (cf_irq_info(x, i, &ii) < 0)
			return CF_FAIL;
		if (ii.flags & ~IRQFLAGS)
			return cf_set(x, CF_FAIL,
				      "IRQ index %u: undefined "
				      "flags 0x%x",
				      i, ii.flags & ~IRQFLAGS);
		if ((x->info.flags & MU_DEVICE_FLAGS_PCI) && i < 5 &&
		    ii.count > maxc[i])
			return cf_set(x, CF_FAIL,
				      "%s: count %u, PCI allows at "
				      "most %u",
				      irq_name(i), ii.count, maxc[i]);
		if (l < sizeof(list) - 24)
			l += (size_t)snprintf(list + l, sizeof(list) - l,
					      "%s%s %u", l ? ", " : "",
					      irq_name(i), ii.count);
	}
	return cf_set(x, CF_PASS, "%u indexes: %s", n, list);
}

static int i_bad_index(struct cf_ctx *x)
{
	struct mu_irq_info in = {.argsz = sizeof(in)};
	int e;

	if (cf_get_info(x) < 0)
		return CF_FAIL;
	in.index = x->info.num_irqs;
	e = cf_refused(x, MU_CMD_DEVICE_GET_IRQ_INFO, &in, sizeof(in), NULL, 0,
		       NULL, "GET_IRQ_INFO of index num_irqs");
	if (e == CF_EBROKEN)
		return CF_FAIL;
	if (e == 0)
		return cf_set(x, CF_FAIL, "GET_IRQ_INFO of index %u answered",
			      in.index);
	e = cf_set_irqs(x, TRIG_NONE, x->info.num_irqs, 0, 1, NULL, 0);
	if (e == CF_EBROKEN)
		return CF_FAIL;
	if (e == 0)
		return cf_set(x, CF_FAIL, "SET_IRQS of index %u accepted",
			      x->info.num_irqs);
	return cf_set(x, CF_PASS,
		      "index %u refused by GET_IRQ_INFO and "
		      "SET_IRQS",
		      x->info.num_irqs);
}

/* First index with vectors and eventfd support, preferring ERR and REQ
 * (no config-space gating), then INTx. -1 if none. */
static int pick(struct cf_ctx *x, struct mu_irq_info *out, bool maskable)
{
	static const unsigned order[] = {MU_PCI_ERR_IRQ_INDEX,
					 MU_PCI_REQ_IRQ_INDEX,
					 MU_PCI_INTX_IRQ_INDEX};
	size_t i;

	for (i = 0; i < sizeof(order) / sizeof(*order); i++) {
		if (order[i] >= x->info.num_irqs)
			continue;
		if (cf_irq_info(x, order[i], out) < 0)
			return CF_EBROKEN;
		if (out->count && (out->flags & MU_IRQ_INFO_EVENTFD) &&
		    (!maskable || (out->flags & MU_IRQ_INFO_MASKABLE)))
			return (int)order[i];
	}
	return -1;
}

static int i_bad_range(struct cf_ctx *x)
{
	struct mu_irq_info ii;
	int idx, e;

	if (cf_get_info(x) < 0)
		return CF_FAIL;
	idx = pick(x, &ii, false);
	if (idx == CF_EBROKEN)
		return CF_FAIL;
	if (idx < 0)
		return cf_set(x, CF_SKIP, "no IRQ index with vectors");
	e = cf_set_irqs(x, TRIG_NONE, (uint32_t)idx, ii.count, 1, NULL, 0);
	if (e == 0)
		return cf_set(x, CF_FAIL, "%s: vector %u of %u accepted",
			      irq_name((unsigned)idx), ii.count, ii.count);
	if (e != CF_EBROKEN)
		e = cf_set_irqs(x, TRIG_NONE, (uint32_t)idx, 1, 0xffffffffu,
				NULL, 0);
	if (e == 0)
		return cf_set(x, CF_FAIL,
			      "%s: start 1 count 0xffffffff "
			      "(wraps) accepted",
			      irq_name((unsigned)idx));
	if (e == CF_EBROKEN)
		return CF_FAIL;
	return cf_set(x, CF_PASS,
		      "%s: vectors past count %u and a wrapping "
		      "range refused",
		      irq_name((unsigned)idx), ii.count);
}

static int i_bad_flags(struct cf_ctx *x)
{
	static const uint32_t bad[] = {
		MU_IRQ_SET_DATA_NONE | MU_IRQ_SET_DATA_BOOL |
			MU_IRQ_SET_ACTION_TRIGGER,
		MU_IRQ_SET_DATA_NONE | MU_IRQ_SET_ACTION_MASK |
			MU_IRQ_SET_ACTION_UNMASK,
		MU_IRQ_SET_DATA_NONE,
		MU_IRQ_SET_ACTION_TRIGGER,
		TRIG_NONE | (1u << 6),
	};
	struct mu_irq_info ii;
	size_t i;
	int idx, e;

	if (cf_get_info(x) < 0)
		return CF_FAIL;
	idx = pick(x, &ii, false);
	if (idx == CF_EBROKEN)
		return CF_FAIL;
	if (idx < 0)
		return cf_set(x, CF_SKIP, "no IRQ index with vectors");
	for (i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		e = cf_set_irqs(x, bad[i], (uint32_t)idx, 0, 1, NULL, 0);
		if (e == CF_EBROKEN)
			return CF_FAIL;
		if (e == 0)
			return cf_set(x, CF_FAIL,
				      "SET_IRQS flags 0x%x accepted", bad[i]);
	}
	return cf_set(x, CF_PASS, "5 invalid DATA/ACTION combinations refused");
}

/* Wire an eventfd to vector 0 of idx and fire it by loop-back trigger.
 * Returns the check status; *efd stays open for the caller. */
static int fire(struct cf_ctx *x, int idx, int *efd, bool *refused)
{
	int e;

	*refused = false;
	*efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (*efd < 0)
		return cf_set(x, CF_SKIP, "eventfd: %s", strerror(errno));
	e = cf_set_irqs(x, TRIG_EFD, (uint32_t)idx, 0, 1, efd, 1);
	if (e == CF_EBROKEN)
		return CF_FAIL;
	if (e < 0)
		return cf_set(x, CF_FAIL, "%s: eventfd refused: %s",
			      irq_name((unsigned)idx), cf_errname(e));
	e = cf_set_irqs(x, TRIG_NONE, (uint32_t)idx, 0, 1, NULL, 0);
	if (e == CF_EBROKEN)
		return CF_FAIL;
	if (e < 0) {
		*refused = true;
		return cf_set(x, CF_SKIP,
			      "%s: the server refuses client triggers (%s): "
			      "delivery can't be checked",
			      irq_name((unsigned)idx), cf_errname(e));
	}
	return CF_PASS;
}

static void cleanup_irq(struct cf_ctx *x, int idx)
{
	if (idx == MU_PCI_INTX_IRQ_INDEX)
		cf_set_irqs(x, MU_IRQ_SET_DATA_NONE | MU_IRQ_SET_ACTION_UNMASK,
			    0, 0, 1, NULL, 0);
	cf_set_irqs(x, TRIG_NONE, (uint32_t)idx, 0, 0, NULL, 0);
}

static int i_fire(struct cf_ctx *x)
{
	struct mu_irq_info ii;
	bool refused;
	int idx, efd = -1, st;

	if (cf_get_info(x) < 0)
		return CF_FAIL;
	idx = pick(x, &ii, false);
	if (idx == CF_EBROKEN)
		return CF_FAIL;
	if (idx < 0)
		return cf_set(x, CF_SKIP, "no IRQ index with eventfd vectors");
	st = fire(x, idx, &efd, &refused);
	if (st == CF_PASS) {
		if (cf_eventfd_wait(efd, x->timeout_ms))
			st = cf_set(x, CF_PASS,
				    "%s vector 0: eventfd signalled on a "
				    "client trigger",
				    irq_name((unsigned)idx));
		else
			st = cf_set(x, CF_FAIL,
				    "%s vector 0: trigger accepted, eventfd "
				    "not signalled in %d ms",
				    irq_name((unsigned)idx), x->timeout_ms);
		cleanup_irq(x, idx);
	}
	if (efd >= 0)
		close(efd);
	return st;
}

/* After disabling the index, a trigger must not reach the old eventfd. */
static int i_disable(struct cf_ctx *x)
{
	struct mu_irq_info ii;
	bool refused;
	int idx, efd = -1, st, e;

	if (cf_get_info(x) < 0)
		return CF_FAIL;
	idx = pick(x, &ii, false);
	if (idx == CF_EBROKEN)
		return CF_FAIL;
	if (idx < 0)
		return cf_set(x, CF_SKIP, "no IRQ index with eventfd vectors");
	st = fire(x, idx, &efd, &refused);
	if (st != CF_PASS)
		goto out;
	cf_eventfd_wait(efd, x->timeout_ms);
	cleanup_irq(x, idx);
	e = cf_set_irqs(x, TRIG_NONE, (uint32_t)idx, 0, 1, NULL, 0);
	if (e == CF_EBROKEN) {
		st = CF_FAIL;
		goto out;
	}
	if (cf_eventfd_wait(efd, 200))
		st = cf_set(x, CF_FAIL,
			    "%s disabled (count 0), yet a trigger still "
			    "signalled its old eventfd",
			    irq_name((unsigned)idx));
	else
		st = cf_set(x, CF_PASS,
			    "%s disabled: the old eventfd stays "
			    "quiet",
			    irq_name((unsigned)idx));
out:
	if (efd >= 0)
		close(efd);
	return st;
}

static int i_mask(struct cf_ctx *x)
{
	struct mu_irq_info ii;
	bool refused;
	int idx, efd = -1, st, e;

	if (cf_get_info(x) < 0)
		return CF_FAIL;
	idx = pick(x, &ii, true);
	if (idx == CF_EBROKEN)
		return CF_FAIL;
	if (idx < 0)
		return cf_set(x, CF_SKIP, "no maskable IRQ index");
	st = fire(x, idx, &efd, &refused);
	if (st != CF_PASS)
		goto out;
	cf_eventfd_wait(efd, x->timeout_ms);
	if (idx == MU_PCI_INTX_IRQ_INDEX)
		cf_set_irqs(x, MU_IRQ_SET_DATA_NONE | MU_IRQ_SET_ACTION_UNMASK,
			    0, 0, 1, NULL, 0);
	e = cf_set_irqs(x, MU_IRQ_SET_DATA_NONE | MU_IRQ_SET_ACTION_MASK,
			(uint32_t)idx, 0, 1, NULL, 0);
	if (e < 0) {
		st = e == CF_EBROKEN
			     ? CF_FAIL
			     : cf_set(x, CF_FAIL,
				      "%s reports MASKABLE but MASK is "
				      "refused: %s",
				      irq_name((unsigned)idx), cf_errname(e));
		goto clean;
	}
	e = cf_set_irqs(x, TRIG_NONE, (uint32_t)idx, 0, 1, NULL, 0);
	if (e == CF_EBROKEN) {
		st = CF_FAIL;
		goto clean;
	}
	if (cf_eventfd_wait(efd, 200)) {
		st = cf_set(x, CF_FAIL,
			    "%s masked, yet a trigger signalled "
			    "the eventfd",
			    irq_name((unsigned)idx));
		goto clean;
	}
	e = cf_set_irqs(x, MU_IRQ_SET_DATA_NONE | MU_IRQ_SET_ACTION_UNMASK,
			(uint32_t)idx, 0, 1, NULL, 0);
	if (e < 0) {
		st = e == CF_EBROKEN ? CF_FAIL
				     : cf_set(x, CF_FAIL, "UNMASK refused: %s",
					      cf_errname(e));
		goto clean;
	}
	if (cf_eventfd_wait(efd, x->timeout_ms))
		st = cf_set(x, CF_PASS,
			    "%s: masked trigger held back, "
			    "delivered on unmask",
			    irq_name((unsigned)idx));
	else
		st = cf_set(x, CF_WARN,
			    "%s: masked trigger held back but lost on unmask "
			    "(PCI keeps it pending)",
			    irq_name((unsigned)idx));
clean:
	cleanup_irq(x, idx);
out:
	if (efd >= 0)
		close(efd);
	return st;
}

const struct cf_check cf_checks_irq[] = {
	{"irq.info", S_IRQINFO, "5.7",
	 "IRQ info replies: 16 bytes, index echoed, defined flags, PCI counts",
	 CF_NEED_SESSION, i_info},
	{"irq.bad-index", S_SETIRQS, "5.8",
	 "an IRQ index >= num_irqs is refused", CF_NEED_SESSION, i_bad_index},
	{"irq.bad-range", S_SETIRQS, "5.8",
	 "vectors beyond the index's count are refused", CF_NEED_SESSION,
	 i_bad_range},
	{"irq.bad-flags", S_SETIRQS, "5.8",
	 "SET_IRQS needs exactly one DATA and one ACTION flag", CF_NEED_SESSION,
	 i_bad_flags},
	{"irq.fire", S_SETIRQS, "5.8",
	 "an eventfd set with DATA_EVENTFD|TRIGGER is signalled on trigger",
	 CF_NEED_SESSION, i_fire},
	{"irq.disable", S_SETIRQS, "9h",
	 "count 0 with DATA_NONE|TRIGGER disables the index's eventfds",
	 CF_NEED_SESSION, i_disable},
	{"irq.mask", S_SETIRQS, "5.8",
	 "a masked vector does not signal; unmask delivers what was held",
	 CF_NEED_SESSION, i_mask},
	{NULL, NULL, NULL, NULL, 0, NULL},
};
