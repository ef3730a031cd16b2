"""Tests of the testbed's container images without Kubernetes.

testbed/images/build.sh builds the tarballs; a private containerd (own root, state and socket
under the test's temp dir, stopped by PID afterwards) imports them and runs them with runc on
the host network, bound to 127.0.0.1 only. Needs root, containerd, ctr and runc (Debian packages).
"""
import os
import re
import shutil
import socket
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from harness import free_port, harness_settings, stop_process

REPO = Path(__file__).resolve().parents[2]
IMAGES = REPO / "testbed" / "images"
NS = "raibid-imgtest"  # a namespace of our own: nothing shared with the testbed's k8s.io

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not all(shutil.which(b) for b in ("containerd", "ctr", "runc")),
    reason="needs root with containerd, ctr and runc",
)


@pytest.fixture(scope="module")
def built():
    res = subprocess.run(["bash", str(IMAGES / "build.sh")], capture_output=True, text=True, timeout=900, check=False)
    assert res.returncode == 0, res.stderr
    assert res.stdout == "", "build.sh must print nothing on stdout"
    env = harness_settings()
    tars = {n: Path(env["RAIBID_IMAGES_DIR"]) / f"{n}.tar" for n in ("pause", "redis", "redis-exporter")}
    for tar in tars.values():
        assert tar.is_file(), tar
    return env, tars


class Containerd:
    def __init__(self, base):
        self.base = base
        self.sock = str(base / "c.sock")
        cfg = base / "config.toml"
        cfg.write_text(
            "version = 2\n"
            f'root = "{base}/root"\nstate = "{base}/state"\n'
            'disabled_plugins = ["io.containerd.grpc.v1.cri"]\n'
            f'[grpc]\n  address = "{self.sock}"\n'
            f'[ttrpc]\n  address = "{base}/c.ttrpc.sock"\n'
            '[metrics]\n  address = ""\n')
        self.log = open(base / "containerd.log", "w")
        self.proc = subprocess.Popen(["containerd", "--config", str(cfg)], stdout=self.log,
                                     stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while self.ctr("version", check=False).returncode != 0:
            assert self.proc.poll() is None, (base / "containerd.log").read_text()
            assert time.monotonic() < deadline, "containerd did not start"
            time.sleep(0.3)
        self.containers = []

    def ctr(self, *args, check=True, timeout=120):
        res = subprocess.run(["ctr", "--address", self.sock, "-n", NS, *args],
                             capture_output=True, text=True, timeout=timeout, check=False)
        if check:
            assert res.returncode == 0, f"ctr {' '.join(args)}: {res.stderr}"
        return res

    def run(self, image, *cmd, env=(), mounts=()):
        cid = f"t-{uuid.uuid4().hex[:8]}"
        argv = ["run", "-d", "--net-host"]
        for e in env:
            argv += ["--env", e]
        for src, dst, mode in mounts:
            argv += ["--mount", f"type=bind,src={src},dst={dst},options=rbind:{mode}"]
        self.ctr(*argv, image, cid, *cmd)
        self.containers.append(cid)
        return cid

    def status(self, cid):
        out = self.ctr("task", "ls").stdout
        m = re.search(rf"^{cid}\s+\d+\s+(\S+)", out, re.M)
        return m.group(1) if m else None

    def stop(self):
        for cid in self.containers:
            self.ctr("task", "kill", "-s", "SIGKILL", cid, check=False)
        for cid in self.containers:
            for dummy in range(50):
                if self.ctr("task", "rm", "-f", cid, check=False).returncode == 0 or self.status(cid) is None:
                    break
                time.sleep(0.2)
            self.ctr("container", "rm", cid, check=False)
        stop_process(self.proc, timeout=20)
        self.log.close()


@pytest.fixture(scope="module")
def containerd(built, tmp_path_factory):
    # A short path: unix socket paths are limited to 108 bytes.
    base = Path(f"/tmp/raibid-imgtest-{uuid.uuid4().hex[:6]}")
    base.mkdir(mode=0o700)
    c = Containerd(base)
    yield c
    c.stop()
    subprocess.run(["umount", "-R", str(base / "root")], capture_output=True, check=False)
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def imported(built, containerd):
    env, tars = built
    for tar in tars.values():
        containerd.ctr("images", "import", str(tar))
    return env


def resp(port, *commands):
    replies = []
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        f = s.makefile("rb")
        for cmd in commands:
            s.sendall((f"*{len(cmd)}\r\n" + "".join(f"${len(a)}\r\n{a}\r\n" for a in cmd)).encode())
            replies.append(f.readline().decode().rstrip("\r\n"))
    return replies


def wait_port(port, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"nothing listens on 127.0.0.1:{port}")


def scrape_metrics(port):
    """The exporter's /metrics page, once it listens on 127.0.0.1:port."""
    wait_port(port)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")
        body = b""
        while chunk := s.recv(65536):
            body += chunk
    return body.decode(errors="replace")


def test_import_yields_exact_refs(imported, containerd):
    refs = set(containerd.ctr("images", "ls", "-q").stdout.split())
    for key in ("RAIBID_PAUSE_IMAGE", "RAIBID_REDIS_IMAGE", "RAIBID_EXPORTER_IMAGE"):
        assert imported[key] in refs
        assert imported[key].startswith("localhost/")


def test_build_is_cached(built):
    t0 = time.monotonic()
    res = subprocess.run(["bash", str(IMAGES / "build.sh")], capture_output=True, text=True, timeout=120, check=False)
    assert res.returncode == 0 and res.stdout == ""
    assert res.stderr.count("cached") == 3, res.stderr
    assert time.monotonic() - t0 < 15


# The bitnami/redis chart's contract, in the chart's own style: password file, config copied
# from mounted-etc into the writable etc dir, redis-server with --include, uid 1001, data in /data.
START = """#!/bin/bash
[[ -f $REDIS_PASSWORD_FILE ]] && export REDIS_PASSWORD="$(< "${REDIS_PASSWORD_FILE}")"
for f in redis.conf master.conf; do
  [[ -f /opt/bitnami/redis/etc/$f ]] || cp /opt/bitnami/redis/mounted-etc/$f /opt/bitnami/redis/etc/$f
done
exec redis-server --port "$REDIS_PORT" --requirepass "$REDIS_PASSWORD" --masterauth "$REDIS_PASSWORD" \\
  --include /opt/bitnami/redis/etc/redis.conf --include /opt/bitnami/redis/etc/master.conf
"""
HEALTH = """#!/bin/bash
[[ -f $REDIS_PASSWORD_FILE ]] && export REDIS_PASSWORD="$(< "${REDIS_PASSWORD_FILE}")"
[[ -n "$REDIS_PASSWORD" ]] && export REDISCLI_AUTH="$REDIS_PASSWORD"
response=$(timeout -s 15 $1 redis-cli -h localhost -p $REDIS_PORT ping)
first=$(echo $response | head -n1 | awk '{print $1;}')
[ "$response" = "PONG" ] || { echo "$response $first"; exit 1; }
"""


@pytest.fixture(scope="module")
def redis(imported, containerd):
    base = containerd.base / "redis"
    for d in ("scripts", "etc", "secrets", "health", "data"):
        (base / d).mkdir(parents=True)
    (base / "data").chmod(0o777)
    (base / "scripts" / "start-master.sh").write_text(START)
    (base / "health" / "ping.sh").write_text(HEALTH)
    for f in ("scripts/start-master.sh", "health/ping.sh"):
        (base / f).chmod(0o755)
    (base / "etc" / "redis.conf").write_text('bind 127.0.0.1\nappendonly yes\nsave ""\n')
    (base / "etc" / "master.conf").write_text('dir /data\nrename-command FLUSHALL ""\n')
    password = uuid.uuid4().hex
    (base / "secrets" / "redis-password").write_text(password)
    port = free_port()
    cid = containerd.run(
        imported["RAIBID_REDIS_IMAGE"], "/bin/bash", "-ec", "/opt/bitnami/scripts/start-scripts/start-master.sh",
        env=[f"REDIS_PORT={port}", "REDIS_PASSWORD_FILE=/opt/bitnami/redis/secrets/redis-password"],
        mounts=[(base / "scripts", "/opt/bitnami/scripts/start-scripts", "ro"),
                (base / "etc", "/opt/bitnami/redis/mounted-etc", "ro"),
                (base / "secrets", "/opt/bitnami/redis/secrets", "ro"),
                (base / "health", "/health", "ro"),
                (base / "data", "/data", "rw")])
    wait_port(port)
    return {"cid": cid, "port": port, "password": password, "data": base / "data"}


def test_redis_auth_ping(redis):
    assert resp(redis["port"], ["PING"])[0].startswith("-NOAUTH")
    assert resp(redis["port"], ["AUTH", redis["password"]], ["PING"]) == ["+OK", "+PONG"]
    assert resp(redis["port"], ["AUTH", redis["password"]], ["FLUSHALL"])[1].startswith("-ERR unknown command")
    info = resp(redis["port"], ["AUTH", redis["password"]], ["INFO", "server"])[1]
    assert info.startswith("$")


def test_redis_runs_as_1001_and_writes_data(redis, containerd):
    out = containerd.ctr("task", "exec", "--exec-id", "id1", redis["cid"], "id", "-u").stdout.strip()
    assert out == "1001"
    aof = redis["data"] / "appendonlydir"
    assert aof.is_dir() and aof.stat().st_uid == 1001


def test_redis_health_script(redis, containerd):
    # An exec inherits the container's environment (REDIS_PORT, REDIS_PASSWORD_FILE), as probes do.
    res = containerd.ctr("task", "exec", "--exec-id", "h1", redis["cid"], "/bin/bash", "-ec",
                         "/health/ping.sh 5", check=False)
    assert res.returncode == 0, res.stdout + res.stderr


def test_redis_image_has_chart_tools(redis, containerd):
    # Everything the real chart's start/health/sentinel scripts call.
    script = ("set -e; for t in bash redis-server redis-cli timeout awk sed grep getent hostname openssl "
              "cp cat head dirname id seq sleep; do command -v $t >/dev/null || { echo missing $t; exit 1; }; done; "
              "for f in libos.sh liblog.sh libvalidations.sh libfile.sh; do . /opt/bitnami/scripts/$f; done; "
              "is_boolean_yes yes; ! is_boolean_yes no; retry_while true 2 1; "
              "test -w /opt/bitnami/redis/etc; command -v redis-server | grep -qx /opt/bitnami/redis/bin/redis-server")
    res = containerd.ctr("task", "exec", "--exec-id", "t1", redis["cid"], "/bin/bash", "-c", script, check=False)
    assert res.returncode == 0, res.stdout + res.stderr


def test_exporter_scrapes_redis(redis, imported, containerd):
    port = free_port()
    secrets = containerd.base / "redis" / "secrets"
    containerd.run(
        imported["RAIBID_EXPORTER_IMAGE"], "/bin/bash", "-ec",
        'export REDIS_PASSWORD="$(< $REDIS_PASSWORD_FILE)"\nexec redis_exporter --check-streams=raibid:jobs',
        env=[f"REDIS_ADDR=redis://localhost:{redis['port']}", "REDIS_USER=default",
             "REDIS_PASSWORD_FILE=/secrets/redis-password", f"REDIS_EXPORTER_WEB_LISTEN_ADDRESS=127.0.0.1:{port}"],
        mounts=[(secrets, "/secrets", "ro")])
    text = scrape_metrics(port)
    assert re.search(r"^redis_up 1$", text, re.M), text[:2000]
    assert 'redis_exporter_build_info{' in text


def test_pause_stops_on_sigterm(imported, containerd):
    cid = containerd.run(imported["RAIBID_PAUSE_IMAGE"])
    time.sleep(0.5)
    assert containerd.status(cid) == "RUNNING"
    containerd.ctr("task", "kill", "-s", "SIGTERM", cid)
    deadline = time.monotonic() + 10
    while containerd.status(cid) != "STOPPED":
        assert time.monotonic() < deadline, "pause did not stop on SIGTERM"
        time.sleep(0.2)


def test_stand_in_chart_runs_on_images(imported, containerd):
    """The stand-in chart's own scripts, config and exporter command, on a read-only root
    filesystem with writable etc and /tmp (as in the pod), without Kubernetes."""
    yaml = pytest.importorskip("yaml")
    helm = subprocess.run(["bash", str(REPO / "testbed" / "tools" / "helm.sh")], capture_output=True,
                          text=True, check=True, timeout=600).stdout.split()[-1]
    password = uuid.uuid4().hex
    rendered = subprocess.run(
        [helm, "template", "raibid-redis", str(REPO / "testbed" / "charts" / "redis"),
         "--set", f"auth.password={password}", "--set", "metrics.enabled=true"],
        capture_output=True, text=True, check=True).stdout
    docs = [d for d in yaml.safe_load_all(rendered) if d]
    cms = {d["metadata"]["name"]: d["data"] for d in docs if d["kind"] == "ConfigMap"}
    sts = next(d for d in docs if d["kind"] == "StatefulSet")
    exporter_cmd = next(c for c in sts["spec"]["template"]["spec"]["containers"]
                        if c["name"] == "metrics")["command"]

    base = containerd.base / "chart"
    dirs = {d: base / d for d in ("scripts", "health", "etc", "secrets", "data", "conf", "tmp")}
    for d in dirs.values():
        d.mkdir(parents=True)
    for d in ("data", "conf", "tmp"):
        dirs[d].chmod(0o777)
    for cm, where in (("raibid-redis-scripts", "scripts"), ("raibid-redis-health", "health"),
                      ("raibid-redis-configuration", "etc")):
        for name, text in cms[cm].items():
            (dirs[where] / name).write_text(text)
            (dirs[where] / name).chmod(0o755)
    # Host networking here, so keep Redis on loopback (in a pod it listens on the pod's address).
    with open(dirs["etc"] / "redis.conf", "a") as fh:
        fh.write("\nbind 127.0.0.1\n")
    (dirs["secrets"] / "redis-password").write_text(password)

    port, mport = free_port(), free_port()
    common = ["--read-only"]
    containerd.ctr("run", "-d", "--net-host", *common,
                   "--env", f"REDIS_PORT={port}",
                   "--env", "REDIS_PASSWORD_FILE=/opt/bitnami/redis/secrets/redis-password",
                   *[f"--mount=type=bind,src={src},dst={dst},options=rbind:{mode}" for src, dst, mode in (
                       (dirs["scripts"], "/opt/bitnami/scripts/start-scripts", "ro"),
                       (dirs["health"], "/health", "ro"),
                       (dirs["etc"], "/opt/bitnami/redis/mounted-etc", "ro"),
                       (dirs["secrets"], "/opt/bitnami/redis/secrets", "ro"),
                       (dirs["data"], "/data", "rw"),
                       (dirs["conf"], "/opt/bitnami/redis/etc", "rw"),
                       (dirs["tmp"], "/tmp", "rw"))],
                   imported["RAIBID_REDIS_IMAGE"], "chart-redis",
                   "/bin/bash", "-ec", "/opt/bitnami/scripts/start-scripts/start-master.sh")
    containerd.containers.append("chart-redis")
    wait_port(port)
    assert resp(port, ["AUTH", password], ["PING"]) == ["+OK", "+PONG"]
    for i, probe in enumerate(("/health/ping_readiness_local.sh 1", "/health/ping_liveness_local.sh 5")):
        res = containerd.ctr("task", "exec", "--exec-id", f"probe{i}", "chart-redis",
                             "/bin/bash", "-ec", probe, check=False)
        assert res.returncode == 0, probe + ": " + res.stdout + res.stderr

    containerd.ctr("run", "-d", "--net-host", *common,
                   "--env", f"REDIS_ADDR=redis://localhost:{port}", "--env", "REDIS_USER=default",
                   "--env", "REDIS_PASSWORD_FILE=/secrets/redis-password",
                   "--env", f"REDIS_EXPORTER_WEB_LISTEN_ADDRESS=127.0.0.1:{mport}",
                   f"--mount=type=bind,src={dirs['secrets']},dst=/secrets,options=rbind:ro",
                   f"--mount=type=bind,src={dirs['tmp']},dst=/tmp,options=rbind:rw",
                   imported["RAIBID_EXPORTER_IMAGE"], "chart-exporter", *exporter_cmd)
    containerd.containers.append("chart-exporter")
    assert re.search(r"^redis_up 1$", scrape_metrics(mport), re.M)
