#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each, one after the other, and prints per
# target: executions, executions/s, corpus size, crashes (new files in artifacts/).
#
#   bash tests/fuzz/run.sh 60              # all targets, 60 s each
#   bash tests/fuzz/run.sh 60 ring_spans   # only the named targets
#
# Needs cargo-fuzz (`cargo install cargo-fuzz`). Stable Rust is enough:
# RUSTC_BOOTSTRAP=1 lets cargo-fuzz pass its nightly-only flags. Sanitizer:
# FUZZ_SANITIZER (default address; `none` for a faster, uninstrumented build).
# Extra libFuzzer flags: FUZZ_ARGS (e.g. FUZZ_ARGS="-jobs=2 -workers=2").
# Not part of CI; fuzz crates are excluded from the workspace.
set -uo pipefail

secs=${1:?usage: run.sh SECONDS [TARGET...]}
shift
root=$(cd "$(dirname "$0")/../.." && pwd)
san=${FUZZ_SANITIZER:-address}
export RUSTC_BOOTSTRAP=1

# crate dir : target
all=(
  "protocol/fuzz:decode_command"
  "protocol/fuzz:vtest_message"
  "protocol/fuzz:ring_spans"
  "host-translator/fuzz:host_context"
  "host-translator/fuzz:ring_consumer"
  "host-translator/virgl-abi/fuzz:virgl_abi"
)

want() {
  [ $# -eq 0 ] && return 0
  local t=$1; shift
  for w in "${selected[@]}"; do [ "$w" = "$t" ] && return 0; done
  return 1
}
selected=("$@")

logdir=$(mktemp -d)
summary=()
status=0
for entry in "${all[@]}"; do
  dir=${entry%%:*}
  target=${entry##*:}
  if [ ${#selected[@]} -gt 0 ] && ! want "$target"; then continue; fi
  cd "$root/$dir" || exit 1
  mkdir -p "corpus/$target" "artifacts/$target"
  before=$(ls "artifacts/$target" | wc -l)
  echo "== $target ($dir, ${secs}s, sanitizer $san)"
  if ! cargo fuzz build -s "$san" "$target" >"$logdir/$target.build" 2>&1; then
    cat "$logdir/$target.build"
    summary+=("$(printf '%-16s build failed' "$target")")
    status=1
    continue
  fi
  # shellcheck disable=SC2086
  cargo fuzz run -s "$san" "$target" -- \
    -max_total_time="$secs" -print_final_stats=1 -detect_leaks=0 -timeout=30 \
    -rss_limit_mb=4096 ${FUZZ_ARGS:-} >"$logdir/$target.log" 2>&1
  rc=$?
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$logdir/$target.log" | grep -o '[0-9]*$' | tail -1)
  rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$logdir/$target.log" | grep -o '[0-9]*$' | tail -1)
  corpus=$(ls "corpus/$target" | wc -l)
  after=$(ls "artifacts/$target" | wc -l)
  crashes=$((after - before))
  if [ "$rc" -ne 0 ] || [ "$crashes" -gt 0 ]; then
    status=1
    grep -E 'panicked at|ERROR: |SUMMARY: ' "$logdir/$target.log" | head -5
    ls -t "artifacts/$target" | head -"$((crashes > 0 ? crashes : 1))" | sed "s|^|  new artifact: $dir/artifacts/$target/|"
  fi
  summary+=("$(printf '%-16s execs %-10s exec/s %-8s corpus %-6s crashes %s (exit %s)' \
    "$target" "${execs:-?}" "${rate:-?}" "$corpus" "$crashes" "$rc")")
done
echo
echo "== summary (logs in $logdir)"
printf '%s\n' "${summary[@]}"
exit $status
