/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Memory allocation failure paths.
 *
 * This executable links the static libmuser, libmuser-client and wire
 * core with -Wl,--wrap=malloc,calloc,realloc,strdup: every allocation the
 * libraries make goes through the wrappers below, which fail exactly the
 * Nth one made by one side once armed. (json-c is a shared library: its
 * own allocations are not wrapped.)
 *
 * One run is a full session in one process: the in-test device adopts one
 * end of a socketpair (mu_dev_create_fd) and is set up, realized and
 * served (mu_dev_run) by a thread; the client adopts the other end and
 * goes through discovery, interrupts, DMA maps with and without fd,
 * register access, posted writes, region mmap, device DMA through the
 * client (twin socket), reset and unmaps; then both are destroyed. The
 * sweep fails allocation N = 1, 2, 3, ... of the device thread, then of
 * the client thread, until a run completes with no injected failure.
 *
 * Every run must end without crash or hang (a request that times out is
 * a failure: an allocation failure must give an error or a disconnect,
 * not silence), with this process's fd count back at its baseline and no
 * region mapping left; under ASan each run is also leak-checked.
 */
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "faults-common.h"
#include "muser/client.h"

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HAVE_LSAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define HAVE_LSAN 1
#endif
#ifdef HAVE_LSAN
#include <sanitizer/lsan_interface.h>
#endif

/* ---- the failing allocator -------------------------------------------------- */

enum role { R_NONE, R_DEVICE, R_CLIENT };
static const char *const role_name[] = {"none", "device", "client"};

static __thread enum role my_role;
static atomic_bool armed;
static enum role target_role;
static int target_n;
static atomic_int count, injected;

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t m);
void *__real_realloc(void *p, size_t n);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t m);
void *__wrap_realloc(void *p, size_t n);
char *__wrap_strdup(const char *s);

static bool fail_now(void)
{
	if (!atomic_load(&armed) || my_role != target_role)
		return false;
	if (atomic_fetch_add(&count, 1) + 1 != target_n)
		return false;
	atomic_fetch_add(&injected, 1);
	return true;
}

void *__wrap_malloc(size_t n)
{
	return fail_now() ? NULL : __real_malloc(n);
}

void *__wrap_calloc(size_t n, size_t m)
{
	return fail_now() ? NULL : __real_calloc(n, m);
}

void *__wrap_realloc(void *p, size_t n)
{
	return fail_now() ? NULL : __real_realloc(p, n);
}

char *__wrap_strdup(const char *s)
{
	size_t n = strlen(s) + 1;
	char *d = fail_now() ? NULL : __real_malloc(n);

	if (d)
		memcpy(d, s, n);
	return d;
}

/* ---- one session ---------------------------------------------------------------- */

struct dev_arg {
	int fd;
	int create_ret, run_ret;
};

static void *device_thread(void *arg)
{
	struct dev_arg *a = arg;
	struct fdev *f = calloc(1, sizeof(*f)); /* unarmed: role none */
	bool taken = false;

	my_role = R_DEVICE;
	a->create_ret = fdev_create(f, NULL, a->fd, &taken);
	if (a->create_ret < 0) {
		if (!taken)
			close(a->fd);
	} else {
		a->run_ret = mu_dev_run(f->dev);
		mu_dev_destroy(f->dev);
	}
	my_role = R_NONE;
	free(f);
	return NULL;
}

static int w32(mu_client_t *c, uint64_t off, uint32_t v)
{
	return mu_client_region_write(c, 0, off, &v, 4);
}

/* The client's session: number of steps done, *err the failure. */
static int session(int fd, int *err)
{
	struct mu_client_opts o = {.struct_size = sizeof(o),
				   .timeout_ms = 3000,
				   .log_level = 0};
	const struct mu_client_region *reg;
	struct mu_device_info di;
	struct mu_irq_info ii;
	mu_client_t *c = NULL;
	static uint8_t buf[0x1000];
	void *map = NULL;
	int efd[5], memfd, i, r = 0, done = 0;
	uint32_t v = 0;

	for (i = 0; i < 5; i++)
		efd[i] = eventfd(0, EFD_CLOEXEC);
	memfd = memfd_create("faults-dma", MFD_CLOEXEC);
	if (ftruncate(memfd, 0x10000) < 0)
		r = -errno;
	o.log = NULL;
	if (r == 0) {
		r = mu_client_adopt(&c, fd, &o);
		if (r < 0) {
			close(fd); /* still ours */
			c = NULL;
		}
	}
#define STEP(x)                                                                \
	do {                                                                   \
		if (r == 0) {                                                  \
			r = (x);                                               \
			if (r == 0)                                            \
				done++;                                        \
		}                                                              \
	} while (0)
	STEP(mu_client_device_info(c, &di));
	STEP(mu_client_region_info(c, 0, &reg));
	STEP(mu_client_region_info(c, 2, &reg));
	STEP(mu_client_region_info(c, 4, &reg));
	STEP(mu_client_region_info(c, 7, &reg));
	STEP(mu_client_irq_info(c, MU_PCI_MSIX_IRQ_INDEX, &ii));
	STEP(mu_client_irq_set_eventfds(c, MU_PCI_MSIX_IRQ_INDEX, 0, 4, efd));
	STEP(mu_client_irq_set_eventfds(c, MU_PCI_INTX_IRQ_INDEX, 0, 1,
					efd + 4));
	STEP(mu_client_dma_map_fd(c, 0x10000, 0x10000, memfd, 0, 3));
	STEP(mu_client_dma_map_buffer(c, 0x100000, buf, sizeof(buf), 3));
	STEP(w32(c, FD_REG_STATE, 0x1234));
	STEP(mu_client_region_read(c, 0, FD_REG_STATE, &v, 4));
	v = 5;
	STEP(mu_client_region_write_posted(c, 0, FD_REG_STATE + 4, &v, 4));
	STEP(mu_client_region_write_posted(c, 0, FD_REG_STATE + 8, &v, 4));
	STEP(mu_client_flush(c));
	STEP(mu_client_region_mmap(c, 2, 0, FD_BAR2_SIZE,
				   PROT_READ | PROT_WRITE, &map));
	STEP(w32(c, FD_REG_IOVA, 0x100000));
	STEP(w32(c, FD_REG_LEN, 200));
	STEP(w32(c, FD_REG_GO_RD, 1));
	STEP(w32(c, FD_REG_GO_WR, 1));
	STEP(w32(c, FD_REG_IOVA, 0x10000));
	STEP(w32(c, FD_REG_GO_WR, 1));
	STEP(mu_client_irq_trigger(c, MU_PCI_MSIX_IRQ_INDEX, 0, 1));
	STEP(mu_client_reset(c));
	STEP(mu_client_dma_unmap(c, 0x10000, 0x10000));
	STEP(mu_client_dma_unmap_all(c));
	STEP(mu_client_irq_disable(c, MU_PCI_MSIX_IRQ_INDEX));
	STEP(mu_client_region_munmap(c, map, FD_BAR2_SIZE));
	STEP(mu_client_region_read(c, 0, FD_REG_MAGIC, &v, 4));
	if (r == 0 && v != FD_MAGIC)
		r = -EIO;
	/* a mapping left for destroy to clean up */
	STEP(mu_client_region_mmap(c, 2, 0, 0x1000, PROT_READ, &map));
	STEP(mu_client_dma_map_buffer(c, 0x200000, buf, sizeof(buf), 3));
#undef STEP
	mu_client_destroy(c);
	for (i = 0; i < 5; i++)
		close(efd[i]);
	close(memfd);
	*err = r;
	return done;
}

static int region_mappings(void)
{
	char line[512];
	FILE *f = fopen("/proc/self/maps", "r");
	int n = 0;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (strstr(line, "muser-region"))
			n++;
	fclose(f);
	return n;
}

struct result {
	int err, steps, injected, create_ret, run_ret;
	bool bad;
};

static void run(enum role role, int n, struct result *res)
{
	struct dev_arg a = {0};
	pthread_t thr;
	int sv[2], base, fds, maps;

	memset(res, 0, sizeof(*res));
	base = fl_fd_count(0);
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		res->bad = true;
		return;
	}
	a.fd = sv[1];
	target_role = role;
	target_n = n;
	atomic_store(&count, 0);
	atomic_store(&injected, 0);
	atomic_store(&armed, true);
	if (pthread_create(&thr, NULL, device_thread, &a) != 0) {
		atomic_store(&armed, false);
		close(sv[0]);
		close(sv[1]);
		res->bad = true;
		return;
	}
	my_role = R_CLIENT;
	res->steps = session(sv[0], &res->err);
	my_role = R_NONE;
	pthread_join(thr, NULL);
	atomic_store(&armed, false);
	res->injected = atomic_load(&injected);
	res->create_ret = a.create_ret;
	res->run_ret = a.run_ret;

	fds = fl_fd_count(0);
	maps = region_mappings();
	if (fds != base || maps != 0) {
		printf("not ok - %s N=%d: fds %d (baseline %d), region "
		       "mappings %d\n",
		       role_name[role], n, fds, base, maps);
		res->bad = true;
	}
	if (res->err == -ETIMEDOUT) {
		printf("not ok - %s N=%d: a request timed out (step %d): the "
		       "failure was swallowed\n",
		       role_name[role], n, res->steps);
		res->bad = true;
	}
#ifdef HAVE_LSAN
	if (__lsan_do_recoverable_leak_check()) {
		printf("not ok - %s N=%d: leak (see the report above)\n",
		       role_name[role], n);
		res->bad = true;
	}
#endif
	if (getenv("MU_TEST_VERBOSE"))
		printf("# %s N=%d: injected %d, %d steps, err %s, create %d "
		       "run %d\n",
		       role_name[role], n, res->injected, res->steps,
		       strerror(-res->err), res->create_ret, res->run_ret);
}

int main(void)
{
	struct result res;
	enum role role;
	int n, failed = 0, runs = 0, full_steps = -1;

	signal(SIGPIPE, SIG_IGN);
	/* A clean run first: the full session must work. */
	run(R_NONE, 0, &res);
	if (res.err || res.bad) {
		printf("not ok - clean session failed at step %d: %s\n",
		       res.steps, strerror(-res.err));
		return 1;
	}
	full_steps = res.steps;
	for (role = R_DEVICE; role <= R_CLIENT; role++) {
		for (n = 1; n < 5000; n++) {
			runs++;
			run(role, n, &res);
			if (res.bad)
				failed++;
			if (!res.injected) {
				if (res.err || res.steps != full_steps) {
					printf("not ok - %s N=%d: nothing "
					       "injected but the session "
					       "failed at step %d: %s\n",
					       role_name[role], n, res.steps,
					       strerror(-res.err));
					failed++;
				}
				break;
			}
		}
		printf("# %s: %d allocations failed one at a time\n",
		       role_name[role], n - 1);
	}
	printf("%s - %d runs, %d failed\n", failed ? "not ok" : "ok", runs,
	       failed);
	return failed ? 1 : 0;
}
