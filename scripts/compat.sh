#!/usr/bin/env bash
# The code execution APIs other products defined, driven by those products' own client
# libraries, unchanged from their registries, against a live `sandlab serve`:
#   - Piston v2 (/api/v2/runtimes, /api/v2/execute, the /api/v2/connect WebSocket) with
#     npm's `piston-client` (and `ws`): tests/compat/piston/, on a server with anonymous
#     execution on, since piston-client sends no credentials;
#   - Judge0 CE 1.13.1 (/submissions, /submissions/batch, /languages, ...) with PyPI's
#     `judge0`: tests/compat/judge0/, on a server that needs a token (X-Auth-Token).
# The two servers run one after the other on free loopback ports, on the shared test data
# dir (its image store holds the language images; its database is the data dir's, so each
# run adds one disabled user). Needs root, the debug build, node >= 20 with npm, python3,
# and the images debian, lang-c and lang-jvm in $SANDLAB_TEST_DATA_DIR. Server logs and
# the test reports are kept under test-output/compat/.
#   scripts/compat.sh
set -euo pipefail
cd "$(dirname "$0")/.."
DATA="${SANDLAB_TEST_DATA_DIR:-$PWD/.data/test}"
SANDLAB="${SANDLAB:-target/debug/sandlab}"
OUT="$PWD/test-output/compat"
VENV=tests/compat/.venv
IMAGES=(debian lang-c lang-jvm)
# Each runner's whole run is bounded, should a client hang on the server.
RUN_TIMEOUT="${COMPAT_TIMEOUT:-900}"
# shellcheck source=lib/serve.sh
. scripts/lib/serve.sh

say() { echo "compat: $*" >&2; }

[ "$(id -u)" = 0 ] || { say "run as root (the server starts sandboxes)"; exit 1; }
[ -x "$SANDLAB" ] || { say "$SANDLAB is missing: run cargo build -p sandlab first"; exit 1; }
command -v node >/dev/null && command -v npm >/dev/null || { say "node (>= 20) and npm are missing"; exit 1; }
node_major=$(node -p 'process.versions.node.split(".")[0]')
[ "$node_major" -ge 20 ] || { say "node $(node --version) is too old; the tests need node >= 20"; exit 1; }
command -v python3 >/dev/null || { say "python3 is missing"; exit 1; }

# The language images: Python runs in debian, C++ in lang-c, Java in lang-jvm.
have=$("$SANDLAB" --data-dir "$DATA" image ls | awk 'NR > 1 { print $1 }')
missing=()
for image in "${IMAGES[@]}"; do
  grep -qx "$image" <<<"$have" || missing+=("$image")
done
if [ ${#missing[@]} -gt 0 ]; then
  say "the image(s) ${missing[*]} are not in $DATA; build them with:"
  say "  $SANDLAB --data-dir $DATA image build --languages python,c++,java"
  exit 1
fi

rm -rf "$OUT"
mkdir -p "$OUT"

echo "==> npm ci (tests/compat/piston: piston-client, ws)"
(cd tests/compat/piston && npm ci --no-audit --no-fund --loglevel=error </dev/null >"$OUT/npm.log" 2>&1) \
  || { cat "$OUT/npm.log" >&2; say "npm ci failed"; exit 1; }
echo "==> pip install (tests/compat/judge0/requirements.txt, pytest) into $VENV"
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/pip" install --quiet --disable-pip-version-check -r tests/compat/judge0/requirements.txt pytest \
  </dev/null >"$OUT/pip.log" 2>&1 || { cat "$OUT/pip.log" >&2; say "pip install failed"; exit 1; }

# An empty catalogue: the servers only run code.
labs=$(mktemp -d)
server=""
log=""
user="compat-$RANDOM$RANDOM"
password="pw-$RANDOM$RANDOM$RANDOM-compat"
user_made=0
failed=0

stop_server() {
  [ -n "$server" ] || return 0
  kill -TERM "$server" 2>/dev/null || true
  wait "$server" 2>/dev/null || true
  if grep -q "panicked at" "$log"; then
    grep -B2 -A10 "panicked at" "$log" >&2
    say "the server panicked (log: ${log#"$PWD"/})"
    failed=1
  fi
  server=""
}

cleanup() {
  local rc=$?
  set +e
  stop_server
  rm -rf "$labs"
  # The account stays in the shared database (it keeps its submissions until they
  # expire), but disabled, and with it its token.
  [ "$user_made" = 1 ] && "$SANDLAB" --data-dir "$DATA" user set "$user" --disable >/dev/null 2>&1
  if [ "$rc" != 0 ]; then
    for f in "$OUT"/piston-server.log "$OUT"/judge0-server.log; do
      [ -f "$f" ] || continue
      echo "---- the end of ${f#"$PWD"/}" >&2
      tail -n 60 "$f" >&2
    done
  fi
  exit "$rc"
}
trap cleanup EXIT
trap "exit 130" INT TERM

# Counts from a node:test TAP report and a pytest JUnit report: "PASSED FAILED SKIPPED"
# (pytest counts an expected failure, xfail, as skipped).
tap_counts() {
  [ -s "$1" ] || { echo "- - -"; return; }
  awk '/^# pass /{p=$3} /^# fail /{f=$3} /^# cancelled /{c=$3} /^# skipped /{s=$3} /^# todo /{t=$3} END {print p+0, f+c+0, s+t+0}' "$1"
}
junit_counts() {
  [ -s "$1" ] || { echo "- - -"; return; }
  python3 - "$1" <<'PY'
import sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
n = lambda k: sum(int(s.get(k, 0)) for s in suites)
bad = n("failures") + n("errors")
print(n("tests") - bad - n("skipped"), bad, n("skipped"))
PY
}

# ----- Piston: anonymous execution on
log="$OUT/piston-server.log"
SANDLAB_EXECUTE_ANONYMOUS=true serve_start "$log" --labs "$labs"
serve_wait_ready "$log" 600
echo "==> piston-client against $base (server log: ${log#"$PWD"/})"
piston_status=0
SANDLAB_URL="$base" timeout --kill-after=30 "$RUN_TIMEOUT" node --test --test-concurrency=1 \
  --test-reporter=spec --test-reporter-destination=stdout \
  --test-reporter=tap --test-reporter-destination="$OUT/piston.tap" \
  tests/compat/piston/ </dev/null || piston_status=$?
stop_server

# ----- Judge0: a token needed
log="$OUT/judge0-server.log"
SANDLAB_EXECUTE_ANONYMOUS=false serve_start "$log" --labs "$labs"
serve_wait_ready "$log" 600
echo "$password" | "$SANDLAB" --data-dir "$DATA" user add "$user" --role learner --password-stdin >/dev/null
user_made=1
jar="$OUT/cookies"
csrf=$(serve_login "$user" "$password" "$jar")
[ -n "$csrf" ] || { say "cannot sign in as $user"; exit 1; }
token=$(curl -fsS -b "$jar" -H "x-csrf-token: $csrf" -H 'content-type: application/json' \
  -d '{"name":"compat"}' "$base/api/v1/tokens" \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
rm -f "$jar"
echo "==> judge0 (PyPI) against $base as $user (server log: ${log#"$PWD"/})"
judge0_status=0
SANDLAB_URL="$base" SANDLAB_TOKEN="$token" timeout --kill-after=30 "$RUN_TIMEOUT" \
  "$VENV/bin/python" -m pytest -q -p no:cacheprovider --junitxml="$OUT/judge0.xml" \
  tests/compat/judge0 </dev/null || judge0_status=$?
stop_server

read -r p_pass p_fail p_skip < <(tap_counts "$OUT/piston.tap")
read -r j_pass j_fail j_skip < <(junit_counts "$OUT/judge0.xml")
echo
for row in "piston-client $p_pass $p_fail $p_skip $piston_status" "judge0 $j_pass $j_fail $j_skip $judge0_status"; do
  read -r name pass fail skip status <<<"$row"
  if [ "$pass" = - ]; then
    echo "$name: no results (the runner exited with $status)"
    failed=1
    continue
  fi
  line="$name: $pass passed"
  [ "$fail" = 0 ] || line="$line, $fail failed"
  [ "$skip" = 0 ] || line="$line, $skip skipped or expected to fail (known incompatibilities)"
  [ "$status" = 0 ] || { [ "$fail" != 0 ] || line="$line (the runner exited with $status)"; failed=1; }
  [ "$fail" = 0 ] || failed=1
  echo "$line"
done
exit "$failed"
