/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * nvme-test.c - the guest side of the muser-nvme tests (tests/vm/tests.sh
 * nvme): Linux's nvme driver has bound the controller; the namespace has
 * the size the host gave (argv[1], in 512-byte sectors); patterns written
 * with O_DIRECT at many offsets and sizes read back identical; a
 * controller reset through /sys/class/nvme/nvme0/reset_controller, after
 * which the data is still there and new I/O works. Then resets under
 * load: STRESS_THREADS threads write and read back generation-numbered
 * patterns in their own slots of the stress area with O_DIRECT while the
 * controller is reset STRESS_RESETS times; I/O must go on after every
 * reset, every write that reported success must read back (right after
 * it, and once more when all threads are done), and I/O that failed
 * (EIO during a reset is allowed) only makes its slot unknown until the
 * next good write. The last line "nvme-test: stress-slots G,G,..." gives
 * each slot's generation (x: unknown) to the host, which then checks the
 * backing file holds every pattern and every slot's generation at its
 * offset (nvme_regions, the stress layout and the patterns below must
 * agree with tests/vm/nvme-check.py).
 *
 *   nvme-test SECTORS
 *   nvme-test SECTORS kill   I/O runs in a child while the host kills the
 *                            server (HOST-REQUEST: kill nvme): the I/O
 *                            must fail within a minute, not hang
 */
#include "guest-util.h"

#include <linux/fs.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <sys/ioctl.h>
#include <sys/wait.h>

#define DEV "/dev/nvme0n1"

/* {first sector, sectors}: sizes 512 B .. 512 KiB, odd and aligned
 * offsets, the last sector. The last one is written after the reset. */
static const unsigned long nvme_regions[][2] = {
    {0, 1},     {7, 8},      {100, 256}, {1000, 3}, {4096, 64},
    {2000, 1024}, {3333, 17}, {32767, 1}, {9000, 255}, {5000, 32},
};
#define NREG (sizeof(nvme_regions) / sizeof(nvme_regions[0]))

/* The stress area: STRESS_SLOTS slots of SLOT_SECTORS sectors from sector
 * STRESS_FIRST (past the regions above, before the last sector); thread
 * t owns the slots i with i % STRESS_THREADS == t. */
#define STRESS_FIRST 16384
#define STRESS_SLOTS 64
#define SLOT_SECTORS 64
#define STRESS_THREADS 6
#define STRESS_RESETS 4
#define STRESS_OPS 12 /* per thread between resets, and after the last */

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

/* Generation gen (>= 1) of sector s in the stress area: a tag with both
 * at the start, its complement at the end, a fill byte of both between
 * (cheap to make under TCG, so the threads spend their time in I/O). */
static void gpattern(uint8_t *p, unsigned long s, unsigned long n,
                     unsigned gen)
{
    for (unsigned long k = 0; k < n; k++, s++) {
        uint8_t *b = p + k * 512;
        uint64_t tag = 0x4e56000000000000ull | (uint64_t)gen << 32 | s;

        memcpy(b, &tag, 8);
        memset(b + 8, (uint8_t)(s * 131 + gen * 29 + 1), 512 - 16);
        tag = ~tag;
        memcpy(b + 512 - 8, &tag, 8);
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

/* ---- resets under load --------------------------------------------- */

static struct {
    int fd;
    atomic_bool stop;
    atomic_ulong ops[STRESS_THREADS]; /* good write + read-back pairs */
    atomic_ulong wr_err, rd_err, bad;
    int gen[STRESS_SLOTS]; /* last good write's generation; -1 unknown */
    unsigned next_gen[STRESS_SLOTS];
} st;

static void *stress_thread(void *arg)
{
    unsigned t = (unsigned)(uintptr_t)arg, rnd = 12345 + t * 7919;
    size_t len = SLOT_SECTORS * 512;
    uint8_t *want, *got;

    if (posix_memalign((void **)&want, 4096, len) ||
        posix_memalign((void **)&got, 4096, len))
        die("no memory");
    while (!atomic_load(&st.stop)) {
        unsigned slot, gen;
        unsigned long s;

        rnd = rnd * 1103515245 + 12345;
        slot = t + STRESS_THREADS * ((rnd >> 16) % ((STRESS_SLOTS - t +
                                                     STRESS_THREADS - 1) /
                                                    STRESS_THREADS));
        s = STRESS_FIRST + (unsigned long)slot * SLOT_SECTORS;
        gen = ++st.next_gen[slot];
        gpattern(want, s, SLOT_SECTORS, gen);
        if (pwrite(st.fd, want, len, (off_t)s * 512) != (ssize_t)len) {
            printf("  stress: write of slot %u gen %u failed: %s\n", slot,
                   gen, strerror(errno));
            st.gen[slot] = -1; /* whatever the device made of it */
            atomic_fetch_add(&st.wr_err, 1);
            continue;
        }
        st.gen[slot] = (int)gen;
        memset(got, 0, len);
        if (pread(st.fd, got, len, (off_t)s * 512) != (ssize_t)len) {
            printf("  stress: read of slot %u failed: %s\n", slot,
                   strerror(errno));
            atomic_fetch_add(&st.rd_err, 1);
            continue;
        }
        if (memcmp(want, got, len)) {
            uint64_t tag;

            memcpy(&tag, got, 8);
            printf("  stress: slot %u read back wrong after a good write "
                   "of gen %u (first tag %#llx)\n",
                   slot, gen, (unsigned long long)tag);
            atomic_fetch_add(&st.bad, 1);
            continue;
        }
        atomic_fetch_add(&st.ops[t], 1);
    }
    free(want);
    free(got);
    return NULL;
}

/* Wait until every thread t has done n more good pairs than base[t],
 * then set base[] to the counts now (false if no thread makes progress
 * for a minute: a hang, not a slow run). */
static bool stress_wait(unsigned long base[STRESS_THREADS], unsigned long n)
{
    unsigned long last = 0;
    double t0 = now_s();

    for (;;) {
        unsigned long sum = 0;
        bool done = true;

        for (unsigned t = 0; t < STRESS_THREADS; t++) {
            unsigned long o = atomic_load(&st.ops[t]);

            sum += o;
            done = done && o >= base[t] + n;
        }
        if (done) {
            for (unsigned t = 0; t < STRESS_THREADS; t++)
                base[t] = atomic_load(&st.ops[t]);
            return true;
        }
        if (sum != last) {
            last = sum;
            t0 = now_s();
        } else if (now_s() - t0 > 60) {
            return false;
        }
        sleep_ms(20);
    }
}

static bool wait_live(char *buf, size_t len)
{
    double t0 = now_s();

    while (now_s() - t0 < 60) {
        if (sysfs_read_str("/sys/class/nvme/nvme0/state", buf, len) == 0 &&
            !strncmp(buf, "live", 4))
            return true;
        sleep_ms(50);
    }
    return false;
}

static void stress_test(void)
{
    pthread_t th[STRESS_THREADS];
    unsigned resets = 0, live = 0, known = 0, bad = 0, busy = 0;
    size_t len = SLOT_SECTORS * 512;
    uint8_t *want, *got;
    unsigned long total = 0, base[STRESS_THREADS] = {0};
    bool going = true;
    double t0 = now_s();
    char buf[64];

    st.fd = open(DEV, O_RDWR | O_DIRECT);
    check(st.fd >= 0, "stress: %s opens", DEV);
    if (st.fd < 0)
        return;
    if (posix_memalign((void **)&want, 4096, len) ||
        posix_memalign((void **)&got, 4096, len))
        die("no memory");
    for (unsigned t = 0; t < STRESS_THREADS; t++)
        if (pthread_create(&th[t], NULL, stress_thread, (void *)(uintptr_t)t))
            die("pthread_create");
    for (unsigned r = 1; r <= STRESS_RESETS && going; r++) {
        going = stress_wait(base, STRESS_OPS);
        if (!going)
            break;
        /* Reset when the block layer has requests in flight (reads,
         * writes): under TCG the threads spend much of their time making
         * and comparing patterns, so a reset at a random moment often
         * finds the queues empty. A few thousand looks at most. */
        unsigned long rd = 0, wr = 0;

        busy += nvme_wait_inflight(5000, &rd, &wr);
        say("stress: reset %u with %lu reads and %lu writes in flight "
            "(%.1f s)",
            r, rd, wr, now_s() - t0);
        /* Synchronous: returns when the reset is done (or failed). */
        if (sysfs_write_str("/sys/class/nvme/nvme0/reset_controller", "1") ==
            0)
            resets++;
        live += wait_live(buf, sizeof(buf));
    }
    check(going && resets == STRESS_RESETS && live == STRESS_RESETS,
          "stress: %u of %u controller resets under load by %u threads, "
          "live again after %u",
          resets, STRESS_RESETS, STRESS_THREADS, live);
    check(busy > 0, "stress: %u of the resets found I/O in flight", busy);
    /* base[] was taken before the last reset: count from its end. */
    for (unsigned t = 0; t < STRESS_THREADS; t++)
        base[t] = atomic_load(&st.ops[t]);
    check(going && stress_wait(base, STRESS_OPS),
          "stress: every thread did %u more good writes and read-backs "
          "after the last reset",
          STRESS_OPS);
    atomic_store(&st.stop, true);
    for (unsigned t = 0; t < STRESS_THREADS; t++) {
        pthread_join(th[t], NULL);
        total += atomic_load(&st.ops[t]);
    }
    say("stress: %lu good write+read pairs of %zu KiB in %.1f s, %lu writes "
        "and %lu reads failed (allowed during a reset)",
        total, len >> 10, now_s() - t0, atomic_load(&st.wr_err),
        atomic_load(&st.rd_err));
    check(atomic_load(&st.bad) == 0,
          "stress: every read right after a good write matched (%lu did not)",
          atomic_load(&st.bad));

    /* Once more, with everything quiet: each slot holds the generation of
     * its last good write. */
    for (unsigned slot = 0; slot < STRESS_SLOTS; slot++) {
        unsigned long s = STRESS_FIRST + (unsigned long)slot * SLOT_SECTORS;

        if (st.gen[slot] <= 0)
            continue;
        known++;
        gpattern(want, s, SLOT_SECTORS, (unsigned)st.gen[slot]);
        if (!io(st.fd, false, s, SLOT_SECTORS, got) ||
            memcmp(want, got, len)) {
            printf("  slot %u: not generation %d\n", slot, st.gen[slot]);
            bad++;
        }
    }
    check(bad == 0 && known > 0,
          "stress: all %u slots with a good last write hold it (%u bad)",
          known, bad);
    check(fdatasync(st.fd) == 0, "stress: fdatasync");
    printf("nvme-test: stress-slots ");
    for (unsigned slot = 0; slot < STRESS_SLOTS; slot++) {
        if (st.gen[slot] < 0)
            printf("%sx", slot ? "," : "");
        else
            printf("%s%d", slot ? "," : "", st.gen[slot]);
    }
    printf("\n");
    fflush(stdout);
    close(st.fd);
    free(want);
    free(got);
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
    stress_test();
    return finish();
}
