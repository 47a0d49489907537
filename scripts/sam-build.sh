#!/usr/bin/env bash
# Builds every function for Lambda (provided.al2023, arm64) with `sam build` on any x86_64 or arm64
# machine: cargo-lambda and zig (its cross-linker) come from PyPI, the Rust target from rustup.
# Needs: the Rust toolchain, Python 3, and the SAM CLI (at least 1.100; `pip install aws-sam-cli`).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo-lambda >/dev/null || ! python3 -c "import ziglang" 2>/dev/null; then
  echo "== installing cargo-lambda and ziglang from PyPI"
  python3 -m pip install --quiet --disable-pip-version-check "cargo-lambda>=1.6,<2" "ziglang>=0.13,<0.15"
fi
rustup target add aarch64-unknown-linux-gnu >/dev/null
if ! command -v sam >/dev/null; then
  echo "== installing the SAM CLI from PyPI"
  python3 -m pip install --quiet --disable-pip-version-check "aws-sam-cli>=1.100"
fi
sam --version
# rust-cargolambda is a beta build method (also set in samconfig.toml).
sam build --beta-features "$@"
