#!/usr/bin/env bash
# A real one-node Kubernetes cluster on this host, for the integration tests of Sandlab's
# Kubernetes driver: etcd, kube-apiserver, kube-scheduler and a kubelet built from the Go
# module proxy, Debian's containerd 1.6 (an instance of its own) and the CNI bridge plugin.
# There is no kube-controller-manager and no kube-proxy (see tests/kube/README.md).
#
#   scripts/kube.sh build       build the binaries into .data/kube/bin (once; a warm run
#                               does nothing); stdout: nothing
#   scripts/kube.sh images      build the test images (.data/kube/images/*.tar) and, when
#                               the cluster runs, import them into its containerd; `start`
#                               imports whatever archives exist, so it may run before or
#                               after `start`; stdout: nothing
#   scripts/kube.sh start       start a fresh cluster and wait until it is ready (the node
#                               Ready, /readyz ok); stdout: the admin kubeconfig's path
#   scripts/kube.sh stop        stop it and remove everything it left; succeeds when
#                               nothing runs; stdout: nothing
#   scripts/kube.sh kubeconfig  stdout: the admin kubeconfig's path
#   scripts/kube.sh context     build, then make the `kubernetes` image's build context
#                               (images/kubernetes.toml); stdout: its path
#
# Logs go to stderr and to .data/kube/log/. One cluster runs per host at a time (a lock on
# /run/lock/sandlab-kube.lock, held by the cluster's processes while they run).
#
# Some functions run only through wait_for or a trap, which shellcheck cannot see:
# shellcheck disable=SC2317
set -euo pipefail
self=$(readlink -f "$0")
cd "$(dirname "$self")/.."
REPO=$(pwd -P)

# --- where things are -------------------------------------------------------------------
D=$(readlink -m "$REPO/.data/kube") # everything of this checkout's cluster
BIN=$D/bin                         # the built binaries (kept)
IMAGES=$D/images                   # the test images' archives (kept)
LOG=$D/log                         # the daemons' logs (kept until the next start)
VAR=$D/var                         # containerd's root and the kubelet's root (wiped by stop)
KUBECONFIG_PATH=$D/admin.kubeconfig
RUN=/run/sandlab-kube              # sockets, pids, certificates, etcd (wiped by stop)
LOCK=/run/lock/sandlab-kube.lock
SOCK=$RUN/containerd.sock

# --- the cluster's fixed settings -------------------------------------------------------
NODE=sandlab-test
BRIDGE=sltk0
SUBNET=10.244.77.0/24
GATEWAY=10.244.77.1                # on the host's bridge; also the node's IP
SERVICE_RANGE=10.96.77.0/24
CNI_NETWORK=sandlab-kube           # the CNI network's name (prefixes its cache files)
ETCD_PORT=23790
ETCD_PEER_PORT=23800
API_PORT=26443
SCHEDULER_PORT=20259
CONTROLLER_MANAGER_PORT=20257
PROXY_HEALTHZ_PORT=20256
PROXY_METRICS_PORT=20249
DNS_HEALTH_PORT=20280              # CoreDNS's health and ready (it serves DNS on $GATEWAY:53)
DNS_READY_PORT=20281
KUBELET_PORT=20250
KUBELET_HEALTHZ_PORT=20248
CGROUP_ROOT=sandlab-kubelet        # the kubelet's cgroupRoot, in every hierarchy
PAUSE_IMAGE=docker.io/sandlab-test/pause:1
# Host directories the kubelet, containerd's shims and CNI write to whatever they are told
# (the device plugins' socket, the container log links, the shims' sockets, CNI's cache):
# those that start finds missing are removed again by stop when they are empty.
HOST_DIRS=(/var/lib/kubelet /var/log/containers /run/containerd /var/lib/cni)
# The kernel settings the kubelet changes (it sets what it expects unless
# protectKernelDefaults): saved by start, put back by stop.
SYSCTLS=(vm/overcommit_memory vm/panic_on_oom kernel/panic kernel/panic_on_oops
         kernel/keys/root_maxkeys kernel/keys/root_maxbytes net/ipv4/conf/all/route_localnet)
# kube-proxy's nftables tables (its nftables mode keeps everything in these two).
PROXY_TABLES=("ip kube-proxy" "ip6 kube-proxy")

log() { echo "kube.sh: $*" >&2; }
die() { echo "kube.sh: error: $*" >&2; exit 1; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# =========================================================================================
# build
# =========================================================================================

go_env() {
  # The first Go >= 1.26 of: `go` on PATH, /usr/local/go/bin/go (the newest Kubernetes and
  # etcd need it; Debian's golang is older).
  local c v
  GO=
  for c in "$(command -v go || true)" /usr/local/go/bin/go; do
    if [ -z "$c" ] || [ ! -x "$c" ]; then continue; fi
    v=$("$c" env GOVERSION 2>/dev/null) || continue
    v=${v#go}
    if [ "$(printf '%s\n' 1.26 "$v" | sort -V | head -n1)" = 1.26 ]; then GO=$c; break; fi
  done
  [ -n "$GO" ] || die "no Go >= 1.26 (neither 'go' on PATH nor /usr/local/go/bin/go); Kubernetes and etcd need it."
  # Everything Go downloads or caches stays inside the checkout (CI keeps nothing else).
  export GOPATH=$D/gopath GOMODCACHE=$D/gopath/pkg/mod GOCACHE=$D/gocache
  export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=readonly
  # The module proxy is the only source reachable here ("direct" would try GitHub).
  export GOPROXY=${GOPROXY:-https://proxy.golang.org}
  case $GOPROXY in *direct*) export GOPROXY=https://proxy.golang.org ;; esac
}

# The version a go.mod requires of a module: mod_version FILE MODULE
mod_version() { awk -v m="$2" '$1 == m && $2 ~ /^v/ { print $2; exit } $1 == "require" && $2 == m { print $3; exit }' "$1"; }

# The CPU time (user + system) of a shell's finished children, in seconds, from its
# `times` on stdin (the second line, e.g. "12m3.400s 1m2.300s"). `times` itself must run
# in that shell, not in a $(...).
cpu_seconds() {
  sed -n 2p | awk '{ t = 0; for (i = 1; i <= 2; i++) { split($i, a, /[ms]/); t += a[1] * 60 + a[2] } printf "%.0f", t }'
}

# A group's stamp: what its binaries were built from (the Go version and its sources).
stamp_of() {
  local f
  { "$GO" version
    for f in "tests/kube/$1"/go.mod "tests/kube/$1"/go.sum "tests/kube/$1"/*.go "tests/kube/$1"/*/*.go; do
      if [ -f "$f" ]; then echo "$f"; cat "$f"; fi
    done
    echo "kube.sh build v1"; } | sha256sum | cut -d' ' -f1
}

# stale GROUP NAME...: whether the group's binaries are missing or built from other sources.
stale() {
  local group=$1 name; shift
  for name in "$@"; do [ -x "$BIN/$name" ] || return 0; done
  [ "$(cat "$BIN/.stamp-$group" 2>/dev/null)" != "$(stamp_of "$group")" ]
}

# build_group GROUP LDFLAGS NAME=PACKAGE...: builds the group's binaries, one at a time.
built_any=
build_group() {
  local group=$1 ldflags=$2 spec name pkg t0; shift 2
  rm -f "$BIN/.stamp-$group"
  for spec in "$@"; do
    name=${spec%%=*} pkg=${spec#*=}
    t0=$(now)
    # A download that the network broke (the module proxy's TLS handshake timed out on a
    # CI run) is tried again, twice; a compile error is not.
    local try broken='TLS handshake timeout|i/o timeout|connection (reset|refused)|unexpected EOF|dial tcp|Service Unavailable|Bad Gateway'
    for try in 1 2 3; do
      if (cd "tests/kube/$group" && "$GO" build -trimpath -ldflags "-s -w $ldflags" -o "$BIN/.$name.tmp" "$pkg") \
        >"$LOG/build-$name.log" 2>&1; then
        break
      fi
      if [ "$try" = 3 ] || ! grep -qE "$broken" "$LOG/build-$name.log"; then
        tail -n 20 "$LOG/build-$name.log" >&2
        die "building $name failed (log: $LOG/build-$name.log)."
      fi
      log "building $name: a download failed ($(grep -m1 -oE "$broken" "$LOG/build-$name.log")); trying again in $((try * 10)) s"
      sleep $((try * 10))
    done
    mv -f "$BIN/.$name.tmp" "$BIN/$name"
    log "built $name in $(since "$t0") s"
    built_any=1
  done
  stamp_of "$group" >"$BIN/.stamp-$group"
}

cmd_build() {
  # The warm path must stay fast: hashing a few files and `go version`.
  go_env
  mkdir -p "$BIN" "$LOG"
  # One build at a time in a checkout (say, one in the background and one by hand).
  exec {BUILDFD}>>"$D/.build.lock"
  flock "$BUILDFD"
  local t0 k8s etcd
  t0=$(now)
  k8s=$(mod_version tests/kube/k8s/go.mod k8s.io/kubernetes)
  etcd=$(mod_version tests/kube/etcd/go.mod go.etcd.io/etcd/server/v3)
  if [ -z "$k8s" ] || [ -z "$etcd" ]; then
    die "cannot read the Kubernetes and etcd versions from tests/kube/*/go.mod."
  fi

  if stale pause pause; then build_group pause "" pause=.; fi
  if stale etcd etcd etcdctl etcdutl; then
    build_group etcd "-X go.etcd.io/etcd/api/v3/version.GitSHA=$etcd" etcd=. \
      etcdctl=go.etcd.io/etcd/etcdctl/v3 etcdutl=go.etcd.io/etcd/etcdutl/v3
  fi
  if stale k8s kubeadm kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl coredns; then
    # What `kubectl version` and the node report: upstream's hack/lib/version.sh sets
    # these (without them everything says v0.0.0). The build date is the release's.
    local date major minor kv="" p
    date=$(cd tests/kube/k8s && "$GO" list -m -json k8s.io/kubernetes 2>/dev/null | sed -n 's/^\t"Time": "\(.*\)",\{0,1\}$/\1/p')
    major=${k8s#v} major=${major%%.*}
    minor=${k8s#v*.} minor=${minor%%.*}
    for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
      kv+=" -X $p.gitVersion=$k8s -X $p.gitMajor=$major -X $p.gitMinor=$minor -X $p.gitTreeState=clean"
      kv+=" -X $p.buildDate=${date:-1970-01-01T00:00:00Z}"
    done
    kv+=" -X github.com/coredns/coredns/coremain.GitCommit=$(mod_version tests/kube/k8s/go.mod github.com/coredns/coredns)"
    build_group k8s "$kv" \
      kubeadm=k8s.io/kubernetes/cmd/kubeadm \
      kube-apiserver=k8s.io/kubernetes/cmd/kube-apiserver \
      kube-controller-manager=k8s.io/kubernetes/cmd/kube-controller-manager \
      kube-scheduler=k8s.io/kubernetes/cmd/kube-scheduler \
      kubelet=k8s.io/kubernetes/cmd/kubelet \
      kube-proxy=k8s.io/kubernetes/cmd/kube-proxy \
      kubectl=k8s.io/kubernetes/cmd/kubectl \
      coredns=./coredns
  fi
  if [ -n "$built_any" ]; then
    # The build cache (~4 GB) and the module cache (~0.9 GB) serve only this build, and a
    # full disk failed a CI run: both go (KUBE_KEEP_MODCACHE=1 keeps the module cache).
    "$GO" clean -cache
    [ "${KUBE_KEEP_MODCACHE:-}" = 1 ] || "$GO" clean -modcache
    times >"$LOG/build-times"
    log "build done in $(since "$t0") s, $(cpu_seconds <"$LOG/build-times") s of CPU (Kubernetes $k8s, etcd $etcd; $(du -sh "$D" | cut -f1) in $D)"
  fi
}

# =========================================================================================
# common to images, start and stop
# =========================================================================================

ctr_() { timeout 30 ctr -a "$SOCK" -n k8s.io "$@"; }
containerd_up() { [ -S "$SOCK" ] && timeout 5 ctr -a "$SOCK" version >/dev/null 2>&1; }

# The pid in $RUN/NAME.pid when that process still runs the binary it was started from.
pid_of() {
  local name=$1 pid exe want
  pid=$(cat "$RUN/$name.pid" 2>/dev/null) || return 1
  want=$(cat "$RUN/$name.exe" 2>/dev/null) || return 1
  exe=$(readlink "/proc/$pid/exe" 2>/dev/null) || return 1
  [ "${exe% (deleted)}" = "$want" ] && echo "$pid"
}

# spawn NAME BINARY ARGS...: starts a daemon in a session of its own, detached from the
# caller's terminal and pipes (a `$(kube.sh start)` must not wait for it), logging to
# $LOG/NAME.log. It keeps only the lock's descriptor, so the lock is held while any
# process of the cluster runs.
spawn() {
  local name=$1; shift
  (
    for fd in /proc/self/fd/*; do
      fd=${fd##*/}
      if [ "$fd" -gt 2 ] && [ "$fd" != "${LOCKFD:-}" ]; then eval "exec $fd>&-" 2>/dev/null || true; fi
    done
    exec setsid "$@" </dev/null >>"$LOG/$name.log" 2>&1
  ) &
  echo $! >"$RUN/$name.pid"
  disown $!
  echo "$1" >"$RUN/$name.exe"
}

# The cgroup hierarchies mounted on this host (v1 controllers, named ones, and v2). The
# file system type is the field after the "-" (the optional fields before it vary).
cgroup_mounts() {
  awk '{ t = ""; for (i = 7; i < NF; i++) if ($i == "-") { t = $(i + 1); break } }
       t == "cgroup" || t == "cgroup2" { print $5 }' /proc/self/mountinfo | sort -u
}

# Mount points under our directories, deepest first.
our_mounts() {
  awk -v a="$RUN" -v b="$VAR" '{ m = $5; gsub(/\\040/, " ", m);
    if (m == a || index(m, a "/") == 1 || m == b || index(m, b "/") == 1) print length(m), m }' \
    /proc/self/mountinfo | sort -rn | cut -d' ' -f2-
}

# Every process of ours: the built binaries, our containerd and its shims, and whatever
# runs in the kubelet's cgroups. (One `find` reads every /proc/PID/exe link.)
our_pids() {
  local containerd shim proc exe cg
  containerd=$(command -v containerd || echo /usr/bin/containerd)
  shim=$(command -v containerd-shim-runc-v2 || echo /usr/bin/containerd-shim-runc-v2)
  find /proc/[0-9]*/exe -maxdepth 0 \( -lname "$BIN/*" -o -lname "$containerd*" -o -lname "$shim*" \) \
    -printf '%h %l\n' 2>/dev/null | while read -r proc exe; do
      case ${exe% (deleted)} in
        "$BIN"/*) echo "${proc#/proc/}" ;;
        *) case " $(tr '\0' ' ' <"$proc/cmdline" 2>/dev/null) " in
             *" $RUN/containerd.toml "*|*" $SOCK "*) echo "${proc#/proc/}" ;;
           esac ;;
      esac
    done
  for cg in $(cgroup_mounts); do
    [ -d "$cg/$CGROUP_ROOT" ] && find "$cg/$CGROUP_ROOT" -name cgroup.procs -exec cat {} + 2>/dev/null
  done
  true
}

# =========================================================================================
# images
# =========================================================================================

AGENT=target/x86_64-unknown-linux-gnu/release/sandlab-agent
SANDLAB=${SANDLAB_BIN:-target/debug/sandlab}

# make_images [all|pause]: writes the archives (unchanged ones are left as they are).
make_images() {
  [ -x "$BIN/pause" ] || die "$BIN/pause is missing; run scripts/kube.sh build first."
  local args=(--pause "$BIN/pause")
  if [ "$1" = all ]; then
    if [ ! -x "$AGENT" ]; then
      log "the static agent is missing: building it (scripts/build-agent.sh)"
      bash scripts/build-agent.sh >&2 || die "scripts/build-agent.sh failed, so there is no agent for sandlab-test/agent:1."
    fi
    local busybox
    busybox=$(command -v busybox || echo /bin/busybox)
    [ -x "$busybox" ] || die "busybox is missing; install Debian's busybox-static."
    if LC_ALL=C readelf -l "$busybox" 2>/dev/null | grep -q INTERP; then
      die "$busybox is not static; install Debian's busybox-static instead of busybox."
    fi
    args+=(--busybox "$busybox" --agent "$AGENT")
    # The control plane's image and a PostgreSQL for deploy/kubernetes (the test of the
    # deployment files runs them on the cluster).
    [ -x "$SANDLAB" ] || die "$SANDLAB is missing; build it first (cargo build -p sandlab)."
    local pg
    pg=$(find /usr/lib/postgresql -mindepth 1 -maxdepth 1 -type d 2>/dev/null | sort -V | tail -n1)
    [ -n "$pg" ] && [ -x "$pg/bin/postgres" ] || die "PostgreSQL is missing; install Debian's postgresql (scripts/setup.sh --deps)."
    args+=(--sandlab "$SANDLAB" --labs labs --postgres "$pg")
  fi
  python3 tests/kube/images.py "$IMAGES" "${args[@]}" >/dev/null || die "tests/kube/images.py failed."
}

# Imports every archive in $IMAGES into our containerd that it does not hold yet.
import_images() {
  local tar digest ref listed
  listed=$(ctr_ images ls -q) || die "cannot list the images of the cluster's containerd."
  touch "$RUN/imported"
  for tar in "$IMAGES"/*.tar; do
    [ -f "$tar" ] || continue
    digest=$(sha256sum "$tar" | cut -d' ' -f1)
    ref=docker.io/sandlab-test/$(basename "$tar" .tar):1
    if grep -qx "$digest $ref" "$RUN/imported" && grep -qx "$ref" <<<"$listed"; then
      continue
    fi
    ctr_ images import "$tar" >>"$LOG/images.log" 2>&1 \
      || die "importing $tar into containerd failed (log: $LOG/images.log)."
    grep -vx ".* $ref" "$RUN/imported" >"$RUN/imported.new" || true
    echo "$digest $ref" >>"$RUN/imported.new"
    mv "$RUN/imported.new" "$RUN/imported"
    log "imported $ref"
  done
}

cmd_images() {
  mkdir -p "$LOG" "$IMAGES"
  make_images all
  if [ "$(cat "$RUN/owner" 2>/dev/null)" = "$REPO" ] && containerd_up; then
    import_images
  else
    log "the images are in $IMAGES; this checkout's cluster is not running, so scripts/kube.sh start will import them"
  fi
}

# =========================================================================================
# start
# =========================================================================================

# Opens the host-wide lock as LOCKFD and tries to take it.
take_lock() {
  mkdir -p "$(dirname "$LOCK")"
  exec {LOCKFD}>>"$LOCK"
  flock -n "$LOCKFD"
}

# openssl helpers: an EC P-256 key, and a certificate signed by our CA.
key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
cert() {  # cert NAME SUBJECT EXTENSIONS
  local p=$RUN/pki
  key "$p/$1.key"
  openssl req -new -key "$p/$1.key" -subj "$2" 2>/dev/null |
    openssl x509 -req -CA "$p/ca.crt" -CAkey "$p/ca.key" -set_serial "0x$(openssl rand -hex 16)" \
      -days 3650 -extfile <(printf '%b\n' "$3") -out "$p/$1.crt" 2>/dev/null
}
b64() { base64 -w0 <"$1"; }

# kubeconfig FILE USER: a kubeconfig with the credentials embedded.
kubeconfig() {
  local p=$RUN/pki
  rm -f "$1"
  (umask 077 && cat >"$1") <<EOF
apiVersion: v1
kind: Config
clusters:
- name: $NODE
  cluster:
    server: https://$GATEWAY:$API_PORT
    certificate-authority-data: $(b64 "$p/ca.crt")
users:
- name: $2
  user:
    client-certificate-data: $(b64 "$p/$2.crt")
    client-key-data: $(b64 "$p/$2.key")
contexts:
- name: $NODE
  context:
    cluster: $NODE
    user: $2
current-context: $NODE
EOF
}

make_pki() {
  local p=$RUN/pki client="basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth"
  mkdir -p "$p" && chmod 700 "$p"
  key "$p/ca.key"
  openssl req -x509 -new -key "$p/ca.key" -subj "/CN=sandlab-kube-ca" -days 3650 -out "$p/ca.crt" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
  cert apiserver "/CN=kube-apiserver" "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,IP:$GATEWAY,IP:${SERVICE_RANGE%.0/24}.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
  cert admin "/O=system:masters/CN=sandlab-admin" "$client"
  cert kubelet "/O=system:nodes/CN=system:node:$NODE" "$client"
  cert scheduler "/CN=system:kube-scheduler" "$client"
  cert controller-manager "/CN=system:kube-controller-manager" "$client"
  cert kube-proxy "/CN=system:kube-proxy" "$client"
  # CoreDNS reads Services, EndpointSlices, Namespaces and Pods cluster-wide; on this test
  # cluster it runs on the host with an admin certificate instead of a ServiceAccount.
  cert coredns "/O=system:masters/CN=sandlab-coredns" "$client"
  cert apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client" "$client"
  # The service account token signer (TokenRequest): RSA, as kubeadm's (RS256 tokens).
  openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$p/sa.key" 2>/dev/null
  openssl pkey -in "$p/sa.key" -pubout -out "$p/sa.pub" 2>/dev/null
  if [ ! -s "$p/sa.pub" ] || [ ! -s "$p/apiserver-kubelet-client.crt" ]; then
    die "openssl could not make the cluster's certificates."
  fi
  kubeconfig "$RUN/kubelet.kubeconfig" kubelet
  kubeconfig "$RUN/scheduler.kubeconfig" scheduler
  kubeconfig "$RUN/controller-manager.kubeconfig" controller-manager
  kubeconfig "$RUN/kube-proxy.kubeconfig" kube-proxy
  kubeconfig "$RUN/coredns.kubeconfig" coredns
  kubeconfig "$KUBECONFIG_PATH" admin
}

write_configs() {
  local runc
  runc=$(command -v runc)
  mkdir -p "$RUN/cni" "$VAR"
  cat >"$RUN/containerd.toml" <<EOF
# The test cluster's own containerd (scripts/kube.sh); never the system's.
version = 2
root = "$VAR/containerd"
state = "$RUN/containerd"
oom_score = 0
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
                    "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs"]

[grpc]
  address = "$SOCK"

[plugins."io.containerd.internal.v1.opt"]
  path = "$VAR/containerd-opt"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  # Root here may lack CAP_SYS_RESOURCE: never lower a process's oom_score_adj.
  restrict_oom_score_adj = true
  # The pods' network namespaces under our state directory, not /var/run/netns.
  netns_mounts_under_state_dir = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "$runc"
        Root = "$RUN/runc"
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$RUN/cni"
    max_conf_num = 1
EOF
  # The bridge exists before (start makes it, with the gateway's address), so the plugin
  # need not be the gateway: it then leaves ip_forward alone. No masquerading, no iptables.
  cat >"$RUN/cni/10-$CNI_NETWORK.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "$CNI_NETWORK",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$BRIDGE",
      "isGateway": false,
      "ipMasq": false,
      "ipam": {
        "type": "host-local",
        "dataDir": "$RUN/cni-ipam",
        "ranges": [[{ "subnet": "$SUBNET", "gateway": "$GATEWAY" }]],
        "routes": [{ "dst": "0.0.0.0/0", "gw": "$GATEWAY" }]
      }
    }
  ]
}
EOF
  cat >"$RUN/scheduler.yaml" <<EOF
apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
clientConnection:
  kubeconfig: $RUN/scheduler.kubeconfig
leaderElection:
  leaderElect: false
EOF
  cat >"$RUN/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection:
  kubeconfig: $RUN/kube-proxy.kubeconfig
hostnameOverride: $NODE
mode: nftables
clusterCIDR: $SUBNET
healthzBindAddress: 127.0.0.1:$PROXY_HEALTHZ_PORT
metricsBindAddress: 127.0.0.1:$PROXY_METRICS_PORT
# NodePorts only on the bridge's address, not on every address of the host.
nodePortAddresses: ["$GATEWAY/32"]
# The host's conntrack settings stay as they are.
conntrack:
  maxPerCore: 0
  min: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
# The pods share one bridge, so a Service's reply would go straight from one pod to the
# other, past the host's NAT, wherever br_netfilter is not loaded: masquerade every
# Service connection.
nftables:
  masqueradeAll: true
EOF
  cat >"$RUN/Corefile" <<EOF
.:53 {
    bind $GATEWAY
    errors
    health 127.0.0.1:$DNS_HEALTH_PORT
    ready 127.0.0.1:$DNS_READY_PORT
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        kubeconfig $RUN/coredns.kubeconfig $NODE
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
        ttl 30
    }
    forward . /etc/resolv.conf
    cache 30
    loop
}
EOF
  cat >"$RUN/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $GATEWAY
port: $KUBELET_PORT
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: $KUBELET_HEALTHZ_PORT
authentication:
  anonymous: { enabled: false }
  webhook: { enabled: false }
  x509: { clientCAFile: $RUN/pki/ca.crt }
authorization:
  mode: AlwaysAllow
containerRuntimeEndpoint: unix://$SOCK
# This host is cgroup v1 (hybrid); the kubelet refuses v1 unless told otherwise.
failCgroupV1: false
cgroupDriver: cgroupfs
cgroupRoot: /$CGROUP_ROOT
cgroupsPerQOS: true
failSwapOn: false
podPidsLimit: 4096
# Root may lack CAP_SYS_RESOURCE: do not try to lower the kubelet's own oom_score_adj.
oomScoreAdj: 0
# Absolute thresholds: a percentage of a large shared disk put the node in DiskPressure.
evictionHard:
  memory.available: 100Mi
  nodefs.available: 1Gi
  imagefs.available: 1Gi
  nodefs.inodesFree: 1%
  imagefs.inodesFree: 1%
# The images are imported, never pulled: never collect them.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
# kube-proxy runs in nftables mode: the kubelet need not touch iptables.
makeIPTablesUtilChains: false
# CoreDNS, on the host's end of the bridge.
clusterDNS: [$GATEWAY]
clusterDomain: cluster.local
podLogsDir: $VAR/pod-logs
volumePluginDir: $VAR/volume-plugins
serializeImagePulls: false
EOF
}

# The kubelet's cgroupRoot, in every hierarchy (it must exist before the kubelet starts).
make_cgroups() {
  local cg c
  for cg in $(cgroup_mounts); do
    if [ -f "$cg/cgroup.controllers" ] && [ "$cg" = /sys/fs/cgroup ]; then
      # Pure cgroup v2: let the children have the controllers the kubelet uses.
      for c in cpu cpuset memory pids io hugetlb; do
        grep -qw "$c" "$cg/cgroup.controllers" && ! grep -qw "$c" "$cg/cgroup.subtree_control" &&
          { echo "+$c" >"$cg/cgroup.subtree_control" 2>/dev/null || true; }
      done
    fi
    mkdir -p "$cg/$CGROUP_ROOT" || die "cannot make the cgroup $cg/$CGROUP_ROOT."
    # A new v1 cpuset cgroup has no CPUs nor memory nodes: inherit the root's.
    if [ -f "$cg/cpuset.cpus" ] && [ ! -f "$cg/cgroup.controllers" ]; then
      [ -n "$(cat "$cg/$CGROUP_ROOT/cpuset.cpus")" ] || cat "$cg/cpuset.cpus" >"$cg/$CGROUP_ROOT/cpuset.cpus"
      [ -n "$(cat "$cg/$CGROUP_ROOT/cpuset.mems")" ] || cat "$cg/cpuset.mems" >"$cg/$CGROUP_ROOT/cpuset.mems"
    fi
  done
}

make_bridge() {
  ip link add "$BRIDGE" type bridge 2>/dev/null || die "cannot create the bridge $BRIDGE (it exists already, or no permission)."
  ip addr add "$GATEWAY/${SUBNET#*/}" dev "$BRIDGE"
  ip link set "$BRIDGE" up
}

preflight() {
  local b missing=()
  [ "$(id -u)" = 0 ] || die "scripts/kube.sh start must run as root."
  for b in etcd kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl coredns pause; do
    [ -x "$BIN/$b" ] || missing+=("$BIN/$b")
  done
  [ ${#missing[@]} -eq 0 ] || die "missing ${missing[*]}; run scripts/kube.sh build first."
  for b in containerd containerd-shim-runc-v2 ctr runc openssl curl ip nft flock setsid python3; do
    command -v "$b" >/dev/null || missing+=("$b")
  done
  for b in bridge host-local loopback; do [ -x "/usr/lib/cni/$b" ] || missing+=("/usr/lib/cni/$b"); done
  [ ${#missing[@]} -eq 0 ] || die "missing ${missing[*]}; run scripts/setup.sh --deps (packages containerd, runc, containernetworking-plugins, openssl, curl)."
  [ -n "$(cgroup_mounts)" ] || die "no cgroup hierarchy is mounted."
}

# Run with the lock held: the ports are free unless another program took them.
check_ports() {
  local port busy=()
  for port in $ETCD_PORT $ETCD_PEER_PORT $API_PORT $SCHEDULER_PORT $CONTROLLER_MANAGER_PORT \
    $PROXY_HEALTHZ_PORT $PROXY_METRICS_PORT $DNS_HEALTH_PORT $DNS_READY_PORT $KUBELET_PORT $KUBELET_HEALTHZ_PORT; do
    if ss -Hltn "sport = :$port" 2>/dev/null | grep -q .; then busy+=("$port"); fi
  done
  [ ${#busy[@]} -eq 0 ] || die "the cluster's TCP ports ${busy[*]} are taken by another program."
}

# Whether the daemon NAME that spawn started still runs: its process is there and no
# zombie. (pid_of is no use here: right after spawn the process may still be the subshell
# that has not exec'd the binary yet, which a loaded host showed: "containerd exited"
# while its log was still empty.)
alive() {
  local pid state
  pid=$(cat "$RUN/$1.pid" 2>/dev/null) || return 1
  state=$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f1)
  [ -n "$state" ] && [ "$state" != Z ]
}

# wait_for WHAT SECONDS DAEMON COMMAND...: polls COMMAND until it succeeds; fails when
# DAEMON dies or the time runs out.
wait_for() {
  local what=$1 secs=$2 daemon=$3 deadline; shift 3
  deadline=$(( $(date +%s%N) + secs * 1000000000 ))
  until "$@" >/dev/null 2>&1; do
    if [ -n "$daemon" ] && ! alive "$daemon"; then
      die "$daemon exited while waiting for $what; see $LOG/$daemon.log ($(tail -n 1 "$LOG/$daemon.log" | cut -c1-200))."
    fi
    [ "$(date +%s%N)" -lt "$deadline" ] || die "timed out after ${secs}s waiting for $what; see $LOG/$daemon.log."
    sleep 0.1
  done
}

kctl() { "$BIN/kubectl" --kubeconfig "$KUBECONFIG_PATH" --cache-dir "$RUN/kubectl-cache" --request-timeout=5s "$@"; }
api_get() {
  curl -fsS --max-time 2 --cacert "$RUN/pki/ca.crt" --cert "$RUN/pki/admin.crt" --key "$RUN/pki/admin.key" \
    "https://$GATEWAY:$API_PORT$1"
}
node_ready() {
  [ "$(kctl get node "$NODE" -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}')" = True ]
}
untaint() {
  if kctl get node "$NODE" -o 'jsonpath={.spec.taints[*].key}' | grep -qw node.kubernetes.io/not-ready; then
    kctl taint node "$NODE" node.kubernetes.io/not-ready- >/dev/null
  fi
}

# start's EXIT trap until the cluster is ready: a failed start stops what it started.
on_start_exit() {
  if [ "$1" != 0 ]; then stop_cluster >>"$LOG/stop.log" 2>&1 || true; fi
}

cmd_start() {
  local t0 t
  t0=$(now)
  preflight
  mkdir -p "$LOG" "$IMAGES"
  if ! take_lock; then
    if [ "$(cat "$RUN/owner" 2>/dev/null)" = "$REPO" ]; then
      log "a cluster of this checkout is still running: stopping it first"
      stop_cluster
      flock -w 10 "$LOCKFD" || die "the cluster lock $LOCK is still held after stopping this checkout's cluster."
    else
      die "another Sandlab test cluster runs on this host (of $(cat "$RUN/owner" 2>/dev/null || echo 'an unknown checkout')); stop it first with its scripts/kube.sh stop."
    fi
  fi
  # The lock is ours: whatever is left under our names is stale.
  if [ -e "$RUN" ] || ip link show "$BRIDGE" >/dev/null 2>&1; then
    log "removing what an earlier cluster left"
    stop_cluster
  fi
  check_ports
  # From here on, a failure stops everything that was started.
  trap 'on_start_exit $?' EXIT
  trap 'exit 1' INT TERM HUP
  mkdir -p "$RUN" && chmod 700 "$RUN"
  echo "$REPO" >"$RUN/owner"
  for f in containerd etcd kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy coredns images stop; do
    : >"$LOG/$f.log"
  done
  save_sysctls
  save_host_dirs
  # Services: kube-proxy's DNAT sends a pod's packets for a ClusterIP back out of the
  # bridge, which is forwarding. (Left on at stop, as `sandlab serve` leaves it: a server
  # on this host may rely on it by then.)
  echo 1 >/proc/sys/net/ipv4/ip_forward
  make_bridge
  make_cgroups
  make_pki
  write_configs
  [ -f "$IMAGES/pause.tar" ] || make_images pause

  spawn etcd "$BIN/etcd" --name sandlab --data-dir "$RUN/etcd" \
    --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster "sandlab=http://127.0.0.1:$ETCD_PEER_PORT" --initial-cluster-state new \
    --unsafe-no-fsync --log-level warn
  spawn containerd "$(command -v containerd)" --config "$RUN/containerd.toml"
  spawn kube-apiserver "$BIN/kube-apiserver" \
    --etcd-servers "http://127.0.0.1:$ETCD_PORT" \
    --bind-address "$GATEWAY" --secure-port "$API_PORT" --advertise-address "$GATEWAY" \
    --tls-cert-file "$RUN/pki/apiserver.crt" --tls-private-key-file "$RUN/pki/apiserver.key" \
    --client-ca-file "$RUN/pki/ca.crt" \
    --kubelet-client-certificate "$RUN/pki/apiserver-kubelet-client.crt" \
    --kubelet-client-key "$RUN/pki/apiserver-kubelet-client.key" \
    --kubelet-preferred-address-types InternalIP \
    --service-account-issuer https://kubernetes.default.svc.cluster.local \
    --service-account-key-file "$RUN/pki/sa.pub" --service-account-signing-key-file "$RUN/pki/sa.key" \
    --service-cluster-ip-range "$SERVICE_RANGE" \
    --authorization-mode Node,RBAC \
    --enable-admission-plugins NodeRestriction \
    --disable-admission-plugins TaintNodesByCondition \
    --allow-privileged=true --profiling=false

  wait_for "containerd" 20 containerd containerd_up
  t=$(since "$t0"); log "containerd is up ($t s)"
  spawn kubelet "$BIN/kubelet" --config "$RUN/kubelet.yaml" --kubeconfig "$RUN/kubelet.kubeconfig" \
    --hostname-override "$NODE" --node-ip "$GATEWAY" --root-dir "$VAR/kubelet" --cert-dir "$RUN/kubelet-pki"
  spawn kube-scheduler "$BIN/kube-scheduler" --config "$RUN/scheduler.yaml" \
    --bind-address 127.0.0.1 --secure-port "$SCHEDULER_PORT" \
    --authentication-kubeconfig "$RUN/scheduler.kubeconfig" --authorization-kubeconfig "$RUN/scheduler.kubeconfig"
  spawn kube-proxy "$BIN/kube-proxy" --config "$RUN/kube-proxy.yaml"
  spawn coredns "$BIN/coredns" -conf "$RUN/Corefile"
  import_images

  wait_for "the API server's /readyz" 60 kube-apiserver api_get /readyz
  log "the API server is ready ($(since "$t0") s)"
  # The controllers (Deployments, StatefulSets, volume binding, service accounts and their
  # CA bundle, garbage collection, namespace deletion). No node CIDRs: one bridge. Only now:
  # it gives up at once when its roles are not there yet (/readyz waits for them).
  spawn kube-controller-manager "$BIN/kube-controller-manager" \
    --kubeconfig "$RUN/controller-manager.kubeconfig" \
    --authentication-kubeconfig "$RUN/controller-manager.kubeconfig" \
    --authorization-kubeconfig "$RUN/controller-manager.kubeconfig" \
    --bind-address 127.0.0.1 --secure-port "$CONTROLLER_MANAGER_PORT" --leader-elect=false \
    --root-ca-file "$RUN/pki/ca.crt" --service-account-private-key-file "$RUN/pki/sa.key" \
    --use-service-account-credentials=true --profiling=false
  wait_for "the node $NODE to register" 60 kubelet kctl get node "$NODE"
  untaint
  wait_for "the node $NODE to be Ready" 60 kubelet node_ready
  untaint
  wait_for "the default namespace" 30 kube-apiserver kctl get namespace default
  wait_for "the scheduler" 30 kube-scheduler curl -fsk --max-time 2 "https://127.0.0.1:$SCHEDULER_PORT/healthz"
  wait_for "the controller manager" 30 kube-controller-manager curl -fsk --max-time 2 "https://127.0.0.1:$CONTROLLER_MANAGER_PORT/healthz"
  wait_for "the default service account" 30 kube-controller-manager kctl -n default get serviceaccount default
  wait_for "kube-proxy" 30 kube-proxy curl -fs --max-time 2 "http://127.0.0.1:$PROXY_HEALTHZ_PORT/healthz"
  wait_for "CoreDNS" 30 coredns curl -fs --max-time 2 "http://127.0.0.1:$DNS_READY_PORT/ready"
  trap - EXIT INT TERM HUP
  log "the cluster is ready in $(since "$t0") s (Kubernetes $("$BIN/kubectl" version --client -o json | sed -n 's/.*"gitVersion": "\([^"]*\)".*/\1/p' | head -n1), node $NODE, pods on $SUBNET)"
  echo "$KUBECONFIG_PATH"
}

save_sysctls() {
  local k
  for k in "${SYSCTLS[@]}"; do echo "$k $(cat "/proc/sys/$k")"; done >"$RUN/sysctls"
}

save_host_dirs() {
  local d
  for d in "${HOST_DIRS[@]}"; do [ -e "$d" ] || echo "$d"; done >"$RUN/host-dirs"
}

# =========================================================================================
# stop
# =========================================================================================

# Stops every process of ours and removes what they left. Used by stop, and by start for
# a stale or failed cluster.
stop_cluster() {
  local ids id i cg m left

  # The bundles of the tasks name the pods' containers (and so the shims' sockets, below).
  ids=$(ls "$RUN/containerd/io.containerd.runtime.v2.task/k8s.io" 2>/dev/null || true)

  # Every process of the cluster at once, with KILL: the kubelet, the control plane,
  # containerd, its shims and the pods' processes (by cgroup). All their state is thrown
  # away below, so none needs a clean shutdown, and this takes the same time for any
  # number of pods.
  for ((i = 0; i < 100; i++)); do
    left=$(our_pids | sort -u)
    [ -n "$left" ] || break
    # shellcheck disable=SC2086
    kill -KILL $left 2>/dev/null || true
    sleep 0.05
  done

  # Mounts: the containers' root file systems, /dev/shm, secrets, the network namespaces.
  for m in $(our_mounts); do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true; done

  # The network: the bridge and the host ends of the pods' veths.
  local veths
  veths=$(ip -o link show master "$BRIDGE" 2>/dev/null | awk -F': ' '{ print $2 }' | cut -d@ -f1)
  ip link del "$BRIDGE" 2>/dev/null || true
  for id in $veths; do ip link del "$id" 2>/dev/null || true; done

  # The cgroups, in every hierarchy (their processes are gone; removal may lag a little).
  for ((i = 0; i < 30; i++)); do
    left=
    for cg in $(cgroup_mounts); do
      [ -d "$cg/$CGROUP_ROOT" ] || continue
      find "$cg/$CGROUP_ROOT" -depth -type d -exec rmdir {} + 2>/dev/null || true
      [ -d "$cg/$CGROUP_ROOT" ] && left=1
    done
    [ -z "$left" ] && break
    sleep 0.1
  done

  # Files outside our directories: the shims' sockets (named after our socket and the
  # container), the kubelet's log links, CNI's result cache for our network and for the
  # pods' loopback.
  for id in $ids; do
    rm -f "/run/containerd/s/$(printf '%s' "$SOCK/k8s.io/$id" | sha256sum | cut -d' ' -f1)" \
      "/var/lib/cni/results/cni-loopback-$id-lo"
  done
  for m in /var/log/containers/*.log; do
    [ -L "$m" ] && case $(readlink "$m") in "$VAR"/*) rm -f "$m" ;; esac
  done
  rm -f /var/lib/cni/results/"$CNI_NETWORK"-* 2>/dev/null || true
  if [ -f "$RUN/host-dirs" ]; then
    # The kubelet's device plugin socket has a fixed path: ours when we made the directory.
    grep -qx /var/lib/kubelet "$RUN/host-dirs" && rm -f /var/lib/kubelet/device-plugins/kubelet.sock
    while read -r m; do
      if [ -d "$m" ]; then find "$m" -depth -type d -empty -delete 2>/dev/null || true; fi
    done <"$RUN/host-dirs"
  fi

  # kube-proxy's tables (only ever ours: the lock says no other test cluster runs).
  local t
  for t in "${PROXY_TABLES[@]}"; do
    # shellcheck disable=SC2086
    if nft list table $t >/dev/null 2>&1; then nft delete table $t 2>/dev/null || true; fi
  done

  # The kernel settings the kubelet and kube-proxy changed.
  if [ -f "$RUN/sysctls" ]; then
    while read -r k v; do echo "$v" >"/proc/sys/$k" 2>/dev/null || true; done <"$RUN/sysctls"
  fi

  rm -rf --one-file-system "$RUN" "$VAR" 2>/dev/null || true
}

# What is left of a cluster, one item each; nothing when all is gone.
leftovers() {
  local pids p cg m
  pids=$(our_pids | sort -u)
  for p in $pids; do echo "process $p ($(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | cut -c1-80))"; done
  for m in $(our_mounts); do echo "mount $m"; done
  ip link show "$BRIDGE" >/dev/null 2>&1 && echo "link $BRIDGE"
  for m in "${PROXY_TABLES[@]}"; do
    # shellcheck disable=SC2086
    nft list table $m >/dev/null 2>&1 && echo "nftables table $m"
  done
  for cg in $(cgroup_mounts); do [ -d "$cg/$CGROUP_ROOT" ] && echo "cgroup $cg/$CGROUP_ROOT"; done
  for m in /var/lib/cni/results/"$CNI_NETWORK"-*; do [ -e "$m" ] && echo "file $m"; done
  for m in /var/log/containers/*.log; do
    [ -L "$m" ] && case $(readlink "$m") in "$VAR"/*) echo "link $m" ;; esac
  done
  [ -e "$RUN" ] && echo "directory $RUN"
  [ -e "$VAR" ] && echo "directory $VAR"
  true
}

cmd_stop() {
  local owner left
  mkdir -p "$(dirname "$LOCK")"
  exec {LOCKFD}>>"$LOCK"
  owner=$(cat "$RUN/owner" 2>/dev/null || true)
  if ! flock -n "$LOCKFD"; then
    # A cluster runs: ours, or another checkout's (left alone).
    if [ -n "$owner" ] && [ "$owner" != "$REPO" ]; then
      log "the running cluster is another checkout's ($owner): nothing of this checkout's to stop"
      return 0
    fi
  fi
  [ -e "$RUN" ] || [ -e "$VAR" ] || ip link show "$BRIDGE" >/dev/null 2>&1 || [ -n "$(our_pids)" ] || return 0
  local t0
  t0=$(now)
  stop_cluster
  # The lock is free once the last process of the cluster has gone.
  flock -w 5 "$LOCKFD" || echo "lock $LOCK still held" >"$RUN.lock-left"
  left=$(leftovers; cat "$RUN.lock-left" 2>/dev/null; rm -f "$RUN.lock-left")
  [ -z "$left" ] || die "stop left: $(echo "$left" | paste -sd';' | sed 's/;/; /g')."
  log "stopped in $(since "$t0") s"
}

cmd_kubeconfig() { echo "$KUBECONFIG_PATH"; }

# The build context of the `kubernetes` image (images/kubernetes.toml): the binaries (hard
# links), images.py, the scripts of images/kubernetes/, and the versions kubeadm names
# its images by.
CONTEXT=$D/context
cmd_context() {
  cmd_build
  local b tmp images kv etcd coredns pause
  local all=(kubeadm kubelet kubectl kube-apiserver kube-controller-manager kube-scheduler kube-proxy
             etcd etcdctl etcdutl coredns pause)
  tmp=$D/.context.tmp
  rm -rf "$tmp"
  mkdir -p "$tmp/bin"
  for b in "${all[@]}"; do
    [ -x "$BIN/$b" ] || die "$BIN/$b is missing after the build."
    ln "$BIN/$b" "$tmp/bin/$b" 2>/dev/null || cp "$BIN/$b" "$tmp/bin/$b"
  done
  cp tests/kube/images.py "$tmp/images.py"
  for b in sandlab-cluster sandlab-registry runc-userns; do
    install -m 0755 "images/kubernetes/$b" "$tmp/$b"
  done
  # The NetworkPolicy agent, static like the sandbox agent (scripts/build-agent.sh).
  local netpol=target/x86_64-unknown-linux-gnu/release/sandlab-netpol
  [ -x "$netpol" ] || die "$netpol is missing: run scripts/build-agent.sh first."
  install -m 0755 "$netpol" "$tmp/sandlab-netpol"
  # kubeadm's own list, e.g. registry.k8s.io/etcd:3.6.5-0; our etcd and CoreDNS are the
  # versions built here, and their tags say so (kubeadm is told them).
  images=$("$BIN/kubeadm" config images list --kubernetes-version "$(mod_version tests/kube/k8s/go.mod k8s.io/kubernetes)" 2>/dev/null) \
    || die "kubeadm config images list failed."
  kv=$(sed -n 's|^registry.k8s.io/kube-apiserver:||p' <<<"$images")
  pause=$(sed -n 's|^registry.k8s.io/pause:||p' <<<"$images")
  etcd=$(mod_version tests/kube/etcd/go.mod go.etcd.io/etcd/server/v3)
  coredns=$(mod_version tests/kube/k8s/go.mod github.com/coredns/coredns)
  [ -n "$kv" ] && [ -n "$pause" ] || die "cannot read the versions from kubeadm's image list: $images"
  printf 'KUBE_VERSION=%s\nETCD_TAG=%s-0\nCOREDNS_TAG=%s\nPAUSE_TAG=%s\n' "$kv" "${etcd#v}" "$coredns" "$pause" >"$tmp/versions"
  rm -rf "$CONTEXT"
  mv "$tmp" "$CONTEXT"
  echo "$CONTEXT"
}

main() {
  case "${1:-}" in
    build) cmd_build ;;
    images) cmd_images ;;
    start) cmd_start ;;
    stop) cmd_stop ;;
    kubeconfig) cmd_kubeconfig ;;
    context) cmd_context ;;
    *) die "usage: scripts/kube.sh build|images|start|stop|kubeconfig|context" ;;
  esac
}
main "$@"; exit $?  # (one line: bash has read the whole file before it runs main)
