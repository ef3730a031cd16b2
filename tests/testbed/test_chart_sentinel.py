"""The stand-in chart with Sentinel, and with Sentinel over TLS: rendered (no cluster), then installed and failed
over on a cluster (the `kubeconfig` fixture of conftest.py)."""
import base64
import hashlib
import json
import re
import subprocess
import time

from chart_helpers import CHART, RELEASE, ROLE_SENTINEL, SENTINEL, TLS_GENERATED, agreed_new_master, container, \
    parse_info, poll, redis_cli, role_values, run_helm


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


def test_sentinel_tls_role_values(render):
    """What the role installs with Sentinel and TLS: three nodes each with Sentinel, the chart's own certificate,
    Redis and Sentinel over TLS only, no client certificates, the role's disabled commands on every node."""
    values = role_values(**ROLE_SENTINEL, raibid_redis_tls=True)
    objs = render(values)
    assert ("StatefulSet", "raibid-redis-master") not in objs
    sts = objs[("StatefulSet", "raibid-redis-node")]
    assert sts["spec"]["replicas"] == 3
    assert objs[("Secret", f"{RELEASE}-crt")]["type"] == "kubernetes.io/tls"
    env = {c["name"]: {e["name"]: e.get("value") for e in c.get("env", [])}
           for c in sts["spec"]["template"]["spec"]["containers"]}
    assert env["redis"]["REDIS_TLS_ENABLED"] == "yes" and env["redis"]["REDIS_TLS_AUTH_CLIENTS"] == "no"
    assert env["sentinel"]["REDIS_SENTINEL_TLS_ENABLED"] == "yes"
    assert env["sentinel"]["REDIS_SENTINEL_TLS_AUTH_CLIENTS"] == "no"
    assert container(sts, "sentinel")["image"] == container(sts, "redis")["image"]
    replica_conf = objs[("ConfigMap", "raibid-redis-configuration")]["data"]["replica.conf"].splitlines()
    for command in values["replica"]["disableCommands"]:
        assert f'rename-command {command} ""' in replica_conf


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
        return redis_cli(kubectl, namespace, pod, password, *args, **kw)

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
    poll("sentinels agree on node-0", all_agree(pods, pods[0]), 60)
    for pod in pods:
        poll(f"sentinel of {pod} knows 2 others",
             lambda pod=pod: "2" in cli(pod, "sentinel", "master", "mymaster", container="sentinel",
                                        port=26379).split("num-other-sentinels\n")[-1].split("\n")[:1], 60)
    info = parse_info(cli(pods[0], "info", "replication"))
    assert info["role"] == "master" and info["connected_slaves"] == "2", info
    for pod in pods[1:]:
        def linked(pod=pod):
            info = parse_info(cli(pod, "info", "replication"))
            return (info.get("role") == "slave" and info.get("master_host") == fqdn[pods[0]]
                    and info.get("master_link_status") == "up")
        poll(f"{pod} replicates node-0", linked, 60)
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
    new_master = poll("sentinels report a new master", moved, 90, interval=1)
    print(f"failover: {time.monotonic() - failover_started:.0f}s, new master {new_master}")
    poll(f"{new_master} is master", lambda: parse_info(cli(new_master, "info", "replication")).get("role") == "master", 30)
    assert cli(new_master, "get", "raibid:test").strip() == "before"
    assert cli(new_master, "xrange", "raibid:jobs", "-", "+").split()[:1] == [entry]
    assert cli(new_master, "set", "raibid:test", "after").strip() == "OK"

    # Node 0 comes back (new pod) as a replica of the new master, with the new write.
    def back():
        out = kubectl("get", "pod", pods[0], "-n", namespace, "-o", "json", check=False)
        pod = json.loads(out) if out.strip() else None
        return bool(pod and pod["metadata"]["uid"] != old_uid and all(
            c.get("ready") for c in pod["status"].get("containerStatuses", [{}])))
    poll("node-0 back and ready", back, 120)

    def rejoined():
        info = parse_info(cli(pods[0], "info", "replication"))
        rejoined.last = info
        return (info.get("role") == "slave" and info.get("master_host") == fqdn[new_master]
                and info.get("master_link_status") == "up")
    poll("node-0 replicates the new master", rejoined, 90)
    assert cli(pods[0], "get", "raibid:test").strip() == "after"
    poll("all sentinels agree on the new master", all_agree(pods, new_master), 60)
    print(f"failover and rejoin: {time.monotonic() - failover_started:.0f}s")

    # A master that stops answering (no preStop hand-over this time) is voted down by the
    # sentinels after downAfterMilliseconds and replaced; once it answers again it is a replica.
    paused = new_master
    assert cli(paused, "client", "pause", "20000", "all").strip() == "OK"
    detected_started = time.monotonic()

    def replaced():
        seen = {p: sentinel_master(p) for p in pods if p != paused}
        replaced.last = seen
        return agreed_new_master(seen, pod_of, fqdn[paused])
    third = poll("sentinels replace the unresponsive master", replaced, 60, interval=1)
    print(f"detection and failover: {time.monotonic() - detected_started:.0f}s, new master {third}")
    assert cli(third, "get", "raibid:test").strip() == "after"

    def demoted():
        info = parse_info(cli(paused, "info", "replication"))
        demoted.last = info
        return info.get("role") == "slave" and info.get("master_host") == fqdn[third]
    poll(f"{paused} replicates {third}", demoted, 60)

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
        return redis_cli(kubectl, namespace, pod, password, *args, tls_ca_env="REDIS_TLS_CA_FILE")

    def sentinel(pod, *args):
        return redis_cli(kubectl, namespace, pod, password, "sentinel", *args, container="sentinel", port=26379,
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
            info = parse_info(cli(pod, "info", "replication"))
            check.last = info
            return (info.get("role") == "slave" and info.get("master_host") == fqdn[master]
                    and info.get("master_link_status") == "up")
        return check

    # Every sentinel answers over TLS and names node-0; sentinels see each other (over TLS).
    poll("sentinels agree on node-0", all_agree(pods[0]), 60)
    poll("sentinels know 2 replicas and 2 other sentinels", sentinels_settled(pods[0]), 60)
    for pod in pods[1:]:
        poll(f"{pod} replicates node-0 over TLS", replicates(pod, pods[0]), 60)

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
            return agreed_new_master(seen, pod_of, fqdn[old])
        return check
    new_master = poll("all sentinels name a new master", moved(pods[0]), 60, interval=1)
    print(f"failover: {time.monotonic() - failover_started:.0f}s, new master {new_master}")
    poll(f"{new_master} is master", lambda: parse_info(cli(new_master, "info", "replication")).get("role") == "master",
         30)
    assert cli(new_master, "get", "raibid:test").strip() == "before"
    poll("node-0 replicates the new master", replicates(pods[0], new_master), 60)
    poll("sentinels settled on the new master", sentinels_settled(new_master), 60)

    # The preStop hand-over script (TLS to its Redis and to the other pods' sentinels) moves the master away.
    handover_started = time.monotonic()
    out = kubectl("exec", "-n", namespace, new_master, "-c", "redis", "--",
                  "/opt/bitnami/scripts/start-scripts/prestop-redis.sh", timeout=90)
    assert "Failover of mymaster asked of the sentinel at" in out, out
    assert parse_info(cli(new_master, "info", "replication")).get("role") == "slave"
    third = poll("all sentinels name the master after the hand-over", moved(new_master), 60, interval=1)
    print(f"preStop hand-over: {time.monotonic() - handover_started:.0f}s, new master {third}")
    poll(f"{new_master} replicates {third}", replicates(new_master, third), 60)

    run_helm(helm, "uninstall", RELEASE, "-n", namespace, *kc, "--wait", "--timeout", "120s", timeout=180)
    print(f"test_sentinel_tls_failover: {time.monotonic() - started:.0f}s")
