"""Safe primes for Paillier-Blum moduli.

A safe prime p = 2p' + 1 (p' prime) is always 3 mod 4 once p > 7, so N = pq of two of them is a Blum integer.
Generation sieves a window of candidates against small primes for both p' and 2p' + 1 at once (bytearray slice
assignment keeps the sieve in C), then runs cheap Fermat tests before the full Miller-Rabin.

Fixed test primes live in ``tests/fixtures``; their SHA-256 fingerprints are listed here so that production code
paths can refuse them (`refuse_test_prime`).
"""

from __future__ import annotations

import hashlib
import secrets

import gmpy2

from ..errors import TestPrimeRefused

_SIEVE_LIMIT = 1 << 16
_WINDOW = 1 << 14
_MR_ROUNDS = 40


def _small_primes(limit: int) -> list[int]:
    flags = bytearray([1]) * limit
    flags[0:2] = b"\x00\x00"
    for i in range(2, int(limit**0.5) + 1):
        if flags[i]:
            flags[i * i :: i] = bytes(len(range(i * i, limit, i)))
    return [i for i in range(3, limit) if flags[i]]


SMALL_PRIMES: tuple[int, ...] = tuple(_small_primes(_SIEVE_LIMIT))


def _sieve_window(start: int) -> bytearray:
    """flags[k] == 1 iff q = start + 2k and 2q + 1 have no factor among SMALL_PRIMES."""
    flags = bytearray([1]) * _WINDOW
    for r in SMALL_PRIMES:
        s = start % r
        # q = start + 2k == 0 mod r  ->  k == -s * inv2 mod r
        inv2 = (r + 1) >> 1
        k0 = (-s * inv2) % r
        flags[k0::r] = bytes(len(range(k0, _WINDOW, r)))
        # 2q + 1 == 0 mod r  ->  q == (r - 1) / 2 mod r
        k1 = (((r - 1) >> 1) - s) * inv2 % r
        flags[k1::r] = bytes(len(range(k1, _WINDOW, r)))
    return flags


def is_safe_prime(p: int) -> bool:
    p = gmpy2.mpz(p)
    return p > 7 and p % 4 == 3 and gmpy2.is_prime(p, _MR_ROUNDS) and gmpy2.is_prime((p - 1) // 2, _MR_ROUNDS)


def generate_safe_prime(bits: int) -> int:
    """A uniformly placed random safe prime of exactly `bits` bits (top two bits set so pq has 2*bits bits)."""
    if bits < 16:
        raise ValueError("safe primes below 16 bits are not supported")
    qbits = bits - 1
    two = gmpy2.mpz(2)
    while True:
        start = gmpy2.mpz(secrets.randbits(qbits)) | (gmpy2.mpz(3) << (qbits - 2)) | 1
        flags = _sieve_window(int(start))
        k = flags.find(1)
        while k != -1:
            q = start + 2 * k
            p = 2 * q + 1
            if p.bit_length() == bits and gmpy2.powmod(two, q - 1, q) == 1 and gmpy2.powmod(two, p - 1, p) == 1:
                if gmpy2.is_prime(q, _MR_ROUNDS) and gmpy2.is_prime(p, _MR_ROUNDS):
                    return int(p)
            k = flags.find(1, k + 1)


def fingerprint(p: int) -> str:
    return hashlib.sha256(int(p).to_bytes((int(p).bit_length() + 7) // 8, "big")).hexdigest()


# SHA-256 of every prime in tests/fixtures/TEST_ONLY_safe_primes.json.
TEST_PRIME_FINGERPRINTS: frozenset[str] = frozenset(
    {
        "0560b5ecebe28e37dcdf10fe040c8740720dfb3150f714638c6f161b8a7549a8",
        "0b1d447d96d19f99ea4165bb4bcde87ac814c81a842dae08abf0f154735ffdea",
        "0d052b81a231e618f9fdce4f4eeb9780731e01f7ad6b019099eafc52220373c6",
        "1db5232e49668963163d897a5d386869ce0ed6163591c346f8ebd46b4a1ade65",
        "21e899c6e994b48c148579189259b0c11e438af206d958fc9a0856e72edce7b9",
        "29405135d7970a651b5e2c631609941eed910634f0d05b8fd942819aaeafa629",
        "2bfee92c7d369750b712df757d83ecffabb1c32c42de20964e42bf6321020d5d",
        "2e21e909f7351736534842603e2036412395a04d43cca395d46c1ff7e15f1bc5",
        "2ef548a6ecbfad4bff71c163336165b0034db9c556b74da4a9a0eba03f2b594f",
        "31bdf9b5e5bf42b4fb2973cc8c988063f707c2d69c476dd2cd372ebf7b872c84",
        "38d0869f68ce5877c2d58e8fd5664d968bf7ae2f11599f6e6d848e004f9199df",
        "3abbb8057b1e5666cf4acae116a11d77d984d591bd987d80aeca773bb613d748",
        "3d3f85606240dacdf979948ebf0f7dd5ca96097b067d6e930d1f3d33aaf6e913",
        "3eb956081f4b4b1c0a08a919ca5860eef3013003c0766f14c8ec7cc00d842d03",
        "42025bf6341ca19a80788410d66b8d1cf54475ce9d487b469996124126be696f",
        "467b8b856f6451700cfdf9eb7b483e61c1359c2df7ef4939bff60c8861b552cc",
        "46cc16122421dadadab7bb57002a7c92f8af3cad1e2e32531335a48b01844814",
        "510d51c228dd2ed0e5cadc92ed521efe04307499e2e618e5707195c3ee49982b",
        "54e651acf6a77244ab858c931449776ba0a6268402b1e73c527b8540ef83431d",
        "59c6963426bf96ce4fb30eed3b1c96054818f3b0b8294c2a644a61fa59cdb5a9",
        "5e5fb414cd19097291f29f237630ca55e2464cae8a57399790b29dac57a7498a",
        "61545b28d72bd07b10671707dc6b1c6cbdf1565b33134d00d8d45b712b41bfc3",
        "6481bf9be4cdc977ff9d67e84c0950e816bd3000a64a32c4530e88beb3ca892c",
        "75f53042ac6bf5b65fcc5dba625e167684e33aef7b1978cf39f6f4871cd80b5d",
        "78af0f79d2f779d7153fe59a8bbc42e834d5e3e9aef1cdb82c4ff8dc6ccccf69",
        "7d288e75e1a107b3fcee70819ef94da470c8ef1f8170162aee62c32c2922f386",
        "8019bc820b00c38fc40d8a34ac7e7986fd025c4e93852919fa28d63c8d4eb7d2",
        "94f268e5bc8b80ab3b1a95cb906b57a55e13ef0031ce1c3011423f32c1012138",
        "96772f448fd8aec4f222dd15bb357f07b0fbd098f128afafe12a9e645dac4e44",
        "a27b015fb0b43424b4984ee08b5756a7c5a7e36798cab219364352caedb80379",
        "a4c8e2d9be606cc7b47131a32dacfd721088682e1ba930570ccdc75a88d15395",
        "a50a85b4468838c63ff8076a7c7a2c58215a38bd21860df7780a9ce93a3dcd87",
        "a58791b1ceb6b88b97c9bce3a2a651ff14c138c20e9763ba864aa1646fc9573d",
        "a8222511d5d3d7c297d79369733f8e5c35fad6d67154b34ae5feeed4e2f20571",
        "a9b15f031701f62626d374c92bcac15ac65b8b1438f6da19af2086252f0b2c86",
        "af8dcbbc0ae36e0a7f7c826a7176f2646bf1d6552e6fe791cb5f11052790fe39",
        "b3f69cd153e6db93c7b5b3272e1f7789452dc3d3f7015ab5cd6be589243ed872",
        "bb45c29c962d4d0e3cc3aab36cf773cce8dff8c46faacce01152226db8383366",
        "c1e43fea1369f4a34c7e3bc196a8e88ce4d1881b362095f8b64246e2f6ed6cc3",
        "d0d559d0e990cd30b67f55b5c54e7de6a71085d3047d186455fc85b3d5a5490f",
        "d16a20fbcbae721da9209b01c3463a145fc41e420e70f2c7e5da382fe11639bb",
        "d49974420813633fd45d9ea8b080ede1947e45c61ca2e97e80e252124a6971d6",
        "ddfc9d11fa7ef57dbbbd9f90ca0c18c6fc224ecabb3ca40692ce254eb81fce2f",
        "e4fc63e6a1c0d9d81cef67e19d3287b3955412d19f407d1773c5516897941db7",
        "f1690d438681cea72ae98d1ae0b5cb3b27549acc62d189c2c022846d7215b2b3",
        "f7e962fa45d1fbad34ee491fe8a6612a82d721edca2e5632c42a363e62c3a2aa",
        "fc1d0b48824f487aaeeb0bdc67a066b41b9ca280737a69b4746c2323561b83bd",
        "fd5e785e9d3e7623b940322f823ae8136289bcbf1ffc1fc3197fa29876a79f17",
    }
)


def refuse_test_prime(p: int) -> None:
    """Raise if `p` is one of the published test primes; production key generation calls this."""
    if fingerprint(p) in TEST_PRIME_FINGERPRINTS:
        raise TestPrimeRefused("a published TEST ONLY prime reached a production path")
