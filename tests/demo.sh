#!/usr/bin/env bash
# The main job: a Vulkan program running through our stack. Our
# venus-vtest-server runs Venus commands on the host's Vulkan driver (lavapipe
# here); first stock Mesa 25.0.7's venus guest driver (libvulkan_virtio.so, from
# Debian's mesa-vulkan-drivers) talks vtest to it, then our own guest ICD
# (libvenus_icd.so). Each shows vulkaninfo --summary and runs the project's
# compute program (results checked on the CPU).
#
# Needs: mesa-vulkan-drivers 25.0.7 (bookworm-backports), libvulkan1, vulkan-tools.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p venus-host-translator --bin venus-vtest-server
cargo build --release -q -p venus-tests --bin venus-compute
cargo build --release -q -p venus-guest-icd
dir=$(mktemp -d)
sock="$dir/vtest.sock"
VK_DRIVER_FILES=/usr/share/vulkan/icd.d/lvp_icd.json VENUS_LOG=${VENUS_LOG:-info} \
  target/release/venus-vtest-server --socket-path "$sock" 2> "$dir/server.log" &
server=$!
trap 'kill -TERM $server 2>/dev/null; wait $server 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 200); do [ -S "$sock" ] && break; sleep 0.05; done
guest=(env VK_DRIVER_FILES=/usr/share/vulkan/icd.d/virtio_icd.json VN_DEBUG=vtest VTEST_SOCKET_NAME="$sock")
echo "== vulkaninfo --summary through Mesa venus -> venus-vtest-server -> lavapipe"
"${guest[@]}" vulkaninfo --summary 2>/dev/null | sed -n '/^Devices:/,$p'
echo "== venus-compute through the same stack"
"${guest[@]}" target/release/venus-compute --elements 1048576 --iterations 3 --quiet
ours=(env LD_LIBRARY_PATH="$PWD/target/release" VK_DRIVER_FILES="$PWD/packaging/venus_icd.json" \
  VENUS_TRANSPORT=vtest VTEST_SOCKET_NAME="$sock")
echo "== vulkaninfo --summary through our ICD (libvenus_icd.so) -> venus-vtest-server -> lavapipe"
"${ours[@]}" vulkaninfo --summary 2>/dev/null | sed -n '/^Devices:/,$p'
echo "== venus-compute through our ICD (Vulkan 1.3)"
"${ours[@]}" target/release/venus-compute --elements 1048576 --iterations 3 --quiet
echo "== server log"
cat "$dir/server.log"
