/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * util.c - evidence, errno names, the server's fd count, and the reply
 * checks every check relies on: header sanity, request/reply with a
 * verdict, "was this refused", and stream sync.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checks.h"

int cf_set(struct cf_ctx *x, int st, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(x->ev, sizeof(x->ev), fmt, ap);
	va_end(ap);
	return st;
}

int cf_lost(struct cf_ctx *x, int err, const char *what)
{
	char eb[96];

	return cf_set(x, CF_FAIL, "%s: %s", what,
		      cf_conn_strerror(err, x->timeout_ms, eb, sizeof(eb)));
}

const char *cf_errname(int err)
{
	static const struct {
		int e;
		const char *n;
	} t[] = {{EINVAL, "EINVAL"},
		 {ENOTSUP, "ENOTSUP"},
		 {ENOSYS, "ENOSYS"},
		 {ENOTTY, "ENOTTY"},
		 {EEXIST, "EEXIST"},
		 {ENOENT, "ENOENT"},
		 {ENOSPC, "ENOSPC"},
		 {E2BIG, "E2BIG"},
		 {EMSGSIZE, "EMSGSIZE"},
		 {EFAULT, "EFAULT"},
		 {EACCES, "EACCES"},
		 {EBUSY, "EBUSY"},
		 {EIO, "EIO"},
		 {EPERM, "EPERM"},
		 {EBADF, "EBADF"},
		 {ERANGE, "ERANGE"},
		 {EOVERFLOW, "EOVERFLOW"},
		 {EPROTO, "EPROTO"},
		 {EBADMSG, "EBADMSG"},
		 {ECONNRESET, "ECONNRESET"},
		 {ETIMEDOUT, "ETIMEDOUT"},
		 {ENOMEM, "ENOMEM"},
		 {EAGAIN, "EAGAIN"},
		 {ENXIO, "ENXIO"},
		 {EMFILE, "EMFILE"}};
	static char buf[32];
	size_t i;

	if (err < 0)
		err = -err;
	for (i = 0; i < sizeof(t) / sizeof(*t); i++)
		if (t[i].e == err)
			return t[i].n;
	snprintf(buf, sizeof(buf), "errno %d", err);
	return buf;
}

int cf_server_fd_count(const struct cf_ctx *x)
{
	char path[64];
	struct dirent *d;
	DIR *dir;
	int n = 0;

	if (x->server_pid <= 0)
		return -ENOENT;
	snprintf(path, sizeof(path), "/proc/%d/fd", x->server_pid);
	dir = opendir(path);
	if (!dir)
		return -errno;
	while ((d = readdir(dir)))
		if (d->d_name[0] != '.')
			n++;
	closedir(dir);
	return n;
}

int cf_check_hdr(struct cf_ctx *x, const struct cf_msg *m, uint16_t cmd,
		 unsigned max_fds, const char *what)
{
	uint32_t f = m->hdr.flags;

	if ((f & MU_FLAG_TYPE_MASK) != MU_FLAG_TYPE_REPLY)
		return cf_set(x, CF_EBROKEN, "%s: reply has type %u, not 1",
			      what, f & MU_FLAG_TYPE_MASK);
	if (m->hdr.cmd != cmd)
		return cf_set(x, CF_EBROKEN,
			      "%s: reply names command %u, not %u", what,
			      m->hdr.cmd, cmd);
	if (f & ~MU_FLAG_KNOWN)
		return cf_set(x, CF_EBROKEN,
			      "%s: reply has undefined flag bits 0x%x", what,
			      f & ~MU_FLAG_KNOWN);
	if ((f & MU_FLAG_ERROR) && m->len)
		return cf_set(x, CF_EBROKEN,
			      "%s: error reply carries %zu payload bytes "
			      "(must be header only)",
			      what, m->len);
	if (!(f & MU_FLAG_ERROR) && m->hdr.error)
		return cf_set(x, CF_EBROKEN,
			      "%s: reply has error %u (%s) but no ERROR flag",
			      what, m->hdr.error,
			      cf_errname((int)m->hdr.error));
	if (m->nfds > max_fds || m->ctrunc)
		return cf_set(x, CF_EBROKEN, "%s: reply carried %u fds", what,
			      m->nfds);
	return 0;
}

int cf_req(struct cf_ctx *x, uint16_t cmd, const void *p, size_t len,
	   const int *fds, unsigned nfds, struct cf_msg *m, const char *what)
{
	uint16_t id = x->c->next_id;
	int e = cf_call(x->c, cmd, p, len, fds, nfds, m);

	if (e == -EPROTO)
		return cf_set(x, CF_EBROKEN,
			      "%s: reply has id %u (cmd %u), sent id %u", what,
			      m->hdr.msg_id, m->hdr.cmd, id);
	if (e < 0) {
		cf_lost(x, e, what);
		return CF_EBROKEN;
	}
	e = cf_check_hdr(x, m, cmd, MU_MAX_FDS_LIMIT, what);
	if (e < 0)
		return e;
	if (m->nfds && cmd != MU_CMD_DEVICE_GET_REGION_INFO &&
	    cmd != MU_CMD_DEVICE_GET_REGION_IO_FDS && cmd != MU_CMD_VERSION)
		return cf_set(x, CF_EBROKEN, "%s: reply carried %u fds", what,
			      m->nfds);
	if (cf_is_error(m)) {
		e = cf_reply_errno(m);
		x->last_err = e;
		cf_set(x, CF_FAIL, "%s: error reply %s", what, cf_errname(e));
		return e;
	}
	return 0;
}

int cf_sync(struct cf_ctx *x, const char *after)
{
	struct mu_device_info in = {.argsz = sizeof(in)};
	uint16_t id = cf_next_id(x->c);
	struct cf_msg m;
	char what[96];
	int e;

	snprintf(what, sizeof(what), "GET_INFO after %s", after);
	e = cf_send(x->c, id, MU_CMD_DEVICE_GET_INFO, 0, 0, &in, sizeof(in),
		    NULL, 0);
	if (e == 0)
		e = cf_wait(x->c, &m, x->timeout_ms);
	if (e < 0) {
		cf_lost(x, e, what);
		return CF_EBROKEN;
	}
	if (m.hdr.msg_id != id || m.hdr.cmd != MU_CMD_DEVICE_GET_INFO) {
		cf_set(x, CF_FAIL,
		       "stream out of sync after %s: next reply has id %u cmd "
		       "%u size %u, expected id %u cmd 4",
		       after, m.hdr.msg_id, m.hdr.cmd, m.hdr.size, id);
		cf_msg_free(&m);
		return CF_EBROKEN;
	}
	e = cf_check_hdr(x, &m, MU_CMD_DEVICE_GET_INFO, 0, what);
	if (e == 0 && (cf_is_error(&m) || m.len != sizeof(in)))
		e = cf_set(x, CF_EBROKEN, "%s: %s", what,
			   cf_is_error(&m) ? "error reply"
					   : "reply payload not 16 bytes");
	cf_msg_free(&m);
	return e;
}

int cf_refused(struct cf_ctx *x, uint16_t cmd, const void *p, size_t len,
	       const int *fds, unsigned nfds, struct cf_msg *m,
	       const char *what)
{
	struct cf_msg local;
	struct cf_msg *r = m ? m : &local;
	int e = cf_req(x, cmd, p, len, fds, nfds, r, what);

	if (!m)
		cf_msg_free(&local);
	if (e == CF_EBROKEN)
		return e;
	return e < 0 ? 1 : 0;
}
