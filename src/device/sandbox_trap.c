/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The SIGSYS handler behind the filter's default action (SECCOMP_RET_TRAP):
 * it names the blocked call on fd 2, then either lets SIGSYS kill the
 * process (the handler is one-shot, SA_RESETHAND) or, in log-only mode,
 * makes the call return -EPERM. The call itself never runs either way,
 * whatever the handler does; the filter also forbids replacing it.
 */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#ifdef MU_HAVE_SECCOMP
#include <seccomp.h>
#endif

#include "sandbox.h"

/* System call numbers of the native ABI stay below this (x86_64 and
 * aarch64 are near 470 in 2025). */
#define NAMES_MAX 600
#define NAME_LEN 24
/* si_code of a SIGSYS from a seccomp filter (<linux/signal.h>'s
 * SYS_SECCOMP, which glibc's headers don't export). */
#define TRAP_SECCOMP 1

/* Filled before the filter loads: the handler must not allocate. */
static char names[NAMES_MAX][NAME_LEN];
static volatile sig_atomic_t log_only;

void mu_sbx_trap_names(void)
{
#ifdef MU_HAVE_SECCOMP
	for (int nr = 0; nr < NAMES_MAX; nr++) {
		char *n =
			seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, nr);

		if (n && strlen(n) < NAME_LEN)
			memcpy(names[nr], n, strlen(n) + 1);
		free(n);
	}
#endif
}

/* async-signal-safe formatting */
static size_t put_str(char *buf, size_t at, size_t cap, const char *s)
{
	while (*s && at + 1 < cap)
		buf[at++] = *s++;
	return at;
}

static size_t put_num(char *buf, size_t at, size_t cap, long v)
{
	char tmp[24];
	size_t n = 0;
	unsigned long u = v < 0 ? 0ul - (unsigned long)v : (unsigned long)v;

	do
		tmp[n++] = (char)('0' + u % 10);
	while ((u /= 10) && n < sizeof(tmp));
	if (v < 0 && at + 1 < cap)
		buf[at++] = '-';
	while (n && at + 1 < cap)
		buf[at++] = tmp[--n];
	return at;
}

static void set_return(void *uc, long v)
{
#if defined(__x86_64__)
	((ucontext_t *)uc)->uc_mcontext.gregs[REG_RAX] = v;
#elif defined(__aarch64__)
	((ucontext_t *)uc)->uc_mcontext.regs[0] = (unsigned long long)v;
#else
	(void)uc;
	(void)v;
#endif
}

static void on_sigsys(int sig, siginfo_t *si, void *uc)
{
	int saved = errno;
	char line[160];
	size_t n = 0;
	int nr = si->si_syscall;
	ssize_t w;

	(void)sig;
	n = put_str(line, n, sizeof(line), "muser sandbox: pid ");
	n = put_num(line, n, sizeof(line), (long)getpid());
	n = put_str(line, n, sizeof(line), ": system call ");
	if (nr >= 0 && nr < NAMES_MAX && names[nr][0])
		n = put_str(line, n, sizeof(line), names[nr]);
	else
		n = put_str(line, n, sizeof(line), "?");
	n = put_str(line, n, sizeof(line), " (");
	n = put_num(line, n, sizeof(line), nr);
	n = put_str(line, n, sizeof(line),
		    log_only ? ") not allowed, failed with EPERM (log only)\n"
			     : ") not allowed, killing the process\n");
	w = write(2, line, n);
	(void)w;
	if (log_only && si->si_code == TRAP_SECCOMP) {
		set_return(uc, -EPERM);
		errno = saved;
		return;
	}
	/* The handler is back to the default now; SIGSYS is blocked until
	 * we return, and then it terminates the whole process. */
	syscall(SYS_tgkill, getpid(), syscall(SYS_gettid), SIGSYS);
	errno = saved;
}

int mu_sbx_trap_install(bool log)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_sigsys;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_SIGINFO | (log ? 0 : SA_RESETHAND);
	log_only = log;
	return sigaction(SIGSYS, &sa, NULL) < 0 ? -errno : 0;
}
