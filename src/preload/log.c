/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * log.c - the shim's messages go to stderr with a "muser-preload:" prefix
 * so they stand out in QEMU's output. MUSER_PRELOAD_DEBUG=1 traces every
 * call the shim handles; MUSER_PRELOAD_QUIET=1 keeps only errors.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "preload.h"

int mp_log_level = MP_WARN;

__attribute__((constructor)) static void mp_log_init(void)
{
	const char *d = getenv("MUSER_PRELOAD_DEBUG");
	const char *q = getenv("MUSER_PRELOAD_QUIET");

	if (d && *d && *d != '0')
		mp_log_level = MP_DEBUG;
	else if (q && *q && *q != '0')
		mp_log_level = MP_ERR;
}

void mp_log(int level, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	int n, m;

	if (level > mp_log_level)
		return;
	n = snprintf(line, sizeof(line), "muser-preload: %s",
		     level <= MP_ERR	? "error: "
		     : level <= MP_WARN ? "warning: "
					: "");
	va_start(ap, fmt);
	m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	n += m < 0 ? 0 : m;
	if (n > (int)sizeof(line) - 2)
		n = (int)sizeof(line) - 2;
	line[n++] = '\n';
	/* One write() so lines of concurrent threads don't interleave. */
	if (write(STDERR_FILENO, line, (size_t)n) < 0)
		return;
}

void mp_client_log(void *opaque, int level, const char *msg)
{
	struct mp_group *g = opaque;

	mp_log(level, "%s: %s", g ? g->socket : "client", msg);
}
