"""Write a single-layer container image as a docker-archive tarball (no Docker engine needed).

`ctr images import` and `podman load` accept the result. The layer is made from a staging
directory; entries are sorted, timestamps fixed and owners set by rule, so the same inputs give
the same image. Raibid testbed helper, written for this project.
"""
import argparse
import hashlib
import io
import json
import os
import stat
import sys
import tarfile

EPOCH = 0  # fixed mtime: reproducible layers


def owner_for(rel, rules):
    """Longest matching --chown prefix wins; default root:root."""
    best = ("", 0, 0)
    for prefix, uid, gid in rules:
        if rel == prefix or rel.startswith(prefix + "/"):
            if len(prefix) >= len(best[0]):
                best = (prefix, uid, gid)
    return best[1], best[2]


def build_layer(rootfs, rules):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        seen_inodes = {}
        for dirpath, dirnames, filenames in os.walk(rootfs):
            dirnames.sort()
            names = sorted(dirnames + filenames)
            for name in names:
                full = os.path.join(dirpath, name)
                rel = os.path.relpath(full, rootfs)
                st = os.lstat(full)
                info = tarfile.TarInfo(rel)
                info.mtime = EPOCH
                info.mode = stat.S_IMODE(st.st_mode)
                info.uid, info.gid = owner_for(rel, rules)
                info.uname = info.gname = ""
                if stat.S_ISLNK(st.st_mode):
                    info.type = tarfile.SYMTYPE
                    info.linkname = os.readlink(full)
                    tar.addfile(info)
                elif stat.S_ISDIR(st.st_mode):
                    info.type = tarfile.DIRTYPE
                    tar.addfile(info)
                elif stat.S_ISREG(st.st_mode):
                    key = (st.st_dev, st.st_ino)
                    if st.st_nlink > 1 and key in seen_inodes:
                        info.type = tarfile.LNKTYPE
                        info.linkname = seen_inodes[key]
                        tar.addfile(info)
                        continue
                    seen_inodes[key] = rel
                    info.size = st.st_size
                    with open(full, "rb") as fh:
                        tar.addfile(info, fh)
                else:
                    sys.exit(f"mkimage: unsupported file type: {rel}")
    return buf.getvalue()


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rootfs", required=True)
    ap.add_argument("--ref", required=True, help="full image reference, e.g. localhost/x/y:tag")
    ap.add_argument("--out", required=True)
    ap.add_argument("--chown", action="append", default=[], metavar="PATH=UID:GID")
    ap.add_argument("--user", default="0")
    ap.add_argument("--env", action="append", default=[])
    ap.add_argument("--entrypoint", default=None, help="JSON list")
    ap.add_argument("--cmd", default=None, help="JSON list")
    ap.add_argument("--workdir", default="/")
    ap.add_argument("--port", action="append", default=[], help="e.g. 6379/tcp")
    ap.add_argument("--label", action="append", default=[], metavar="KEY=VALUE")
    args = ap.parse_args()

    rules = []
    for spec in args.chown:
        path, ids = spec.split("=", 1)
        uid, gid = (int(x) for x in ids.split(":"))
        rules.append((path.strip("/"), uid, gid))

    layer = build_layer(args.rootfs, rules)
    layer_digest = hashlib.sha256(layer).hexdigest()

    cfg = {"User": args.user, "Env": args.env, "WorkingDir": args.workdir}
    if args.entrypoint:
        cfg["Entrypoint"] = json.loads(args.entrypoint)
    if args.cmd:
        cfg["Cmd"] = json.loads(args.cmd)
    if args.port:
        cfg["ExposedPorts"] = {p: {} for p in args.port}
    if args.label:
        cfg["Labels"] = dict(kv.split("=", 1) for kv in args.label)
    config = {
        "architecture": "amd64",
        "os": "linux",
        "created": "1970-01-01T00:00:00Z",
        "config": cfg,
        "rootfs": {"type": "layers", "diff_ids": [f"sha256:{layer_digest}"]},
        "history": [{"created": "1970-01-01T00:00:00Z", "created_by": "raibid testbed mkimage.py"}],
    }
    config_bytes = json.dumps(config, sort_keys=True, separators=(",", ":")).encode()
    config_digest = hashlib.sha256(config_bytes).hexdigest()
    manifest = [{
        "Config": f"{config_digest}.json",
        "RepoTags": [args.ref],
        "Layers": [f"{layer_digest}/layer.tar"],
    }]

    tmp = args.out + ".tmp"
    with tarfile.open(tmp, mode="w", format=tarfile.PAX_FORMAT) as out:
        def add(name, data):
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            ti.mtime = EPOCH
            ti.mode = 0o644
            out.addfile(ti, io.BytesIO(data))
        add(f"{layer_digest}/layer.tar", layer)
        add(f"{config_digest}.json", config_bytes)
        add("manifest.json", json.dumps(manifest).encode())
        repo, tag = args.ref.rsplit(":", 1)
        add("repositories", json.dumps({repo: {tag: config_digest}}).encode())
    os.replace(tmp, args.out)
    print(f"mkimage: wrote {args.out} ({args.ref}, layer {len(layer) // 1024} KiB)", file=sys.stderr)


if __name__ == "__main__":
    main()
