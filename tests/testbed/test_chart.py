"""Tests of the stand-in redis chart (testbed/charts/redis).

Rendering tests need only helm (testbed/tools/helm.sh fetches it). The install test needs a
cluster: the `kubeconfig` fixture of conftest.py (the local testbed, or RAIBID_TEST_KUBECONFIG).
"""
import base64
import hashlib
import json
import re
import socket
import ssl
import subprocess
import time
import uuid
from pathlib import Path

import pytest
import yaml
from cryptography import x509

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "testbed" / "charts" / "redis"
RELEASE = "raibid-redis"

# Values shaped like the ones the raibid.queue.redis role renders (issue 4 defaults).
ROLE_VALUES = {
    "architecture": "standalone",
    "auth": {"enabled": True, "password": "p" * 32},
    "commonConfiguration": 'appendonly yes\nappendfsync everysec\nsave ""\nmaxmemory-policy noeviction',
    "master": {
        "persistence": {"enabled": True, "size": "8Gi", "storageClass": "local-path"},
        "resources": {"requests": {"memory": "256Mi", "cpu": "100m"},
                      "limits": {"memory": "512Mi", "cpu": "500m"}},
    },
    "metrics": {"enabled": True, "serviceMonitor": {"enabled": False},
                "extraArgs": {"check-streams": "raibid:jobs"}},
    "image": {"registry": "localhost", "repository": "raibid/redis", "tag": "7.0.15-testbed"},
    "global": {"security": {"allowInsecureImages": True}},
}


@pytest.fixture(scope="session")
def helm():
    res = subprocess.run(["bash", str(REPO / "testbed" / "tools" / "helm.sh")],
                         capture_output=True, text=True, timeout=600, check=False)
    assert res.returncode == 0, res.stderr
    path = res.stdout.strip().splitlines()[-1]
    assert Path(path).is_absolute() and Path(path).is_file()
    return path


def run_helm(helm, *args, values=None, tmp_path=None, check=True, timeout=120):
    argv = [helm, *args]
    if values is not None:
        vfile = tmp_path / f"values-{uuid.uuid4().hex[:6]}.yaml"
        vfile.write_text(yaml.safe_dump(values))
        argv += ["-f", str(vfile)]
    res = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    if check:
        assert res.returncode == 0, f"helm {' '.join(args)}:\n{res.stderr}"
    return res


@pytest.fixture
def render(helm, tmp_path):
    """render(values=None, *extra_args, release=RELEASE) -> {(kind, name): object}."""
    def _render(values=None, *extra, release=RELEASE, namespace="raibid-redis"):
        res = run_helm(helm, "template", release, str(CHART), "-n", namespace, *extra,
                       values=values, tmp_path=tmp_path)
        docs = [d for d in yaml.safe_load_all(res.stdout) if d]
        return {(d["kind"], d["metadata"]["name"]): d for d in docs}
    return _render


@pytest.fixture
def render_error(helm, tmp_path):
    def _err(values, *extra):
        res = run_helm(helm, "template", RELEASE, str(CHART), *extra, values=values,
                       tmp_path=tmp_path, check=False)
        assert res.returncode != 0, "render should have failed"
        return res.stderr
    return _err


def container(sts, name):
    return next(c for c in sts["spec"]["template"]["spec"]["containers"] if c["name"] == name)


def secret_password(objs, name=RELEASE):
    return base64.b64decode(objs[("Secret", name)]["data"]["redis-password"]).decode()


# ------------------------------------------------------------------ rendering (no cluster)

def test_lint(helm, tmp_path):
    res = run_helm(helm, "lint", str(CHART))
    assert "0 chart(s) failed" in res.stdout
    res = run_helm(helm, "lint", str(CHART), values=ROLE_VALUES, tmp_path=tmp_path)
    assert "0 chart(s) failed" in res.stdout
    sentinel = dict(ROLE_VALUES, architecture="replication", sentinel={"enabled": True}, auth=dict(
        ROLE_VALUES["auth"], sentinel=True))
    res = run_helm(helm, "lint", str(CHART), values=sentinel, tmp_path=tmp_path)
    assert "0 chart(s) failed" in res.stdout
    res = run_helm(helm, "lint", str(CHART), values=dict(sentinel, **TLS_GENERATED), tmp_path=tmp_path)
    assert "0 chart(s) failed" in res.stdout


def test_default_objects(render):
    objs = render()
    assert set(objs) == {
        ("Secret", "raibid-redis"),
        ("ConfigMap", "raibid-redis-configuration"),
        ("ConfigMap", "raibid-redis-health"),
        ("ConfigMap", "raibid-redis-scripts"),
        ("Service", "raibid-redis-master"),
        ("Service", "raibid-redis-headless"),
        ("StatefulSet", "raibid-redis-master"),
        ("ServiceAccount", "raibid-redis-master"),
        ("PodDisruptionBudget", "raibid-redis-master"),
    }
    for obj in objs.values():
        assert obj["metadata"]["namespace"] == "raibid-redis"
        assert obj["metadata"]["labels"]["app.kubernetes.io/name"] == "redis"
        assert obj["metadata"]["labels"]["app.kubernetes.io/instance"] == RELEASE
    # Generated password, Bitnami style: 10 alphanumeric characters.
    assert re.fullmatch(r"[A-Za-z0-9]{10}", secret_password(objs))


def test_fullname_follows_bitnami_rule(render):
    assert ("StatefulSet", "foo-redis-master") in render(None, release="foo")
    assert ("StatefulSet", "my-redis-master") in render(None, release="my-redis")
    assert ("StatefulSet", "x-master") in render({"fullnameOverride": "x"}, release="foo")


def test_services(render):
    objs = render({"metrics": {"enabled": True}})
    master = objs[("Service", "raibid-redis-master")]["spec"]
    assert master["ports"] == [{"name": "tcp-redis", "port": 6379, "targetPort": "redis"}]
    assert master["selector"] == {"app.kubernetes.io/name": "redis",
                                  "app.kubernetes.io/instance": RELEASE,
                                  "app.kubernetes.io/component": "master"}
    headless = objs[("Service", "raibid-redis-headless")]["spec"]
    assert headless["clusterIP"] == "None"
    metrics = objs[("Service", "raibid-redis-metrics")]["spec"]
    assert metrics["ports"][0]["port"] == 9121
    assert metrics["ports"][0]["name"] == "http-metrics"


def test_statefulset_shape(render):
    objs = render()
    sts = objs[("StatefulSet", "raibid-redis-master")]
    assert sts["spec"]["replicas"] == 1
    assert sts["spec"]["serviceName"] == "raibid-redis-headless"
    labels = sts["spec"]["template"]["metadata"]["labels"]
    assert labels["app.kubernetes.io/name"] == "redis"
    assert labels["app.kubernetes.io/instance"] == RELEASE
    assert labels["app.kubernetes.io/component"] == "master"
    ann = sts["spec"]["template"]["metadata"]["annotations"]
    assert {"checksum/configmap", "checksum/secret", "checksum/scripts", "checksum/health"} <= set(ann)
    # The secret checksum is that of the password the Secret carries (computed once per render).
    assert ann["checksum/secret"] == hashlib.sha256(secret_password(objs).encode()).hexdigest()
    (vct,) = sts["spec"]["volumeClaimTemplates"]
    assert vct["metadata"]["name"] == "redis-data"
    assert vct["spec"]["resources"]["requests"]["storage"] == "8Gi"
    assert "storageClassName" not in vct["spec"]  # cluster default
    redis = container(sts, "redis")
    assert redis["image"] == "localhost/raibid/redis:7.0.15-testbed"
    assert redis["imagePullPolicy"] == "IfNotPresent"
    assert redis["args"] == ["-ec", "/opt/bitnami/scripts/start-scripts/start-master.sh"]
    env = {e["name"]: e.get("value") for e in redis["env"]}
    assert env["REDIS_PASSWORD_FILE"] == "/opt/bitnami/redis/secrets/redis-password"
    assert env["REDIS_PORT"] == "6379"
    assert redis["readinessProbe"]["exec"]["command"][-1].startswith("/health/ping_readiness_local.sh")
    assert redis["livenessProbe"]["exec"]["command"][-1].startswith("/health/ping_liveness_local.sh")
    assert redis["securityContext"]["runAsUser"] == 1001
    health = objs[("ConfigMap", "raibid-redis-health")]["data"]
    assert "REDISCLI_AUTH" in health["ping_readiness_local.sh"]
    assert "redis-cli" in health["ping_readiness_local.sh"] and "timeout" in health["ping_readiness_local.sh"]
    script = objs[("ConfigMap", "raibid-redis-scripts")]["data"]["start-master.sh"]
    assert "REDIS_PASSWORD_FILE" in script and "--requirepass" in script
    assert '--include "$etc/redis.conf" --include "$etc/master.conf"' in script
    mounts = {m["mountPath"] for m in redis["volumeMounts"]}
    assert {"/data", "/opt/bitnami/redis/mounted-etc", "/opt/bitnami/redis/secrets/",
            "/opt/bitnami/redis/etc/", "/health", "/opt/bitnami/scripts/start-scripts"} <= mounts
    assert len(sts["spec"]["template"]["spec"]["containers"]) == 1


def test_role_values(render):
    objs = render(ROLE_VALUES)
    assert secret_password(objs) == "p" * 32
    conf = objs[("ConfigMap", "raibid-redis-configuration")]["data"]
    for line in ("appendonly yes", "appendfsync everysec", 'save ""', "maxmemory-policy noeviction"):
        assert line in conf["redis.conf"].splitlines()
    master_conf = conf["master.conf"].splitlines()
    assert "dir /data" in master_conf
    assert 'rename-command FLUSHDB ""' in master_conf and 'rename-command FLUSHALL ""' in master_conf
    sts = objs[("StatefulSet", "raibid-redis-master")]
    redis = container(sts, "redis")
    assert redis["resources"] == ROLE_VALUES["master"]["resources"]
    assert sts["spec"]["volumeClaimTemplates"][0]["spec"]["storageClassName"] == "local-path"
    metrics = container(sts, "metrics")
    assert metrics["image"] == "localhost/raibid/redis-exporter:1.74.0-testbed"
    assert "redis_exporter --check-streams=raibid:jobs" in metrics["command"][-1]
    assert metrics["ports"] == [{"name": "metrics", "containerPort": 9121}]
    env = {e["name"]: e.get("value") for e in metrics["env"]}
    assert env["REDIS_PASSWORD_FILE"] == "/secrets/redis-password"
    assert env["REDIS_EXPORTER_WEB_LISTEN_ADDRESS"] == ":9121"
    assert ("Service", "raibid-redis-metrics") in objs
    assert ("ServiceMonitor", "raibid-redis") not in objs


def test_disable_commands_empty(render):
    objs = render({"master": {"disableCommands": []}})
    assert "rename-command" not in objs[("ConfigMap", "raibid-redis-configuration")]["data"]["master.conf"]


def test_image_overrides(render):
    objs = render({"image": {"registry": "docker.io", "repository": "bitnamilegacy/redis", "tag": "8.2.1",
                             "pullPolicy": "Always"},
                   "metrics": {"enabled": True, "image": {"registry": "reg.example", "repository": "m/e",
                                                          "tag": "1"}}})
    sts = objs[("StatefulSet", "raibid-redis-master")]
    assert container(sts, "redis")["image"] == "docker.io/bitnamilegacy/redis:8.2.1"
    assert container(sts, "redis")["imagePullPolicy"] == "Always"
    assert container(sts, "metrics")["image"] == "reg.example/m/e:1"


def test_checksums_follow_password_and_config(render):
    def ann(values):
        return render(values)[("StatefulSet", "raibid-redis-master")]["spec"]["template"]["metadata"]["annotations"]
    a = ann({"auth": {"password": "one"}})
    assert ann({"auth": {"password": "one"}}) == a
    b = ann({"auth": {"password": "two"}})
    assert b["checksum/secret"] != a["checksum/secret"]
    assert b["checksum/configmap"] == a["checksum/configmap"]
    c = ann({"auth": {"password": "one"}, "commonConfiguration": "appendonly no"})
    assert c["checksum/configmap"] != a["checksum/configmap"]
    assert c["checksum/secret"] == a["checksum/secret"]


def test_existing_secret(render):
    objs = render({"auth": {"existingSecret": "mine", "existingSecretPasswordKey": "pw"},
                   "metrics": {"enabled": True}})
    assert not [k for k in objs if k[0] == "Secret"]
    vols = objs[("StatefulSet", "raibid-redis-master")]["spec"]["template"]["spec"]["volumes"]
    pw = next(v for v in vols if v["name"] == "redis-password")
    assert pw["secret"]["secretName"] == "mine"
    assert pw["secret"]["items"] == [{"key": "pw", "path": "redis-password"}]


def test_pod_annotations_per_role(render):
    """As in bitnami/redis: master.podAnnotations on master pods, replica.podAnnotations on replica and Sentinel node
    pods; the chart's own checksums stay."""
    values = {"master": {"podAnnotations": {"a/master": "1"}}, "replica": {"podAnnotations": {"a/replica": "2"}}}

    def ann(objs, name):
        return objs[("StatefulSet", name)]["spec"]["template"]["metadata"]["annotations"]
    objs = render(dict(values, architecture="replication"))
    assert ann(objs, "raibid-redis-master")["a/master"] == "1" and "a/replica" not in ann(objs, "raibid-redis-master")
    assert ann(objs, "raibid-redis-replicas")["a/replica"] == "2" and "a/master" not in ann(objs, "raibid-redis-replicas")
    assert "checksum/secret" in ann(objs, "raibid-redis-replicas")
    node = ann(render(dict(values, architecture="replication", sentinel={"enabled": True})), "raibid-redis-node")
    assert node["a/replica"] == "2" and "a/master" not in node and "checksum/configmap" in node


def test_password_in_env_when_not_files(render):
    objs = render({"auth": {"usePasswordFiles": False}})
    redis = container(objs[("StatefulSet", "raibid-redis-master")], "redis")
    env = {e["name"]: e for e in redis["env"]}
    assert env["REDIS_PASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": RELEASE, "key": "redis-password"}
    assert "REDIS_PASSWORD_FILE" not in env


def test_auth_disabled(render):
    objs = render({"auth": {"enabled": False}})
    assert ("Secret", RELEASE) not in objs
    assert "--protected-mode no" in objs[("ConfigMap", "raibid-redis-scripts")]["data"]["start-master.sh"]


def test_persistence_off_and_retention(render):
    objs = render({"master": {"persistence": {"enabled": False}}})
    sts = objs[("StatefulSet", "raibid-redis-master")]
    assert "volumeClaimTemplates" not in sts["spec"]
    data = next(v for v in sts["spec"]["template"]["spec"]["volumes"] if v["name"] == "redis-data")
    assert data == {"name": "redis-data", "emptyDir": {}}
    objs = render({"master": {"persistentVolumeClaimRetentionPolicy": {
        "enabled": True, "whenDeleted": "Delete", "whenScaled": "Retain"}}})
    assert objs[("StatefulSet", "raibid-redis-master")]["spec"]["persistentVolumeClaimRetentionPolicy"] == {
        "whenDeleted": "Delete", "whenScaled": "Retain"}


def test_replication(render):
    objs = render({"architecture": "replication", "replica": {"replicaCount": 2}})
    reps = objs[("StatefulSet", "raibid-redis-replicas")]
    assert reps["spec"]["replicas"] == 2
    assert reps["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/component"] == "replica"
    env = {e["name"]: e.get("value") for e in container(reps, "redis")["env"]}
    assert env["REDIS_MASTER_HOST"] == "raibid-redis-master-0.raibid-redis-headless.raibid-redis.svc.cluster.local"
    assert ("Service", "raibid-redis-replicas") in objs
    assert "start-replica.sh" in objs[("ConfigMap", "raibid-redis-scripts")]["data"]
    assert objs[("StatefulSet", "raibid-redis-master")]["spec"]["replicas"] == 1


def test_network_policy(render):
    objs = render({"networkPolicy": {"enabled": True}, "metrics": {"enabled": True}})
    pol = objs[("NetworkPolicy", RELEASE)]["spec"]
    assert {p["port"] for p in pol["ingress"][0]["ports"]} == {6379, 9121}


TLS_GENERATED = {"tls": {"enabled": True, "autoGenerated": True}}


def test_tls_generated_certificate(render):
    objs = render(dict(TLS_GENERATED, architecture="replication", metrics={"enabled": True}))
    secret = objs[("Secret", f"{RELEASE}-crt")]
    assert secret["type"] == "kubernetes.io/tls" and set(secret["data"]) == {"tls.crt", "tls.key", "ca.crt"}
    cert = x509.load_pem_x509_certificate(base64.b64decode(secret["data"]["tls.crt"]))
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    domain = "raibid-redis.svc.cluster.local"
    assert {f"raibid-redis-master.{domain}", f"*.raibid-redis-headless.{domain}", "localhost"} <= set(
        san.get_values_for_type(x509.DNSName))
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]

    for sts in ("raibid-redis-master", "raibid-redis-replicas"):
        spec = objs[("StatefulSet", sts)]["spec"]["template"]["spec"]
        volume = next(v for v in spec["volumes"] if v["name"] == "redis-certificates")
        assert volume["secret"]["secretName"] == f"{RELEASE}-crt"
        env = {c["name"]: {e["name"]: e.get("value") for e in c["env"]} for c in spec["containers"]}
        assert env["redis"]["REDIS_TLS_ENABLED"] == "yes" and env["redis"]["REDIS_TLS_AUTH_CLIENTS"] == "yes"
        assert env["metrics"]["REDIS_ADDR"] == "rediss://localhost:6379"
        assert env["metrics"]["REDIS_EXPORTER_TLS_CA_CERT_FILE"] == "/opt/bitnami/redis/certs/ca.crt"
    scripts = objs[("ConfigMap", "raibid-redis-scripts")]["data"]
    assert "--port 0 --tls-port" in scripts["start-master.sh"]
    assert "--tls-replication yes" in scripts["start-replica.sh"]


def test_tls_existing_secret(render):
    objs = render({"tls": {"enabled": True, "existingSecret": "my-certs", "certFilename": "server.pem",
                           "certKeyFilename": "server-key.pem", "certCAFilename": "ca.pem",
                           "authClients": False}})
    assert ("Secret", f"{RELEASE}-crt") not in objs
    spec = objs[("StatefulSet", "raibid-redis-master")]["spec"]["template"]["spec"]
    assert next(v for v in spec["volumes"] if v["name"] == "redis-certificates")["secret"]["secretName"] == "my-certs"
    env = {e["name"]: e.get("value") for e in spec["containers"][0]["env"]}
    assert env["REDIS_TLS_CERT_FILE"] == "/opt/bitnami/redis/certs/server.pem"
    assert env["REDIS_TLS_AUTH_CLIENTS"] == "no"


def test_service_monitor(render, render_error):
    err = render_error({"metrics": {"enabled": True, "serviceMonitor": {"enabled": True}}})
    assert "ServiceMonitor CRD" in err
    objs = render({"metrics": {"enabled": True, "serviceMonitor": {"enabled": True}}},
                  "--api-versions", "monitoring.coreos.com/v1/ServiceMonitor")
    assert ("ServiceMonitor", RELEASE) in objs


SENTINEL = {"architecture": "replication", "sentinel": {"enabled": True}}


def test_sentinel_objects(render):
    objs = render(SENTINEL)
    assert set(objs) == {
        ("Secret", "raibid-redis"),
        ("ConfigMap", "raibid-redis-configuration"),
        ("ConfigMap", "raibid-redis-health"),
        ("ConfigMap", "raibid-redis-scripts"),
        ("Service", "raibid-redis"),
        ("Service", "raibid-redis-headless"),
        ("StatefulSet", "raibid-redis-node"),
        ("ServiceAccount", "raibid-redis"),
        ("PodDisruptionBudget", "raibid-redis-node"),
    }
    node = {"app.kubernetes.io/name": "redis", "app.kubernetes.io/instance": RELEASE,
            "app.kubernetes.io/component": "node"}
    svc = objs[("Service", "raibid-redis")]["spec"]
    assert svc["type"] == "ClusterIP" and svc["selector"] == node
    assert svc["ports"] == [{"name": "tcp-redis", "port": 6379, "targetPort": "redis"},
                            {"name": "tcp-sentinel", "port": 26379, "targetPort": "redis-sentinel"}]
    headless = objs[("Service", "raibid-redis-headless")]["spec"]
    assert headless["clusterIP"] == "None" and headless["publishNotReadyAddresses"] is True
    assert [p["name"] for p in headless["ports"]] == ["tcp-redis", "tcp-sentinel"]
    assert objs[("PodDisruptionBudget", "raibid-redis-node")]["spec"]["selector"]["matchLabels"] == node


def test_sentinel_statefulset_shape(render):
    objs = render(dict(SENTINEL, metrics={"enabled": True}, auth={"password": "pw"}))
    assert ("Service", "raibid-redis-metrics") in objs
    sts = objs[("StatefulSet", "raibid-redis-node")]
    assert sts["spec"]["replicas"] == 3
    assert sts["spec"]["serviceName"] == "raibid-redis-headless"
    assert sts["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"] == "node"
    assert sts["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/component"] == "node"
    ann = sts["spec"]["template"]["metadata"]["annotations"]
    assert ann["checksum/secret"] == hashlib.sha256(b"pw").hexdigest()
    assert [c["name"] for c in sts["spec"]["template"]["spec"]["containers"]] == ["redis", "sentinel", "metrics"]
    (vct,) = sts["spec"]["volumeClaimTemplates"]
    assert vct["metadata"]["name"] == "redis-data"
    redis = container(sts, "redis")
    assert redis["ports"] == [{"name": "redis", "containerPort": 6379}]
    assert redis["args"] == ["-ec", "/opt/bitnami/scripts/start-scripts/start-node.sh"]
    assert redis["lifecycle"]["preStop"]["exec"]["command"][-1].endswith("prestop-redis.sh")
    assert redis["readinessProbe"]["exec"]["command"][-1].startswith("/health/ping_readiness_local.sh")
    sentinel = container(sts, "sentinel")
    assert sentinel["image"] == "localhost/raibid/redis:7.0.15-testbed"
    assert sentinel["imagePullPolicy"] == "IfNotPresent"
    assert sentinel["ports"] == [{"name": "redis-sentinel", "containerPort": 26379}]
    assert sentinel["readinessProbe"]["exec"]["command"][-1].startswith("/health/ping_sentinel.sh")
    env = {e["name"]: e.get("value") for e in sentinel["env"]}
    assert env["REDIS_PASSWORD_FILE"] == "/opt/bitnami/redis/secrets/redis-password"
    assert env["REDIS_SENTINEL_PORT"] == "26379"
    mounts = {m["mountPath"] for m in sentinel["volumeMounts"]}
    assert {"/opt/bitnami/redis-sentinel/etc", "/opt/bitnami/redis/secrets/", "/health"} <= mounts
    assert sentinel["securityContext"]["readOnlyRootFilesystem"] is True
    health = objs[("ConfigMap", "raibid-redis-health")]["data"]["ping_sentinel.sh"]
    assert "REDISCLI_AUTH" in health and "REDIS_SENTINEL_PORT" in health
    scripts = objs[("ConfigMap", "raibid-redis-scripts")]["data"]
    assert set(scripts) == {"sentinel-common.sh", "start-node.sh", "start-sentinel.sh", "prestop-redis.sh"}
    common, conf = scripts["sentinel-common.sh"], scripts["start-sentinel.sh"]
    assert 'headless="raibid-redis-headless.raibid-redis.svc.cluster.local"' in common
    assert 'first_host="raibid-redis-node-0.$headless"' in common
    assert "REDISCLI_AUTH=" in common and "REDIS_PASSWORD_FILE" in common
    for line in ("sentinel resolve-hostnames yes", "sentinel announce-hostnames yes",
                 "sentinel announce-ip $my_host",
                 "sentinel monitor $master_set $master_host $master_port 2",
                 "sentinel down-after-milliseconds $master_set 60000",
                 "sentinel failover-timeout $master_set 180000",
                 "sentinel parallel-syncs $master_set 1"):
        assert line in conf.splitlines(), line
    assert "sentinel auth-pass $master_set" in conf and "requirepass" in conf
    assert '--replica-announce-ip "$my_host"' in scripts["start-node.sh"]
    assert "--requirepass" in scripts["start-node.sh"]
    # The password never reaches a command line of the scripts' redis-cli calls.
    assert "-a " not in common


def test_sentinel_values(render):
    objs = render({"architecture": "replication", "replica": {"replicaCount": 2},
                   "auth": {"sentinel": False},
                   "sentinel": {"enabled": True, "masterSet": "raibid", "quorum": 1,
                                "downAfterMilliseconds": 5000, "failoverTimeout": 10000, "parallelSyncs": 2,
                                "image": {"registry": "docker.io", "repository": "bitnamilegacy/redis-sentinel",
                                          "tag": "8.2.1", "pullPolicy": "Never"}}})
    sts = objs[("StatefulSet", "raibid-redis-node")]
    assert sts["spec"]["replicas"] == 2
    sentinel = container(sts, "sentinel")
    assert sentinel["image"] == "docker.io/bitnamilegacy/redis-sentinel:8.2.1"
    assert sentinel["imagePullPolicy"] == "Never"
    scripts = objs[("ConfigMap", "raibid-redis-scripts")]["data"]
    conf = scripts["start-sentinel.sh"].splitlines()
    assert 'master_set="raibid"' in scripts["sentinel-common.sh"]
    assert "sentinel monitor $master_set $master_host $master_port 1" in conf
    assert "sentinel down-after-milliseconds $master_set 5000" in conf
    assert "sentinel failover-timeout $master_set 10000" in conf
    assert "sentinel parallel-syncs $master_set 2" in conf
    # auth.sentinel=false: sentinels monitor with the password but do not require one themselves.
    assert not [line for line in conf if "requirepass" in line]
    assert "sentinel auth-pass" in scripts["start-sentinel.sh"]
    assert "REDISCLI_AUTH" not in objs[("ConfigMap", "raibid-redis-health")]["data"]["ping_sentinel.sh"]


def test_sentinel_checksums_stable(render):
    def ann(values):
        sts = render(values)[("StatefulSet", "raibid-redis-node")]
        return sts["spec"]["template"]["metadata"]["annotations"]
    values = dict(SENTINEL, auth={"password": "one"})
    a = ann(values)
    assert ann(values) == a
    assert ann(dict(values, sentinel={"enabled": True, "quorum": 1}))["checksum/scripts"] != a["checksum/scripts"]


def _run_with_fake_cli(tmp_path, script, env, *args):
    """Runs a chart script with bash, a redis-cli on PATH that records its arguments (one per
    line) and answers PONG; returns (completed process, recorded arguments)."""
    bindir = tmp_path / "bin"
    bindir.mkdir(exist_ok=True)
    fake = bindir / "redis-cli"
    record = tmp_path / "redis-cli.args"
    fake.write_text(f'#!/bin/bash\nprintf "%s\\n" "$@" > {record}\necho "auth=${{REDISCLI_AUTH:-}}" >> {record}\n'
                    'echo PONG\n')
    fake.chmod(0o755)
    path = tmp_path / "script.sh"
    path.write_text(script)
    res = subprocess.run(["bash", str(path), *args], capture_output=True, text=True, timeout=30, check=False,
                         env={"PATH": f"{bindir}:/usr/bin:/bin", **env})
    return res, record.read_text().splitlines() if record.exists() else []


SENTINEL_TLS = dict(SENTINEL, **TLS_GENERATED)


def test_sentinel_tls_objects(render, tmp_path):
    """Sentinel over TLS (client certificates required, the chart default): both containers get the
    certificates and TLS env, Redis and the sentinels listen on TLS only, every script's redis-cli
    uses TLS."""
    objs = render(dict(SENTINEL_TLS, metrics={"enabled": True}, auth={"password": "pw"}))
    assert ("Secret", f"{RELEASE}-crt") in objs
    spec = objs[("StatefulSet", "raibid-redis-node")]["spec"]["template"]["spec"]
    volume = next(v for v in spec["volumes"] if v["name"] == "redis-certificates")
    assert volume["secret"]["secretName"] == f"{RELEASE}-crt"
    certs = "/opt/bitnami/redis/certs"
    env = {c["name"]: {e["name"]: e.get("value") for e in c["env"]} for c in spec["containers"]}
    mounts = {c["name"]: {m["mountPath"]: m for m in c["volumeMounts"]} for c in spec["containers"]}
    for name in ("redis", "sentinel", "metrics"):
        assert mounts[name][certs]["name"] == "redis-certificates" and mounts[name][certs]["readOnly"], name
    assert {k: v for k, v in env["redis"].items() if k.startswith("REDIS_TLS_")} == {
        "REDIS_TLS_ENABLED": "yes", "REDIS_TLS_CERT_FILE": f"{certs}/tls.crt",
        "REDIS_TLS_KEY_FILE": f"{certs}/tls.key", "REDIS_TLS_CA_FILE": f"{certs}/ca.crt",
        "REDIS_TLS_AUTH_CLIENTS": "yes"}
    assert {k: v for k, v in env["sentinel"].items() if k.startswith("REDIS_SENTINEL_TLS_")} == {
        "REDIS_SENTINEL_TLS_ENABLED": "yes", "REDIS_SENTINEL_TLS_PORT_NUMBER": "26379",
        "REDIS_SENTINEL_TLS_CERT_FILE": f"{certs}/tls.crt", "REDIS_SENTINEL_TLS_KEY_FILE": f"{certs}/tls.key",
        "REDIS_SENTINEL_TLS_CA_FILE": f"{certs}/ca.crt", "REDIS_SENTINEL_TLS_AUTH_CLIENTS": "yes"}
    assert env["metrics"]["REDIS_ADDR"] == "rediss://localhost:6379"
    assert env["metrics"]["REDIS_EXPORTER_TLS_CA_CERT_FILE"] == f"{certs}/ca.crt"
    assert env["metrics"]["REDIS_EXPORTER_TLS_CLIENT_CERT_FILE"] == f"{certs}/tls.crt"

    scripts = objs[("ConfigMap", "raibid-redis-scripts")]["data"]
    node = scripts["start-node.sh"]
    assert '--port 0 --tls-port "$REDIS_PORT"' in node and "--tls-replication yes" in node
    assert '--tls-auth-clients "$REDIS_TLS_AUTH_CLIENTS"' in node
    conf = scripts["start-sentinel.sh"].splitlines()
    for line in ("port 0", "tls-port $REDIS_SENTINEL_TLS_PORT_NUMBER",
                 'tls-cert-file $(quote "$REDIS_SENTINEL_TLS_CERT_FILE")',
                 'tls-key-file $(quote "$REDIS_SENTINEL_TLS_KEY_FILE")',
                 'tls-ca-cert-file $(quote "$REDIS_SENTINEL_TLS_CA_FILE")',
                 "tls-auth-clients $REDIS_SENTINEL_TLS_AUTH_CLIENTS", "tls-replication yes"):
        assert line in conf, line
    assert "port $sentinel_port" not in conf
    common = scripts["sentinel-common.sh"]
    assert "tls_flags REDIS_TLS" in common and "tls_flags REDIS_SENTINEL_TLS" in common
    assert "-a " not in common

    # The scripts' redis-cli calls, run here with a recording redis-cli: TLS flags from the env.
    tls_env = {"REDIS_TLS_ENABLED": "yes", "REDIS_TLS_CA_FILE": "/c/ca", "REDIS_TLS_AUTH_CLIENTS": "yes",
               "REDIS_TLS_CERT_FILE": "/c/crt", "REDIS_TLS_KEY_FILE": "/c/key", "REDIS_PORT": "6379"}
    sentinel_env = {k.replace("REDIS_TLS_", "REDIS_SENTINEL_TLS_"): v for k, v in tls_env.items()
                    if k.startswith("REDIS_TLS_")}
    sentinel_env["REDIS_SENTINEL_PORT"] = "26379"
    pw_file = tmp_path / "pw"
    pw_file.write_text("secret-pw")
    full = ["--tls", "--cacert", "/c/ca", "--cert", "/c/crt", "--key", "/c/key"]
    health = objs[("ConfigMap", "raibid-redis-health")]["data"]
    for probe, env_, port in (("ping_readiness_local.sh", tls_env, "6379"),
                              ("ping_liveness_local.sh", tls_env, "6379"),
                              ("ping_sentinel.sh", sentinel_env, "26379")):
        res, argv = _run_with_fake_cli(tmp_path, health[probe], dict(env_, REDIS_PASSWORD_FILE=str(pw_file)), "1")
        assert res.returncode == 0, (probe, res.stderr)
        assert argv == ["-h", "localhost", "-p", port, *full, "ping", "auth=secret-pw"], (probe, argv)
    # Without client certificates: --tls --cacert only.
    res, argv = _run_with_fake_cli(tmp_path, health["ping_sentinel.sh"],
                                   dict(sentinel_env, REDIS_SENTINEL_TLS_AUTH_CLIENTS="no"), "1")
    assert argv[:7] == ["-h", "localhost", "-p", "26379", "--tls", "--cacert", "/c/ca"] and argv[7] == "ping"
    # sentinel-common.sh in either container: the sentinel and local redis clients.
    calls = common + '\nsentinel_cli -h 10.0.0.1 sentinel failover mymaster\n'
    for env_ in (tls_env, sentinel_env):
        res, argv = _run_with_fake_cli(tmp_path, calls, dict(env_, REDIS_PASSWORD_FILE=str(pw_file)))
        assert res.returncode == 0, res.stderr
        assert argv == ["-p", "26379", *full, "-h", "10.0.0.1", "sentinel", "failover", "mymaster",
                        "auth=secret-pw"], argv
    res, argv = _run_with_fake_cli(tmp_path, common + "\nredis_local role\n",
                                   dict(tls_env, REDIS_PASSWORD_FILE=str(pw_file)))
    assert argv == ["-h", "localhost", "-p", "6379", *full, "role", "auth=secret-pw"], argv


def test_sentinel_tls_existing_secret_no_client_certs(render):
    objs = render(dict(SENTINEL, tls={"enabled": True, "existingSecret": "my-certs", "certFilename": "s.pem",
                                      "certKeyFilename": "s-key.pem", "certCAFilename": "ca.pem",
                                      "authClients": False}, metrics={"enabled": True}))
    assert ("Secret", f"{RELEASE}-crt") not in objs
    spec = objs[("StatefulSet", "raibid-redis-node")]["spec"]["template"]["spec"]
    assert next(v for v in spec["volumes"] if v["name"] == "redis-certificates")["secret"]["secretName"] == "my-certs"
    env = {c["name"]: {e["name"]: e.get("value") for e in c["env"]} for c in spec["containers"]}
    assert env["sentinel"]["REDIS_SENTINEL_TLS_CA_FILE"] == "/opt/bitnami/redis/certs/ca.pem"
    assert env["sentinel"]["REDIS_SENTINEL_TLS_CERT_FILE"] == "/opt/bitnami/redis/certs/s.pem"
    assert env["sentinel"]["REDIS_SENTINEL_TLS_AUTH_CLIENTS"] == "no"
    assert env["redis"]["REDIS_TLS_AUTH_CLIENTS"] == "no"
    assert "REDIS_EXPORTER_TLS_CLIENT_CERT_FILE" not in env["metrics"]


def test_sentinel_without_tls_has_no_tls(render):
    objs = render(dict(SENTINEL, metrics={"enabled": True}))
    spec = objs[("StatefulSet", "raibid-redis-node")]["spec"]["template"]["spec"]
    assert not [v for v in spec["volumes"] if v["name"] == "redis-certificates"]
    env = {c["name"]: {e["name"]: e.get("value") for e in c["env"]} for c in spec["containers"]}
    assert env["redis"]["REDIS_TLS_ENABLED"] == "no" and env["sentinel"]["REDIS_SENTINEL_TLS_ENABLED"] == "no"
    assert "REDIS_SENTINEL_TLS_CA_FILE" not in env["sentinel"]
    assert env["metrics"]["REDIS_ADDR"] == "redis://localhost:6379"
    scripts = objs[("ConfigMap", "raibid-redis-scripts")]["data"]
    assert "port $sentinel_port" in scripts["start-sentinel.sh"].splitlines()
    assert "tls" not in scripts["start-node.sh"] and "tls-port" not in scripts["start-sentinel.sh"]


def test_sentinel_tls_checksums_stable(render):
    """Same values, same pod annotations (the generated certificate is no input of any checksum)."""
    def ann(values):
        return render(values)[("StatefulSet", "raibid-redis-node")]["spec"]["template"]["metadata"]["annotations"]
    values = dict(SENTINEL_TLS, auth={"password": "one"})
    a = ann(values)
    assert ann(values) == a
    assert ann(dict(SENTINEL, auth={"password": "one"}))["checksum/scripts"] != a["checksum/scripts"]


@pytest.mark.parametrize("values,message", [
    ({"tls": {"enabled": True}}, "tls.enabled=true needs certificates"),
    ({"sentinel": {"enabled": True}}, "sentinel.enabled=true needs architecture=replication"),
    ({"architecture": "replication", "sentinel": {"enabled": True, "masterService": {"enabled": True}}},
     "sentinel.masterService.enabled=true is not implemented"),
    ({"architecture": "cluster"}, "architecture must be"),
])
def test_unsupported_values_fail_clearly(render_error, values, message):
    assert message in render_error(values)


def test_chart_defaults_match_images_env():
    env = {}
    for line in (REPO / "testbed" / "images" / "images.env").read_text().splitlines():
        m = re.match(r'^(RAIBID_\w+_IMAGE)="?([^"]+)"?$', line.strip())
        if m:
            env[m.group(1)] = m.group(2)
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    img, mimg = values["image"], values["metrics"]["image"]
    assert f"{img['registry']}/{img['repository']}:{img['tag']}" == env["RAIBID_REDIS_IMAGE"]
    assert f"{mimg['registry']}/{mimg['repository']}:{mimg['tag']}" == env["RAIBID_EXPORTER_IMAGE"]


# ------------------------------------------------------------------ on a cluster

def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PortForward:
    """`kubectl port-forward` to 127.0.0.1:<free port>; stopped by PID on exit."""

    def __init__(self, kubectl, namespace, target, remote):
        self.port = _free_port()
        self.proc = subprocess.Popen(
            kubectl.argv("port-forward", "-n", namespace, "--address", "127.0.0.1", target,
                         f"{self.port}:{remote}"),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def __enter__(self):
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"port-forward exited: {self.proc.stderr.read()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                time.sleep(0.3)
        raise AssertionError("port-forward did not open in 30s")

    def __exit__(self, *exc):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def resp_commands(port, *commands, tls=None):
    """Send Redis commands (RESP) and return the raw first line of each reply; tls: an SSLContext."""
    replies = []
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        s = tls.wrap_socket(raw, server_hostname="localhost") if tls else raw
        f = s.makefile("rb")
        for cmd in commands:
            payload = f"*{len(cmd)}\r\n" + "".join(f"${len(a.encode())}\r\n{a}\r\n" for a in cmd)
            s.sendall(payload.encode())
            replies.append(f.readline().decode().rstrip("\r\n"))
    return replies


def http_get(port, path="/metrics"):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(f"GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n".encode())
        chunks = []
        while data := s.recv(65536):
            chunks.append(data)
    return b"".join(chunks).decode(errors="replace")


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


def _cli(kubectl, namespace, pod, password, *args, container="redis", port=6379, tls_ca_env=None):
    """redis-cli in a pod; the password (from the Secret, read here) goes in on stdin, into
    REDISCLI_AUTH, never on a command line. tls_ca_env: name of the pod's env var holding the CA file
    (then --tls --cacert). Returns stdout ('' when the pod cannot be reached)."""
    tls = f'--tls --cacert "${{{tls_ca_env}}}" ' if tls_ca_env else ""
    script = f'read -r REDISCLI_AUTH; export REDISCLI_AUTH; exec timeout 10 redis-cli {tls}-p "$0" "$@"'
    return kubectl("exec", "-i", "-n", namespace, pod, "-c", container, "--", "bash", "-c", script,
                   str(port), *args, input=password + "\n", check=False, timeout=60)


def _info(text):
    return dict(line.split(":", 1) for line in text.replace("\r", "").splitlines() if ":" in line)


def _poll(what, check, timeout, interval=2):
    """Calls check() until it returns a true value; prints progress; fails after timeout seconds."""
    start = time.monotonic()
    last = None
    while True:
        result = check()
        elapsed = time.monotonic() - start
        if result:
            print(f"{what}: after {elapsed:.0f}s")
            return result
        if elapsed > timeout:
            pytest.fail(f"{what}: not after {timeout}s (last: {last!r})")
        last = getattr(check, "last", None)
        print(f"  waiting for {what} ({elapsed:.0f}s)")
        time.sleep(interval)


def test_sentinel_failover(helm, kubeconfig, kubectl, namespace, tmp_path):
    """Three nodes, quorum 2: node-0 starts as master; deleting its pod moves the master to another
    node, with the data; node-0 comes back as a replica of the new master."""
    started = time.monotonic()
    kc = ["--kubeconfig", kubeconfig]
    small = {"requests": {"cpu": "20m", "memory": "32Mi"}, "limits": {"memory": "128Mi"}}
    values = {"architecture": "replication",
              "replica": {"replicaCount": 3, "persistence": {"size": "1Gi"}, "resources": small},
              "sentinel": {"enabled": True, "downAfterMilliseconds": 5000, "failoverTimeout": 10000,
                           "resources": small}}
    run_helm(helm, "install", RELEASE, str(CHART), "-n", namespace, *kc, "--wait", "--timeout", "300s",
             values=values, tmp_path=tmp_path, timeout=360)
    print(f"installed, all pods ready: {time.monotonic() - started:.0f}s")
    secret = kubectl.json("get", "secret", RELEASE, "-n", namespace)
    password = base64.b64decode(secret["data"]["redis-password"]).decode()
    pods = [f"{RELEASE}-node-{i}" for i in range(3)]
    fqdn = {p: f"{p}.{RELEASE}-headless.{namespace}.svc.cluster.local" for p in pods}
    pod_of = {v: k for k, v in fqdn.items()}

    def cli(pod, *args, **kw):
        return _cli(kubectl, namespace, pod, password, *args, **kw)

    def sentinel_master(pod):
        return cli(pod, "sentinel", "get-master-addr-by-name", "mymaster",
                   container="sentinel", port=26379).split()

    def all_agree(on_pods, master):
        def check():
            seen = {p: sentinel_master(p) for p in on_pods}
            check.last = seen
            return all(v == [fqdn[master], "6379"] for v in seen.values())
        return check

    # Node 0 is the master, the others replicas linked to it, every sentinel agrees and knows the others.
    _poll("sentinels agree on node-0", all_agree(pods, pods[0]), 60)
    for pod in pods:
        _poll(f"sentinel of {pod} knows 2 others",
              lambda pod=pod: "2" in cli(pod, "sentinel", "master", "mymaster", container="sentinel",
                                         port=26379).split("num-other-sentinels\n")[-1].split("\n")[:1], 60)
    info = _info(cli(pods[0], "info", "replication"))
    assert info["role"] == "master" and info["connected_slaves"] == "2", info
    for pod in pods[1:]:
        def linked(pod=pod):
            info = _info(cli(pod, "info", "replication"))
            return (info.get("role") == "slave" and info.get("master_host") == fqdn[pods[0]]
                    and info.get("master_link_status") == "up")
        _poll(f"{pod} replicates node-0", linked, 60)
    assert cli(pods[0], "set", "raibid:test", "before").strip() == "OK"
    entry = cli(pods[0], "xadd", "raibid:jobs", "*", "job", "1").strip()
    assert re.fullmatch(r"\d+-\d+", entry), entry

    # Delete the master's pod: the sentinels elect another master, which has the data.
    old_uid = kubectl.json("get", "pod", pods[0], "-n", namespace)["metadata"]["uid"]
    failover_started = time.monotonic()
    kubectl("delete", "pod", pods[0], "-n", namespace, "--wait=false")

    def moved():
        seen = {p: sentinel_master(p) for p in pods[1:]}
        moved.last = seen
        masters = {tuple(v) for v in seen.values()}
        if len(masters) == 1:
            (m,) = masters
            if len(m) == 2 and m[0] in pod_of and m[0] != fqdn[pods[0]]:
                return pod_of[m[0]]
        return None
    new_master = _poll("sentinels report a new master", moved, 90, interval=1)
    print(f"failover: {time.monotonic() - failover_started:.0f}s, new master {new_master}")
    _poll(f"{new_master} is master", lambda: _info(cli(new_master, "info", "replication")).get("role") == "master", 30)
    assert cli(new_master, "get", "raibid:test").strip() == "before"
    assert cli(new_master, "xrange", "raibid:jobs", "-", "+").split()[:1] == [entry]
    assert cli(new_master, "set", "raibid:test", "after").strip() == "OK"

    # Node 0 comes back (new pod) as a replica of the new master, with the new write.
    def back():
        out = kubectl("get", "pod", pods[0], "-n", namespace, "-o", "json", check=False)
        pod = json.loads(out) if out.strip() else None
        return bool(pod and pod["metadata"]["uid"] != old_uid and all(
            c.get("ready") for c in pod["status"].get("containerStatuses", [{}])))
    _poll("node-0 back and ready", back, 120)

    def rejoined():
        info = _info(cli(pods[0], "info", "replication"))
        rejoined.last = info
        return (info.get("role") == "slave" and info.get("master_host") == fqdn[new_master]
                and info.get("master_link_status") == "up")
    _poll("node-0 replicates the new master", rejoined, 90)
    assert cli(pods[0], "get", "raibid:test").strip() == "after"
    _poll("all sentinels agree on the new master", all_agree(pods, new_master), 60)
    print(f"failover and rejoin: {time.monotonic() - failover_started:.0f}s")

    # A master that stops answering (no preStop hand-over this time) is voted down by the
    # sentinels after downAfterMilliseconds and replaced; once it answers again it is a replica.
    paused = new_master
    assert cli(paused, "client", "pause", "20000", "all").strip() == "OK"
    detected_started = time.monotonic()

    def replaced():
        seen = {p: sentinel_master(p) for p in pods if p != paused}
        replaced.last = seen
        masters = {tuple(v) for v in seen.values()}
        if len(masters) == 1:
            (m,) = masters
            if len(m) == 2 and m[0] in pod_of and m[0] != fqdn[paused]:
                return pod_of[m[0]]
        return None
    third = _poll("sentinels replace the unresponsive master", replaced, 60, interval=1)
    print(f"detection and failover: {time.monotonic() - detected_started:.0f}s, new master {third}")
    assert cli(third, "get", "raibid:test").strip() == "after"

    def demoted():
        info = _info(cli(paused, "info", "replication"))
        demoted.last = info
        return info.get("role") == "slave" and info.get("master_host") == fqdn[third]
    _poll(f"{paused} replicates {third}", demoted, 60)

    run_helm(helm, "uninstall", RELEASE, "-n", namespace, *kc, "--wait", "--timeout", "120s", timeout=180)
    print(f"test_sentinel_failover: {time.monotonic() - started:.0f}s")


def test_sentinel_tls_failover(helm, kubeconfig, kubectl, namespace, tmp_path):
    """Sentinel over TLS with the chart's own certificates and no client certificates (as the role
    sets it): sentinels and Redis answer over TLS only, replicas replicate over TLS, the sentinels
    agree on the master and fail over (asked by hand, then by the preStop hand-over script), the
    exporter scrapes over TLS, and an upgrade with the same values changes nothing."""
    started = time.monotonic()
    kc = ["--kubeconfig", kubeconfig]
    small = {"requests": {"cpu": "20m", "memory": "32Mi"}, "limits": {"memory": "128Mi"}}
    values = {"architecture": "replication",
              "tls": {"enabled": True, "autoGenerated": True, "authClients": False},
              "metrics": {"enabled": True, "resources": small},
              "replica": {"replicaCount": 3, "persistence": {"enabled": False}, "resources": small},
              "sentinel": {"enabled": True, "downAfterMilliseconds": 5000, "failoverTimeout": 10000,
                           "resources": small}}
    run_helm(helm, "install", RELEASE, str(CHART), "-n", namespace, *kc, "--wait", "--timeout", "300s",
             values=values, tmp_path=tmp_path, timeout=360)
    print(f"installed, all pods ready: {time.monotonic() - started:.0f}s")
    password = base64.b64decode(
        kubectl.json("get", "secret", RELEASE, "-n", namespace)["data"]["redis-password"]).decode()
    certs = kubectl.json("get", "secret", f"{RELEASE}-crt", "-n", namespace)["data"]
    pods = [f"{RELEASE}-node-{i}" for i in range(3)]
    fqdn = {p: f"{p}.{RELEASE}-headless.{namespace}.svc.cluster.local" for p in pods}
    pod_of = {v: k for k, v in fqdn.items()}

    # The CA path the role uses in the sentinel container.
    ca = kubectl("exec", "-n", namespace, pods[0], "-c", "sentinel", "--", "printenv",
                 "REDIS_SENTINEL_TLS_CA_FILE").strip()
    assert ca == "/opt/bitnami/redis/certs/ca.crt"

    def cli(pod, *args):
        return _cli(kubectl, namespace, pod, password, *args, tls_ca_env="REDIS_TLS_CA_FILE")

    def sentinel(pod, *args):
        return _cli(kubectl, namespace, pod, password, "sentinel", *args, container="sentinel", port=26379,
                    tls_ca_env="REDIS_SENTINEL_TLS_CA_FILE")

    def sentinel_master(pod):
        return sentinel(pod, "get-master-addr-by-name", "mymaster").split()

    def all_agree(master, on_pods=pods):
        def check():
            seen = {p: sentinel_master(p) for p in on_pods}
            check.last = seen
            return all(v == [fqdn[master], "6379"] for v in seen.values())
        return check

    def sentinels_settled(master):
        """Every sentinel names master, knows 2 replicas and 2 other sentinels, no failover running."""
        def check():
            seen = {}
            for p in pods:
                lines = sentinel(p, "master", "mymaster").splitlines()
                seen[p] = {k: v for k, v in zip(lines[::2], lines[1::2])
                           if k in ("ip", "flags", "num-slaves", "num-other-sentinels", "failover-state")}
            check.last = seen
            return all(v.get("ip") == fqdn[master] and v.get("flags") == "master" and v.get("num-slaves") == "2"
                       and v.get("num-other-sentinels") == "2" for v in seen.values())
        return check

    def replicates(pod, master):
        def check():
            info = _info(cli(pod, "info", "replication"))
            check.last = info
            return (info.get("role") == "slave" and info.get("master_host") == fqdn[master]
                    and info.get("master_link_status") == "up")
        return check

    # Every sentinel answers over TLS and names node-0; sentinels see each other (over TLS).
    _poll("sentinels agree on node-0", all_agree(pods[0]), 60)
    _poll("sentinels know 2 replicas and 2 other sentinels", sentinels_settled(pods[0]), 60)
    for pod in pods[1:]:
        _poll(f"{pod} replicates node-0 over TLS", replicates(pod, pods[0]), 60)

    # Plain TCP is off on both ports (redis-cli without --tls gets no answer).
    for port in ("6379", "26379"):
        out = kubectl("exec", "-n", namespace, pods[1], "-c", "redis", "--", "bash", "-c",
                      'timeout 10 redis-cli -h localhost -p "$0" ping 2>&1', port, check=False)
        assert out.strip() and "PONG" not in out, (port, out)
    assert cli(pods[0], "set", "raibid:test", "before").strip() == "OK"

    # The exporter sidecar scrapes its Redis over TLS.
    metrics = kubectl("get", "--raw", f"/api/v1/namespaces/{namespace}/pods/{pods[0]}:9121/proxy/metrics")
    assert re.search(r"^redis_up 1$", metrics, re.M), metrics[-2000:]

    # An upgrade with the same values keeps the certificates and restarts nothing.
    uids = {p: kubectl.json("get", "pod", p, "-n", namespace)["metadata"]["uid"] for p in pods}
    run_helm(helm, "upgrade", RELEASE, str(CHART), "-n", namespace, *kc, "--wait", "--timeout", "300s",
             values=values, tmp_path=tmp_path, timeout=360)
    assert kubectl.json("get", "secret", f"{RELEASE}-crt", "-n", namespace)["data"] == certs
    assert {p: kubectl.json("get", "pod", p, "-n", namespace)["metadata"]["uid"] for p in pods} == uids
    print(f"upgrade with the same values, nothing restarted: {time.monotonic() - started:.0f}s")

    # SENTINEL FAILOVER (asked over TLS): all sentinels name a new master, which has the data.
    failover_started = time.monotonic()
    assert sentinel(pods[1], "failover", "mymaster").strip() == "OK"

    def moved(old):
        def check():
            seen = {p: sentinel_master(p) for p in pods}
            check.last = seen
            masters = {tuple(v) for v in seen.values()}
            if len(masters) == 1:
                (m,) = masters
                if len(m) == 2 and m[0] in pod_of and m[0] != fqdn[old]:
                    return pod_of[m[0]]
            return None
        return check
    new_master = _poll("all sentinels name a new master", moved(pods[0]), 60, interval=1)
    print(f"failover: {time.monotonic() - failover_started:.0f}s, new master {new_master}")
    _poll(f"{new_master} is master", lambda: _info(cli(new_master, "info", "replication")).get("role") == "master",
          30)
    assert cli(new_master, "get", "raibid:test").strip() == "before"
    _poll("node-0 replicates the new master", replicates(pods[0], new_master), 60)
    _poll("sentinels settled on the new master", sentinels_settled(new_master), 60)

    # The preStop hand-over script (TLS to its Redis and to the other pods' sentinels) moves the master away.
    handover_started = time.monotonic()
    out = kubectl("exec", "-n", namespace, new_master, "-c", "redis", "--",
                  "/opt/bitnami/scripts/start-scripts/prestop-redis.sh", timeout=90)
    assert "Failover of mymaster asked of the sentinel at" in out, out
    assert _info(cli(new_master, "info", "replication")).get("role") == "slave"
    third = _poll("all sentinels name the master after the hand-over", moved(new_master), 60, interval=1)
    print(f"preStop hand-over: {time.monotonic() - handover_started:.0f}s, new master {third}")
    _poll(f"{new_master} replicates {third}", replicates(new_master, third), 60)

    run_helm(helm, "uninstall", RELEASE, "-n", namespace, *kc, "--wait", "--timeout", "120s", timeout=180)
    print(f"test_sentinel_tls_failover: {time.monotonic() - started:.0f}s")
