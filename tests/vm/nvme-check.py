#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""nvme-check.py BACKING [CONSOLE]: after the guest's nvme-test powered
off, the backing file holds each pattern at its offset and zeroes
elsewhere. With the guest's console log, the stress area too: every slot
holds the generation of its last good write as the guest's
"nvme-test: stress-slots" line gives it (slots marked x, whose last write
failed, may hold anything). The regions, the stress layout and the
patterns mirror tests/vm/guest/nvme-test.c."""
import re
import struct
import sys

REGIONS = [(0, 1), (7, 8), (100, 256), (1000, 3), (4096, 64), (2000, 1024),
           (3333, 17), (32767, 1), (9000, 255), (5000, 32)]
STRESS_FIRST, STRESS_SLOTS, SLOT_SECTORS = 16384, 64, 64


def pattern(s):
    b = bytearray(struct.pack("<Q", 0x4E564D4500000000 | s))
    b += bytes((s * 131 + i * 7 + (s >> 8)) & 0xFF for i in range(8, 512))
    return bytes(b)


def gpattern(s, gen):
    tag = 0x4E56000000000000 | gen << 32 | s
    return (struct.pack("<Q", tag)
            + bytes([(s * 131 + gen * 29 + 1) & 0xFF]) * (512 - 16)
            + struct.pack("<Q", ~tag & 0xFFFFFFFFFFFFFFFF))


def stress_slots(console):
    """The guest's last stress-slots line: one generation (or None) per
    slot; None if there is no such line."""
    text = open(console, errors="replace").read().replace("\r", "")
    m = re.findall(r"^nvme-test: stress-slots ([0-9x,]+)$", text, re.M)
    if not m:
        return None
    gens = [None if g == "x" else int(g) for g in m[-1].split(",")]
    return gens if len(gens) == STRESS_SLOTS else None


def main():
    data = open(sys.argv[1], "rb").read()
    written = set()
    bad = 0
    if len(sys.argv) > 2:
        gens = stress_slots(sys.argv[2])
        if gens is None:
            print("no stress-slots line from the guest")
            return 1
        known = 0
        for slot, gen in enumerate(gens):
            first = STRESS_FIRST + slot * SLOT_SECTORS
            if gen is None:  # anything goes: skip it
                written.update(range(first, first + SLOT_SECTORS))
                continue
            if gen == 0:  # never written: must stay zero
                continue
            known += 1
            for s in range(first, first + SLOT_SECTORS):
                written.add(s)
                if data[s * 512:(s + 1) * 512] != gpattern(s, gen):
                    bad += 1
                    if bad < 5:
                        print(f"sector {s} (stress slot {slot}): not "
                              f"generation {gen}")
        print(f"stress area: {known} slots at their last good generation"
              f" checked, {gens.count(None)} unknown")
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
