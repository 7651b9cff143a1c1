/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * fdtable.c - which file descriptors are our fake container, group and
 * device fds, and the reference counts of the objects behind them.
 *
 * Every pread/pwrite/ioctl/mmap/close of the process asks this table
 * first, so the miss path is lock-free: a two-level array of atomic slots
 * indexed by fd. A slot only changes under the table lock, and an fd
 * number only reaches the application after its slot is set, so a racing
 * reader of an unrelated fd never sees a half-made entry.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "preload.h"

#define MP_CHUNK_BITS 10
#define MP_CHUNK (1u << MP_CHUNK_BITS)
#define MP_NCHUNKS 1024u /* fds below 1M; getrlimit rarely allows more */

struct mp_slot {
	_Atomic int kind; /* enum mp_kind */
	void *obj;
};

static _Atomic(struct mp_slot *) mp_chunks[MP_NCHUNKS];
static pthread_mutex_t mp_fd_lock = PTHREAD_MUTEX_INITIALIZER;
pthread_mutex_t mp_iommu_lock = PTHREAD_MUTEX_INITIALIZER;

static struct mp_slot *mp_slot(int fd, bool create)
{
	struct mp_slot *chunk;
	unsigned c;

	if (fd < 0 || (unsigned)fd >= MP_CHUNK * MP_NCHUNKS)
		return NULL;
	c = (unsigned)fd >> MP_CHUNK_BITS;
	chunk = atomic_load_explicit(&mp_chunks[c], memory_order_acquire);
	if (!chunk && create) {
		/* Only called under mp_fd_lock: no race on creation. */
		chunk = calloc(MP_CHUNK, sizeof(*chunk));
		if (!chunk)
			return NULL;
		atomic_store_explicit(&mp_chunks[c], chunk,
				      memory_order_release);
	}
	return chunk ? &chunk[(unsigned)fd & (MP_CHUNK - 1)] : NULL;
}

static void mp_obj_ref_locked(enum mp_kind kind, void *obj)
{
	if (kind == MP_CONTAINER)
		((struct mp_container *)obj)->refs++;
	else
		((struct mp_group *)obj)->refs++;
}

int mp_fd_register(int fd, enum mp_kind kind, void *obj)
{
	struct mp_slot *s;
	int ret = 0;

	pthread_mutex_lock(&mp_fd_lock);
	s = mp_slot(fd, true);
	if (!s) {
		ret = fd < 0 ? -EBADF : -EMFILE;
	} else {
		/* A stale entry means the fd was closed behind our back
		 * (close_range, dup2 onto it): the number is reused now. */
		s->obj = obj;
		atomic_store_explicit(&s->kind, kind, memory_order_release);
		mp_obj_ref_locked(kind, obj);
	}
	pthread_mutex_unlock(&mp_fd_lock);
	return ret;
}

bool mp_fd_get(int fd, struct mp_ref *ref)
{
	struct mp_slot *s = mp_slot(fd, false);
	bool hit = false;

	if (!s || !atomic_load_explicit(&s->kind, memory_order_acquire))
		return false;
	pthread_mutex_lock(&mp_fd_lock);
	ref->kind = atomic_load_explicit(&s->kind, memory_order_relaxed);
	if (ref->kind != MP_NONE) {
		ref->obj = s->obj;
		mp_obj_ref_locked(ref->kind, ref->obj);
		hit = true;
	}
	pthread_mutex_unlock(&mp_fd_lock);
	return hit;
}

bool mp_fd_unregister(int fd, struct mp_ref *ref)
{
	struct mp_slot *s = mp_slot(fd, false);
	bool hit = false;

	if (!s || !atomic_load_explicit(&s->kind, memory_order_acquire))
		return false;
	pthread_mutex_lock(&mp_fd_lock);
	ref->kind = atomic_load_explicit(&s->kind, memory_order_relaxed);
	if (ref->kind != MP_NONE) {
		ref->obj = s->obj;
		atomic_store_explicit(&s->kind, MP_NONE, memory_order_release);
		s->obj = NULL;
		hit = true;
	}
	pthread_mutex_unlock(&mp_fd_lock);
	return hit;
}

void mp_group_get(struct mp_group *g)
{
	pthread_mutex_lock(&mp_fd_lock);
	g->refs++;
	pthread_mutex_unlock(&mp_fd_lock);
}

/* Drop one reference; true when it was the last. */
static bool mp_unref(int *refs)
{
	bool last;

	pthread_mutex_lock(&mp_fd_lock);
	last = --*refs == 0;
	pthread_mutex_unlock(&mp_fd_lock);
	return last;
}

void mp_group_put(struct mp_group *g)
{
	if (mp_unref(&g->refs))
		mp_group_free(g);
}

void mp_container_get(struct mp_container *ct)
{
	pthread_mutex_lock(&mp_fd_lock);
	ct->refs++;
	pthread_mutex_unlock(&mp_fd_lock);
}

void mp_container_put(struct mp_container *ct)
{
	if (mp_unref(&ct->refs))
		mp_container_free(ct);
}

void mp_ref_put(const struct mp_ref *ref)
{
	if (ref->kind == MP_CONTAINER)
		mp_container_put(ref->obj);
	else if (ref->kind != MP_NONE)
		mp_group_put(ref->obj);
}

int mp_fake_fd(const char *what, int open_flags)
{
	int fd = memfd_create(what, open_flags & O_CLOEXEC ? MFD_CLOEXEC : 0);

	return fd < 0 ? -errno : fd;
}
