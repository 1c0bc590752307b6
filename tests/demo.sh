#!/usr/bin/env bash
# The main job: a Vulkan program running through our stack. Stock Mesa 25.0.7's
# venus guest driver (libvulkan_virtio.so, from Debian's mesa-vulkan-drivers)
# talks vtest to our venus-vtest-server, which runs the commands on the host's
# Vulkan driver (lavapipe here). Shows vulkaninfo --summary and runs the project's
# compute program (results checked on the CPU).
#
# Needs: mesa-vulkan-drivers 25.0.7 (bookworm-backports), libvulkan1, vulkan-tools.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p venus-host-translator --bin venus-vtest-server
cargo build --release -q -p venus-tests --bin venus-compute
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
echo "== server log"
cat "$dir/server.log"
