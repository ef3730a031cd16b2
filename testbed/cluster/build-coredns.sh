#!/usr/bin/env bash
# Builds CoreDNS (cluster DNS of the testbed) from the github.com/coredns/coredns
# Go module, with only the plugins the testbed uses (a generated main package in
# the cache, so the cloud-provider plugins are not compiled).
# Output: $RAIBID_CACHE/coredns/<version>-<hash of main.go>/coredns (cached by
# version and plugin list); progress on stderr, the binary's path on stdout.
set -euo pipefail

VERSION="${RAIBID_COREDNS_VERSION:-v1.14.7}"
# shellcheck source=testbed/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
CACHE="$RAIBID_CACHE"

log() { echo "[testbed build] $*" >&2; }

# Plugins register themselves on import; the directive order comes from
# core/dnsserver, so importing fewer plugins just leaves the others out.
# template: answers NXDOMAIN for names outside the cluster (there is no upstream).
MAIN_GO='package main

import (
	"github.com/coredns/coredns/coremain"

	_ "github.com/coredns/coredns/plugin/bind"
	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/loadbalance"
	_ "github.com/coredns/coredns/plugin/ready"
	_ "github.com/coredns/coredns/plugin/template"
)

func main() { coremain.Run() }
'
ROOT="$CACHE/coredns/$VERSION-$(sha256sum <<<"$MAIN_GO" | cut -c1-12)"
OUT="$ROOT/coredns"

if [[ -x "$OUT" ]]; then
  log "coredns $VERSION cached in $OUT"
  echo "$OUT"
  exit 0
fi

ensure_go
mkdir -p "$ROOT/src"
cd "$ROOT/src"
cat >go.mod <<GOMOD
module raibid.local/testbed-coredns

go 1.24.0

require github.com/coredns/coredns $VERSION
GOMOD
printf '%s' "$MAIN_GO" >main.go
log "go mod tidy for coredns $VERSION"
with_progress "resolving CoreDNS modules" go mod tidy >&2
log "building coredns $VERSION"
start=$SECONDS
export CGO_ENABLED=0
with_progress "building CoreDNS $VERSION" go build -trimpath -ldflags "-s -w" -o "$OUT" . >&2
log "built coredns in $((SECONDS - start))s"
echo "$OUT"
