"""benchmarks/bench_throughput.py: the coincurve check it applies to every signature, ours and the wasm peer's."""

from __future__ import annotations

import hashlib

import coincurve

from benchmarks.bench_throughput import verify_rs
from mpc_ray.crypto.secp256k1 import Q


def test_verify_rs_accepts_low_and_high_s_and_refuses_anything_else():
    sk = coincurve.PrivateKey()
    pub = sk.public_key.format()
    for i in range(20):  # DER lengths vary with leading zero bytes and high bits of r and s
        digest = hashlib.sha256(b"m%d" % i).digest()
        sig = sk.sign_recoverable(digest, hasher=None)
        r, s = int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:64], "big")
        assert verify_rs(pub, digest, r, s)
        assert verify_rs(pub, digest, r, Q - s)  # the peer may return a high s
        assert not verify_rs(pub, digest[::-1], r, s)
        assert not verify_rs(pub, digest, r, (s + 1) % Q)
