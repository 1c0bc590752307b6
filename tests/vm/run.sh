#!/usr/bin/env bash
# VM tests: real QEMU 10.0 (TCG) with a virtio-gpu Venus device, a Debian guest
# kernel, and Vulkan programs in the guest (vulkaninfo, venus-compute,
# venus-render); both ends swapped between stock
# (Mesa venus, virglrenderer 1.1.0) and ours (guest ICD over DRM, our
# libvirglrenderer.so.1 drop-in). Prints one PASS/FAIL line per configuration.
#
#   tests/vm/run.sh [CONFIG...]        default: all of them, in this order
#
#   mesa-on-stock     stock Mesa venus in the guest, stock QEMU + virglrenderer (control)
#   ours-on-stock     our ICD over DRM, stock QEMU + virglrenderer; also the control
#                     for the alignment check below: stock virglrenderer announces no
#                     granularity, so our ICD uses 4 KiB and some of its host-visible
#                     ranges must be found NOT 16 KiB aligned (else the check is blind)
#   mesa-on-ours      stock Mesa venus, QEMU loading our library
#   ours-on-ours      our ICD, our library; the ICD finds the render node itself
#                     (no VENUS_TRANSPORT; the others set VENUS_TRANSPORT=drm)
#   mesa-on-ours-16k  mesa-on-ours with VENUS_HOST_GRANULARITY=16384 and the
#                     macOS-like layer on the host (the loader's log must show the
#                     layer inserted into the instance our library creates)
#   ours-on-ours-16k  the same for our ICD; also every host-visible allocation the
#                     guest kernel made (debugfs virtio-gpu-host-visible-mm, sampled
#                     while the programs ran) is 16 KiB aligned in offset and size
#
# Environment: VENUS_VM_CHROOT (default <repo>/.cache/vm-chroot), VENUS_VM_TIMEOUT
# (seconds per VM, default 280), VENUS_VM_PROFILE (debug|release, default debug).
# Logs: target/vm/<config>.{serial,qemu,blobs}.log. Needs root (chroot, mounts in a
# private namespace; nothing stays mounted).
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CHROOT="${VENUS_VM_CHROOT:-$REPO/.cache/vm-chroot}"
TIMEOUT="${VENUS_VM_TIMEOUT:-280}"
PROFILE="${VENUS_VM_PROFILE:-debug}"
ALL=(mesa-on-stock ours-on-stock mesa-on-ours ours-on-ours mesa-on-ours-16k ours-on-ours-16k)
CONFIGS=("$@")
((${#CONFIGS[@]})) || CONFIGS=("${ALL[@]}")
OUT="$REPO/target/vm"
die() { echo "vm: error: $*" >&2; exit 2; }
[[ $(id -u) -eq 0 ]] || die "must run as root"
for c in "${CONFIGS[@]}"; do
  [[ " ${ALL[*]} " == *" $c "* ]] || die "unknown configuration '$c' (known: ${ALL[*]})"
done

# 1. The chroot (host side: QEMU, virglrenderer, lavapipe, Xvfb; guest side:
#    kernel, busybox, loader, vulkaninfo, Mesa venus).
bash "$REPO/tests/vm/setup.sh" "$CHROOT"

# 2. Our pieces.
cargo_flags=()
[[ $PROFILE == release ]] && cargo_flags+=(--release)
pkgs=(-p venus-guest-icd)
[[ " ${CONFIGS[*]}" == *-on-ours* ]] && pkgs+=(-p venus-virglrenderer -p venus-macos-like-layer)
(cd "$REPO" && cargo build -q "${cargo_flags[@]}" "${pkgs[@]}" &&
  cargo build -q "${cargo_flags[@]}" -p venus-tests --bin venus-compute --bin venus-render)
T="$REPO/target/$PROFILE"

# 3. Stage them inside the chroot (which is also the guest's root file system).
V="$CHROOT/opt/venus"
rm -rf "$V"
mkdir -p "$V/guest" "$V/host/lib" "$V/host/layer" "$V/boot" "$CHROOT/tmp/venus-vm"
install -m 755 "$REPO/tests/vm/guest-init.sh" "$V/guest/init.sh"
install -m 755 "$T/libvenus_icd.so" "$T/venus-compute" "$T/venus-render" "$V/guest/"
cat >"$V/guest/venus_icd.json" <<'EOF'
{ "file_format_version": "1.0.0",
  "ICD": { "library_path": "/opt/venus/guest/libvenus_icd.so", "api_version": "1.3.269" } }
EOF
if [[ " ${CONFIGS[*]}" == *-on-ours* ]]; then
  install -m 755 "$T/libvirglrenderer.so" "$V/host/lib/libvirglrenderer.so.1"
  install -m 755 "$T/libVkLayer_venus_macos_like.so" "$V/host/layer/"
fi
sed 's|"library_path": *"[^"]*"|"library_path": "./libVkLayer_venus_macos_like.so"|' \
  "$REPO/tests/macos-like-layer/VkLayer_venus_macos_like.json" >"$V/host/layer/VkLayer_venus_macos_like.json"
python3 "$REPO/tests/vm/initramfs.py" "$CHROOT" "$V/boot/initrd.gz"
KERNEL=$(cd "$CHROOT" && ls boot/vmlinuz-* | head -n1)
[[ -n $KERNEL ]] || die "no kernel in $CHROOT/boot"
mkdir -p "$OUT"

# Runs one VM inside the chroot, in a private mount + pid namespace: Xvfb for
# QEMU's GTK display (the only GL display that works on these machines), then
# QEMU until the guest powers off or the timeout hits.
boot_vm() { # NAME DISPLAY APPEND [VAR=VALUE...]
  local name=$1 display=$2 append=$3
  shift 3
  unshare --mount --pid --fork --kill-child --propagation private -- \
    /bin/sh -c '
      d="$1"; shift
      mount -t proc proc "$d/proc"
      mount --rbind /dev "$d/dev"
      exec chroot "$d" "$@"
    ' boot "$CHROOT" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/tmp LC_ALL=C.UTF-8 \
    VK_DRIVER_FILES=/usr/share/vulkan/icd.d/lvp_icd.json "$@" /bin/sh -c '
      name=$1 display=$2 kernel=$3 timeout=$4 append=$5
      log=/tmp/venus-vm/$name
      rm -f "$log".serial.log "$log".qemu.log /tmp/.X11-unix/X"${display#:}" /tmp/.X"${display#:}"-lock
      Xvfb "$display" -screen 0 1280x800x24 -nolisten tcp >"$log".xvfb.log 2>&1 &
      i=0
      while [ ! -S /tmp/.X11-unix/X"${display#:}" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
      DISPLAY=$display timeout -k 5 "$timeout" qemu-system-x86_64 \
        -accel tcg -cpu max -smp 2 -m 1G \
        -object memory-backend-memfd,id=mem0,size=1G,share=on -machine q35,memory-backend=mem0 \
        -nodefaults -no-reboot -monitor none \
        -device virtio-gpu-gl-pci,venus=on,blob=on,hostmem=1G -display gtk,gl=on \
        -fsdev local,id=root,path=/,security_model=none,readonly=on \
        -device virtio-9p-pci,fsdev=root,mount_tag=venusroot \
        -kernel "/$kernel" -initrd /opt/venus/boot/initrd.gz \
        -append "console=ttyS0 panic=-1 loglevel=4 $append" \
        -serial file:"$log".serial.log >"$log".qemu.log 2>&1
      echo "qemu exit $?" >>"$log".qemu.log
    ' vm "$name" "$display" "$KERNEL" "$TIMEOUT" "$append"
}

# Checks a finished VM's serial log; prints the verdict line, returns 0 on PASS.
verdict() { # NAME SECONDS MMCHECK MMEXPECT(aligned|unaligned)
  local name=$1 secs=$2 mmcheck=$3 mmexpect=$4 serial="$OUT/$1.serial.log" why=() c mmnote=
  for c in render-node vulkaninfo compute render; do
    grep -q "^VENUS-VM $c PASS" "$serial" 2>/dev/null || why+=("$c")
  done
  grep -q "^VENUS-VM done" "$serial" 2>/dev/null || why+=("guest did not finish")
  if [[ -n $mmcheck ]]; then
    local total bad
    total=$(grep -c '^VENUS-VM mm ' "$serial" || true)
    bad=$(grep '^VENUS-VM mm ' "$serial" | python3 -c '
import re, sys
g = int(sys.argv[1]); show = sys.argv[2] == "aligned"; bad = 0
for line in sys.stdin:
    m = re.search(r"(0x[0-9a-fA-F]+)-(0x[0-9a-fA-F]+): (\d+): used", line)
    if m is None:
        continue
    s, e = int(m[1], 16), int(m[2], 16)
    if s % g or (e - s) % g:
        bad += 1
        if show:
            print("    unaligned:", line.strip(), file=sys.stderr)
print(bad)' "$mmcheck" "$mmexpect")
    if ((total == 0)); then why+=("no host-visible allocations sampled"); fi
    if [[ $mmexpect == aligned ]] && ((bad > 0)); then
      why+=("$bad of $total host-visible ranges not ${mmcheck}-aligned")
    fi
    if [[ $mmexpect == unaligned ]] && ((bad == 0)); then
      why+=("control: expected some of the $total ranges not ${mmcheck}-aligned at 4 KiB granularity")
    fi
    mmnote=" host-visible ranges: $total sampled, $bad unaligned;"
  fi
  local boot info
  boot=$(grep -m1 '^VENUS-VM boot' "$serial" 2>/dev/null | sed 's/.*uptime=//')
  info=$(grep -E '^VENUS-VM (vulkaninfo|compute|render) ' "$serial" 2>/dev/null | sed 's/^VENUS-VM //' | tr '\n' ';')
  if [[ $name == *-16k ]] && ! grep -q 'Insert instance layer "VK_LAYER_VENUS_macos_like"' "$OUT/$name.qemu.log"; then
    why+=("the macOS-like layer was not loaded on the host")
  fi
  if ((${#why[@]} == 0)); then
    echo "PASS $name (${secs}s wall, guest booted in ${boot:-?}s;${mmnote:-} $info)"
    return 0
  fi
  echo "FAIL $name: $(IFS=,; echo "${why[*]}") (${secs}s wall; logs: $OUT/$name.*.log)"
  grep -E '^VENUS-VM' "$serial" 2>/dev/null | sed 's/^/    /' | head -n 20
  return 1
}

# One VM run of configuration $1 (display number from $2); prints its verdict,
# returns 0 on PASS. Sets HUNG=1 when the guest never finished within the timeout.
attempt() {
  local c=$1 n=$2 append env mmcheck mmexpect start secs f
  case $c in
    mesa-*) append="venus.guest=mesa" ;;
    ours-*) append="venus.guest=ours" ;;
  esac
  env=()
  mmcheck=
  mmexpect=aligned
  case $c in
    *-on-ours*) env+=(LD_LIBRARY_PATH=/opt/venus/host/lib VENUS_BLOB_LOG=/tmp/venus-vm/$c.blobs.log RUST_LOG=warn) ;;
  esac
  case $c in
    *-16k)
      env+=(VENUS_HOST_GRANULARITY=16384 VENUS_HOST_LAYERS=VK_LAYER_VENUS_macos_like
        VK_LAYER_PATH=/opt/venus/host/layer)
      [[ $c == ours-* ]] && { mmcheck=16384; append+=" venus.mmcheck=1"; }
      env+=(VK_LOADER_DEBUG=layer)
      ;;
    ours-on-stock) mmcheck=16384 mmexpect=unaligned append+=" venus.mmcheck=1" ;;
    ours-on-ours) append+=" venus.transport=auto" ;;
  esac
  rm -f "$CHROOT/tmp/venus-vm/$c".* "$OUT/$c".*.log
  start=$(date +%s)
  boot_vm "$c" ":$((90 + n))" "$append" "${env[@]}" || true
  secs=$(($(date +%s) - start))
  for f in "$CHROOT/tmp/venus-vm/$c".*; do
    [[ -e $f ]] && cp "$f" "$OUT/"
  done
  if [[ -f $OUT/$c.qemu.log ]] && grep -v '^\(LAYER\|INFO\|DEBUG\)' "$OUT/$c.qemu.log" | grep -qiE 'warn|error'; then
    echo "    QEMU said: $(grep -v '^\(LAYER\|INFO\|DEBUG\)' "$OUT/$c.qemu.log" | grep -iE 'warn|error' | sort -u | head -n 5 | tr '\n' '|')"
  fi
  HUNG=0
  if ! grep -q "^VENUS-VM done" "$OUT/$c.serial.log" 2>/dev/null && ((secs >= TIMEOUT)); then
    HUNG=1
  fi
  verdict "$c" "$secs" "$mmcheck" "$mmexpect"
}

# A guest that hangs until the timeout is run once more: mesa-on-ours-16k hung
# once in about 35 runs (QEMU stopped answering the guest's control queue; not
# reproduced since, cause unknown). The hung attempt's logs are kept as
# hung.<config>.*.log and the summary counts retries; a second failure of any
# kind fails the configuration.
failed=0
retried=0
n=0
for c in "${CONFIGS[@]}"; do
  n=$((n + 1))
  rm -f "$OUT/hung.$c".*.log
  if attempt "$c" "$n"; then continue; fi
  if ((HUNG)); then
    for f in "$OUT/$c".*.log; do
      mv "$f" "$OUT/hung.$(basename "$f")"
    done
    echo "RETRY $c: the guest hung until the ${TIMEOUT}s timeout; running it once more (logs of the hung run: $OUT/hung.$c.*.log)"
    if attempt "$c" "$n"; then
      retried=$((retried + 1))
      continue
    fi
  fi
  failed=$((failed + 1))
done
((retried == 0)) || echo "vm: $retried configuration(s) passed only on a second run after a hang"
echo "vm: $((${#CONFIGS[@]} - failed)) of ${#CONFIGS[@]} configurations passed"
((failed == 0))
