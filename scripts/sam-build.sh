#!/usr/bin/env bash
# Builds every function for Lambda (provided.al2023, arm64) with `sam build` on any x86_64 or arm64
# machine: cargo-lambda and zig (its cross-linker) come from PyPI, the Rust target from rustup.
# Needs: the Rust toolchain and Python 3; uses the SAM CLI on the PATH (at least 1.100) or installs
# one into a virtual environment under ~/.cache/ai-story-book/.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo-lambda >/dev/null || ! python3 -c "import ziglang" 2>/dev/null; then
  echo "== installing cargo-lambda and ziglang from PyPI"
  python3 -m pip install --quiet --disable-pip-version-check "cargo-lambda>=1.6,<2" "ziglang>=0.13,<0.15"
fi
rustup target add aarch64-unknown-linux-gnu >/dev/null
# The SAM CLI on the PATH, or the one tests/run.sh keeps in a virtual environment of its own.
sam=$(command -v sam || true)
if [[ -z "$sam" ]]; then
  sam_venv="${XDG_CACHE_HOME:-$HOME/.cache}/ai-story-book/sam-venv"
  if [[ ! -x "$sam_venv/bin/sam" ]]; then
    echo "== installing aws-sam-cli into $sam_venv"
    python3 -m venv "$sam_venv"
    "$sam_venv/bin/python" -m pip install --quiet --disable-pip-version-check "aws-sam-cli>=1.100,<2"
  fi
  sam="$sam_venv/bin/sam"
fi
export SAM_CLI_TELEMETRY=${SAM_CLI_TELEMETRY:-0}
"$sam" --version
# rust-cargolambda is a beta build method (also set in samconfig.toml). Arguments go to sam build
# (a function's logical id builds that one alone). cargo-lambda builds with --release: Cargo.toml's
# [profile.release] is what is deployed, and each function's build.rs links it non-PIE.
"$sam" build --beta-features "$@"
# Each package as Lambda gets it: its bootstrap, zipped; the start-up goal is at most 8 MB, non-PIE.
python3 - <<'PY'
import glob, io, os, zipfile
for bootstrap in sorted(glob.glob(".aws-sam/build/*/bootstrap")):
    with open(bootstrap, "rb") as f:
        head = f.read(18)
    kind = "non-PIE" if int.from_bytes(head[16:18], "little") == 2 else "PIE"
    package = io.BytesIO()
    with zipfile.ZipFile(package, "w", zipfile.ZIP_DEFLATED) as z:
        z.write(bootstrap, "bootstrap")
    zipped = len(package.getvalue())
    note = "" if zipped <= 8_000_000 and kind == "non-PIE" else "   (misses the start-up goal)"
    print(f"  {bootstrap.split('/')[2]:<28} {os.path.getsize(bootstrap) / 1e6:5.1f} MB, "
          f"zipped {zipped / 1e6:4.1f} MB, {kind}{note}")
PY
