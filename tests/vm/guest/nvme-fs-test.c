/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * nvme-fs-test.c - the guest side of the muser-nvme file system test
 * (tests/vm/tests.sh nvme-fs): an ext4 file system on the muser-nvme
 * namespace, made by e2fsprogs' mke2fs (copied from the host into the
 * initramfs by build-guest.sh). Files of known content, 0 bytes to a few
 * MiB, some fsync()ed or fdatasync()ed, one overwritten in the middle,
 * one with a hole, a directory of small files; umount, caches dropped,
 * e2fsck -fn must find nothing; mounted again read-only, every file reads
 * back identical. The host then runs its own e2fsck -fn on the backing
 * file and reads every file out of it with debugfs
 * (tests/vm/nvme-fs-check.py: the file table and content() below must
 * match it), and checks the device counted at least as many Flush
 * commands as the guest made fsync/fdatasync calls.
 *
 * While the files are written, a child resets the controller FS_RESETS
 * times (each when the block layer has I/O in flight, if it gets any
 * within a few thousand looks): the file system must not notice, beyond
 * a pause (every write and fsync succeeds, everything checks out after).
 *
 * Durability: once the fsyncs returned, with the file system still
 * mounted, the guest asks the host for a point-in-time copy of the
 * backing file (HOST-REQUEST: snapshot, tests/vm/lib.sh: taken with the
 * server stopped) and waits until the host's acknowledgment appears in
 * the namespace's last MiB, which the file system leaves alone (it is
 * made FS_BYTES big). That copy is what a crash at that moment would
 * leave; the host replays its journal with e2fsck and checks that every
 * file whose fsync/fdatasync returned is there, complete.
 *
 *   nvme-fs-test SECTORS [LBA_BYTES]   SECTORS of 512 bytes; the
 *                                      namespace's logical block size
 *                                      (default 512)
 */
#include "guest-util.h"

#include <linux/fs.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/wait.h>

#define DEV "/dev/nvme0n1"
#define MNT "/mnt"
#define FS_BYTES (32u << 20) /* the namespace must be bigger: ack after it */
#define ACK "MUSER-SNAPSHOT-ACK"
#define FS_RESETS 3
#define BLK 4096
#define BASE (BLK - 16 + 251)

enum sync_how { NONE, FSYNC, FDATASYNC };

/* name, seed, size, write chunk, what to call after the writes */
static const struct file {
    const char *name;
    unsigned seed;
    size_t size, chunk;
    enum sync_how sync;
} files[] = {
    {"empty", 1, 0, BLK, FSYNC},
    {"one", 2, 1, BLK, NONE},
    {"page", 3, 4096, BLK, FDATASYNC},
    {"odd", 4, 12345, 1000, NONE},
    {"big1", 5, (1 << 20) + 7, 65536, FSYNC},
    {"big3", 6, (3 << 20) + 3 * 4096 + 100, 131072, FDATASYNC},
    {"big2-odd-writes", 7, 2 << 20, 65521, NONE},
};
#define NFILES (sizeof(files) / sizeof(files[0]))
/* "over": 256 KiB of seed 9, then [64 KiB, 128 KiB) rewritten with seed
 * 10's bytes for those offsets and fdatasync()ed. "hole": 1 MiB hole, then
 * one block of seed 11. "dir/f00".."dir/f31": 100 + 37 * i bytes of seed
 * 100 + i, then the directory fsync()ed. */
#define OVER_SIZE (256u << 10)
#define OVER_FROM (64u << 10)
#define OVER_TO (128u << 10)
#define HOLE_AT (1u << 20)
#define NSMALL 32

static unsigned g_syncs; /* fsync + fdatasync calls that returned 0 */

/* Byte o of a file with this seed: 4 KiB blocks, each a 16-byte header
 * ("MUFS", the seed, the block number) and 4080 bytes of a seed-dependent
 * sequence rotated by the block number, so a block at the wrong place or
 * from another file can't match. */
static void content(uint8_t *p, unsigned seed, size_t off, size_t len)
{
    static uint8_t base[BASE];
    static unsigned base_seed = ~0u;

    if (base_seed != seed) {
        for (unsigned i = 0; i < BASE; i++)
            base[i] = (uint8_t)(i * 13 + seed * 31 + i / 251);
        base_seed = seed;
    }
    while (len) {
        uint64_t b = off / BLK;
        uint8_t blk[BLK];
        size_t in = off % BLK, n = BLK - in < len ? BLK - in : len;

        memcpy(blk, "MUFS", 4);
        memcpy(blk + 4, &seed, 4);
        memcpy(blk + 8, &b, 8);
        memcpy(blk + 16, base + (b * 7 + seed) % 251, BLK - 16);
        memcpy(p, blk + in, n);
        p += n;
        off += n;
        len -= n;
    }
}

static int run(char *const argv[])
{
    pid_t pid = fork();
    int st;

    if (pid == 0) {
        execvp(argv[0], argv);
        _exit(127);
    }
    if (pid < 0 || waitpid(pid, &st, 0) < 0)
        return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static bool do_sync(int fd, enum sync_how how)
{
    int r = 0;

    if (how == FSYNC)
        r = fsync(fd);
    else if (how == FDATASYNC)
        r = fdatasync(fd);
    if (how != NONE && r == 0)
        g_syncs++;
    return r == 0;
}

/* Write [off, off + len) of seed's content at off, in chunk-byte writes. */
static bool put(int fd, unsigned seed, size_t off, size_t len, size_t chunk,
                uint8_t *buf)
{
    while (len) {
        size_t n = len < chunk ? len : chunk;

        content(buf, seed, off, n);
        if (pwrite(fd, buf, n, (off_t)off) != (ssize_t)n)
            return false;
        off += n;
        len -= n;
    }
    return true;
}

static bool write_file(const char *name, unsigned seed, size_t size,
                       size_t chunk, enum sync_how how, uint8_t *buf)
{
    char path[128];
    int fd;
    bool ok;

    snprintf(path, sizeof(path), MNT "/%s", name);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        return false;
    ok = put(fd, seed, 0, size, chunk, buf) && do_sync(fd, how);
    return close(fd) == 0 && ok;
}

/* The file's bytes equal want (len bytes), and it has no more. */
static bool same(const char *name, const uint8_t *want, size_t len,
                 uint8_t *got)
{
    char path[128];
    struct stat st;
    size_t off = 0;
    int fd;
    bool ok;

    snprintf(path, sizeof(path), MNT "/%s", name);
    fd = open(path, O_RDONLY);
    if (fd < 0 || fstat(fd, &st) < 0) {
        printf("  %s: %s\n", name, strerror(errno));
        if (fd >= 0)
            close(fd);
        return false;
    }
    ok = (size_t)st.st_size == len;
    while (ok && off < len) {
        ssize_t r = read(fd, got + off, len - off);

        if (r <= 0)
            ok = false;
        else
            off += (size_t)r;
    }
    ok = ok && !memcmp(want, got, len);
    if (!ok)
        printf("  %s: size %lld (want %zu) or content differs\n", name,
               (long long)st.st_size, len);
    close(fd);
    return ok;
}

/* Every file's expected bytes, built into want (big enough for the
 * biggest), compared with what the file system returns. */
static int verify_all(uint8_t *want, uint8_t *got)
{
    int bad = 0;
    char name[32];

    for (unsigned i = 0; i < NFILES; i++) {
        content(want, files[i].seed, 0, files[i].size);
        bad += !same(files[i].name, want, files[i].size, got);
    }
    content(want, 9, 0, OVER_SIZE);
    content(want + OVER_FROM, 10, OVER_FROM, OVER_TO - OVER_FROM);
    bad += !same("over", want, OVER_SIZE, got);
    memset(want, 0, HOLE_AT);
    content(want + HOLE_AT, 11, HOLE_AT, BLK);
    bad += !same("hole", want, HOLE_AT + BLK, got);
    for (unsigned i = 0; i < NSMALL; i++) {
        snprintf(name, sizeof(name), "dir/f%02u", i);
        content(want, 100 + i, 0, 100 + 37 * i);
        bad += !same(name, want, 100 + 37 * i, got);
    }
    return bad;
}

static int write_all(uint8_t *buf)
{
    char name[32];
    int bad = 0, fd;

    for (unsigned i = 0; i < NFILES; i++)
        bad += !write_file(files[i].name, files[i].seed, files[i].size,
                           files[i].chunk, files[i].sync, buf);

    /* An overwrite in place: no new blocks, so fdatasync has only data
     * to make durable (ext4 sends a Flush of its own for it). */
    bad += !write_file("over", 9, OVER_SIZE, 65536, FDATASYNC, buf);
    fd = open(MNT "/over", O_WRONLY);
    bad += fd < 0 || !put(fd, 10, OVER_FROM, OVER_TO - OVER_FROM, 8192, buf) ||
           !do_sync(fd, FDATASYNC);
    if (fd >= 0)
        close(fd);

    fd = open(MNT "/hole", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    bad += fd < 0 || !put(fd, 11, HOLE_AT, BLK, BLK, buf);
    if (fd >= 0)
        close(fd);

    if (mkdir(MNT "/dir", 0755) < 0)
        bad++;
    for (unsigned i = 0; i < NSMALL; i++) {
        snprintf(name, sizeof(name), "dir/f%02u", i);
        bad += !write_file(name, 100 + i, 100 + 37 * i, BLK, NONE, buf);
    }
    fd = open(MNT "/dir", O_RDONLY | O_DIRECTORY);
    bad += fd < 0 || !do_sync(fd, FSYNC);
    if (fd >= 0)
        close(fd);
    return bad;
}

/* Ask the host for a copy of the backing file and wait for its ack at
 * FS_BYTES (O_DIRECT: the page cache would keep the old block). */
static bool snapshot(void)
{
    int fd = open(DEV, O_RDONLY | O_DIRECT);
    double t0 = now_s();
    bool ok = false;
    uint8_t *b;

    if (fd < 0 || posix_memalign((void **)&b, 4096, 4096))
        return false;
    printf("HOST-REQUEST: snapshot nvme %u\n", FS_BYTES);
    fflush(stdout);
    /* A bound for a host that never answers, not a speed requirement. */
    while (!ok && now_s() - t0 < 120) {
        if (pread(fd, b, 4096, FS_BYTES) == 4096 &&
            !memcmp(b, ACK, strlen(ACK)))
            ok = true;
        else
            sleep_ms(50);
    }
    free(b);
    close(fd);
    return ok;
}

/* The child: FS_RESETS controller resets, each when there is I/O in
 * flight if that comes within 20000 looks. Exit status: resets that
 * failed or after which the controller did not come back live; the
 * number of resets that found I/O in flight is printed. */
static void __attribute__((noreturn)) reset_child(void)
{
    unsigned bad = 0, busy = 0;
    char buf[64];

    for (unsigned r = 0; r < FS_RESETS; r++) {
        unsigned long rd = 0, wr = 0;
        double t0;

        busy += nvme_wait_inflight(20000, &rd, &wr);
        if (sysfs_write_str("/sys/class/nvme/nvme0/reset_controller", "1"))
            bad++;
        t0 = now_s();
        while (now_s() - t0 < 60 &&
               (sysfs_read_str("/sys/class/nvme/nvme0/state", buf,
                               sizeof(buf)) ||
                strncmp(buf, "live", 4)))
            sleep_ms(20);
        bad += strncmp(buf, "live", 4) != 0;
    }
    printf("nvme-fs-test: %u of %u resets during the writes found I/O in "
           "flight\n",
           busy, FS_RESETS);
    fflush(stdout);
    _exit((int)bad);
}

static void drop_caches(int fd)
{
    sync();
    if (fd >= 0)
        ioctl(fd, BLKFLSBUF, 0);
    sysfs_write_str("/proc/sys/vm/drop_caches", "3");
}

int main(int argc, char **argv)
{
    unsigned long want_sectors = argc > 1 ? strtoul(argv[1], NULL, 0) : 0;
    unsigned long want_lba = argc > 2 ? strtoul(argv[2], NULL, 0) : 512;
    unsigned long long bytes = 0;
    char fs_size[16];
    char *mkfs[] = {"mke2fs", "-q", "-F", "-t", "ext4", "-L", "muser",
                    "-E", "lazy_itable_init=0,lazy_journal_init=0", DEV,
                    fs_size, NULL};
    char *fsck[] = {"e2fsck", "-f", "-n", DEV, NULL};
    char *mp1[] = {"modprobe", "crc32c_generic", NULL};
    char *mp2[] = {"modprobe", "ext4", NULL};
    size_t max = HOLE_AT + BLK;
    uint8_t *want, *got;
    char buf[64], wc[32] = "?", fua[8] = "?";
    double t0 = now_s();
    int fd = -1, r, cst = 0;
    pid_t child;

    g_prog = "nvme-fs-test";
    while (now_s() - t0 < 60 && (fd = open(DEV, O_RDONLY)) < 0)
        sleep_ms(100);
    check(fd >= 0, "%s appeared (%.1f s after start)", DEV, now_s() - t0);
    if (fd < 0)
        return finish();
    if (ioctl(fd, BLKGETSIZE64, &bytes) < 0)
        bytes = 0;
    check(bytes == want_sectors * 512 && bytes > FS_BYTES,
          "namespace size %llu bytes (want %lu)", bytes, want_sectors * 512);
    if (sysfs_read_str("/sys/block/nvme0n1/queue/logical_block_size", buf,
                       sizeof(buf)))
        strcpy(buf, "?");
    check(strtoul(buf, NULL, 0) == want_lba, "logical block size %s (want %lu)",
          buf, want_lba);
    snprintf(fs_size, sizeof(fs_size), "%uk", FS_BYTES >> 10);
    sysfs_read_str("/sys/block/nvme0n1/queue/write_cache", wc, sizeof(wc));
    sysfs_read_str("/sys/block/nvme0n1/queue/fua", fua, sizeof(fua));
    check(!strcmp(wc, "write back") && !strcmp(fua, "1"),
          "the kernel sees a volatile write cache (%s) and FUA (%s): "
          "fsync must send Flush commands",
          wc, fua);
    for (unsigned i = 0; i < NFILES; i++)
        if (files[i].size > max)
            max = files[i].size;
    if (posix_memalign((void **)&want, 4096, max) ||
        posix_memalign((void **)&got, 4096, max))
        die("no memory");

    check(run(mp1) == 0 && run(mp2) == 0, "ext4 module loaded");
    r = run(mkfs);
    check(r == 0, "mke2fs -t ext4 %s %s (exit %d)", DEV, fs_size, r);
    mkdir(MNT, 0755);
    r = mount(DEV, MNT, "ext4", 0, NULL);
    check(r == 0, "mounted ext4 on " MNT "%s%s", r ? ": " : "",
          r ? strerror(errno) : "");
    if (r)
        return finish();
    child = fork();
    if (child == 0)
        reset_child();
    r = write_all(got);
    if (child < 0 || waitpid(child, &cst, 0) < 0)
        cst = -1;
    check(cst == 0, "%d controller resets while the files were written, "
          "live again after each (child status %#x)",
          FS_RESETS, cst);
    check(r == 0, "wrote %zu files of 0 B to 3 MiB, an overwrite, a hole, "
          "%d small files (%d failures)",
          NFILES, NSMALL, r);
    /* Those of the table, two for "over", one for "dir". */
    r = 3;
    for (unsigned i = 0; i < NFILES; i++)
        r += files[i].sync != NONE;
    check(g_syncs == (unsigned)r, "%u of %d fsync/fdatasync calls succeeded",
          g_syncs, r);
    say("fsyncs=%u", g_syncs);
    check(snapshot(), "the host copied the backing file (file system "
          "mounted, fsyncs done) and said so");
    sync();
    check(verify_all(want, got) == 0, "every file reads back (page cache)");
    r = umount(MNT);
    check(r == 0, "umount%s%s", r ? ": " : "", r ? strerror(errno) : "");

    drop_caches(fd);
    r = run(fsck);
    check(r == 0, "e2fsck -fn finds the file system clean (exit %d)", r);

    drop_caches(fd);
    r = mount(DEV, MNT, "ext4", MS_RDONLY, NULL);
    check(r == 0, "mounted again, read-only%s%s", r ? ": " : "",
          r ? strerror(errno) : "");
    if (r)
        return finish();
    check(verify_all(want, got) == 0,
          "after the remount every file reads back identical");
    check(umount(MNT) == 0, "umount");
    if (sysfs_read_str("/sys/class/nvme/nvme0/state", buf, sizeof(buf)) == 0)
        say("controller state %s", buf);
    close(fd);
    return finish();
}
