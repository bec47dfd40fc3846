"""Pieces every round-based protocol uses: hash commitments, echo digests, proof transcripts."""

from __future__ import annotations

import hmac
import secrets
from typing import Any, Mapping

from ..crypto.transcript import Transcript
from .wire import encode

SEED_BYTES = 32


def random_seed() -> bytes:
    return secrets.token_bytes(SEED_BYTES)


def xor_seeds(seeds: list[bytes]) -> bytes:
    """XOR of equal-length seeds; callers check each peer's seed with `is_seed` first."""
    out = bytearray(SEED_BYTES)
    for s in seeds:
        for k in range(SEED_BYTES):
            out[k] ^= s[k]
    return bytes(out)


def is_seed(value: object) -> bool:
    return isinstance(value, bytes) and len(value) == SEED_BYTES


def hash_commit(tag: str, sid: bytes, party: int, decommitment: Any) -> bytes:
    """H(tag, sid, party, encoding of the decommitment); the decommitment must include a random `u`."""
    t = Transcript(f"{tag}/commit").append_bytes("sid", sid).append_int("party", party)
    return t.append_bytes("decommitment", encode(decommitment)).challenge_bytes("V", 32)


def echo_digest(tag: str, sid: bytes, messages: Mapping[int, Any]) -> bytes:
    """Digest of every party's broadcast of one round, in party order; compared across parties (echo check)."""
    t = Transcript(f"{tag}/echo").append_bytes("sid", sid)
    for party in sorted(messages):
        t.append_int("party", party).append_bytes("message", encode(messages[party]))
    return t.challenge_bytes("echo", 32)


def same_bytes(a: bytes, b: bytes) -> bool:
    return hmac.compare_digest(a, b)


def proof_transcript(tag: str, sid: bytes, prover: int, verifier: int | None = None, seed: bytes = b"") -> Transcript:
    """Transcript binding a proof to its protocol, session, prover, verifier and the session's joint seed."""
    t = Transcript(tag).append_bytes("sid", sid).append_int("prover", prover)
    t.append_int("verifier", 0 if verifier is None else verifier)
    return t.append_bytes("seed", seed)
