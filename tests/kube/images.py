#!/usr/bin/env python3
"""Builds the test cluster's container images as Docker image archives (`docker save`'s
format, which `ctr images import` reads), with the standard library only.

    images.py OUT_DIR --pause PAUSE_BIN [--busybox BUSYBOX] [--agent AGENT_BIN]

Each image is one layer; the archives are byte-for-byte reproducible (fixed times and
owners, sorted entries), and an archive whose bytes would not change is not rewritten.
For each image it prints one line: `<archive> <image reference> <archive sha256>`.

Images:
  sandlab-test/pause:1    /pause (tests/kube/pause), the pod sandbox image
  sandlab-test/busybox:1  /bin/busybox (static) with a link per applet, /etc/passwd and
                          /etc/group with root and nobody, /root, /tmp
  sandlab-test/agent:1    /sandlab-agent (static), nothing else
"""

import argparse
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile

PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class Layer:
    """A layer tar built in memory, reproducibly."""

    def __init__(self):
        self.entries = {}  # path -> (TarInfo, bytes or None)

    def _info(self, path, kind, mode):
        info = tarfile.TarInfo(path)
        info.type = kind
        info.mode = mode
        info.uid = info.gid = 0
        info.uname = info.gname = "root"
        info.mtime = 0
        return info

    def dir(self, path, mode=0o755):
        # Parents first, so that every directory in the archive is explicit.
        parts = path.strip("/").split("/")
        for i in range(1, len(parts)):
            parent = "/".join(parts[:i])
            if parent not in self.entries:
                self.entries[parent] = (self._info(parent, tarfile.DIRTYPE, 0o755), None)
        self.entries[path.strip("/")] = (self._info(path.strip("/"), tarfile.DIRTYPE, mode), None)

    def file(self, path, data, mode=0o644):
        path = path.strip("/")
        if "/" in path:
            parent = path.rsplit("/", 1)[0]
            if parent not in self.entries:
                self.dir(parent)
        info = self._info(path, tarfile.REGTYPE, mode)
        info.size = len(data)
        self.entries[path] = (info, data)

    def symlink(self, path, target):
        path = path.strip("/")
        if "/" in path:
            parent = path.rsplit("/", 1)[0]
            if parent not in self.entries:
                self.dir(parent)
        info = self._info(path, tarfile.SYMTYPE, 0o777)
        info.linkname = target
        self.entries[path] = (info, None)

    def tar(self):
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
            for path in sorted(self.entries):
                info, data = self.entries[path]
                tar.addfile(info, io.BytesIO(data) if data is not None else None)
        return buf.getvalue()


def image_archive(ref, layer, config):
    """A `docker save` archive of one image: manifest.json, the config, the layer."""
    layer_tar = layer.tar()
    diff_id = "sha256:" + hashlib.sha256(layer_tar).hexdigest()
    cfg = {
        "architecture": "amd64",
        "os": "linux",
        "created": "1970-01-01T00:00:00Z",
        "config": config,
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created": "1970-01-01T00:00:00Z", "created_by": "tests/kube/images.py"}],
    }
    cfg_json = json.dumps(cfg, sort_keys=True, separators=(",", ":")).encode()
    cfg_name = hashlib.sha256(cfg_json).hexdigest() + ".json"
    layer_name = diff_id[len("sha256:"):] + "/layer.tar"
    manifest = json.dumps(
        [{"Config": cfg_name, "RepoTags": [ref], "Layers": [layer_name]}],
        separators=(",", ":"),
    ).encode()
    out = Layer()
    out.file(cfg_name, cfg_json)
    out.file(layer_name, layer_tar)
    out.file("manifest.json", manifest)
    return out.tar()


def read(path):
    with open(path, "rb") as f:
        return f.read()


def pause_image(pause_bin):
    layer = Layer()
    layer.file("pause", read(pause_bin), 0o755)
    return image_archive("sandlab-test/pause:1", layer, {"Entrypoint": ["/pause"], "Env": [PATH_ENV]})


def busybox_image(busybox):
    layer = Layer()
    layer.file("bin/busybox", read(busybox), 0o755)
    # One link per applet, where the applet usually lives (bin/sh, usr/bin/wget, ...).
    applets = subprocess.run([busybox, "--list-full"], check=True, capture_output=True, text=True)
    for path in applets.stdout.split():
        if path != "bin/busybox":
            layer.symlink(path, "/bin/busybox")
    layer.file("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n"
               b"nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")
    layer.file("etc/group", b"root:x:0:\nnogroup:x:65534:\n")
    layer.dir("root", 0o700)
    layer.dir("tmp", 0o1777)
    return image_archive("sandlab-test/busybox:1", layer, {"Cmd": ["sh"], "Env": [PATH_ENV]})


def agent_image(agent_bin):
    layer = Layer()
    layer.file("sandlab-agent", read(agent_bin), 0o755)
    return image_archive("sandlab-test/agent:1", layer, {"Entrypoint": ["/sandlab-agent"], "Env": [PATH_ENV]})


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out_dir")
    p.add_argument("--pause", required=True, help="the pause binary")
    p.add_argument("--busybox", help="a static busybox")
    p.add_argument("--agent", help="the static sandlab-agent")
    args = p.parse_args()

    builds = [("pause", "sandlab-test/pause:1", lambda: pause_image(args.pause))]
    if args.busybox:
        builds.append(("busybox", "sandlab-test/busybox:1", lambda: busybox_image(args.busybox)))
    if args.agent:
        builds.append(("agent", "sandlab-test/agent:1", lambda: agent_image(args.agent)))

    os.makedirs(args.out_dir, exist_ok=True)
    for name, ref, build in builds:
        data = build()
        path = os.path.join(args.out_dir, name + ".tar")
        digest = hashlib.sha256(data).hexdigest()
        try:
            same = hashlib.sha256(read(path)).hexdigest() == digest
        except FileNotFoundError:
            same = False
        if not same:
            tmp = path + ".tmp"
            with open(tmp, "wb") as f:
                f.write(data)
            os.replace(tmp, path)
        print(path, ref, digest)


if __name__ == "__main__":
    try:
        main()
    except (OSError, subprocess.CalledProcessError) as e:
        print(f"images.py: {e}", file=sys.stderr)
        sys.exit(1)
