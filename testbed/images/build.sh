#!/usr/bin/env bash
# Build the testbed's container images (pause, redis, redis-exporter) as docker-archive tarballs
# in $RAIBID_IMAGES_DIR (see images.env), only those that are missing or whose inputs changed.
#
# No registry is reachable and there is no Docker engine, so each image is one layer assembled
# from files of installed Debian packages (binaries plus the shared libraries ldd reports) and
# written by mkimage.py. The exporter is compiled from its Go module via the Go module proxy.
# Progress goes to stderr; stdout stays empty.
#
# Usage: testbed/images/build.sh [--force] [pause|redis|redis-exporter ...]
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=testbed/lib.sh
source "$here/../lib.sh"
RAIBID_TESTBED_IMAGES="$here" load_images_env
cache_root="$RAIBID_CACHE"

log() { printf 'images/build.sh: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

force=0
targets=()
for arg in "$@"; do
    case "$arg" in
        --force) force=1 ;;
        pause | redis | redis-exporter) targets+=("$arg") ;;
        *) die "unknown argument: $arg" ;;
    esac
done
[[ ${#targets[@]} -gt 0 ]] || targets=(pause redis redis-exporter)

GO="${GO:-$(command -v go || echo /usr/local/go/bin/go)}"


check_tools() {
    local missing=()
    mapfile -t missing < <(missing_packages "${RAIBID_IMAGE_PACKAGES[@]}")
    if [[ ${#missing[@]} -gt 0 ]]; then
        die "missing build tools; install them with: apt-get install -y ${missing[*]}"
    fi
}

# Cache key of one image: the recipe (this script, mkimage.py, images.env, image files) plus the
# versions of all installed Debian packages. Tracking exactly which packages own the copied
# libraries is not worth it: a needless rebuild takes seconds and yields the same bytes.
image_key() {
    local name="$1"
    {
        cat "$here/build.sh" "$here/mkimage.py" "$here/images.env"
        dpkg-query -W -f '${Package}=${Version}\n' | sort
        case "$name" in
            pause) cat "$here/pause.c" ;;
            redis) find "$here/redis" -type f -print0 | sort -z | xargs -0 cat ;;
            redis-exporter) "$GO" version 2>/dev/null || echo no-go ;;
        esac
    } | sha256sum | cut -c1-16
}

# Copy host files into the rootfs at the same path, plus every shared library they need.
copy_with_libs() {
    local root="$1"
    shift
    local f lib
    for f in "$@"; do
        f="$(readlink -f "$f")"
        mkdir -p "$root$(dirname "$f")"
        cp -a "$f" "$root$f"
        # ldd fails on static binaries and scripts: nothing to add then.
        while read -r lib; do
            [[ -n "$lib" && ! -e "$root$lib" ]] || continue
            mkdir -p "$root$(dirname "$lib")"
            cp -L "$lib" "$root$lib"
        done < <(ldd "$f" 2>/dev/null | grep -oE '/[^ ]+' | grep -vxF -- "$f" || true)
    done
}

# An empty merged-/usr Debian-like tree with the usual top-level symlinks.
new_rootfs() {
    local root="$1"
    mkdir -p "$root"/{usr/bin,usr/sbin,usr/lib/x86_64-linux-gnu,usr/lib64,etc,tmp,dev,proc,sys,run}
    ln -s usr/bin "$root/bin"
    ln -s usr/sbin "$root/sbin"
    ln -s usr/lib "$root/lib"
    ln -s usr/lib64 "$root/lib64"
    chmod 1777 "$root/tmp"
    printf 'root:x:0:0:root:/root:/bin/bash\nredis:x:1001:0:redis:/data:/bin/bash\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n' >"$root/etc/passwd"
    printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
    printf 'passwd: files\ngroup: files\nhosts: files dns\n' >"$root/etc/nsswitch.conf"
}

rootfs_pause() {
    local root="$1"
    mkdir -p "$root"
    gcc -static -O2 -Wall -Wextra -o "$root/pause" "$here/pause.c"
    strip "$root/pause"
    python3 "$here/mkimage.py" --rootfs "$root" --ref "$RAIBID_PAUSE_IMAGE" --out "$2" \
        --user 65535:65535 --entrypoint '["/pause"]' \
        --label org.opencontainers.image.description="raibid testbed pod sandbox"
}

rootfs_redis() {
    local root="$1" bin
    new_rootfs "$root"
    # Tools the chart's start, health and sentinel scripts call, from Debian's packages.
    local tools=(bash grep sed mawk getent hostname openssl)
    local paths=()
    for bin in "${tools[@]}"; do paths+=("$(command -v "$bin")"); done
    mapfile -t -O "${#paths[@]}" paths < <(dpkg -L coreutils | grep -E '^/(usr/)?bin/.' | while read -r p; do [[ -f "$p" && ! -L "$p" ]] && echo "$p"; done)
    copy_with_libs "$root" "${paths[@]}" "$(command -v redis-server)" "$(command -v redis-cli)"
    ln -sf bash "$root/usr/bin/sh"
    ln -sf mawk "$root/usr/bin/awk"
    # The bitnami layout: binaries in /opt/bitnami/redis/bin (on PATH), writable etc/, secrets/.
    local rb="$root/opt/bitnami/redis/bin"
    mkdir -p "$rb" "$root/opt/bitnami/redis"/{etc,mounted-etc,secrets,certs,tmp,logs} \
        "$root/opt/bitnami/redis-sentinel"/{etc,mounted-etc,tmp} "$root/opt/bitnami/scripts/redis" \
        "$root/data" "$root/bitnami/redis/data"
    mv "$root$(readlink -f "$(command -v redis-server)")" "$rb/redis-server"
    mv "$root$(readlink -f "$(command -v redis-cli)")" "$rb/redis-cli"
    for bin in redis-check-aof redis-check-rdb redis-sentinel; do ln -s redis-server "$rb/$bin"; done
    install -m 0755 "$here"/redis/scripts/lib*.sh "$root/opt/bitnami/scripts/"
    install -m 0755 "$here/redis/scripts/redis/run.sh" "$root/opt/bitnami/scripts/redis/run.sh"
    chmod -R g+rwX "$root/opt/bitnami/redis" "$root/opt/bitnami/redis-sentinel" "$root/data" "$root/bitnami"
    python3 "$here/mkimage.py" --rootfs "$root" --ref "$RAIBID_REDIS_IMAGE" --out "$2" \
        --chown opt/bitnami/redis=1001:0 --chown opt/bitnami/redis/bin=0:0 \
        --chown opt/bitnami/redis-sentinel=1001:0 --chown data=1001:0 --chown bitnami=1001:0 \
        --user 1001 --workdir /data \
        --env PATH=/opt/bitnami/redis/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        --env HOME=/tmp --env REDIS_PORT_NUMBER=6379 --env APP_VERSION=7.0.15 \
        --cmd '["/opt/bitnami/scripts/redis/run.sh"]' --port 6379/tcp \
        --label org.opencontainers.image.description="raibid testbed Redis (Debian redis-server, bitnami/redis layout)"
}

build_exporter_binary() {
    local out="$1" ver="$RAIBID_REDIS_EXPORTER_MODULE_VERSION" mod
    if [[ -x "$out" ]]; then return 0; fi
    [[ -x "$GO" ]] || die "Go not found (expected /usr/local/go/bin/go or go on PATH)"
    log "compiling github.com/oliver006/redis_exporter@$ver (Go module proxy, about a minute)"
    mod="$(mktemp -d)"
    # A throwaway module that requires the exporter at a pinned version: `go install mod@ver`
    # fails here because the proxy refuses the module's version list (deprecation lookup).
    cat >"$mod/go.mod" <<GOMOD
module raibid.local/exporterbuild

go 1.23

require github.com/oliver006/redis_exporter $ver
GOMOD
    printf '//go:build tools\n\npackage tools\n\nimport _ "github.com/oliver006/redis_exporter"\n' >"$mod/tools.go"
    # The checksum database has no entry for this module through the proxy (404), so skip the
    # sumdb for it alone; its dependencies are still verified.
    (
        cd "$mod"
        export GONOSUMDB=github.com/oliver006/redis_exporter GOFLAGS="-mod=mod -buildvcs=false" \
            CGO_ENABLED=0 GOTOOLCHAIN=local
        with_progress "resolving redis_exporter modules" "$GO" mod tidy >&2
        with_progress "compiling redis_exporter" "$GO" build -trimpath -ldflags "-s -w -X main.BuildVersion=${ver#v}" -o "$out.tmp" \
            github.com/oliver006/redis_exporter >&2
    )
    rm -rf "$mod"
    mv "$out.tmp" "$out"
}

rootfs_redis_exporter() {
    local root="$1" bin
    local exporter="$cache_root/redis-exporter-$RAIBID_REDIS_EXPORTER_MODULE_VERSION/redis_exporter"
    mkdir -p "$(dirname "$exporter")"
    build_exporter_binary "$exporter"
    new_rootfs "$root"
    # The chart runs the exporter through `/bin/bash -ec`; a few coreutils help debugging.
    local paths=()
    for bin in bash cat ls env sleep id; do paths+=("$(command -v "$bin")"); done
    copy_with_libs "$root" "${paths[@]}"
    ln -sf bash "$root/usr/bin/sh"
    mkdir -p "$root/opt/bitnami/redis-exporter/bin"
    install -m 0755 "$exporter" "$root/opt/bitnami/redis-exporter/bin/redis_exporter"
    python3 "$here/mkimage.py" --rootfs "$root" --ref "$RAIBID_EXPORTER_IMAGE" --out "$2" \
        --user 1001 \
        --env PATH=/opt/bitnami/redis-exporter/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        --env HOME=/tmp \
        --entrypoint '["/opt/bitnami/redis-exporter/bin/redis_exporter"]' --port 9121/tcp \
        --label org.opencontainers.image.description="raibid testbed redis_exporter (bitnami/redis-exporter layout)"
}

build_one() {
    local name="$1" key tar stage start
    tar="$RAIBID_IMAGES_DIR/$name.tar"
    key="$(image_key "$name")"
    if [[ $force -eq 0 && -f "$tar" && "$(cat "$tar.key" 2>/dev/null)" == "$key" ]]; then
        log "$name: cached ($tar)"
        return 0
    fi
    start=$SECONDS
    log "$name: building (key $key)"
    stage="$work/$name"
    mkdir -p "$stage"
    "rootfs_${name//-/_}" "$stage/rootfs" "$stage/image.tar"
    mv "$stage/image.tar" "$tar"
    rm -rf "$stage"
    echo "$key" >"$tar.key"
    log "$name: done in $((SECONDS - start))s, $(du -h "$tar" | cut -f1) ($tar)"
}

check_tools
mkdir -p "$RAIBID_IMAGES_DIR"
# Staging on the same filesystem as the result, so the final mv is an atomic rename.
work="$(mktemp -d "$RAIBID_IMAGES_DIR/.build.XXXXXX")"
trap 'rm -rf "$work"' EXIT
if [[ "$(redis-server --version)" != *"v=7.0.15 "* ]]; then
    log "warning: host redis-server is not 7.0.15; the tag in images.env will not match its contents"
fi
for t in "${targets[@]}"; do build_one "$t"; done
