"""Tests of the Kubernetes testbed itself (or of RAIBID_TEST_KUBECONFIG's cluster).

Each test works in its own random namespace and checks real effects with kubectl:
a Ready node, a pod from a locally imported image, Service routing from the node,
kubectl port-forward, local-path volumes and namespace deletion.
"""
import re
import socket
import subprocess
import time

import pytest
from harness import stop_process

READY_TIMEOUT = "180s"


def redis_pod(name, image, labels=None, extra_spec=None, command=None):
    """A pod running redis-server from the local image, ready when it answers on 6379."""
    spec = {
        "containers": [{
            "name": "redis",
            "image": image,
            "imagePullPolicy": "IfNotPresent",
            "command": command or ["redis-server", "--port", "6379", "--protected-mode", "no",
                                   "--save", "", "--appendonly", "no"],
            "ports": [{"containerPort": 6379, "name": "redis"}],
            "readinessProbe": {"tcpSocket": {"port": 6379}, "periodSeconds": 1},
        }],
        "terminationGracePeriodSeconds": 1,
    }
    spec.update(extra_spec or {})
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": labels or {"app": name}},
        "spec": spec,
    }


def wait_ready(kubectl, namespace, target, timeout=READY_TIMEOUT):
    res = subprocess.run(kubectl.argv("wait", "-n", namespace, "--for=condition=Ready", target,
                                      f"--timeout={timeout}"),
                         capture_output=True, text=True, check=False)
    if res.returncode != 0:
        details = kubectl("describe", "-n", namespace, target, check=False)
        events = kubectl("get", "events", "-n", namespace, check=False)
        pytest.fail(f"{target} not Ready: {res.stderr}\n{details}\n{events}")


def redis_ping(host, port, timeout=5.0):
    """Plain RESP PING over TCP; returns the first reply line."""
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(b"PING\r\n")
        data = b""
        while not data.endswith(b"\r\n"):
            chunk = sock.recv(64)
            if not chunk:
                break
            data += chunk
    return data.decode().strip()


def retry(fn, seconds=30):
    """Calls fn until it returns without an exception (Service rules take a moment)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            return fn()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(1)


def test_node_is_ready(kubectl):
    nodes = kubectl.json("get", "nodes")["items"]
    assert nodes, "the cluster has no node"
    ready = [n["metadata"]["name"] for n in nodes
             if any(c["type"] == "Ready" and c["status"] == "True" for c in n["status"]["conditions"])]
    assert ready, f"no Ready node: {[n['status']['conditions'] for n in nodes]}"


def test_pod_from_local_image_becomes_ready(kubectl, namespace, images):
    kubectl.apply(redis_pod("redis", images["RAIBID_REDIS_IMAGE"]), namespace)
    wait_ready(kubectl, namespace, "pod/redis")
    pod = kubectl.json("get", "pod", "redis", "-n", namespace)
    assert pod["status"]["phase"] == "Running"
    assert pod["status"]["podIP"], "pod has no IP"
    out = kubectl("exec", "-n", namespace, "redis", "--", "redis-cli", "ping")
    assert out.strip() == "PONG"
    # Container logs reach kubectl (kubelet's log directory, CRI log format).
    assert "Ready to accept connections" in kubectl("logs", "-n", namespace, "redis")


def test_clusterip_service_answers_from_the_node(kubectl, namespace, images):
    kubectl.apply(redis_pod("redis", images["RAIBID_REDIS_IMAGE"], labels={"app": "redis"}), namespace)
    kubectl.apply({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "redis"},
        "spec": {"type": "ClusterIP", "selector": {"app": "redis"},
                 "ports": [{"port": 6379, "targetPort": "redis"}]},
    }, namespace)
    wait_ready(kubectl, namespace, "pod/redis")
    ip = kubectl("get", "service", "redis", "-n", namespace, "-o", "jsonpath={.spec.clusterIP}")
    assert re.fullmatch(r"[0-9.]+", ip), ip
    assert retry(lambda: redis_ping(ip, 6379)) == "+PONG"


def test_port_forward_reaches_a_pod(kubectl, namespace, images):
    kubectl.apply(redis_pod("redis", images["RAIBID_REDIS_IMAGE"]), namespace)
    wait_ready(kubectl, namespace, "pod/redis")
    proc = subprocess.Popen(
        kubectl.argv("port-forward", "-n", namespace, "pod/redis", "--address", "127.0.0.1", ":6379"),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        line = proc.stdout.readline()  # "Forwarding from 127.0.0.1:NNNNN -> 6379"
        match = re.search(r"127\.0\.0\.1:(\d+)", line)
        assert match, f"unexpected port-forward output: {line!r} {proc.stderr.read() if proc.poll() is not None else ''}"
        assert redis_ping("127.0.0.1", int(match.group(1))) == "+PONG"
    finally:
        stop_process(proc)


def test_local_path_pvc_binds_and_a_statefulset_uses_it(kubectl, namespace, images):
    classes = kubectl.json("get", "storageclass")["items"]
    local_path = [c for c in classes if c["metadata"]["name"] == "local-path"]
    assert local_path, "no StorageClass local-path"
    assert local_path[0]["metadata"].get("annotations", {}).get(
        "storageclass.kubernetes.io/is-default-class") == "true", "local-path is not the default class"

    # Like the redis chart: non-root user, an 8Gi claim template without a class.
    pod = redis_pod("x", images["RAIBID_REDIS_IMAGE"], command=[
        "bash", "-c", "echo written > /data/probe && exec redis-server --port 6379 --dir /data "
                      "--protected-mode no --save '' --appendonly no"])
    pod["spec"]["containers"][0]["volumeMounts"] = [{"name": "data", "mountPath": "/data"}]
    pod["spec"]["securityContext"] = {"runAsUser": 1001, "runAsGroup": 1001, "fsGroup": 1001}
    kubectl.apply({
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": "store"},
        "spec": {
            "serviceName": "store", "replicas": 1,
            "selector": {"matchLabels": {"app": "store"}},
            "template": {"metadata": {"labels": {"app": "store"}}, "spec": pod["spec"]},
            "volumeClaimTemplates": [{
                "metadata": {"name": "data"},
                "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "8Gi"}}},
            }],
        },
    }, namespace)
    kubectl("wait", "-n", namespace, "--for=jsonpath={.status.phase}=Bound", "pvc/data-store-0",
            "--timeout=120s")
    pvc = kubectl.json("get", "pvc", "data-store-0", "-n", namespace)
    assert pvc["spec"]["storageClassName"] == "local-path"
    assert pvc["status"]["capacity"]["storage"] == "8Gi"
    wait_ready(kubectl, namespace, "pod/store-0")
    assert kubectl("exec", "-n", namespace, "store-0", "--", "cat", "/data/probe").strip() == "written"

    # Reclaim: deleting the claim deletes its volume (policy Delete).
    pv_name = pvc["spec"]["volumeName"]
    kubectl("delete", "statefulset", "store", "-n", namespace, "--wait=true", "--timeout=120s")
    kubectl("wait", "-n", namespace, "--for=delete", "pod/store-0", "--timeout=120s")
    kubectl("delete", "pvc", "data-store-0", "-n", namespace, "--wait=true", "--timeout=120s")
    kubectl("wait", "--for=delete", f"pv/{pv_name}", "--timeout=120s")


def test_namespace_deletion_completes(kubectl, images):
    name = f"rtest-del-{int(time.time())}"
    kubectl("create", "namespace", name)
    try:
        kubectl.wait_for_default_service_account(name)
        kubectl.apply(redis_pod("redis", images["RAIBID_REDIS_IMAGE"]), name)
        kubectl("create", "configmap", "cm", "--from-literal=a=b", "-n", name)
        kubectl("create", "service", "clusterip", "svc", "--tcp=6379:6379", "-n", name)
        wait_ready(kubectl, name, "pod/redis")
        kubectl("delete", "namespace", name, "--wait=true", "--timeout=180s")
        res = subprocess.run(kubectl.argv("get", "namespace", name), capture_output=True, text=True, check=False)
        assert res.returncode != 0 and "NotFound" in res.stderr, res.stdout + res.stderr
    finally:
        kubectl("delete", "namespace", name, "--wait=false", "--ignore-not-found", check=False)


def test_cluster_dns_resolves_a_service(kubectl, namespace, images):
    """Cluster DNS (CoreDNS on the testbed): a pod resolves a Service's name."""
    if not kubectl("get", "service", "kube-dns", "-n", "kube-system", "--ignore-not-found").strip():
        pytest.skip("the cluster has no kube-dns Service")
    kubectl.apply(redis_pod("redis", images["RAIBID_REDIS_IMAGE"]), namespace)
    kubectl("create", "service", "clusterip", "named", "--tcp=6379:6379", "-n", namespace)
    ip = kubectl("get", "service", "named", "-n", namespace, "-o", "jsonpath={.spec.clusterIP}")
    wait_ready(kubectl, namespace, "pod/redis")
    # Short name through the pod's search path, and the full name.
    for name in ("named", f"named.{namespace}.svc.cluster.local"):
        out = kubectl("exec", "-n", namespace, "redis", "--", "getent", "hosts", name)
        assert out.split()[0] == ip, f"{name} resolved to {out!r}, want {ip}"
