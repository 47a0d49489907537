#!/usr/bin/env bash
# Runs every test: lint of the template, formatting and clippy, then the whole Rust suite with
# the AWS adapters against a moto_server this script starts on a free loopback port and stops.
# Needs only the Rust toolchain and Python 3; installs the Python tools it lacks.
set -euo pipefail
cd "$(dirname "$0")/.."

python_tools=("moto[server]>=5.1,<6" "cfn-lint>=1.20,<2")
if ! python3 -c "import moto.server, werkzeug" 2>/dev/null || ! command -v cfn-lint >/dev/null; then
  echo "== installing ${python_tools[*]}"
  python3 -m pip install --quiet --disable-pip-version-check "${python_tools[@]}"
fi

echo "== cfn-lint template.yaml"
cfn-lint template.yaml

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy"
cargo clippy --workspace --all-targets --quiet -- -D warnings

moto_dir=$(mktemp -d)
cleanup() {
  if [[ -n "${moto_pid:-}" ]]; then kill "$moto_pid" 2>/dev/null || true; wait "$moto_pid" 2>/dev/null || true; fi
  rm -rf "$moto_dir"
}
trap cleanup EXIT
python3 tests/moto_server.py >"$moto_dir/port" 2>"$moto_dir/log" &
moto_pid=$!
for _ in $(seq 1 100); do
  [[ -s "$moto_dir/port" ]] && break
  sleep 0.1
done
port=$(head -n1 "$moto_dir/port")
[[ -n "$port" ]] || { echo "moto_server did not start:"; cat "$moto_dir/log"; exit 1; }
echo "== moto_server on 127.0.0.1:$port"

export MOTO_ENDPOINT="http://127.0.0.1:$port"
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1
export AWS_EC2_METADATA_DISABLED=true

echo "== cargo test"
cargo test --workspace --quiet -- "$@"
