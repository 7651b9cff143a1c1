#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""checkers-test.py: the host-side checkers of the nvme guest tests
(nvme-check.py, nvme-fs-check.py) pass what the guest should leave and
fail what it must not, without a VM: each gets a backing file made here
(patterns written with the checker's own generator; an ext4 image made by
mke2fs -d from the expected files), then the same with one thing wrong.
Needs e2fsprogs (mke2fs, e2fsck, debugfs, dumpe2fs)."""
import contextlib
import importlib.util
import io
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
FAILS = 0


def load(name):
    spec = importlib.util.spec_from_file_location(
        name.replace("-", "_"), os.path.join(HERE, name + ".py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def expect(what, want, fn, *args):
    global FAILS
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        got = fn(*args)
    ok = (got == 0) == want
    FAILS += not ok
    print(f"{'ok  ' if ok else 'FAIL'} {what}: exit {got}"
          f" (want {'0' if want else 'non-zero'})")
    if not ok:
        print("     " + out.getvalue().replace("\n", "\n     "))


def poke(path, off, data):
    with open(path, "r+b") as f:
        f.seek(off)
        f.write(data)


def nvme(tmp):
    nc = load("nvme-check")
    img, con = os.path.join(tmp, "nvme.img"), os.path.join(tmp, "console")
    with open(img, "wb") as f:
        f.truncate(16 << 20)
    for first, n in nc.REGIONS:
        for s in range(first, first + n):
            poke(img, s * 512, nc.pattern(s))
    gens = [(i * 7) % 5 for i in range(nc.STRESS_SLOTS)]  # 0: never written
    gens[3] = None
    for slot, gen in enumerate(gens):
        first = nc.STRESS_FIRST + slot * nc.SLOT_SECTORS
        for s in range(first, first + nc.SLOT_SECTORS):
            if gen:
                poke(img, s * 512, nc.gpattern(s, gen))
            elif gen is None:
                poke(img, s * 512, b"torn write")
    line = ",".join("x" if g is None else str(g) for g in gens)
    with open(con, "w") as f:
        f.write(f"boot\r\nnvme-test: stress-slots {line}\r\nGUEST-RESULT\r\n")

    def run(*args):
        sys.argv = ["nvme-check.py", *args]
        return nc.main()

    expect("nvme: the guest's patterns and slots", True, run, img, con)
    # Without the guest's slot list the stress area is unexpected data.
    expect("nvme: no console log", False, run, img)
    slot1 = (nc.STRESS_FIRST + 1 * nc.SLOT_SECTORS) * 512  # generation 2
    for what, off, data in [
            ("a byte of a region wrong", 100 * 512 + 77, b"\xAA"),
            ("a byte of a stress slot wrong", slot1 + 600, b"\xAA"),
            ("a byte where nothing was written", 15000 * 512, b"\x01")]:
        with open(img, "rb") as f:
            keep = f.read()
        poke(img, off, data)
        expect(f"nvme: {what}", False, run, img, con)
        with open(img, "wb") as f:
            f.write(keep)
    with open(con, "w") as f:
        f.write("nvme-test: stress-slots 1,2,3\n")
    expect("nvme: a stress-slots line of the wrong length", False, run, img,
           con)


def fs(tmp):
    fc = load("nvme-fs-check")
    root = os.path.join(tmp, "root")
    os.makedirs(os.path.join(root, "dir"))
    for name, data in fc.expected():
        with open(os.path.join(root, name), "wb") as f:
            f.write(data)

    def mkfs(img):
        with open(img, "wb") as f:  # (else mke2fs says it creates it)
            f.truncate(33 << 20)
        subprocess.run(["mke2fs", "-q", "-F", "-t", "ext4", "-d", root,
                        img, "32M"], check=True)

    def mounted(img):  # looks like a copy of a mounted file system
        subprocess.run(["debugfs", "-w", "-R", "feature needs_recovery",
                        img], check=True, capture_output=True)

    img = os.path.join(tmp, "fs.img")
    mkfs(img)
    expect("fs: e2fsck of a clean image", True, fc.fsck, img)
    expect("fs: every file as the guest writes it", True, fc.files, img)
    expect("fs: an image that was never mounted is no crash copy", False,
           fc.snapshot, img)
    mounted(img)
    expect("fs: a crash copy with every fsync'ed file", True, fc.snapshot,
           img)
    with open(os.path.join(root, "over"), "r+b") as f:
        f.seek(fc.OVER_FROM)
        f.write(fc.content(9, fc.OVER_FROM, 4096))  # the overwrite lost
    mkfs(img)
    mounted(img)
    expect("fs: a crash copy without the fsync'ed overwrite", False,
           fc.snapshot, img)
    with open(os.path.join(root, "over"), "wb") as f:
        f.write(dict(fc.expected())["over"])
    with open(os.path.join(root, "big3"), "r+b") as f:
        f.seek(2 << 20)
        f.write(b"\x00")
    os.unlink(os.path.join(root, "dir", "f07"))
    mkfs(img)
    expect("fs: a byte of big3 wrong and dir/f07 missing", False, fc.files,
           img)
    poke(img, 1024, bytes(1024))  # the superblock
    expect("fs: e2fsck of an image without its superblock", False, fc.fsck,
           img)

    dev, con = os.path.join(tmp, "dev.log"), os.path.join(tmp, "con.log")
    for flushes, syncs, want in [(9, 7, True), (7, 7, True), (6, 7, False),
                                 (9, 0, False)]:
        with open(dev, "w") as f:
            f.write("shutdown complete (reads 1, writes 2, flushes "
                    f"{flushes})\n")
        with open(con, "w") as f:
            f.write(f"nvme-fs-test: fsyncs={syncs}\r\n")
        expect(f"fs: {flushes} Flush commands for {syncs} fsyncs", want,
               fc.flushes, dev, con)


def main():
    for tool in ("mke2fs", "e2fsck", "debugfs", "dumpe2fs"):
        if subprocess.run(["sh", "-c", f"command -v {tool}"],
                          capture_output=True).returncode:
            print(f"SKIP: {tool} missing (e2fsprogs)")
            return 77
    with tempfile.TemporaryDirectory() as tmp:
        nvme(tmp)
        fs(tmp)
    print(f"{'FAIL' if FAILS else 'PASS'}: {FAILS} checks went wrong")
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(main())
