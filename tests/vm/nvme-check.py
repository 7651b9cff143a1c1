#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""nvme-check.py BACKING: after the guest's nvme-test powered off, the
backing file holds each pattern at its offset and zeroes elsewhere.
The regions and the pattern mirror tests/vm/guest/nvme-test.c."""
import struct
import sys

REGIONS = [(0, 1), (7, 8), (100, 256), (1000, 3), (4096, 64), (2000, 1024),
           (3333, 17), (16383, 1), (9000, 255), (5000, 32)]


def pattern(s):
    b = bytearray(struct.pack("<Q", 0x4E564D4500000000 | s))
    b += bytes((s * 131 + i * 7 + (s >> 8)) & 0xFF for i in range(8, 512))
    return bytes(b)


def main():
    data = open(sys.argv[1], "rb").read()
    written = set()
    bad = 0
    for first, n in REGIONS:
        for s in range(first, first + n):
            written.add(s)
            if data[s * 512:(s + 1) * 512] != pattern(s):
                bad += 1
                if bad < 5:
                    print(f"sector {s}: not the guest's pattern")
    zero = bytes(512)
    for s in range(len(data) // 512):
        if s not in written and data[s * 512:(s + 1) * 512] != zero:
            bad += 1
            if bad < 10:
                print(f"sector {s}: written, but the guest never wrote it")
    print(f"{len(written)} sectors checked, {bad} bad")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
