#!/usr/bin/env bash
# The main job on the embedded default: installs the runtime pieces, indexes the committed
# real nixpkgs cut (fixtures/nixpkgs-demo.json) with the local embedding model into
# out/fdnix.duckdb, publishes it to the local sink out/published/, and runs a few searches.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/fdnix-target}"
bash scripts/setup.sh runtime
cargo build --release --locked --bin fdnix
FDNIX="$CARGO_TARGET_DIR/release/fdnix"
"$FDNIX" index --mode both --source file:fixtures/nixpkgs-demo.json --output out/fdnix.duckdb \
  --embedder "${EMBEDDER:-local}" --sink dir:out/published "$@"
for q in ripgrep rg wiresh blnder "pdf viewer"; do
  echo "== fdnix search $q"
  "$FDNIX" search --db out/fdnix.duckdb --limit 3 "$q"
done
