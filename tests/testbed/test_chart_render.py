"""The stand-in chart (testbed/charts/redis) rendered with `helm template` and linted: no cluster needed.

The role's own values come from roles/redis/templates/values.yaml.j2 (chart_helpers.role_values), so these tests
see what the role installs. Sentinel and TLS with Sentinel: test_chart_sentinel.py; installs: test_chart_install.py.
"""
import base64
import hashlib
import re

import pytest
import yaml
from chart_helpers import CHART, RELEASE, ROLE_SENTINEL, TLS_GENERATED, container, role_values, run_helm, secret_password
from cryptography import x509
from harness import harness_settings


def test_lint(helm, tmp_path):
    """The chart lints alone and with what the role gives it: standalone, Sentinel, Sentinel with TLS."""
    res = run_helm(helm, "lint", str(CHART))
    assert "0 chart(s) failed" in res.stdout
    for values in (role_values(), role_values(**ROLE_SENTINEL), role_values(**ROLE_SENTINEL, raibid_redis_tls=True)):
        res = run_helm(helm, "lint", str(CHART), values=values, tmp_path=tmp_path)
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
    """What the role installs with its defaults: its password, memory cap, disabled commands, resources, stream
    metrics and network policy reach the objects."""
    values = role_values()
    objs = render(values)
    assert secret_password(objs) == values["auth"]["password"]
    conf = objs[("ConfigMap", "raibid-redis-configuration")]["data"]
    assert set(values["commonConfiguration"].splitlines()) <= set(conf["redis.conf"].splitlines())
    for line in ("appendonly yes", 'save ""', "maxmemory-policy noeviction"):
        assert line in conf["redis.conf"].splitlines()
    assert any(re.fullmatch(r"maxmemory [1-9][0-9]*", line) for line in conf["redis.conf"].splitlines())
    master_conf = conf["master.conf"].splitlines()
    assert "dir /data" in master_conf
    assert "FLUSHALL" in values["master"]["disableCommands"]
    for command in values["master"]["disableCommands"]:
        assert f'rename-command {command} ""' in master_conf
    sts = objs[("StatefulSet", "raibid-redis-master")]
    redis = container(sts, "redis")
    assert redis["resources"] == values["master"]["resources"]
    assert redis["image"] == harness_settings()["RAIBID_REDIS_IMAGE"] and redis["imagePullPolicy"] == "Never"
    assert sts["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"] == "8Gi"
    metrics = container(sts, "metrics")
    assert metrics["image"] == harness_settings()["RAIBID_EXPORTER_IMAGE"]
    # The queue's stream, URL-encoded as the exporter decodes it.
    assert "redis_exporter --check-single-streams=db0=raibid%3Ajobs" in metrics["command"][-1]
    assert metrics["ports"] == [{"name": "metrics", "containerPort": 9121}]
    env = {e["name"]: e.get("value") for e in metrics["env"]}
    assert env["REDIS_PASSWORD_FILE"] == "/secrets/redis-password"
    assert env["REDIS_EXPORTER_WEB_LISTEN_ADDRESS"] == ":9121"
    assert ("Service", "raibid-redis-metrics") in objs
    assert ("NetworkPolicy", RELEASE) in objs
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


def test_role_values_mutual_tls(render):
    """With raibid_redis_tls_client_auth the role's Secret <release>-tls serves, and Redis, its probes and the
    exporter ask for and present client certificates."""
    objs = render(role_values(raibid_redis_tls=True, raibid_redis_tls_client_auth=True, _raibid_redis_tls_ca="a CA"))
    assert ("Secret", f"{RELEASE}-crt") not in objs
    spec = objs[("StatefulSet", "raibid-redis-master")]["spec"]["template"]["spec"]
    assert next(v for v in spec["volumes"] if v["name"] == "redis-certificates")["secret"]["secretName"] == \
        f"{RELEASE}-tls"
    env = {c["name"]: {e["name"]: e.get("value") for e in c.get("env", [])} for c in spec["containers"]}
    assert env["redis"]["REDIS_TLS_AUTH_CLIENTS"] == "yes"
    assert env["redis"]["REDIS_TLS_CA_FILE"] == "/opt/bitnami/redis/certs/ca.crt"
    assert env["metrics"]["REDIS_EXPORTER_TLS_CLIENT_CERT_FILE"] == "/opt/bitnami/redis/certs/tls.crt"
    # Another CA restarts the pods, which read certificates only when they start.
    annotations = objs[("StatefulSet", "raibid-redis-master")]["spec"]["template"]["metadata"]["annotations"]
    assert annotations["raibid.queue/tls-ca"] == hashlib.sha256(b"a CA").hexdigest()


def test_service_monitor(render, render_error):
    err = render_error({"metrics": {"enabled": True, "serviceMonitor": {"enabled": True}}})
    assert "ServiceMonitor CRD" in err
    objs = render({"metrics": {"enabled": True, "serviceMonitor": {"enabled": True}}},
                  "--api-versions", "monitoring.coreos.com/v1/ServiceMonitor")
    assert ("ServiceMonitor", RELEASE) in objs


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
    env = harness_settings()
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    img, mimg = values["image"], values["metrics"]["image"]
    assert f"{img['registry']}/{img['repository']}:{img['tag']}" == env["RAIBID_REDIS_IMAGE"]
    assert f"{mimg['registry']}/{mimg['repository']}:{mimg['tag']}" == env["RAIBID_EXPORTER_IMAGE"]
