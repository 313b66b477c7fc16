#!/usr/bin/env bash
# Runs the Python test suite (tests/python: the official MLflow client against a Ledgerflow server
# that the suite starts itself) in the cached venv made by tools/python-env.sh.
# Extra arguments go to pytest, e.g. `bash tools/run-python-tests.sh -k fluent -x`.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
venv="$(bash tools/python-env.sh)"
export PYTHONDONTWRITEBYTECODE=1
args=(-p no:cacheprovider)
if [[ -n "${CI:-}" ]]; then
  # CI logs are plain text: one line per test, no colour codes around the closing "N passed" line.
  args+=(-v --color=no)
else
  args+=(-q)
fi
exec "$venv/bin/python" -m pytest "${args[@]}" tests/python "$@"
