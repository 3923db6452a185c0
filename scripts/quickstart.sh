#!/usr/bin/env bash
# The main job on a fresh machine: set everything up, build the kinship
# pipeline (examples/kinship.toml, the embedded default) into artifacts/kinship,
# and answer two hand-written stories with it. Extra arguments go to
# `autoglm build` (for example --set train.epochs=10).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
VENV="${AUTOGLM_VENV:-.venv}"
"$VENV/bin/autoglm" build examples/kinship.toml --force -o artifacts/kinship "$@"
echo "answering hand-written stories with the artifact:"
"$VENV/bin/autoglm" run artifacts/kinship \
    --text "Anna is Ben's mother. Ben went fishing with his sister Clara. How is Clara related to Anna?" \
    --text "Tom has a wife called Julia. Julia's father, Otto, fixes clocks. Otto is the husband of Edith. How is Edith related to Tom?"
echo "report: artifacts/kinship/report.md"
