"""Loader for the TEST ONLY safe primes in tests/fixtures (public values: never for real keys)."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from mpc_ray.crypto.paillier import PaillierSecretKey
from mpc_ray.crypto.params import SecurityLevel, level as as_level

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "TEST_ONLY_safe_primes.json"


@lru_cache(maxsize=None)
def fixture_primes(bits: int) -> tuple[int, ...]:
    return tuple(int(p) for p in json.loads(FIXTURE.read_text())[str(bits)])


def fixture_paillier_key(level: SecurityLevel | str, index: int) -> PaillierSecretKey:
    """The index-th TEST ONLY Paillier-Blum key (primes 2*index and 2*index+1), 0 <= index < 12."""
    lv = as_level(level)
    primes = fixture_primes(lv.prime_bits)
    return PaillierSecretKey(primes[2 * index], primes[2 * index + 1], test_only=True)
