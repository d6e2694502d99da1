# shellcheck shell=bash
# The one way the script tests start a live `sandlab serve` and sign in to it, sourced by
# scripts/schemathesis.sh and scripts/e2e.sh. Needs $SANDLAB (the binary) and $DATA (the
# data dir). Extra server settings go in front of the call as environment variables:
#   SANDLAB_LOGIN_RATE=1000 serve_start "$log" --labs labs
#   serve_wait_ready "$log" 600
#   csrf=$(serve_login "$user" "$password" "$jar")

# A free loopback port.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# serve_start LOG ARGS...: starts the server on a free port in the background, its output
# in LOG; sets $port, $base (its URL, also its public URL) and $server (its pid).
serve_start() {
  local log=$1
  shift
  port=$(free_port)
  base="http://127.0.0.1:$port"
  SANDLAB_PROXY_LISTEN="${SANDLAB_PROXY_LISTEN:-127.0.0.1:0}" SANDLAB_PUBLIC_URL="$base" "$SANDLAB" --data-dir "$DATA" serve --listen "127.0.0.1:$port" "$@" \
    >"$log" 2>&1 &
  server=$!
}

# serve_wait_ready LOG TRIES: polls /readyz every 0.1 s, at most TRIES times; on failure
# prints the log's end and exits the script.
serve_wait_ready() {
  local log=$1 tries=$2
  for _ in $(seq 1 "$tries"); do
    curl -fsS "$base/readyz" >/dev/null 2>&1 && return 0
    kill -0 "$server" 2>/dev/null || { tail -n 50 "$log"; echo "the server exited" >&2; exit 1; }
    sleep 0.1
  done
  tail -n 50 "$log"
  echo "the server never became ready" >&2
  exit 1
}

# serve_login USER PASSWORD JAR: signs in with a session cookie kept in JAR; prints the
# session's CSRF token (empty when the login failed).
serve_login() {
  curl -fsS -c "$3" -H 'content-type: application/json' \
    -d "{\"username\":\"$1\",\"password\":\"$2\"}" "$base/api/v1/auth/login" 2>/dev/null \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["csrf_token"])' 2>/dev/null
}
