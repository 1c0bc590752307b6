#!/bin/sh
# Fetch the Mesa 25.0.7 source (Debian trixie source package) for the
# reference-encoder harness, and print the path of its
# src/virtio/venus-protocol directory on the last line of stdout.
#
# Usage: tests/reference/fetch-mesa.sh [DEST]   (default: <repo>/.cache/mesa)
#
# Idempotent: if DEST already holds the extracted source, only prints the
# path. Otherwise it makes sure apt has a deb-src line for trixie main
# (writing /etc/apt/sources.list.d/venus-deb-src.list if none exists),
# installs dpkg-dev and xz-utils if missing, and runs `apt-get source` for
# mesa 25.0.7 inside DEST with a private archive cache. Needs root for the
# apt steps; runs without a TTY. All diagnostics go to stderr.
set -eu

MESA_UPSTREAM=25.0.7
MESA_VERSION=25.0.7-2+deb13u1
SRC_LIST=/etc/apt/sources.list.d/venus-deb-src.list

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
dest=${1:-"$repo/.cache/mesa"}

log() { printf 'fetch-mesa: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

proto_rel="mesa-$MESA_UPSTREAM/src/virtio/venus-protocol"

done_already() {
    [ -f "$dest/$proto_rel/vn_protocol_driver.h" ] &&
        [ -f "$dest/mesa-$MESA_UPSTREAM/include/vulkan/vulkan.h" ]
}

mkdir -p "$dest"
dest=$(cd "$dest" && pwd)

if done_already; then
    echo "$dest/$proto_rel"
    exit 0
fi

# One fetch at a time per DEST (test binaries may run concurrently).
if command -v flock >/dev/null 2>&1 && [ -z "${VENUS_FETCH_MESA_LOCKED:-}" ]; then
    export VENUS_FETCH_MESA_LOCKED=1
    exec flock "$dest/.lock" /bin/sh "$0" "$dest"
fi
if done_already; then
    echo "$dest/$proto_rel"
    exit 0
fi

export DEBIAN_FRONTEND=noninteractive
if [ "$(id -u)" -ne 0 ]; then
    die "Mesa source not in $dest and not root: cannot use apt (set VENUS_MESA_SRC to a venus-protocol directory)"
fi
command -v apt-get >/dev/null 2>&1 || die "apt-get not found (set VENUS_MESA_SRC to a venus-protocol directory)"

has_trixie_src() {
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -f "$f" ] || continue
        if grep -Eq '^[[:space:]]*deb-src([[:space:]]+\[[^]]*\])?[[:space:]]+[^[:space:]]+[[:space:]]+trixie[[:space:]]+([^#]*[[:space:]])?main([[:space:]]|$)' "$f"; then
            return 0
        fi
    done
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        # deb822: a stanza with Types: deb-src, Suites: trixie, Components: main
        if awk '
            function flush() { if (t && s && c && !off) found = 1; t = s = c = off = 0 }
            /^[ \t]*$/ { flush(); next }
            tolower($1) == "types:" { for (i = 2; i <= NF; i++) if ($i == "deb-src") t = 1 }
            tolower($1) == "suites:" { for (i = 2; i <= NF; i++) if ($i == "trixie") s = 1 }
            tolower($1) == "components:" { for (i = 2; i <= NF; i++) if ($i == "main") c = 1 }
            tolower($1) == "enabled:" && tolower($2) == "no" { off = 1 }
            END { flush(); exit found ? 0 : 1 }' "$f"; then
            return 0
        fi
    done
    return 1
}

apt_quiet() {
    # apt's progress goes to stderr so stdout stays the result path
    apt-get -q -y "$@" </dev/null 1>&2
}

updated=
if ! has_trixie_src; then
    log "adding deb-src for trixie main in $SRC_LIST"
    echo "deb-src http://deb.debian.org/debian trixie main" >"$SRC_LIST"
    apt_quiet update || die "apt-get update failed"
    updated=1
fi

if ! command -v dpkg-source >/dev/null 2>&1 || ! command -v xz >/dev/null 2>&1; then
    if [ -z "$updated" ]; then
        apt_quiet update || die "apt-get update failed"
        updated=1
    fi
    log "installing dpkg-dev xz-utils"
    apt_quiet install --no-install-recommends dpkg-dev xz-utils || die "cannot install dpkg-dev xz-utils"
fi

list_versions() {
    apt-cache showsrc mesa 2>/dev/null | sed -n 's/^Version:[[:space:]]*//p'
}

versions=$(list_versions)
if ! printf '%s\n' "$versions" | grep -q "^$MESA_UPSTREAM-" && [ -z "$updated" ]; then
    apt_quiet update || die "apt-get update failed"
    versions=$(list_versions)
fi
if printf '%s\n' "$versions" | grep -qxF "$MESA_VERSION"; then
    version=$MESA_VERSION
else
    version=$(printf '%s\n' "$versions" | grep "^$MESA_UPSTREAM-" | sort -V | tail -n 1 || true)
    [ -n "$version" ] || die "apt knows no mesa $MESA_UPSTREAM-* source (has: $(echo $versions))"
    log "mesa $MESA_VERSION not available, using $version"
fi

mkdir -p "$dest/apt-cache/partial"
work="$dest/download.$$"
rm -rf "$work"
mkdir -p "$work"
trap 'rm -rf "$work"' EXIT
log "downloading and unpacking mesa $version into $dest"
(
    cd "$work"
    apt_quiet -o "Dir::Cache::archives=$dest/apt-cache" \
        source --only-source "mesa=$version"
) || die "apt-get source mesa=$version failed"

[ -f "$work/$proto_rel/vn_protocol_driver.h" ] || die "unpacked source lacks $proto_rel/vn_protocol_driver.h"
rm -rf "${dest:?}/mesa-$MESA_UPSTREAM"
mv "$work/mesa-$MESA_UPSTREAM" "$dest/"
# keep the downloaded .dsc/.tar.* next to the tree for reference
find "$work" -maxdepth 1 -type f -exec mv {} "$dest/" \;

done_already || die "$dest/$proto_rel incomplete after unpacking"
echo "$dest/$proto_rel"
