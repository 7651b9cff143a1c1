/* SPDX-License-Identifier: BSD-3-Clause */
/* Small helpers shared by every test directory (include_directories
 * test_common_inc). */
#ifndef MUSER_TESTUTIL_H
#define MUSER_TESTUTIL_H

#include <dirent.h>
#include <sys/socket.h>

/* Open fds of this process: a test asserts it is unchanged afterwards. */
static inline int count_open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1; /* the DIR's own fd */
}

#endif
