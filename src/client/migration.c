/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Device state: reset, and migration v2 through DEVICE_FEATURE
 * (MIGRATION, MIG_DEVICE_STATE) and MIG_DATA_READ/WRITE.
 */
#include <errno.h>
#include <string.h>

#include "client-internal.h"

MU_EXPORT int mu_client_reset(mu_client_t *c)
{
	struct iovec riov = {NULL, 0};
	struct mu_call call = {
		.cmd = MU_CMD_DEVICE_RESET,
		.riov = &riov,
		.riovcnt = 1,
	};

	if (!c)
		return -EINVAL;
	return mu_rpc_call(c, &call);
}

int mu_bad_reply(struct mu_client *c, const char *what, size_t len)
{
	mu_client_log(c, MU_LOG_ERR, "%s: bad reply (%zu bytes)", what, len);
	mu_client_kill(c, -EBADMSG);
	return -EBADMSG;
}

/* GET a feature whose data is 8 bytes. */
static int feature_get8(struct mu_client *c, uint32_t feature, void *data)
{
	struct mu_device_feature req = {sizeof(req) + 8,
					MU_DEVICE_FEATURE_GET | feature};
	struct mu_device_feature rep;
	struct iovec iov = {&req, sizeof(req)};
	struct iovec riov[2] = {{&rep, sizeof(rep)}, {data, 8}};
	struct mu_call call = {
		.cmd = MU_CMD_DEVICE_FEATURE,
		.iov = &iov,
		.iovcnt = 1,
		.riov = riov,
		.riovcnt = 2,
		.rmin = sizeof(rep) + 8,
	};
	int r = mu_rpc_call(c, &call);

	if (r < 0)
		return r;
	if ((rep.flags & MU_DEVICE_FEATURE_MASK) != feature ||
	    rep.argsz < sizeof(rep) + 8)
		return mu_bad_reply(c, "DEVICE_FEATURE", call.rlen);
	return 0;
}

MU_EXPORT int mu_client_mig_flags(mu_client_t *c, uint64_t *flags)
{
	struct mu_feature_migration m;
	int r;

	if (!c || !flags)
		return -EINVAL;
	r = feature_get8(c, MU_DEVICE_FEATURE_MIGRATION, &m);
	if (r == 0)
		*flags = m.flags;
	return r;
}

MU_EXPORT int mu_client_mig_get_state(mu_client_t *c, uint32_t *state)
{
	struct mu_feature_mig_state s;
	int r;

	if (!c || !state)
		return -EINVAL;
	r = feature_get8(c, MU_DEVICE_FEATURE_MIG_DEVICE_STATE, &s);
	if (r == 0)
		*state = s.device_state;
	return r;
}

MU_EXPORT int mu_client_mig_set_state(mu_client_t *c, uint32_t state)
{
	struct {
		struct mu_device_feature f;
		struct mu_feature_mig_state s;
	} MU_PACKED req = {{sizeof(req),
			    MU_DEVICE_FEATURE_SET |
				    MU_DEVICE_FEATURE_MIG_DEVICE_STATE},
			   {state, 0}},
		    rep;
	size_t rlen;
	int r;

	if (!c || state >= MU_MIG_STATE_COUNT)
		return -EINVAL;
	r = mu_rpc_simple(c, MU_CMD_DEVICE_FEATURE, &req, sizeof(req), &rep,
			  sizeof(rep), sizeof(rep.f), &rlen);
	if (r < 0)
		return r;
	/* The reply echoes the request; accept it with or without data. */
	if (rlen != sizeof(rep.f) && rlen != sizeof(rep))
		return mu_bad_reply(c, "DEVICE_FEATURE(SET state)", rlen);
	return 0;
}

MU_EXPORT ssize_t mu_client_mig_read(mu_client_t *c, void *buf, size_t len)
{
	size_t done = 0;

	if (!c || (len && !buf))
		return -EINVAL;
	while (done < len) {
		size_t n = len - done;
		struct mu_mig_data req, rep;
		struct iovec iov = {&req, sizeof(req)};
		struct iovec riov[2];
		struct mu_call call = {
			.cmd = MU_CMD_MIG_DATA_READ,
			.iov = &iov,
			.iovcnt = 1,
			.riov = riov,
			.riovcnt = 2,
			.rmin = sizeof(rep),
		};
		int r;

		if (n > c->sess.max_data_xfer_size)
			n = c->sess.max_data_xfer_size;
		req = (struct mu_mig_data){(uint32_t)(sizeof(req) + n),
					   (uint32_t)n};
		riov[0] = (struct iovec){&rep, sizeof(rep)};
		riov[1] = (struct iovec){(uint8_t *)buf + done, n};
		r = mu_rpc_call(c, &call);
		if (r < 0)
			return r;
		/* The engine refused anything longer than 8 + n. A reply
		 * padded up to that (libvfio-user pads every short read) is
		 * fine: argsz and size say what is real (protocol.md 9u). */
		if (rep.size > n || call.rlen < sizeof(rep) + rep.size ||
		    rep.argsz != sizeof(rep) + rep.size)
			return mu_bad_reply(c, "MIG_DATA_READ", call.rlen);
		done += rep.size;
		if (rep.size < n)
			break; /* no more data for now */
	}
	return (ssize_t)done;
}

MU_EXPORT int mu_client_mig_write(mu_client_t *c, const void *buf, size_t len)
{
	size_t done = 0;

	if (!c || (len && !buf))
		return -EINVAL;
	while (done < len) {
		size_t n = len - done;
		struct mu_mig_data req;
		struct iovec iov[2], riov = {NULL, 0};
		struct mu_call call = {
			.cmd = MU_CMD_MIG_DATA_WRITE,
			.iov = iov,
			.iovcnt = 2,
			.riov = &riov,
			.riovcnt = 1,
		};
		int r;

		if (n > c->sess.max_data_xfer_size)
			n = c->sess.max_data_xfer_size;
		/* argsz covers the data too: libvfio-user refuses
		 * argsz < 8 + size (protocol.md 9u). */
		req = (struct mu_mig_data){(uint32_t)(sizeof(req) + n),
					   (uint32_t)n};
		iov[0] = (struct iovec){&req, sizeof(req)};
		iov[1] = (struct iovec){(uint8_t *)buf + done, n};
		r = mu_rpc_call(c, &call);
		if (r < 0)
			return r;
		done += n;
	}
	return 0;
}
