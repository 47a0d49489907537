#!/usr/bin/env bash
# Prints two build times of one revision (default HEAD): a clean debug build of every package,
# and the rebuild after touching one route file (the books routes). The revision is checked out
# into a temporary folder with a target directory of its own, so nothing is shared with other
# builds; the registry cache in ~/.cargo is reused (no download is timed).
#   bash scripts/build-times.sh [REV]
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
rev="${1:-HEAD}"
work="$(mktemp -d)"
trap 'git -C "$repo" worktree remove --force "$work/src" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT

git -C "$repo" worktree add --detach --quiet "$work/src" "$rev"
cd "$work/src"
export CARGO_TARGET_DIR="$work/target" CARGO_TERM_COLOR=never
route_file="$(git ls-files | grep -E '(^|/)routes/books(/mod)?\.rs$' | head -n 1)"

seconds() { local start=$SECONDS; "$@" >/dev/null 2>&1; echo $((SECONDS - start)); }
cargo fetch --locked --quiet
clean=$(seconds cargo build --workspace --locked --offline)
touch "$route_file"
rebuild=$(seconds cargo build --workspace --locked --offline)

printf 'build times of %s (%s), %s cores\n' "$(git rev-parse --short HEAD)" "$rev" "$(nproc)"
printf '  clean debug build, every package      %4d s\n' "$clean"
printf '  rebuild after touching %-16s %4d s\n' "$(basename "$route_file")" "$rebuild"
