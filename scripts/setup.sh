#!/usr/bin/env bash
# One-time set-up on a fresh machine: CPU torch (a GPU build is used instead if already present),
# the package with its test/study/interop/docs extras, and pty-chi without its torchvision pin.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if ! $PY -c "import torch" 2>/dev/null; then
  $PY -m pip install -q "torch==2.13.0" || $PY -m pip install -q torch
fi
TORCH_VERSION=$($PY -c "import torch; print(torch.__version__.split('+')[0])")
CONSTRAINTS=$(mktemp)
echo "torch==${TORCH_VERSION}" > "$CONSTRAINTS"
$PY -m pip install -q -c "$CONSTRAINTS" -e ".[dev,study,ptychodus,docs]"
# pty-chi 2.2 only needs torchvision for a blur we never call; its torchvision pin would replace
# torch, so install it without dependencies plus the dependencies it really uses.
$PY -m pip install -q -c "$CONSTRAINTS" scikit-learn pandas pydantic
$PY -m pip install -q --no-deps "ptychi==2.2.0"
rm -f "$CONSTRAINTS"
$PY -c "import ptychopinn, lightning; print('ptychopinn', ptychopinn.__version__, 'ready')"
