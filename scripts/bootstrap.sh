# Sourced by the other scripts: a virtualenv with shipnav and its dev tools, made on first use.
# SHIPNAV_VENV picks its folder (default .venv); SHIPNAV_FRESH_VENV=1 rebuilds it from scratch.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${SHIPNAV_VENV:-$ROOT/.venv}"
PYTHON="${PYTHON:-python3}"
if [ "${SHIPNAV_FRESH_VENV:-0}" = "1" ]; then
  rm -rf "$VENV"
fi
if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
stamp="$VENV/.shipnav-installed"
if [ ! -f "$stamp" ] || [ "$ROOT/pyproject.toml" -nt "$stamp" ]; then
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -e "$ROOT[dev]"
  touch "$stamp"
fi
export PATH="$VENV/bin:$PATH"
cd "$ROOT"
