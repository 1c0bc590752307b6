#!/usr/bin/env bash
# Creates (or reuses) a Debian trixie chroot holding stock virglrenderer 1.1.0's
# vtest server (`virgl-server`) and lavapipe, so tests can run the stock venus
# host next to ours. Stock virgl-server needs glibc 2.38, which bookworm lacks.
#
#   tests/virgl/setup.sh [DIR]      DIR defaults to $VIRGL_CHROOT, else
#                                    <repo>/.cache/virgl-chroot (git-ignored)
#
# Idempotent: a finished chroot carries a stamp file and a re-run only checks it.
# Needs root and network access to deb.debian.org. Non-interactive (CI-safe).
# Mounts (/proc, /dev for dpkg) live in a private mount namespace (`unshare`),
# so nothing stays mounted on the host even if this script is killed.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
DIR="${1:-${VIRGL_CHROOT:-$REPO/.cache/virgl-chroot}}"
MIRROR="${VIRGL_MIRROR:-http://deb.debian.org/debian}"
SUITE=trixie
PACKAGES=(virgl-server mesa-vulkan-drivers libvulkan1)
# Callers that need more in the same kind of chroot (tests/vm/setup.sh) list it here.
read -r -d "" -a EXTRA_PACKAGES <<<"${VENUS_CHROOT_EXTRA_PACKAGES:-}" || true
PACKAGES+=("${EXTRA_PACKAGES[@]}")
# The stamp's content; changing the package set or suite forces a re-install.
STAMP_TEXT="suite=$SUITE packages=${PACKAGES[*]}"
export DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8

t_start=$(date +%s)
elapsed() { echo $(($(date +%s) - t_start)); }
say() { echo "virgl-setup [$(elapsed)s] $*"; }
die() { echo "virgl-setup: error: $*" >&2; exit 1; }

[[ $(id -u) -eq 0 ]] || die "must run as root (debootstrap, chroot and mount need it)"
mkdir -p "$DIR"
DIR="$(cd "$DIR" && pwd)"
# One setup at a time per chroot.
exec 9>"$DIR.lock"
flock 9
STAMP="$DIR/.venus-virgl-ready"
BOOTSTRAP_STAMP="$DIR/.venus-debootstrap-done"

if [[ -f $STAMP && "$(cat "$STAMP")" == "$STAMP_TEXT" && -x $DIR/usr/bin/virgl_test_server ]]; then
  say "chroot $DIR already set up ($(cat "$DIR/.venus-virgl-versions" 2>/dev/null | tr '\n' ' '))"
  exit 0
fi
rm -f "$STAMP"

# Runs a command inside the chroot with /proc and /dev available, in a private
# mount and pid namespace: the mounts and every process die with it.
in_chroot() {
  unshare --mount --pid --fork --kill-child --propagation private -- \
    /bin/sh -c '
      d="$1"; shift
      mount -t proc proc "$d/proc"
      mount --rbind /dev "$d/dev"
      exec chroot "$d" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \
        DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8 HOME=/root "$@"
    ' in_chroot "$DIR" "$@"
}

# 1. The host tool.
if ! command -v debootstrap >/dev/null; then
  say "installing debootstrap on the host"
  apt_cache="$REPO/.cache/apt-archives"
  mkdir -p "$apt_cache/partial"
  host_install() {
    apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=300 \
      -o Dir::Cache::archives="$apt_cache" debootstrap >/dev/null
  }
  host_install || { apt-get update -qq && host_install; }
fi

# 2. The minimal trixie system.
if [[ ! -f $BOOTSTRAP_STAMP ]]; then
  if [[ -n "$(ls -A "$DIR")" ]]; then
    # A half-finished debootstrap cannot be resumed; start over, but only if the
    # directory is recognizably a chroot of ours and nothing is mounted in it.
    [[ -d $DIR/debootstrap || -f $DIR/etc/debian_version ]] ||
      die "$DIR is not empty and does not look like a debootstrap chroot; refusing to delete it"
    if findmnt -rno TARGET | grep -q "^$DIR/"; then
      die "something is mounted under $DIR; unmount it first"
    fi
    say "removing unfinished chroot $DIR"
    rm -rf --one-file-system "$DIR"
    mkdir -p "$DIR"
  fi
  say "debootstrap --variant=minbase $SUITE $DIR $MIRROR"
  # In a private mount namespace: the /proc and /sys that debootstrap mounts
  # inside cannot stay mounted on the host if it is interrupted.
  unshare --mount --propagation private -- \
    debootstrap --variant=minbase --components=main "$SUITE" "$DIR" "$MIRROR" \
    >"$DIR.debootstrap.log" 2>&1 || {
    tail -n 30 "$DIR.debootstrap.log" >&2
    die "debootstrap failed (full log: $DIR.debootstrap.log)"
  }
  rm -f "$DIR.debootstrap.log"
  touch "$BOOTSTRAP_STAMP"
  say "debootstrap done"
fi

# 3. Lean apt and dpkg settings, then the packages.
cat >"$DIR/etc/apt/apt.conf.d/90venus-lean" <<'EOF'
APT::Install-Recommends "false";
APT::Install-Suggests "false";
Acquire::Languages "none";
Dpkg::Use-Pty "false";
EOF
cat >"$DIR/etc/dpkg/dpkg.cfg.d/90venus-nodoc" <<'EOF'
path-exclude /usr/share/doc/*
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/lintian/*
EOF
printf '#!/bin/sh\nexit 101\n' >"$DIR/usr/sbin/policy-rc.d"
chmod 755 "$DIR/usr/sbin/policy-rc.d"
cp -L /etc/resolv.conf "$DIR/etc/resolv.conf" 2>/dev/null || true
echo "deb $MIRROR $SUITE main" >"$DIR/etc/apt/sources.list"

say "apt-get install ${PACKAGES[*]} (in the chroot)"
in_chroot dpkg --configure -a # finishes an interrupted earlier run, if any
in_chroot apt-get update -qq
in_chroot apt-get install -y -qq "${PACKAGES[@]}" >/dev/null
in_chroot apt-get clean
rm -rf "$DIR"/var/lib/apt/lists/* "$DIR"/var/cache/apt/*.bin

# 4. Check the result and stamp it.
[[ -x $DIR/usr/bin/virgl_test_server ]] || die "virgl_test_server missing after install"
[[ -f $DIR/usr/share/vulkan/icd.d/lvp_icd.json ]] || die "lavapipe ICD manifest missing after install"
in_chroot dpkg-query -W -f='${Package} ${Version}\n' "${PACKAGES[@]}" libc6 >"$DIR/.venus-virgl-versions"
echo "$STAMP_TEXT" >"$STAMP"
say "done: $DIR ($(du -sh --one-file-system "$DIR" | cut -f1)); $(tr '\n' ' ' <"$DIR/.venus-virgl-versions")"
