/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * mu_dev_sandbox(): check the options, then in order the helper that
 * removes socket files (sandbox_helper.c), namespaces, /proc/self/fd
 * (which the library still reads), closing undeclared fds, the SIGSYS
 * handler and last the seccomp filter (sandbox_filter.c,
 * sandbox_trap.c).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "dev-internal.h"
#include "sandbox.h"

/* Bounds on what a caller may declare (each is a filter rule or a kept
 * fd; more would only make a filter the kernel refuses). */
#define SBX_MAX_DECL 256u

static atomic_bool sbx_claimed;
static atomic_int sbx_level = MU_SANDBOX_NONE;
/* /proc/self/fd, for readlinkat() once readlink() is forbidden. */
static int sbx_fd_dir = -1;

/* Files the helper removes (sandbox_helper.c): the devices' socket files
 * and remove_files. Set once, before the filter; mu_sbx_helper_start()
 * gets the array of mu_sbx_file that starts each entry. */
struct sbx_file {
	struct mu_sbx_file f; /* first: an array of these is one of those */
	bool dev_owned;	      /* a device's socket (not for _unlink()) */
	bool removed;
};
static struct sbx_file *sbx_files;
static struct mu_sbx_file *sbx_helper_files;
static unsigned nr_sbx_files;

MU_EXPORT enum mu_sandbox_level mu_dev_sandbox_level(void)
{
	return (enum mu_sandbox_level)atomic_load(&sbx_level);
}

bool mu_sbx_active(void)
{
	return atomic_load(&sbx_level) != MU_SANDBOX_NONE;
}

ssize_t mu_sbx_fd_link(int fd, char *buf, size_t len)
{
	char name[40];

	if (sbx_fd_dir >= 0) {
		snprintf(name, sizeof(name), "%d", fd);
		return readlinkat(sbx_fd_dir, name, buf, len);
	}
	if (mu_sbx_active()) {
		errno = ENOENT; /* no /proc: callers cope as without one */
		return -1;
	}
	snprintf(name, sizeof(name), "/proc/self/fd/%d", fd);
	return readlink(name, buf, len);
}

void mu_sbx_unlink_socket(struct mu_dev *dev)
{
	if (dev->sbx_file >= 0 && !sbx_files[dev->sbx_file].removed) {
		sbx_files[dev->sbx_file].removed = true;
		mu_sbx_helper_remove((unsigned)dev->sbx_file);
	}
	dev->sbx_file = -1;
}

MU_EXPORT int mu_dev_sandbox_unlink(const char *path)
{
	unsigned i;

	if (!path)
		return -EINVAL;
	if (!mu_sbx_active())
		return unlink(path) < 0 ? -errno : 0;
	for (i = 0; i < nr_sbx_files; i++) {
		struct sbx_file *f = &sbx_files[i];

		if (!f->dev_owned && !f->removed && !strcmp(f->f.path, path)) {
			f->removed = true;
			return mu_sbx_helper_remove(i);
		}
	}
	return -ENOENT;
}

/* ---- options --------------------------------------------------------- */

static int copy_opts(const struct mu_sandbox_opts *in,
		     struct mu_sandbox_opts *o)
{
	size_t n;

	memset(o, 0, sizeof(*o));
	o->struct_size = sizeof(*o);
	o->level = MU_SANDBOX_SECCOMP;
	if (!in)
		return 0;
	if (in->struct_size < offsetof(struct mu_sandbox_opts, syscalls))
		return -EINVAL;
	n = in->struct_size < sizeof(*o) ? in->struct_size : sizeof(*o);
	memcpy(o, in, n);
	o->struct_size = sizeof(*o);
	if ((int)o->level < MU_SANDBOX_NONE || o->level > MU_SANDBOX_STRICT ||
	    (o->flags & ~(MU_SANDBOX_LOG_ONLY | MU_SANDBOX_BEST_EFFORT)))
		return -EINVAL;
	if ((o->nr_syscalls && !o->syscalls) ||
	    (o->nr_keep_fds && !o->keep_fds) ||
	    (o->nr_remove_files && !o->remove_files) ||
	    (o->nr_devs && !o->devs))
		return -EINVAL;
	if (o->nr_syscalls > SBX_MAX_DECL || o->nr_keep_fds > SBX_MAX_DECL ||
	    o->nr_remove_files > SBX_MAX_DECL || o->nr_devs > SBX_MAX_DECL)
		return -EINVAL;
	return 0;
}

static int check_decls(struct mu_dev *dev, const struct mu_sandbox_opts *o)
{
	struct stat st;
	unsigned i;

	if (!dev->realized)
		return -EINVAL;
	for (i = 0; i < o->nr_devs; i++)
		if (!o->devs[i] || !o->devs[i]->realized)
			return -EINVAL;
	for (i = 0; i < o->nr_keep_fds; i++)
		if (o->keep_fds[i] < 0 || fcntl(o->keep_fds[i], F_GETFD) < 0)
			return -EBADF;
	for (i = 0; i < o->nr_remove_files; i++) {
		if (!o->remove_files[i])
			return -EINVAL;
		if (lstat(o->remove_files[i], &st) < 0)
			return -errno;
	}
	return mu_sbx_check_names(o->syscalls, o->nr_syscalls);
}

/* ---- namespaces ------------------------------------------------------ */

static void write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);

	if (fd < 0)
		return;
	if (write(fd, text, strlen(text)) < 0) {
		/* an unmapped id only shows as "nobody": not fatal */
	}
	close(fd);
}

/* Keep our own uid and gid visible inside the user namespace. */
static void map_ids(uid_t uid, gid_t gid)
{
	char line[64];

	snprintf(line, sizeof(line), "%u %u 1\n", (unsigned)uid, (unsigned)uid);
	write_file("/proc/self/uid_map", line);
	write_file("/proc/self/setgroups", "deny");
	snprintf(line, sizeof(line), "%u %u 1\n", (unsigned)gid, (unsigned)gid);
	write_file("/proc/self/gid_map", line);
}

/*
 * The user namespace first: it takes root's powers over the host away
 * and lets an unprivileged process make the others. No pid namespace: it
 * would forbid creating threads, and the filter forbids new processes.
 */
static int enter_namespaces(struct mu_dev *dev, bool best_effort)
{
	static const struct {
		int flag;
		const char *name;
	} ns[] = {
		{CLONE_NEWUSER, "user"},   {CLONE_NEWNS, "mount"},
		{CLONE_NEWNET, "network"}, {CLONE_NEWIPC, "IPC"},
		{CLONE_NEWUTS, "UTS"},
	};
	uid_t uid = geteuid();
	gid_t gid = getegid();
	unsigned i;
	int r;

	for (i = 0; i < sizeof(ns) / sizeof(ns[0]); i++) {
		if (unshare(ns[i].flag) == 0) {
			if (ns[i].flag == CLONE_NEWUSER)
				map_ids(uid, gid);
			continue;
		}
		r = -errno;
		if (!best_effort) {
			mu_log(dev, MU_LOG_ERR,
			       "sandbox: cannot make a %s namespace: %s%s",
			       ns[i].name, strerror(-r),
			       r == -EINVAL ? " (threads running?)" : "");
			return r;
		}
		mu_log(dev, MU_LOG_WARN,
		       "sandbox: no %s namespace (%s), going on without",
		       ns[i].name, strerror(-r));
	}
	return 0;
}

/* ---- fds --------------------------------------------------------------- */

struct fdset {
	int *fd;
	unsigned n, cap;
};

static int fdset_add(struct fdset *s, int fd)
{
	int *p;

	if (fd < 0)
		return 0;
	if (s->n == s->cap) {
		unsigned cap = s->cap ? s->cap * 2 : 64;

		p = realloc(s->fd, cap * sizeof(*p));
		if (!p)
			return -ENOMEM;
		s->fd = p;
		s->cap = cap;
	}
	s->fd[s->n++] = fd;
	return 0;
}

/* Every fd the device holds now. */
static int dev_fds(struct mu_dev *d, struct fdset *s)
{
	unsigned i, j;
	int r = 0;

	r |= fdset_add(s, d->listen_fd);
	r |= fdset_add(s, d->epfd);
	r |= fdset_add(s, d->wake_fd);
	r |= fdset_add(s, d->timer_fd);
	r |= fdset_add(s, d->chan.fd);
	r |= fdset_add(s, d->twin.fd);
	for (i = 0; i < d->nr_regions; i++) {
		r |= fdset_add(s, d->regions[i].memfd);
		r |= fdset_add(s, d->regions[i].client_fd);
	}
	for (i = 0; i < d->nr_ioefds; i++)
		r |= fdset_add(s, d->ioefds[i].fd);
	for (i = 0; i < MU_PCI_NUM_IRQS; i++)
		for (j = 0; d->irqs[i].vec && j < d->irqs[i].count; j++)
			r |= fdset_add(s, d->irqs[i].vec[j].efd);
	return r ? -ENOMEM : 0;
}

static int cmp_int(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;

	return (x > y) - (x < y);
}

/* Fallback for kernels before close_range(): what /proc lists. */
static int close_listed(const struct fdset *keep)
{
	struct fdset doomed = {0};
	struct dirent *e;
	DIR *d = opendir("/proc/self/fd");
	unsigned i;
	int r = 0;

	if (!d)
		return -errno;
	while ((e = readdir(d))) {
		char *end;
		long fd = strtol(e->d_name, &end, 10);
		int f = (int)fd;

		if (e->d_name[0] < '0' || e->d_name[0] > '9' || *end ||
		    f == dirfd(d) ||
		    bsearch(&f, keep->fd, keep->n, sizeof(int), cmp_int))
			continue;
		if (fdset_add(&doomed, f) < 0) {
			r = -ENOMEM;
			break;
		}
	}
	closedir(d);
	for (i = 0; r == 0 && i < doomed.n; i++)
		close(doomed.fd[i]);
	free(doomed.fd);
	return r;
}

/* Close every fd not in keep (sorted, 0-2 included). */
static int close_others(const struct fdset *keep)
{
	unsigned lo = 0, i;

	for (i = 0; i <= keep->n; i++) {
		unsigned hi = i < keep->n ? (unsigned)keep->fd[i] : ~0u;

		if (hi > lo && syscall(SYS_close_range, lo, hi - 1, 0) < 0)
			return errno == ENOSYS ? close_listed(keep) : -errno;
		if (i < keep->n)
			lo = (unsigned)keep->fd[i] + 1;
	}
	return 0;
}

/* Record path (its directory as an O_PATH fd, its name and inode) for
 * the helper; dev: a device's socket file, which must still be its own. */
static int add_file(const char *path, struct mu_dev *dev)
{
	const char *slash = strrchr(path, '/');
	struct sbx_file *f = &sbx_files[nr_sbx_files];
	struct stat st;
	char *dir;

	if (slash && !slash[1])
		return -EINVAL; /* not a file name */
	if (!slash)
		dir = strdup(".");
	else if (slash == path)
		dir = strdup("/");
	else
		dir = strndup(path, (size_t)(slash - path));
	if (!dir)
		return -ENOMEM;
	memset(f, 0, sizeof(*f));
	f->f.dir_fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	free(dir);
	if (f->f.dir_fd < 0)
		return -errno;
	f->f.name = strdup(slash ? slash + 1 : path);
	f->f.path = strdup(path);
	if (!f->f.name || !f->f.path ||
	    fstatat(f->f.dir_fd, f->f.name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
	    (dev &&
	     (st.st_dev != dev->sock_dev || st.st_ino != dev->sock_ino))) {
		int r = !f->f.name || !f->f.path ? -ENOMEM
			: dev			 ? 0 /* not ours: leave it */
						 : -errno;

		close(f->f.dir_fd);
		free(f->f.name);
		free(f->f.path);
		return r;
	}
	f->f.dev = st.st_dev;
	f->f.ino = st.st_ino;
	f->dev_owned = dev != NULL;
	if (dev)
		dev->sbx_file = (int)nr_sbx_files;
	nr_sbx_files++;
	return 0;
}

/* ---- the call ---------------------------------------------------------- */

/*
 * LeakSanitizer (ASan builds) checks for leaks at exit from a task it
 * clones and ptrace()s, none of which the filter allows: a sandboxed
 * program would die of SIGSYS in its last moments. Its interface
 * function runs the check now instead, which also turns off the one at
 * exit; allocations made while serving are then not checked for leaks.
 * NULL without a sanitizer runtime.
 */
extern void __lsan_do_leak_check(void) __attribute__((weak));

static void leak_check_now(struct mu_dev *dev)
{
	if (!__lsan_do_leak_check)
		return;
	mu_log(dev, MU_LOG_INFO,
	       "sandbox: LeakSanitizer checks now, not at exit (it can't "
	       "run sandboxed)");
	__lsan_do_leak_check();
}

static struct mu_dev *nth_dev(struct mu_dev *dev,
			      const struct mu_sandbox_opts *o, unsigned i)
{
	return i == 0 ? dev : o->devs[i - 1];
}

static void forget_files(struct mu_dev *dev, const struct mu_sandbox_opts *o)
{
	unsigned i;

	for (i = 0; i <= o->nr_devs; i++)
		nth_dev(dev, o, i)->sbx_file = -1;
	for (i = 0; i < nr_sbx_files; i++) {
		if (sbx_files[i].f.dir_fd >= 0)
			close(sbx_files[i].f.dir_fd);
		free(sbx_files[i].f.name);
		free(sbx_files[i].f.path);
	}
	free(sbx_files);
	free(sbx_helper_files);
	sbx_files = NULL;
	sbx_helper_files = NULL;
	nr_sbx_files = 0;
}

/* The files to remove later, and the helper that will. */
static int start_helper(struct mu_dev *dev, const struct mu_sandbox_opts *o)
{
	unsigned i, n = o->nr_devs + 1 + o->nr_remove_files;
	int r = 0;

	sbx_files = calloc(n, sizeof(*sbx_files));
	sbx_helper_files = calloc(n, sizeof(*sbx_helper_files));
	if (!sbx_files || !sbx_helper_files)
		r = -ENOMEM;
	for (i = 0; r == 0 && i <= o->nr_devs; i++) {
		struct mu_dev *d = nth_dev(dev, o, i);

		if (d->path && d->listen_fd >= 0)
			r = add_file(d->path, d);
	}
	for (i = 0; r == 0 && i < o->nr_remove_files; i++)
		r = add_file(o->remove_files[i], NULL);
	for (i = 0; r == 0 && i < nr_sbx_files; i++)
		sbx_helper_files[i] = sbx_files[i].f;
	if (r == 0)
		r = mu_sbx_helper_start(sbx_helper_files, nr_sbx_files);
	if (r < 0) {
		forget_files(dev, o);
		return r;
	}
	/* the helper owns the directory fds now (closed here by
	 * mu_sbx_helper_start()) */
	for (i = 0; i < nr_sbx_files; i++)
		sbx_files[i].f.dir_fd = -1;
	return 0;
}

/* /proc/self/fd, and with STRICT the fd purge. */
static int prepare_fds(struct mu_dev *dev, const struct mu_sandbox_opts *o)
{
	struct fdset keep = {0};
	unsigned i;
	int r = 0;

	if (sbx_fd_dir < 0)
		sbx_fd_dir = open("/proc/self/fd",
				  O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (o->level < MU_SANDBOX_STRICT)
		return 0;
	for (i = 0; r == 0 && i < 3; i++)
		r = fdset_add(&keep, (int)i);
	r = r ? r : fdset_add(&keep, sbx_fd_dir);
	r = r ? r : fdset_add(&keep, mu_sbx_helper_fd());
	for (i = 0; r == 0 && i < o->nr_keep_fds; i++)
		r = fdset_add(&keep, o->keep_fds[i]);
	for (i = 0; r == 0 && i <= o->nr_devs; i++)
		r = dev_fds(nth_dev(dev, o, i), &keep);
	if (r == 0) {
		qsort(keep.fd, keep.n, sizeof(int), cmp_int);
		r = close_others(&keep);
	}
	free(keep.fd);
	return r;
}

static int apply(struct mu_dev *dev, const struct mu_sandbox_opts *o)
{
	bool log_only = o->flags & MU_SANDBOX_LOG_ONLY;
	struct mu_sbx_rules rules = {0};
	int r;

	/* First, so that the helper stays in our namespaces. */
	r = start_helper(dev, o);
	if (r == 0 && o->level >= MU_SANDBOX_NAMESPACES)
		r = enter_namespaces(dev, o->flags & MU_SANDBOX_BEST_EFFORT);
	if (r == 0)
		r = prepare_fds(dev, o);
	if (r == 0) {
		leak_check_now(dev);
		mu_sbx_trap_names();
		r = mu_sbx_trap_install(log_only);
	}
	if (r == 0) {
		rules.log_only = log_only;
		rules.pid = getpid();
		rules.syscalls = o->syscalls;
		rules.nr_syscalls = o->nr_syscalls;
		rules.fd_dir = sbx_fd_dir;
		rules.helper_pid = mu_sbx_helper_pid();
		r = mu_sbx_filter_load(&rules);
	}
	if (r < 0) {
		mu_log(dev, MU_LOG_ERR, "sandbox: %s", strerror(-r));
		mu_sbx_helper_cancel();
		forget_files(dev, o);
	}
	return r;
}

MU_EXPORT int mu_dev_sandbox(mu_dev_t *dev, const struct mu_sandbox_opts *opts)
{
	static const char *const names[] = {"none", "seccomp", "namespaces",
					    "strict"};
	struct mu_sandbox_opts o;
	bool no = false;
	int r;

	if (!dev)
		return -EINVAL;
	r = copy_opts(opts, &o);
	if (r == 0)
		r = check_decls(dev, &o);
	if (r < 0 || o.level == MU_SANDBOX_NONE)
		return r;
	if (!atomic_compare_exchange_strong(&sbx_claimed, &no, true))
		return -EALREADY;
	r = mu_sbx_filter_available();
	if (r == 0)
		r = apply(dev, &o);
	if (r < 0) {
		atomic_store(&sbx_claimed, false);
		return r;
	}
	atomic_store(&sbx_level, o.level);
	mu_log(dev, MU_LOG_INFO, "sandbox: level %s%s", names[o.level],
	       (o.flags & MU_SANDBOX_LOG_ONLY) ? ", log only" : "");
	return 0;
}
