#!/usr/bin/env bash
# Container entry point (also run by CI outside Docker on the sample data).
# Fetches the nixpkgs channel expression when the metadata phase runs from nix-env and no
# expression is given, then runs `fdnix "$@"` (default: index) with JSON logs.
set -euo pipefail
FDNIX_BIN="${FDNIX_BIN:-fdnix}"
export FDNIX_LOG_FORMAT="${FDNIX_LOG_FORMAT:-json}"
mode="${PROCESSING_MODE:-both}"
if [ "${1:-index}" = "index" ] && [ "$mode" != "embedding" ] \
   && [ "${FDNIX_SOURCE:-nix-env}" = "nix-env" ] && [ -z "${FDNIX_NIX_FILE:-}" ]; then
  # Evaluate the current channel, as the original container did.
  channel="${NIXPKGS_CHANNEL_URL:-https://nixos.org/channels/nixpkgs-unstable/nixexprs.tar.xz}"
  export FDNIX_NIX_FILE="$channel"
  export FDNIX_NIX_ARGS="${FDNIX_NIX_ARGS:-[\"--option\",\"sandbox\",\"false\"]}"
fi
echo "{\"level\":\"INFO\",\"message\":\"fdnix entrypoint\",\"mode\":\"$mode\",\"source\":\"${FDNIX_SOURCE:-nix-env}\"}" >&2
exec "$FDNIX_BIN" "$@"
