/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * memmap.c - from the virtual address QEMU gives in VFIO_IOMMU_MAP_DMA to
 * the file and offset the server can mmap.
 *
 * Guest RAM reaches another process only when it is a shared mapping of
 * a file or memfd (memory-backend-file/-memfd with share=on). We find the
 * mapping in /proc/self/maps, then an fd for its file: first one QEMU
 * itself holds open (matched by device and inode in /proc/self/fd; this
 * is the only way to a memfd without privileges), then the path, then
 * /proc/self/map_files (needs CAP_SYS_ADMIN or CAP_CHECKPOINT_RESTORE).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "preload.h"

struct mp_vma {
	uint64_t start, end, off, ino;
	unsigned maj, min;
	char perms[8];
	char path[PATH_MAX];
};

static bool mp_vma_parse(const char *line, struct mp_vma *v)
{
	int n = 0;

	if (sscanf(line,
		   "%" SCNx64 "-%" SCNx64 " %7s %" SCNx64 " %x:%x %" SCNu64
		   " %n",
		   &v->start, &v->end, v->perms, &v->off, &v->maj, &v->min,
		   &v->ino, &n) < 7)
		return false;
	snprintf(v->path, sizeof(v->path), "%s", line + n);
	v->path[strcspn(v->path, "\n")] = '\0';
	return true;
}

/* Does fd refer to the mapped file, opened so that the server may map it
 * read/write? */
static bool mp_fd_matches(int fd, const struct mp_vma *v, bool need_rw)
{
	struct stat st;
	int fl;

	if (fstat(fd, &st) < 0 || st.st_ino != v->ino ||
	    st.st_dev != makedev(v->maj, v->min))
		return false;
	fl = fcntl(fd, F_GETFL);
	return !need_rw || (fl >= 0 && (fl & O_ACCMODE) == O_RDWR);
}

static int mp_open_checked(const char *path, const struct mp_vma *v,
			   bool need_rw)
{
	int fd = mp_real.open(path, (need_rw ? O_RDWR : O_RDONLY) | O_CLOEXEC,
			      0);

	if (fd >= 0 && !mp_fd_matches(fd, v, need_rw)) {
		mp_real.close(fd);
		fd = -1;
	}
	return fd;
}

static int mp_find_fd(const struct mp_vma *v, bool need_rw)
{
	char path[PATH_MAX];
	struct dirent *de;
	DIR *d;
	int fd = -1;

	d = opendir("/proc/self/fd");
	while (d && fd < 0 && (de = readdir(d))) {
		int n = atoi(de->d_name);

		if (de->d_name[0] < '0' || de->d_name[0] > '9' || n == dirfd(d))
			continue;
		if (mp_fd_matches(n, v, need_rw)) {
			fd = fcntl(n, F_DUPFD_CLOEXEC, 3);
		} else if (need_rw && mp_fd_matches(n, v, false)) {
			/* Opened read-only: open the file again. */
			snprintf(path, sizeof(path), "/proc/self/fd/%d", n);
			fd = mp_open_checked(path, v, true);
		}
	}
	if (d)
		closedir(d);
	if (fd < 0 && v->path[0] == '/' && !strstr(v->path, " (deleted)"))
		fd = mp_open_checked(v->path, v, need_rw);
	if (fd < 0) {
		snprintf(path, sizeof(path),
			 "/proc/self/map_files/%" PRIx64 "-%" PRIx64, v->start,
			 v->end);
		fd = mp_open_checked(path, v, need_rw);
	}
	return fd;
}

int mp_memmap_lookup(uint64_t vaddr, uint64_t size, int *fd, uint64_t *offset,
		     char *why, size_t whylen)
{
	struct mp_vma *v = malloc(sizeof(*v)), *nx = malloc(sizeof(*nx));
	uint64_t end = vaddr + size;
	bool found = false, need_rw;
	char *line = NULL;
	size_t cap = 0;
	FILE *f = NULL;
	int ret = -ENOENT;

	snprintf(why, whylen, "not mapped");
	if (!v || !nx) {
		ret = -ENOMEM;
		goto out;
	}
	f = fopen("/proc/self/maps", "re");
	if (!f) {
		snprintf(why, whylen, "cannot read /proc/self/maps");
		goto out;
	}
	while (getline(&line, &cap, f) > 0) {
		if (!found) {
			if (!mp_vma_parse(line, v) || vaddr < v->start ||
			    vaddr >= v->end)
				continue;
			found = true;
			ret = 0;
		} else {
			/* The range spans VMAs: they must continue the
			 * same file mapping (madvise can split one). */
			if (!mp_vma_parse(line, nx) || nx->start != v->end ||
			    nx->ino != v->ino || nx->maj != v->maj ||
			    nx->min != v->min ||
			    nx->off != v->off + (v->end - v->start) ||
			    nx->perms[3] != v->perms[3]) {
				ret = -ENOENT;
				snprintf(why, whylen,
					 "spans unrelated mappings");
				goto out;
			}
			v->end = nx->end;
			v->off = nx->off - (nx->start - v->start);
		}
		if (v->end >= end)
			break;
	}
	if (!found)
		goto out;
	if (v->end < end) {
		snprintf(why, whylen, "partly unmapped");
		ret = -ENOENT;
		goto out;
	}
	ret = -EPERM;
	if (v->perms[3] != 's') {
		snprintf(why, whylen, "%s",
			 v->ino ? "a private file mapping"
				: "private anonymous memory");
		goto out;
	}
	if (!v->ino) {
		snprintf(why, whylen, "shared anonymous memory");
		goto out;
	}
	need_rw = v->perms[1] == 'w';
	*fd = mp_find_fd(v, need_rw);
	if (*fd < 0) {
		snprintf(why, whylen, "no way to open %s",
			 v->path[0] ? v->path : "its file");
		goto out;
	}
	*offset = v->off + (vaddr - v->start);
	ret = 0;
out:
	if (f)
		fclose(f);
	free(line);
	free(v);
	free(nx);
	return ret;
}
