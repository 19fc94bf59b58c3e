#!/usr/bin/env bash
# Builds the worker package with its classifier core compiled by mypyc (see setup.py) into
# DEST (default build/compiled): DEST/worker/ holds every module, the core ones as C
# extensions, which Python imports in preference to the .py beside them. Put DEST first on
# PYTHONPATH (and run python with -P so the checkout's own worker/ is not found first):
#   PYTHONPATH=build/compiled .venv/bin/python -P -m worker classify events.jsonl
# Needs the dev install (mypy) and a C compiler; takes about a minute on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
dest=${1:-build/compiled}
py=${PYTHON:-.venv/bin/python}
rm -rf "$dest" build/mypyc-temp
mkdir -p "$dest"
tar --exclude=__pycache__ -cf - worker | tar -xf - -C "$dest"
echo "==> compiling the classifier core with mypyc into $dest"
CLASSIFIER_COMPILE=1 "$py" setup.py --quiet build_ext --build-lib "$dest" \
  --build-temp build/mypyc-temp >build/mypyc.log 2>&1 || { tail -40 build/mypyc.log >&2; exit 1; }
"$py" -P -c "
import sys; sys.path.insert(0, '$dest')
import worker
assert worker.core_build() == 'mypyc', worker.classify.core.__file__
print('compiled:', worker.classify.core.__file__)"
