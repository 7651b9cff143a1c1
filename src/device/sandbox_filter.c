/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The seccomp allowlist: every system call libmuser (and the C library
 * and sanitizer runtimes under it) makes while serving, found by reading
 * the source and by running the test suite under strace -f. Calls whose
 * arguments can reach beyond the process are allowed only with the
 * arguments libmuser uses. docs/security.md lists them and why.
 */
#include <errno.h>

#include "sandbox.h"

#ifndef MU_HAVE_SECCOMP

int mu_sbx_filter_available(void)
{
	return -ENOSYS;
}

int mu_sbx_check_names(const char *const *names, unsigned n)
{
	(void)names;
	(void)n;
	return 0;
}

int mu_sbx_filter_load(const struct mu_sbx_rules *r)
{
	(void)r;
	return -ENOSYS;
}

#else

#include <fcntl.h>
#include <linux/sched.h>
#include <seccomp.h>
#include <signal.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <termios.h>

/* Calls that need no argument check: they act on fds the process holds,
 * its own memory, threads, clocks and signal state. */
static const char *const plain[] = {
	/* fd I/O (sockets, eventfds, timerfds, declared files) */
	"read",
	"readv",
	"pread64",
	"preadv",
	"preadv2",
	"write",
	"writev",
	"pwrite64",
	"pwritev",
	"pwritev2",
	"lseek",
	"close",
	"dup",
	"fstat",
	"fsync",
	"fdatasync",
	/* sockets it has: messages with fds, accepting (reconnect) */
	"recvmsg",
	"sendmsg",
	"recvfrom",
	"sendto",
	"shutdown",
	"accept",
	"accept4",
	"getsockname",
	"getpeername",
	/* waiting */
	"poll",
	"ppoll",
	"select",
	"pselect6",
	"epoll_wait",
	"epoll_pwait",
	"epoll_pwait2",
	"epoll_ctl",
	"timerfd_settime",
	"timerfd_gettime",
	/* memory (mmap and mprotect: below, without PROT_EXEC) */
	"munmap",
	"mremap",
	"madvise",
	"brk",
	"mincore",
	/* threads and locks */
	"futex",
	"set_robust_list",
	"get_robust_list",
	"rseq",
	"sched_yield",
	"sched_getaffinity",
	"set_tid_address",
	/* time */
	"nanosleep",
	"clock_nanosleep",
	"clock_gettime",
	"clock_getres",
	"gettimeofday",
	"time",
	/* identity */
	"getpid",
	"gettid",
	"getppid",
	"getuid",
	"geteuid",
	"getgid",
	"getegid",
	"getresuid",
	"getresgid",
	/* signals to itself and their return */
	"rt_sigreturn",
	"rt_sigprocmask",
	"sigaltstack",
	"rt_sigpending",
	"restart_syscall",
	/* the end */
	"exit",
	"exit_group",
	/* glibc and the sanitizers ask for entropy and about themselves */
	"getrandom",
	"uname",
};

struct ctx {
	scmp_filter_ctx f;
	int err;
};

/* A call that this architecture doesn't have (poll on arm64) is skipped;
 * other errors stick. */
static void add(struct ctx *c, const char *name, unsigned nargs,
		const struct scmp_arg_cmp *args)
{
	int nr = seccomp_syscall_resolve_name(name);
	int r;

	if (c->err)
		return;
	if (nr == __NR_SCMP_ERROR || nr < 0)
		return;
	r = seccomp_rule_add_array(c->f, SCMP_ACT_ALLOW, nr, nargs, args);
	if (r < 0 && r != -EDOM)
		c->err = r;
}

static void add_plain(struct ctx *c, const char *name)
{
	add(c, name, 0, NULL);
}

/* name allowed when argument arg (low 32 bits) equals v. */
static void add_eq32(struct ctx *c, const char *name, unsigned arg, uint32_t v)
{
	struct scmp_arg_cmp a = {arg, SCMP_CMP_MASKED_EQ, 0xffffffffu, v};

	add(c, name, 1, &a);
}

/* name allowed when the bits mask of argument arg equal v. */
static void add_bits(struct ctx *c, const char *name, unsigned arg,
		     uint64_t mask, uint64_t v)
{
	struct scmp_arg_cmp a = {arg, SCMP_CMP_MASKED_EQ, mask, v};

	add(c, name, 1, &a);
}

static void add_fixed(struct ctx *c, const struct mu_sbx_rules *r)
{
	static const uint32_t fcntl_cmds[] = {
		F_GETFD,	 F_SETFD,     F_GETFL,	   F_SETFL,
		F_DUPFD_CLOEXEC, F_GET_SEALS, F_ADD_SEALS, F_GETLK,
		F_SETLK,	 F_OFD_GETLK, F_OFD_SETLK,
	};
	static const uint32_t ioctls[] = {TCGETS, FIONREAD, FIONBIO, FIOCLEX,
					  FIONCLEX};
	static const uint32_t prctls[] = {PR_SET_NAME, PR_GET_NAME};
	unsigned i;

	for (i = 0; i < sizeof(plain) / sizeof(plain[0]); i++)
		add_plain(c, plain[i]);
	/* No executable memory: nothing new to run. */
	add_bits(c, "mmap", 2, PROT_EXEC, 0);
	add_bits(c, "mprotect", 2, PROT_EXEC, 0);
	/* Threads, never processes; glibc falls back from clone3 (whose
	 * flags the filter can't see) to clone on ENOSYS. */
	add_bits(c, "clone", 0, CLONE_THREAD, CLONE_THREAD);
	if (!c->err && seccomp_rule_add(c->f, SCMP_ACT_ERRNO(ENOSYS),
					SCMP_SYS(clone3), 0) < 0)
		c->err = -EINVAL;
	/* Any handler but SIGSYS's, which is ours. One rule per signal:
	 * "not equal" on 64 bits would let SIGSYS | 1 << 32 through. */
	for (i = 1; i <= 64; i++)
		if (i != SIGSYS)
			add_eq32(c, "rt_sigaction", 0, i);
	/* Signals only to this process (raise, abort, pthread_kill). */
	add_eq32(c, "tgkill", 0, (uint32_t)r->pid);
	add_eq32(c, "kill", 0, (uint32_t)r->pid);
	/* Reaping the file-removing helper at exit (sandbox_helper.c). */
	if (r->helper_pid > 0)
		add_eq32(c, "wait4", 0, (uint32_t)r->helper_pid);
	/* The twin socket is a socketpair; socket options at SOL_SOCKET. */
	add_eq32(c, "socketpair", 0, AF_UNIX);
	add_eq32(c, "setsockopt", 1, SOL_SOCKET);
	add_eq32(c, "getsockopt", 1, SOL_SOCKET);
	for (i = 0; i < sizeof(fcntl_cmds) / sizeof(fcntl_cmds[0]); i++)
		add_eq32(c, "fcntl", 1, fcntl_cmds[i]);
	/* isatty() for stdio buffering; no TIOCSTI into a terminal. */
	for (i = 0; i < sizeof(ioctls) / sizeof(ioctls[0]); i++)
		add_eq32(c, "ioctl", 1, ioctls[i]);
	for (i = 0; i < sizeof(prctls) / sizeof(prctls[0]); i++)
		add_eq32(c, "prctl", 0, prctls[i]);
	/* fstat() is fstatat(fd, "", AT_EMPTY_PATH) in glibc. */
	add_bits(c, "newfstatat", 3, AT_EMPTY_PATH, AT_EMPTY_PATH);
	add_bits(c, "statx", 2, AT_EMPTY_PATH, AT_EMPTY_PATH);
	/* Telling an eventfd from other fds (irq.c) */
	if (r->fd_dir >= 0)
		add_eq32(c, "readlinkat", 0, (uint32_t)r->fd_dir);
}

int mu_sbx_filter_available(void)
{
	/* Kernels without CONFIG_SECCOMP_FILTER answer EINVAL. */
	if (prctl(PR_GET_SECCOMP, 0, 0, 0, 0) < 0 && errno == EINVAL)
		return -ENOSYS;
	/* Level 2 is the seccomp() system call, which synchronizing the
	 * filter over all threads needs (Linux 3.17); valgrind, for one,
	 * does not implement it. */
	return seccomp_api_get() >= 2 ? 0 : -ENOSYS;
}

int mu_sbx_check_names(const char *const *names, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		if (!names[i] ||
		    seccomp_syscall_resolve_name(names[i]) == __NR_SCMP_ERROR)
			return -EINVAL;
	return 0;
}

int mu_sbx_filter_load(const struct mu_sbx_rules *r)
{
	uint32_t deflt = SCMP_ACT_TRAP;
	struct ctx c = {0};
	unsigned i;

#if !defined(__x86_64__) && !defined(__aarch64__)
	/* The handler can't set the return value here: no log, only EPERM */
	if (r->log_only)
		deflt = SCMP_ACT_ERRNO(EPERM);
#endif
	c.f = seccomp_init(deflt);
	if (!c.f)
		return -ENOMEM;
	if (seccomp_attr_set(c.f, SCMP_FLTATR_ACT_BADARCH,
			     SCMP_ACT_KILL_PROCESS) < 0 ||
	    seccomp_attr_set(c.f, SCMP_FLTATR_CTL_NNP, 1) < 0 ||
	    seccomp_attr_set(c.f, SCMP_FLTATR_CTL_TSYNC, 1) < 0)
		c.err = -EINVAL;
	add_fixed(&c, r);
	for (i = 0; i < r->nr_syscalls; i++)
		add_plain(&c, r->syscalls[i]);
	if (!c.err)
		c.err = seccomp_load(c.f);
	seccomp_release(c.f);
	return c.err < 0 ? c.err : 0;
}

#endif
