"""The stand-in chart installed, upgraded and uninstalled on a cluster (the `kubeconfig` fixture of conftest.py: the
local testbed, or RAIBID_TEST_KUBECONFIG): standalone with metrics, TLS with replication, a replica that syncs."""
import base64
import re
import ssl
import time
import uuid

import pytest
from chart_helpers import CHART, RELEASE, TLS_GENERATED, PortForward, http_get, resp_commands, run_helm


def test_install_ready_auth_ping_upgrade_uninstall(helm, kubeconfig, kubectl, namespace, tmp_path):
    kc = ["--kubeconfig", kubeconfig]
    values = {"metrics": {"enabled": True}, "master": {"persistence": {"size": "1Gi"}}}
    run_helm(helm, "install", RELEASE, str(CHART), "-n", namespace, *kc, "--wait", "--timeout", "300s",
             values=values, tmp_path=tmp_path, timeout=360)

    pod = kubectl.json("get", "pod", "raibid-redis-master-0", "-n", namespace)
    statuses = pod["status"]["containerStatuses"]
    assert len(statuses) == 2 and all(c["ready"] for c in statuses), statuses
    assert pod["metadata"]["labels"]["app.kubernetes.io/component"] == "master"
    pvc = kubectl.json("get", "pvc", "redis-data-raibid-redis-master-0", "-n", namespace)
    assert pvc["status"]["phase"] == "Bound"
    secret = kubectl.json("get", "secret", RELEASE, "-n", namespace)
    password = base64.b64decode(secret["data"]["redis-password"]).decode()

    # The generated password is not written into the release's values (what helm_info returns).
    for extra in ([], ["--all"]):
        shown = run_helm(helm, "get", "values", RELEASE, "-n", namespace, *kc, *extra, "-o", "json").stdout
        assert password not in shown and "_rendered" not in shown

    with PortForward(kubectl, namespace, "pod/raibid-redis-master-0", 6379) as pf:
        assert resp_commands(pf.port, ["PING"])[0].startswith("-NOAUTH")
        assert resp_commands(pf.port, ["AUTH", password], ["PING"]) == ["+OK", "+PONG"]
        assert resp_commands(pf.port, ["AUTH", password], ["FLUSHALL"])[1].startswith("-ERR unknown command")
    with PortForward(kubectl, namespace, "svc/raibid-redis-metrics", 9121) as pf:
        assert re.search(r"^redis_up 1$", http_get(pf.port), re.M)

    # A re-run without a password keeps the Secret's password (lookup) and does not restart the pod.
    uid = pod["metadata"]["uid"]
    run_helm(helm, "upgrade", RELEASE, str(CHART), "-n", namespace, *kc, "--wait", "--timeout", "300s",
             values=values, tmp_path=tmp_path, timeout=360)
    again = kubectl.json("get", "secret", RELEASE, "-n", namespace)
    assert again["data"]["redis-password"] == secret["data"]["redis-password"]
    assert kubectl.json("get", "pod", "raibid-redis-master-0", "-n", namespace)["metadata"]["uid"] == uid

    # An explicit new auth.password rotates it: new Secret, restarted pod, new password works.
    rotated = dict(values, auth={"password": "rotated-" + uuid.uuid4().hex})
    run_helm(helm, "upgrade", RELEASE, str(CHART), "-n", namespace, *kc, "--wait", "--timeout", "300s",
             values=rotated, tmp_path=tmp_path, timeout=360)
    secret = kubectl.json("get", "secret", RELEASE, "-n", namespace)
    assert base64.b64decode(secret["data"]["redis-password"]).decode() == rotated["auth"]["password"]
    kubectl("rollout", "status", "statefulset/raibid-redis-master", "-n", namespace, "--timeout=180s")
    kubectl("wait", "--for=condition=Ready", "pod/raibid-redis-master-0", "-n", namespace, "--timeout=180s")
    assert kubectl.json("get", "pod", "raibid-redis-master-0", "-n", namespace)["metadata"]["uid"] != uid
    with PortForward(kubectl, namespace, "pod/raibid-redis-master-0", 6379) as pf:
        assert resp_commands(pf.port, ["AUTH", rotated["auth"]["password"]], ["PING"]) == ["+OK", "+PONG"]

    run_helm(helm, "uninstall", RELEASE, "-n", namespace, *kc, "--wait", "--timeout", "120s", timeout=180)
    # The pod goes with its StatefulSet, in the background: wait for it too.
    kubectl("wait", "--for=delete", "pod/raibid-redis-master-0", "-n", namespace, "--timeout=120s",
            check=False)
    left = kubectl("get", "statefulset,service,configmap,secret,pod", "-n", namespace,
                   "-l", f"app.kubernetes.io/instance={RELEASE}", "-o", "name")
    assert left.strip() == "", left
    # Like bitnami/redis, the StatefulSet's PVC survives uninstall; the namespace fixture removes it.


def test_tls_install_replication_metrics_upgrade(helm, kubeconfig, kubectl, namespace, tmp_path):
    """TLS with the chart's own certificates and client certificates required (the chart default)."""
    kc = ["--kubeconfig", kubeconfig]
    values = dict(TLS_GENERATED, architecture="replication", metrics={"enabled": True},
                  replica={"replicaCount": 1, "persistence": {"enabled": False}},
                  master={"persistence": {"enabled": False}})
    run_helm(helm, "install", RELEASE, str(CHART), "-n", namespace, *kc, "--wait", "--timeout", "300s",
             values=values, tmp_path=tmp_path, timeout=360)
    certs = kubectl.json("get", "secret", f"{RELEASE}-crt", "-n", namespace)["data"]
    for key, data in certs.items():
        (tmp_path / key).write_bytes(base64.b64decode(data))
    password = base64.b64decode(
        kubectl.json("get", "secret", RELEASE, "-n", namespace)["data"]["redis-password"]).decode()
    anonymous = ssl.create_default_context(cafile=str(tmp_path / "ca.crt"))
    client = ssl.create_default_context(cafile=str(tmp_path / "ca.crt"))
    client.load_cert_chain(str(tmp_path / "tls.crt"), str(tmp_path / "tls.key"))

    with PortForward(kubectl, namespace, "pod/raibid-redis-master-0", 6379) as pf:
        # The certificate is checked against "localhost", one of its names.
        assert resp_commands(pf.port, ["AUTH", password], ["PING"], tls=client) == ["+OK", "+PONG"]
        with pytest.raises((OSError, ssl.SSLError)):  # no client certificate
            resp_commands(pf.port, ["AUTH", password], tls=anonymous)
        try:
            plain = resp_commands(pf.port, ["PING"])
        except OSError:
            plain = None
        assert plain in (None, [""]), plain  # plain TCP is off: the TLS port just hangs up
    with PortForward(kubectl, namespace, "svc/raibid-redis-metrics", 9121) as pf:
        assert re.search(r"^redis_up 1$", http_get(pf.port), re.M)

    info = ""
    deadline = time.monotonic() + 90
    while "master_link_status:up" not in info and time.monotonic() < deadline:
        time.sleep(2)
        info = kubectl("exec", "-n", namespace, "raibid-redis-replicas-0", "-c", "redis", "--", "bash", "-c",
                       'REDISCLI_AUTH="$(< "$REDIS_PASSWORD_FILE")" redis-cli --tls --cacert "$REDIS_TLS_CA_FILE"'
                       ' --cert "$REDIS_TLS_CERT_FILE" --key "$REDIS_TLS_KEY_FILE" info replication', check=False)
    assert "master_link_status:up" in info, info

    # An upgrade with the same values keeps the certificates and the pods.
    uid = kubectl.json("get", "pod", "raibid-redis-master-0", "-n", namespace)["metadata"]["uid"]
    run_helm(helm, "upgrade", RELEASE, str(CHART), "-n", namespace, *kc, "--wait", "--timeout", "300s",
             values=values, tmp_path=tmp_path, timeout=360)
    assert kubectl.json("get", "secret", f"{RELEASE}-crt", "-n", namespace)["data"] == certs
    assert kubectl.json("get", "pod", "raibid-redis-master-0", "-n", namespace)["metadata"]["uid"] == uid
    run_helm(helm, "uninstall", RELEASE, "-n", namespace, *kc, "--wait", "--timeout", "120s", timeout=180)


def test_replication_replica_syncs(helm, kubeconfig, kubectl, namespace, tmp_path):
    kc = ["--kubeconfig", kubeconfig]
    values = {"architecture": "replication", "replica": {"replicaCount": 1, "persistence": {"size": "1Gi"}},
              "master": {"persistence": {"size": "1Gi"}}}
    run_helm(helm, "install", RELEASE, str(CHART), "-n", namespace, *kc, "--wait", "--timeout", "300s",
             values=values, tmp_path=tmp_path, timeout=360)
    info = ""
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        info = kubectl("exec", "-n", namespace, "raibid-redis-replicas-0", "-c", "redis", "--", "bash", "-c",
                       'REDISCLI_AUTH="$(< "$REDIS_PASSWORD_FILE")" redis-cli info replication', check=False)
        if "master_link_status:up" in info:
            break
        time.sleep(2)
    assert "role:slave" in info and "master_link_status:up" in info, info
    run_helm(helm, "uninstall", RELEASE, "-n", namespace, *kc, "--wait", "--timeout", "120s", timeout=180)
