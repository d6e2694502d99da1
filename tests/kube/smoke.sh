#!/usr/bin/env bash
# A smoke test of the test cluster (scripts/kube.sh), as the Kubernetes driver's tests use
# it: pods from the imported images get an address on the pod network that the host and
# the other pods reach, Services resolve and forward, the agent image's init container
# runs, kubectl logs and exec work.
#   tests/kube/smoke.sh [KUBECONFIG]   (default: the cluster's admin kubeconfig)
# The cluster must run, with its images imported (scripts/kube.sh start, then images).
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")/../.."
K=${1:-$(bash scripts/kube.sh kubeconfig)}
cache=$(mktemp -d)
kc() { .data/kube/bin/kubectl --kubeconfig "$K" --cache-dir "$cache" "$@"; }
fail() { echo "smoke: FAILED: $*" >&2; exit 1; }
ns=smoke-$$
t0=$(date +%s.%N)

kc create namespace "$ns" >/dev/null
# The pods go at once; the namespace controller then removes the rest.
trap 'kc -n "$ns" delete pods --all --grace-period=0 --force --wait=false >/dev/null 2>&1 || true
      kc delete namespace "$ns" --wait=false >/dev/null 2>&1 || true; rm -rf "$cache"' EXIT

kc -n "$ns" apply -f - >/dev/null <<'EOF'
apiVersion: v1
kind: Pod
metadata: { name: web, labels: { app: web } }
spec:
  securityContext:
    sysctls: [{ name: net.ipv4.ping_group_range, value: "0 2147483647" }]
  containers:
  - name: web
    image: sandlab-test/busybox:1
    imagePullPolicy: Never
    command: [sh, -c, 'echo hello-from-web >/tmp/index.html; exec httpd -f -p 8080 -h /tmp']
---
apiVersion: v1
kind: Pod
metadata: { name: agent }
spec:
  volumes: [{ name: agent, emptyDir: { sizeLimit: 64Mi } }]
  initContainers:
  - name: version
    image: sandlab-test/agent:1
    imagePullPolicy: Never
    command: [/sandlab-agent, --version]
  - name: copy
    image: sandlab-test/agent:1
    imagePullPolicy: Never
    command: [/sandlab-agent, --copy-to, /agent/agent]
    volumeMounts: [{ name: agent, mountPath: /agent }]
  containers:
  - name: main
    image: sandlab-test/busybox:1
    imagePullPolicy: Never
    command: [sh, -c, '/agent/agent --version; exec sleep 3600']
    volumeMounts: [{ name: agent, mountPath: /agent }]
EOF
kc -n "$ns" wait --for=condition=Ready pod/web pod/agent --timeout=60s >/dev/null || {
  kc -n "$ns" describe pods >&2; fail "the pods did not become Ready"; }
ip=$(kc -n "$ns" get pod web -o 'jsonpath={.status.podIP}')
case $ip in 10.244.77.*) ;; *) fail "the pod's IP '$ip' is not on 10.244.77.0/24" ;; esac
echo "smoke: pods Ready in $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s; web at $ip"

# From the host to the pod.
[ "$(curl -fsS --max-time 5 "http://$ip:8080/")" = hello-from-web ] || fail "the host cannot reach http://$ip:8080/"
echo "smoke: host -> pod $ip:8080 ok"

# From another pod to the first (a pod that runs to completion; then its logs).
kc -n "$ns" run client --image=sandlab-test/busybox:1 --image-pull-policy=Never --restart=Never \
  --command -- wget -qO- "http://$ip:8080/" >/dev/null
kc -n "$ns" wait --for=jsonpath='{.status.phase}'=Succeeded pod/client --timeout=60s >/dev/null ||
  fail "the client pod did not reach $ip:8080 ($(kc -n "$ns" logs client 2>&1 | tail -n 1))"
[ "$(kc -n "$ns" logs client)" = hello-from-web ] || fail "the client pod got something else from $ip:8080"
echo "smoke: pod -> pod $ip:8080 ok"

# A Service, by its name: CoreDNS answers `web` (the namespace is a search domain) with
# the ClusterIP, and kube-proxy forwards port 80 to the pod's 8080.
kc -n "$ns" expose pod web --port 80 --target-port 8080 >/dev/null
kc -n "$ns" run by-name --image=sandlab-test/busybox:1 --image-pull-policy=Never --restart=Never \
  --command -- wget -qO- http://web/ >/dev/null
kc -n "$ns" wait --for=jsonpath='{.status.phase}'=Succeeded pod/by-name --timeout=60s >/dev/null ||
  fail "a pod did not reach the Service web by name ($(kc -n "$ns" logs by-name 2>&1 | tail -n 1))"
[ "$(kc -n "$ns" logs by-name)" = hello-from-web ] || fail "the Service web answered something else"
echo "smoke: pod -> Service web by name (CoreDNS, kube-proxy) ok"

# The agent: its version from the init container and from the copy in the emptyDir.
v1=$(kc -n "$ns" logs agent -c version)
v2=$(kc -n "$ns" logs agent -c main)
if [ -z "$v1" ] || [ "$v1" != "$v2" ]; then fail "the agent's --version printed '$v1' (init) and '$v2' (copy)"; fi
echo "smoke: agent init container ok: $v1"

# exec (the API server -> kubelet -> containerd streaming path).
[ "$(kc -n "$ns" exec web -- cat /proc/sys/net/ipv4/ping_group_range | tr -s ' \t' ' ')" = "0 2147483647" ] ||
  fail "kubectl exec, or the pod's ping_group_range sysctl, does not work"
echo "smoke: exec and the ping_group_range sysctl ok"
echo "smoke: all ok in $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s"
