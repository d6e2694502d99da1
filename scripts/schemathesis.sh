#!/usr/bin/env bash
# Schemathesis against a live `sandlab serve`: every operation of the OpenAPI document is
# called with generated input, and every answer must be a non-5xx that conforms to the
# document. Run by scripts/test.sh after the Rust tests (needs the debug build, root and
# the debian image in $SANDLAB_TEST_DATA_DIR).
set -euo pipefail
cd "$(dirname "$0")/.."
DATA="${SANDLAB_TEST_DATA_DIR:-$PWD/.data/test}"
SANDLAB="${SANDLAB:-target/debug/sandlab}"
VENV=.data/venv
# shellcheck source=lib/serve.sh
. scripts/lib/serve.sh
ST_VERSION=4.32.5

if ! "$VENV/bin/st" --version 2>/dev/null | grep -q "$ST_VERSION"; then
  echo "==> installing schemathesis $ST_VERSION (PyPI) into $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$ST_VERSION"
fi

# A small catalogue of its own: sessions the generated requests start stay cheap.
labs=$(mktemp -d)
mkdir -p "$labs/st-lab"
cat >"$labs/st-lab/index.md" <<'LAB'
---
title: Schemathesis lab
playground:
  ttl: 5m
  nodes:
    - name: node01
    - name: node02
tasks:
  prepare:
    init: true
    run: mkdir -p /srv
  first:
    run: test -f /srv/first
    hint: Create `/srv/first`.
    solve: touch /srv/first
  second:
    needs: [first]
    machine: node02
    run: test -f /srv/second
    solve: touch /srv/second
---
A lab for the API tests.
LAB

log=.data/schemathesis-server.log
user="st-$RANDOM$RANDOM"
password="st-password-$RANDOM$RANDOM"
SANDLAB_MAX_SANDBOXES_PER_USER=3 SANDLAB_DEFAULT_TTL=2m serve_start "$log" --labs "$labs"
cleanup() {
  rm -rf "$labs"
  kill -TERM "$server" 2>/dev/null || true
  wait "$server" 2>/dev/null || true
  # Remove whatever the generated requests created.
  "$SANDLAB" --data-dir "$DATA" sandbox inspect 2>/dev/null \
    | python3 -c 'import json,sys; [print(r["id"]) for r in json.load(sys.stdin) if r.get("owner")==sys.argv[1]]' "$uid" \
    | xargs -r "$SANDLAB" --data-dir "$DATA" sandbox rm >/dev/null || true
}
uid=""
trap cleanup EXIT
serve_wait_ready "$log" 300

echo "$password" | "$SANDLAB" --data-dir "$DATA" user add "$user" --role admin --password-stdin >/dev/null
jar=$(mktemp)
csrf=$(serve_login "$user" "$password" "$jar")
[ -n "$csrf" ] || { echo "cannot sign in as $user" >&2; exit 1; }
token=$(curl -fsS -b "$jar" -H "x-csrf-token: $csrf" -H 'content-type: application/json' \
  -d '{"name":"schemathesis"}' "$base/api/v1/tokens" \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
uid=$(curl -fsS -H "authorization: Bearer $token" "$base/api/v1/me" \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
rm -f "$jar"

# The terminal is a WebSocket (101), and logout would end nothing the token needs; both
# are covered by the Rust tests.
"$VENV/bin/st" run "$base/api/v1/openapi.json" \
  --checks not_a_server_error,response_schema_conformance \
  --header "Authorization: Bearer $token" \
  --exclude-path /api/v1/sandboxes/{id}/terminal \
  --max-examples "${ST_MAX_EXAMPLES:-25}" \
  --workers 2 \
  --request-timeout 30 \
  --no-color
