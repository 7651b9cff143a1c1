/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * nvme-bench.c - the guest side of tools/bench/nvme-vs-builtin.sh: the
 * same O_DIRECT load on whatever NVMe namespace the guest has, so that
 * muser-nvme and QEMU's own -device nvme are measured alike. Queue depth
 * N is N threads each with one synchronous O_DIRECT request in flight.
 * It also counts the NVMe interrupts the guest took per request (from
 * /proc/interrupts): each one costs the emulated vCPU an exit and an
 * interrupt handler, so a device that coalesces completions better
 * leaves the guest more time.
 *
 *   nvme-bench SECONDS [NAME]   prints "BENCH name iops MiB/s irqs/io" per
 *                               workload (only NAME if given)
 */
#include "guest-util.h"

#include <pthread.h>
#include <sys/ioctl.h>

#define DEV "/dev/nvme0n1"

struct job {
    const char *name;
    unsigned bs, qd;
    bool rnd, wr;
};

static const struct job jobs[] = {
    {"seq-read-128k-qd1", 128 << 10, 1, false, false},
    {"seq-write-128k-qd1", 128 << 10, 1, false, true},
    {"rand-read-4k-qd1", 4096, 1, true, false},
    {"rand-write-4k-qd1", 4096, 1, true, true},
    {"seq-read-128k-qd32", 128 << 10, 32, false, false},
    {"seq-write-128k-qd32", 128 << 10, 32, false, true},
    {"rand-read-4k-qd32", 4096, 32, true, false},
    {"rand-write-4k-qd32", 4096, 32, true, true},
};

static const struct job *cur;
static double deadline;
static uint64_t dev_bytes;
static int dev_fd;

struct worker {
    pthread_t t;
    unsigned idx;
    uint64_t ops;
    int err;
};

/* Interrupts taken so far on the lines whose name has "nvme". */
static uint64_t nvme_irqs(void)
{
    FILE *f = fopen("/proc/interrupts", "r");
    char line[1024];
    uint64_t sum = 0;

    if (!f)
        return 0;
    while (fgets(line, sizeof(line), f)) {
        char *p = strchr(line, ':');

        if (!p || !strstr(line, "nvme"))
            continue;
        /* "IRQ: count count ... type name": the counts, one per CPU. */
        for (char *end;; p = end) {
            unsigned long long v = strtoull(p + 1, &end, 10);

            if (end == p + 1)
                break;
            sum += v;
        }
    }
    fclose(f);
    return sum;
}

static void *run(void *arg)
{
    struct worker *w = arg;
    uint64_t nblk = dev_bytes / cur->bs;
    uint64_t pos = (nblk / 32) * w->idx, x = 88172645463325252ull + w->idx;
    void *buf;

    if (posix_memalign(&buf, 4096, cur->bs))
        return NULL;
    memset(buf, 0x5a, cur->bs);
    while (now_s() < deadline) {
        uint64_t blk;
        ssize_t r;

        if (cur->rnd) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            blk = x % nblk;
        } else {
            blk = pos++ % nblk;
        }
        r = cur->wr ? pwrite(dev_fd, buf, cur->bs, (off_t)(blk * cur->bs))
                    : pread(dev_fd, buf, cur->bs, (off_t)(blk * cur->bs));
        if (r != (ssize_t)cur->bs) {
            w->err = 1;
            break;
        }
        w->ops++;
    }
    free(buf);
    return NULL;
}

int main(int argc, char **argv)
{
    double secs = argc > 1 ? atof(argv[1]) : 2;
    struct worker w[32];
    double t0 = now_s();

    g_prog = "nvme-bench";
    while (now_s() - t0 < 60 && (dev_fd = open(DEV, O_RDWR | O_DIRECT)) < 0)
        sleep_ms(100);
    if (dev_fd < 0)
        die("no %s", DEV);
    if (ioctl(dev_fd, _IOR(0x12, 114, size_t), &dev_bytes) < 0)
        die("size: %s", strerror(errno));
    for (size_t j = 0; j < sizeof(jobs) / sizeof(jobs[0]); j++) {
        uint64_t ops = 0, irqs = nvme_irqs(), irqs_now;
        int err = 0;
        double t;

        cur = &jobs[j];
        if (argc > 2 && strcmp(argv[2], cur->name) != 0)
            continue;
        t = now_s();
        deadline = t + secs;
        for (unsigned i = 0; i < cur->qd; i++) {
            w[i] = (struct worker){.idx = i};
            pthread_create(&w[i].t, NULL, run, &w[i]);
        }
        for (unsigned i = 0; i < cur->qd; i++) {
            pthread_join(w[i].t, NULL);
            ops += w[i].ops;
            err |= w[i].err;
        }
        t = now_s() - t;
        /* A controller reset (a stalled device) frees the vectors. */
        irqs_now = nvme_irqs();
        irqs = irqs_now >= irqs ? irqs_now - irqs : 0;
        printf("BENCH %s %.0f %.1f %.2f%s\n", cur->name, ops / t,
               ops * (double)cur->bs / t / (1 << 20),
               ops ? (double)irqs / (double)ops : 0.0,
               err ? " (I/O error)" : "");
        fflush(stdout);
        check(!err, "%s without I/O errors", cur->name);
    }
    return finish();
}
