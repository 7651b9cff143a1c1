/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * backing.c - the namespace's storage: a regular file or a block device
 * (--backing=PATH), read and written with preadv/pwritev through the page
 * cache. Flush and FUA are fdatasync(), so a completion that says "durable"
 * means the data reached stable storage.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ctrl.h"

int nvme_backing_open(struct nvme_backing *b, const char *path,
		      unsigned block_size)
{
	struct stat st;
	uint64_t bytes;
	int fd;

	memset(b, 0, sizeof(*b));
	b->fd = -1;
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0)
		goto fail;
	if (S_ISBLK(st.st_mode)) {
		if (ioctl(fd, BLKGETSIZE64, &bytes) < 0)
			goto fail;
		b->is_blk = true;
	} else if (S_ISREG(st.st_mode)) {
		bytes = (uint64_t)st.st_size;
	} else {
		close(fd);
		return -EINVAL;
	}
	b->lbads = block_size == 4096 ? 12 : 9;
	b->nlb = bytes >> b->lbads;
	if (b->nlb == 0) {
		close(fd);
		return -ENOSPC; /* smaller than one block */
	}
	b->bytes = b->nlb << b->lbads;
	b->fd = fd;
	b->path = path;
	return 0;
fail : {
	int e = -errno;

	close(fd);
	return e;
}
}

void nvme_backing_close(struct nvme_backing *b)
{
	if (b->fd >= 0)
		close(b->fd);
	b->fd = -1;
}

int nvme_backing_flush(struct nvme_backing *b)
{
	return fdatasync(b->fd) < 0 ? -errno : 0;
}

int nvme_backing_rw(struct nvme_backing *b, struct iovec *iov, int n,
		    uint64_t off, bool is_read)
{
	while (n > 0) {
		ssize_t r = is_read ? preadv(b->fd, iov, n, (off_t)off)
				    : pwritev(b->fd, iov, n, (off_t)off);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			return -EIO; /* the file shrank under us */
		off += (uint64_t)r;
		/* A short transfer: skip what is done and go on. */
		while (n > 0 && (size_t)r >= iov->iov_len) {
			r -= (ssize_t)iov->iov_len;
			iov++;
			n--;
		}
		if (n > 0 && r > 0) {
			iov->iov_base = (uint8_t *)iov->iov_base + r;
			iov->iov_len -= (size_t)r;
		}
	}
	return 0;
}

/* Zeroes in place where the file system or device can (no data moves),
 * else by writing a zeroed scratch buffer. */
int nvme_backing_zero(struct nvme_backing *b, uint64_t off, uint64_t len,
		      uint8_t *scratch, size_t scratch_len)
{
	if (fallocate(b->fd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE,
		      (off_t)off, (off_t)len) == 0)
		return 0;
	if (errno != EOPNOTSUPP && errno != EINVAL && errno != ENODEV)
		return -errno;
	memset(scratch, 0, scratch_len);
	while (len) {
		struct iovec v = {scratch,
				  len < scratch_len ? len : scratch_len};
		size_t n = v.iov_len;
		int r = nvme_backing_rw(b, &v, 1, off, false);

		if (r < 0)
			return r;
		off += n;
		len -= n;
	}
	return 0;
}

/* Deallocate is advisory (DLFEAT reports nothing about what reads give
 * afterwards), so a backing that can't punch holes just keeps the data. */
int nvme_backing_discard(struct nvme_backing *b, uint64_t off, uint64_t len)
{
	if (fallocate(b->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		      (off_t)off, (off_t)len) == 0)
		return 0;
	if (errno == EOPNOTSUPP || errno == EINVAL || errno == ENODEV)
		return 0;
	return -errno;
}
