#!/usr/bin/env bash
# README command 2: the whole test suite, from a fresh clone on a fresh machine.
# Installs what it needs (venv, promtool/kubectl/validators, Kafka's jars), then runs lint,
# type checks, the schema check and pytest, then the unit tests a second time against the
# mypyc-compiled core (what the container image runs). Extra arguments go to the first pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
bash scripts/bootstrap.sh
bash scripts/install-deploy-tools.sh .venv
echo "==> Kafka jars for the local test broker"
.venv/bin/python -m worker.dev.devbroker --fetch-only
echo "==> ruff"
.venv/bin/ruff check .
echo "==> mypy"
.venv/bin/mypy
echo "==> JSON Schemas up to date"
.venv/bin/python -m worker schema --check
echo "==> pytest"
set +e
.venv/bin/pytest "$@"
code=$?
set -e
if [ "$code" -eq 5 ]; then
  echo "error: pytest collected no tests; that is a failure here" >&2
  exit 1
fi
if [ "$code" -eq 0 ] && ! command -v cc >/dev/null && ! command -v gcc >/dev/null; then
  if [ -n "${CI:-}" ]; then
    echo "error: no C compiler (cc/gcc): the compiled core cannot be built and tested" >&2
    exit 1
  fi
  echo "WARNING: no C compiler (cc/gcc) here: the unit tests did NOT run against the" >&2
  echo "WARNING: mypyc-compiled core the container image ships (CI runs them)." >&2
elif [ "$code" -eq 0 ]; then
  echo "==> unit tests against the mypyc-compiled classifier core"
  bash scripts/compile-core.sh build/compiled
  set +e
  CLASSIFIER_TEST_BUILD=build/compiled .venv/bin/pytest -q -p no:cacheprovider tests/unit
  code=$?
  set -e
  [ "$code" -eq 5 ] && { echo "error: no unit tests collected" >&2; exit 1; }
fi
echo "==> finished in $(( $(date +%s) - start ))s with pytest exit code $code"
exit "$code"
