#!/usr/bin/env bash
# Sets up everything Sample Tool needs on a fresh machine, idempotently:
#   system libraries (PortAudio for playback, Xvfb for screenshots) when we are root on Debian/Ubuntu,
#   a virtual environment in .venv, torch, and the project itself in editable mode.
# Usage: bash scripts/bootstrap.sh [--dev] [--bench]
set -euo pipefail
cd "$(dirname "$0")/.."

extras=""
for arg in "$@"; do
  case "$arg" in
    --dev) extras="${extras:+$extras,}dev" ;;
    --bench) extras="${extras:+$extras,}bench" ;;
    *) echo "bootstrap.sh: unknown option $arg" >&2; exit 2 ;;
  esac
done

# System packages: only what is missing, only where we can install it.
need=()
# Qt's xcb platform plugin (a real window) needs the libxcb-* and xkbcommon-x11 libraries.
for pkg in libportaudio2 xvfb libegl1 libgl1 libxkbcommon0 libxkbcommon-x11-0 libfontconfig1 \
    libdbus-1-3 libglib2.0-0 libxcb-cursor0 libxcb-icccm4 libxcb-image0 libxcb-keysyms1 \
    libxcb-randr0 libxcb-render-util0 libxcb-shape0 libxcb-xinerama0 libxcb-xkb1; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ] && command -v apt-get >/dev/null; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  else
    echo "bootstrap.sh: please install these system packages: ${need[*]}" >&2
  fi
fi

PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
pip=(.venv/bin/python -m pip install -q --disable-pip-version-check)

# torch first, pinned, so the project's open range (torch>=2.2,<3) is already satisfied and pip
# never pulls a different build. Override with TORCH_SPEC, e.g. TORCH_SPEC="torch --index-url ...".
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
  # shellcheck disable=SC2086
  "${pip[@]}" ${TORCH_SPEC:-torch==2.13.0}
fi
"${pip[@]}" -e ".${extras:+[$extras]}"
