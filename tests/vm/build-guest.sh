#!/bin/bash
# Build the test guest: Debian's stock kernel + a busybox initramfs.
#
#   build-guest.sh OUTDIR [GUEST_PROG.c ...]
#
# Produces OUTDIR/vmlinuz, OUTDIR/initrd.img and OUTDIR/modules.txt (which
# wanted modules are built-in / loadable / absent). The kernel package is
# downloaded and extracted into OUTDIR/cache once; later runs only rebuild
# the initramfs (a second or two). tests/vm/guest/pci-list.c is always
# built; each extra C source becomes /bin/<basename without .c>.
#
# Environment:
#   KERNEL_PKG     kernel package (default: what linux-image-amd64 depends on)
#   GUEST_MODULES  module names to load at boot, in this order
#
# A second image, OUTDIR/initrd-fs.img, is initrd.img with one more
# archive appended (the kernel unpacks both, the second over the first)
# that holds what only the file system test needs (2.3 MB gzipped), so
# that no other boot unpacks it:
#   GUEST_LAZY_MODULES  module names (with their dependencies) copied in,
#                  not loaded at boot: the test loads them with modprobe
#                  (default: crc32c_generic ext4)
#   GUEST_TOOLS    host programs copied in with the shared libraries ldd
#                  names (the guest runs the host's Debian 12 binaries;
#                  default: e2fsprogs' mke2fs and e2fsck)
#   GUEST_FS_PROGS basenames of the guest programs that go there rather
#                  than into initrd.img (default: nvme-fs-test)
#   GUEST_CFLAGS   extra flags for the static guest programs (e.g. -I...)
set -eu

here=$(cd "$(dirname "$0")" && pwd)

if [ $# -lt 1 ]; then
    echo "usage: $0 OUTDIR [GUEST_PROG.c ...]" >&2
    exit 2
fi
mkdir -p "$1"
out=$(cd "$1" && pwd)
shift
cache=$out/cache

# Modules that tests may drive from inside the guest; missing ones are
# reported in modules.txt, not fatal (kernels differ between point releases).
GUEST_MODULES=${GUEST_MODULES:-"gpio-pci-idio-16 gpio-idio-16 gpio-pcie-idio-24 uio uio_pci_generic vfio vfio_iommu_type1 vfio-pci nvme-core nvme"}
# ext4 (and crc32c, which it asks the crypto API for with metadata_csum) for
# the nvme file system test; loaded by that test only, so other boots don't
# pay for them.
GUEST_LAZY_MODULES=${GUEST_LAZY_MODULES-"crc32c_generic ext4"}
GUEST_TOOLS=${GUEST_TOOLS-"/sbin/mke2fs /sbin/e2fsck"}
GUEST_FS_PROGS=${GUEST_FS_PROGS-"nvme-fs-test"}

"$here/install-deps.sh"

log() { echo "build-guest: $*" >&2; }

# --- 1. Kernel package, cached -------------------------------------------
resolve_kernel_pkg() {
    # linux-image-amd64 is a metapackage; we need the versioned image it
    # depends on, because apt-get download does not follow dependencies.
    apt-cache depends linux-image-amd64 2>/dev/null |
        sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*-amd64\)$/\1/p' | head -n1
}

# A different explicit KERNEL_PKG invalidates the cache; otherwise keep
# whatever was extracted first (stable across Debian point releases).
if [ -n "${KERNEL_PKG:-}" ] && [ -f "$cache/.extracted" ] &&
    [ "$(cat "$cache/.extracted")" != "$KERNEL_PKG" ]; then
    rm -f "$cache/.extracted"
fi
if [ ! -f "$cache/.extracted" ]; then
    pkg=${KERNEL_PKG:-$(resolve_kernel_pkg)}
    if [ -z "$pkg" ]; then
        # Fresh machine: package lists not downloaded yet.
        apt-get update -qq
        pkg=$(resolve_kernel_pkg)
    fi
    [ -n "$pkg" ] || { log "cannot resolve linux-image-amd64"; exit 1; }
    log "downloading $pkg"
    rm -rf "$cache" "$out/deb"
    mkdir -p "$out/deb"
    # Sandbox::User=root: the _apt user cannot write into an arbitrary dir.
    (cd "$out/deb" && apt-get download -q -o APT::Sandbox::User=root "$pkg" >/dev/null)
    # Extract, do not install: the host kernel and /boot stay untouched.
    dpkg-deb -x "$out"/deb/*.deb "$cache"
    rm -rf "$out/deb"
    kver=$(ls "$cache/lib/modules" | head -n1)
    # The .deb ships no modules.dep (postinst runs depmod); make one.
    depmod -b "$cache" "$kver"
    echo "$pkg" >"$cache/.extracted"
fi

kver=$(ls "$cache/lib/modules" | head -n1)
mdir=$cache/lib/modules/$kver
cp "$cache/boot/vmlinuz-$kver" "$out/vmlinuz"
cp "$cache/boot/config-$kver" "$out/config"

# --- 2. Module closure from modules.dep ----------------------------------
# modules.dep lists each module's full transitive dependencies, ordered so
# that loading them in reverse works; dedupe while keeping first occurrence.
status=$out/modules.txt
: >"$status"
order="" lazy="" lazy_order=""
norm() { echo "$1" | tr '-' '_'; }

for want in $GUEST_MODULES - $GUEST_LAZY_MODULES; do
    if [ "$want" = - ]; then
        lazy=1
        continue
    fi
    n=$(norm "$want")
    line=$(awk -F: -v n="$n" '{
            b = $1; sub(/.*\//, "", b); sub(/\.ko.*$/, "", b); gsub(/-/, "_", b)
            if (b == n) { print; exit }
        }' "$mdir/modules.dep")
    if [ -n "$line" ]; then
        path=${line%%:*}
        deps=${line#*:}
        rev=""
        for d in $deps; do rev="$d $rev"; done
        echo "$want: module $path${deps:+ (deps:$deps)}${lazy:+ (not loaded at boot)}" >>"$status"
        for p in $rev $path; do
            case " $order $lazy_order " in
            *" $p "*) ;;
            *) if [ -n "$lazy" ]; then lazy_order="$lazy_order $p"; else order="$order $p"; fi ;;
            esac
        done
    elif awk -v n="$n" '{ b = $0; sub(/.*\//, "", b); sub(/\.ko.*$/, "", b);
            gsub(/-/, "_", b); if (b == n) f = 1 } END { exit !f }' \
            "$mdir/modules.builtin"; then
        echo "$want: built-in" >>"$status"
    else
        echo "$want: absent" >>"$status"
    fi
done

# --- 3. Staging tree -----------------------------------------------------
root=$out/root
rm -rf "$root"
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,etc,proc,sys,dev,tmp,run,root}
mkdir -p "$root/lib/modules/$kver"

cp /bin/busybox "$root/bin/busybox"
busybox --list-full | while read -r applet; do
    [ -e "$root/$applet" ] || ln -s /bin/busybox "$root/$applet"
done

# Files for initrd-fs.img only, as ./PATH (the directories stay in both).
fslist=$out/fs-files.txt
: >"$fslist"
: >"$root/etc/modules.order"
for p in $order $lazy_order; do
    dst=$root/lib/modules/$kver/${p%%.ko*}.ko
    mkdir -p "$(dirname "$dst")"
    # busybox insmod is built without compressed-module support: store plain .ko.
    case "$p" in
    *.ko) cp "$mdir/$p" "$dst" ;;
    *.ko.xz) xz -dc "$mdir/$p" >"$dst" ;;
    *.ko.zst) zstd -qdc "$mdir/$p" >"$dst" ;;
    *.ko.gz) gzip -dc "$mdir/$p" >"$dst" ;;
    *) log "unknown module format: $p"; exit 1 ;;
    esac
    case " $order " in
    *" $p "*) echo "${p%%.ko*}.ko" >>"$root/etc/modules.order" ;;
    *) echo "./lib/modules/$kver/${p%%.ko*}.ko" >>"$fslist" ;;
    esac
done
# Lets busybox modprobe work for ad-hoc loads of the modules we carry.
cp "$mdir/modules.builtin" "$root/lib/modules/$kver/"
depmod -b "$root" "$kver" 2>/dev/null || true

# Host tools with their libraries (the loader finds them in the multiarch
# directories without an ld.so.cache). A tool replaces busybox's applet of
# that name: remove the symlink first, or cp would overwrite busybox itself.
for tool in $GUEST_TOOLS; do
    [ -x "$tool" ] || { log "missing host tool $tool (tests/vm/install-deps.sh)"; exit 1; }
    rm -f "$root$tool"
    cp -L "$tool" "$root$tool"
    echo ".$tool" >>"$fslist"
    ldd "$tool" | awk '/=> \// { print $3 } /^[ \t]*\// { print $1 }' |
        while read -r lib; do
            mkdir -p "$root$(dirname "$lib")"
            [ -e "$root$lib" ] || { cp -L "$lib" "$root$lib" && echo ".$lib" >>"$fslist"; }
        done
    echo "$tool: host binary, $(ldd "$tool" | grep -c '=> /') libraries (initrd-fs.img)" >>"$status"
done
if [ -n "$GUEST_TOOLS" ] && [ -f /etc/mke2fs.conf ]; then
    cp /etc/mke2fs.conf "$root/etc/"
    echo ./etc/mke2fs.conf >>"$fslist"
fi

cp "$here/init" "$root/init"
chmod 755 "$root/init"
# The kernel opens /dev/console before /init runs; without the node the
# first messages are lost (init re-opens it after mounting devtmpfs).
mknod -m 600 "$root/dev/console" c 5 1 2>/dev/null || true
mknod -m 666 "$root/dev/null" c 1 3 2>/dev/null || true

# Guest test programs: static so they need nothing from the initramfs.
for src in "$here/guest/pci-list.c" "$@"; do
    name=$(basename "$src" .c)
    # shellcheck disable=SC2086 # GUEST_CFLAGS is a flag list
    gcc -static -O2 -Wall ${GUEST_CFLAGS:-} -o "$root/bin/$name" "$src"
    strip "$root/bin/$name"
    case " $GUEST_FS_PROGS " in *" $name "*) echo "./bin/$name" >>"$fslist" ;; esac
done

# --- 4. initramfs ----------------------------------------------------------
# initrd.img: everything but the files in fs-files.txt; initrd-fs.img:
# initrd.img followed by an archive of those (with the module index, which
# then knows the lazy modules' dependencies too).
LC_ALL=C sort -u "$fslist" -o "$fslist"
(cd "$root" && find . | LC_ALL=C sort | LC_ALL=C comm -23 - "$fslist" |
    cpio -o -H newc -R 0:0 --quiet) | gzip -6 >"$out/initrd.img.tmp"
(cd "$root" && { cat "$fslist"; find "./lib/modules/$kver" -maxdepth 1 -name 'modules.*'; } |
    cpio -o -H newc -R 0:0 --quiet) | gzip -6 >"$out/initrd-fs.part"
cat "$out/initrd.img.tmp" "$out/initrd-fs.part" >"$out/initrd-fs.img.tmp"
rm -f "$out/initrd-fs.part"
mv "$out/initrd-fs.img.tmp" "$out/initrd-fs.img"
mv "$out/initrd.img.tmp" "$out/initrd.img"

log "kernel $kver ($(cat "$cache/.extracted")), initrd $(du -h "$out/initrd.img" | cut -f1)," \
    "initrd-fs $(du -h "$out/initrd-fs.img" | cut -f1)"
sed 's/^/build-guest:   /' "$status" >&2
