#!/usr/bin/env python3
"""Writes the guest's initramfs (a gzip'd newc cpio): static busybox, the 9p
modules (decompressed: busybox insmod takes plain .ko files) and an /init that
mounts the 9p root the VM exports (the trixie chroot itself, read-only) and
switches to /opt/venus/guest/init.sh there.

    initramfs.py CHROOT OUT.cpio.gz
"""
import gzip
import lzma
import os
import stat
import sys

INIT = r"""#!/bin/busybox sh
/bin/busybox mkdir -p /proc /dev /newroot
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t devtmpfs dev /dev
for m in netfs 9pnet 9pnet_virtio 9p; do
  /bin/busybox insmod /lib/modules/$m.ko || echo "venus-initramfs: insmod $m failed"
done
if ! /bin/busybox mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=1048576,cache=loose venusroot /newroot; then
  echo "venus-initramfs: cannot mount the 9p root"
  /bin/busybox poweroff -f
fi
/bin/busybox mount --move /dev /newroot/dev
/bin/busybox umount /proc
exec /bin/busybox switch_root /newroot /opt/venus/guest/init.sh
"""

# Load order: each after what it depends on (modules.dep of the Debian kernel).
MODULES = ["netfs", "9pnet", "9pnet_virtio", "9p"]


class Cpio:
    def __init__(self):
        self.out = bytearray()
        self.ino = 1

    def add(self, name, mode, data=b""):
        name_b = name.encode() + b"\0"
        fields = [self.ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(name_b), 0]
        self.ino += 1
        hdr = b"070701" + b"".join(b"%08X" % f for f in fields)
        self.out += hdr + name_b
        self.out += b"\0" * (-len(self.out) % 4)
        self.out += data
        self.out += b"\0" * (-len(self.out) % 4)

    def finish(self):
        self.add("TRAILER!!!", 0)
        return bytes(self.out)


def main():
    chroot, out = sys.argv[1], sys.argv[2]
    kernels = sorted(os.listdir(os.path.join(chroot, "lib/modules")))
    if len(kernels) != 1:
        sys.exit(f"initramfs: expected one kernel in {chroot}/lib/modules, found {kernels}")
    kdir = os.path.join(chroot, "lib/modules", kernels[0])
    paths = {}
    for line in open(os.path.join(kdir, "modules.dep")):
        path = line.split(":", 1)[0]
        base = os.path.basename(path).split(".ko")[0].replace("-", "_")
        paths[base] = path
    c = Cpio()
    for d in ["bin", "dev", "proc", "newroot", "lib", "lib/modules"]:
        c.add(d, stat.S_IFDIR | 0o755)
    with open(os.path.join(chroot, "usr/bin/busybox"), "rb") as f:
        c.add("bin/busybox", stat.S_IFREG | 0o755, f.read())
    c.add("bin/sh", stat.S_IFLNK | 0o777, b"busybox")
    c.add("init", stat.S_IFREG | 0o755, INIT.encode())
    for m in MODULES:
        path = paths.get(m.replace("-", "_"))
        if path is None:
            sys.exit(f"initramfs: module {m} not in modules.dep")
        data = open(os.path.join(kdir, path), "rb").read()
        if path.endswith(".xz"):
            data = lzma.decompress(data)
        elif path.endswith(".zst"):
            sys.exit("initramfs: zstd-compressed modules are not handled")
        c.add(f"lib/modules/{m}.ko", stat.S_IFREG | 0o644, data)
    tmp = out + ".tmp"
    with gzip.open(tmp, "wb", compresslevel=1) as f:
        f.write(c.finish())
    os.replace(tmp, out)


main()
