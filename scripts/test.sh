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
echo "[test] hadolint Dockerfile"
hadolint Dockerfile
echo "[test] container entry point outside Docker, on the sample dump"
tmp="$(mktemp -d)"
FDNIX_BIN="$CARGO_TARGET_DIR/release/fdnix" FDNIX_HOME="$PWD/.fdnix" OUTPUT_PATH="$tmp/fdnix.duckdb" \
  FDNIX_SOURCE="file:../shared/data/nixpkgs-sample.json" EMBEDDER=fake-lexical FDNIX_SINK="dir:$tmp/published" \
  bash docker/entrypoint.sh index --json > "$tmp/summary.json"
python3 - "$tmp/summary.json" "$tmp/published/fdnix.duckdb.manifest.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1])); m = json.load(open(sys.argv[2]))
assert s["metadata"]["packages_written"] == 2000, s["metadata"]
assert s["embedding"]["embedded"] > 1500, s["embedding"]
assert m["package_count"] == 2000 and m["sha256"] == s["published"]["sha256"], m
print("[test] entrypoint: 2000 packages,", s["embedding"]["embedded"], "vectors, published", m["sha256"][:12])
PY
rm -rf "$tmp"
echo "[test] all tests and examples passed"
