# Shared by the testbed's scripts (sourced): the build cache, the Debian packages, the image settings, the Go
# toolchain check and progress for long steps. testbed/settings.sh prints the settings for Python and Ansible.
# Run as a command, `bash testbed/lib.sh PHASE COMMAND...` is with_progress (the Makefile uses it).
# shellcheck shell=bash

# Go >= 1.24 builds Kubernetes 1.34, CoreDNS and helm. A Go from 1.21 on can fetch a newer toolchain
# from the Go module proxy by itself when GOTOOLCHAIN names one.
RAIBID_GO_MIN=1.24
RAIBID_GO_TOOLCHAIN=go1.27.3

# The build cache: Kubernetes and CoreDNS binaries, images, helm (RAIBID_CACHE moves it; `testbed.sh purge` removes it).
RAIBID_CACHE="${RAIBID_CACHE:-$HOME/.cache/raibid}"

# What the proving ground needs from Debian, as COMMAND=PACKAGE (an absolute path where the package has no command).
# The lists are read by the scripts that source this file.
# make deps: the functional tests' redis-server and the shell linter.
# shellcheck disable=SC2034
RAIBID_DEV_PACKAGES=(redis-server=redis-server redis-cli=redis-tools shellcheck=shellcheck)
# testbed/images/build.sh: what it copies into the images or compiles with.
# shellcheck disable=SC2034
RAIBID_IMAGE_PACKAGES=(gcc=gcc /usr/lib/x86_64-linux-gnu/libc.a=libc6-dev redis-server=redis-server
  redis-cli=redis-tools openssl=openssl hostname=hostname /usr/bin/python3=python3)
# testbed.sh up: the cluster's own, besides the images'.
# shellcheck disable=SC2034
RAIBID_CLUSTER_PACKAGES=(etcd=etcd-server containerd=containerd runc=runc iptables=iptables conntrack=conntrack
  openssl=openssl jq=jq curl=curl ip=iproute2 /usr/lib/cni/bridge=containernetworking-plugins /usr/bin/python3=python3)

# missing_packages COMMAND=PACKAGE...: prints each package (once) whose command or file is missing.
missing_packages() {
  local pair
  for pair in "$@"; do
    if [[ "${pair%%=*}" == /* ]]; then [[ -e "${pair%%=*}" ]] && continue
    else command -v "${pair%%=*}" >/dev/null && continue; fi
    echo "${pair#*=}"
  done | sort -u
}

# load_images_env: the image refs and their directory (testbed/images/images.env), the one way to read them in bash.
load_images_env() {
  # shellcheck source=testbed/images/images.env
  source "${RAIBID_TESTBED_IMAGES:-$(dirname "${BASH_SOURCE[0]}")/images}/images.env"
}

ensure_go() {
  export PATH="/usr/local/go/bin:$PATH"
  local version minor
  if ! version="$(go env GOVERSION 2>/dev/null)"; then
    echo "[testbed] ERROR: Go not found. Install Go >= $RAIBID_GO_MIN (Debian 12's golang is 1.19, too old)." >&2
    return 1
  fi
  minor="${version#go1.}"; minor="${minor%%.*}"; minor="${minor%%rc*}"
  if ((minor >= ${RAIBID_GO_MIN#1.})); then return 0; fi
  if ((minor >= 21)); then
    echo "[testbed] $version is older than Go $RAIBID_GO_MIN: using toolchain $RAIBID_GO_TOOLCHAIN from the Go module proxy" >&2
    export GOTOOLCHAIN="$RAIBID_GO_TOOLCHAIN"
    return 0
  fi
  echo "[testbed] ERROR: $version is too old and cannot fetch a newer toolchain (needs 1.21+)." \
    "Install Go >= $RAIBID_GO_MIN." >&2
  return 1
}

# with_progress PHASE COMMAND...: runs COMMAND, saying every 30 s that PHASE is still going; returns its status.
with_progress() {
  local phase="$1" pid started=$SECONDS status=0; shift
  "$@" &
  pid=$!
  while ! wait_or_tick "$pid" 30; do
    echo "... still $phase ($((SECONDS - started))s)" >&2
  done
  wait "$pid" || status=$?
  return "$status"
}

wait_or_tick() {  # wait_or_tick PID SECONDS: true once PID has exited, false after SECONDS while it runs
  local i
  for ((i = 0; i < $2 * 5; i++)); do
    kill -0 "$1" 2>/dev/null || return 0
    sleep 0.2
  done
  return 1
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
  with_progress "$@"
fi
