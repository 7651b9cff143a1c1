/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * test-preload.c - drives libmuser-preload.so the way QEMU 7.2's vfio-pci
 * does (readlink, open64 of /dev/vfio/N and /dev/vfio/vfio, the VFIO
 * ioctls, pread64/__pread64_chk/pwrite64 at index<<40, mmap64), against
 * the muser-dma-test sample server. The shim is dlopen()ed, not
 * preloaded, so this program's own calls stay untouched and the test
 * also runs under sanitizers; we call the shim's entry points directly.
 *
 *   test-preload SHIM.so DMA-TEST-SERVER MUSER-VFIO-DIR-SCRIPT
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/vfio.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "dma-test.h"
#include "testutil.h"

static struct {
	int (*open64)(const char *, int, ...);
	int (*close)(int);
	int (*ioctl)(int, unsigned long, ...);
	ssize_t (*pread64)(int, void *, size_t, off_t);
	ssize_t (*pread64_chk)(int, void *, size_t, off_t, size_t);
	ssize_t (*pwrite64)(int, const void *, size_t, off_t);
	void *(*mmap64)(void *, size_t, int, int, int, off_t);
	ssize_t (*readlink)(const char *, char *, size_t);
} S;

static const char *server_bin, *helper;
static char tmpdir[256]; /* short: paths built from it fit */
static int failures;

#define CHECK(cond, ...)                                                       \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__,          \
				__LINE__, #cond);                              \
			fprintf(stderr, __VA_ARGS__);                          \
			fprintf(stderr, "\n");                                 \
			failures++;                                            \
			return -1;                                             \
		}                                                              \
	} while (0)

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Start muser-dma-test on tmpdir/NAME.sock; returns its pid. */
static pid_t start_server(const char *name, char *sock, size_t cap)
{
	char arg[PATH_MAX + 32];
	struct stat st;
	pid_t pid;

	snprintf(sock, cap, "%s/%s.sock", tmpdir, name);
	snprintf(arg, sizeof(arg), "--socket-path=%s", sock);
	pid = fork();
	if (pid == 0) {
		execl(server_bin, server_bin, arg, "--quiet", (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 500; i++) {
		if (stat(sock, &st) == 0 && S_ISSOCK(st.st_mode))
			return pid;
		usleep(10000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	return -1;
}

static void stop_server(pid_t pid)
{
	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);
}

/* Run the helper: DIR for SOCK; returns the group number. */
static int make_dir(const char *dir, const char *sock)
{
	char cmd[3 * PATH_MAX];
	FILE *p;
	int n = -1;

	snprintf(cmd, sizeof(cmd), "'%s' -q '%s' '%s'", helper, dir, sock);
	p = popen(cmd, "r");
	if (!p)
		return -1;
	if (fscanf(p, "%d", &n) != 1)
		n = -1;
	pclose(p);
	return n;
}

/* ---- a VFIO user, QEMU style -----------------------------------------------
 */

struct vfio {
	int group, container, device;
	int num;
};

static int vfio_open(struct vfio *v, const char *dir, const char *name)
{
	struct vfio_group_status st = {.argsz = sizeof(st)};
	char path[PATH_MAX], link[PATH_MAX];
	ssize_t n;

	memset(v, 0, sizeof(*v));
	v->group = v->container = v->device = -1;
	/* QEMU: readlink SYSFSDEV/iommu_group, the basename is N. */
	snprintf(path, sizeof(path), "%s/iommu_group", dir);
	n = S.readlink(path, link, sizeof(link) - 1);
	CHECK(n > 0, "readlink %s", path);
	link[n] = '\0';
	v->num = atoi(strrchr(link, '/') + 1);
	snprintf(path, sizeof(path), "/dev/vfio/%d", v->num);
	v->group = S.open64(path, O_RDWR | O_CLOEXEC);
	CHECK(v->group >= 0, "open %s: %s", path, strerror(errno));
	CHECK(S.ioctl(v->group, VFIO_GROUP_GET_STATUS, &st) == 0, "status");
	CHECK(st.flags == VFIO_GROUP_FLAGS_VIABLE, "flags %x", st.flags);
	v->container = S.open64("/dev/vfio/vfio", O_RDWR | O_CLOEXEC);
	CHECK(v->container >= 0, "open container: %s", strerror(errno));
	CHECK(S.ioctl(v->container, VFIO_GET_API_VERSION) == VFIO_API_VERSION,
	      "api version");
	CHECK(S.ioctl(v->container, VFIO_CHECK_EXTENSION, VFIO_TYPE1v2_IOMMU) ==
		      1,
	      "type1v2");
	CHECK(S.ioctl(v->container, VFIO_CHECK_EXTENSION,
		      VFIO_SPAPR_TCE_IOMMU) == 0,
	      "no spapr");
	CHECK(S.ioctl(v->container, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU) < 0 &&
		      errno == EINVAL,
	      "SET_IOMMU before a group joined must fail");
	CHECK(S.ioctl(v->group, VFIO_GROUP_SET_CONTAINER, &v->container) == 0,
	      "set container: %s", strerror(errno));
	CHECK(S.ioctl(v->group, VFIO_GROUP_GET_STATUS, &st) == 0 &&
		      (st.flags & VFIO_GROUP_FLAGS_CONTAINER_SET),
	      "container set");
	CHECK(S.ioctl(v->container, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU) == 0,
	      "set iommu: %s", strerror(errno));
	(void)name;
	return 0;
}

static int vfio_get_device(struct vfio *v, const char *name)
{
	struct vfio_device_info di = {.argsz = sizeof(di)};

	v->device = S.ioctl(v->group, VFIO_GROUP_GET_DEVICE_FD, name);
	CHECK(v->device >= 0, "get device fd %s: %s", name, strerror(errno));
	CHECK(S.ioctl(v->device, VFIO_DEVICE_GET_INFO, &di) == 0, "info");
	CHECK(di.flags & VFIO_DEVICE_FLAGS_PCI, "PCI flag");
	CHECK(di.flags & VFIO_DEVICE_FLAGS_RESET, "RESET flag");
	CHECK(di.num_regions >= 9, "regions %u", di.num_regions);
	CHECK(di.num_irqs >= 5, "irqs %u", di.num_irqs);
	return 0;
}

static void vfio_close(struct vfio *v)
{
	if (v->device >= 0)
		S.close(v->device);
	if (v->group >= 0) {
		S.ioctl(v->group, VFIO_GROUP_UNSET_CONTAINER);
		S.close(v->group);
	}
	if (v->container >= 0)
		S.close(v->container);
}

static off_t reg_off(unsigned index, uint64_t off)
{
	return (off_t)(((uint64_t)index << 40) + off);
}

static int rd32(struct vfio *v, unsigned bar, uint64_t off, uint32_t *val)
{
	ssize_t n = S.pread64_chk(v->device, val, 4, reg_off(bar, off), 4);

	CHECK(n == 4, "pread bar%u+0x%llx: %zd %s", bar,
	      (unsigned long long)off, n, strerror(errno));
	return 0;
}

static int wr32(struct vfio *v, unsigned bar, uint64_t off, uint32_t val)
{
	ssize_t n = S.pwrite64(v->device, &val, 4, reg_off(bar, off));

	CHECK(n == 4, "pwrite bar%u+0x%llx: %zd %s", bar,
	      (unsigned long long)off, n, strerror(errno));
	return 0;
}

static int map_dma(struct vfio *v, void *p, uint64_t iova, uint64_t size)
{
	struct vfio_iommu_type1_dma_map m = {
		.argsz = sizeof(m),
		.flags = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE,
		.vaddr = (uintptr_t)p,
		.iova = iova,
		.size = size,
	};

	CHECK(S.ioctl(v->container, VFIO_IOMMU_MAP_DMA, &m) == 0,
	      "map iova 0x%llx: %s", (unsigned long long)iova, strerror(errno));
	return 0;
}

/* Run one fill of len bytes at iova and wait until the device is done. */
static int dma_fill(struct vfio *v, uint64_t iova, uint32_t len, uint32_t pat,
		    uint32_t *status)
{
	double t0 = now();

	if (wr32(v, 0, DMAT_REG_DST_LO, (uint32_t)iova) ||
	    wr32(v, 0, DMAT_REG_DST_HI, (uint32_t)(iova >> 32)) ||
	    wr32(v, 0, DMAT_REG_LEN, len) ||
	    wr32(v, 0, DMAT_REG_OP, DMAT_OP_FILL) ||
	    wr32(v, 0, DMAT_REG_FILL, pat) ||
	    wr32(v, 0, DMAT_REG_CMD, DMAT_CMD_START))
		return -1;
	do {
		if (rd32(v, 0, DMAT_REG_STATUS, status))
			return -1;
		if (!(*status & DMAT_STATUS_BUSY))
			return 0;
		usleep(1000);
	} while (now() - t0 < 5);
	CHECK(0, "DMA still busy after 5 s");
}

static int wait_fd(int fd, int ms)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	uint64_t v;

	if (poll(&p, 1, ms) != 1)
		return -1;
	return read(fd, &v, sizeof(v)) == sizeof(v) ? 0 : -1;
}

static int set_irq_fds(struct vfio *v, unsigned index, unsigned count,
		       const int32_t *fds)
{
	char buf[sizeof(struct vfio_irq_set) + 16 * sizeof(int32_t)];
	struct vfio_irq_set *s = (struct vfio_irq_set *)buf;

	s->argsz = (uint32_t)(sizeof(*s) + count * sizeof(int32_t));
	s->flags = VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER;
	s->index = index;
	s->start = 0;
	s->count = count;
	memcpy(s->data, fds, count * sizeof(int32_t));
	return S.ioctl(v->device, VFIO_DEVICE_SET_IRQS, s);
}

static int irq_none(struct vfio *v, unsigned index, uint32_t action,
		    uint32_t count)
{
	struct vfio_irq_set s = {
		.argsz = sizeof(s),
		.flags = VFIO_IRQ_SET_DATA_NONE | action,
		.index = index,
		.count = count,
	};

	return S.ioctl(v->device, VFIO_DEVICE_SET_IRQS, &s);
}

/* ---- the tests -------------------------------------------------------------
 */

static int test_passthrough(void)
{
	int fd = S.open64("/dev/null", O_RDONLY), p[2], avail = -1;
	char c;

	CHECK(fd >= 0, "open /dev/null");
	CHECK(S.pread64(fd, &c, 1, 0) == 0, "pread /dev/null");
	CHECK(S.close(fd) == 0, "close");
	CHECK(pipe(p) == 0, "pipe");
	CHECK(write(p[1], "x", 1) == 1, "write");
	CHECK(S.ioctl(p[0], FIONREAD, &avail) == 0 && avail == 1,
	      "FIONREAD through the shim");
	S.close(p[0]);
	S.close(p[1]);
	CHECK(S.open64("/dev/vfio/123456", O_RDWR) < 0 && errno == ENOENT,
	      "an unknown group is not ours");
	return 0;
}

static int test_info(struct vfio *v)
{
	struct vfio_region_info *ri;
	struct vfio_irq_info ii = {.argsz = sizeof(ii)};
	struct vfio_info_cap_header *h;
	struct vfio_region_info_cap_sparse_mmap *sp;
	uint8_t buf[512];
	uint32_t val;
	uint16_t id[2];

	ri = (struct vfio_region_info *)buf;
	memset(buf, 0, sizeof(buf));
	ri->argsz = sizeof(*ri);
	ri->index = VFIO_PCI_CONFIG_REGION_INDEX;
	CHECK(S.ioctl(v->device, VFIO_DEVICE_GET_REGION_INFO, ri) == 0,
	      "config info");
	CHECK(ri->size == 4096, "config size %llu",
	      (unsigned long long)ri->size);
	CHECK(ri->offset == (7ull << 40), "config offset");
	CHECK(S.pread64_chk(v->device, id, 4, (off_t)ri->offset, 4) == 4,
	      "config read");
	CHECK(id[0] == DMAT_VENDOR && id[1] == DMAT_DEVICE, "ids %04x:%04x",
	      id[0], id[1]);

	/* BAR4 has a sparse mmap cap: first ask with too little room, as
	 * QEMU does, then again with what argsz said. */
	memset(buf, 0, sizeof(buf));
	ri->argsz = sizeof(*ri);
	ri->index = 4;
	CHECK(S.ioctl(v->device, VFIO_DEVICE_GET_REGION_INFO, ri) == 0,
	      "bar4 info");
	CHECK(ri->flags & VFIO_REGION_INFO_FLAG_MMAP, "bar4 mappable");
	CHECK(ri->flags & VFIO_REGION_INFO_FLAG_CAPS, "bar4 caps");
	CHECK(ri->argsz > sizeof(*ri) && ri->cap_offset == 0, "argsz %u",
	      ri->argsz);
	ri->argsz = sizeof(buf);
	CHECK(S.ioctl(v->device, VFIO_DEVICE_GET_REGION_INFO, ri) == 0,
	      "bar4 info 2");
	CHECK(ri->cap_offset == sizeof(*ri), "cap_offset %u", ri->cap_offset);
	h = (struct vfio_info_cap_header *)(buf + ri->cap_offset);
	CHECK(h->id == VFIO_REGION_INFO_CAP_SPARSE_MMAP, "cap id %u", h->id);
	sp = (struct vfio_region_info_cap_sparse_mmap *)h;
	CHECK(sp->nr_areas == 1 && sp->areas[0].offset == DMAT_BAR4_MMAP_OFF &&
		      sp->areas[0].size == DMAT_BAR4_MMAP_SIZE,
	      "sparse area");

	/* mmap the sparse area as QEMU does and see it from both sides. */
	uint8_t *m = S.mmap64(NULL, DMAT_BAR4_MMAP_SIZE, PROT_READ | PROT_WRITE,
			      MAP_SHARED, v->device,
			      (off_t)ri->offset + DMAT_BAR4_MMAP_OFF);
	CHECK(m != MAP_FAILED, "mmap bar4: %s", strerror(errno));
	memcpy(m + 0x10, "\x11\x22\x33\x44", 4);
	CHECK(rd32(v, 4, DMAT_BAR4_MMAP_OFF + 0x10, &val) == 0 &&
		      val == 0x44332211,
	      "bar4 via message: 0x%x", val);
	CHECK(wr32(v, 4, DMAT_BAR4_MMAP_OFF + 0x20, 0xcafef00d) == 0, "w");
	CHECK(*(volatile uint32_t *)(m + 0x20) == 0xcafef00d, "bar4 via mmap");
	munmap(m, DMAT_BAR4_MMAP_SIZE);
	CHECK(S.mmap64(NULL, 4096, PROT_READ, MAP_SHARED, v->device,
		       (off_t)ri->offset) == MAP_FAILED,
	      "page 0 of bar4 is not mappable");

	/* Indexes QEMU asks for but the device may not have. */
	memset(buf, 0, sizeof(buf));
	ri->argsz = sizeof(*ri);
	ri->index = VFIO_PCI_VGA_REGION_INDEX;
	CHECK(S.ioctl(v->device, VFIO_DEVICE_GET_REGION_INFO, ri) == 0 &&
		      ri->size == 0,
	      "vga region");
	ii.index = VFIO_PCI_MSIX_IRQ_INDEX;
	CHECK(S.ioctl(v->device, VFIO_DEVICE_GET_IRQ_INFO, &ii) == 0 &&
		      ii.count == DMAT_MSIX_VECTORS &&
		      (ii.flags & VFIO_IRQ_INFO_EVENTFD),
	      "msix info: count %u flags 0x%x", ii.count, ii.flags);
	ii.index = VFIO_PCI_ERR_IRQ_INDEX;
	CHECK(S.ioctl(v->device, VFIO_DEVICE_GET_IRQ_INFO, &ii) == 0, "err");

	/* Registers. */
	CHECK(rd32(v, 0, DMAT_REG_MAGIC, &val) == 0 && val == DMAT_MAGIC,
	      "magic 0x%x", val);
	CHECK(wr32(v, 0, DMAT_REG_SCRATCH, 0x12345678) == 0, "scratch");
	CHECK(rd32(v, 0, DMAT_REG_SCRATCH, &val) == 0 && val == 0x12345678,
	      "scratch 0x%x", val);
	CHECK(S.pread64(v->device, &val, 2, reg_off(0, 1)) < 0,
	      "a misaligned access fails like the server says");
	return 0;
}

static int test_iommu_info(struct vfio *v)
{
	uint8_t buf[256];
	struct vfio_iommu_type1_info *info = (void *)buf;
	struct vfio_info_cap_header *h;
	bool range = false;

	memset(buf, 0, sizeof(buf));
	info->argsz = sizeof(*info);
	CHECK(S.ioctl(v->container, VFIO_IOMMU_GET_INFO, info) == 0, "info");
	CHECK(info->flags & VFIO_IOMMU_INFO_PGSIZES, "pgsizes");
	CHECK(info->iova_pgsizes & 4096, "4k pages");
	CHECK(info->argsz > sizeof(*info), "caps need more room");
	info->argsz = sizeof(buf);
	CHECK(S.ioctl(v->container, VFIO_IOMMU_GET_INFO, info) == 0, "info2");
	CHECK(info->cap_offset >= sizeof(*info), "cap offset");
	for (uint32_t off = info->cap_offset; off; off = h->next) {
		CHECK(off + sizeof(*h) <= sizeof(buf), "cap in bounds");
		h = (void *)(buf + off);
		if (h->id == VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE) {
			struct vfio_iommu_type1_info_cap_iova_range *r =
				(void *)h;

			range = r->nr_iovas == 1 &&
				r->iova_ranges[0].start == 0 &&
				r->iova_ranges[0].end == ~0ull;
		}
	}
	CHECK(range, "iova range cap");
	return 0;
}

static int test_dma(struct vfio *v, uint8_t *shared, uint8_t *private)
{
	uint32_t status;

	/* fd-backed map: the server mmaps our memfd. */
	CHECK(dma_fill(v, 0x100000 + 0x100, 64, 0xa5a5a5a5, &status) == 0,
	      "fill");
	CHECK(status & DMAT_STATUS_DONE, "status 0x%x", status);
	CHECK(shared[0x100] == 0xa5 && shared[0x13f] == 0xa5 &&
		      shared[0x140] == 0,
	      "shared memory filled");
	/* fd-less map: DMA_WRITE messages, served by the shim. */
	CHECK(dma_fill(v, 0x200000 + 0x10, 16, 0x5a5a5a5a, &status) == 0,
	      "fill 2");
	CHECK(status & DMAT_STATUS_DONE, "status 0x%x", status);
	CHECK(private[0x10] == 0x5a && private[0x1f] == 0x5a &&
		      private[0x20] == 0,
	      "private memory filled");
	/* An unmapped address is a DMA error (code 4). */
	CHECK(dma_fill(v, 0x900000, 16, 1, &status) == 0, "fill 3");
	CHECK((status & DMAT_STATUS_ERROR) &&
		      ((status & DMAT_STATUS_CODE_MASK) >>
		       DMAT_STATUS_CODE_SHIFT) == DMAT_ERR_DMA_WRITE,
	      "status 0x%x", status);
	CHECK(wr32(v, 0, DMAT_REG_STATUS, DMAT_STATUS_ERROR) == 0, "w1c");
	return 0;
}

static int test_irqs(struct vfio *v)
{
	int32_t fds[4];
	uint32_t status;
	int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);

	CHECK(efd >= 0, "eventfd");
	/* INTx: level, auto-masked, re-asserted on UNMASK while high. */
	fds[0] = efd;
	CHECK(set_irq_fds(v, VFIO_PCI_INTX_IRQ_INDEX, 1, fds) == 0,
	      "intx eventfd: %s", strerror(errno));
	CHECK(wr32(v, 0, DMAT_REG_IRQ_CTRL, DMAT_IRQ_EN) == 0, "irq ctrl");
	CHECK(dma_fill(v, 0x100000, 16, 7, &status) == 0, "fill");
	CHECK(wait_fd(efd, 2000) == 0, "INTx fired");
	CHECK(irq_none(v, VFIO_PCI_INTX_IRQ_INDEX, VFIO_IRQ_SET_ACTION_UNMASK,
		       1) == 0,
	      "unmask");
	CHECK(wait_fd(efd, 2000) == 0, "INTx fires again: line still high");
	CHECK(wr32(v, 0, DMAT_REG_STATUS, DMAT_STATUS_DONE) == 0, "w1c");
	CHECK(irq_none(v, VFIO_PCI_INTX_IRQ_INDEX, VFIO_IRQ_SET_ACTION_UNMASK,
		       1) == 0,
	      "unmask");
	CHECK(wait_fd(efd, 100) < 0, "line low: no interrupt");
	CHECK(irq_none(v, VFIO_PCI_INTX_IRQ_INDEX, VFIO_IRQ_SET_ACTION_TRIGGER,
		       0) == 0,
	      "intx off");

	/* MSI-X, vector 2, the others unassigned (-1) as QEMU does. */
	fds[0] = fds[1] = fds[3] = -1;
	fds[2] = efd;
	CHECK(set_irq_fds(v, VFIO_PCI_MSIX_IRQ_INDEX, 4, fds) == 0, "msix: %s",
	      strerror(errno));
	CHECK(wr32(v, 0, DMAT_REG_IRQ_CTRL,
		   DMAT_IRQ_EN | 2u << DMAT_IRQ_VECTOR_SHIFT) == 0,
	      "irq ctrl");
	CHECK(dma_fill(v, 0x100000, 16, 7, &status) == 0, "fill");
	CHECK(wait_fd(efd, 2000) == 0, "MSI-X vector 2 fired");
	/* A doorbell, then only the interrupt: no request follows that
	 * could carry a batch of posted writes (the preload-posted run). */
	CHECK(wr32(v, 0, DMAT_REG_STATUS, DMAT_STATUS_DONE) == 0, "w1c");
	CHECK(wr32(v, 0, DMAT_REG_CMD, DMAT_CMD_START) == 0, "start");
	CHECK(wait_fd(efd, 2000) == 0,
	      "MSI-X fired after a START with no request after it");
	CHECK(irq_none(v, VFIO_PCI_MSIX_IRQ_INDEX, VFIO_IRQ_SET_ACTION_TRIGGER,
		       0) == 0,
	      "msix off");
	CHECK(wr32(v, 0, DMAT_REG_IRQ_CTRL, 0) == 0, "irq ctrl");
	close(efd);
	return 0;
}

static int test_device(void)
{
	char sock[PATH_MAX], dir[PATH_MAX];
	struct vfio v;
	uint8_t *shared, *private;
	int fds0 = count_open_fds(), memfd, num, ret = -1;
	struct vfio_iommu_type1_dma_unmap um = {.argsz = sizeof(um)};
	pid_t pid;

	pid = start_server("dev", sock, sizeof(sock));
	CHECK(pid > 0, "server did not start");
	snprintf(dir, sizeof(dir), "%s/dmadev", tmpdir);
	num = make_dir(dir, sock);
	CHECK(num >= 9000, "helper gave %d", num);

	memfd = memfd_create("guest-ram", MFD_CLOEXEC);
	CHECK(memfd >= 0 && ftruncate(memfd, 1 << 20) == 0, "memfd");
	shared = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_SHARED, memfd,
		      0);
	private = mmap(NULL, 1 << 16, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(shared != MAP_FAILED && private != MAP_FAILED, "mmap");

	if (vfio_open(&v, dir, "dmadev"))
		goto out;
	/* Guest RAM is mapped before the device fd exists. */
	if (map_dma(&v, shared, 0x100000, 1 << 20) ||
	    map_dma(&v, private, 0x200000, 1 << 16))
		goto out;
	struct vfio_iommu_type1_dma_map over = {
		.argsz = sizeof(over),
		.flags = VFIO_DMA_MAP_FLAG_READ,
		.vaddr = (uintptr_t)shared,
		.iova = 0x100000 + 4096,
		.size = 4096,
	};
	CHECK(S.ioctl(v.container, VFIO_IOMMU_MAP_DMA, &over) < 0 &&
		      errno == EEXIST,
	      "an overlapping map: %s", strerror(errno));
	if (test_iommu_info(&v))
		goto out;
	CHECK(S.ioctl(v.group, VFIO_GROUP_GET_DEVICE_FD, "wrong") < 0 &&
		      errno == ENODEV,
	      "a wrong device name is refused");
	if (vfio_get_device(&v, "dmadev") || test_info(&v) ||
	    test_dma(&v, shared, private) || test_irqs(&v))
		goto out;
	CHECK(S.ioctl(v.device, VFIO_DEVICE_RESET) == 0, "reset");

	/* Unmap: a range may not split a mapping; then a clean unmap. */
	um.iova = 0x100000;
	um.size = 4096;
	CHECK(S.ioctl(v.container, VFIO_IOMMU_UNMAP_DMA, &um) < 0 &&
		      errno == EINVAL,
	      "split");
	um.size = 0x200000;
	CHECK(S.ioctl(v.container, VFIO_IOMMU_UNMAP_DMA, &um) == 0 &&
		      um.size == (1 << 20) + (1 << 16),
	      "unmap size 0x%llx", (unsigned long long)um.size);
	uint32_t status;
	CHECK(dma_fill(&v, 0x100000, 16, 1, &status) == 0 &&
		      (status & DMAT_STATUS_ERROR),
	      "DMA after unmap fails");
	ret = 0;
out:
	vfio_close(&v);
	munmap(shared, 1 << 20);
	munmap(private, 1 << 16);
	close(memfd);
	stop_server(pid);
	/* +1: the shim's service thread keeps its wakeup eventfd. */
	CHECK(count_open_fds() <= fds0 + 1, "fd leak: %d -> %d", fds0,
	      count_open_fds());
	return ret;
}

/* Two devices in one container, the second joining after the maps. */
static int test_two_devices(void)
{
	char sock1[PATH_MAX], sock2[PATH_MAX], d1[PATH_MAX], d2[PATH_MAX];
	char var[64];
	struct vfio a, b;
	struct vfio_group_status st = {.argsz = sizeof(st)};
	uint8_t *ram;
	uint32_t status;
	int memfd, ret = -1;
	pid_t p1, p2;

	p1 = start_server("two1", sock1, sizeof(sock1));
	p2 = start_server("two2", sock2, sizeof(sock2));
	CHECK(p1 > 0 && p2 > 0, "servers");
	snprintf(d1, sizeof(d1), "%s/two1", tmpdir);
	CHECK(make_dir(d1, sock1) > 0, "dir 1");
	/* The second one by environment variable only: no directory. */
	snprintf(var, sizeof(var), "MUSER_VFIO_GROUP_%d", 8999);
	setenv(var, sock2, 1);
	(void)d2;

	memfd = memfd_create("ram", MFD_CLOEXEC);
	CHECK(memfd >= 0 && ftruncate(memfd, 1 << 20) == 0, "memfd");
	ram = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
	CHECK(ram != MAP_FAILED, "mmap");
	if (vfio_open(&a, d1, "two1") || map_dma(&a, ram, 0, 1 << 20) ||
	    vfio_get_device(&a, "two1"))
		goto out;
	memset(&b, 0, sizeof(b));
	b.container = b.device = -1;
	b.group = S.open64("/dev/vfio/8999", O_RDWR);
	CHECK(b.group >= 0, "open by env: %s", strerror(errno));
	/* QEMU tries the existing container first. */
	CHECK(S.ioctl(b.group, VFIO_GROUP_SET_CONTAINER, &a.container) == 0,
	      "join: %s", strerror(errno));
	CHECK(S.ioctl(b.group, VFIO_GROUP_GET_STATUS, &st) == 0 &&
		      (st.flags & VFIO_GROUP_FLAGS_CONTAINER_SET),
	      "joined");
	if (vfio_get_device(&b, "any-name-goes"))
		goto out;
	CHECK(dma_fill(&a, 0x1000, 8, 0x01010101, &status) == 0 &&
		      (status & DMAT_STATUS_DONE),
	      "dev a dma");
	CHECK(dma_fill(&b, 0x2000, 8, 0x02020202, &status) == 0 &&
		      (status & DMAT_STATUS_DONE),
	      "dev b dma (maps replayed on join)");
	CHECK(ram[0x1000] == 1 && ram[0x2000] == 2, "both wrote");
	ret = 0;
out:
	if (b.device >= 0)
		S.close(b.device);
	if (b.group >= 0)
		S.close(b.group); /* without UNSET: close detaches */
	vfio_close(&a);
	munmap(ram, 1 << 20);
	close(memfd);
	unsetenv(var);
	stop_server(p1);
	stop_server(p2);
	return ret;
}

static int test_missing_server(void)
{
	char dir[PATH_MAX], sock[PATH_MAX];
	int num, fd;

	snprintf(dir, sizeof(dir), "%s/missing", tmpdir);
	snprintf(sock, sizeof(sock), "%s/nobody.sock", tmpdir);
	num = make_dir(dir, sock);
	CHECK(num > 0, "dir");
	char path[PATH_MAX + 16], link[PATH_MAX];

	snprintf(path, sizeof(path), "%s/iommu_group", dir);
	CHECK(S.readlink(path, link, sizeof(link)) > 0, "readlink");
	snprintf(path, sizeof(path), "/dev/vfio/%d", num);
	fd = S.open64(path, O_RDWR);
	CHECK(fd < 0 && (errno == ENOENT || errno == ECONNREFUSED),
	      "open without server: %d %s", fd, strerror(errno));
	return 0;
}

static int test_server_death(void)
{
	char sock[PATH_MAX], dir[PATH_MAX];
	struct vfio v;
	uint32_t val;
	int32_t fd1;
	double t0;
	int ret = -1;
	pid_t pid;

	pid = start_server("death", sock, sizeof(sock));
	CHECK(pid > 0, "server");
	snprintf(dir, sizeof(dir), "%s/death", tmpdir);
	CHECK(make_dir(dir, sock) > 0, "dir");
	if (vfio_open(&v, dir, "death") || vfio_get_device(&v, "death"))
		goto out;
	CHECK(rd32(&v, 0, DMAT_REG_MAGIC, &val) == 0 && val == DMAT_MAGIC,
	      "alive");
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	pid = -1;
	t0 = now();
	CHECK(rd32(&v, 0, DMAT_REG_MAGIC, &val) == 0 && val == 0xffffffff,
	      "dead device reads all ones: 0x%x", val);
	CHECK(wr32(&v, 0, DMAT_REG_SCRATCH, 1) == 0, "writes dropped");
	uint8_t cfg[64];
	CHECK(S.pread64(v.device, cfg, sizeof(cfg), reg_off(7, 0)) == 64 &&
		      cfg[0] == 0xff && cfg[0x3d] == 0,
	      "config: all ones but a sane interrupt pin (QEMU asserts)");
	fd1 = eventfd(0, EFD_CLOEXEC);
	CHECK(set_irq_fds(&v, VFIO_PCI_MSI_IRQ_INDEX, 1, &fd1) == 0,
	      "SET_IRQS on a dead device");
	close(fd1);
	CHECK(S.ioctl(v.device, VFIO_DEVICE_RESET) == 0, "reset");
	CHECK(now() - t0 < 3, "no hang: %.1f s", now() - t0);
	ret = 0;
out:
	vfio_close(&v);
	if (pid > 0)
		stop_server(pid);
	return ret;
}

#define SYM(f, name)                                                           \
	do {                                                                   \
		*(void **)&S.f = dlsym(h, name);                               \
		if (!S.f) {                                                    \
			fprintf(stderr, "%s: no %s\n", argv[1], name);         \
			return 1;                                              \
		}                                                              \
	} while (0)

int main(int argc, char **argv)
{
	char reg[PATH_MAX + 16], cmd[PATH_MAX + 16];
	void *h;

	if (argc != 4) {
		fprintf(stderr, "usage: %s SHIM.so DMA-TEST-SERVER HELPER\n",
			argv[0]);
		return 2;
	}
	server_bin = argv[2];
	helper = argv[3];
	signal(SIGPIPE, SIG_IGN); /* as QEMU does */
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/muser-preload-test.XXXXXX");
	if (!mkdtemp(tmpdir))
		return 1;
	snprintf(reg, sizeof(reg), "%s/registry", tmpdir);
	setenv("MUSER_VFIO_REGISTRY", reg, 1);
	setenv("MUSER_TIMEOUT_MS", "1000", 1);
	h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		fprintf(stderr, "dlopen: %s\n", dlerror());
		return 1;
	}
	SYM(open64, "open64");
	SYM(close, "close");
	SYM(ioctl, "ioctl");
	SYM(pread64, "pread64");
	SYM(pread64_chk, "__pread64_chk");
	SYM(pwrite64, "pwrite64");
	SYM(mmap64, "mmap64");
	SYM(readlink, "readlink");
	if (dlsym(h, "mu_client_connect")) {
		fprintf(stderr, "FAIL: the shim exports libmuser-client\n");
		failures++;
	}

	struct {
		const char *name;
		int (*fn)(void);
	} tests[] = {
		{"passthrough", test_passthrough},
		{"device", test_device},
		{"two-devices", test_two_devices},
		{"missing-server", test_missing_server},
		{"server-death", test_server_death},
	};
	int fds = 0;

	for (size_t i = 0; i < sizeof(tests) / sizeof(tests[0]); i++) {
		int before = failures;

		tests[i].fn();
		printf("%s %s\n", failures == before ? "ok" : "not ok",
		       tests[i].name);
		if (i == 1)
			fds = count_open_fds();
	}
	if (count_open_fds() != fds) {
		printf("not ok fd-leak: %d -> %d\n", fds, count_open_fds());
		failures++;
	}
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		failures++;
	return failures ? 1 : 0;
}
