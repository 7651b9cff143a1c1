/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The file remover: a sandboxed process may not unlink anything (an
 * unlinkat() on a directory fd would also reach "../.." and so every
 * file of the user), yet its socket files should go when a device is
 * destroyed. Before the filter, mu_dev_sandbox() forks this small helper,
 * which keeps a directory fd, a name and the inode of each file to
 * remove, and otherwise only reads its end of a socketpair:
 *   'R' + u32 index   remove that file now (if it is still the same
 *                     inode), answer one byte
 *   'C'               cancelled (the sandbox failed): exit, remove nothing
 *   end of file       the process is gone: remove what is left, exit
 * The sandboxed process can ask for nothing but the files it declared.
 * After fork only async-signal-safe calls are made (the parent may have
 * threads).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sandbox.h"

static struct mu_sbx_file *files;
static unsigned nr_files;
static int helper_fd = -1;
static pid_t helper_pid = -1;
static pthread_mutex_t helper_lock = PTHREAD_MUTEX_INITIALIZER;

static void remove_one(struct mu_sbx_file *f)
{
	struct stat st;

	if (f->dir_fd < 0)
		return;
	if (fstatat(f->dir_fd, f->name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	    st.st_dev == f->dev && st.st_ino == f->ino)
		unlinkat(f->dir_fd, f->name, 0);
	close(f->dir_fd);
	f->dir_fd = -1;
}

static int cmp_int(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;

	return (x > y) - (x < y);
}

/* keep is sorted; without close_range() the other fds stay open (they
 * are the parent's, and the helper does nothing with them). */
static void close_all_but(const int *keep, unsigned n)
{
	unsigned lo = 0, i;

	for (i = 0; i <= n; i++) {
		unsigned hi = i < n ? (unsigned)keep[i] : ~0u;

		if (hi > lo && syscall(SYS_close_range, lo, hi - 1, 0) < 0)
			return;
		if (i < n)
			lo = (unsigned)keep[i] + 1;
	}
}

static void helper_main(int fd, const int *keep, unsigned nkeep)
{
	struct sigaction sa;
	unsigned char cmd[5];
	uint32_t idx;
	unsigned i;

	/* Ctrl-C in a terminal signals the whole process group: outlive
	 * the device to clean up after it. */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_IGN;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGPIPE, &sa, NULL);
	close_all_but(keep, nkeep);
	for (;;) {
		ssize_t n = read(fd, cmd, 1);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if (cmd[0] == 'C')
			_exit(0);
		if (cmd[0] != 'R')
			continue;
		for (i = 1; i < 5;) {
			n = read(fd, cmd + i, 5 - i);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				goto out;
			i += (unsigned)n;
		}
		memcpy(&idx, cmd + 1, 4);
		if (idx < nr_files)
			remove_one(&files[idx]);
		if (write(fd, "k", 1) < 0) {
		}
	}
out:
	for (i = 0; i < nr_files; i++)
		remove_one(&files[i]);
	_exit(0);
}

int mu_sbx_helper_start(struct mu_sbx_file *f, unsigned n)
{
	int sv[2], *keep;
	unsigned i, nkeep = 0;
	pid_t pid;

	if (!n)
		return 0;
	keep = malloc((n + 3) * sizeof(*keep));
	if (!keep)
		return -ENOMEM;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		free(keep);
		return -errno;
	}
	keep[nkeep++] = 2; /* stderr, for sanitizer reports */
	keep[nkeep++] = sv[1];
	for (i = 0; i < n; i++)
		keep[nkeep++] = f[i].dir_fd;
	qsort(keep, nkeep, sizeof(*keep), cmp_int);
	files = f;
	nr_files = n;
	pid = fork();
	if (pid == 0) {
		close(sv[0]);
		helper_main(sv[1], keep, nkeep);
	}
	free(keep);
	close(sv[1]);
	if (pid < 0) {
		close(sv[0]);
		files = NULL;
		nr_files = 0;
		return -errno;
	}
	/* The helper has its own copies of the directory fds. */
	for (i = 0; i < n; i++) {
		close(f[i].dir_fd);
		f[i].dir_fd = -1;
	}
	helper_fd = sv[0];
	helper_pid = pid;
	return 0;
}

int mu_sbx_helper_fd(void)
{
	return helper_fd;
}

pid_t mu_sbx_helper_pid(void)
{
	return helper_pid;
}

/*
 * At exit(): let the helper remove what is left and reap it, so that it
 * is not left to init (some containers' init reaps nothing). A process
 * that dies by a signal or _exit() leaves that to init.
 */
__attribute__((destructor)) static void helper_fini(void)
{
	pid_t pid = helper_pid;
	int fd = helper_fd;

	if (fd < 0)
		return;
	helper_fd = -1;
	close(fd);
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
	}
}

void mu_sbx_helper_cancel(void)
{
	if (helper_fd < 0)
		return;
	if (write(helper_fd, "C", 1) < 0) {
	}
	close(helper_fd);
	helper_fd = -1;
	waitpid(helper_pid, NULL, 0);
	helper_pid = -1;
}

int mu_sbx_helper_remove(unsigned idx)
{
	unsigned char cmd[5] = {'R'};
	uint32_t i = idx;
	char ack;
	ssize_t n;

	if (helper_fd < 0)
		return -ENOTCONN;
	memcpy(cmd + 1, &i, 4);
	pthread_mutex_lock(&helper_lock); /* one request at a time */
	do
		n = write(helper_fd, cmd, sizeof(cmd));
	while (n < 0 && errno == EINTR);
	if (n == (ssize_t)sizeof(cmd)) {
		do
			n = read(helper_fd, &ack, 1);
		while (n < 0 && errno == EINTR);
		n = n == 1 ? 0 : -EIO;
	} else {
		n = -EIO;
	}
	pthread_mutex_unlock(&helper_lock);
	return (int)n;
}
