/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * sandbox.h - what the sandbox files share with each other and with the
 * rest of libmuser. The sandbox is process-wide by nature (seccomp filters
 * and namespaces belong to the process), so unlike everything else in
 * libmuser its state is global.
 */
#ifndef MU_SANDBOX_H
#define MU_SANDBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct mu_dev;

/* What the filter allows beyond the fixed list (sandbox_filter.c). */
struct mu_sbx_rules {
	bool log_only;
	pid_t pid;	  /* signals only to ourselves */
	pid_t helper_pid; /* wait4() for it at exit; -1 without helper */
	const char *const *syscalls;
	unsigned nr_syscalls;
	int fd_dir; /* /proc/self/fd: readlinkat allowed relative to it */
};

/* 0 when the kernel and this build can filter system calls, else
 * -ENOSYS. */
int mu_sbx_filter_available(void);
/* Check that every name in syscalls is a system call: 0 or -EINVAL. */
int mu_sbx_check_names(const char *const *names, unsigned n);
/* Build and load the filter (no_new_privs, all threads). */
int mu_sbx_filter_load(const struct mu_sbx_rules *r);

/* sandbox_trap.c: the SIGSYS handler that names a blocked call and kills
 * the process (or, log-only, makes the call fail with EPERM). */
int mu_sbx_trap_install(bool log_only);
/* Fill the handler's table of call names (allocates; before the filter). */
void mu_sbx_trap_names(void);

/* sandbox_helper.c: the process that removes declared files for the
 * sandboxed one (which may not unlink). */
struct mu_sbx_file {
	int dir_fd; /* O_PATH directory; the helper owns it after start */
	char *name; /* last path component */
	char *path; /* as declared */
	dev_t dev;
	ino_t ino;
};
/* Fork the helper (nothing to do when n is 0); f must live on. */
int mu_sbx_helper_start(struct mu_sbx_file *f, unsigned n);
/* Our end of its socket (-1 without helper): STRICT keeps it. */
int mu_sbx_helper_fd(void);
/* Its pid, -1 without helper. */
pid_t mu_sbx_helper_pid(void);
/* The sandbox failed: the helper exits without removing anything. */
void mu_sbx_helper_cancel(void);
/* Remove file idx now, if it is still the one declared: 0 or -errno. */
int mu_sbx_helper_remove(unsigned idx);

/* sandbox.c */
bool mu_sbx_active(void);
/* The target of /proc/self/fd/<fd>, also when sandboxed: a readlink()
 * result (length, not terminated) or -1 with errno. */
ssize_t mu_sbx_fd_link(int fd, char *buf, size_t len);
/* At destroy, sandboxed: have the helper remove the device's socket
 * file if it is still ours. */
void mu_sbx_unlink_socket(struct mu_dev *dev);

#endif
