"""Tiny dynamic provisioner for the testbed's `local-path` StorageClass.

Every few seconds: for each pending PVC of a StorageClass whose provisioner is
ours, create a hostPath PV (a directory under --dir, mode 0777 so non-root pods
can write) pre-bound to that claim; for each Released PV that we provisioned
with reclaim policy Delete, remove its directory and the PV. Single node only,
no capacity accounting: it is a testbed, like k3s' local-path.
Standard library only; talks to the API through kubectl.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import time

PROVISIONER = "raibid.local/local-path"


def kubectl(args, kubeconfig, kubectl_bin, stdin=None):
    res = subprocess.run(
        [kubectl_bin, "--kubeconfig", kubeconfig, *args],
        input=stdin, capture_output=True, text=True, timeout=60, check=False,
    )
    if res.returncode != 0:
        raise RuntimeError(f"kubectl {' '.join(args)}: {res.stderr.strip()}")
    return res.stdout


def log(msg):
    print(time.strftime("%H:%M:%S"), msg, flush=True)


def our_classes(k):
    items = json.loads(k(["get", "storageclass", "-o", "json"]))["items"]
    return {sc["metadata"]["name"]: sc for sc in items if sc.get("provisioner") == PROVISIONER}


def provision(k, pvc, sc, base):
    meta, spec = pvc["metadata"], pvc["spec"]
    name = f"pvc-{meta['uid']}"
    path = os.path.join(base, f"{meta['namespace']}_{meta['name']}_{name}")
    os.makedirs(path, exist_ok=True)
    os.chmod(path, 0o777)  # chmod: makedirs' mode is filtered by the umask
    pv = {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": name, "annotations": {"pv.kubernetes.io/provisioned-by": PROVISIONER}},
        "spec": {
            "capacity": {"storage": spec["resources"]["requests"]["storage"]},
            "accessModes": spec.get("accessModes") or ["ReadWriteOnce"],
            "persistentVolumeReclaimPolicy": sc.get("reclaimPolicy", "Delete"),
            "storageClassName": sc["metadata"]["name"],
            "volumeMode": spec.get("volumeMode", "Filesystem"),
            "hostPath": {"path": path, "type": "DirectoryOrCreate"},
            "claimRef": {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                         "namespace": meta["namespace"], "name": meta["name"], "uid": meta["uid"]},
        },
    }
    k(["create", "-f", "-"], stdin=json.dumps(pv))
    log(f"provisioned {name} for {meta['namespace']}/{meta['name']} at {path}")


def reclaim(k, pv):
    name = pv["metadata"]["name"]
    path = pv["spec"].get("hostPath", {}).get("path", "")
    k(["delete", "pv", name, "--wait=false"])
    if path and os.path.isdir(path):
        shutil.rmtree(path, ignore_errors=True)
    log(f"deleted {name} and {path}")


def sync(k, base):
    classes = our_classes(k)
    if not classes:
        return
    pvs = json.loads(k(["get", "pv", "-o", "json"]))["items"]
    existing = {pv["metadata"]["name"] for pv in pvs}
    for pv in pvs:
        ours = pv["metadata"].get("annotations", {}).get("pv.kubernetes.io/provisioned-by") == PROVISIONER
        if (ours and pv.get("status", {}).get("phase") == "Released"
                and pv["spec"].get("persistentVolumeReclaimPolicy") == "Delete"):
            reclaim(k, pv)
    pvcs = json.loads(k(["get", "pvc", "--all-namespaces", "-o", "json"]))["items"]
    for pvc in pvcs:
        sc = classes.get(pvc["spec"].get("storageClassName") or "")
        if (sc is None or pvc.get("status", {}).get("phase") != "Pending"
                or pvc["spec"].get("volumeName") or pvc["metadata"].get("deletionTimestamp")
                or f"pvc-{pvc['metadata']['uid']}" in existing):
            continue
        provision(k, pvc, sc, base)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--kubeconfig", required=True)
    ap.add_argument("--kubectl", default="kubectl")
    ap.add_argument("--dir", required=True, help="where volume directories are made")
    ap.add_argument("--interval", type=float, default=2.0)
    args = ap.parse_args()
    os.makedirs(args.dir, exist_ok=True)

    def k(a, stdin=None):
        return kubectl(a, args.kubeconfig, args.kubectl, stdin)

    log(f"local-path provisioner for {PROVISIONER}, volumes in {args.dir}")
    while True:
        try:
            sync(k, args.dir)
        except Exception as exc:  # keep going: the API server may be restarting
            log(f"error: {exc}")
        time.sleep(args.interval)


if __name__ == "__main__":
    sys.exit(main())
