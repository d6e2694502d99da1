#!/usr/bin/env bash
# Builds the static sandlab-agent, and the static sandlab-netpol the `kubernetes` image
# holds (glibc linked with +crt-static; the toolchain has no musl target). The explicit
# --target keeps RUSTFLAGS away from build scripts and proc macros. Output:
# target/x86_64-unknown-linux-gnu/release/sandlab-agent and .../sandlab-netpol
set -euo pipefail

cd "$(dirname "$0")/.."
target=x86_64-unknown-linux-gnu
out="target/$target/release/sandlab-agent"

# Size matters for a binary copied into every sandbox: strip, one codegen unit, LTO.
# These only affect this invocation (the release profile in Cargo.toml is untouched).
CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUSTFLAGS='-C target-feature=+crt-static' \
CARGO_PROFILE_RELEASE_STRIP=symbols \
CARGO_PROFILE_RELEASE_DEBUG=false \
CARGO_PROFILE_RELEASE_LTO=true \
CARGO_PROFILE_RELEASE_CODEGEN_UNITS=1 \
    cargo build --release -p sandlab-agent -p sandlab-netpol --target "$target" "$@"

# A static executable has no program interpreter (PT_INTERP) and no dynamic deps.
for bin in "$out" "target/$target/release/sandlab-netpol"; do
    if readelf -l "$bin" | grep -q 'INTERP'; then
        echo "error: $bin has a program interpreter; it is not static" >&2
        exit 1
    fi
    if readelf -d "$bin" 2>/dev/null | grep -q 'NEEDED'; then
        echo "error: $bin needs shared libraries" >&2
        exit 1
    fi
done
file "$out" 2>/dev/null || true
echo "static agent: $out ($(stat -c %s "$out") bytes)"
