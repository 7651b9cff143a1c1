/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * nvme-test.c - the guest side of the muser-nvme tests (tests/vm/tests.sh
 * nvme): Linux's nvme driver has bound the controller; the namespace has
 * the size the host gave (argv[1], in 512-byte sectors); patterns written
 * with O_DIRECT at many offsets and sizes read back identical; a
 * controller reset through /sys/class/nvme/nvme0/reset_controller, after
 * which the data is still there and new I/O works. The host then checks
 * the backing file holds every pattern at its offset (nvme_regions below
 * and tests/vm/nvme-check.py must agree).
 *
 *   nvme-test SECTORS
 *   nvme-test SECTORS kill   I/O runs in a child while the host kills the
 *                            server (HOST-REQUEST: kill nvme): the I/O
 *                            must fail within a minute, not hang
 */
#include "guest-util.h"

#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/wait.h>

#define DEV "/dev/nvme0n1"

/* {first sector, sectors}: sizes 512 B .. 512 KiB, odd and aligned
 * offsets, the last sector. The last one is written after the reset. */
static const unsigned long nvme_regions[][2] = {
    {0, 1},     {7, 8},      {100, 256}, {1000, 3}, {4096, 64},
    {2000, 1024}, {3333, 17}, {16383, 1}, {9000, 255}, {5000, 32},
};
#define NREG (sizeof(nvme_regions) / sizeof(nvme_regions[0]))

/* Byte i of sector s: the sector number in the first 8 bytes, then a
 * function of both (so a block at the wrong offset can't match). */
static void pattern(uint8_t *p, unsigned long s, unsigned long n)
{
    for (unsigned long k = 0; k < n; k++, s++) {
        uint8_t *b = p + k * 512;
        uint64_t tag = 0x4e564d4500000000ull | s;

        memcpy(b, &tag, 8);
        for (unsigned i = 8; i < 512; i++)
            b[i] = (uint8_t)(s * 131 + i * 7 + (s >> 8));
    }
}

static bool io(int fd, bool wr, unsigned long s, unsigned long n, uint8_t *buf)
{
    ssize_t r = wr ? pwrite(fd, buf, n * 512, (off_t)s * 512)
                   : pread(fd, buf, n * 512, (off_t)s * 512);

    if (r != (ssize_t)(n * 512))
        printf("  %s %lu+%lu: %zd (%s)\n", wr ? "write" : "read", s, n, r,
               r < 0 ? strerror(errno) : "short");
    return r == (ssize_t)(n * 512);
}

static int verify(int fd, unsigned from, unsigned to, uint8_t *want,
                  uint8_t *got)
{
    int bad = 0;

    for (unsigned i = from; i < to; i++) {
        unsigned long s = nvme_regions[i][0], n = nvme_regions[i][1];

        pattern(want, s, n);
        memset(got, 0, n * 512);
        if (!io(fd, false, s, n, got) || memcmp(want, got, n * 512))
            bad++;
    }
    return bad;
}

/* The child: O_DIRECT writes and reads until one fails. */
static void __attribute__((noreturn)) io_loop(int fd, uint8_t *buf)
{
    for (unsigned long i = 0;; i++) {
        unsigned long s = (i * 977) % 16000;

        pattern(buf, s, 128);
        if (!io(fd, i & 1, s, 128, buf)) {
            printf("nvme-test: child: I/O failed after %lu commands\n", i);
            fflush(stdout);
            _exit(0);
        }
        if (i == 20) {
            printf("HOST-REQUEST: kill nvme\n");
            fflush(stdout);
        }
        /* Paced from then on: a command in flight every 20 ms rather than
         * back to back, so the kill seldom lands while QEMU 11.1.2 has a
         * message unread (its client then aborts: tests/vm/tests.sh). */
        if (i >= 20)
            sleep_ms(20);
    }
}

static int kill_test(int fd, uint8_t *buf)
{
    double t0;
    pid_t pid;
    int st = 0;

    /* Time out I/O after 3 s rather than 30 (the driver then finds the
     * controller reading all ones and removes it). */
    sysfs_write_str("/sys/block/nvme0n1/queue/io_timeout", "3000");
    pid = fork();
    if (pid == 0)
        io_loop(fd, buf);
    t0 = now_s();
    while (now_s() - t0 < 90 && waitpid(pid, &st, WNOHANG) == 0)
        sleep_ms(100);
    check(WIFEXITED(st) && WEXITSTATUS(st) == 0,
          "I/O failed with an error after the kill, no hang (%.1f s)",
          now_s() - t0);
    return finish();
}

int main(int argc, char **argv)
{
    unsigned long want_sectors = argc > 1 ? strtoul(argv[1], NULL, 0) : 0;
    unsigned long long bytes = 0;
    uint8_t *want, *got;
    char buf[64];
    int fd = -1, bad = 0;
    double t0 = now_s();

    g_prog = "nvme-test";
    /* The driver probes asynchronously; under TCG it takes seconds. */
    while (now_s() - t0 < 60 && (fd = open(DEV, O_RDWR | O_DIRECT)) < 0)
        sleep_ms(100);
    check(fd >= 0, "%s appeared (%.1f s after start)", DEV, now_s() - t0);
    if (fd < 0)
        return finish();
    if (sysfs_read_str("/sys/class/nvme/nvme0/model", buf, sizeof(buf)) == 0)
        say("controller model: %s", buf);
    if (ioctl(fd, BLKGETSIZE64, &bytes) < 0)
        bytes = 0;
    check(bytes == want_sectors * 512,
          "namespace size %llu bytes (want %lu)", bytes, want_sectors * 512);

    if (posix_memalign((void **)&want, 4096, 1 << 20) ||
        posix_memalign((void **)&got, 4096, 1 << 20))
        die("no memory");
    if (argc > 2 && !strcmp(argv[2], "kill"))
        return kill_test(fd, want);
    for (unsigned i = 0; i < NREG - 1; i++) {
        unsigned long s = nvme_regions[i][0], n = nvme_regions[i][1];

        pattern(want, s, n);
        if (!io(fd, true, s, n, want))
            bad++;
    }
    check(bad == 0, "%zu O_DIRECT writes, 512 B to 512 KiB", NREG - 1);
    check(fdatasync(fd) == 0, "fdatasync (Flush)");
    check(verify(fd, 0, NREG - 1, want, got) == 0,
          "every pattern reads back identical");

    close(fd);
    check(sysfs_write_str("/sys/class/nvme/nvme0/reset_controller", "1") == 0,
          "controller reset through sysfs");
    t0 = now_s();
    while (now_s() - t0 < 30) {
        if (sysfs_read_str("/sys/class/nvme/nvme0/state", buf,
                           sizeof(buf)) == 0 &&
            !strncmp(buf, "live", 4))
            break;
        sleep_ms(100);
    }
    check(!strncmp(buf, "live", 4), "controller live again after reset (%s)",
          buf);
    fd = open(DEV, O_RDWR | O_DIRECT);
    check(fd >= 0, "%s opens after the reset", DEV);
    if (fd < 0)
        return finish();
    check(verify(fd, 0, NREG - 1, want, got) == 0,
          "the data survived the reset");
    pattern(want, nvme_regions[NREG - 1][0], nvme_regions[NREG - 1][1]);
    check(io(fd, true, nvme_regions[NREG - 1][0], nvme_regions[NREG - 1][1],
             want) &&
              fdatasync(fd) == 0 && verify(fd, NREG - 1, NREG, want, got) == 0,
          "I/O after the reset");
    close(fd);
    return finish();
}
