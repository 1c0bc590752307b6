#!/usr/bin/env bash
# Runs every test of the workspace (the README's test command).
set -euo pipefail
cd "$(dirname "$0")/.."
# End-to-end tests load built artifacts by path: the guest ICD
# (target/debug/libvenus_icd.so), the macOS-like layer, venus-vtest-server.
# `cargo test` alone leaves cdylibs under target/debug/deps, so build first.
cargo build --workspace
cargo test --workspace --all-targets
# Real VMs: QEMU 10.0 (TCG) in a trixie chroot, stock and our ends swapped
# (tests/vm/run.sh sets up what it needs; about a minute after the first setup).
bash tests/vm/run.sh
