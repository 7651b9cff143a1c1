/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * checks-version.c - negotiation: every proposal shape peers in the field
 * send, unknown keys, broken JSON, a command before VERSION, VERSION
 * twice, the twin socket. Each check opens its own connection.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "checks.h"

#define QEMU_JSON                                                              \
	"{\"capabilities\":{\"migration\":{\"pgsize\":4096,"                   \
	"\"max_bitmap_size\":268435456},\"max_msg_fds\":16,"                   \
	"\"max_data_xfer_size\":1048576,\"pgsizes\":4096,"                     \
	"\"max_dma_maps\":65535,\"write_multiple\":true}}"
#define LIBVFIO_USER_JSON                                                      \
	"{\"capabilities\":{\"max_msg_fds\":8,\"max_data_xfer_size\":1048576," \
	"\"migration\":{\"pgsize\":4096,\"max_bitmap_size\":268435456}}}"
#define RUST_VMM_JSON                                                          \
	"{\"capabilities\":{\"max_msg_fds\":1,\"max_data_xfer_size\":1048576," \
	"\"migration\":{\"pgsize\":4096,\"max_bitmap_size\":268435456}}}"

/* Connect and propose; a busy server (the previous check's connection
 * still being torn down) is retried. 0 with a reply in m, or -errno
 * (-ECONNRESET: closed without a reply). */
static int propose(struct cf_ctx *x, uint16_t major, uint16_t minor,
		   const char *json, struct cf_conn **cp, struct cf_msg *m)
{
	int e = -ECONNREFUSED, tries;

	*cp = NULL;
	for (tries = 0; tries < 20; tries++) {
		if (tries)
			usleep(50 * 1000);
		e = cf_conn_open(cp, x->path, x->timeout_ms, &x->dma);
		if (e < 0)
			return e;
		e = cf_version_call(*cp, major, minor, json, m);
		if (e == 0 && cf_reply_errno(m) == -EBUSY) {
			cf_msg_free(m);
			cf_conn_close(*cp);
			*cp = NULL;
			continue;
		}
		return e;
	}
	return e;
}

/* Judge a reply to a proposal that must be accepted. */
static int judge(struct cf_ctx *x, struct cf_conn *c, int e, struct cf_msg *m,
		 uint16_t major, uint16_t minor, const char *label)
{
	struct cf_verinfo vi;
	int st;

	if (e == -EPROTO)
		return cf_set(x, CF_FAIL,
			      "%s: reply has id %u, not the "
			      "proposal's",
			      label, m->hdr.msg_id);
	if (e < 0)
		return cf_lost(x, e, label);
	if (cf_check_hdr(x, m, MU_CMD_VERSION, 1, label) < 0)
		return CF_FAIL;
	if (cf_is_error(m))
		return cf_set(x, CF_FAIL, "%s refused: %s", label,
			      cf_errname(cf_reply_errno(m)));
	if (cf_version_parse(m, &vi) < 0)
		return cf_set(x, CF_FAIL, "%s: reply %s", label, vi.problem);
	if (m->nfds)
		return cf_set(x, CF_FAIL,
			      "%s: reply carried %u fds, no twin socket asked",
			      label, m->nfds);
	if (vi.major != major || vi.minor > minor)
		return cf_set(x, CF_FAIL, "%s: reply version %u.%u", label,
			      vi.major, vi.minor);
	if (vi.has_pgsizes && !(vi.pgsizes & 4096))
		return cf_set(x, CF_FAIL,
			      "%s: reply pgsizes 0x%llx shares nothing with "
			      "the proposal's 0x1000",
			      label, (unsigned long long)vi.pgsizes);
	x->c = c;
	e = cf_sync(x, label);
	x->c = NULL;
	if (e < 0)
		return CF_FAIL;
	st = CF_PASS;
	if (vi.has_json && !vi.wrapper && vi.top_level_caps)
		return cf_set(x, CF_WARN,
			      "%s: capabilities at the top level, not inside "
			      "\"capabilities\" (rust-vmm's client fails)",
			      label);
	if (!vi.has_max_msg_fds)
		return cf_set(x, CF_WARN,
			      "%s: reply %u.%u omits max_msg_fds (spec "
			      "default 1, QEMU assumes 8)",
			      label, vi.major, vi.minor);
	cf_set(x, st, "%s: reply %u.%u, max_msg_fds %llu%s", label, vi.major,
	       vi.minor, (unsigned long long)vi.max_msg_fds,
	       vi.has_json ? "" : ", no JSON");
	return st;
}

static int accept_shape(struct cf_ctx *x, uint16_t major, uint16_t minor,
			const char *json, const char *label)
{
	struct cf_conn *c;
	struct cf_msg m;
	int e = propose(x, major, minor, json, &c, &m), st;

	if (!c)
		return cf_set(x, CF_FAIL, "%s: connect: %s", label,
			      strerror(-e));
	st = judge(x, c, e, &m, major, minor, label);
	cf_msg_free(&m);
	cf_conn_close(c);
	return st;
}

static int start_connect(struct cf_ctx *x)
{
	return cf_set(x, CF_PASS,
		      "vfio-user %u.%u, max_msg_fds %u, max_data_xfer_size "
		      "%llu, max_dma_maps %u, pgsizes 0x%llx, write_multiple "
		      "%s",
		      x->sess.major, x->sess.minor, x->sess.max_msg_fds,
		      (unsigned long long)x->sess.max_data_xfer,
		      x->sess.max_dma_maps, (unsigned long long)x->sess.pgsizes,
		      x->sess.write_multiple ? "yes" : "no");
}

static int v_qemu(struct cf_ctx *x)
{
	return accept_shape(x, 0, 0, QEMU_JSON, "QEMU's 0.0 proposal");
}

static int v_libvfio(struct cf_ctx *x)
{
	return accept_shape(x, 0, 2, LIBVFIO_USER_JSON,
			    "libvfio-user's 0.2 proposal");
}

/* rust-vmm can take one fd per message: no reply may carry more. */
static int v_rust(struct cf_ctx *x)
{
	struct cf_conn *c;
	struct cf_msg m;
	unsigned i, n;
	int e = propose(x, 0, 1, RUST_VMM_JSON, &c, &m), st;

	if (!c)
		return cf_set(x, CF_FAIL, "connect: %s", strerror(-e));
	st = judge(x, c, e, &m, 0, 1, "rust-vmm's 0.1 proposal");
	cf_msg_free(&m);
	if (st != CF_PASS && st != CF_WARN)
		goto out;
	x->c = c;
	if (cf_get_info(x) < 0) {
		st = CF_FAIL;
		goto out;
	}
	n = x->info.num_regions < CF_NREG_MAX ? x->info.num_regions
					      : CF_NREG_MAX;
	for (i = 0; i < n; i++) {
		struct mu_region_info in = {.argsz = 4096, .index = i};

		e = cf_call(c, MU_CMD_DEVICE_GET_REGION_INFO, &in, sizeof(in),
			    NULL, 0, &m);
		if (e < 0) {
			st = cf_lost(x, e, "GET_REGION_INFO");
			goto out;
		}
		if (m.nfds > 1) {
			st = cf_set(x, CF_FAIL,
				    "GET_REGION_INFO %u: reply carried %u fds "
				    "to a client that announced max_msg_fds 1",
				    i, m.nfds);
			cf_msg_free(&m);
			goto out;
		}
		cf_msg_free(&m);
	}
out:
	x->c = NULL;
	cf_conn_close(c);
	return st;
}

static int v_no_json(struct cf_ctx *x)
{
	return accept_shape(x, 0, 2, NULL, "0.2 without JSON");
}

static int v_unknown_keys(struct cf_ctx *x)
{
	return accept_shape(
		x, 0, 2,
		"{\"capabilities\":{\"max_msg_fds\":16,\"x-conform-unknown\":"
		"{\"nested\":[1,2,{\"a\":null}],\"s\":\"\\u00e9\"},"
		"\"migration\":{\"pgsize\":4096}},\"x-top-level\":true}",
		"proposal with unknown keys");
}

static int v_newer_minor(struct cf_ctx *x)
{
	return accept_shape(x, 0, 999, CF_STD_JSON, "0.999 proposal");
}

/* A proposal that must not be accepted: error reply or close. */
static int must_refuse(struct cf_ctx *x, uint16_t major, uint16_t minor,
		       const char *json, const char *label)
{
	struct cf_verinfo vi;
	struct cf_conn *c;
	struct cf_msg m;
	int e = propose(x, major, minor, json, &c, &m), st;

	if (!c)
		return cf_set(x, CF_FAIL, "connect: %s", strerror(-e));
	if (e == -ECONNRESET)
		st = cf_set(x, CF_PASS, "%s: connection closed", label);
	else if (e < 0 && e != -EPROTO)
		st = cf_lost(x, e, label);
	else if (cf_check_hdr(x, &m, MU_CMD_VERSION, 1, label) < 0)
		st = CF_FAIL;
	else if (cf_is_error(&m))
		st = cf_set(x, CF_PASS, "%s: refused with %s", label,
			    cf_errname(cf_reply_errno(&m)));
	else if (major && cf_version_parse(&m, &vi) == 0 && vi.major == major)
		st = cf_set(x, CF_PASS, "%s: server speaks %u.%u", label,
			    vi.major, vi.minor);
	else
		st = cf_set(x, CF_FAIL, "%s: accepted", label);
	cf_msg_free(&m);
	cf_conn_close(c);
	return st;
}

static int v_bad_major(struct cf_ctx *x)
{
	return must_refuse(x, 1, 0, CF_STD_JSON, "major 1 proposal");
}

static int v_bad_json(struct cf_ctx *x)
{
	static const char *const bad[] = {
		"{\"capabilities\":{\"max_msg_fds\":16",
		"[\"capabilities\"]",
		"{\"capabilities\":7}",
		"{\"capabilities\":{}} trailing",
	};
	char ev[3][CF_EV_MAX];
	size_t i;
	int st;

	for (i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		char label[64];

		snprintf(label, sizeof(label), "JSON %.24s", bad[i]);
		st = must_refuse(x, 0, 2, bad[i], label);
		if (st != CF_PASS)
			return st;
		if (i < 3)
			snprintf(ev[i], sizeof(ev[i]), "%.70s", x->ev);
	}
	return cf_set(x, CF_PASS, "4 malformed texts refused (%s; ...)", ev[0]);
}

static int v_wrong_types(struct cf_ctx *x)
{
	int st = must_refuse(x, 0, 2,
			     "{\"capabilities\":{\"max_msg_fds\":\"16\"}}",
			     "max_msg_fds as a string");

	if (st == CF_FAIL && strstr(x->ev, "accepted"))
		return cf_set(x, CF_WARN,
			      "max_msg_fds given as a string was accepted: a "
			      "client can't tell its limits were ignored");
	return st;
}

static int v_not_first(struct cf_ctx *x)
{
	struct mu_device_info in = {.argsz = sizeof(in)};
	struct cf_conn *c;
	struct cf_msg m;
	int e = cf_conn_open(&c, x->path, x->timeout_ms, &x->dma), st;

	if (e < 0)
		return cf_set(x, CF_FAIL, "connect: %s", strerror(-e));
	e = cf_call(c, MU_CMD_DEVICE_GET_INFO, &in, sizeof(in), NULL, 0, &m);
	if (e == -ECONNRESET)
		st = cf_set(x, CF_PASS, "GET_INFO first: connection closed");
	else if (e < 0 && e != -EPROTO)
		st = cf_lost(x, e, "GET_INFO sent before VERSION");
	else if (cf_check_hdr(x, &m, MU_CMD_DEVICE_GET_INFO, 0,
			      "GET_INFO first") < 0)
		st = CF_FAIL;
	else if (cf_is_error(&m))
		st = cf_set(x, CF_PASS, "GET_INFO first: refused with %s",
			    cf_errname(cf_reply_errno(&m)));
	else
		st = cf_set(x, CF_FAIL,
			    "GET_INFO before VERSION was executed (%zu bytes "
			    "of reply)",
			    m.len);
	cf_msg_free(&m);
	cf_conn_close(c);
	return st;
}

static int v_twice(struct cf_ctx *x)
{
	struct cf_msg m;
	int e = cf_version_call(x->c, 0, 2, CF_STD_JSON, &m), st;

	if (e == -ECONNRESET)
		return cf_set(x, CF_WARN,
			      "second VERSION: the server closed the "
			      "connection");
	if (e < 0 && e != -EPROTO) {
		cf_msg_free(&m);
		return cf_lost(x, e, "second VERSION");
	}
	if (e == -EPROTO ||
	    cf_check_hdr(x, &m, MU_CMD_VERSION, 1, "second VERSION") < 0) {
		if (e == -EPROTO)
			cf_set(x, CF_FAIL, "second VERSION: reply id %u",
			       m.hdr.msg_id);
		cf_msg_free(&m);
		return CF_FAIL;
	}
	st = cf_is_error(&m) ? CF_PASS : CF_WARN;
	if (st == CF_PASS)
		cf_set(x, CF_PASS,
		       "second VERSION refused with %s, stream in "
		       "sync",
		       cf_errname(cf_reply_errno(&m)));
	else
		cf_set(x, CF_WARN,
		       "second VERSION accepted: which limits apply now is "
		       "anyone's guess");
	cf_msg_free(&m);
	{
		char keep[CF_EV_MAX];

		snprintf(keep, sizeof(keep), "%s", x->ev);
		if (cf_sync(x, "a second VERSION") < 0)
			return CF_FAIL;
		snprintf(x->ev, sizeof(x->ev), "%s", keep);
	}
	return st;
}

static int v_twin(struct cf_ctx *x)
{
	struct cf_verinfo vi;
	struct cf_conn *c;
	struct cf_msg m;
	int e = propose(x, 0, 2,
			"{\"capabilities\":{\"max_msg_fds\":16,"
			"\"twin_socket\":{\"supported\":true}}}",
			&c, &m),
	    st, type = 0;
	socklen_t tl = sizeof(type);
	struct sockaddr sa;
	socklen_t sl = sizeof(sa);

	if (!c)
		return cf_set(x, CF_FAIL, "connect: %s", strerror(-e));
	if (e < 0) {
		st = cf_lost(x, e, "twin socket proposal");
		goto out;
	}
	if (cf_check_hdr(x, &m, MU_CMD_VERSION, CF_MAX_FDS,
			 "twin socket proposal") < 0) {
		st = CF_FAIL;
		goto out;
	}
	if (cf_is_error(&m)) {
		st = cf_set(x, CF_FAIL, "twin socket proposal refused: %s",
			    cf_errname(cf_reply_errno(&m)));
		goto out;
	}
	if (cf_version_parse(&m, &vi) < 0) {
		st = cf_set(x, CF_FAIL, "reply %s", vi.problem);
		goto out;
	}
	if (!vi.twin) {
		st = m.nfds ? cf_set(x, CF_FAIL,
				     "twin socket not enabled, yet the reply "
				     "carried %u fds",
				     m.nfds)
			    : cf_set(x, CF_SKIP, "twin socket not offered");
		goto out;
	}
	if (!vi.has_twin_index || vi.twin_index >= m.nfds) {
		st = cf_set(x, CF_FAIL,
			    "twin_socket.supported true but fd_index %s with "
			    "%u fds",
			    vi.has_twin_index ? "out of range" : "missing",
			    m.nfds);
		goto out;
	}
	e = m.fds[vi.twin_index];
	if (getsockopt(e, SOL_SOCKET, SO_TYPE, &type, &tl) < 0 ||
	    getsockname(e, &sa, &sl) < 0 || sa.sa_family != AF_UNIX ||
	    type != SOCK_STREAM) {
		st = cf_set(x, CF_FAIL,
			    "fd_index %llu is not an AF_UNIX stream socket",
			    (unsigned long long)vi.twin_index);
		goto out;
	}
	cf_conn_set_twin(c, dup(e));
	x->c = c;
	st = cf_sync(x, "twin socket negotiation") < 0
		     ? CF_FAIL
		     : cf_set(x, CF_PASS,
			      "twin socket enabled: fd_index %llu of %u fds, "
			      "an AF_UNIX stream socket",
			      (unsigned long long)vi.twin_index, m.nfds);
	x->c = NULL;
out:
	cf_msg_free(&m);
	cf_conn_close(c);
	return st;
}

const struct cf_check cf_checks_start[] = {
	{"conn.connect", S_VER, "4.2",
	 "the server accepts a connection and a standard 0.2 proposal",
	 CF_NEED_SESSION, start_connect},
	{NULL, NULL, NULL, NULL, 0, NULL},
};

const struct cf_check cf_checks_version[] = {
	{"version.qemu-0.0", S_VER, "4.2",
	 "QEMU's native 0.0 proposal with its capabilities is accepted as 0.0",
	 CF_NEED_NONE, v_qemu},
	{"version.libvfio-user-0.2", S_VER, "4.2",
	 "libvfio-user's 0.2 proposal is accepted", CF_NEED_NONE, v_libvfio},
	{"version.rust-vmm-0.1", S_VER, "4.4",
	 "rust-vmm's 0.1 proposal (max_msg_fds 1) is accepted and honoured",
	 CF_NEED_NONE, v_rust},
	{"version.no-json", S_VER, "4.3",
	 "a proposal without JSON (all defaults) is accepted", CF_NEED_NONE,
	 v_no_json},
	{"version.unknown-keys", S_VER, "4.3",
	 "unknown capabilities are ignored, not refused", CF_NEED_NONE,
	 v_unknown_keys},
	{"version.newer-minor", S_VER, "4.2",
	 "a higher minor is answered with a minor <= the proposal's",
	 CF_NEED_NONE, v_newer_minor},
	{"version.bad-major", S_VER, "4.2",
	 "an unsupported major is refused or the connection closed",
	 CF_NEED_NONE, v_bad_major},
	{"version.bad-json", S_VER, "4.3",
	 "malformed JSON capabilities are refused", CF_NEED_NONE, v_bad_json},
	{"version.wrong-types", S_VER, "4.3",
	 "a capability of the wrong JSON type is refused", CF_NEED_NONE,
	 v_wrong_types},
	{"version.not-first", S_VER, "2.4",
	 "a command before VERSION is not executed", CF_NEED_NONE, v_not_first},
	{"version.twice", S_VER, "2.4",
	 "a second VERSION is refused and the stream stays in sync",
	 CF_NEED_SESSION, v_twice},
	{"version.twin-socket", S_VER, "4.5",
	 "an enabled twin socket is one AF_UNIX stream fd named by fd_index",
	 CF_NEED_NONE, v_twin},
	{NULL, NULL, NULL, NULL, 0, NULL},
};
