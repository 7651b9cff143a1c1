/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The socket calls of the hot path, made without glibc's wrappers: in a
 * process with threads (every real device) those wrappers make each call
 * a cancellation point, which costs ~60 instructions a call in
 * enable/disable bookkeeping - as much as the rest of a request's
 * framing. Nothing in muser is cancellation-safe (locks and buffers would
 * be left behind), so the libraries' calls are documented as not being
 * cancellation points; a serving thread is stopped with mu_dev_stop().
 * Kept in their own file so tests can --wrap them.
 */
#include <sys/syscall.h>
#include <unistd.h>

#include "wire-core.h"

ssize_t mu_sys_recvmsg(int fd, struct msghdr *mh, int flags)
{
	return syscall(SYS_recvmsg, fd, mh, flags);
}

ssize_t mu_sys_sendmsg(int fd, const struct msghdr *mh, int flags)
{
	return syscall(SYS_sendmsg, fd, mh, flags);
}
