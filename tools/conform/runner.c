/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * runner.c - runs each check in its own process, so a check that hangs is
 * killed at its deadline and one that crashes (a checker bug provoked by
 * a lying server) costs only itself. The check's process gets a fresh
 * negotiated connection when it needs one. When that fails the check
 * FAILs unless the previous check already failed (which then took the
 * blame), and later checks are skipped: all of them when the server is
 * gone (refused, closed, silent), those that need a session when it is
 * alive but its negotiation is broken.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "checks.h"

/* Hard limit of one check: setup, a few timed-out waits, and slack. */
static int budget_ms(int timeout_ms)
{
	return 4 * timeout_ms + 2000;
}

static void child(const struct cf_check *k, const struct cf_ctx *base, int wfd)
{
	struct cf_result r;
	struct cf_ctx x = *base;
	long t0 = cf_now_ms();

	memset(&r, 0, sizeof(r));
	x.c = NULL;
	memset(&x.dma, 0, sizeof(x.dma));
	x.ev[0] = 0;
	if (k->needs & CF_NEED_SESSION)
		r.setup_err = cf_open_session(&x, &x.c);
	if (r.setup_err < 0) {
		r.setup_failed = true;
		r.status = CF_SKIP;
	} else {
		r.status = k->run(&x);
	}
	snprintf(r.evidence, sizeof(r.evidence), "%s", x.ev);
	r.server_pid = x.server_pid;
	r.dma_read = x.dma.reads;
	r.dma_write = x.dma.writes;
	r.dma_bad = x.dma.bad;
	snprintf(r.dma_evidence, sizeof(r.dma_evidence), "%s", x.dma.first_bad);
	cf_conn_close(x.c);
	r.ms = cf_now_ms() - t0;
	if (write(wfd, &r, sizeof(r)) != sizeof(r))
		_exit(1);
	_exit(0);
}

static void run_child(const struct cf_check *k, const struct cf_ctx *base,
		      struct cf_result *r)
{
	int p[2], st, n, limit = budget_ms(base->timeout_ms);
	long t0 = cf_now_ms();
	struct pollfd pf;
	pid_t pid;

	memset(r, 0, sizeof(*r));
	if (pipe2(p, O_CLOEXEC) < 0) {
		r->status = CF_FAIL;
		snprintf(r->evidence, sizeof(r->evidence), "pipe: %s",
			 strerror(errno));
		return;
	}
	fflush(NULL); /* the child must not inherit pending output */
	pid = fork();
	if (pid == 0) {
		close(p[0]);
		child(k, base, p[1]);
	}
	close(p[1]);
	if (pid < 0) {
		close(p[0]);
		r->status = CF_FAIL;
		snprintf(r->evidence, sizeof(r->evidence), "fork: %s",
			 strerror(errno));
		return;
	}
	pf.fd = p[0];
	pf.events = POLLIN;
	do
		n = poll(&pf, 1, limit);
	while (n < 0 && errno == EINTR);
	if (n > 0 && read(p[0], r, sizeof(*r)) == sizeof(*r)) {
		r->evidence[sizeof(r->evidence) - 1] = 0;
		r->dma_evidence[sizeof(r->dma_evidence) - 1] = 0;
		close(p[0]);
		waitpid(pid, &st, 0);
		return;
	}
	close(p[0]);
	if (n == 0)
		kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
	memset(r, 0, sizeof(*r));
	r->status = CF_FAIL;
	r->ms = cf_now_ms() - t0;
	if (n == 0)
		snprintf(r->evidence, sizeof(r->evidence),
			 "check did not finish within %d ms (server hung?)",
			 limit);
	else if (WIFSIGNALED(st))
		snprintf(r->evidence, sizeof(r->evidence),
			 "checker process died of signal %d (a checker bug: "
			 "please report)",
			 WTERMSIG(st));
	else
		snprintf(r->evidence, sizeof(r->evidence),
			 "checker process exited without a result");
}

/* Connection-level failures: nobody (sane) is answering any more. */
static bool server_gone(int err)
{
	return err == -ETIMEDOUT || err == -ECONNRESET ||
	       err == -ECONNREFUSED || err == -ENOENT || err == -EPIPE ||
	       err == -EAGAIN || err == -ECONNABORTED || err == -EBADMSG ||
	       err == -EMSGSIZE;
}

int cf_run(const struct cf_run_opts *o, struct cf_output *out)
{
	struct cf_dma_stats total = {0};
	struct cf_ctx base = {0};
	const struct cf_check *const *all;
	char gone[CF_EV_MAX] = "", nosess[CF_EV_MAX] = "";
	int fails = 0, prev = CF_PASS;
	unsigned n, i;

	signal(SIGPIPE, SIG_IGN);
	base.path = o->path;
	base.timeout_ms = o->timeout_ms;
	base.run_dma = &total;
	base.kicks = o->kicks;
	base.nkicks = o->nkicks;
	all = cf_catalogue(&n);
	for (i = 0; i < n; i++) {
		const struct cf_check *k = all[i];
		struct cf_result r;

		if (!cf_selected(k->id, o->only))
			continue;
		memset(&r, 0, sizeof(r));
		if (gone[0]) {
			r.status = CF_SKIP;
			snprintf(r.evidence, sizeof(r.evidence),
				 "server gone (%.200s)", gone);
		} else if (nosess[0] && (k->needs & CF_NEED_SESSION)) {
			r.status = CF_SKIP;
			snprintf(r.evidence, sizeof(r.evidence),
				 "no session (%.200s)", nosess);
		} else if (k->needs & CF_NEED_PARENT) {
			struct cf_ctx x = base;

			x.ev[0] = 0;
			r.status = k->run(&x);
			snprintf(r.evidence, sizeof(r.evidence), "%s", x.ev);
		} else {
			run_child(k, &base, &r);
		}
		if (r.setup_failed) {
			bool dead = server_gone(r.setup_err);
			char *why = dead ? gone : nosess;

			snprintf(why, CF_EV_MAX, "%s", r.evidence);
			r.status = prev == CF_FAIL ? CF_SKIP : CF_FAIL;
			snprintf(r.evidence, sizeof(r.evidence), "%s: %.200s",
				 dead ? "server gone" : "cannot negotiate",
				 why);
		}
		if (r.server_pid > 0 && base.server_pid <= 0)
			base.server_pid = r.server_pid;
		total.reads += r.dma_read;
		total.writes += r.dma_write;
		if (r.dma_bad && !total.bad)
			snprintf(total.first_bad, sizeof(total.first_bad),
				 "during %s: %.100s", k->id, r.dma_evidence);
		total.bad += r.dma_bad;
		if (r.status == CF_FAIL)
			fails++;
		prev = r.status;
		cf_output_result(out, k, &r);
	}
	return fails;
}
