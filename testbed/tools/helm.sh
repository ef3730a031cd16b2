#!/usr/bin/env bash
# Print the absolute path of a helm binary (last stdout line), building it on first use.
#
#   testbed/tools/helm.sh [3|4]        (or RAIBID_HELM_MAJOR=3|4; default 3)
#
# helm is not packaged by Debian and no download site is reachable here, but helm is a Go program and the Go
# module proxy serves it: `go install helm.sh/helm/v3/cmd/helm@v3.21.4` builds it, checked against Go's checksum
# database. The binary goes into a cache outside the work tree, one directory per version.
set -euo pipefail

major="${1:-${RAIBID_HELM_MAJOR:-3}}"
case "$major" in
    3) HELM_VERSION=v3.21.4 ;;
    4) HELM_VERSION=v4.3.2 ;;
    *) printf 'helm.sh: unknown helm major version %s (use 3 or 4)\n' "$major" >&2; exit 2 ;;
esac
HELM_MODULE="helm.sh/helm/v$major"

# Go >= 1.24 (or a Go >= 1.21 that fetches a newer toolchain), as for the rest of the testbed; the build cache.
# shellcheck source=testbed/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
cache_root="$RAIBID_CACHE"
dest_dir="$cache_root/helm-$HELM_VERSION"
helm_bin="$dest_dir/helm"

log() { printf 'helm.sh: %s\n' "$*" >&2; }
cached() { [[ -x "$helm_bin" ]] && [[ "$("$helm_bin" version --template '{{.Version}}' 2>/dev/null)" == "$HELM_VERSION" ]]; }

# Fast path: already cached and the right version.
if cached; then
    echo "$helm_bin"
    exit 0
fi

mkdir -p "$cache_root"
# One build at a time per version; whoever waited finds the binary cached.
exec 9>"$cache_root/.helm-$HELM_VERSION.lock"
flock 9
if cached; then
    echo "$helm_bin"
    exit 0
fi

ensure_go

work="$(mktemp -d "$cache_root/.helm-build.XXXXXX")"
trap 'rm -rf "$work"' EXIT

log "building helm $HELM_VERSION: go install $HELM_MODULE/cmd/helm@$HELM_VERSION (Go toolchain ${GOTOOLCHAIN:-local}); 2-6 minutes on 2 cores"
start=$SECONDS
# -X stamps the version: go install leaves it at the module's default (v3.19, empty commit) otherwise.
build() {
    GOBIN="$work" go install -trimpath -ldflags "-s -w -X $HELM_MODULE/internal/version.version=$HELM_VERSION" \
        "$HELM_MODULE/cmd/helm@$HELM_VERSION" >"$work/build.log" 2>&1
}
if ! with_progress "building helm $HELM_VERSION" build; then
    log "go install failed:"
    tail -n 30 "$work/build.log" >&2
    exit 1
fi

got="$("$work/helm" version --template '{{.Version}}')"
if [[ "$got" != "$HELM_VERSION" ]]; then
    log "unexpected helm version $got (wanted $HELM_VERSION)"
    exit 1
fi
mkdir -p "$dest_dir"
# Atomic rename so a concurrent caller never sees a half-written binary.
mv -f "$work/helm" "$helm_bin"
log "built and cached $helm_bin in $((SECONDS - start)) s"
echo "$helm_bin"
