#!/usr/bin/env bash
# Set everything up, then run the whole test suite (core, plugins, contrib).
# Extra arguments go to pytest. "No tests collected" is a failure.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh || exit 1
VENV="${AUTOGLM_VENV:-.venv}"
# style first: formatting and lint (120 columns, rules in pyproject.toml); a failure names file and line
"$VENV/bin/ruff" format --check --quiet . || { echo "test.sh: run \`$VENV/bin/ruff format .\` to format" >&2; exit 1; }
"$VENV/bin/ruff" check --quiet . || { echo "test.sh: fix the lint findings above (\`$VENV/bin/ruff check --fix .\`)" >&2; exit 1; }
"$VENV/bin/python" -m pytest "$@"
status=$?
if [ "$status" -eq 5 ]; then
    echo "test.sh: pytest collected no tests; treating that as a failure" >&2
    exit 1
fi
exit "$status"
