#!/usr/bin/env bash
# Creates .venv (if missing) and installs the worker with its test and dev tools into it.
# Idempotent: a second run only checks that everything is installed.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv with $($PYTHON --version)"
  "$PYTHON" -m venv .venv
fi
echo "==> installing enrollment-classifier and its tools into .venv"
# setuptools >= 69 reads pyproject's SPDX licence; scripts/compile-core.sh builds with it.
.venv/bin/python -m pip install --quiet --upgrade pip "setuptools>=69" wheel
.venv/bin/python -m pip install --quiet -e ".[test,dev${EXTRAS:+,$EXTRAS}]"
