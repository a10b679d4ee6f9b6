# Create or reuse the project's virtual environment; sourced by scripts/demo and scripts/test.
# Installs torch==2.13.0 (the CPU build) FIRST, so nothing pulls a multi-GB CUDA build,
# then Listenwell itself (editable) with the versions pinned in requirements.lock.
# Re-runs are quick: it reinstalls only when pyproject.toml or requirements.lock change.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${LISTENWELL_VENV:-$ROOT/.venv}"
PYTHON="${PYTHON:-python3}"

if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "error: Listenwell needs Python 3.11 or newer as '$PYTHON' (set PYTHON=...)" >&2
  exit 1
fi
if [ ! -x "$VENV/bin/python" ]; then
  echo "creating virtual environment in $VENV" >&2
  "$PYTHON" -m venv "$VENV"
fi
want="$(cat "$ROOT/pyproject.toml" "$ROOT/requirements.lock" | sha256sum | cut -d' ' -f1)"
stamp="$VENV/.listenwell-installed"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "installing dependencies into $VENV (first run takes a few minutes)" >&2
  # (Some machines' pip.conf names local indexes that do not exist; drop those warnings.)
  quiet() { { "$@" 2>&1; } | { grep -v "^WARNING: Location '" || true; }; }
  quiet "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "torch==2.13.0"
  quiet "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
    -c "$ROOT/requirements.lock" -e "$ROOT[dev]"
  echo "$want" > "$stamp"
fi
export PATH="$VENV/bin:$PATH"
