#!/usr/bin/env bash
# Single-node Kubernetes testbed assembled from upstream parts on this machine:
# etcd (Debian), kube-* built from the k8s.io/kubernetes Go module, containerd +
# runc (Debian), CNI bridge (Debian plugins), kube-proxy (iptables), CoreDNS
# (Go module, as a node process) and a tiny local-path provisioner. Everything listens on loopback or on the testbed's own
# bridge address; pods and services use ranges that exist only on this machine.
#
#   testbed.sh up      build (first time), start, print the kubeconfig path last
#   testbed.sh down    stop what `up` started (by PID), unmount, remove its links,
#                      iptables rules and state; harmless when already down
#   testbed.sh status  show what runs
#   testbed.sh restart-apiserver   stop the API server for a few seconds and start it again (fault tests)
#   testbed.sh purge   down, then also what down leaves: the Debian packages and kernel module `up`
#                      added, the logs and the build cache (see testbed/README.md)
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
HERE="$REPO/testbed"
STATE="${RAIBID_TESTBED_DIR:-/var/lib/raibid-testbed}"
IMAGES_SCRIPTS="${RAIBID_TESTBED_IMAGES:-$HERE/images}"  # override only for development
# Kubernetes release built by cluster/build.sh (1.34: last kubelet that runs on
# cgroup v1 without opting in, and talks to containerd 1.6).
export RAIBID_K8S_VERSION="${RAIBID_K8S_VERSION:-v1.34.4}"
# shellcheck source=testbed/lib.sh
source "$HERE/lib.sh"
CACHE="$RAIBID_CACHE"
export RAIBID_CACHE

# Addresses: all of them live on the bridge the testbed creates (or in pod netns).
NODE_NAME="raibid-testbed"
BRIDGE="raibid-cni0"
POD_CIDR="10.213.0.0/16"      # cluster CIDR (kube-proxy); this node uses the /24 below
POD_SUBNET="10.213.0.0/24"
NODE_IP="10.213.0.1"          # bridge address: API server, kubelet, pods' gateway
SERVICE_CIDR="10.214.0.0/16"
KUBERNETES_SVC_IP="10.214.0.1"
DNS_SVC_IP="10.214.0.10"       # kube-dns Service; CoreDNS itself runs on the node IP
ETCD_CLIENT="127.0.0.1:23790"  # not the default port: never collide with another etcd
ETCD_PEER="127.0.0.1:23800"
API="https://$NODE_IP:6443"

# What `up` added to the host beyond $STATE (packages, kernel modules): kept by `down`, undone by `purge`.
HOST_CHANGES="$STATE/host-changes"
PKI="$STATE/pki"
LOGS="$STATE/logs"
PIDS="$STATE/pids"
CTRD_SOCK="$STATE/containerd/run/containerd.sock"
ADMIN_KUBECONFIG="$STATE/admin.kubeconfig"
# The kubectl built with the cluster (cluster/build.sh), unless one is given.
KUBECTL="${KUBECTL:-$CACHE/k8s/$RAIBID_K8S_VERSION/bin/kubectl}"
# Kernel settings that we (ip_forward) or kubelet (the rest) change; restored by down.
TOUCHED_SYSCTLS=(net/ipv4/ip_forward vm/overcommit_memory vm/panic_on_oom kernel/panic
  kernel/panic_on_oops kernel/keys/root_maxkeys kernel/keys/root_maxbytes)
COMPONENTS=(etcd kube-apiserver kube-controller-manager kube-scheduler coredns containerd kubelet
  kube-proxy local-path-provisioner)

log() { echo "[testbed] $*"; }
die() { echo "[testbed] ERROR: $*" >&2; exit 1; }

kc() { "$KUBECTL" --kubeconfig "$ADMIN_KUBECONFIG" "$@"; }

# ---------------------------------------------------------------- processes

pid_of() {  # prints the pid of a running component we started, else fails
  local f="$PIDS/$1.pid" pid
  [[ -s "$f" && -s "$PIDS/$1.exe" ]] || return 1
  pid="$(<"$f")"
  [[ -d "/proc/$pid" ]] || return 1
  # Guard against PID reuse: the process must still run the binary we started.
  grep -qF "$(<"$PIDS/$1.exe")" "/proc/$pid/cmdline" 2>/dev/null || return 1
  echo "$pid"
}

start_proc() {  # start_proc NAME BINARY ARGS...; no-op when already running
  local name="$1"; shift
  if pid_of "$name" >/dev/null; then
    log "$name already running (pid $(pid_of "$name"))"
    return 0
  fi
  log "starting $name"
  mkdir -p "$PIDS" "$LOGS"
  printf '%s' "$1" >"$PIDS/$name.exe"
  echo "=== $(date -u +%FT%TZ) testbed.sh starts: $*" >>"$LOGS/$name.log"
  # setsid: own session, so the caller's terminal signals do not reach it.
  setsid "$@" >>"$LOGS/$name.log" 2>&1 </dev/null &
  echo $! >"$PIDS/$name.pid"
}

stop_proc() {
  local name="$1" pid i
  if pid="$(pid_of "$name")"; then
    log "stopping $name (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
      [[ -d "/proc/$pid" ]] || break
      sleep 0.2
    done
    if [[ -d "/proc/$pid" ]]; then
      log "$name did not stop in 10s, killing it"
      kill -KILL "$pid" 2>/dev/null || true
      sleep 0.5
    fi
  fi
  rm -f "$PIDS/$name.pid" "$PIDS/$name.exe"
}

# Writes stdin to FILE only when it differs (kube-proxy exits when its config
# file changes; an idempotent `up` must not disturb running components). Sets
# CONFIG_CHANGED=1 when it wrote, so the caller restarts that component.
CONFIG_CHANGED=0
write_if_changed() {
  local tmp="$1.new"
  cat >"$tmp"
  if cmp -s "$tmp" "$1"; then
    rm -f "$tmp"; CONFIG_CHANGED=0
  else
    mv -f "$tmp" "$1"; CONFIG_CHANGED=1
  fi
}

restart_if_changed() {  # after write_if_changed: a running NAME gets the new config
  if ((CONFIG_CHANGED)) && pid_of "$1" >/dev/null; then
    log "configuration of $1 changed"
    stop_proc "$1"
  fi
}

wait_for() {  # wait_for SECONDS MESSAGE COMMAND...
  local secs="$1" msg="$2" i; shift 2
  log "waiting for $msg"
  for ((i = 0; i < secs; i++)); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 1
  done
  show_dead_components
  die "timed out after ${secs}s waiting for $msg (logs in $LOGS)"
}

show_dead_components() {  # for a failed `up` in CI: the end of each dead component's log
  local c
  for c in "${COMPONENTS[@]}"; do
    if [[ -s "$PIDS/$c.pid" ]] && ! pid_of "$c" >/dev/null; then
      echo "[testbed] $c is not running; end of $LOGS/$c.log:" >&2
      tail -n 20 "$LOGS/$c.log" >&2 || true
    fi
  done
}

# ---------------------------------------------------------------- prerequisites

ensure_packages() {
  local need=()
  mapfile -t need < <(missing_packages "${RAIBID_CLUSTER_PACKAGES[@]}" "${RAIBID_IMAGE_PACKAGES[@]}")
  if ((${#need[@]})); then
    log "installing Debian packages: ${need[*]}"
    apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null
    printf 'package %s\n' "${need[@]}" >>"$HOST_CHANGES"
  fi
}

# ---------------------------------------------------------------- certificates

gen_cert() {  # gen_cert NAME SUBJECT [SANS]; client cert unless SANS given
  local name="$1" subj="$2" sans="${3:-}" ext
  [[ -s "$PKI/$name.crt" ]] && return 0
  openssl genrsa -out "$PKI/$name.key" 2048 2>/dev/null
  openssl req -new -key "$PKI/$name.key" -subj "$subj" -out "$PKI/$name.csr" 2>/dev/null
  ext="$PKI/$name.ext"
  {
    echo "basicConstraints=critical,CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    if [[ -n "$sans" ]]; then
      echo "extendedKeyUsage=serverAuth"
      echo "subjectAltName=$sans"
    else
      echo "extendedKeyUsage=clientAuth"
    fi
  } >"$ext"
  openssl x509 -req -in "$PKI/$name.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" \
    -CAcreateserial -days 3650 -sha256 -extfile "$ext" -out "$PKI/$name.crt" 2>/dev/null
  rm -f "$PKI/$name.csr" "$ext"
}

write_kubeconfig() {  # write_kubeconfig FILE CERTNAME
  local file="$1" cert="$2"
  [[ -s "$file" ]] && return 0
  cat >"$file" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: raibid-testbed
  cluster:
    server: $API
    certificate-authority-data: $(base64 -w0 "$PKI/ca.crt")
users:
- name: $cert
  user:
    client-certificate-data: $(base64 -w0 "$PKI/$cert.crt")
    client-key-data: $(base64 -w0 "$PKI/$cert.key")
contexts:
- name: raibid-testbed
  context: {cluster: raibid-testbed, user: $cert}
current-context: raibid-testbed
EOF
  chmod 600 "$file"
}

# Paths outside $STATE that kubelet and the CNI library use whatever they are
# told (device-plugin socket, log symlinks, CNI result cache). `up` notes which
# of them did not exist before, `down` removes its files there and those
# directories again when empty.
HOST_DIRS=(/var/lib/kubelet /var/log/pods /var/log/containers /var/lib/cni)

note_host_dirs() {
  local d
  for d in "${HOST_DIRS[@]}"; do
    [[ -e "$d" ]] || grep -qxF "$d" "$STATE/made-dirs" 2>/dev/null || echo "$d" >>"$STATE/made-dirs"
  done
}

cleanup_host_dirs() {
  local d
  # Ours by name or target: kubelet's socket only if we made its directory.
  find /var/log/containers -maxdepth 1 -type l -lname "$STATE/*" -delete 2>/dev/null || true
  rm -f /var/lib/cni/results/raibid-*  # CNI caches results as <network>-<container>-<if>
  [[ -s "$STATE/made-dirs" ]] || return 0
  if grep -qxF /var/lib/kubelet "$STATE/made-dirs"; then
    rm -f /var/lib/kubelet/device-plugins/kubelet.sock
  fi
  while read -r d; do
    if [[ -d "$d" ]]; then find "$d" -depth -type d -empty -delete 2>/dev/null || true; fi
  done <"$STATE/made-dirs"
}

ensure_pki() {
  mkdir -p "$PKI"
  chmod 700 "$PKI"
  if [[ ! -s "$PKI/ca.crt" ]]; then
    log "creating certificates in $PKI"
    openssl genrsa -out "$PKI/ca.key" 2048 2>/dev/null
    openssl req -x509 -new -key "$PKI/ca.key" -subj "/CN=raibid-testbed-ca" -days 3650 \
      -sha256 -out "$PKI/ca.crt" 2>/dev/null
  fi
  gen_cert apiserver "/CN=kube-apiserver" \
    "IP:$NODE_IP,IP:$KUBERNETES_SVC_IP,IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
  gen_cert apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client"
  gen_cert admin "/O=system:masters/CN=raibid-admin"
  gen_cert controller-manager "/CN=system:kube-controller-manager"
  gen_cert scheduler "/CN=system:kube-scheduler"
  gen_cert kube-proxy "/CN=system:kube-proxy"
  gen_cert kubelet "/O=system:nodes/CN=system:node:$NODE_NAME"
  gen_cert provisioner "/O=system:masters/CN=raibid-local-path-provisioner"
  gen_cert coredns "/O=system:masters/CN=raibid-coredns"
  [[ -s "$PKI/sa.key" ]] || {
    openssl genrsa -out "$PKI/sa.key" 2048 2>/dev/null
    openssl rsa -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub" 2>/dev/null
  }
  write_kubeconfig "$ADMIN_KUBECONFIG" admin
  local c
  for c in controller-manager scheduler kube-proxy kubelet provisioner coredns; do
    write_kubeconfig "$STATE/$c.kubeconfig" "$c"
  done
}

# ---------------------------------------------------------------- network

ensure_network() {
  # The bridge exists before the API server starts: its address is the node IP.
  if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
    log "creating bridge $BRIDGE ($NODE_IP)"
    ip link add "$BRIDGE" type bridge
  fi
  [[ "$(ip -4 -o addr show dev "$BRIDGE")" == *" $NODE_IP/"* ]] || ip addr add "$NODE_IP/24" dev "$BRIDGE"
  ip link set "$BRIDGE" up
  # Unassigned service IPs go to the bridge (nobody answers), never to the default route.
  ip route replace "$SERVICE_CIDR" dev "$BRIDGE"

  # Pods and services need forwarding; kubelet tunes a few kernel settings too.
  # Remember the old values once, so `down` restores them.
  if [[ ! -s "$STATE/sysctl.orig" ]]; then
    local k
    for k in "${TOUCHED_SYSCTLS[@]}"; do
      [[ -e "/proc/sys/$k" ]] && echo "$k $(<"/proc/sys/$k")"
    done >"$STATE/sysctl.orig"
  fi
  echo 1 >/proc/sys/net/ipv4/ip_forward
  # Pod<->service traffic on one bridge must pass iptables (kube-proxy DNAT).
  if [[ -e /proc/sys/net/bridge/bridge-nf-call-iptables ]]; then
    echo 1 >/proc/sys/net/bridge/bridge-nf-call-iptables
  else
    if modprobe br_netfilter 2>/dev/null; then
      echo "module br_netfilter" >>"$HOST_CHANGES"
      echo 1 >/proc/sys/net/bridge/bridge-nf-call-iptables
    else
      log "warning: br_netfilter unavailable"
    fi
  fi

  # Nothing from the pod network leaves the machine: drop forwarded pod traffic
  # that would go out of any interface but the testbed bridge. In the mangle
  # table, which runs before kube-proxy's filter rules and which it leaves alone.
  iptables -t mangle -N RAIBID-FORWARD 2>/dev/null || iptables -t mangle -F RAIBID-FORWARD
  iptables -t mangle -A RAIBID-FORWARD -i "$BRIDGE" ! -o "$BRIDGE" -j DROP
  iptables -t mangle -C FORWARD -j RAIBID-FORWARD 2>/dev/null ||
    iptables -t mangle -I FORWARD 1 -j RAIBID-FORWARD
}

write_cni_config() {
  mkdir -p "$STATE/cni/net.d" "$STATE/cni/ipam"
  write_if_changed "$STATE/cni/net.d/10-raibid.conflist" <<EOF
{
  "cniVersion": "0.4.0",
  "name": "raibid",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$BRIDGE",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "dataDir": "$STATE/cni/ipam",
        "ranges": [[{"subnet": "$POD_SUBNET", "gateway": "$NODE_IP"}]],
        "routes": [{"dst": "0.0.0.0/0"}]
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
EOF
}

# ---------------------------------------------------------------- components

start_etcd() {
  mkdir -p "$STATE/etcd"
  chmod 700 "$STATE/etcd"
  start_proc etcd "$(command -v etcd)" --name raibid --data-dir "$STATE/etcd" \
    --listen-client-urls "http://$ETCD_CLIENT" --advertise-client-urls "http://$ETCD_CLIENT" \
    --listen-peer-urls "http://$ETCD_PEER" --initial-advertise-peer-urls "http://$ETCD_PEER" \
    --initial-cluster "raibid=http://$ETCD_PEER" --initial-cluster-state new
  wait_for 60 "etcd" curl -fsS "http://$ETCD_CLIENT/health"
}

start_apiserver() {
  start_proc kube-apiserver "$BIN/kube-apiserver" \
    --etcd-servers "http://$ETCD_CLIENT" \
    --bind-address "$NODE_IP" --advertise-address "$NODE_IP" --secure-port 6443 \
    --service-cluster-ip-range "$SERVICE_CIDR" \
    --client-ca-file "$PKI/ca.crt" \
    --tls-cert-file "$PKI/apiserver.crt" --tls-private-key-file "$PKI/apiserver.key" \
    --kubelet-client-certificate "$PKI/apiserver-kubelet-client.crt" \
    --kubelet-client-key "$PKI/apiserver-kubelet-client.key" \
    --kubelet-preferred-address-types InternalIP \
    --service-account-key-file "$PKI/sa.pub" \
    --service-account-signing-key-file "$PKI/sa.key" \
    --service-account-issuer https://kubernetes.default.svc.cluster.local \
    --authorization-mode Node,RBAC --enable-admission-plugins NodeRestriction \
    --allow-privileged=true --profiling=false --v=1
  wait_for 120 "kube-apiserver" kc get --raw /readyz
}

start_controllers() {
  start_proc kube-controller-manager "$BIN/kube-controller-manager" \
    --kubeconfig "$STATE/controller-manager.kubeconfig" \
    --authentication-kubeconfig "$STATE/controller-manager.kubeconfig" \
    --authorization-kubeconfig "$STATE/controller-manager.kubeconfig" \
    --bind-address 127.0.0.1 --secure-port 10257 --leader-elect=false \
    --service-account-private-key-file "$PKI/sa.key" --root-ca-file "$PKI/ca.crt" \
    --cluster-signing-cert-file "$PKI/ca.crt" --cluster-signing-key-file "$PKI/ca.key" \
    --use-service-account-credentials --cluster-name raibid-testbed \
    --service-cluster-ip-range "$SERVICE_CIDR" --allocate-node-cidrs=false \
    --profiling=false --v=1
  start_proc kube-scheduler "$BIN/kube-scheduler" \
    --kubeconfig "$STATE/scheduler.kubeconfig" \
    --authentication-kubeconfig "$STATE/scheduler.kubeconfig" \
    --authorization-kubeconfig "$STATE/scheduler.kubeconfig" \
    --bind-address 127.0.0.1 --secure-port 10259 --leader-elect=false \
    --profiling=false --v=1
}

# Cluster DNS: CoreDNS as a node process on the node IP, behind the usual
# kube-dns Service (an EndpointSlice points at the node IP). No `forward`:
# names outside cluster.local are not resolved, nothing is asked off the machine.
start_coredns() {
  # Cluster zones go to the kubernetes plugin; any other name gets NXDOMAIN.
  write_if_changed "$STATE/Corefile" <<EOF
cluster.local:53 in-addr.arpa:53 ip6.arpa:53 {
    bind $NODE_IP
    errors
    health 127.0.0.1:18080
    ready 127.0.0.1:18181
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        kubeconfig $STATE/coredns.kubeconfig raibid-testbed
        pods insecure
        ttl 30
    }
    cache 30
    loadbalance
}
.:53 {
    bind $NODE_IP
    template ANY ANY {
        rcode NXDOMAIN
    }
}
EOF
  restart_if_changed coredns
  start_proc coredns "$COREDNS" -conf "$STATE/Corefile"
  kc apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Service
metadata:
  name: kube-dns
  namespace: kube-system
  labels: {k8s-app: kube-dns, kubernetes.io/name: CoreDNS}
spec:
  clusterIP: $DNS_SVC_IP
  ports:
  - {name: dns, port: 53, protocol: UDP, targetPort: 53}
  - {name: dns-tcp, port: 53, protocol: TCP, targetPort: 53}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: kube-dns-node
  namespace: kube-system
  labels: {kubernetes.io/service-name: kube-dns, endpointslice.kubernetes.io/managed-by: raibid-testbed}
addressType: IPv4
endpoints:
- addresses: ["$NODE_IP"]
  conditions: {ready: true}
ports:
- {name: dns, port: 53, protocol: UDP}
- {name: dns-tcp, port: 53, protocol: TCP}
EOF
  wait_for 60 "coredns" curl -fsS http://127.0.0.1:18181/ready
}

start_containerd() {
  local d="$STATE/containerd"
  mkdir -p "$d/root" "$d/state" "$d/run"
  # Own root/state/socket: never touches a system containerd. Notes on settings:
  # - restrict_oom_score_adj: root here lacks CAP_SYS_RESOURCE, so lowering a
  #   container's oom_score_adj below containerd's own would fail.
  # - netns under the state dir, so `down` finds and unmounts only ours.
  # - SystemdCgroup=false: cgroup v1 with the cgroupfs driver (matches kubelet).
  write_if_changed "$d/config.toml" <<EOF
version = 2
root = "$d/root"
state = "$d/state"
oom_score = 0

[grpc]
  address = "$CTRD_SOCK"

[ttrpc]
  address = "$d/run/containerd.sock.ttrpc"

[debug]
  address = ""

[metrics]
  address = ""

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$RAIBID_PAUSE_IMAGE"
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  enable_selinux = false
  disable_apparmor = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "$(command -v runc)"
        Root = "$d/runc"
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$STATE/cni/net.d"
    max_conf_num = 1
EOF
  restart_if_changed containerd
  start_proc containerd "$(command -v containerd)" --config "$d/config.toml"
  wait_for 60 "containerd" ctr --address "$CTRD_SOCK" version
}

import_images() {
  local tar stamp n=0
  mkdir -p "$STATE/images"
  for tar in "$RAIBID_IMAGES_DIR"/*.tar; do
    [[ -f "$tar" ]] || continue
    n=$((n + 1))
    # Re-import only a tarball that changed since the last import into this containerd.
    stamp="$(stat -c '%s-%Y' "$tar")"
    [[ "$(cat "$STATE/images/$(basename "$tar").stamp" 2>/dev/null)" == "$stamp" ]] && continue
    log "importing image $(basename "$tar" .tar)"
    ctr --address "$CTRD_SOCK" -n k8s.io images import --all-platforms "$tar" >/dev/null
    echo "$stamp" >"$STATE/images/$(basename "$tar").stamp"
  done
  ((n)) || die "no image tarballs in $RAIBID_IMAGES_DIR"
  local have  # (not a pipe into grep -q: with pipefail, ctr's SIGPIPE would fail it)
  have="$(ctr --address "$CTRD_SOCK" -n k8s.io images ls -q)"
  grep -qxF "$RAIBID_PAUSE_IMAGE" <<<"$have" ||
    die "sandbox image $RAIBID_PAUSE_IMAGE is not in containerd after import"
}

start_kubelet() {
  mkdir -p "$STATE/kubelet" "$STATE/kubelet-pki" "$STATE/pod-logs"
  write_if_changed "$STATE/kubelet-config.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $NODE_IP
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $PKI/ca.crt}
authorization: {mode: Webhook}
cgroupDriver: cgroupfs
containerRuntimeEndpoint: unix://$CTRD_SOCK
failSwapOn: false
clusterDomain: cluster.local
clusterDNS: ["$DNS_SVC_IP"]
resolvConf: /etc/resolv.conf
# A testbed: never evict pods because the disk of a CI machine is full-ish.
evictionHard: {memory.available: "100Mi", nodefs.available: "1%", imagefs.available: "1%", nodefs.inodesFree: "1%"}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
# The images are imported locally; there is no registry to pull from.
serializeImagePulls: false
protectKernelDefaults: false
maxPods: 60
podLogsDir: $STATE/pod-logs
EOF
  restart_if_changed kubelet
  start_proc kubelet "$BIN/kubelet" --config "$STATE/kubelet-config.yaml" \
    --kubeconfig "$STATE/kubelet.kubeconfig" --root-dir "$STATE/kubelet" \
    --cert-dir "$STATE/kubelet-pki" --hostname-override "$NODE_NAME" --node-ip "$NODE_IP" --v=1
}

start_kube_proxy() {
  write_if_changed "$STATE/kube-proxy-config.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: $STATE/kube-proxy.kubeconfig}
mode: iptables
hostnameOverride: $NODE_NAME
clusterCIDR: $POD_CIDR
bindAddress: $NODE_IP
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
# NodePorts only on the testbed's own address.
nodePortAddresses: ["$NODE_IP/32"]
# Zeros: leave the kernel's conntrack limits and timeouts as they are.
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
EOF
  restart_if_changed kube-proxy
  start_proc kube-proxy "$BIN/kube-proxy" --config "$STATE/kube-proxy-config.yaml" --v=1
}

apply_addons() {
  kc apply -f - >/dev/null <<'EOF'
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: local-path
  annotations:
    storageclass.kubernetes.io/is-default-class: "true"
provisioner: raibid.local/local-path
reclaimPolicy: Delete
volumeBindingMode: Immediate
EOF
  mkdir -p "$STATE/volumes"
  start_proc local-path-provisioner /usr/bin/python3 "$HERE/cluster/local-path-provisioner.py" \
    --kubeconfig "$STATE/provisioner.kubeconfig" --kubectl "$KUBECTL" --dir "$STATE/volumes"
}

node_ready() {
  [[ "$(kc get node "$NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}')" == True ]]
}

default_sa_exists() { kc -n default get serviceaccount default; }

# ---------------------------------------------------------------- up / down

cmd_up() {
  [[ $EUID -eq 0 ]] || die "must run as root (it starts kubelet, containerd, iptables)"
  local t0=$SECONDS
  # Starting from scratch: drop the logs of the previous cluster.
  if ! pid_of etcd >/dev/null && ! pid_of kube-apiserver >/dev/null; then rm -rf "$LOGS"; fi
  mkdir -p "$STATE" "$LOGS" "$PIDS"
  ensure_packages
  log "kubernetes binaries (cache: $CACHE)"
  BIN="$(bash "$HERE/cluster/build.sh")"
  [[ -x "$KUBECTL" ]] || die "kubectl not found at $KUBECTL (set KUBECTL=...)"
  COREDNS="$(bash "$HERE/cluster/build-coredns.sh")"
  log "container images"
  load_images_env
  : "${RAIBID_PAUSE_IMAGE:?images.env must set it}" "${RAIBID_IMAGES_DIR:?images.env must set it}"
  bash "$IMAGES_SCRIPTS/build.sh" >&2

  note_host_dirs
  ensure_pki
  ensure_network
  write_cni_config
  start_etcd
  start_apiserver
  start_controllers
  start_coredns
  start_containerd
  import_images
  start_kubelet
  start_kube_proxy
  wait_for 180 "node $NODE_NAME to be Ready" node_ready
  apply_addons
  wait_for 60 "the default service account" default_sa_exists
  log "up in $((SECONDS - t0))s; kubeconfig:"
  echo "$ADMIN_KUBECONFIG"
}

# Stops pods through kubelet, so CNI DEL runs (veths, IPs, hostport rules).
drain_pods() {
  pid_of kube-apiserver >/dev/null && pid_of kubelet >/dev/null && pid_of containerd >/dev/null || return 0
  log "deleting all pods so kubelet tears down their networking"
  kc cordon "$NODE_NAME" >/dev/null 2>&1 || true
  kc delete pods --all --all-namespaces --grace-period=1 --wait=false >/dev/null 2>&1 || true
  local i
  for ((i = 0; i < 40; i++)); do
    [[ -z "$(ctr --address "$CTRD_SOCK" -n k8s.io tasks ls -q 2>/dev/null)" ]] && return 0
    sleep 1
  done
  log "pods still running after 40s; killing them"
}

kill_containers() {
  pid_of containerd >/dev/null || return 0
  local t
  for t in $(ctr --address "$CTRD_SOCK" -n k8s.io tasks ls -q 2>/dev/null); do
    ctr --address "$CTRD_SOCK" -n k8s.io tasks kill -a -s SIGKILL "$t" >/dev/null 2>&1 || true
  done
  sleep 1
  for t in $(ctr --address "$CTRD_SOCK" -n k8s.io tasks ls -q 2>/dev/null); do
    ctr --address "$CTRD_SOCK" -n k8s.io tasks delete -f "$t" >/dev/null 2>&1 || true
  done
}

# containerd-shim processes of our containerd outlive it; they name our socket.
kill_shims() {
  local p
  for p in /proc/[0-9]*; do
    if [[ "$({ tr '\0' ' ' <"$p/cmdline"; } 2>/dev/null)" == *"-address $CTRD_SOCK "* ]]; then
      log "killing leftover shim ${p#/proc/}"
      kill -KILL "${p#/proc/}" 2>/dev/null || true
    fi
  done
}

# Processes left in kubelet's cgroups are containers of this testbed.
cleanup_cgroups() {
  local ctl pid
  for ctl in /sys/fs/cgroup/*/; do
    [[ -d "$ctl/kubepods" ]] || continue
    while read -r pid; do
      if [[ -n "$pid" ]]; then kill -KILL "$pid" 2>/dev/null || true; fi
    done < <(cat "$ctl"/kubepods/cgroup.procs "$ctl"/kubepods/**/cgroup.procs 2>/dev/null || true)
    # Remove leaves first.
    find "$ctl/kubepods" -depth -type d -exec rmdir {} \; 2>/dev/null || true
  done
}

unmount_state() {
  local m
  # Deepest first; -l for busy ones (a lingering process is already killed).
  while read -r m; do
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || log "could not unmount $m"
  done < <(awk -v s="$STATE/" 'index($5, s) == 1 {print $5}' /proc/self/mountinfo | sort -r)
}

del_chain() {  # del_chain iptables|ip6tables TABLE CHAIN: its jumps, rules, itself
  local ipt="$1" table="$2" chain="$3" rule
  "$ipt" -t "$table" -S "$chain" >/dev/null 2>&1 || return 0
  while read -r rule; do
    # eval: -S prints rules shell-quoted (comments with spaces).
    eval "$ipt -t $table ${rule/#-A/-D}" 2>/dev/null || true
  done < <("$ipt" -t "$table" -S | grep -E -- "-j $chain( |\$)" || true)
  "$ipt" -t "$table" -F "$chain" 2>/dev/null || true
  "$ipt" -t "$table" -X "$chain" 2>/dev/null || true
}

cleanup_iptables() {
  if [[ -n "${BIN:-}" && -x "$BIN/kube-proxy" ]]; then
    "$BIN/kube-proxy" --cleanup >/dev/null 2>&1 || true
  fi
  local table chain
  # Chains kubelet makes for its own iptables monitoring.
  for table in mangle nat filter; do
    for chain in KUBE-KUBELET-CANARY KUBE-IPTABLES-HINT KUBE-FIREWALL; do
      del_chain iptables "$table" "$chain"
      del_chain ip6tables "$table" "$chain"
    done
  done
  del_chain iptables mangle RAIBID-FORWARD
}

cmd_down() {
  [[ $EUID -eq 0 ]] || die "must run as root"
  [[ -d "$STATE" ]] || { log "not up (no $STATE)"; return 0; }
  BIN="$CACHE/k8s/$RAIBID_K8S_VERSION/bin"  # for kube-proxy --cleanup; never builds
  [[ -x "$KUBECTL" ]] || KUBECTL="$(command -v kubectl || echo kubectl)"
  drain_pods
  stop_proc local-path-provisioner
  stop_proc kubelet
  kill_containers
  stop_proc containerd
  kill_shims
  cleanup_cgroups
  stop_proc kube-proxy
  stop_proc coredns
  stop_proc kube-scheduler
  stop_proc kube-controller-manager
  stop_proc kube-apiserver
  stop_proc etcd
  unmount_state
  cleanup_iptables
  cleanup_host_dirs
  ip route del "$SERVICE_CIDR" dev "$BRIDGE" 2>/dev/null || true
  if ip link show "$BRIDGE" >/dev/null 2>&1; then
    log "removing bridge $BRIDGE"
    ip link del "$BRIDGE"
  fi
  if [[ -s "$STATE/sysctl.orig" ]]; then
    local k v
    while read -r k v; do echo "$v" >"/proc/sys/$k" 2>/dev/null || true; done <"$STATE/sysctl.orig"
  fi
  # Fresh cluster on every `up`: certificates, etcd data, volumes all go; the
  # logs stay (for a post-mortem) until the next `up` from scratch.
  log "removing $STATE (except logs/)"
  find "$STATE" -mindepth 1 -maxdepth 1 ! -name logs ! -name host-changes -exec rm -rf --one-file-system {} +
  log "down"
}

# For fault tests: the API server goes away and comes back, as in a control-plane upgrade.
cmd_restart_apiserver() {
  [[ $EUID -eq 0 ]] || die "must run as root"
  pid_of kube-apiserver >/dev/null || die "kube-apiserver is not running (testbed.sh up first)"
  BIN="$CACHE/k8s/$RAIBID_K8S_VERSION/bin"
  stop_proc kube-apiserver
  sleep "${RAIBID_APISERVER_DOWN_SECONDS:-8}"
  start_apiserver
}

cmd_purge() {
  cmd_down
  local kind name packages=()
  if [[ -s "$HOST_CHANGES" ]]; then
    while read -r kind name; do
      case "$kind" in
        module) log "unloading kernel module $name"; modprobe -r "$name" 2>/dev/null || log "$name is in use, left loaded" ;;
        package) packages+=("$name") ;;
      esac
    done <"$HOST_CHANGES"
  fi
  if ((${#packages[@]})); then
    log "removing the Debian packages the testbed installed: ${packages[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get purge -y -q "${packages[@]}" >/dev/null
  fi
  log "removing $STATE"
  rm -rf --one-file-system "$STATE"
  if [[ "$(basename "$CACHE")" == raibid && -d "$CACHE" ]]; then
    log "removing the build cache $CACHE ($(du -sh "$CACHE" | cut -f1))"
    rm -rf --one-file-system "$CACHE"
  fi
  log "left alone, shared with any Go work: Go's module and build caches ('go clean -modcache -cache' empties them)"
}

cmd_status() {
  local c pid rc=0
  for c in "${COMPONENTS[@]}"; do
    if pid="$(pid_of "$c")"; then echo "$c: running (pid $pid)"; else echo "$c: stopped"; rc=1; fi
  done
  if [[ -s "$ADMIN_KUBECONFIG" ]] && node_ready 2>/dev/null; then
    echo "node $NODE_NAME: Ready"
  else
    echo "node $NODE_NAME: not ready"; rc=1
  fi
  echo "kubeconfig: $ADMIN_KUBECONFIG"
  return "$rc"
}

case "${1:-}" in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  purge) cmd_purge ;;
  restart-apiserver) cmd_restart_apiserver ;;
  *) echo "usage: $0 up|down|status|purge|restart-apiserver" >&2; exit 2 ;;
esac
