#!/usr/bin/env bash
# Builds venus-rs's libvirglrenderer.so.1 and installs it under DESTDIR:
#   DESTDIR/lib/libvirglrenderer.so.1 (+ libvirglrenderer.so symlink)
#   DESTDIR/lib/pkgconfig/virglrenderer.pc
#   DESTDIR/include/virgl/virglrenderer.h
# Usage: install.sh DESTDIR [release|debug]   (or PROFILE=debug; default release)
# Then run QEMU with LD_LIBRARY_PATH=DESTDIR/lib.
set -euo pipefail
if [ $# -lt 1 ]; then
    echo "usage: $0 DESTDIR [release|debug]" >&2
    exit 2
fi
dest=$1
profile=${2:-${PROFILE:-release}}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
case "$profile" in
    release) flag=--release ;;
    debug) flag= ;;
    *) echo "profile must be release or debug, not $profile" >&2; exit 2 ;;
esac
(cd "$root" && cargo build $flag -p venus-virglrenderer)
target=${CARGO_TARGET_DIR:-$root/target}
mkdir -p "$dest"
dest=$(cd "$dest" && pwd)
install -d "$dest/lib/pkgconfig" "$dest/include/virgl"
install -m 0755 "$target/$profile/libvirglrenderer.so" "$dest/lib/libvirglrenderer.so.1"
ln -sf libvirglrenderer.so.1 "$dest/lib/libvirglrenderer.so"
sed "s|@PREFIX@|$dest|" "$here/virglrenderer.pc.in" > "$dest/lib/pkgconfig/virglrenderer.pc"
install -m 0644 "$here/virglrenderer.h" "$dest/include/virgl/virglrenderer.h"
echo "installed libvirglrenderer.so.1 ($profile) under $dest"
