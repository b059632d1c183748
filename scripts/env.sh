# Sourced by the scripts: puts the Node and pnpm that scripts/setup installs first on PATH.
# shellcheck shell=bash
LADING_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export LADING_ROOT
if [ "$(id -u)" = 0 ]; then LADING_PREFIX="${LADING_PREFIX:-/usr/local}"; else LADING_PREFIX="${LADING_PREFIX:-$HOME/.local}"; fi
export LADING_PREFIX
case ":$PATH:" in *":$LADING_PREFIX/bin:"*) ;; *) export PATH="$LADING_PREFIX/bin:$PATH" ;; esac
export TURBO_TELEMETRY_DISABLED=1 DO_NOT_TRACK=1 TURBO_NO_UPDATE_NOTIFIER=1
