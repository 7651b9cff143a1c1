/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Validation of every command at the edge: the command list (commands.h)
 * gives each command's name, size rules and fd allowance, plus a
 * per-command check for the fields whose meaning depends on each other.
 * Handlers only ever see messages that passed here.
 */
#include <errno.h>
#include <string.h>

#include "commands.h"
#include "wire-core.h"

typedef int (*check_fn)(const struct mu_msg *m, const struct mu_limits *lim);

struct cmd_rule {
	const char *name;
	size_t min_len;	  /* fixed part of the request payload */
	unsigned max_fds; /* fds the command may carry (UINT_MAX: per limit) */
	check_fn check;	  /* NULL: nothing beyond min_len and fds */
	unsigned flags;	  /* MU_OP_* */
};

#define LOAD(type, m)                                                          \
	({                                                                     \
		type v_;                                                       \
		memcpy(&v_, (m)->payload, sizeof(v_));                         \
		v_;                                                            \
	})

static int check_argsz(uint32_t argsz, size_t fixed)
{
	return argsz < fixed ? -EINVAL : 0;
}

static int check_version(const struct mu_msg *m, const struct mu_limits *lim)
{
	(void)lim;
	return m->len > sizeof(struct mu_version) + MU_CAPS_JSON_MAX ? -E2BIG
								     : 0;
}

static int check_dma_map(const struct mu_msg *m, const struct mu_limits *lim)
{
	struct mu_dma_map d = LOAD(struct mu_dma_map, m);

	(void)lim;
	if (d.argsz < sizeof(d) || d.argsz > m->len)
		return -EINVAL;
	if (d.flags & ~(MU_DMA_MAP_FLAG_READ | MU_DMA_MAP_FLAG_WRITE))
		return -EINVAL;
	if (d.size == 0 || d.addr + d.size < d.addr)
		return -EINVAL;
	if (m->nfds && d.offset + d.size < d.offset)
		return -EINVAL;
	if (!m->nfds && d.offset != 0)
		return -EINVAL;
	return 0;
}

static int check_dma_unmap(const struct mu_msg *m, const struct mu_limits *lim)
{
	struct mu_dma_unmap d = LOAD(struct mu_dma_unmap, m);

	(void)lim;
	if (check_argsz(d.argsz, sizeof(d)) < 0)
		return -EINVAL;
	if (d.flags & MU_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP)
		return -ENOTSUP;
	if (d.flags & ~MU_DMA_UNMAP_FLAG_ALL)
		return -EINVAL;
	if (d.flags & MU_DMA_UNMAP_FLAG_ALL)
		return (d.addr || d.size) ? -EINVAL : 0;
	if (d.size == 0 || d.addr + d.size < d.addr)
		return -EINVAL;
	return 0;
}

/* GET_INFO, GET_IRQ_INFO: argsz must hold the 16-byte fixed reply. */
static int check_argsz16(const struct mu_msg *m, const struct mu_limits *lim)
{
	uint32_t argsz;

	(void)lim;
	memcpy(&argsz, m->payload, sizeof(argsz));
	return check_argsz(argsz, 16);
}

static int check_region_info(const struct mu_msg *m,
			     const struct mu_limits *lim)
{
	struct mu_region_info r = LOAD(struct mu_region_info, m);

	(void)lim;
	return check_argsz(r.argsz, sizeof(r));
}

static int check_io_fds(const struct mu_msg *m, const struct mu_limits *lim)
{
	struct mu_region_io_fds_request r =
		LOAD(struct mu_region_io_fds_request, m);

	(void)lim;
	if (r.flags)
		return -EINVAL;
	return check_argsz(r.argsz, sizeof(r));
}

static int popcount32(uint32_t v)
{
	return __builtin_popcount(v);
}

static int check_set_irqs(const struct mu_msg *m, const struct mu_limits *lim)
{
	struct mu_irq_set s = LOAD(struct mu_irq_set, m);
	size_t extra = m->len - sizeof(s);
	uint32_t data = s.flags & MU_IRQ_SET_DATA_TYPE_MASK;
	uint32_t action = s.flags & MU_IRQ_SET_ACTION_TYPE_MASK;

	(void)lim;
	if (s.flags &
	    ~(MU_IRQ_SET_DATA_TYPE_MASK | MU_IRQ_SET_ACTION_TYPE_MASK))
		return -EINVAL;
	if (popcount32(data) != 1 || popcount32(action) != 1)
		return -EINVAL;
	if (s.start + s.count < s.start)
		return -EINVAL;
	if (s.argsz < sizeof(s))
		return -EINVAL;
	switch (data) {
	case MU_IRQ_SET_DATA_NONE:
		return (extra || m->nfds) ? -EINVAL : 0;
	case MU_IRQ_SET_DATA_BOOL:
		return (extra != s.count || m->nfds) ? -EINVAL : 0;
	default: /* EVENTFD: one fd per vector, or none to de-assign */
		if (extra)
			return -EINVAL;
		return (m->nfds && m->nfds != s.count) ? -EINVAL : 0;
	}
}

static int check_region_read(const struct mu_msg *m,
			     const struct mu_limits *lim)
{
	return mu_check_region_access(m, lim, false);
}

static int check_region_write(const struct mu_msg *m,
			      const struct mu_limits *lim)
{
	return mu_check_region_access(m, lim, true);
}

static int check_reset(const struct mu_msg *m, const struct mu_limits *lim)
{
	(void)lim;
	return m->len ? -EINVAL : 0;
}

static int check_write_multi(const struct mu_msg *m,
			     const struct mu_limits *lim)
{
	struct mu_write_multi w = LOAD(struct mu_write_multi, m);
	const uint8_t *p = m->payload + sizeof(w);
	uint64_t i;

	(void)lim;
	if (w.wr_cnt == 0 || w.wr_cnt > MU_WRITE_MULTI_MAX)
		return -EINVAL;
	if (m->len !=
	    sizeof(w) + w.wr_cnt * sizeof(struct mu_write_multi_entry))
		return -EINVAL;
	for (i = 0; i < w.wr_cnt; i++) {
		struct mu_write_multi_entry e;

		memcpy(&e, p + i * sizeof(e), sizeof(e));
		if (e.count == 0 || e.count > MU_WRITE_MULTI_DATA ||
		    e.offset + e.count < e.offset)
			return -EINVAL;
	}
	return 0;
}

/* The data a feature's GET or SET needs is present; more is ignored. */
static int check_feature_data(const struct mu_msg *m, uint32_t flags)
{
	size_t have = m->len - sizeof(struct mu_device_feature);
	struct mu_dma_logging_control ctl;

	switch (flags & MU_DEVICE_FEATURE_MASK) {
	case MU_DEVICE_FEATURE_MIG_DEVICE_STATE:
		if (!(flags & MU_DEVICE_FEATURE_SET))
			return 0;
		return have < sizeof(struct mu_feature_mig_state) ? -EINVAL : 0;
	case MU_DEVICE_FEATURE_DMA_LOGGING_START:
		if (!(flags & MU_DEVICE_FEATURE_SET))
			return 0;
		if (have < sizeof(ctl))
			return -EINVAL;
		memcpy(&ctl, m->payload + sizeof(struct mu_device_feature),
		       sizeof(ctl));
		if ((have - sizeof(ctl)) / sizeof(struct mu_dma_logging_range) <
		    ctl.num_ranges)
			return -EINVAL;
		return 0;
	case MU_DEVICE_FEATURE_DMA_LOGGING_REPORT:
		if (!(flags & MU_DEVICE_FEATURE_GET))
			return 0;
		return have < sizeof(struct mu_dma_logging_report) ? -EINVAL
								   : 0;
	default:
		return 0;
	}
}

static int check_feature(const struct mu_msg *m, const struct mu_limits *lim)
{
	struct mu_device_feature f = LOAD(struct mu_device_feature, m);
	uint32_t ops =
		f.flags & (MU_DEVICE_FEATURE_GET | MU_DEVICE_FEATURE_SET);

	(void)lim;
	if (f.argsz < sizeof(f))
		return -EINVAL;
	if (f.flags & ~(MU_DEVICE_FEATURE_MASK | MU_DEVICE_FEATURE_GET |
			MU_DEVICE_FEATURE_SET | MU_DEVICE_FEATURE_PROBE))
		return -EINVAL;
	if (ops == (MU_DEVICE_FEATURE_GET | MU_DEVICE_FEATURE_SET) &&
	    !(f.flags & MU_DEVICE_FEATURE_PROBE))
		return -EINVAL;
	if (!ops && !(f.flags & MU_DEVICE_FEATURE_PROBE))
		return -EINVAL;
	if (f.flags & MU_DEVICE_FEATURE_PROBE)
		return 0; /* a probe carries no data */
	return check_feature_data(m, f.flags);
}

static int check_mig_read(const struct mu_msg *m, const struct mu_limits *lim)
{
	struct mu_mig_data d = LOAD(struct mu_mig_data, m);

	if (m->len != sizeof(d) || d.argsz < sizeof(d))
		return -EINVAL;
	return d.size > lim->max_data_xfer ? -E2BIG : 0;
}

static int check_mig_write(const struct mu_msg *m, const struct mu_limits *lim)
{
	struct mu_mig_data d = LOAD(struct mu_mig_data, m);

	if (d.size > lim->max_data_xfer)
		return -E2BIG;
	if (d.argsz < sizeof(d) || m->len != sizeof(d) + d.size)
		return -EINVAL;
	return 0;
}

#define RULE(id, min_len, max_fds, check, handler, flags)                      \
	[MU_CMD_##id] = {#id, min_len, max_fds, check, flags},

static const struct cmd_rule rules[MU_CMD_MAX] = {MU_COMMANDS(RULE)};

#undef RULE

const char *mu_cmd_name(unsigned cmd)
{
	if (cmd < MU_CMD_MAX && rules[cmd].name)
		return rules[cmd].name;
	return "UNKNOWN";
}

unsigned mu_cmd_flags(unsigned cmd)
{
	return cmd < MU_CMD_MAX ? rules[cmd].flags : 0;
}

int mu_check_command(const struct mu_msg *m, const struct mu_limits *lim)
{
	const struct cmd_rule *r;
	unsigned max_fds;

	if (m->hdr.flags & ~MU_FLAG_KNOWN)
		return -EINVAL;
	if ((m->hdr.flags & MU_FLAG_TYPE_MASK) != MU_FLAG_TYPE_COMMAND)
		return -EINVAL;
	if (m->hdr.flags & MU_FLAG_ERROR)
		return -EINVAL;
	if (m->hdr.cmd >= MU_CMD_MAX || !rules[m->hdr.cmd].name)
		return -ENOSYS;
	r = &rules[m->hdr.cmd];
	if (r->flags & MU_OP_REMOVED)
		return -ENOTSUP;
	if (r->flags & MU_OP_TO_CLIENT)
		return -EINVAL;
	max_fds = r->max_fds == MU_FDS_PER_LIMIT ? lim->max_fds : r->max_fds;
	if (m->nfds > max_fds)
		return -EINVAL;
	if (m->len < r->min_len)
		return -EINVAL;
	return r->check ? r->check(m, lim) : 0;
}

int mu_check_server_command(const struct mu_msg *m, const struct mu_limits *lim,
			    bool *count32)
{
	struct mu_dma_access32 a;

	if (m->hdr.flags & ~MU_FLAG_KNOWN)
		return -EINVAL;
	if ((m->hdr.flags & MU_FLAG_TYPE_MASK) != MU_FLAG_TYPE_COMMAND ||
	    (m->hdr.flags & MU_FLAG_ERROR))
		return -EINVAL;
	if (m->hdr.cmd != MU_CMD_DMA_READ && m->hdr.cmd != MU_CMD_DMA_WRITE)
		return -ENOSYS;
	if (m->nfds)
		return -EINVAL;
	if (m->len < sizeof(a))
		return -EINVAL;
	memcpy(&a, m->payload, sizeof(a));
	/*
	 * Spec layout: u64 count, data at 16; libvfio-user pads its last
	 * DMA_WRITE chunk, so more bytes than 16 + count are accepted. A peer
	 * with a packed u32 count (data at 12, exactly 12 + count bytes) is
	 * recognised too; the reply then mirrors its layout.
	 */
	*count32 = false;
	if (m->len >= sizeof(struct mu_dma_access)) {
		if (m->payload[12] | m->payload[13] | m->payload[14] |
		    m->payload[15]) {
			if (m->hdr.cmd == MU_CMD_DMA_READ ||
			    m->len != sizeof(struct mu_dma_access32) + a.count)
				return -E2BIG; /* count >= 4 GiB */
		}
	}
	if (a.count == 0 || a.count > lim->max_data_xfer)
		return a.count ? -E2BIG : -EINVAL;
	if (m->hdr.cmd == MU_CMD_DMA_READ) {
		if (m->len == sizeof(struct mu_dma_access32))
			*count32 = true;
		else if (m->len != sizeof(struct mu_dma_access))
			return -EINVAL;
	} else {
		if (m->len == sizeof(struct mu_dma_access32) + a.count)
			*count32 = true;
		else if (m->len < sizeof(struct mu_dma_access) + a.count)
			return -EINVAL;
	}
	if (a.addr + a.count < a.addr)
		return -EINVAL;
	return 0;
}

int mu_check_reply(const struct mu_msg *m, uint16_t cmd, size_t min_len)
{
	bool peer;

	return mu_check_reply_peer(m, cmd, min_len, &peer);
}

int mu_check_reply_peer(const struct mu_msg *m, uint16_t cmd, size_t min_len,
			bool *peer_error)
{
	*peer_error = false;
	if (m->hdr.flags & ~MU_FLAG_KNOWN)
		return -EBADMSG;
	if ((m->hdr.flags & MU_FLAG_TYPE_MASK) != MU_FLAG_TYPE_REPLY)
		return -EBADMSG;
	if (m->hdr.cmd != cmd)
		return -EPROTO;
	if (m->hdr.flags & MU_FLAG_ERROR) {
		*peer_error = true;
		/* A positive errno from the peer; 0 or nonsense gets EIO. */
		if (m->hdr.error == 0 || m->hdr.error > 4095)
			return -EIO;
		return -(int)m->hdr.error;
	}
	if (m->len < min_len)
		return -EBADMSG;
	return 0;
}
