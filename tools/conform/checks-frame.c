/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * checks-frame.c - the stream: reply headers, error replies, NO_REPLY,
 * pipelining, id reuse, and whether the stream is still in sync after a
 * refused message (the next reply must still match its request).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checks.h"

#define BAD_REGION 0xfffffff0u

/* Send GET_INFO with a chosen id; check the reply's header word by word. */
static int one_id(struct cf_ctx *x, uint16_t id)
{
	struct mu_device_info in = {.argsz = sizeof(in)};
	struct cf_msg m;
	int e = cf_send(x->c, id, MU_CMD_DEVICE_GET_INFO, 0, 0, &in, sizeof(in),
			NULL, 0);

	if (e == 0)
		e = cf_wait(x->c, &m, x->timeout_ms);
	if (e < 0)
		return cf_lost(x, e, "GET_INFO");
	if (m.hdr.msg_id != id)
		e = cf_set(x, CF_FAIL,
			   "GET_INFO id 0x%04x: reply has id 0x%04x", id,
			   m.hdr.msg_id);
	else if (cf_check_hdr(x, &m, MU_CMD_DEVICE_GET_INFO, 0, "GET_INFO") < 0)
		e = CF_FAIL;
	else if (cf_is_error(&m))
		e = cf_set(x, CF_FAIL, "GET_INFO refused: %s",
			   cf_errname(cf_reply_errno(&m)));
	else if (m.hdr.size != sizeof(struct mu_hdr) + sizeof(in))
		e = cf_set(x, CF_FAIL, "GET_INFO reply size %u, expected 32",
			   m.hdr.size);
	else
		e = CF_PASS;
	cf_msg_free(&m);
	return e;
}

static int f_reply_id(struct cf_ctx *x)
{
	static const uint16_t ids[] = {0xbeef, 0, 0xffff, 0x0101};
	size_t i;
	int st;

	for (i = 0; i < sizeof(ids) / sizeof(*ids); i++) {
		st = one_id(x, ids[i]);
		if (st != CF_PASS)
			return st;
	}
	return cf_set(x, CF_PASS,
		      "ids 0xbeef, 0, 0xffff, 0x0101 echoed with cmd 4, type "
		      "reply, 32 bytes");
}

static int f_error_reply(struct cf_ctx *x)
{
	struct mu_region_access a = {0, BAD_REGION, 4};
	struct cf_msg m;
	int e = cf_call(x->c, MU_CMD_REGION_READ, &a, sizeof(a), NULL, 0, &m),
	    st;

	if (e == -EPROTO)
		st = cf_set(x, CF_FAIL, "reply id %u", m.hdr.msg_id);
	else if (e < 0)
		st = cf_lost(x, e, "REGION_READ of region 0xfffffff0");
	else if (!cf_is_error(&m) && m.hdr.error)
		st = cf_set(x, CF_FAIL,
			    "refusal has error %u (%s) but no ERROR flag "
			    "(flags 0x%x)",
			    m.hdr.error, cf_errname((int)m.hdr.error),
			    m.hdr.flags);
	else if (!cf_is_error(&m))
		st = cf_set(x, CF_FAIL,
			    "REGION_READ of region 0xfffffff0 answered without "
			    "ERROR (%zu bytes)",
			    m.len);
	else if (cf_check_hdr(x, &m, MU_CMD_REGION_READ, 0, "error reply") < 0)
		st = CF_FAIL;
	else if (!m.hdr.error)
		st = cf_set(x, CF_WARN,
			    "error reply with errno 0: legal, but peers report "
			    "it as EIO with no cause");
	else
		st = cf_set(x, CF_PASS, "ERROR flag, error %s, header only",
			    cf_errname((int)m.hdr.error));
	cf_msg_free(&m);
	return st;
}

/* A refused message with a payload, then: is the stream in sync? */
static int refused_then_sync(struct cf_ctx *x, uint16_t cmd, const void *p,
			     size_t len, const char *what)
{
	struct cf_msg m;
	int e = cf_call(x->c, cmd, p, len, NULL, 0, &m);

	if (e == -EPROTO) {
		cf_msg_free(&m);
		return cf_set(x, CF_FAIL, "%s: reply with id %u", what,
			      m.hdr.msg_id);
	}
	if (e < 0)
		return cf_lost(x, e, what);
	if (!cf_is_error(&m)) {
		cf_msg_free(&m);
		return cf_set(x, CF_FAIL, "%s: accepted", what);
	}
	cf_msg_free(&m);
	if (cf_sync(x, what) < 0)
		return CF_FAIL;
	return cf_set(x, CF_PASS, "%s: refused, next reply matches", what);
}

static int f_sync_after_error(struct cf_ctx *x)
{
	uint8_t p[16 + 256];
	struct mu_region_access a = {0, BAD_REGION, 256};

	/* Undrained, the data would read as a header with a huge size. */
	memset(p, 0xa5, sizeof(p));
	memcpy(p, &a, sizeof(a));
	return refused_then_sync(x, MU_CMD_REGION_WRITE, p, sizeof(p),
				 "REGION_WRITE of 256 bytes to region "
				 "0xfffffff0");
}

static int f_unknown_cmd(struct cf_ctx *x)
{
	uint8_t p[64];

	memset(p, 0x5a, sizeof(p));
	return refused_then_sync(x, 0x7777, p, sizeof(p),
				 "command 0x7777 with 64 bytes");
}

static int f_oversize(struct cf_ctx *x)
{
	uint64_t n = x->sess.max_data_xfer + 4096;
	struct mu_region_access a = {0, CF_CFG, 0};
	uint8_t *p;
	char what[96];
	int st;

	if (n > (16u << 20))
		return cf_set(x, CF_SKIP,
			      "max_data_xfer_size %llu: too large to exceed "
			      "within bounds",
			      (unsigned long long)x->sess.max_data_xfer);
	a.count = (uint32_t)n;
	p = calloc(1, sizeof(a) + n);
	if (!p)
		return cf_set(x, CF_SKIP, "out of memory");
	memcpy(p, &a, sizeof(a));
	snprintf(what, sizeof(what),
		 "REGION_WRITE of %llu bytes (max_data_xfer_size %llu)",
		 (unsigned long long)n,
		 (unsigned long long)x->sess.max_data_xfer);
	st = refused_then_sync(x, MU_CMD_REGION_WRITE, p, sizeof(a) + n, what);
	free(p);
	return st;
}

/* Rewrite the (read-only) vendor ID with its own value: harmless. */
static int f_no_reply(struct cf_ctx *x)
{
	uint8_t p[16 + 2];
	struct mu_region_access a = {0, CF_CFG, 2};
	struct mu_device_info in = {.argsz = sizeof(in)};
	uint16_t wid, gid, vid;
	struct cf_msg m;
	int e;

	e = cf_read(x, CF_CFG, 0, &vid, 2);
	if (e == CF_EBROKEN)
		return CF_FAIL;
	if (e < 0)
		return cf_set(x, CF_SKIP, "config space not readable: %s",
			      cf_errname(e));
	memcpy(p, &a, sizeof(a));
	memcpy(p + sizeof(a), &vid, 2);
	wid = cf_next_id(x->c);
	gid = cf_next_id(x->c);
	e = cf_send(x->c, wid, MU_CMD_REGION_WRITE, MU_FLAG_NO_REPLY, 0, p,
		    sizeof(p), NULL, 0);
	if (e == 0)
		e = cf_send(x->c, gid, MU_CMD_DEVICE_GET_INFO, 0, 0, &in,
			    sizeof(in), NULL, 0);
	if (e == 0)
		e = cf_wait(x->c, &m, x->timeout_ms);
	if (e < 0)
		return cf_lost(x, e, "posted REGION_WRITE then GET_INFO");
	if (m.hdr.msg_id == wid) {
		cf_msg_free(&m);
		return cf_set(x, CF_FAIL,
			      "REGION_WRITE with NO_REPLY got a reply (id %u)",
			      wid);
	}
	e = m.hdr.msg_id == gid ? CF_PASS : CF_FAIL;
	cf_msg_free(&m);
	if (e == CF_FAIL)
		return cf_set(x, CF_FAIL, "first reply has id %u, expected %u",
			      m.hdr.msg_id, gid);
	return cf_set(x, CF_PASS,
		      "posted config write: no reply; next reply matches");
}

static int f_no_reply_error(struct cf_ctx *x)
{
	struct mu_region_access a = {0, BAD_REGION, 4};
	struct mu_device_info in = {.argsz = sizeof(in)};
	uint16_t rid = cf_next_id(x->c), gid = cf_next_id(x->c);
	struct cf_msg m;
	int e;

	e = cf_send(x->c, rid, MU_CMD_REGION_READ, MU_FLAG_NO_REPLY, 0, &a,
		    sizeof(a), NULL, 0);
	if (e == 0)
		e = cf_send(x->c, gid, MU_CMD_DEVICE_GET_INFO, 0, 0, &in,
			    sizeof(in), NULL, 0);
	if (e == 0)
		e = cf_wait(x->c, &m, x->timeout_ms);
	if (e < 0)
		return cf_lost(x, e, "failing NO_REPLY command then GET_INFO");
	if (m.hdr.msg_id == rid) {
		cf_msg_free(&m);
		e = cf_wait(x->c, &m, x->timeout_ms);
		if (e < 0)
			return cf_lost(x, e, "GET_INFO after the error reply");
		e = m.hdr.msg_id == gid;
		cf_msg_free(&m);
		if (!e)
			return cf_set(x, CF_FAIL,
				      "stream out of sync after an "
				      "error reply to NO_REPLY");
		return cf_set(x, CF_WARN,
			      "a failed NO_REPLY command got an error reply: "
			      "QEMU does not expect it and desyncs");
	}
	e = m.hdr.msg_id == gid;
	cf_msg_free(&m);
	if (!e)
		return cf_set(x, CF_FAIL, "first reply has id %u, expected %u",
			      m.hdr.msg_id, gid);
	return cf_set(x, CF_PASS, "failed NO_REPLY command: silent, in sync");
}

#define PIPE_N 16

static int f_pipeline(struct cf_ctx *x)
{
	struct mu_device_info gi = {.argsz = sizeof(gi)};
	struct mu_irq_info ii = {.argsz = sizeof(ii)};
	struct mu_region_access ra = {0, CF_CFG, 4};
	uint16_t ids[PIPE_N], cmds[PIPE_N];
	struct cf_msg m;
	unsigned i;
	int e;

	for (i = 0; i < PIPE_N; i++) {
		const void *p = i % 3 == 0   ? (const void *)&gi
				: i % 3 == 1 ? (const void *)&ii
					     : (const void *)&ra;

		cmds[i] = i % 3 == 0   ? MU_CMD_DEVICE_GET_INFO
			  : i % 3 == 1 ? MU_CMD_DEVICE_GET_IRQ_INFO
				       : MU_CMD_REGION_READ;
		ids[i] = cf_next_id(x->c);
		e = cf_send(x->c, ids[i], cmds[i], 0, 0, p, 16, NULL, 0);
		if (e < 0)
			return cf_lost(x, e, "pipelined send");
	}
	for (i = 0; i < PIPE_N; i++) {
		e = cf_wait(x->c, &m, x->timeout_ms);
		if (e < 0)
			return cf_lost(x, e, "pipelined replies");
		e = m.hdr.msg_id != ids[i] || m.hdr.cmd != cmds[i];
		cf_msg_free(&m);
		if (e)
			return cf_set(x, CF_FAIL,
				      "reply %u of %u has id %u cmd %u, "
				      "expected id %u cmd %u",
				      i + 1, PIPE_N, m.hdr.msg_id, m.hdr.cmd,
				      ids[i], cmds[i]);
	}
	return cf_set(x, CF_PASS, "%u pipelined requests answered in order",
		      PIPE_N);
}

static int f_id_reuse(struct cf_ctx *x)
{
	struct mu_device_info gi = {.argsz = sizeof(gi)};
	struct cf_msg m;
	int i, e;

	for (i = 0; i < 2; i++) {
		e = cf_send(x->c, 7, MU_CMD_DEVICE_GET_INFO, 0, 0, &gi,
			    sizeof(gi), NULL, 0);
		if (e < 0)
			return cf_lost(x, e, "GET_INFO");
	}
	for (i = 0; i < 2; i++) {
		e = cf_wait(x->c, &m, x->timeout_ms);
		if (e < 0)
			return cf_lost(x, e, "second reply to a reused id");
		e = m.hdr.msg_id != 7 || cf_is_error(&m);
		cf_msg_free(&m);
		if (e)
			return cf_set(x, CF_FAIL,
				      "reply %d to two GET_INFOs with id 7 "
				      "has id %u%s",
				      i + 1, m.hdr.msg_id,
				      cf_is_error(&m) ? " (error)" : "");
	}
	return cf_set(x, CF_PASS,
		      "two in-flight requests with id 7: two "
		      "replies");
}

/* Undefined flag bits or a non-zero error field in a command: either
 * answer is legal, a lost stream is not. */
static int odd_header(struct cf_ctx *x, uint32_t flags, uint32_t error,
		      const char *what)
{
	struct mu_device_info gi = {.argsz = sizeof(gi)};
	struct mu_hdr h = {.msg_id = cf_next_id(x->c),
			   .cmd = MU_CMD_DEVICE_GET_INFO,
			   .size = sizeof(h) + sizeof(gi),
			   .flags = flags,
			   .error = error};
	struct cf_msg m;
	bool refused;
	int e = cf_send_msg(x->c, x->c->fd, &h, &gi, sizeof(gi), NULL, 0);

	if (e == 0)
		e = cf_wait(x->c, &m, x->timeout_ms);
	if (e == -ECONNRESET)
		return cf_set(x, CF_WARN,
			      "%s: the server closed the connection", what);
	if (e < 0)
		return cf_lost(x, e, what);
	refused = cf_is_error(&m);
	e = m.hdr.msg_id != h.msg_id;
	cf_msg_free(&m);
	if (e)
		return cf_set(x, CF_FAIL, "%s: reply id %u, sent %u", what,
			      m.hdr.msg_id, h.msg_id);
	if (cf_sync(x, what) < 0)
		return CF_FAIL;
	return cf_set(x, CF_PASS, "%s: %s, in sync", what,
		      refused ? "refused" : "answered");
}

static int f_reserved_flags(struct cf_ctx *x)
{
	return odd_header(x, 1u << 8, 0, "GET_INFO with flag bit 8");
}

static int f_error_field(struct cf_ctx *x)
{
	return odd_header(x, 0, EINVAL, "GET_INFO with error field 22");
}

const struct cf_check cf_checks_frame[] = {
	{"frame.reply-id", S_HDR, "3.3",
	 "a reply echoes its command's msg_id and cmd, with type reply",
	 CF_NEED_SESSION, f_reply_id},
	{"frame.error-reply", S_HDR, "3.4",
	 "a failed command gets the ERROR flag, an errno, and no payload",
	 CF_NEED_SESSION, f_error_reply},
	{"frame.sync-after-error", S_HDR, "3.4",
	 "a refused message's payload is drained: the next reply matches",
	 CF_NEED_SESSION, f_sync_after_error},
	{"frame.unknown-command", S_CMDS, "3.5",
	 "an undefined command is refused and its payload drained",
	 CF_NEED_SESSION, f_unknown_cmd},
	{"frame.oversize", S_SIZES, "8.1",
	 "a message above max_data_xfer_size is refused and drained",
	 CF_NEED_SESSION, f_oversize},
	{"frame.no-reply", S_HDR, "3.2",
	 "a command with NO_REPLY gets no reply", CF_NEED_SESSION, f_no_reply},
	{"frame.no-reply-error", S_HDR, "9d",
	 "a failed NO_REPLY command gets no error reply (QEMU desyncs)",
	 CF_NEED_SESSION, f_no_reply_error},
	{"frame.pipeline", S_CONC, "7",
	 "pipelined commands are answered in the order sent", CF_NEED_SESSION,
	 f_pipeline},
	{"frame.id-reuse", S_HDR, "3.3",
	 "message ids may be reused, even concurrently", CF_NEED_SESSION,
	 f_id_reuse},
	{"frame.reserved-flags", S_HDR, "3.2",
	 "undefined flag bits in a command don't break the stream",
	 CF_NEED_SESSION, f_reserved_flags},
	{"frame.error-field", S_HDR, "3.2",
	 "the error field of a command is reserved: the stream survives it",
	 CF_NEED_SESSION, f_error_field},
	{NULL, NULL, NULL, NULL, 0, NULL},
};
