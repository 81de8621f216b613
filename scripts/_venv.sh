# Sourced by the scripts: create ./.venv with Python 3.11 if needed and install the project into it.
PYTHON_BIN="${PYTHON:-}"
if [ -z "$PYTHON_BIN" ]; then
  for candidate in python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1; then PYTHON_BIN=$candidate; break; fi
  done
fi
[ -n "$PYTHON_BIN" ] || { echo "Python 3.11 is needed (python3.11 or python3 on PATH)" >&2; exit 1; }
if [ ! -x .venv/bin/python ]; then
  "$PYTHON_BIN" -m venv .venv
fi
# shellcheck disable=SC1091
source .venv/bin/activate
stamp=.venv/.installed-$(cat setup.py | sha1sum | cut -c1-12)
if [ ! -f "$stamp" ]; then
  echo "Installing pncp_assets and its dependencies (Dagster, pyarrow, the test tools) into ./.venv: a minute or two, once..."
  python -m pip install --quiet --upgrade pip
  python -m pip install --quiet -e ".[dev]"
  touch "$stamp"
  echo "Installed."
fi
