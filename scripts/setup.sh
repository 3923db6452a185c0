#!/usr/bin/env bash
# Create .venv and install the core, every plugin in plugins/ and the contrib
# example, each as its own distribution (editable, so edits take effect).
# Re-running is cheap: nothing is reinstalled unless a pyproject.toml or the
# constraints changed.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
VENV="${AUTOGLM_VENV:-.venv}"

if [ ! -x "$VENV/bin/python" ]; then
    echo "setup: creating $VENV with $($PYTHON --version)"
    "$PYTHON" -m venv "$VENV"
fi

packages=(-e .)
for dir in plugins/*/ contrib/*/; do
    if [ -f "$dir/pyproject.toml" ]; then packages+=(-e "${dir%/}"); fi
done
# the onnxruntime backend's libraries, Ray Train and torchao (INT8 on compile) are extras of autoglm-backends;
# their tests need them
packages+=(-e "plugins/autoglm-backends[onnx,ray,pt2e]")
# Ray Serve, the scale-out path of autoglm-serve, is its extra; its test starts a local Ray instance
packages+=(-e "plugins/autoglm-serve[ray]")
packages+=(-e "plugins/autoglm-graph[imbalance]")  # the smote objective measured against imbalanced-learn

# digits-trimodal synthesises speech with espeak-ng, a Debian package
if ! command -v espeak-ng >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "setup: installing espeak-ng (Debian package)"
        apt-get update -qq && apt-get install -y -qq espeak-ng >/dev/null
    else
        echo "setup: espeak-ng is missing and cannot be installed here (needs root and apt-get);" \
             "digits-trimodal will ask for it and its tests will be skipped"
    fi
fi

stamp="$VENV/.autoglm-installed"
want="$(cat constraints.txt pyproject.toml plugins/*/pyproject.toml contrib/*/pyproject.toml | sha256sum | cut -d' ' -f1)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    exit 0
fi

pip_install() {
    # some machines' pip configs name local indexes that may be absent; their
    # one-line warnings per package would bury real errors
    # (pipefail: the pipeline fails, and set -e stops the script, when pip fails)
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -c constraints.txt "$@" 2>&1 \
        | { grep -v "is ignored: it is neither a file nor a directory" || true; }
}

echo "setup: installing torch and the AutoGLM distributions (first time: a few minutes)"
pip_install "setuptools>=64" wheel
pip_install torch torchvision torchaudio torch_geometric
# --no-build-isolation: build with the venv's setuptools instead of fetching one per package
pip_install --no-build-isolation "${packages[@]}" "pytest>=8" "ruff>=0.6" "jsonschema>=4.20" "hypothesis>=6.100" \
    "schemathesis>=4.0"
echo "$want" > "$stamp"
echo "setup: installed ${packages[*]}"
