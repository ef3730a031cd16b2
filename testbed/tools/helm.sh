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
# The newest toolchain the module proxy may give us when the machine's Go is too old (and >= 1.21).
GO_TOOLCHAIN=go1.27.3
GO_MIN_MINOR=24

cache_root="${RAIBID_CACHE:-$HOME/.cache/raibid}"
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

# Go >= 1.24 builds helm; a Go >= 1.21 can fetch a newer toolchain from the module proxy itself.
go_bin="${RAIBID_GO:-$(command -v go || echo /usr/local/go/bin/go)}"
if ! go_version="$("$go_bin" env GOVERSION 2>/dev/null)"; then
    log "Go is needed to build helm $HELM_VERSION and was not found (looked for '$go_bin')."
    log "Install Go >= 1.$GO_MIN_MINOR (https://go.dev/dl, or a Go >= 1.21 which fetches $GO_TOOLCHAIN by itself) and put it on PATH, or set RAIBID_GO."
    exit 1
fi
go_minor="$(sed -nE 's/^go1\.([0-9]+).*/\1/p' <<<"$go_version")"
if [[ -z "$go_minor" ]]; then
    log "cannot tell the version of $go_bin ('$go_version'); install Go >= 1.$GO_MIN_MINOR"
    exit 1
elif (( go_minor >= GO_MIN_MINOR )); then
    toolchain=local
elif (( go_minor >= 21 )); then
    toolchain="$GO_TOOLCHAIN"
    log "$go_version is older than go1.$GO_MIN_MINOR: Go will fetch $GO_TOOLCHAIN from the module proxy first"
else
    log "$go_bin is $go_version; building helm needs Go >= 1.$GO_MIN_MINOR (Debian 12's golang is 1.19)."
    log "Install Go >= 1.$GO_MIN_MINOR from https://go.dev/dl (or any Go >= 1.21, which fetches $GO_TOOLCHAIN by itself) and put it first on PATH, or set RAIBID_GO."
    exit 1
fi

work="$(mktemp -d "$cache_root/.helm-build.XXXXXX")"
builder=""
cleanup() {
    [[ -n "$builder" ]] && kill "$builder" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

log "building helm $HELM_VERSION with go install $HELM_MODULE/cmd/helm@$HELM_VERSION ($go_version, GOTOOLCHAIN=$toolchain); 2-4 minutes on 2 cores"
start=$SECONDS
# -X stamps the version: go install leaves it at the module's default (v3.19, empty commit) otherwise.
GOTOOLCHAIN="$toolchain" GOBIN="$work" "$go_bin" install -trimpath \
    -ldflags "-s -w -X $HELM_MODULE/internal/version.version=$HELM_VERSION" \
    "$HELM_MODULE/cmd/helm@$HELM_VERSION" >"$work/build.log" 2>&1 &
builder=$!
# A progress line every 20 s (downloads and compiling print nothing for minutes).
while kill -0 "$builder" 2>/dev/null; do
    for _ in 1 2 3 4 5 6 7 8 9 10; do
        sleep 2
        kill -0 "$builder" 2>/dev/null || break 2
    done
    log "still building helm $HELM_VERSION: $((SECONDS - start)) s"
done
if ! wait "$builder"; then
    builder=""
    log "go install failed:"
    tail -n 30 "$work/build.log" >&2
    exit 1
fi
builder=""

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
