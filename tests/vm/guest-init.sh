#!/bin/sh
# PID 1 of the test guest (after the initramfs switched to the read-only 9p root).
# Reads what to run from the kernel command line, prints one
#   VENUS-VM <check> PASS|FAIL [detail]
# line per check on the console (ttyS0), then powers the VM off.
#
#   venus.guest=mesa|ours   which Vulkan driver runs in the guest
#   venus.mmcheck=1         sample the kernel's virtio-gpu-host-visible-mm while the
#                           programs run and print its used ranges (run.sh checks
#                           their alignment)
#   venus.elements=N        venus-compute --elements N
#   venus.transport=auto    our ICD picks its transport itself (default: drm,
#                           through VENUS_TRANSPORT=drm)
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t tmpfs tmp /tmp
mount -t tmpfs run /run
mount -t tmpfs vartmp /var/tmp
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
export HOME=/tmp XDG_CACHE_HOME=/tmp/cache
t0=$(cut -d' ' -f1 /proc/uptime)
say() { echo "VENUS-VM $*"; }
finish() {
  say done "uptime $(cut -d' ' -f1 /proc/uptime)"
  sync
  echo o >/proc/sysrq-trigger
  sleep 10
}
guest=mesa; mmcheck=; elements=1048576; transport=drm
for arg in $(cat /proc/cmdline); do
  case $arg in
    venus.guest=*) guest=${arg#venus.guest=} ;;
    venus.mmcheck=*) mmcheck=${arg#venus.mmcheck=} ;;
    venus.elements=*) elements=${arg#venus.elements=} ;;
    venus.transport=*) transport=${arg#venus.transport=} ;;
  esac
done
say boot "guest=$guest kernel=$(uname -r) uptime=$t0"

modprobe virtio-gpu || say modprobe FAIL
i=0
while [ ! -e /dev/dri/renderD128 ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
if [ ! -e /dev/dri/renderD128 ]; then
  say render-node FAIL "no /dev/dri/renderD128"
  finish
fi
# On PCI the node's device is the virtio-pci function; virtio_gpu drives its child.
say render-node PASS "pci=$(basename "$(readlink /sys/class/drm/renderD128/device/driver)")" \
  "virtio=$(basename "$(readlink /sys/class/drm/renderD128/device/virtio*/driver 2>/dev/null)")"

case $guest in
  mesa) export VK_DRIVER_FILES=/usr/share/vulkan/icd.d/virtio_icd.json; want="Virtio-GPU Venus" ;;
  ours)
    export VK_DRIVER_FILES=/opt/venus/guest/venus_icd.json; want="llvmpipe"
    [ "$transport" = auto ] || export VENUS_TRANSPORT="$transport"
    ;;
  *) say config FAIL "unknown venus.guest=$guest"; finish ;;
esac

# With venus.mmcheck, sample the kernel's host-visible allocations while the
# programs run (they are freed when a program exits); run.sh checks them.
sampler=
mm=/sys/kernel/debug/dri/0/virtio-gpu-host-visible-mm
if [ -n "$mmcheck" ]; then
  if [ -r $mm ]; then
    (while :; do grep ': used' $mm >>/tmp/mm.log 2>/dev/null; sleep 0.05; done) &
    sampler=$!
  else
    say host-visible-mm FAIL "$mm unreadable"
  fi
fi

s=$(cut -d' ' -f1 /proc/uptime)
if vulkaninfo >/tmp/vulkaninfo.txt 2>/tmp/vulkaninfo.err; then rc=0; else rc=$?; fi
e=$(cut -d' ' -f1 /proc/uptime)
name=$(grep -m1 'deviceName' /tmp/vulkaninfo.txt | sed 's/.*= //')
api=$(grep -m1 'apiVersion' /tmp/vulkaninfo.txt | sed 's/.*= //')
lines=$(wc -l </tmp/vulkaninfo.txt)
case "$rc:$name" in
  0:*"$want"*) say vulkaninfo PASS "device=\"$name\" api=$api lines=$lines seconds=$s..$e" ;;
  *) say vulkaninfo FAIL "exit=$rc device=\"$name\" lines=$lines"; tail -n 15 /tmp/vulkaninfo.err; tail -n 5 /tmp/vulkaninfo.txt ;;
esac

s=$(cut -d' ' -f1 /proc/uptime)
if /opt/venus/guest/venus-compute --elements "$elements" >/tmp/compute.txt 2>&1; then rc=0; else rc=$?; fi
e=$(cut -d' ' -f1 /proc/uptime)
if [ $rc -eq 0 ] && tail -n 1 /tmp/compute.txt | grep -qx PASS; then
  say compute PASS "elements=$elements seconds=$s..$e $(grep -m1 -i 'device' /tmp/compute.txt)"
else
  say compute FAIL "exit=$rc"
  tail -n 25 /tmp/compute.txt
fi

# The offscreen renderer: graphics commands, every pixel checked on the CPU.
s=$(cut -d' ' -f1 /proc/uptime)
if /opt/venus/guest/venus-render --quiet >/tmp/render.txt 2>&1; then rc=0; else rc=$?; fi
e=$(cut -d' ' -f1 /proc/uptime)
if [ $rc -eq 0 ] && tail -n 1 /tmp/render.txt | grep -qx PASS; then
  say render PASS "seconds=$s..$e"
else
  say render FAIL "exit=$rc"
  tail -n 25 /tmp/render.txt
fi

if [ -n "$sampler" ]; then
  kill "$sampler" 2>/dev/null
  wait "$sampler" 2>/dev/null
  grep ': used' $mm >>/tmp/mm.log 2>/dev/null
  n=$(sort -u /tmp/mm.log | wc -l)
  say host-visible-mm-samples "$n distinct used ranges"
  sort -u /tmp/mm.log | sed 's/^/VENUS-VM mm /'
fi
finish
