#!/usr/bin/env python3
"""Independent PoW test vectors for lilypad-core (pow.rs).

Written from the spec, not from the Rust code, with pycryptodome's keccak
(the original Keccak-256 Ethereum uses, not NIST SHA3-256) and Python ints:

    challenge  = keccak256(seed (32) ++ miner left-padded to 32 ++ node_id (32))
    proof_hash = keccak256(challenge (32) ++ nonce as 32 bytes big-endian)
    meets      = int(proof_hash) < target

Deterministic (fixed RNG seed), so re-running rewrites the same file.
Usage: pip install pycryptodome && python3 gen_pow_vectors.py
"""

import json
import os
import random

from Crypto.Hash import keccak


def keccak256(data: bytes) -> bytes:
    h = keccak.new(digest_bits=256)
    h.update(data)
    return h.digest()


# Sanity: the well-known digest of the empty string, and one that SHA3-256 would get wrong.
assert keccak256(b"").hex() == "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"
assert keccak256(b"abc").hex() == "4e03657aea45a94fc7d47ba826c8d667c0d1e6e33a64a036ec44f58fa12d6c45"

MAX = 2**256 - 1


def u256(n: int) -> bytes:
    assert 0 <= n <= MAX
    return n.to_bytes(32, "big")


def hx(b: bytes) -> str:
    return "0x" + b.hex()


def case(rng: random.Random, i: int) -> dict:
    seed = rng.getrandbits(256).to_bytes(32, "big")
    miner = rng.getrandbits(160).to_bytes(20, "big")
    node_id = rng.getrandbits(256).to_bytes(32, "big")
    nonce = [0, 1, MAX, rng.getrandbits(64)][i] if i < 4 else rng.getrandbits(rng.choice([8, 64, 256]))

    challenge = keccak256(seed + b"\x00" * 12 + miner + node_id)
    proof = keccak256(challenge + u256(nonce))
    p = int.from_bytes(proof, "big")

    # Targets that exercise the comparison: exact boundary, random, extremes.
    kind = i % 6
    if kind == 0:
        target = p  # equal: not below, fails
    elif kind == 1:
        target = p + 1  # just above: passes
    elif kind == 2:
        target = 0 if i % 12 == 2 else MAX
    elif kind == 3:
        target = 1 << rng.randrange(200, 257) if rng.random() < 0.5 else 1 << rng.randrange(0, 256)
        target = min(target, MAX)
    else:
        target = rng.getrandbits(256)

    return {
        "seed": hx(seed),
        "miner": hx(miner),
        "node_id": hx(node_id),
        "nonce": hx(u256(nonce)),
        "target": hx(u256(target)),
        "challenge": hx(challenge),
        "proof_hash": hx(proof),
        "meets_target": p < target,
    }


def main() -> None:
    rng = random.Random(0x11170AD)
    cases = [case(rng, i) for i in range(50)]
    assert any(c["meets_target"] for c in cases) and not all(c["meets_target"] for c in cases)
    out = {
        "about": "PoW vectors from tests/vectors/gen_pow_vectors.py (pycryptodome keccak); do not edit by hand",
        "keccak256_empty": "0xc5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470",
        "cases": cases,
    }
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "pow.json")
    with open(path, "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    print(f"wrote {len(cases)} cases to {path}")


if __name__ == "__main__":
    main()
