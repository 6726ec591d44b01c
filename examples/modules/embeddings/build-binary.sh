#!/usr/bin/env bash
# Builds one binary of this cargo project (lilypad-embeddings or lilypad-chat)
# in release, statically linked, reproducibly, and prints its path. Both
# model images (embeddings, chat) use it: the same flags and target directory,
# so candle is compiled once for both.
#
# Reproducible: the image templates pin the image id, which hashes this binary,
# so every machine must build the same bytes from the same sources. The
# toolchain is the machine's one rustc and gcc, Cargo.lock pins every crate,
# and what would differ between machines is remapped: the checkout's path, the
# cargo home and the target directory (rustc's panic locations and the C++
# sources that tokenizers compiles name them otherwise).
#
# Statically linked against glibc's static libc: the musl target cannot be
# installed here without the internet.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../../.." && pwd)
bin=${1:?usage: build-binary.sh lilypad-embeddings|lilypad-chat}
target=x86_64-unknown-linux-gnu
out=$root/target/embeddings
cargo_home=$(cd "${CARGO_HOME:-$HOME/.cargo}" 2>/dev/null && pwd -P || true)
mkdir -p "$out"
out=$(cd "$out" && pwd -P)
root_real=$(cd "$root" && pwd -P)

# The last matching prefix wins (rustc and gcc alike): the target directory
# lies inside the checkout, so it comes last.
maps=() cmaps=""
for pair in "$root_real=/lilypad" ${cargo_home:+"$cargo_home=/cargo"} "$out=/target"; do
  maps+=("--remap-path-prefix=$pair")
  cmaps+=" -ffile-prefix-map=$pair"
done

(cd "$here" && RUSTFLAGS="-C target-feature=+crt-static ${maps[*]}" \
  CFLAGS="$cmaps" CXXFLAGS="$cmaps" \
  cargo build --quiet --release --locked --target "$target" --target-dir "$out" --bin "$bin") \
  >&2 || { printf '\033[1;31m[example-images] error:\033[0m cargo build of %s failed\n' "$bin" >&2; exit 1; }
binary=$out/$target/release/$bin
[[ -x $binary ]] || { echo "$binary was not built" >&2; exit 1; }
if file "$binary" 2>/dev/null | grep -q 'dynamically linked'; then
  echo "$binary is dynamically linked; the image is FROM scratch" >&2
  exit 1
fi
echo "$binary"
