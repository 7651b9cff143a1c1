/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * VERSION payload and its JSON capabilities. Each side states its own
 * receive limits; unknown keys are ignored (every known client still sends
 * the old "migration" object); a known key of the wrong type is an error.
 */
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>

#include "wire-core.h"

void mu_caps_defaults(struct mu_caps *c)
{
	memset(c, 0, sizeof(*c));
	c->max_msg_fds = MU_DEFAULT_MAX_MSG_FDS;
	c->max_data_xfer_size = MU_DEFAULT_MAX_DATA_XFER;
	c->max_dma_maps = MU_DEFAULT_MAX_DMA_MAPS;
	c->pgsizes = MU_DEFAULT_PGSIZES;
	c->twin_fd_index = -1;
}

/* Integer in [lo, hi]; json-c keeps int64 exactly. */
static int get_uint(json_object *o, uint64_t lo, uint64_t hi, uint64_t *out)
{
	int64_t v;

	if (!json_object_is_type(o, json_type_int))
		return -EINVAL;
	errno = 0;
	v = json_object_get_int64(o);
	if (v < 0 || (uint64_t)v < lo || (uint64_t)v > hi)
		return -EINVAL;
	*out = (uint64_t)v;
	return 0;
}

static int parse_twin(json_object *o, struct mu_caps *c)
{
	json_object *v;
	uint64_t idx;

	if (!json_object_is_type(o, json_type_object))
		return -EINVAL;
	if (json_object_object_get_ex(o, "supported", &v)) {
		if (!json_object_is_type(v, json_type_boolean))
			return -EINVAL;
		c->twin_socket = json_object_get_boolean(v);
	}
	if (json_object_object_get_ex(o, "fd_index", &v)) {
		if (get_uint(v, 0, MU_MAX_FDS_LIMIT - 1, &idx) < 0)
			return -EINVAL;
		c->twin_fd_index = (int)idx;
	}
	return 0;
}

static int parse_caps(json_object *caps, struct mu_caps *c)
{
	json_object *v;
	uint64_t n;

	if (!json_object_is_type(caps, json_type_object))
		return -EINVAL;
	if (json_object_object_get_ex(caps, "max_msg_fds", &v)) {
		if (get_uint(v, 0, UINT32_MAX, &n) < 0)
			return -EINVAL;
		c->max_msg_fds =
			n > MU_MAX_FDS_LIMIT ? MU_MAX_FDS_LIMIT : (uint32_t)n;
	}
	if (json_object_object_get_ex(caps, "max_data_xfer_size", &v)) {
		/* Below 8 bytes no register could be accessed at all. */
		if (get_uint(v, 8, UINT32_MAX, &n) < 0)
			return -EINVAL;
		c->max_data_xfer_size = (uint32_t)n;
	}
	if (json_object_object_get_ex(caps, "max_dma_maps", &v)) {
		if (get_uint(v, 0, UINT32_MAX, &n) < 0)
			return -EINVAL;
		c->max_dma_maps = (uint32_t)n;
	}
	if (json_object_object_get_ex(caps, "pgsizes", &v)) {
		if (get_uint(v, 1, INT64_MAX, &n) < 0)
			return -EINVAL;
		c->pgsizes = n;
	}
	if (json_object_object_get_ex(caps, "twin_socket", &v) &&
	    parse_twin(v, c) < 0)
		return -EINVAL;
	if (json_object_object_get_ex(caps, "write_multiple", &v)) {
		if (!json_object_is_type(v, json_type_boolean))
			return -EINVAL;
		c->write_multiple = json_object_get_boolean(v);
	}
	c->migration = json_object_object_get_ex(caps, "migration", &v);
	return 0;
}

static int parse_json(const char *s, size_t n, struct mu_caps *c)
{
	struct json_tokener *tok;
	json_object *root, *caps;
	int r = 0;

	tok = json_tokener_new_ex(MU_CAPS_JSON_DEPTH);
	if (!tok)
		return -ENOMEM;
	root = json_tokener_parse_ex(tok, s, (int)n);
	if (!root || json_tokener_get_error(tok) != json_tokener_success ||
	    tok->char_offset != (int)n)
		r = -EINVAL;
	json_tokener_free(tok);
	if (r == 0 && !json_object_is_type(root, json_type_object))
		r = -EINVAL;
	if (r == 0 && json_object_object_get_ex(root, "capabilities", &caps))
		r = parse_caps(caps, c);
	json_object_put(root);
	return r;
}

int mu_version_parse(const uint8_t *payload, size_t len, uint16_t *major,
		     uint16_t *minor, struct mu_caps *caps)
{
	struct mu_version v;
	const char *json;
	size_t n, i;

	mu_caps_defaults(caps);
	if (len < sizeof(v))
		return -EINVAL;
	memcpy(&v, payload, sizeof(v));
	*major = v.major;
	*minor = v.minor;
	json = (const char *)payload + sizeof(v);
	n = len - sizeof(v);
	if (n > MU_CAPS_JSON_MAX)
		return -E2BIG;
	/* The JSON ends at its NUL; only NUL padding may follow. */
	for (i = 0; i < n && json[i]; i++)
		;
	for (size_t j = i; j < n; j++)
		if (json[j])
			return -EINVAL;
	n = i;
	while (n > 0 && (json[n - 1] == ' ' || json[n - 1] == '\n'))
		n--;
	if (n == 0)
		return 0; /* no capabilities: all defaults */
	return parse_json(json, n, caps);
}

int mu_caps_format(const struct mu_caps *c, char *buf, size_t len)
{
	char twin[64] = "";
	int n;

	if (c->twin_socket && c->twin_fd_index >= 0)
		snprintf(
			twin, sizeof(twin),
			",\"twin_socket\":{\"supported\":true,\"fd_index\":%d}",
			c->twin_fd_index);
	else if (c->twin_socket)
		snprintf(twin, sizeof(twin),
			 ",\"twin_socket\":{\"supported\":true}");
	n = snprintf(buf, len,
		     "{\"capabilities\":{\"max_msg_fds\":%u,"
		     "\"max_data_xfer_size\":%u,\"max_dma_maps\":%u,"
		     "\"pgsizes\":%llu,\"write_multiple\":%s%s}}",
		     c->max_msg_fds, c->max_data_xfer_size, c->max_dma_maps,
		     (unsigned long long)c->pgsizes,
		     c->write_multiple ? "true" : "false", twin);
	if (n < 0 || (size_t)n >= len)
		return -ENOSPC;
	return n + 1;
}
