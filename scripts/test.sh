#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run calls this). Run as root on Debian 12.
# Installs missing packages first (so a missing install step fails here, not for users).
set -euo pipefail
self=$(readlink -f "$0")
cd "$(dirname "$self")/.."
if [ "$(id -u)" != 0 ]; then
  # The tests make namespaces, cgroups and nftables rules from the host's side.
  command -v sudo >/dev/null 2>&1 && exec sudo --preserve-env=PATH,CI "$self" "$@"
  echo "test.sh must run as root, and this machine has no sudo" >&2
  exit 1
fi
start=$(date +%s)
# Each phase says when it began (seconds since the start), so a slow CI run shows where.
phase() { echo "==> [$(( $(date +%s) - start ))s] $*"; }
# summary LABEL LOG: the passed and failed counts of every `test result:` line in LOG.
summary() {
  grep -E "^test result:" "$2" | awk -v l="$1" '{p+=$4; f+=$6} END {print l ": " p " passed, " f " failed"}'
}
export CARGO_TERM_COLOR=never
# CI builds once: incremental caches would only take disk (a run failed with ENOSPC).
export CARGO_INCREMENTAL=0

scripts/setup.sh --deps
# A toolchain set-up installed with rustup lives in ~/.cargo.
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"

# Two cores do all of this, so what runs beside what is chosen by what each needs first.
# The Kubernetes test cluster's components (etcd, the control plane, kubelet, kube-proxy,
# kubectl, CoreDNS; nothing when .data/kube/bin is current) compile from the Go
# module proxy in the background at the lowest CPU and I/O priority, on what the other
# phases leave idle, and only the last phase needs them. (Built beside the Rust code at
# the same priority, both took 1411 s where one after the other they take 940 s.)
# Background jobs run under `setsid` in a session of their own, so the exit trap can kill
# each whole (`kill -- -PID`: a job's pid is its session's id only when `setsid` is the
# command `&` runs). A session is also a scheduling autogroup of its own (when the kernel
# has them), whose share of the CPU is set by the autogroup's nice value, not by its
# processes': `$at_nice` sets both.
# shellcheck disable=SC2016
at_nice='echo "$0" >/proc/self/autogroup 2>/dev/null || true; exec nice -n "$0" "$@"'
mkdir -p .data
setsid -w bash -c "$at_nice" 19 ionice -c 3 bash scripts/kube.sh build >.data/kube-build.log 2>&1 &
kube_build=$!
images=
images2=
fuzz_build=
cleanup() {
  kill -- -"$kube_build" 2>/dev/null || true
  [ -z "$images" ] || kill -- -"$images" 2>/dev/null || true
  [ -z "$images2" ] || kill -- -"$images2" 2>/dev/null || true
  [ -z "$fuzz_build" ] || kill -- -"$fuzz_build" 2>/dev/null || true
  scripts/postgres.sh stop || true
  scripts/kube.sh stop || true
}
trap cleanup EXIT

phase "web UI: npm packages, type check, unit tests, build (embedded by cargo below)"
scripts/build-web.sh --check

phase "format"
cargo fmt --all -- --check

phase "building the static agent and the debug binaries"
scripts/build-agent.sh >/dev/null
cargo build --workspace --quiet
SANDLAB=target/debug/sandlab

# Integration tests share one data dir with the debian and machine images and the code
# execution language images, built from their recipes (images/, languages/) when missing
# or stale. They build in the background while the lints, the tests and the book
# compile; they need the CPU and the disk as well as the network, so this hides part of
# their time, not all (alone, one after another: 546 s; beside the compile, twice that).
export SANDLAB_TEST_DATA_DIR="${SANDLAB_TEST_DATA_DIR:-$PWD/.data/test}"
mkdir -p "$SANDLAB_TEST_DATA_DIR"
# Two builders side by side, about half of the work each (mmdebstrap is mostly one
# process at a time, and waits on the disk); after both, `--languages all` builds what a
# new language added and checks that every one is up to date.
phase "the test images and the language images, in the background (.data/images*.log)"
# shellcheck disable=SC2016
build_images='set -e; s=$1 d=$2; shift 2; for i in "$@"; do "$s" --data-dir "$d" image build "$i"; done'
setsid -w bash -c "$build_images" images "$SANDLAB" "$SANDLAB_TEST_DATA_DIR" \
  debian machine lang-script lang-c lang-node lang-mono >.data/images.log 2>&1 &
images=$!
setsid -w bash -c "$build_images" images "$SANDLAB" "$SANDLAB_TEST_DATA_DIR" \
  lang-native lang-jvm lang-haskell lang-octave >.data/images-2.log 2>&1 &
images2=$!

phase "lints (clippy)"
cargo clippy --workspace --all-targets --quiet -- -D warnings

phase "compiling the tests"
cargo test --workspace --quiet --no-run

phase "documentation book (mdBook) with a check for broken links"
scripts/docs.sh

# The fuzz targets (a release build with coverage instrumentation of its own) compile in
# the background from here, below the tests' priority and above the Go build's.
setsid -w bash -c "$at_nice" 10 bash scripts/fuzz.sh --build-only >.data/fuzz-build.log 2>&1 &
fuzz_build=$!

phase "waiting for the images"
for job in "$images" "$images2"; do
  if ! wait "$job"; then
    tail -n 30 .data/images.log .data/images-2.log >&2
    echo "the images did not build (the ends of .data/images.log and images-2.log above)" >&2
    exit 1
  fi
done
grep -hE "^built " .data/images.log .data/images-2.log || true
$SANDLAB --data-dir "$SANDLAB_TEST_DATA_DIR" image build --languages all >.data/images-all.log 2>&1 \
  || { tail -n 30 .data/images-all.log >&2; echo "the language images did not build" >&2; exit 1; }
grep -E "^built " .data/images-all.log || true

phase "a private PostgreSQL server for the store's conformance tests (scripts/postgres.sh)"
# Stopped on every exit, a failure included (cleanup): no server is left running.
SANDLAB_TEST_POSTGRES_URL=$(scripts/postgres.sh start)
export SANDLAB_TEST_POSTGRES_URL

phase "cargo test (unit, integration, isolation attacks, API end to end; the Kubernetes driver's last)"
status=0
cargo test --workspace --quiet --no-fail-fast -- --test-threads=2 --skip on_the_test_cluster:: \
  --skip cluster_playground:: 2>&1 \
  | tee .data/test.log || status=1
summary summary .data/test.log

# The runtime matrix: the run above used the default runtime (native, in-process, for
# standard sandboxes); every isolation, attack and leak test runs again on runc.
phase "the isolation, attack and leak tests again on runc (SANDLAB_RUNTIME=runc)"
SANDLAB_RUNTIME=runc cargo test -p sandlab --quiet --no-fail-fast \
  --test isolation --test runtime_cves --test fork_bomb --test syscall_abi --test egress \
  --test own_ids --test host_budgets --test lifecycle --test views --test execute_hostile \
  -- --test-threads=2 2>&1 | tee .data/test-runc.log || status=1
summary "summary on runc" .data/test-runc.log

phase "fuzzing: every target for a fixed number of runs from fuzz/corpus (scripts/fuzz.sh)"
if ! wait "$fuzz_build"; then
  tail -n 60 .data/fuzz-build.log >&2
  echo "the fuzz targets did not build (the end of .data/fuzz-build.log above)" >&2
  status=1
fi
fuzz_build=
scripts/fuzz.sh || status=1

phase "the real Piston and Judge0 clients (npm piston-client, PyPI judge0) against a live sandlab serve"
SANDLAB="$SANDLAB" scripts/compat.sh || status=1

phase "schemathesis against a live sandlab serve (no 5xx, answers match the OpenAPI document)"
SANDLAB="$SANDLAB" scripts/schemathesis.sh || status=1

phase "browser tests of the web UI (headless Chromium against a live sandlab serve)"
SANDLAB="$SANDLAB" scripts/e2e.sh || status=1

phase "waiting for the Kubernetes components; the kubernetes image (scripts/kube.sh context)"
if ! wait "$kube_build"; then
  cat .data/kube-build.log >&2
  echo "the Kubernetes components did not build (log above)" >&2
  exit 1
fi
grep -E "^kube.sh: built" .data/kube-build.log || true
kube_context=$(scripts/kube.sh context)
$SANDLAB --data-dir "$SANDLAB_TEST_DATA_DIR" image build kubernetes --context "$kube_context" \
  >.data/images-kubernetes.log 2>&1 \
  || { tail -n 30 .data/images-kubernetes.log >&2; echo "the kubernetes image did not build" >&2; exit 1; }
grep -E "^built " .data/images-kubernetes.log || true

phase "cluster playgrounds: a kubeadm cluster in machine sandboxes, attacked from a privileged Pod"
cargo test -p sandlab --quiet --no-fail-fast --test cluster -- --test-threads=1 2>&1 \
  | tee .data/test-cluster.log || status=1
summary "summary of the cluster playgrounds" .data/test-cluster.log

phase "sandlab lab test labs (every demo lab, the cluster labs too: init, then each check fails, solve, passes)"
$SANDLAB --data-dir "$SANDLAB_TEST_DATA_DIR" lab test labs || status=1

phase "the Kubernetes driver's tests on a one-node cluster (scripts/kube.sh)"
scripts/kube.sh images
# Stopped on every exit (cleanup), with everything it made on this host.
SANDLAB_TEST_KUBECONFIG=$(scripts/kube.sh start)
export SANDLAB_TEST_KUBECONFIG
tests/kube/smoke.sh "$SANDLAB_TEST_KUBECONFIG" || status=1
cargo test -p sandlab --quiet --no-fail-fast --test kubernetes -- --test-threads=2 2>&1 \
  | tee .data/test-kube.log || status=1
summary "summary on the cluster" .data/test-kube.log
scripts/kube.sh stop

echo "==> done in $(( $(date +%s) - start ))s"
exit "$status"
