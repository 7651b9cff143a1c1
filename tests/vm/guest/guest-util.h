/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * guest-util.h - helpers shared by the static test programs that run inside
 * the test guest (the .c files next to it). Header-only on purpose: build-guest.sh
 * compiles each program from one source file with `gcc -static`.
 *
 * Everything goes through sysfs and procfs, as a user-space driver would:
 *   - /sys/bus/pci/devices/BDF/ vendor, device, class, irq, resource, config
 *   - resourceN: mmap for memory BARs, pread/pwrite for I/O BARs (the
 *     kernel's pci_read_resource_io takes 1-, 2- and 4-byte accesses)
 *   - /proc/self/pagemap for guest-physical addresses of DMA buffers
 *   - /dev/kmsg to observe MSI/MSI-X deliveries (see msi_watch_*)
 *
 * Output convention: "  ok   what" / "  FAIL what" lines; the program ends
 * with "<name>: PASS" or "<name>: FAIL (N checks failed)" and exit status.
 * A check that follows a read of all ones where a live device can't give
 * one fails, and its line ends with " - device reads all ones (dead?)"
 * (see live()).
 */
#ifndef GUEST_UTIL_H
#define GUEST_UTIL_H

#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wformat-truncation"

#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define SYS_PCI "/sys/bus/pci/devices"

#define IORESOURCE_IO 0x00000100UL
#define IORESOURCE_MEM 0x00000200UL
#define IORESOURCE_PREFETCH 0x00002000UL
#define IORESOURCE_MEM_64 0x00100000UL

static const char *g_prog = "guest";
static int g_failures;
static int g_checks;

/*
 * All ones. A device that is gone (server killed or hung, QEMU's region
 * access failed) reads all ones: 0xff, 0xffff or 0xffffffff for a 1-, 2-
 * or 4-byte read. Reads that a live device can't answer that way go
 * through live() (or cfg_read(), which does it), which counts them; the
 * next check() then fails, whatever its own condition, and says why.
 * Reads where all ones is legitimate (a floating bus, data, the "dead"
 * test itself) use the _raw variants and compare against exact values.
 */
#define ALL_ONES_NOTE "device reads all ones (dead?)"

static unsigned g_all_ones; /* all-ones reads since the last check() */

static uint32_t ones_mask(unsigned size)
{
    return size >= 4 ? 0xffffffffu : (1u << (8 * size)) - 1;
}

static bool is_all_ones(uint32_t v, unsigned size)
{
    return (v & ones_mask(size)) == ones_mask(size);
}

/* v came from a read that can't be all ones on a live device. */
static uint32_t live(uint32_t v, unsigned size)
{
    if (is_all_ones(v, size))
        g_all_ones++;
    return v;
}

/* v was read where want is expected: all ones instead of a want that
 * isn't all ones is a dead device rather than a wrong value. */
static uint32_t live_want(uint32_t v, uint32_t want, unsigned size)
{
    if (is_all_ones(v, size) && !is_all_ones(want, size))
        g_all_ones++;
    return v;
}

static void __attribute__((format(printf, 2, 3)))
check(bool ok, const char *fmt, ...)
{
    bool dead = g_all_ones != 0;
    va_list ap;

    g_all_ones = 0;
    if (dead)
        ok = false;
    g_checks++;
    if (!ok)
        g_failures++;
    printf("  %s ", ok ? "ok  " : "FAIL");
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    if (dead)
        printf(" - " ALL_ONES_NOTE);
    putchar('\n');
    fflush(stdout);
}

static void __attribute__((format(printf, 1, 2))) say(const char *fmt, ...)
{
    va_list ap;

    printf("%s: ", g_prog);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    fflush(stdout);
}

static void __attribute__((noreturn, format(printf, 1, 2)))
die(const char *fmt, ...)
{
    va_list ap;

    printf("%s: FATAL: ", g_prog);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n%s: FAIL\n", g_prog);
    fflush(stdout);
    exit(1);
}

static int finish(void)
{
    if (g_all_ones) /* reads after the last check */
        check(false, "device reads after the last check");
    if (g_failures) {
        printf("%s: FAIL (%d of %d checks failed)\n", g_prog, g_failures,
               g_checks);
        fflush(stdout);
        return 1;
    }
    printf("%s: PASS (%d checks)\n", g_prog, g_checks);
    fflush(stdout);
    return 0;
}

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

    nanosleep(&ts, NULL);
}

/* ---- sysfs -------------------------------------------------------------- */

static int sysfs_read_str(const char *path, char *buf, size_t len)
{
    int fd = open(path, O_RDONLY);
    ssize_t n;

    if (fd < 0)
        return -errno;
    n = read(fd, buf, len - 1);
    close(fd);
    if (n < 0)
        return -errno;
    buf[n] = '\0';
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
        buf[--n] = '\0';
    return 0;
}

/* Look at /sys/block/nvme0n1/inflight up to looks times, until requests
 * are in flight; *rd and *wr are what it said last. True when some were. */
static inline bool nvme_wait_inflight(unsigned looks, unsigned long *rd,
                                      unsigned long *wr)
{
    char buf[64];

    *rd = *wr = 0;
    for (unsigned i = 0; i < looks && *rd + *wr == 0; i++) {
        if (sysfs_read_str("/sys/block/nvme0n1/inflight", buf, sizeof(buf)) ||
            sscanf(buf, "%lu %lu", rd, wr) != 2)
            *rd = *wr = 0;
        if (*rd + *wr == 0)
            sched_yield();
    }
    return *rd + *wr > 0;
}

static int sysfs_write_str(const char *path, const char *s)
{
    int fd = open(path, O_WRONLY);
    ssize_t n;

    if (fd < 0)
        return -errno;
    n = write(fd, s, strlen(s));
    close(fd);
    return n < 0 ? -errno : 0;
}

static unsigned long pci_attr(const char *bdf, const char *attr)
{
    char path[PATH_MAX], buf[64];

    snprintf(path, sizeof(path), SYS_PCI "/%s/%s", bdf, attr);
    if (sysfs_read_str(path, buf, sizeof(buf)) < 0)
        return ~0UL;
    return strtoul(buf, NULL, 0);
}

/* The nth (0-based) function with vendor:device, sorted by BDF. Returns 0
 * and fills bdf, or -ENOENT. */
static int pci_find(unsigned vendor, unsigned device, int nth, char *bdf,
                    size_t len)
{
    struct dirent **names;
    int n = scandir(SYS_PCI, &names, NULL, alphasort), rc = -ENOENT;

    for (int i = 0; i < n; i++) {
        const char *d = names[i]->d_name;

        if (rc != 0 && d[0] != '.' && pci_attr(d, "vendor") == vendor &&
            pci_attr(d, "device") == device && nth-- == 0) {
            snprintf(bdf, len, "%s", d);
            rc = 0;
        }
        free(names[i]);
    }
    if (n >= 0)
        free(names);
    return rc;
}

static int pci_count(unsigned vendor, unsigned device)
{
    char bdf[64];
    int n = 0;

    while (pci_find(vendor, device, n, bdf, sizeof(bdf)) == 0)
        n++;
    return n;
}

struct pci_res {
    uint64_t start, end, flags;
};

/* Parse the sysfs resource file: lines 0-5 BARs, 6 ROM. */
static int pci_resources(const char *bdf, struct pci_res res[7])
{
    char path[PATH_MAX], line[256];
    FILE *f;
    int i = 0;

    memset(res, 0, 7 * sizeof(res[0]));
    snprintf(path, sizeof(path), SYS_PCI "/%s/resource", bdf);
    f = fopen(path, "r");
    if (!f)
        return -errno;
    while (i < 7 && fgets(line, sizeof(line), f)) {
        unsigned long long s, e, fl;

        if (sscanf(line, "%llx %llx %llx", &s, &e, &fl) == 3)
            res[i] = (struct pci_res){s, e, fl};
        i++;
    }
    fclose(f);
    return 0;
}

static uint64_t res_size(const struct pci_res *r)
{
    return (r->start || r->end) ? r->end - r->start + 1 : 0;
}

static void pci_print(const char *bdf)
{
    struct pci_res res[7];
    char path[PATH_MAX], drv[PATH_MAX] = "none";
    ssize_t n;

    snprintf(path, sizeof(path), SYS_PCI "/%s/driver", bdf);
    n = readlink(path, drv, sizeof(drv) - 1);
    if (n > 0) {
        drv[n] = '\0';
        memmove(drv, strrchr(drv, '/') + 1, strlen(strrchr(drv, '/')));
    }
    say("device %s: %04lx:%04lx class %06lx subsystem %04lx:%04lx irq %lu "
        "driver %s",
        bdf, pci_attr(bdf, "vendor"), pci_attr(bdf, "device"),
        pci_attr(bdf, "class"), pci_attr(bdf, "subsystem_vendor"),
        pci_attr(bdf, "subsystem_device"), pci_attr(bdf, "irq"), drv);
    pci_resources(bdf, res);
    for (int i = 0; i < 7; i++) {
        const struct pci_res *r = &res[i];

        if (!res_size(r))
            continue;
        say("  %s%d %s%s 0x%" PRIx64 "-0x%" PRIx64 " size 0x%" PRIx64,
            i == 6 ? "ROM" : "BAR", i == 6 ? 0 : i,
            (r->flags & IORESOURCE_IO) ? "io"
            : (r->flags & IORESOURCE_MEM_64) ? "mem64"
                                             : "mem32",
            (r->flags & IORESOURCE_PREFETCH) ? " pref" : "", r->start,
            r->end, res_size(r));
    }
}

/* ---- config space through /sys/.../config -------------------------------- */

static int cfg_open(const char *bdf)
{
    char path[PATH_MAX];

    snprintf(path, sizeof(path), SYS_PCI "/%s/config", bdf);
    return open(path, O_RDWR);
}

/* Config space as read, all ones included (a failed read gives all ones:
 * what the kernel returns for a device that is gone). */
static uint32_t cfg_read_raw(int fd, unsigned off, unsigned size)
{
    uint32_t v = 0;

    if (pread(fd, &v, size, off) != (ssize_t)size)
        return ones_mask(size);
    return v;
}

/* Config space of a live device: no register these programs read (IDs,
 * command/status, capability pointers and headers, BARs, interrupt
 * line/pin) reads all ones on a live function, so all ones is noted for
 * the next check(). Use cfg_read_raw() where all ones is expected. */
static uint32_t cfg_read(int fd, unsigned off, unsigned size)
{
    return live(cfg_read_raw(fd, off, size), size);
}

static int cfg_write(int fd, unsigned off, unsigned size, uint32_t v)
{
    return pwrite(fd, &v, size, off) == (ssize_t)size ? 0 : -errno;
}

/* Offset of a standard capability, 0 if absent. */
static unsigned cfg_find_cap(int fd, unsigned id)
{
    unsigned pos, guard = 48;

    if (!(cfg_read(fd, 0x06, 2) & 0x10)) /* PCI_STATUS_CAP_LIST */
        return 0;
    pos = cfg_read(fd, 0x34, 1) & ~3u;
    while (pos >= 0x40 && guard--) {
        if (cfg_read(fd, pos, 1) == id)
            return pos;
        pos = cfg_read(fd, pos + 1, 1) & ~3u;
    }
    return 0;
}

/* ---- BARs through /sys/.../resourceN ------------------------------------ */

struct bar {
    int fd;
    bool io;
    volatile uint8_t *map; /* memory BARs */
    size_t size;
};

static int bar_open(const char *bdf, int idx, struct bar *b)
{
    char path[PATH_MAX];
    struct pci_res res[7];

    memset(b, 0, sizeof(*b));
    b->fd = -1;
    if (pci_resources(bdf, res) < 0 || !res_size(&res[idx]))
        return -ENODEV;
    b->size = res_size(&res[idx]);
    b->io = res[idx].flags & IORESOURCE_IO;
    snprintf(path, sizeof(path), SYS_PCI "/%s/resource%d", bdf, idx);
    b->fd = open(path, O_RDWR | O_SYNC);
    if (b->fd < 0)
        return -errno;
    if (!b->io) {
        void *p = mmap(NULL, b->size, PROT_READ | PROT_WRITE, MAP_SHARED,
                       b->fd, 0);
        if (p == MAP_FAILED) {
            int e = -errno;
            close(b->fd);
            return e;
        }
        b->map = p;
    }
    return 0;
}

/* A BAR read as it comes, all ones included (a failed I/O read gives all
 * ones of its size); see live() for reads that can't be all ones. */
static uint32_t bar_read(struct bar *b, uint64_t off, unsigned size)
{
    if (b->io) {
        uint32_t v = 0;
        if (pread(b->fd, &v, size, (off_t)off) != (ssize_t)size)
            return ones_mask(size);
        return v;
    }
    switch (size) {
    case 1: return *(volatile uint8_t *)(b->map + off);
    case 2: return *(volatile uint16_t *)(b->map + off);
    default: return *(volatile uint32_t *)(b->map + off);
    }
}

static uint64_t bar_read64(struct bar *b, uint64_t off)
{
    return *(volatile uint64_t *)(b->map + off);
}

static void bar_write(struct bar *b, uint64_t off, unsigned size, uint32_t v)
{
    if (b->io) {
        if (pwrite(b->fd, &v, size, (off_t)off) != (ssize_t)size)
            printf("%s: pwrite BAR io +0x%" PRIx64 ": %s\n", g_prog, off,
                   strerror(errno));
        return;
    }
    switch (size) {
    case 1: *(volatile uint8_t *)(b->map + off) = (uint8_t)v; break;
    case 2: *(volatile uint16_t *)(b->map + off) = (uint16_t)v; break;
    default: *(volatile uint32_t *)(b->map + off) = v; break;
    }
}

static void bar_write64(struct bar *b, uint64_t off, uint64_t v)
{
    *(volatile uint64_t *)(b->map + off) = v;
}

/* ---- DMA buffers: pinned pages and their guest-physical address --------- */

/* Physical address of a (locked, touched) virtual address, 0 on failure. */
static uint64_t virt_to_phys(const void *va)
{
    static int fd = -1;
    uint64_t ent, page = (uint64_t)sysconf(_SC_PAGESIZE);
    uintptr_t v = (uintptr_t)va;

    if (fd < 0)
        fd = open("/proc/self/pagemap", O_RDONLY);
    if (fd < 0 ||
        pread(fd, &ent, 8, (off_t)(v / page * 8)) != 8)
        return 0;
    if (!(ent & (1ULL << 63))) /* not present */
        return 0;
    ent &= (1ULL << 55) - 1; /* PFN; zero without CAP_SYS_ADMIN */
    return ent ? ent * page + (v % page) : 0;
}

/* Are the pages of [p, p+len) physically contiguous? Returns the base. */
static uint64_t phys_contiguous(const uint8_t *p, size_t len)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    uint64_t base = virt_to_phys(p);

    for (size_t off = page; base && off < len; off += page)
        if (virt_to_phys(p + off) != base + off)
            return 0;
    return base;
}

/*
 * A physically contiguous, locked buffer for DMA. The kernel promises user
 * space no such thing, so: one page is trivially contiguous; for more, use
 * a hugetlb page (2 MiB, contiguous by construction; we reserve one more in
 * /proc/sys/vm/nr_hugepages each time - transparent huge pages are off on
 * a guest this small), and failing that look for a run of consecutive
 * frames in a pool of small pages.
 */
static void *dma_alloc(size_t len, uint64_t *phys)
{
    const size_t huge = 2u << 20;
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t want = (len + page - 1) / page, pool;
    uint8_t *p;

    if (want > 1 && len <= huge) {
        char buf[32];
        long n = 0;

        if (sysfs_read_str("/proc/sys/vm/nr_hugepages", buf, sizeof(buf)) == 0)
            n = strtol(buf, NULL, 10);
        snprintf(buf, sizeof(buf), "%ld", n + 1);
        sysfs_write_str("/proc/sys/vm/nr_hugepages", buf);
        p = mmap(NULL, huge, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB | MAP_POPULATE |
                     MAP_LOCKED, -1, 0);
        if (p != MAP_FAILED) {
            memset(p, 0, huge);
            if ((*phys = phys_contiguous(p, len)))
                return p;
            munmap(p, huge);
        }
    }
    pool = want * 8 + 64;
    p = mmap(NULL, pool * page, PROT_READ | PROT_WRITE,
             MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE | MAP_LOCKED, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    for (size_t i = 0; i < pool; i++)
        p[i * page] = 1;
    for (size_t s = 0; s + want <= pool; s++)
        if ((*phys = phys_contiguous(p + s * page, want * page)))
            return p + s * page;
    return NULL;
}

/* ---- MSI observation ----------------------------------------------------
 *
 * A user-space program cannot own an MSI vector. What it can do: program
 * the device's MSI (or an MSI-X table entry) with the x86 interrupt message
 * address of CPU 0's local APIC and a vector the kernel has not allocated,
 * enable MSI in config space and make the device signal. The message is a
 * DMA write that QEMU's vfio-pci turns into an APIC interrupt; the guest
 * kernel finds no handler for that vector and logs
 *   "__common_interrupt: 0.229 No irq handler for vector"
 * which /dev/kmsg shows us. The vector number ties the log line to our
 * message. Vectors are handed out from the bottom of 0x20-0xeb, so on this
 * tiny guest the top of the range is free.
 */
#define MSI_ADDR_APIC0 0xfee00000u
#define MSI_TEST_VECTOR 0xe3u

static int msi_kmsg_open(void)
{
    int fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK);

    if (fd >= 0)
        lseek(fd, 0, SEEK_END); /* only new messages */
    return fd;
}

/* Count "No irq handler for vector" lines naming vector until timeout. */
static int msi_kmsg_wait(int fd, unsigned vector, double timeout_s)
{
    char needle[64], buf[1024];
    double end = now_s() + timeout_s;
    int hits = 0;

    snprintf(needle, sizeof(needle), ".%u No irq handler for vector", vector);
    while (now_s() < end) {
        ssize_t n = read(fd, buf, sizeof(buf) - 1);

        if (n > 0) {
            buf[n] = '\0';
            if (strstr(buf, needle))
                hits++;
            continue;
        }
        if (hits)
            break;
        sleep_ms(20);
    }
    return hits;
}

/* ---- uio_pci_generic: INTx from user space ------------------------------ */

#include <poll.h>

/* Bind bdf (vendor:device) to uio_pci_generic; returns an fd on /dev/uioN
 * or a negative errno. */
static int uio_bind(const char *bdf, unsigned vendor, unsigned device)
{
    char path[PATH_MAX], id[32];
    struct dirent *de;
    DIR *d = NULL;
    int fd = -1;

    snprintf(path, sizeof(path), SYS_PCI "/%s/driver/unbind", bdf);
    if (access(path, W_OK) == 0)
        sysfs_write_str(path, bdf);
    snprintf(path, sizeof(path), SYS_PCI "/%s/driver_override", bdf);
    sysfs_write_str(path, "uio_pci_generic");
    snprintf(id, sizeof(id), "%04x %04x", vendor, device);
    /* new_id binds every unbound matching device; bind covers the case
     * where the id is already known. Either may fail harmlessly. */
    sysfs_write_str("/sys/bus/pci/drivers/uio_pci_generic/new_id", id);
    sysfs_write_str("/sys/bus/pci/drivers/uio_pci_generic/bind", bdf);
    snprintf(path, sizeof(path), SYS_PCI "/%s/uio", bdf);
    for (int i = 0; i < 50 && !(d = opendir(path)); i++)
        sleep_ms(20);
    if (!d)
        return -ENODEV;
    while ((de = readdir(d)))
        if (!strncmp(de->d_name, "uio", 3)) {
            snprintf(path, sizeof(path), "/dev/%s", de->d_name);
            for (int i = 0; i < 50 && fd < 0; i++) {
                fd = open(path, O_RDWR);
                if (fd < 0)
                    sleep_ms(20);
            }
            break;
        }
    closedir(d);
    return fd < 0 ? -ENODEV : fd;
}

/* Re-enable INTx: uio_pci_generic's handler sets PCI_COMMAND_INTX_DISABLE
 * and has no irqcontrol, so user space clears the bit in config space (as
 * the kernel's UIO HOWTO does). */
static int uio_unmask(int cfg)
{
    uint32_t cmd = cfg_read(cfg, 4, 2);

    return cfg_write(cfg, 4, 2, cmd & ~0x400u);
}

/* Wait for an interrupt; returns the total count, 0 on timeout, <0 error. */
static int64_t uio_wait(int fd, int timeout_ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    uint32_t count;
    int r = poll(&p, 1, timeout_ms);

    if (r <= 0)
        return r < 0 ? -errno : 0;
    if (read(fd, &count, 4) != 4)
        return -errno;
    return count;
}

/* Drop a binding made by uio_bind (or any driver). */
static void pci_unbind(const char *bdf)
{
    char path[PATH_MAX];

    snprintf(path, sizeof(path), SYS_PCI "/%s/driver/unbind", bdf);
    if (access(path, W_OK) == 0)
        sysfs_write_str(path, bdf);
    snprintf(path, sizeof(path), SYS_PCI "/%s/driver_override", bdf);
    sysfs_write_str(path, "\n");
}

/* ---- MSI / MSI-X programmed from user space ----------------------------- */

#define PCI_CAP_ID_MSI 0x05
#define PCI_CAP_ID_MSIX 0x11

/* Program MSI (1 vector) to send `vector` to APIC 0 and enable it. */
static int msi_enable(int cfg, unsigned vector)
{
    unsigned cap = cfg_find_cap(cfg, PCI_CAP_ID_MSI);
    uint16_t ctl;

    if (!cap)
        return -ENOENT;
    ctl = (uint16_t)cfg_read(cfg, cap + 2, 2);
    cfg_write(cfg, cap + 4, 4, MSI_ADDR_APIC0);
    if (ctl & 0x80) { /* 64-bit address */
        cfg_write(cfg, cap + 8, 4, 0);
        cfg_write(cfg, cap + 12, 2, vector);
        if (ctl & 0x100) /* per-vector masking: unmask */
            cfg_write(cfg, cap + 16, 4, 0);
    } else {
        cfg_write(cfg, cap + 8, 2, vector);
        if (ctl & 0x100)
            cfg_write(cfg, cap + 12, 4, 0);
    }
    ctl &= (uint16_t)~0x70; /* one vector */
    return cfg_write(cfg, cap + 2, 2, ctl | 1);
}

static void msi_disable(int cfg)
{
    unsigned cap = cfg_find_cap(cfg, PCI_CAP_ID_MSI);

    if (cap)
        cfg_write(cfg, cap + 2, 2, cfg_read(cfg, cap + 2, 2) & ~1u);
}

#endif
