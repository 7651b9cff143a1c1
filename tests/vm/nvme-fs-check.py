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


def files(img):
    bad = n = 0
    for name, want in expected():
        r = subprocess.run(["debugfs", "-R", f"cat /{name}", img],
                           capture_output=True)
        n += 1
        if r.returncode != 0 or r.stdout != want:
            bad += 1
            print(f"/{name}: {len(r.stdout)} bytes, want {len(want)}"
                  f"{'' if len(r.stdout) != len(want) else ', content differs'}")
    print(f"{n} files read out of the backing file with debugfs, {bad} bad")
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
    if what in ("fsck", "files") and len(sys.argv) == 3:
        return (fsck if what == "fsck" else files)(sys.argv[2])
    if what == "flushes" and len(sys.argv) == 4:
        return flushes(sys.argv[2], sys.argv[3])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
