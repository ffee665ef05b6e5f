#!/usr/bin/env bash
# A new user's first run, outside the repository: the built wheel in a fresh virtualenv, a fine-tuned
# checkpoint of their own and a CSV of another domain, one `slimbench run` from an empty folder.
#
#   bash experiments/new-user/trial.sh CHECKPOINT_DIR [WORK_DIR]
#
# CHECKPOINT_DIR: a Hugging Face checkpoint with a classification head (e.g. the `standard` artifact
# of a default build: ~/.cache/slimbench/artifacts/standard-*/, a MiniLM fine-tuned on movie reviews).
# The CSV is the Amazon product-review snippets of Hutto & Gilbert (amazon_csv.py). The run uses its
# own cache (nothing from an earlier build is reused) and prints its wall time.
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
checkpoint="$(cd "$1" && pwd)"
work="${2:-$(mktemp -d)}"
mkdir -p "$work"
cd "$work"
rm -rf source dist venv user cache
mkdir source
git -C "$repo" archive HEAD | tar -x -C source  # the committed sources, as a clone would have them
python3.11 -m pip wheel --no-deps -q -w dist ./source
python3.11 -m venv venv
# the CPU build of torch: the constraints file pins it (users: --index-url https://download.pytorch.org/whl/cpu)
PIP_CONSTRAINT="$repo/constraints.txt" venv/bin/pip install -q --disable-pip-version-check dist/slimbench-*.whl
mkdir -p user/my-model
cp "$checkpoint"/config.json "$checkpoint"/model.safetensors "$checkpoint"/tokenizer.json user/my-model/
venv/bin/python "$repo/experiments/new-user/amazon_csv.py" "${ASSETS:-$HOME/.cache/slimbench/assets/vaderSentiment-3.3.2}" \
    user/amazon-reviews.csv
cd user
start=$(date +%s)
SLIMBENCH_CACHE="$work/cache" ../venv/bin/slimbench run --base my-model --dataset amazon-reviews.csv \
    --text-column review --label-column sentiment --variants standard,light,onnx,onnx-int8,ultra-light-onnx-int8 \
    2>&1 | tee run.log
echo "slimbench run: $(( $(date +%s) - start )) s wall" | tee -a run.log
