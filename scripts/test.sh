#!/usr/bin/env bash
# The test command (README): installs what the tests need (nix-bin, DuckDB extensions, the
# local model, moto_server), runs the whole test suite, then builds and runs every example.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/fdnix-target}"
bash scripts/setup.sh all
# Offline AWS: never hang on instance metadata, never use a real bearer token.
export AWS_EC2_METADATA_DISABLED=true
unset AWS_BEARER_TOKEN_BEDROCK AWS_PROFILE
cargo build --release --locked --all-targets
cargo test --release --locked -- --test-threads 2
for ex in $(ls examples/*.rs 2>/dev/null | xargs -n1 basename | sed 's/\.rs$//'); do
  echo "[test] example $ex"
  cargo run --release --locked --example "$ex"
done
echo "[test] all tests and examples passed"
