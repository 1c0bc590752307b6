#!/usr/bin/env bash
# Creates (or reuses) the trixie chroot the VM tests run in: QEMU 10.0 with the
# virtio-gpu-gl device and the GTK display (under Xvfb), stock virglrenderer
# 1.1.0, lavapipe and the Vulkan loader for the host side; a Debian kernel,
# busybox and the guest's Vulkan userland (loader, vulkaninfo, stock Mesa venus).
# The same tree is the guest's root file system (exported read-only over 9p).
#
#   tests/vm/setup.sh [DIR]     DIR defaults to $VENUS_VM_CHROOT, else
#                                <repo>/.cache/vm-chroot (git-ignored)
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
DIR="${1:-${VENUS_VM_CHROOT:-$REPO/.cache/vm-chroot}}"
export VENUS_CHROOT_EXTRA_PACKAGES="qemu-system-x86 qemu-system-gui qemu-system-modules-opengl xvfb xauth libegl1 libgl1 libgles2 libgl1-mesa-dri libegl-mesa0 vulkan-tools linux-image-amd64 busybox-static kmod"
exec bash "$REPO/tests/virgl/setup.sh" "$DIR"
