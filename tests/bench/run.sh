#!/usr/bin/env bash
# Benchmarks side by side (issue 8): builds release binaries, runs every column,
# prints the table (figure and ratio to native lavapipe per cell, targets met or
# missed), writes target/bench/results.json, results.md and ratios.png.
#
#   bash tests/bench/run.sh [venus-bench compare options]
#
# Options are passed to `venus-bench compare` (see its --help): --rounds R (5),
# --runs N (7 per round), --run-ms MS (25), --vulkaninfo-runs N (3 per round),
# --elements N, --out DIR (target/bench), --no-virgl, --quick (a smoke test).
#
# Columns: native lavapipe; our ICD on our host in-process and over vtest; stock
# Mesa venus on our host (vtest); where tests/virgl/setup.sh has made its chroot and
# we are root, our ICD and stock Mesa venus on stock virglrenderer 1.1.0 (only the
# rows that map no memory, and vulkaninfo). Needs Debian's mesa-vulkan-drivers
# (25.0.7), libvulkan1 and vulkan-tools, as tests/demo.sh does. The plot needs
# python3 with matplotlib; if it is missing it is installed from PyPI into a
# virtualenv under target/bench/venv (if that fails, the PNG is skipped).
#
# Not part of `cargo test` or CI: the figures are noisy on a shared 2-core machine;
# run it on an otherwise idle machine.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$REPO"
TARGET="${CARGO_TARGET_DIR:-$REPO/target}"

out="$TARGET/bench"
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  if [[ ${args[i]} == --out && $((i + 1)) -lt ${#args[@]} ]]; then
    out="${args[i + 1]}"
  fi
done
case " ${args[*]-} " in
  *" --out "*) ;;
  *) args+=(--out "$out") ;;
esac

for tool in vulkaninfo python3; do
  command -v "$tool" >/dev/null || echo "bench: warning: $tool not found" >&2
done

echo "bench: building release binaries" >&2
cargo build --release -p venus-tests -p venus-host-translator -p venus-guest-icd >&2

"$TARGET/release/venus-bench" compare "${args[@]}"

# The plot.
py=python3
if ! python3 -c 'import matplotlib' 2>/dev/null; then
  venv="$TARGET/bench/venv"
  if [[ ! -x $venv/bin/python ]] || ! "$venv/bin/python" -c 'import matplotlib' 2>/dev/null; then
    echo "bench: installing matplotlib into $venv (PyPI)" >&2
    if ! { python3 -m venv "$venv" && "$venv/bin/pip" install --quiet matplotlib; } >&2; then
      echo "bench: warning: could not install matplotlib; no PNG" >&2
      exit 0
    fi
  fi
  py="$venv/bin/python"
fi
"$py" "$REPO/tests/bench/plot.py" "$out/results.json" "$out/ratios.png"
echo "bench: wrote $out/results.json, $out/results.md, $out/ratios.png" >&2
