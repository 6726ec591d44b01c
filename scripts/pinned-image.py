#!/usr/bin/env python3
"""Builds a FROM-scratch image whose id is a function of its files alone, loads
it into dockerd, and checks it against the digest its module's template pins.

Why not `docker build`: every build writes creation times into the image
config and file times into the layer, so its id changes with each rebuild and
no template could pin it. Here the layer is a tar written in a fixed order with
fixed times, owners and modes, and the config names no time: the image id (the
sha256 of the config, which names the sha256 of the layer) is the same on every
machine that has the same files. dockerd's classic image store keeps that id
as it is on `docker load`, and the provider's executor accepts a pin that
equals it (see lilypad-sdk/src/executor/image.rs).

No crate or tool writes this format with fixed metadata from a shell script
(`docker build` and buildkit stamp times), and Python's tarfile and json do it
in a few lines: hence a script.

  pinned-image.py --template T --entrypoint /bin/x --env K=V ... \
      --add SRC=DEST ... [--repin]

Prints the image id. Exits 1 when the id differs from the template's pin
(with --repin it rewrites the pin in the template instead).
"""

import argparse
import hashlib
import io
import json
import os
import re
import subprocess
import sys
import tarfile
import tempfile

PIN = re.compile(r'("Image":\s*"([^"@]+))(@sha256:[0-9a-f]{64})?"')


def die(msg):
    print(f"\033[1;31m[example-images] error:\033[0m {msg}", file=sys.stderr)
    sys.exit(1)


def tar_info(name, kind, mode, size=0):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.size = size
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def write_layer(out, files):
    """files: (source path, path in the image). Directories first, each once,
    everything in sorted order; a file keeps only its executable bit."""
    dirs = set()
    for _, dest in files:
        parts = dest.strip("/").split("/")[:-1]
        for i in range(1, len(parts) + 1):
            dirs.add("/".join(parts[:i]))
    with tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for d in sorted(dirs):
            tar.addfile(tar_info(d, tarfile.DIRTYPE, 0o755))
        for src, dest in sorted(files, key=lambda f: f[1]):
            st = os.stat(src)
            mode = 0o755 if st.st_mode & 0o100 else 0o644
            with open(src, "rb") as f:
                tar.addfile(tar_info(dest.strip("/"), tarfile.REGTYPE, mode, st.st_size), f)


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--template", required=True, help="the module's lilypad_module.json.tmpl")
    p.add_argument("--entrypoint", required=True)
    p.add_argument("--env", action="append", default=[], help="K=V, in the image's config")
    p.add_argument("--add", action="append", default=[], required=True, help="SRC=DEST")
    p.add_argument("--repin", action="store_true", help="write the built id into the template")
    p.add_argument("--tmp", default=None, help="where the image tarball is written")
    args = p.parse_args()

    text = open(args.template).read()
    m = PIN.search(text)
    if not m:
        die(f'{args.template} names no "Image"')
    tag = m.group(2)
    pinned = m.group(3)[1:] if m.group(3) else None

    files = []
    for spec in args.add:
        src, _, dest = spec.partition("=")
        if not dest or not os.path.isfile(src):
            die(f"--add {spec}: expected SRC=DEST with SRC a file")
        files.append((src, dest))

    with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
        layer_path = os.path.join(tmp, "layer.tar")
        with open(layer_path, "wb") as out:
            write_layer(out, files)
        diff_id = sha256_file(layer_path)
        config = {
            "architecture": "amd64",
            "os": "linux",
            "created": "1970-01-01T00:00:00Z",
            "config": {
                "Entrypoint": [args.entrypoint],
                "Env": args.env,
                "WorkingDir": "/",
            },
            "rootfs": {"type": "layers", "diff_ids": [f"sha256:{diff_id}"]},
        }
        config_bytes = json.dumps(config, sort_keys=True, separators=(",", ":")).encode()
        image_id = "sha256:" + hashlib.sha256(config_bytes).hexdigest()

        if pinned != image_id and not args.repin:
            die(
                f"the image built here is {image_id}, but {args.template} pins "
                f"{pinned or 'no digest'}.\n"
                "  The same sources, model files and toolchain give the same id on every "
                "machine; a different id means one of them differs.\n"
                "  If you changed the module on purpose, rebuild with --repin "
                "(LILYPAD_REPIN=1 scripts/build-example-images.sh) and commit the template."
            )

        archive = os.path.join(tmp, "image.tar")
        manifest = [{
            "Config": f"{image_id[7:]}.json",
            "RepoTags": [tag],
            "Layers": [f"{diff_id}/layer.tar"],
        }]
        with tarfile.open(archive, "w", format=tarfile.USTAR_FORMAT) as tar:
            def put(name, data):
                tar.addfile(tar_info(name, tarfile.REGTYPE, 0o644, len(data)), io.BytesIO(data))
            put(f"{image_id[7:]}.json", config_bytes)
            put("manifest.json", json.dumps(manifest).encode())
            with open(layer_path, "rb") as f:
                tar.addfile(tar_info(f"{diff_id}/layer.tar", tarfile.REGTYPE, 0o644,
                                     os.path.getsize(layer_path)), f)
        os.unlink(layer_path)
        load = subprocess.run(["docker", "load", "-q", "-i", archive], capture_output=True, text=True)
        if load.returncode != 0:
            die(f"docker load failed: {load.stderr.strip() or load.stdout.strip()}")

    got = subprocess.run(["docker", "image", "inspect", "--format", "{{.Id}}", tag],
                         capture_output=True, text=True).stdout.strip()
    if got != image_id:
        die(f"dockerd stored {tag} as {got or 'nothing'}, not {image_id}: pins by image id need "
            "dockerd's classic image store (not the containerd image store)")

    if args.repin and pinned != image_id:
        new = PIN.sub(lambda mm: f'{mm.group(1)}@{image_id}"', text, count=1)
        with open(args.template, "w") as f:
            f.write(new)
        print(f"[example-images] pinned {tag}@{image_id} in {args.template}", file=sys.stderr)
    print(image_id)


if __name__ == "__main__":
    main()
