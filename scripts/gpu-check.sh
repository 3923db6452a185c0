#!/usr/bin/env bash
# The checks that need an NVIDIA GPU, for a machine that has one and already has torch and
# torch_geometric (the tests skip them elsewhere): the cuda backend's tests and causal-lm's, then the kinship
# example built on the GPU and on the CPU, timed. Extra wheels the machine lacks (pydantic,
# tomli_w) may be put in $WHEELS; nothing is downloaded.
#
#   WHEELS=.whl bash scripts/gpu-check.sh [OUTPUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-gpu-check}
mkdir -p "$out"
python3 -m venv --system-site-packages /tmp/autoglm-gpu
py=/tmp/autoglm-gpu/bin/python
$py -m pip install -q --no-index --no-deps --no-build-isolation ${WHEELS:+"$WHEELS"/*.whl} \
    -e . -e plugins/autoglm-graph -e plugins/autoglm-backends -e plugins/autoglm-lm
$py -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name(0))"
$py -m pytest -q -p no:cacheprovider -rs plugins/autoglm-backends tests/test_backends.py 2>&1 | tee "$out/tests.log"
$py -m pytest -q -p no:cacheprovider -rs plugins/autoglm-lm/tests/test_causal_lm.py -k cuda 2>&1 | tee -a "$out/tests.log"
for backend in cuda cpu; do
    start=$(date +%s%N)
    $py -m autoglm_cli build examples/kinship.toml -o "/tmp/kinship-$backend" --force -q \
        --set "backend={plugin=\"$backend\"}" 2>&1 | tail -1 | tee -a "$out/kinship.log"
    echo "$backend: $(( ($(date +%s%N) - start) / 1000000 )) ms" | tee -a "$out/kinship.log"
    cp "/tmp/kinship-$backend/report.json" "$out/kinship-$backend.json"
done
