#!/usr/bin/env bash
# End-to-end tests of the web UI in headless Chromium (Debian's `chromium`, driven by
# playwright-core from web/node_modules) against a live `sandlab serve` that serves the UI
# embedded in the binary (web/dist at build time, so build the UI before `cargo build`).
# Run by scripts/test.sh after the Rust tests; needs root, the debug build and the debian
# image in $SANDLAB_TEST_DATA_DIR. Screenshots, the server log and a JUnit report are kept
# under test-output/e2e/.
#   scripts/e2e.sh                    every test file in web/e2e/
#   scripts/e2e.sh web/e2e/lab.test.mjs   only some
set -euo pipefail
cd "$(dirname "$0")/.."
DATA="${SANDLAB_TEST_DATA_DIR:-$PWD/.data/test}"
SANDLAB="${SANDLAB:-target/debug/sandlab}"
OUT="$PWD/test-output/e2e"
CHROMIUM=/usr/bin/chromium
# shellcheck source=lib/serve.sh
. scripts/lib/serve.sh

[ -x "$SANDLAB" ] || { echo "e2e: $SANDLAB is missing: run cargo build first" >&2; exit 1; }
command -v node >/dev/null || { echo "e2e: node (>= 20) is missing: install nodejs" >&2; exit 1; }
node_major=$(node -p 'process.versions.node.split(".")[0]')
[ "$node_major" -ge 20 ] || { echo "e2e: node $(node --version) is too old; the tests need node >= 20" >&2; exit 1; }
if [ ! -x "$CHROMIUM" ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "==> installing chromium (Debian) for the browser tests"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
  else
    echo "e2e: $CHROMIUM is missing: apt-get install chromium" >&2
    exit 1
  fi
fi
if [ ! -d web/node_modules/playwright-core ]; then
  echo "==> npm ci (web/)"
  (cd web && npm ci --no-audit --no-fund --loglevel=error </dev/null)
fi

rm -rf "$OUT"
mkdir -p "$OUT/screenshots" "$DATA"
log="$OUT/server.log"

suffix="$RANDOM$RANDOM"
declare -A password
users=("e2e-learner-$suffix" "e2e-other-$suffix" "e2e-admin-$suffix")
roles=(learner learner admin)
ids=()

# Do not serve a UI from disk: the test is of what ships in the binary.
unset SANDLAB_WEB_DIR
# Single sign-on through a real OpenID provider (tests/oidc/provider.mjs, oidc-provider):
# web/e2e/oidc.test.mjs signs in through its pages. Its port is chosen first, for the
# server's config; it starts once the server's URL (its redirect URI) is known.
if [ ! -d tests/oidc/node_modules/oidc-provider ]; then
  echo "==> npm ci (tests/oidc/)"
  (cd tests/oidc && npm ci --no-audit --no-fund --loglevel=error </dev/null)
fi
oidc_port=$(free_port)
printf '[[auth.oidc]]\nname = "e2e"\ntitle = "Sign in with the test provider"\nissuer = "http://127.0.0.1:%s"\nclient_id = "sandlab"\nclient_secret = "sandlab-test-secret"\n' \
  "$oidc_port" >"$OUT/sandlab.toml"
# Sign-up by invite link: web/e2e/accounts.test.mjs signs a learner up with one.
SANDLAB_SIGNUP=invite SANDLAB_LOGIN_RATE=1000 serve_start "$log" --config "$OUT/sandlab.toml" --labs "${SANDLAB_E2E_LABS:-labs}"
node tests/oidc/provider.mjs --port "$oidc_port" --redirect-uri "$base/api/v1/auth/oidc/e2e/callback" \
  >"$OUT/oidc-provider.log" 2>&1 </dev/null &
oidc=$!

cleanup() {
  local rc=$?
  set +e
  # End what the test users still run, through the API while the server is up.
  if kill -0 "$server" 2>/dev/null; then
    for u in "${users[@]}"; do
      [ -n "${password[$u]:-}" ] || continue
      jar=$(mktemp)
      csrf=$(serve_login "$u" "${password[$u]}" "$jar")
      if [ -n "$csrf" ]; then
        me=$(curl -fsS -b "$jar" "$base/api/v1/me" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
        for s in $(curl -fsS -b "$jar" "$base/api/v1/sessions" \
          | python3 -c 'import json,sys; [print(s["id"]) for s in json.load(sys.stdin)["items"] if s["owner"]==sys.argv[1] and s["state"]!="ended"]' "$me"); do
          curl -fsS -o /dev/null -X DELETE -b "$jar" -H "x-csrf-token: $csrf" "$base/api/v1/sessions/$s"
        done
        for s in $(curl -fsS -b "$jar" "$base/api/v1/sandboxes?limit=500" \
          | python3 -c 'import json,sys; [print(s["id"]) for s in json.load(sys.stdin)["items"] if s.get("owner")==sys.argv[1] and s["state"] in ("creating","running")]' "$me"); do
          curl -fsS -o /dev/null -X DELETE -b "$jar" -H "x-csrf-token: $csrf" "$base/api/v1/sandboxes/$s"
        done
      fi
      rm -f "$jar"
    done
  fi
  kill -TERM "$server" 2>/dev/null
  wait "$server" 2>/dev/null
  kill -TERM "$oidc" 2>/dev/null
  # Whatever is left of the test users' sandboxes (only theirs: the data dir is shared).
  if [ ${#ids[@]} -gt 0 ]; then
    "$SANDLAB" --data-dir "$DATA" sandbox inspect 2>/dev/null \
      | python3 -c 'import json,sys; own=set(sys.argv[1:]); [print(r["id"]) for r in json.load(sys.stdin) if r.get("owner") in own]' "${ids[@]}" \
      | xargs -r "$SANDLAB" --data-dir "$DATA" sandbox rm >/dev/null 2>&1
  fi
  # The accounts stay in the shared database (it keeps their history), but disabled.
  for u in "${users[@]}"; do
    [ -n "${password[$u]:-}" ] && "$SANDLAB" --data-dir "$DATA" user set "$u" --disable >/dev/null 2>&1
  done
  echo "e2e: screenshots and the server log are in ${OUT#"$PWD"/}/"
  exit "$rc"
}
trap cleanup EXIT
trap "exit 130" INT TERM

serve_wait_ready "$log" 600

# The binary must carry the UI, and the one in web/dist if there is one.
page=$(curl -fsS -H 'accept: text/html' "$base/labs") || { echo "e2e: GET /labs failed" >&2; exit 1; }
if ! grep -q '<script' <<<"$page"; then
  echo "e2e: $SANDLAB serves no web UI: build it (cd web && npm ci && node build.mjs), then cargo build" >&2
  exit 1
fi
if [ -f web/dist/index.html ] && [ "$page" != "$(cat web/dist/index.html)" ]; then
  echo "e2e: warning: the binary embeds another UI build than web/dist (run cargo build after node build.mjs)" >&2
fi

for i in "${!users[@]}"; do
  u=${users[$i]}
  password[$u]="pw-$RANDOM$RANDOM$RANDOM-e2e"
  line=$(echo "${password[$u]}" | "$SANDLAB" --data-dir "$DATA" user add "$u" --role "${roles[$i]}" --password-stdin)
  # "created NAME (ID) as ROLE"
  ids+=("$(sed -n 's/^created [^ ]* (\([^)]*\)).*/\1/p' <<<"$line")")
done

export SANDLAB_E2E_URL="$base"
export SANDLAB_E2E_OUT="$OUT"
export SANDLAB_E2E_CHROMIUM="$CHROMIUM"
export SANDLAB_E2E_LEARNER="${users[0]}" SANDLAB_E2E_LEARNER_PASSWORD="${password[${users[0]}]}"
export SANDLAB_E2E_OTHER="${users[1]}" SANDLAB_E2E_OTHER_PASSWORD="${password[${users[1]}]}"
export SANDLAB_E2E_ADMIN="${users[2]}" SANDLAB_E2E_ADMIN_PASSWORD="${password[${users[2]}]}"

files=("$@")
[ ${#files[@]} -gt 0 ] || files=(web/e2e/)
echo "==> browser tests against $base (server log: ${log#"$PWD"/})"
status=0
# Each test has its own timeout; this bounds the whole run should the browser hang.
timeout --kill-after=30 600 node --test --test-concurrency=1 \
  --test-reporter=spec --test-reporter-destination=stdout \
  --test-reporter=junit --test-reporter-destination="$OUT/junit.xml" \
  "${files[@]}" </dev/null || status=$?
if grep -q "panicked at" "$log"; then
  grep -B2 -A10 "panicked at" "$log" >&2
  echo "e2e: the server panicked during the tests (see ${log#"$PWD"/})" >&2
  status=1
fi
exit "$status"
