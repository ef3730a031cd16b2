"""Fixtures for tests that need a Kubernetes cluster.

`kubeconfig`: RAIBID_TEST_KUBECONFIG when set (an existing cluster: k3s, kind...;
nothing is built), else the testbed, started with `testbed/testbed.sh up` (its
last stdout line is the kubeconfig path). The testbed is not torn down here:
`make testbed-down` does that.
"""
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
# The proving ground's shared helpers (tests/utils), for this conftest and the test modules beside it.
sys.path.insert(0, str(REPO / "tests" / "utils"))
from harness import harness_settings  # noqa: E402 pylint: disable=wrong-import-position
from chart_helpers import CHART, RELEASE, run_helm  # noqa: E402 pylint: disable=wrong-import-position
KUBECTL = os.environ.get("KUBECTL", "kubectl")


@pytest.fixture(scope="session")
def kubeconfig():
    given = os.environ.get("RAIBID_TEST_KUBECONFIG")
    if given:
        if not Path(given).is_file():
            pytest.fail(f"RAIBID_TEST_KUBECONFIG={given} is not a file")
        return given
    # Stream the script's progress so a slow first build is visible.
    proc = subprocess.Popen(
        ["bash", str(REPO / "testbed" / "testbed.sh"), "up"],
        stdout=subprocess.PIPE, text=True, cwd=REPO,
    )
    last = ""
    for line in proc.stdout:
        sys.stderr.write(line)
        if line.strip():
            last = line.strip()
    if proc.wait() != 0:
        pytest.fail(f"testbed.sh up failed with exit code {proc.returncode}")
    if not Path(last).is_file():
        pytest.fail(f"testbed.sh up did not end with a kubeconfig path: {last!r}")
    return last


class Kubectl:
    """Runs kubectl against the test cluster; returns stdout, fails with stderr."""

    def __init__(self, kubeconfig):
        self.kubeconfig = kubeconfig

    def argv(self, *args):
        return [KUBECTL, "--kubeconfig", self.kubeconfig, *args]

    def __call__(self, *args, input=None, check=True, timeout=300):
        res = subprocess.run(self.argv(*args), input=input, capture_output=True,
                             text=True, timeout=timeout, check=False)
        if check and res.returncode != 0:
            pytest.fail(f"kubectl {' '.join(args)} failed ({res.returncode}):\n{res.stderr}")
        return res.stdout

    def json(self, *args):
        return json.loads(self(*args, "-o", "json"))

    def wait_for_default_service_account(self, namespace, timeout=60):
        """Pods need the namespace's default service account, which a controller makes
        shortly after the namespace. Polled: `kubectl wait` fails at once (NotFound)
        when the account does not exist yet, which a busy 2-core machine hits."""
        deadline = time.monotonic() + timeout
        while not self("get", "serviceaccount", "default", "-n", namespace,
                       "--ignore-not-found", "-o", "name").strip():
            if time.monotonic() > deadline:
                pytest.fail(f"namespace {namespace} got no default service account within {timeout} s")
            time.sleep(0.5)

    def apply(self, manifest, namespace=None):
        args = ["apply", "-f", "-"] + (["-n", namespace] if namespace else [])
        return self(*args, input=manifest if isinstance(manifest, str) else json.dumps(manifest))


@pytest.fixture(scope="session")
def kubectl(kubeconfig):
    return Kubectl(kubeconfig)


@pytest.fixture
def namespace(kubectl):
    """A fresh namespace, deleted (without waiting) when the test ends."""
    name = f"rtest-{uuid.uuid4().hex[:8]}"
    kubectl("create", "namespace", name)
    kubectl.wait_for_default_service_account(name)
    yield name
    kubectl("delete", "namespace", name, "--wait=false", "--ignore-not-found", check=False)


@pytest.fixture(scope="session")
def images():
    """Image refs from testbed/images/images.env (or the RAIBID_*_IMAGE environment)."""
    refs = dict(harness_settings())
    for key in ("RAIBID_PAUSE_IMAGE", "RAIBID_REDIS_IMAGE", "RAIBID_EXPORTER_IMAGE"):
        if os.environ.get(key):
            refs[key] = os.environ[key]
    return refs


def operator_crd_fixture(kind, plural):
    """A fixture that installs the Prometheus Operator's CRD for `kind`, reduced to what the API server needs to
    store such objects (no operator runs), unless the cluster has it; it removes the CRD only if it installed it."""
    name = f"{plural}.monitoring.coreos.com"
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": name},
        "spec": {
            "group": "monitoring.coreos.com",
            "scope": "Namespaced",
            "names": {"kind": kind, "plural": plural, "singular": kind.lower(), "listKind": kind + "List"},
            "versions": [{"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": {
                "type": "object", "x-kubernetes-preserve-unknown-fields": True}}}],
        },
    }

    @pytest.fixture
    def installed(kubectl):
        had = kubectl("get", "crd", name, "--ignore-not-found", "-o", "name").strip() != ""
        if not had:
            kubectl.apply(crd)
            kubectl("wait", "--for=condition=Established", "crd/" + name, "--timeout=60s")
        yield
        if not had:
            kubectl("delete", "crd", name, "--wait=false")
    return installed


service_monitor_crd = operator_crd_fixture("ServiceMonitor", "servicemonitors")
prometheus_rule_crd = operator_crd_fixture("PrometheusRule", "prometheusrules")


# The stand-in chart (testbed/charts/redis), for test_chart_*.py.
@pytest.fixture(scope="session")
def helm():
    res = subprocess.run(["bash", str(REPO / "testbed" / "tools" / "helm.sh")],
                         capture_output=True, text=True, timeout=600, check=False)
    assert res.returncode == 0, res.stderr
    path = res.stdout.strip().splitlines()[-1]
    assert Path(path).is_absolute() and Path(path).is_file()
    return path


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
