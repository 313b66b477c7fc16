#!/usr/bin/env bash
# Runs the Python test suite (tests/python: the official MLflow client against a Ledgerflow server
# that the suite starts itself) in the cached venv made by tools/python-env.sh.
# Extra arguments go to pytest, e.g. `bash tools/run-python-tests.sh -k fluent -x`.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
venv="$(bash tools/python-env.sh)"
export PYTHONDONTWRITEBYTECODE=1
# CI logs are read as plain text: no colour codes around the closing "N passed" line.
exec "$venv/bin/python" -m pytest -q -p no:cacheprovider ${CI:+--color=no} tests/python "$@"
