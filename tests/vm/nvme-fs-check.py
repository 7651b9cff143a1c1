#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""nvme-fs-check.py: host-side checks of the nvme-fs guest test, after the
guest powered off (tests/vm/tests.sh nvme-fs). The file table and
content() mirror tests/vm/guest/nvme-fs-test.c.

  nvme-fs-check.py fsck BACKING     the host's e2fsck -fn finds the ext4
                                    file system in the backing file clean
  nvme-fs-check.py files BACKING    every file the guest wrote, read out of
                                    the backing file with debugfs, holds
                                    exactly its content
  nvme-fs-check.py snapshot COPY   the point-in-time copy of the backing
                                    file taken while the guest had the file
                                    system mounted (after its fsyncs) was
                                    made mid-mount (needs_recovery); e2fsck
                                    replays its journal, finds it clean then,
                                    and every file whose fsync or fdatasync
                                    had returned is there, complete
  nvme-fs-check.py flushes DEVLOG CONSOLE
                                    the device counted at least as many
                                    Flush commands as the guest made
                                    fsync/fdatasync calls
"""
import re
import subprocess
import sys

BLK = 4096
FILES = [("empty", 1, 0), ("one", 2, 1), ("page", 3, 4096),
         ("odd", 4, 12345), ("big1", 5, (1 << 20) + 7),
         ("big3", 6, (3 << 20) + 3 * 4096 + 100),
         ("big2-odd-writes", 7, 2 << 20)]
OVER_SIZE, OVER_FROM, OVER_TO = 256 << 10, 64 << 10, 128 << 10
HOLE_AT = 1 << 20
NSMALL = 32


def content(seed, off, length):
    """Bytes [off, off + length) of the file with this seed."""
    base = bytes((i * 13 + seed * 31 + i // 251) & 0xFF
                 for i in range(BLK - 16 + 251))
    out = bytearray()
    first, last = off // BLK, (off + length + BLK - 1) // BLK
    for b in range(first, last):
        r = (b * 7 + seed) % 251
        out += b"MUFS" + seed.to_bytes(4, "little") + b.to_bytes(8, "little")
        out += base[r:r + BLK - 16]
    start = off - first * BLK
    return bytes(out[start:start + length])


def expected():
    for name, seed, size in FILES:
        yield name, content(seed, 0, size)
    over = bytearray(content(9, 0, OVER_SIZE))
    over[OVER_FROM:OVER_TO] = content(10, OVER_FROM, OVER_TO - OVER_FROM)
    yield "over", bytes(over)
    yield "hole", bytes(HOLE_AT) + content(11, HOLE_AT, BLK)
    for i in range(NSMALL):
        yield f"dir/f{i:02d}", content(100 + i, 0, 100 + 37 * i)


def fsck(img):
    r = subprocess.run(["e2fsck", "-f", "-n", img], capture_output=True,
                       text=True)
    for line in (r.stderr + r.stdout).splitlines():
        print(line)
    print(f"e2fsck -fn exit {r.returncode}")
    return 0 if r.returncode == 0 else 1


def compare(img, wanted, where):
    """Read each (name, content) of wanted out of img with debugfs; print
    the ones that differ. Returns how many did."""
    bad = 0
    for name, want in wanted:
        got = cat(img, name)
        if got != want:
            bad += 1
            print(f"/{name}: {'missing' if got is None else len(got)} bytes"
                  f"{where}, want {len(want)}"
                  f"{', content differs' if got and len(got) == len(want) else ''}")
    return bad


def files(img):
    wanted = list(expected())
    bad = compare(img, wanted, "")
    print(f"{len(wanted)} files read out of the backing file with debugfs, {bad} bad")
    return 1 if bad else 0


# The files whose fsync/fdatasync returned before the snapshot request
# (as the guest leaves them: "over" with its overwrite).
SYNCED = ["empty", "page", "big1", "big3", "over"]


def cat(img, name):
    r = subprocess.run(["debugfs", "-R", f"cat /{name}", img],
                       capture_output=True)
    return r.stdout if r.returncode == 0 else None


def snapshot(img):
    r = subprocess.run(["dumpe2fs", "-h", img], capture_output=True,
                       text=True)
    feat = re.findall(r"^Filesystem features:\s*(.*)$", r.stdout, re.M)
    if r.returncode != 0 or not feat or "needs_recovery" not in feat[0]:
        print(f"the copy is not of a mounted ext4 (features: {feat})")
        return 1
    fix = subprocess.run(["e2fsck", "-f", "-y", img], capture_output=True,
                         text=True)
    check = subprocess.run(["e2fsck", "-f", "-n", img], capture_output=True,
                           text=True)
    print(f"copy made mid-mount (needs_recovery); e2fsck -fy exit "
          f"{fix.returncode}, then e2fsck -fn exit {check.returncode}")
    if fix.returncode not in (0, 1) or check.returncode != 0:
        print(fix.stdout + check.stdout)
        return 1
    want = dict(expected())
    bad = compare(img, [(name, want[name]) for name in SYNCED], " in the copy")
    print(f"{len(SYNCED)} fsync'ed files checked in the copy, {bad} bad")
    return 1 if bad else 0


def flushes(devlog, console):
    dev = open(devlog, errors="replace").read()
    con = open(console, errors="replace").read()
    m = re.findall(r"shutdown complete.*flushes (\d+)\)", dev)
    s = re.findall(r"nvme-fs-test: fsyncs=(\d+)", con)
    if not m or not s:
        print("no flush count from the device or no fsync count from the guest")
        return 1
    f, n = int(m[-1]), int(s[-1])
    print(f"device: {f} Flush commands; guest: {n} fsync/fdatasync calls")
    return 0 if f >= n > 0 else 1


def main():
    what = sys.argv[1] if len(sys.argv) > 1 else ""
    cmds = {"fsck": fsck, "files": files, "snapshot": snapshot}
    if what in cmds and len(sys.argv) == 3:
        return cmds[what](sys.argv[2])
    if what == "flushes" and len(sys.argv) == 4:
        return flushes(sys.argv[2], sys.argv[3])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
