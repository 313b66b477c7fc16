#!/usr/bin/env bash
# Creates (once, cached) the Python virtualenv for tests/python and prints its path on stdout.
#
#   venv="$(bash tools/python-env.sh)" && "$venv/bin/python" -m pytest tests/python
#
# The venv lives at ${LEDGERFLOW_CACHE:-$HOME/.cache/ledgerflow}/venv-<hash>, where <hash> is taken
# from tests/python/requirements.txt, so editing the pins yields a fresh venv. A marker file is
# written only after a successful install; while it exists, re-running is a no-op. A venv left
# half-built by an interrupted run (no marker) is thrown away and rebuilt.
# Progress goes to stderr; stdout carries the venv path only. PYTHON picks the interpreter
# (default python3).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
requirements="$root/tests/python/requirements.txt"
python="${PYTHON:-python3}"
cache="${LEDGERFLOW_CACHE:-$HOME/.cache/ledgerflow}"

hash="$(sha256sum "$requirements" | cut -c1-16)"
venv="$cache/venv-$hash"
marker="$venv/.ledgerflow-installed"

if [[ -f "$marker" ]]; then
  echo "$venv"
  exit 0
fi

mkdir -p "$cache"
# Two concurrent runs (say, two shells) must not build the same venv at once.
exec 9>"$cache/venv-$hash.lock"
if command -v flock >/dev/null 2>&1; then
  flock 9
fi
if [[ -f "$marker" ]]; then # built by whoever held the lock before us
  echo "$venv"
  exit 0
fi

started=$SECONDS
echo "python-env: creating $venv with $("$python" --version 2>&1)" >&2
rm -rf "$venv"
"$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet -r "$requirements" >&2
# Proves the install is usable before declaring it done.
"$venv/bin/python" -c 'import mlflow, pytest; print("python-env: mlflow", mlflow.__version__, "pytest", pytest.__version__)' >&2
{
  echo "requirements-sha256=$hash"
  date -u +%Y-%m-%dT%H:%M:%SZ
} >"$marker"
echo "python-env: ready in $((SECONDS - started)) s" >&2
echo "$venv"
