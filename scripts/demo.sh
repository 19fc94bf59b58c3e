#!/usr/bin/env bash
# README command 1: run the worker on a local broker with a stream of sample events.
# Extra arguments go to `python -m worker demo` (see --help), e.g. --duration 60.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
exec .venv/bin/python -m worker demo "$@"
