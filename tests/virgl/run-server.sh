#!/usr/bin/env bash
# Runs stock virglrenderer 1.1.0's vtest server (venus only, lavapipe underneath)
# inside the trixie chroot made by setup.sh, listening on a Unix socket that
# clients outside the chroot can reach.
#
#   tests/virgl/run-server.sh SOCKET [DIR] [-- EXTRA-SERVER-ARGS...]
#
# SOCKET is the socket's path outside the chroot (its directory is created if
# missing; keep the whole path under 108 bytes, the sun_path limit). DIR is the
# chroot, default $VIRGL_CHROOT, else <repo>/.cache/virgl-chroot.
#
# Prints the outside socket path as its first line of stdout, then runs in the
# foreground until killed. How: a private mount + pid namespace (`unshare`) mounts
# /proc, binds /dev, and binds SOCKET's directory onto /run/venus-vtest inside
# the chroot; the server binds /run/venus-vtest/<name>, i.e. SOCKET outside.
# Nothing is mounted on the host, so nothing can leak:
#   - SIGKILL to this script's pid (which becomes `unshare`) kills the server and
#     everything it forked (--kill-child, pid namespace);
#   - SIGINT/SIGTERM to the process group (Ctrl-C) stop the server the same way.
#   `unshare` itself blocks SIGINT/SIGTERM, so a SIGTERM to the pid alone does
#   nothing: use SIGKILL or signal the group.
# The socket file is left behind (the server unlinks a stale one on start).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
die() { echo "virgl-run-server: error: $*" >&2; exit 2; }

[[ $# -ge 1 && $1 != -* ]] || die "usage: $0 SOCKET [DIR] [-- EXTRA-SERVER-ARGS...]"
SOCKET="$1"
shift
DIR="${VIRGL_CHROOT:-$REPO/.cache/virgl-chroot}"
if [[ $# -ge 1 && $1 != -- ]]; then
  DIR="$1"
  shift
fi
[[ $# -eq 0 || $1 == -- ]] || die "unexpected argument '$1'"
[[ $# -eq 0 ]] || shift
EXTRA=("$@")

[[ $(id -u) -eq 0 ]] || die "must run as root (chroot and mount need it)"
[[ -f $DIR/.venus-virgl-ready && -x $DIR/usr/bin/virgl_test_server ]] ||
  die "no stock virglrenderer chroot at $DIR: run 'bash $REPO/tests/virgl/setup.sh $DIR' first (root, network, ~1 min)"
DIR="$(cd "$DIR" && pwd)"

name="$(basename -- "$SOCKET")"
sockdir="$(dirname -- "$SOCKET")"
mkdir -p "$sockdir"
sockdir="$(cd "$sockdir" && pwd)"
outside="$sockdir/$name"
((${#outside} < 108)) || die "socket path too long for sun_path (${#outside} >= 108): $outside"
inside_dir=/run/venus-vtest
mkdir -p "$DIR$inside_dir"

# Debug and driver knobs passed through to the server (everything else is reset).
passenv=()
while IFS='=' read -r var _; do
  case "$var" in
    VKR_* | VIRGL_* | VTEST_* | MESA_* | LP_* | GALLIVM_* | VK_LOADER_DEBUG | VK_INSTANCE_LAYERS)
      passenv+=("$var=${!var}") ;;
  esac
done < <(env)

echo "$outside"

exec unshare --mount --pid --fork --kill-child --propagation private -- \
  /bin/sh -c '
    d="$1" sockdir="$2" inside="$3"
    shift 3
    set -e
    mount -t proc proc "$d/proc"
    mount --rbind /dev "$d/dev"
    mount --bind "$sockdir" "$d$inside"
    set +e
    # As the namespace init, sh only gets the signals it handles; pass them on.
    trap "kill -TERM \$pid 2>/dev/null" INT TERM
    chroot "$d" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
      LC_ALL=C.UTF-8 VK_DRIVER_FILES=/usr/share/vulkan/icd.d/lvp_icd.json "$@" &
    pid=$!
    while :; do
      wait $pid
      rc=$?
      kill -0 $pid 2>/dev/null || exit $rc
    done
  ' run-server "$DIR" "$sockdir" "$inside_dir" \
  "${passenv[@]}" stdbuf -oL -eL virgl_test_server --venus --no-virgl --socket-path "$inside_dir/$name" "${EXTRA[@]}"
