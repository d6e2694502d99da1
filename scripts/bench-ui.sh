#!/usr/bin/env bash
# Browser benchmarks, each side by side with the same work through the API alone:
# - task latency (SPEC section 9: a task turns done in the browser <= 1.5 s after its
#   condition holds): BENCH_TASKS (default 10) independent tasks on the default 1 s check
#   interval, each made true through the exec API while a plain SSE client (the baseline)
#   and the lab page in Chromium watch;
# - lab start: BENCH_STARTS (default 5) times "Start lab" → shell prompt in the page,
#   against POST session → `ready` on the event stream.
# The reports are printed and kept in test-output/e2e/bench.txt.
# Needs what scripts/e2e.sh needs (root, the debug build with the UI, the debian image).
set -euo pipefail
cd "$(dirname "$0")/.."
n="${BENCH_TASKS:-10}"
labs=$(mktemp -d)
trap 'rm -rf "$labs"' EXIT
mkdir -p "$labs/bench-task-latency"
{
  printf -- '---\ntitle: Task latency benchmark\nplayground:\n  ttl: 10m\n  nodes:\n    - name: node01\ntasks:\n'
  for k in $(seq 1 "$n"); do
    printf '  t%s:\n    run: test -f /tmp/bench/t%s\n' "$k" "$k"
  done
  printf -- '---\nEach task is done when its file exists.\n'
} >"$labs/bench-task-latency/index.md"
BENCH_TASKS="$n" SANDLAB_E2E_LABS="$labs" scripts/e2e.sh \
  web/bench/task-latency.bench.mjs web/bench/lab-start.bench.mjs
