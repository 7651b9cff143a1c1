/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * interpose.c - the libc entry points the shim wraps. Each one asks the
 * fdtable (or, for open, the path) whether the call is ours; everything
 * else goes to the next definition (libc) found with dlsym(RTLD_NEXT).
 *
 * These are the only symbols the shim exports. QEMU 7.2 imports open64,
 * __open64_2, openat64, ioctl, pread64, __pread64_chk, pwrite64, mmap64,
 * close and readlink; the plain and fortified siblings are wrapped too so
 * other builds and programs behave the same.
 */
/* We define both the plain and the 64-bit names ourselves: keep the
 * headers from redirecting one to the other. LP64 only (off_t is 64-bit). */
#undef _FORTIFY_SOURCE
#undef _FILE_OFFSET_BITS
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "preload.h"

#define MP_EXPORT __attribute__((visibility("default")))

struct mp_real mp_real;
static pthread_once_t mp_real_once = PTHREAD_ONCE_INIT;

static void *mp_next(const char *name)
{
	return dlsym(RTLD_NEXT, name);
}

static void mp_real_resolve(void)
{
	/* The 64-bit names exist on every glibc; on LP64 they are the same
	 * functions as the plain ones. */
	mp_real.open = mp_next("open64");
	mp_real.openat = mp_next("openat64");
	mp_real.close = mp_next("close");
	mp_real.ioctl = mp_next("ioctl");
	mp_real.pread = mp_next("pread64");
	mp_real.pwrite = mp_next("pwrite64");
	mp_real.pread_chk = mp_next("__pread64_chk");
	mp_real.mmap = mp_next("mmap64");
	mp_real.readlink = mp_next("readlink");
	mp_real.readlinkat = mp_next("readlinkat");
}

void mp_real_init(void)
{
	pthread_once(&mp_real_once, mp_real_resolve);
}

static int mp_ret(int ret)
{
	if (ret < 0) {
		errno = -ret;
		return -1;
	}
	return ret;
}

static ssize_t mp_sret(ssize_t ret)
{
	if (ret < 0) {
		errno = (int)-ret;
		return -1;
	}
	return ret;
}

/* ---- open ------------------------------------------------------------------
 */

/* Whether the last group this thread opened was ours: QEMU opens the
 * group, then /dev/vfio/vfio for its container, in the same thread. A
 * real group keeps a real container, so real and muser devices mix. */
static __thread bool mp_last_group_ours;

/* Returns a fake fd, -errno, or 1 for "not ours". */
static int mp_vfio_open(const char *path, int flags)
{
	struct stat st;
	int num;

	if (strncmp(path, "/dev/vfio/", 10) != 0)
		return 1;
	if (strcmp(path, "/dev/vfio/vfio") == 0) {
		if (mp_last_group_ours || stat(path, &st) < 0)
			return mp_container_open(flags);
		return 1;
	}
	num = mp_config_group_path(path);
	if (num < 0)
		return 1;
	bool ours;
	int fd = mp_group_open(num, flags, &ours);

	if (!ours) {
		/* Not a muser group: a real VFIO group. */
		mp_last_group_ours = false;
		return 1;
	}
	mp_last_group_ours = true;
	return fd;
}

static int mp_open_common(int dirfd, const char *path, int flags, mode_t mode)
{
	mp_real_init();
	if (path && path[0] == '/') {
		int fd = mp_vfio_open(path, flags);

		if (fd != 1)
			return mp_ret(fd);
	}
	if (dirfd == AT_FDCWD)
		return mp_real.open(path, flags, mode);
	return mp_real.openat(dirfd, path, flags, mode);
}

static mode_t mp_mode(int flags, va_list ap)
{
	if (flags & (O_CREAT | O_TMPFILE))
		return va_arg(ap, mode_t);
	return 0;
}

MP_EXPORT int open(const char *path, int flags, ...)
{
	va_list ap;
	mode_t mode;

	va_start(ap, flags);
	mode = mp_mode(flags, ap);
	va_end(ap);
	return mp_open_common(AT_FDCWD, path, flags, mode);
}

MP_EXPORT int open64(const char *path, int flags, ...)
{
	va_list ap;
	mode_t mode;

	va_start(ap, flags);
	mode = mp_mode(flags, ap);
	va_end(ap);
	return mp_open_common(AT_FDCWD, path, flags, mode);
}

MP_EXPORT int openat(int dirfd, const char *path, int flags, ...)
{
	va_list ap;
	mode_t mode;

	va_start(ap, flags);
	mode = mp_mode(flags, ap);
	va_end(ap);
	return mp_open_common(dirfd, path, flags, mode);
}

MP_EXPORT int openat64(int dirfd, const char *path, int flags, ...)
{
	va_list ap;
	mode_t mode;

	va_start(ap, flags);
	mode = mp_mode(flags, ap);
	va_end(ap);
	return mp_open_common(dirfd, path, flags, mode);
}

/* Fortified open (no mode: O_CREAT without one is a fortify error, which
 * the real open reports the same way). */
MP_EXPORT int __open_2(const char *path, int flags);
MP_EXPORT int __open_2(const char *path, int flags)
{
	return mp_open_common(AT_FDCWD, path, flags, 0);
}

MP_EXPORT int __open64_2(const char *path, int flags);
MP_EXPORT int __open64_2(const char *path, int flags)
{
	return mp_open_common(AT_FDCWD, path, flags, 0);
}

/* ---- close ------------------------------------------------------------------
 */

MP_EXPORT int close(int fd)
{
	struct mp_ref ref;
	int ret;

	mp_real_init();
	if (!mp_fd_unregister(fd, &ref))
		return mp_real.close(fd);
	/* Out of the table first, so a reused fd number is never ours. */
	ret = mp_real.close(fd);
	mp_ref_put(&ref);
	return ret;
}

/* ---- ioctl ------------------------------------------------------------------
 */

MP_EXPORT int ioctl(int fd, unsigned long req, ...)
{
	struct mp_ref ref;
	unsigned long arg;
	va_list ap;
	int ret;

	va_start(ap, req);
	arg = va_arg(ap, unsigned long);
	va_end(ap);
	mp_real_init();
	if (!mp_fd_get(fd, &ref))
		return mp_real.ioctl(fd, req, arg);
	switch (ref.kind) {
	case MP_CONTAINER:
		ret = mp_container_ioctl(ref.obj, req, arg);
		break;
	case MP_GROUP:
		ret = mp_group_ioctl(ref.obj, req, arg);
		break;
	default:
		ret = mp_device_ioctl(ref.obj, req, arg);
		break;
	}
	mp_ref_put(&ref);
	return mp_ret(ret);
}

/* ---- pread / pwrite
 * ---------------------------------------------------------- */

static ssize_t mp_pread_ours(const struct mp_ref *ref, void *buf, size_t n,
			     off_t off)
{
	if (ref->kind != MP_DEVICE)
		return -EINVAL;
	return mp_device_pread(ref->obj, buf, n, (uint64_t)off);
}

/* The exported siblings call these static versions, never each other:
 * a call between exported names would bind to libc's when the shim is
 * dlopen()ed rather than preloaded. */
static ssize_t mp_pread(int fd, void *buf, size_t n, off_t off)
{
	struct mp_ref ref;
	ssize_t ret;

	mp_real_init();
	if (!mp_fd_get(fd, &ref))
		return mp_real.pread(fd, buf, n, off);
	ret = mp_pread_ours(&ref, buf, n, off);
	mp_ref_put(&ref);
	return mp_sret(ret);
}

MP_EXPORT ssize_t pread(int fd, void *buf, size_t n, off_t off)
{
	return mp_pread(fd, buf, n, off);
}

MP_EXPORT ssize_t pread64(int fd, void *buf, size_t n, off_t off)
{
	return mp_pread(fd, buf, n, off);
}

extern void __chk_fail(void) __attribute__((noreturn));

static ssize_t mp_pread_chk(int fd, void *buf, size_t n, off_t off,
			    size_t buflen)
{
	struct mp_ref ref;
	ssize_t ret;

	mp_real_init();
	if (!mp_fd_get(fd, &ref))
		return mp_real.pread_chk(fd, buf, n, off, buflen);
	if (n > buflen) {
		mp_ref_put(&ref);
		__chk_fail();
	}
	ret = mp_pread_ours(&ref, buf, n, off);
	mp_ref_put(&ref);
	return mp_sret(ret);
}

MP_EXPORT ssize_t __pread64_chk(int fd, void *buf, size_t n, off_t off,
				size_t buflen);
MP_EXPORT ssize_t __pread64_chk(int fd, void *buf, size_t n, off_t off,
				size_t buflen)
{
	return mp_pread_chk(fd, buf, n, off, buflen);
}

MP_EXPORT ssize_t __pread_chk(int fd, void *buf, size_t n, off_t off,
			      size_t buflen);
MP_EXPORT ssize_t __pread_chk(int fd, void *buf, size_t n, off_t off,
			      size_t buflen)
{
	return mp_pread_chk(fd, buf, n, off, buflen);
}

static ssize_t mp_pwrite(int fd, const void *buf, size_t n, off_t off)
{
	struct mp_ref ref;
	ssize_t ret;

	mp_real_init();
	if (!mp_fd_get(fd, &ref))
		return mp_real.pwrite(fd, buf, n, off);
	if (ref.kind != MP_DEVICE)
		ret = -EINVAL;
	else
		ret = mp_device_pwrite(ref.obj, buf, n, (uint64_t)off);
	mp_ref_put(&ref);
	return mp_sret(ret);
}

MP_EXPORT ssize_t pwrite(int fd, const void *buf, size_t n, off_t off)
{
	return mp_pwrite(fd, buf, n, off);
}

MP_EXPORT ssize_t pwrite64(int fd, const void *buf, size_t n, off_t off)
{
	return mp_pwrite(fd, buf, n, off);
}

/* ---- mmap
 * --------------------------------------------------------------------- */

static void *mp_mmap(void *addr, size_t len, int prot, int flags, int fd,
		     off_t off)
{
	struct mp_ref ref;
	void *p;
	int err = ENODEV;

	mp_real_init();
	if (fd < 0 || (flags & MAP_ANONYMOUS) || !mp_fd_get(fd, &ref))
		return mp_real.mmap(addr, len, prot, flags, fd, off);
	p = MAP_FAILED;
	if (ref.kind == MP_DEVICE)
		p = mp_device_mmap(ref.obj, addr, len, prot, flags,
				   (uint64_t)off, &err);
	mp_ref_put(&ref);
	if (p == MAP_FAILED)
		errno = err;
	return p;
}

MP_EXPORT void *mmap(void *addr, size_t len, int prot, int flags, int fd,
		     off_t off)
{
	return mp_mmap(addr, len, prot, flags, fd, off);
}

MP_EXPORT void *mmap64(void *addr, size_t len, int prot, int flags, int fd,
		       off_t off)
{
	return mp_mmap(addr, len, prot, flags, fd, off);
}

/* ---- readlink: learn which sysfsdev directory is which group --------------
 */

MP_EXPORT ssize_t readlink(const char *path, char *buf, size_t len)
{
	ssize_t n;

	mp_real_init();
	n = mp_real.readlink(path, buf, len);
	if (n > 0) {
		int saved = errno;

		mp_config_learn_link(path, buf, (size_t)n);
		errno = saved;
	}
	return n;
}

MP_EXPORT ssize_t readlinkat(int dirfd, const char *path, char *buf, size_t len)
{
	ssize_t n;

	mp_real_init();
	n = mp_real.readlinkat(dirfd, path, buf, len);
	if (n > 0 && (path[0] == '/' || dirfd == AT_FDCWD)) {
		int saved = errno;

		mp_config_learn_link(path, buf, (size_t)n);
		errno = saved;
	}
	return n;
}
