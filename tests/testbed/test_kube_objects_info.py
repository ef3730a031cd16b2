"""raibid.queue.kube_objects_info against the real API server, run as ansible runs it (ad hoc, JSON callback);
every answer is checked against kubectl's."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
ANSIBLE = Path(sys.executable).parent / "ansible"


def run_module(args):
    """The module's result for `args`, run on localhost by ansible with this checkout's collection."""
    env = dict(os.environ, ANSIBLE_STDOUT_CALLBACK="json", ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
               ANSIBLE_COLLECTIONS_PATH=str(REPO / ".venv" / "collections"))
    proc = subprocess.run([str(ANSIBLE), "localhost", "-m", "raibid.queue.kube_objects_info", "-a", json.dumps(args),
                           "-e", "ansible_python_interpreter=" + os.environ.get("RAIBID_TEST_MODULE_PYTHON", sys.executable)],
                          env=env, cwd=REPO, capture_output=True, text=True, timeout=120, check=False)
    output = json.loads(proc.stdout)
    return output["plays"][0]["tasks"][0]["hosts"]["localhost"]


def test_reads_what_kubectl_sees(kubeconfig, kubectl, namespace, prometheus_rule_crd):
    for name, tier in (("a", "one"), ("b", "one"), ("c", "two")):
        kubectl("create", "configmap", name, "-n", namespace, "--from-literal=k=" + name)
        kubectl("label", "configmap", name, "-n", namespace, "tier=" + tier)
    missing_namespace = f"rtest-none-{uuid.uuid4().hex[:8]}"
    result = run_module({"kubeconfig": kubeconfig, "objects": [
        {"id": "namespace", "resource": "namespaces", "name": namespace},
        {"id": "no_namespace", "resource": "namespaces", "name": missing_namespace},
        {"id": "a", "resource": "configmaps", "namespace": namespace, "name": "a"},
        {"id": "no_map", "resource": "configmaps", "namespace": namespace, "name": "z"},
        {"id": "in_no_namespace", "resource": "configmaps", "namespace": missing_namespace, "name": "a"},
        {"id": "tier_one", "resource": "configmaps", "namespace": namespace, "label_selectors": ["tier=one"]},
        {"id": "list_no_namespace", "resource": "configmaps", "namespace": missing_namespace},
        {"id": "rule", "api_version": "monitoring.coreos.com/v1", "resource": "prometheusrules",
         "namespace": namespace, "name": "r"},
        {"id": "unknown_group", "api_version": "nothing.example.com/v1", "resource": "widgets",
         "namespace": namespace, "name": "w"},
        {"id": "unknown_core", "resource": "widgets", "namespace": namespace, "name": "w"},
        {"id": "sts", "api_version": "apps/v1", "resource": "statefulsets", "namespace": namespace, "name": "s"},
    ]})
    assert result.get("failed") is not True, result
    assert result["changed"] is False
    found = result["objects"]

    # kubectl leaves managedFields out; the rest is the same object.
    assert found["namespace"]["api_found"] is True
    assert [dict(o, metadata={k: v for k, v in o["metadata"].items() if k != "managedFields"})
            for o in found["namespace"]["resources"]] == [kubectl.json("get", "namespace", namespace)]
    assert found["no_namespace"] == {"api_found": True, "resources": []}
    assert found["a"]["resources"][0]["data"] == {"k": "a"}
    assert found["a"]["resources"][0]["metadata"]["resourceVersion"] == \
        kubectl.json("get", "configmap", "a", "-n", namespace)["metadata"]["resourceVersion"]
    assert found["no_map"] == {"api_found": True, "resources": []}
    assert found["in_no_namespace"] == {"api_found": True, "resources": []}
    listed = kubectl.json("get", "configmaps", "-n", namespace, "-l", "tier=one")["items"]
    assert sorted(m["metadata"]["name"] for m in found["tier_one"]["resources"]) == \
        sorted(m["metadata"]["name"] for m in listed) == ["a", "b"]
    assert found["list_no_namespace"] == {"api_found": True, "resources": []}
    # The CRD is installed, the object is not there; types the cluster does not serve are api_found=false.
    assert found["rule"] == {"api_found": True, "resources": []}
    assert found["unknown_group"] == {"api_found": False, "resources": []}
    assert found["unknown_core"] == {"api_found": False, "resources": []}
    assert found["sts"] == {"api_found": True, "resources": []}


def test_fails_with_the_path_when_the_api_is_unreachable(tmp_path, kubeconfig):
    # The test cluster's kubeconfig, pointed at a closed port on this machine.
    config = Path(kubeconfig).read_text()
    server = next(line.split("server:", 1)[1].strip() for line in config.splitlines() if "server:" in line)
    closed = tmp_path / "closed.kubeconfig"
    closed.write_text(config.replace(server, "https://127.0.0.1:9"))
    result = run_module({"kubeconfig": str(closed), "objects": [{"id": "n", "resource": "namespaces", "name": "x"}]})
    assert result["failed"] is True
    assert result["msg"].startswith("Cannot read /api/v1/namespaces/x from the Kubernetes API: "), result["msg"]


def test_refuses_repeated_ids(kubeconfig):
    result = run_module({"kubeconfig": kubeconfig, "objects": [{"id": "n", "resource": "namespaces", "name": "x"},
                                                               {"id": "n", "resource": "namespaces", "name": "y"}]})
    assert result["failed"] is True
    assert result["msg"] == "objects: each id must be unique; repeated: n."


def test_helm_release_filter_reads_what_helm_info_reports(tmp_path, kubeconfig, kubectl, namespace, helm):
    """raibid.queue.helm_release over the Secrets read by kube_objects_info (the role's preflight) against
    kubernetes.core.helm_info, on a real release: installed, upgraded (revision 1 superseded), then failed."""
    chart = tmp_path / "chart"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: tiny\nversion: 1.2.3\nappVersion: '4.5'\n")
    # A name Kubernetes refuses makes an upgrade fail.
    (chart / "templates" / "map.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Values.name | default \"tiny\" }}\n"
        "data:\n  value: {{ .Values.value | quote }}\n")
    playbook = tmp_path / "compare.yml"
    playbook.write_text(yaml.safe_dump([{"hosts": "localhost", "gather_facts": False, "tasks": [
        {"kubernetes.core.helm_info": {"release_name": "tiny", "release_namespace": namespace,
                                       "release_state": ["deployed", "failed", "pending", "uninstalling"],
                                       "binary_path": helm, "kubeconfig": kubeconfig}, "register": "by_helm"},
        {"raibid.queue.kube_objects_info": {"kubeconfig": kubeconfig, "objects": [
            {"id": "release", "resource": "secrets", "namespace": namespace,
             "label_selectors": ["owner=helm", "name=tiny", "status!=superseded"]}]}, "register": "read"},
        {"ansible.builtin.copy": {"dest": str(tmp_path / "both.json"), "mode": "0600", "content": "{{ {'helm_info':"
         " by_helm.status, 'record': (read.objects.release.resources | raibid.queue.helm_release).status} | to_json }}"}},
    ]}]))

    def compare():
        env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(REPO / ".venv" / "collections"))
        proc = subprocess.run([str(ANSIBLE) + "-playbook", str(playbook),
                               "-e", "ansible_python_interpreter=" + sys.executable],
                              env=env, cwd=REPO, capture_output=True, text=True, timeout=120, check=False)
        assert proc.returncode == 0, proc.stdout[-3000:]
        both = json.loads((tmp_path / "both.json").read_text())
        keys = ("name", "namespace", "revision", "status", "chart", "app_version", "values")
        assert {k: both["record"][k] for k in keys} == {k: both["helm_info"][k] for k in keys}
        return both["record"]

    def helm_run(*args, ok=True):
        proc = subprocess.run([helm, "--kubeconfig", kubeconfig, *args, "tiny", str(chart), "-n", namespace],
                              capture_output=True, text=True, timeout=120, check=False)
        assert (proc.returncode == 0) == ok, proc.stderr

    helm_run("install", "--set", "value=one,nested.list={a,b}")
    helm_run("upgrade", "--set", "value=2,port=6379,flag=true,cpu=0.5")
    record = compare()
    assert (record["revision"], record["status"], record["chart"], record["app_version"]) == \
        ("2", "deployed", "tiny-1.2.3", "4.5")
    # Typed as helm typed them (--set leaves 0.5 a string).
    assert record["values"] == {"value": 2, "port": 6379, "flag": True, "cpu": "0.5"}
    helm_run("upgrade", "--set", "name=Not_Valid", ok=False)
    record = compare()
    assert (record["revision"], record["status"], record["values"]) == ("3", "failed", {"name": "Not_Valid"})
    # Revision 1 is superseded: not read at all.
    assert kubectl("get", "secret", "-n", namespace, "-l", "owner=helm,status=superseded", "-o", "name").split() == \
        ["secret/sh.helm.release.v1.tiny.v1"]
