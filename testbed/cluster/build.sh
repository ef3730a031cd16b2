#!/usr/bin/env bash
# Builds the Kubernetes node and control-plane binaries from the k8s.io/kubernetes
# Go module (no source is vendored: a wrapper module is generated in the cache).
# Output: $RAIBID_CACHE/k8s/<version>/bin/{kube-apiserver,...}. Cached by version.
# Progress goes to stderr; prints the bin directory on stdout.
set -euo pipefail

K8S_VERSION="${RAIBID_K8S_VERSION:-v1.34.4}"
# shellcheck source=testbed/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
CACHE="$RAIBID_CACHE"
ROOT="$CACHE/k8s/$K8S_VERSION"
BIN="$ROOT/bin"
# kubectl too, so that the client matches the cluster it drives.
CMDS=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl)

log() { echo "[testbed build] $*" >&2; }

have_all() {
  local c
  for c in "${CMDS[@]}"; do [[ -x "$BIN/$c" ]] || return 1; done
}

if have_all; then
  log "kubernetes $K8S_VERSION binaries cached in $BIN"
  echo "$BIN"
  exit 0
fi

ensure_go

src="$ROOT/src"
mkdir -p "$src" "$BIN"
cd "$src"

# Staging modules are published at v0.<minor>.<patch>; k8s.io/kubernetes' own
# go.mod names them at v0.0.0 with local replaces, which do not apply to us.
staging_version="v0.${K8S_VERSION#v1.}"
log "resolving k8s.io/kubernetes@$K8S_VERSION"
k8s_gomod="$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" |
  sed -n 's/.*"GoMod": "\(.*\)",*/\1/p')"
mapfile -t staging < <(sed -n 's#^\s*\(k8s.io/[a-z0-9-]*\) => \./staging/.*#\1#p' "$k8s_gomod")
[[ ${#staging[@]} -gt 10 ]] || { log "could not read staging modules from $k8s_gomod"; exit 1; }

{
  echo "module raibid.local/testbed-k8s"
  echo
  echo "go 1.24.0"
  echo
  echo "require k8s.io/kubernetes $K8S_VERSION"
  echo
  echo "replace ("
  for m in "${staging[@]}"; do echo "	$m => $m $staging_version"; done
  echo ")"
} > go.mod
{
  echo "//go:build tools"
  echo
  echo "package tools"
  echo
  echo "import ("
  for c in "${CMDS[@]}"; do echo "	_ \"k8s.io/kubernetes/cmd/$c\""; done
  echo ")"
} > tools.go

log "go mod tidy (downloads modules the first time)"
with_progress "resolving modules" go mod tidy >&2

# Version stamps so the node and `kubectl version` report the real release.
minor="${K8S_VERSION#v1.}"; minor="${minor%%.*}"
ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
  ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
done

pkgs=()
for c in "${CMDS[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$c"); done
log "building ${CMDS[*]} (one go build, a cold build takes a long while on 2 cores)"
start=$SECONDS
# One invocation shares compiled packages between the binaries; static like upstream.
export CGO_ENABLED=0  # static, like upstream
with_progress "building Kubernetes $K8S_VERSION" go build -trimpath -ldflags "$ldflags" -o "$BIN/" "${pkgs[@]}" >&2
log "built in $((SECONDS - start))s"
have_all || { log "build finished but binaries are missing"; exit 1; }
echo "$BIN"
