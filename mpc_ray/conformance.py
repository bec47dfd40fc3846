"""Conformance runners against published test vectors.

    python -m mpc_ray.conformance frost VECTOR.json [--suite eddsa-ed25519|schnorr-bip340|frost-secp256k1]

reads a FROST vector file in the RFC 9591 Appendix E / ZcashFoundation JSON layout, recomputes every
intermediate value from the given secret, shares and nonce randomness (group key, shares, nonces, commitments,
binding factor inputs and factors, signature shares, signature), compares each with the file, and prints PASS or
the first value that differs. Exit status: 0 pass, 1 a value differs, 2 unusable file or arguments.

The suite comes from config.group; secp256k1 files with a 64-byte signature are taken as the BIP340 (Taproot)
variant, since ZcashFoundation's frost-secp256k1-tr vectors carry the same config.name as the RFC suite.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Sequence

from .crypto.frost_suites import (
    ED25519_SHA512,
    SECP256K1_SHA256,
    SECP256K1_TR,
    Ciphersuite,
    SecretPolynomial,
    get_suite,
)
from .errors import MpcError
from .protocols.frost.keys import KeyPackage
from .protocols.frost.signing import (
    aggregate,
    binding_factor_inputs,
    commit,
    prepare,
    sign,
)


class VectorMismatch(Exception):
    """A recomputed value differs from the vector file (or an input cannot be used)."""

    def __init__(self, field: str, expected: str, got: str) -> None:
        self.checked = 0  # values that matched before this one (set by the checker)
        self.field = field
        self.expected = expected
        self.got = got
        super().__init__(f"{field}: expected {expected}, got {got}")


class VectorError(Exception):
    """The file is not a usable vector file (missing fields, unknown group)."""


def candidate_suites(data: dict[str, Any]) -> list[Ciphersuite]:
    """Suites a file may belong to, most likely first (config.name does not tell secp256k1 from its TR variant)."""
    try:
        group = str(data["config"]["group"]).lower()
    except (KeyError, TypeError):
        raise VectorError("config.group missing") from None
    if group in ("ed25519", "edwards25519"):
        return [ED25519_SHA512]
    if group == "secp256k1":
        sig = str(data.get("final_output", {}).get("sig", ""))
        name = str(data["config"].get("name", "")).upper()
        if len(sig) == 128 or "TR" in name or "BIP340" in name:
            return [SECP256K1_TR, SECP256K1_SHA256]
        return [SECP256K1_SHA256, SECP256K1_TR]
    raise VectorError(f"unsupported group {group!r}")


def _get(obj: Any, path: str) -> Any:
    cur = obj
    for part in path.split("."):
        if not isinstance(cur, dict) or part not in cur:
            raise VectorError(f"{path} missing")
        cur = cur[part]
    return cur


def _bytes(value: Any, field: str) -> bytes:
    try:
        return bytes.fromhex(str(value))
    except ValueError:
        raise VectorMismatch(field, "hex", repr(value)) from None


class _Checker:
    def __init__(self) -> None:
        self.count = 0

    def eq(self, field: str, expected: Any, got: bytes) -> None:
        self.count += 1
        exp = str(expected).lower()
        if exp != got.hex():
            raise VectorMismatch(field, exp, got.hex())


def check_frost_vector(data: dict[str, Any], suite: Ciphersuite | str | None = None) -> tuple[Ciphersuite, int]:
    """Recompute and compare every value under `suite` (or each candidate suite until one passes).

    Returns (suite, number of values that matched); raises VectorMismatch at the first value that differs
    (for auto-detection: of the candidate that got furthest), VectorError when the file lacks what is needed."""
    suites = candidate_suites(data) if suite is None else [get_suite(suite)]
    best: VectorMismatch | None = None
    for s in suites:
        chk = _Checker()
        try:
            return s, _check(data, s, chk)
        except VectorMismatch as exc:
            exc.checked = chk.count - 1
            if best is None or exc.checked > best.checked:
                best = exc
    assert best is not None
    raise best


def _check(data: dict[str, Any], suite: Ciphersuite, chk: "_Checker") -> int:
    g = suite.group

    def scalar_in(path: str) -> int:
        raw = _bytes(_get(data, path), path)
        try:
            return g.deserialize_scalar(raw)
        except ValueError as exc:
            raise VectorMismatch(path, "a canonical scalar", str(exc)) from None

    inputs = _get(data, "inputs")
    secret = scalar_in("inputs.group_secret_key")
    group_key = g.base_mul(secret)
    pk_field = "group_public_key" if "group_public_key" in inputs else "verifying_key_key"
    chk.eq(f"inputs.{pk_field}", _get(data, f"inputs.{pk_field}"), g.serialize_element(group_key))

    coeff_hex = _get(data, "inputs.share_polynomial_coefficients")
    coeffs = []
    for k, c in enumerate(coeff_hex):
        field = f"inputs.share_polynomial_coefficients[{k}]"
        try:
            coeffs.append(g.deserialize_scalar(_bytes(c, field)))
        except ValueError as exc:
            raise VectorMismatch(field, "a canonical scalar", str(exc)) from None
    threshold = len(coeffs) + 1
    min_p = int(_get(data, "config.MIN_PARTICIPANTS"))
    if min_p != threshold:
        raise VectorMismatch("config.MIN_PARTICIPANTS", str(threshold), str(min_p))
    poly = SecretPolynomial(g.order, [secret, *coeffs])

    # Shares: recompute f(i) and keep the given ones for signing.
    shares: dict[int, int] = {}
    for k, entry in enumerate(_get(data, "inputs.participant_shares")):
        field = f"inputs.participant_shares[{k}].participant_share"
        ident = int(entry["identifier"])
        chk.eq(field, entry["participant_share"], g.serialize_scalar(poly(ident)))
        shares[ident] = g.deserialize_scalar(_bytes(entry["participant_share"], field))
    poly.wipe()

    msg = _bytes(_get(data, "inputs.message"), "inputs.message")
    participants = [int(i) for i in _get(data, "inputs.participant_list")]
    r1 = _get(data, "round_one_outputs.outputs")
    if [int(o["identifier"]) for o in r1] != participants:
        raise VectorMismatch(
            "round_one_outputs.outputs[*].identifier", str(participants), str([int(o["identifier"]) for o in r1])
        )

    nonces = {}
    for k, out in enumerate(r1):
        base = f"round_one_outputs.outputs[{k}]"
        ident = int(out["identifier"])
        if ident not in shares:
            raise VectorError(f"{base}: no share for participant {ident}")
        n = commit(
            suite,
            ident,
            shares[ident],
            hiding_randomness=_bytes(out["hiding_nonce_randomness"], f"{base}.hiding_nonce_randomness"),
            binding_randomness=_bytes(out["binding_nonce_randomness"], f"{base}.binding_nonce_randomness"),
        )
        d, e = n.peek()
        chk.eq(f"{base}.hiding_nonce", out["hiding_nonce"], g.serialize_scalar(d))
        chk.eq(f"{base}.binding_nonce", out["binding_nonce"], g.serialize_scalar(e))
        chk.eq(
            f"{base}.hiding_nonce_commitment", out["hiding_nonce_commitment"], g.serialize_element(n.commitments.hiding)
        )
        chk.eq(
            f"{base}.binding_nonce_commitment",
            out["binding_nonce_commitment"],
            g.serialize_element(n.commitments.binding),
        )
        nonces[ident] = n

    commitments = sorted((n.commitments for n in nonces.values()), key=lambda c: c.identifier)
    session = prepare(suite, group_key, commitments, msg)
    rho_inputs = binding_factor_inputs(suite, session.group_key, commitments, msg)
    for k, out in enumerate(r1):
        base = f"round_one_outputs.outputs[{k}]"
        ident = int(out["identifier"])
        if "binding_factor_input" in out:
            chk.eq(f"{base}.binding_factor_input", out["binding_factor_input"], rho_inputs[ident])
        chk.eq(f"{base}.binding_factor", out["binding_factor"], g.serialize_scalar(session.binding_factors[ident]))

    verifying = {i: g.base_mul(s) for i, s in shares.items()}
    sig_shares: dict[int, int] = {}
    for k, out in enumerate(_get(data, "round_two_outputs.outputs")):
        base = f"round_two_outputs.outputs[{k}]"
        ident = int(out["identifier"])
        if ident not in nonces:
            raise VectorError(f"{base}: participant {ident} has no round-one output")
        key = KeyPackage(suite.key, ident, shares[ident], verifying[ident], group_key, threshold)
        z = sign(suite, key, nonces[ident], msg, session)
        chk.eq(f"{base}.sig_share", out["sig_share"], g.serialize_scalar(z))
        sig_shares[ident] = z

    try:
        sig = aggregate(suite, session, msg, group_key, sig_shares, verifying)
    except MpcError as exc:
        raise VectorMismatch("final_output.sig", str(_get(data, "final_output.sig")), f"<no valid signature: {exc}>")
    expected_sig = str(_get(data, "final_output.sig"))
    sig_bytes = sig.to_bytes()
    if suite is SECP256K1_TR and len(expected_sig) == 130:
        sig_bytes = b"\x02" + sig_bytes  # older ZcashFoundation files write R compressed (always even Y)
    chk.eq("final_output.sig", expected_sig, sig_bytes)
    _independent_verify(suite, group_key, msg, sig.to_bytes())
    chk.count += 1
    return chk.count


def _independent_verify(suite: Ciphersuite, group_key: Any, msg: bytes, sig: bytes) -> None:
    """Check the signature with a verifier that shares no code with ours (libsodium / libsecp256k1)."""
    if suite is ED25519_SHA512:
        from nacl.exceptions import BadSignatureError
        from nacl.signing import VerifyKey

        try:
            VerifyKey(group_key.to_bytes()).verify(msg, sig)
        except BadSignatureError:
            raise VectorMismatch("final_output.sig", "valid under RFC 8032 (libsodium)", "rejected") from None
    elif suite is SECP256K1_TR:
        import coincurve

        if not coincurve.PublicKeyXOnly(group_key.to_bytes()[1:]).verify(sig, msg):
            raise VectorMismatch("final_output.sig", "valid under BIP340 (libsecp256k1)", "rejected")


def _frost_command(args: argparse.Namespace) -> int:
    path = Path(args.vector)
    try:
        data = json.loads(path.read_text())
        if not isinstance(data, dict):
            raise VectorError("top level is not an object")
        suite, count = check_frost_vector(data, args.suite)
    except VectorMismatch as exc:
        print(f"FAIL {path.name}: {exc.field}")
        print(f"  expected {exc.expected}")
        print(f"  got      {exc.got}")
        return 1
    except (OSError, ValueError, VectorError, MpcError, KeyError, TypeError) as exc:
        print(f"ERROR {path.name}: {type(exc).__name__}: {exc}")
        return 2
    print(f"PASS {path.name}: {suite.name}, {count} values match")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mpc_ray.conformance", description="Check published test vectors.")
    sub = parser.add_subparsers(dest="command", required=True)
    frost = sub.add_parser("frost", help="check a FROST (RFC 9591 / ZcashFoundation layout) vector file")
    frost.add_argument("vector", help="path to the JSON vector file")
    frost.add_argument("--suite", default=None, help="eddsa-ed25519, schnorr-bip340 or frost-secp256k1")
    args = parser.parse_args(argv)
    if args.command == "frost":
        return _frost_command(args)
    return 2  # pragma: no cover - argparse rejects unknown commands


if __name__ == "__main__":
    sys.exit(main())
