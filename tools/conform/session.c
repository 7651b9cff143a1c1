/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * session.c - VERSION: sending proposals of any shape, parsing and
 * validating the server's reply (json-c in strict mode), and the standard
 * negotiation every session-based check starts from.
 */
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "checks.h"

int cf_version_call(struct cf_conn *c, uint16_t major, uint16_t minor,
		    const char *json, struct cf_msg *m)
{
	size_t jl = json ? strlen(json) + 1 : 0;
	struct mu_version v = {major, minor};
	uint8_t *buf = malloc(sizeof(v) + jl);
	uint16_t id = cf_next_id(c);
	int e;

	memset(m, 0, sizeof(*m));
	if (!buf)
		return -ENOMEM;
	memcpy(buf, &v, sizeof(v));
	if (jl)
		memcpy(buf + sizeof(v), json, jl);
	e = cf_send(c, id, MU_CMD_VERSION, 0, 0, buf, sizeof(v) + jl, NULL, 0);
	free(buf);
	if (e < 0)
		return e;
	e = cf_wait(c, m, c->timeout_ms);
	if (e < 0)
		return e;
	return m->hdr.msg_id == id ? 0 : -EPROTO;
}

static int problem(struct cf_verinfo *vi, const char *fmt, const char *key)
{
	if (!vi->problem[0])
		snprintf(vi->problem, sizeof(vi->problem), fmt, key);
	return -EBADMSG;
}

static int get_uint(struct json_object *o, const char *key, bool *has,
		    uint64_t *out, struct cf_verinfo *vi)
{
	struct json_object *v;

	if (!json_object_object_get_ex(o, key, &v))
		return 0;
	if (!json_object_is_type(v, json_type_int) ||
	    json_object_get_int64(v) < 0)
		return problem(vi, "\"%s\" is not a non-negative integer", key);
	*has = true;
	*out = json_object_get_uint64(v);
	return 0;
}

static int parse_caps(struct json_object *caps, struct cf_verinfo *vi)
{
	struct json_object *t, *v;

	get_uint(caps, "max_msg_fds", &vi->has_max_msg_fds, &vi->max_msg_fds,
		 vi);
	get_uint(caps, "max_data_xfer_size", &vi->has_mdx, &vi->max_data_xfer,
		 vi);
	get_uint(caps, "max_dma_maps", &vi->has_max_dma_maps, &vi->max_dma_maps,
		 vi);
	get_uint(caps, "pgsizes", &vi->has_pgsizes, &vi->pgsizes, vi);
	if (json_object_object_get_ex(caps, "write_multiple", &v)) {
		if (!json_object_is_type(v, json_type_boolean))
			return problem(vi, "\"%s\" is not a boolean",
				       "write_multiple");
		vi->write_multiple = json_object_get_boolean(v);
	}
	if (json_object_object_get_ex(caps, "twin_socket", &t)) {
		if (!json_object_is_type(t, json_type_object))
			return problem(vi, "\"%s\" is not an object",
				       "twin_socket");
		if (json_object_object_get_ex(t, "supported", &v)) {
			if (!json_object_is_type(v, json_type_boolean))
				return problem(vi, "\"%s\" is not a boolean",
					       "twin_socket.supported");
			vi->twin = json_object_get_boolean(v);
		}
		get_uint(t, "fd_index", &vi->has_twin_index, &vi->twin_index,
			 vi);
	}
	return vi->problem[0] ? -EBADMSG : 0;
}

int cf_version_parse(const struct cf_msg *m, struct cf_verinfo *vi)
{
	static const char *const known[] = {"max_msg_fds", "max_data_xfer_size",
					    "pgsizes", "max_dma_maps"};
	struct json_tokener *tok;
	struct json_object *root, *caps;
	const char *txt;
	size_t jl, i;
	int e;

	memset(vi, 0, sizeof(*vi));
	if (m->len < sizeof(struct mu_version))
		return problem(vi, "payload of %s bytes, below 4",
			       m->len ? "1-3" : "0");
	memcpy(&vi->major, m->payload, 2);
	memcpy(&vi->minor, m->payload + 2, 2);
	txt = (const char *)m->payload + 4;
	jl = m->len - 4;
	if (!jl)
		return 0;
	{
		const char *nul = memchr(txt, 0, jl);

		if (!nul)
			return problem(vi, "%s",
				       "JSON text not NUL-terminated");
		for (i = (size_t)(nul - txt); i < jl; i++)
			if (txt[i])
				return problem(vi, "%s",
					       "bytes after the JSON's NUL");
		jl = (size_t)(nul - txt);
	}
	if (!jl)
		return 0;
	vi->has_json = true;
	tok = json_tokener_new_ex(32);
	if (!tok)
		return -ENOMEM;
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	root = json_tokener_parse_ex(tok, txt, (int)jl);
	e = json_tokener_get_error(tok) == json_tokener_success &&
			    json_tokener_get_parse_end(tok) == jl
		    ? 0
		    : -EBADMSG;
	json_tokener_free(tok);
	if (e < 0 || !root) {
		json_object_put(root);
		return problem(vi, "%s", "JSON text does not parse");
	}
	if (!json_object_is_type(root, json_type_object)) {
		json_object_put(root);
		return problem(vi, "%s", "JSON text is not an object");
	}
	if (json_object_object_get_ex(root, "capabilities", &caps)) {
		vi->wrapper = true;
		if (!json_object_is_type(caps, json_type_object))
			e = problem(vi, "\"%s\" is not an object",
				    "capabilities");
		else
			e = parse_caps(caps, vi);
	} else {
		for (i = 0; i < sizeof(known) / sizeof(*known); i++)
			if (json_object_object_get_ex(root, known[i], NULL))
				vi->top_level_caps = true;
	}
	json_object_put(root);
	return e;
}

int cf_negotiate(struct cf_ctx *x, struct cf_conn *c, char *why, size_t whylen)
{
	struct cf_verinfo vi;
	struct cf_msg m;
	char eb[96];
	int e;

	e = cf_version_call(c, 0, 2, CF_STD_JSON, &m);
	if (e < 0 && e != -EPROTO) {
		snprintf(why, whylen, "VERSION: %s",
			 cf_conn_strerror(e, c->timeout_ms, eb, sizeof(eb)));
		return e;
	}
	if (e == -EPROTO) {
		snprintf(why, whylen, "VERSION reply has id %u, sent %u",
			 m.hdr.msg_id, (unsigned)(uint16_t)(c->next_id - 1));
		cf_msg_free(&m);
		return -EPROTO;
	}
	if (cf_is_error(&m)) {
		e = cf_reply_errno(&m);
		snprintf(why, whylen, "VERSION 0.2 refused: %s", cf_errname(e));
		cf_msg_free(&m);
		return e;
	}
	e = cf_version_parse(&m, &vi);
	if (e == 0 && m.nfds)
		snprintf(vi.problem, sizeof(vi.problem),
			 "VERSION reply carried %u fds (no twin socket asked)",
			 m.nfds);
	if (e == 0 && (vi.major != 0 || vi.minor > 2))
		snprintf(vi.problem, sizeof(vi.problem),
			 "reply version %u.%u to a 0.2 proposal", vi.major,
			 vi.minor);
	cf_msg_free(&m);
	if (vi.problem[0]) {
		snprintf(why, whylen, "VERSION reply: %s", vi.problem);
		return -EBADMSG;
	}
	x->sess.major = vi.major;
	x->sess.minor = vi.minor;
	x->sess.max_msg_fds = vi.has_max_msg_fds
				      ? (uint32_t)(vi.max_msg_fds > CF_MAX_FDS
							   ? CF_MAX_FDS
							   : vi.max_msg_fds)
				      : MU_DEFAULT_MAX_MSG_FDS;
	x->sess.max_data_xfer =
		vi.has_mdx ? vi.max_data_xfer : MU_DEFAULT_MAX_DATA_XFER;
	x->sess.max_dma_maps = vi.has_max_dma_maps
				       ? (uint32_t)(vi.max_dma_maps > UINT32_MAX
							    ? UINT32_MAX
							    : vi.max_dma_maps)
				       : MU_DEFAULT_MAX_DMA_MAPS;
	x->sess.pgsizes = vi.has_pgsizes ? vi.pgsizes : MU_DEFAULT_PGSIZES;
	x->sess.write_multiple = vi.write_multiple;
	return 0;
}

/* A busy server (another client still being cleaned up) refuses or
 * closes at once: try again for a while before calling it gone. */
int cf_open_session(struct cf_ctx *x, struct cf_conn **out)
{
	char why[CF_EV_MAX];
	int e = -ECONNREFUSED, tries;

	for (tries = 0; tries < 20; tries++) {
		struct cf_conn *c;

		if (tries)
			usleep(50 * 1000);
		e = cf_conn_open(&c, x->path, x->timeout_ms, &x->dma);
		if (e < 0) {
			snprintf(x->ev, sizeof(x->ev), "connect: %s",
				 strerror(-e));
			if (e == -EAGAIN)
				continue;
			return e;
		}
		e = cf_negotiate(x, c, why, sizeof(why));
		if (e == 0) {
			*out = c;
			if (x->server_pid <= 0) {
				int pid = cf_conn_peer_pid(c);

				x->server_pid = pid > 0 ? pid : 0;
			}
			return 0;
		}
		cf_conn_close(c);
		snprintf(x->ev, sizeof(x->ev), "%s", why);
		if (e != -EBUSY && e != -ECONNRESET)
			return e;
	}
	return e;
}
