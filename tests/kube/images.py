#!/usr/bin/env python3
"""Builds the test cluster's container images as Docker image archives (`docker save`'s
format, which `ctr images import` reads), with the standard library only.

    images.py OUT_DIR --pause PAUSE_BIN [--busybox BUSYBOX] [--agent AGENT_BIN]
              [--sandlab SANDLAB_BIN --labs LABS_DIR] [--postgres PG_DIR]
    images.py OUT_DIR --node-images BIN_DIR --kube-version V --etcd-tag T --coredns-tag T
              --pause-tag T --busybox BUSYBOX --nginx NGINX_BIN --nft NFT_BIN

Each image is one layer; the archives are byte-for-byte reproducible (fixed times and
owners, sorted entries), and an archive whose bytes would not change is not rewritten.
For each image it prints one line: `<archive> <image reference> <archive sha256>`.

Images:
  sandlab-test/pause:1    /pause (tests/kube/pause), the pod sandbox image
  sandlab-test/busybox:1  /bin/busybox (static) with a link per applet, /etc/passwd and
                          /etc/group with root and nobody, /root, /tmp
  sandlab-test/agent:1    /sandlab-agent (static), nothing else
  sandlab-test/sandlab:1  the control plane, as deploy/kubernetes/Dockerfile.sandlab makes
                          it: /usr/local/bin/sandlab (stripped of debug information) with
                          the shared libraries it links, the labs, CA certificates, user
                          10001; entrypoint `sandlab`, command `serve`
  (--node-images, run inside the `kubernetes` image's build, images/kubernetes.toml:
  what a kubeadm node runs, named as kubeadm names them, from BIN_DIR's binaries,
  written not as archives but as the node's local registry, OUT_DIR/blobs and
  OUT_DIR/tags, which images/kubernetes/sandlab-registry serves)
  registry.k8s.io/kube-apiserver, kube-controller-manager, kube-scheduler:V
                          the binary in /usr/local/bin (the static Pods call it by name)
  registry.k8s.io/kube-proxy:V  kube-proxy and nft (its nftables mode) with nft's libraries
  registry.k8s.io/etcd:T  etcd, etcdctl and etcdutl in /usr/local/bin
  registry.k8s.io/coredns/coredns:T  /coredns
  registry.k8s.io/pause:T /pause
  docker.io/library/busybox:latest (and :1.36, :stable)  as sandlab-test/busybox:1
  docker.io/library/nginx:latest (and :stable, :alpine, :1.25)  Debian's nginx with its
                          libraries and busybox, serving /usr/share/nginx/html on port 80
                          with the official image's page, logs to the container's output
  sandlab-test/postgres:1 PostgreSQL from this host (PG_DIR, e.g. /usr/lib/postgresql/15)
                          with what the official `postgres` image's entrypoint does that
                          deploy/kubernetes/postgres.yaml relies on (POSTGRES_USER,
                          POSTGRES_PASSWORD, POSTGRES_DB, PGDATA; a first start makes
                          the cluster), busybox for `sh`, user postgres (999)
"""

import argparse
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile

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


def image_parts(layer, config):
    """One image's uncompressed layer, its digest (also its diff id) and its config."""
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
    return layer_tar, diff_id, json.dumps(cfg, sort_keys=True, separators=(",", ":")).encode()


def image_archive(ref, layer, config):
    """A `docker save` archive of one image: manifest.json, the config, the layer. `ref`
    is a reference or a list of them (tags of the same image)."""
    refs = ref if isinstance(ref, list) else [ref]
    layer_tar, diff_id, cfg_json = image_parts(layer, config)
    cfg_name = hashlib.sha256(cfg_json).hexdigest() + ".json"
    layer_name = diff_id[len("sha256:"):] + "/layer.tar"
    manifest = json.dumps(
        [{"Config": cfg_name, "RepoTags": refs, "Layers": [layer_name]}],
        separators=(",", ":"),
    ).encode()
    out = Layer()
    out.file(cfg_name, cfg_json)
    out.file(layer_name, layer_tar)
    out.file("manifest.json", manifest)
    return out.tar()


def registry_put(root, ref, layer, config):
    """Stores one image in `root` as the registry that `sandlab-registry` serves reads it
    (an OCI image manifest over the same config and one uncompressed layer):
    `blobs/<sha256 hex>` and `tags/<repository>/<tag>` holding the manifest's digest.
    References are `host/repository:tag`; the host is dropped (each mirror serves all).
    Returns the manifest's digest."""
    refs = ref if isinstance(ref, list) else [ref]
    layer_tar, layer_digest, cfg_json = image_parts(layer, config)
    cfg_digest = "sha256:" + hashlib.sha256(cfg_json).hexdigest()
    manifest = json.dumps({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": cfg_digest, "size": len(cfg_json)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": layer_digest, "size": len(layer_tar)}],
    }, sort_keys=True, separators=(",", ":")).encode()
    manifest_digest = "sha256:" + hashlib.sha256(manifest).hexdigest()
    os.makedirs(os.path.join(root, "blobs"), exist_ok=True)
    for digest, data in ((layer_digest, layer_tar), (cfg_digest, cfg_json), (manifest_digest, manifest)):
        path = os.path.join(root, "blobs", digest.split(":", 1)[1])
        if not os.path.exists(path):
            with open(path + ".tmp", "wb") as f:
                f.write(data)
            os.replace(path + ".tmp", path)
    for r in refs:
        name, tag = r.rsplit(":", 1)
        repo = name.split("/", 1)[1] if "." in name.split("/", 1)[0] else name
        tag_dir = os.path.join(root, "tags", repo)
        os.makedirs(tag_dir, exist_ok=True)
        with open(os.path.join(tag_dir, tag), "w") as f:
            f.write(manifest_digest + "\n")
    return manifest_digest


def read(path):
    with open(path, "rb") as f:
        return f.read()


def pause_image(pause_bin):
    layer = Layer()
    layer.file("pause", read(pause_bin), 0o755)
    return image_archive("sandlab-test/pause:1", layer, {"Entrypoint": ["/pause"], "Env": [PATH_ENV]})


def busybox_image(busybox, refs="sandlab-test/busybox:1", emit=image_archive):
    layer = Layer()
    add_busybox(layer, busybox)
    layer.file("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n"
               b"nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")
    layer.file("etc/group", b"root:x:0:\nnogroup:x:65534:\n")
    layer.dir("root", 0o700)
    layer.dir("tmp", 0o1777)
    return emit(refs, layer, {"Cmd": ["sh"], "Env": [PATH_ENV]})


def add_busybox(layer, busybox):
    layer.file("bin/busybox", read(busybox), 0o755)
    # One link per applet, where the applet usually lives (bin/sh, usr/bin/wget, ...).
    applets = subprocess.run([busybox, "--list-full"], check=True, capture_output=True, text=True)
    for path in applets.stdout.split():
        if path != "bin/busybox" and path not in layer.entries:
            layer.symlink(path, "/bin/busybox")


def shared_libraries(binaries):
    """The shared libraries (and the dynamic loader) `ldd` finds for the binaries."""
    libs = set()
    for b in binaries:
        out = subprocess.run(["ldd", b], capture_output=True, text=True)
        if out.returncode != 0:
            continue  # not dynamic
        for line in out.stdout.splitlines():
            parts = line.split()
            if "=>" in parts:
                target = parts[parts.index("=>") + 1]
                if target.startswith("/"):
                    libs.add(target)
            elif parts and parts[0].startswith("/"):
                libs.add(parts[0])
    return sorted(libs)


def add_tree(layer, src, dst, skip=(), skip_files=()):
    """src's files and links at dst (directories made as they come), but the directories
    named in skip and the files whose names start with one of skip_files."""
    for root, dirs, files in os.walk(src):
        dirs[:] = sorted(d for d in dirs if d not in skip)
        rel = os.path.relpath(root, src)
        at = dst if rel == "." else os.path.join(dst, rel)
        layer.dir(at)
        for name in sorted(files + [d for d in dirs if os.path.islink(os.path.join(root, d))]):
            if name.startswith(tuple(skip_files)):
                continue
            path = os.path.join(root, name)
            if os.path.islink(path):
                layer.symlink(os.path.join(at, name), os.readlink(path))
            else:
                layer.file(os.path.join(at, name), read(path), os.stat(path).st_mode & 0o7777)


def sandlab_image(sandlab_bin, labs):
    layer = Layer()
    with tempfile.TemporaryDirectory() as tmp:
        stripped = os.path.join(tmp, "sandlab")
        subprocess.run(["strip", "--strip-debug", "-o", stripped, sandlab_bin], check=True)
        layer.file("usr/local/bin/sandlab", read(stripped), 0o755)
    for lib in shared_libraries([sandlab_bin]):
        layer.file(lib, read(lib), 0o755)
    layer.file("etc/passwd", b"root:x:0:0:root:/root:/usr/sbin/nologin\n"
               b"sandlab:x:10001:10001::/var/lib/sandlab:/usr/sbin/nologin\n")
    layer.file("etc/group", b"root:x:0:\nsandlab:x:10001:\n")
    layer.file("etc/ssl/certs/ca-certificates.crt", read("/etc/ssl/certs/ca-certificates.crt"))
    add_tree(layer, labs, "usr/local/share/sandlab/labs")
    layer.dir("etc/sandlab")
    layer.dir("var/lib/sandlab")
    layer.dir("tmp", 0o1777)
    return image_archive("sandlab-test/sandlab:1", layer, {
        "Entrypoint": ["/usr/local/bin/sandlab"],
        "Cmd": ["serve", "--listen", "0.0.0.0:8080"],
        "Env": [PATH_ENV, "SANDLAB_DATA_DIR=/var/lib/sandlab", "HOME=/var/lib/sandlab"],
        "User": "10001:10001",
        "WorkingDir": "/var/lib/sandlab",
        "ExposedPorts": {"8080/tcp": {}, "8081/tcp": {}},
    })


# What the official image's docker-entrypoint.sh does for a first start, in short: the
# cluster is made with POSTGRES_USER as its superuser and POSTGRES_PASSWORD as that
# user's password, POSTGRES_DB is created, and connections over TCP need the password.
POSTGRES_ENTRYPOINT = b"""#!/bin/sh
set -eu
: "${PGDATA:=/var/lib/postgresql/data}"
: "${POSTGRES_USER:=postgres}"
: "${POSTGRES_DB:=$POSTGRES_USER}"
if [ -z "${POSTGRES_PASSWORD:-}" ]; then
  echo "postgres-entrypoint: POSTGRES_PASSWORD is not set" >&2
  exit 1
fi
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  mkdir -p "$PGDATA"
  chmod 700 "$PGDATA"
  pwfile=$(mktemp)
  printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
  initdb -D "$PGDATA" -U "$POSTGRES_USER" --pwfile="$pwfile" --auth-local=trust \
    --auth-host=scram-sha-256 --locale=C --encoding=UTF8
  rm -f "$pwfile"
  echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
  if [ "$POSTGRES_DB" != postgres ]; then
    echo "CREATE DATABASE \"$POSTGRES_DB\"" | postgres --single -D "$PGDATA" postgres >/dev/null
  fi
fi
exec postgres -D "$PGDATA" -c listen_addresses='*' "$@"
"""


def postgres_image(pg_dir, busybox):
    version = os.path.basename(os.path.normpath(pg_dir))
    share = os.path.join("/usr/share/postgresql", version)
    layer = Layer()
    add_busybox(layer, busybox)
    # Not the JIT (llvmjit.so links the whole of LLVM) nor what builds extensions.
    add_tree(layer, pg_dir, pg_dir.strip("/"), skip=("bitcode", "pgxs"), skip_files=("llvmjit",))
    add_tree(layer, share, share.strip("/"), skip=("man",))
    add_tree(layer, "/usr/share/zoneinfo", "usr/share/zoneinfo", skip=("right", "posix"))
    binaries = [os.path.join(d, f) for d in (os.path.join(pg_dir, "bin"), os.path.join(pg_dir, "lib"))
                if os.path.isdir(d) for f in sorted(os.listdir(d))]
    for lib in shared_libraries([b for b in binaries if b.strip("/") in layer.entries]):
        if lib.strip("/") not in layer.entries:
            layer.file(lib, read(lib), 0o755)
    layer.file("usr/local/bin/postgres-entrypoint", POSTGRES_ENTRYPOINT, 0o755)
    layer.file("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n"
               b"postgres:x:999:999:PostgreSQL:/var/lib/postgresql:/bin/sh\n")
    layer.file("etc/group", b"root:x:0:\npostgres:x:999:\n")
    layer.dir("var/lib/postgresql")
    layer.dir("var/run/postgresql", 0o2777)
    layer.dir("tmp", 0o1777)
    return image_archive("sandlab-test/postgres:1", layer, {
        "Entrypoint": ["/usr/local/bin/postgres-entrypoint"],
        "Env": ["PATH=" + os.path.join(pg_dir, "bin") + ":" + PATH_ENV[len("PATH="):],
                "PGDATA=/var/lib/postgresql/data", "LANG=C"],
        "User": "999:999",
        "ExposedPorts": {"5432/tcp": {}},
    })


def agent_image(agent_bin):
    layer = Layer()
    layer.file("sandlab-agent", read(agent_bin), 0o755)
    return image_archive("sandlab-test/agent:1", layer, {"Entrypoint": ["/sandlab-agent"], "Env": [PATH_ENV]})


def binary_image(emit, ref, binaries, entrypoint=None, extra=()):
    """One image of static binaries: each (path in the image, path here)."""
    layer = Layer()
    for at, here in binaries:
        layer.file(at, read(here), 0o755)
    for lib in shared_libraries([here for _, here in extra]):
        layer.file(lib, read(lib), 0o755)
    for at, here in extra:
        layer.file(at, read(here), 0o755)
    layer.dir("tmp", 0o1777)
    layer.file("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")
    layer.file("etc/group", b"root:x:0:\nnogroup:x:65534:\n")
    config = {"Env": [PATH_ENV]}
    if entrypoint:
        config["Entrypoint"] = entrypoint
    return emit(ref, layer, config)


NGINX_CONF = b"""user nginx;
worker_processes auto;
error_log /var/log/nginx/error.log notice;
pid /run/nginx.pid;
events { worker_connections 1024; }
http {
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log /var/log/nginx/access.log;
    sendfile on;
    keepalive_timeout 65;
    include /etc/nginx/conf.d/*.conf;
}
"""

NGINX_DEFAULT = b"""server {
    listen 80;
    listen [::]:80;
    server_name localhost;
    location / {
        root /usr/share/nginx/html;
        index index.html index.htm;
    }
    error_page 500 502 503 504 /50x.html;
    location = /50x.html { root /usr/share/nginx/html; }
}
"""

NGINX_INDEX = b"""<!DOCTYPE html>
<html>
<head>
<title>Welcome to nginx!</title>
</head>
<body>
<h1>Welcome to nginx!</h1>
<p>If you see this page, the nginx web server is successfully installed and
working. Further configuration is required.</p>
<p><em>Thank you for using nginx.</em></p>
</body>
</html>
"""


def nginx_image(emit, nginx_bin, busybox):
    layer = Layer()
    add_busybox(layer, busybox)
    layer.file("usr/sbin/nginx", read(nginx_bin), 0o755)
    for lib in shared_libraries([nginx_bin]):
        if lib.strip("/") not in layer.entries:
            layer.file(lib, read(lib), 0o755)
    layer.file("etc/nginx/nginx.conf", NGINX_CONF)
    layer.file("etc/nginx/mime.types", read("/etc/nginx/mime.types"))
    layer.file("etc/nginx/conf.d/default.conf", NGINX_DEFAULT)
    layer.file("usr/share/nginx/html/index.html", NGINX_INDEX)
    layer.file("usr/share/nginx/html/50x.html", b"<html><body><h1>An error occurred.</h1></body></html>\n")
    layer.dir("var/log/nginx")
    layer.symlink("var/log/nginx/access.log", "/dev/stdout")
    layer.symlink("var/log/nginx/error.log", "/dev/stderr")
    # Debian's nginx keeps its temporary files in /var/lib/nginx.
    for d in ("var/lib/nginx", "var/lib/nginx/body", "var/lib/nginx/proxy", "var/lib/nginx/fastcgi",
              "var/lib/nginx/uwsgi", "var/lib/nginx/scgi", "var/cache/nginx", "run"):
        layer.dir(d)
    layer.file("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n"
               b"nginx:x:101:101:nginx user:/nonexistent:/bin/false\n"
               b"nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")
    layer.file("etc/group", b"root:x:0:\nnginx:x:101:\nnogroup:x:65534:\n")
    layer.dir("tmp", 0o1777)
    tags = ["docker.io/library/nginx:" + t for t in ("latest", "stable", "alpine", "1.25")]
    return emit(tags, layer, {
        "Cmd": ["nginx", "-g", "daemon off;"],
        "Env": [PATH_ENV],
        "ExposedPorts": {"80/tcp": {}},
        "StopSignal": "SIGQUIT",
    })


def node_images(args):
    """Writes every image a kubeadm node of the `kubernetes` image serves from its local
    registry into args.out_dir (see registry_put); prints `<reference> <digest>` each."""
    emit = lambda ref, layer, config: registry_put(args.out_dir, ref, layer, config)
    b = lambda name: os.path.join(args.node_images, name)
    kv = args.kube_version
    made = []
    for c in ("kube-apiserver", "kube-controller-manager", "kube-scheduler"):
        ref = f"registry.k8s.io/{c}:{kv}"
        made.append((ref, binary_image(emit, ref, [("usr/local/bin/" + c, b(c))])))
    ref = f"registry.k8s.io/kube-proxy:{kv}"
    made.append((ref, binary_image(emit, ref, [("usr/local/bin/kube-proxy", b("kube-proxy"))],
                                   extra=[("usr/sbin/nft", args.nft)])))
    ref = f"registry.k8s.io/etcd:{args.etcd_tag}"
    made.append((ref, binary_image(emit, ref, [("usr/local/bin/" + n, b(n)) for n in ("etcd", "etcdctl", "etcdutl")])))
    ref = f"registry.k8s.io/coredns/coredns:{args.coredns_tag}"
    made.append((ref, binary_image(emit, ref, [("coredns", b("coredns"))], ["/coredns"])))
    ref = f"registry.k8s.io/pause:{args.pause_tag}"
    made.append((ref, binary_image(emit, ref, [("pause", b("pause"))], ["/pause"])))
    tags = ["docker.io/library/busybox:" + t for t in ("latest", "1.36", "stable")]
    made.append((tags[0], busybox_image(args.busybox, tags, emit)))
    made.append(("docker.io/library/nginx:latest", nginx_image(emit, args.nginx, args.busybox)))
    for ref, digest in made:
        print(ref, digest)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out_dir")
    p.add_argument("--pause", help="the pause binary")
    p.add_argument("--node-images", help="the directory of a Kubernetes node's binaries")
    p.add_argument("--kube-version")
    p.add_argument("--etcd-tag")
    p.add_argument("--coredns-tag")
    p.add_argument("--pause-tag")
    p.add_argument("--nginx", help="an nginx binary (with --node-images)")
    p.add_argument("--nft", help="the nft binary (with --node-images)")
    p.add_argument("--busybox", help="a static busybox")
    p.add_argument("--agent", help="the static sandlab-agent")
    p.add_argument("--sandlab", help="the sandlab binary (the control plane's image)")
    p.add_argument("--labs", help="the labs the control plane's image holds")
    p.add_argument("--postgres", help="a PostgreSQL installation, e.g. /usr/lib/postgresql/15")
    args = p.parse_args()

    if args.node_images:
        for need in ("kube_version", "etcd_tag", "coredns_tag", "pause_tag", "busybox", "nginx", "nft"):
            if not getattr(args, need):
                p.error("--node-images needs --" + need.replace("_", "-"))
        node_images(args)
        return
    if not args.pause:
        p.error("--pause or --node-images is required")
    builds = [("pause", "sandlab-test/pause:1", lambda: pause_image(args.pause))]
    if args.busybox:
        builds.append(("busybox", "sandlab-test/busybox:1", lambda: busybox_image(args.busybox)))
    if args.agent:
        builds.append(("agent", "sandlab-test/agent:1", lambda: agent_image(args.agent)))
    if args.sandlab:
        if not args.labs:
            p.error("--sandlab needs --labs")
        builds.append(("sandlab", "sandlab-test/sandlab:1", lambda: sandlab_image(args.sandlab, args.labs)))
    if args.postgres:
        if not args.busybox:
            p.error("--postgres needs --busybox")
        builds.append(("postgres", "sandlab-test/postgres:1", lambda: postgres_image(args.postgres, args.busybox)))

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
