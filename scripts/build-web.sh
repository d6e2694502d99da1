#!/usr/bin/env bash
# Builds the web UI into web/dist (which `cargo build` then embeds in the sandlab binary).
# Installs the npm packages of web/package-lock.json first when they changed (npm ci);
# with --check also type-checks and runs the front end's unit tests.
set -euo pipefail
cd "$(dirname "$0")/../web"

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "node and npm are missing: run scripts/setup.sh (it installs them with apt)" >&2
  exit 1
fi
major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$major" -lt 18 ]; then
  echo "node $(node --version) is too old for the web UI's build: 18 or newer is needed" >&2
  exit 1
fi

stamp=node_modules/.sandlab-lock-sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "==> installing the web UI's npm packages (npm ci)"
  npm ci --no-audit --no-fund --loglevel=error
  echo "$want" >"$stamp"
fi

if [ "${1:-}" = "--check" ]; then
  npx --no-install tsc --noEmit -p .
  npm run --silent test:unit
fi
node build.mjs
