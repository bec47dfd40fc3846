"""RFC 9591 Appendix E and the BIP340 variant vectors, reproduced step by step; the conformance CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import coincurve
import pytest
from nacl.signing import VerifyKey

from mpc_ray.conformance import VectorMismatch, check_frost_vector
from mpc_ray.crypto.frost_suites import (
    ED25519_SHA512,
    SECP256K1_SHA256,
    SECP256K1_TR,
    Ciphersuite,
    SecretPolynomial,
)
from mpc_ray.protocols.frost import (
    KeyPackage,
    aggregate,
    commit,
    compute_binding_factors,
    compute_challenge,
    compute_group_commitment,
    sign,
    split_secret,
    verify_signature,
    verify_signature_share,
)
from mpc_ray.protocols.frost.signing import binding_factor_inputs

VECTORS = Path(__file__).resolve().parents[1] / "vectors"
ROOT = Path(__file__).resolve().parents[2]
CASES = [
    ("rfc9591_frost_ed25519_sha512.json", ED25519_SHA512),
    ("rfc9591_frost_secp256k1_sha256.json", SECP256K1_SHA256),
    ("frost_secp256k1_tr_bip340.json", SECP256K1_TR),
]


def load(name: str) -> dict:
    return json.loads((VECTORS / name).read_text())


def h(x: str) -> bytes:
    return bytes.fromhex(x)


@pytest.mark.parametrize("name,suite", CASES, ids=[c[0] for c in CASES])
def test_vector_step_by_step(name: str, suite: Ciphersuite) -> None:
    v = load(name)
    g = suite.group
    inp = v["inputs"]
    secret = g.deserialize_scalar(h(inp["group_secret_key"]))
    group_key = g.base_mul(secret)
    pk_hex = inp.get("group_public_key", inp.get("verifying_key_key"))
    assert g.serialize_element(group_key).hex() == pk_hex

    # Key generation (trusted dealer with the given coefficients) reproduces every share.
    coeffs = [g.deserialize_scalar(h(c)) for c in inp["share_polynomial_coefficients"]]
    t = int(v["config"]["MIN_PARTICIPANTS"])
    n = int(v["config"]["MAX_PARTICIPANTS"])
    keys, pub = split_secret(suite, secret, t, n, coefficients=coeffs)
    for entry in inp["participant_shares"]:
        assert g.serialize_scalar(keys[entry["identifier"]].signing_share).hex() == entry["participant_share"]
    assert pub.group_key == group_key
    poly = SecretPolynomial(g.order, [secret, *coeffs])
    assert poly(0) == secret and "redacted" in repr(poly)

    # Round one: nonces from the given randomness, commitments.
    msg = h(inp["message"])
    nonces = {}
    for out in v["round_one_outputs"]["outputs"]:
        i = out["identifier"]
        n_i = commit(
            suite,
            i,
            keys[i].signing_share,
            hiding_randomness=h(out["hiding_nonce_randomness"]),
            binding_randomness=h(out["binding_nonce_randomness"]),
        )
        d, e = n_i.peek()
        assert g.serialize_scalar(d).hex() == out["hiding_nonce"]
        assert g.serialize_scalar(e).hex() == out["binding_nonce"]
        assert g.serialize_element(n_i.commitments.hiding).hex() == out["hiding_nonce_commitment"]
        assert g.serialize_element(n_i.commitments.binding).hex() == out["binding_nonce_commitment"]
        nonces[i] = n_i
    commitments = [nonces[i].commitments for i in sorted(nonces)]

    # Binding factors (the TR key has even Y, so the adjusted key is the key itself).
    y = suite.key_adjust(group_key).point(g, group_key)
    inputs = binding_factor_inputs(suite, y, commitments, msg)
    rho = compute_binding_factors(suite, y, commitments, msg)
    for out in v["round_one_outputs"]["outputs"]:
        assert inputs[out["identifier"]].hex() == out["binding_factor_input"]
        assert g.serialize_scalar(rho[out["identifier"]]).hex() == out["binding_factor"]
    r = compute_group_commitment(suite, commitments, rho)
    c = compute_challenge(suite, r, y, msg)
    assert 0 < c < g.order

    # Round two: signature shares, each verifying on its own.
    shares = {}
    for out in v["round_two_outputs"]["outputs"]:
        i = out["identifier"]
        z = sign(suite, keys[i], nonces[i], msg, commitments)
        assert g.serialize_scalar(z).hex() == out["sig_share"]
        assert verify_signature_share(suite, i, pub.verifying_shares[i], z, commitments, group_key, msg)
        assert not verify_signature_share(
            suite, i, pub.verifying_shares[i], (z + 1) % g.order, commitments, group_key, msg
        )
        shares[i] = z

    sig = aggregate(suite, commitments, msg, group_key, shares, pub.verifying_shares).to_bytes()
    assert sig.hex() == v["final_output"]["sig"]
    assert verify_signature(suite, group_key, msg, sig)
    assert not verify_signature(suite, group_key, msg + b"!", sig)
    # Independent verifiers.
    if suite is ED25519_SHA512:
        VerifyKey(group_key.to_bytes()).verify(msg, sig)
    if suite is SECP256K1_TR:
        assert coincurve.PublicKeyXOnly(group_key.to_bytes()[1:]).verify(sig, msg)


def test_tr_vector_has_odd_group_commitment() -> None:
    """The BIP340 vector exercises the nonce negation (R with odd Y)."""
    from mpc_ray.crypto.secp256k1 import Point
    from mpc_ray.protocols.frost import SigningCommitments, prepare

    v = load("frost_secp256k1_tr_bip340.json")
    y = Point.from_bytes(h(v["inputs"]["verifying_key_key"]))
    cs = [
        SigningCommitments(
            o["identifier"],
            Point.from_bytes(h(o["hiding_nonce_commitment"])),
            Point.from_bytes(h(o["binding_nonce_commitment"])),
        )
        for o in v["round_one_outputs"]["outputs"]
    ]
    assert prepare(SECP256K1_TR, y, cs, h(v["inputs"]["message"])).nonce_factor == -1


@pytest.mark.parametrize("name,suite", CASES, ids=[c[0] for c in CASES])
def test_conformance_function(name: str, suite: Ciphersuite) -> None:
    found, count = check_frost_vector(load(name))
    assert found is suite and count >= 20


def test_conformance_reports_first_difference() -> None:
    v = load("rfc9591_frost_ed25519_sha512.json")
    v["round_two_outputs"]["outputs"][1]["sig_share"] = "00" * 32
    with pytest.raises(VectorMismatch) as exc:
        check_frost_vector(v)
    assert exc.value.field == "round_two_outputs.outputs[1].sig_share"


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mpc_ray.conformance", *args],
        check=False,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_cli_pass_on_every_vector() -> None:
    for name, _ in CASES:
        res = run_cli("frost", str(VECTORS / name))
        assert res.returncode == 0, res.stdout + res.stderr
        assert res.stdout.startswith("PASS")


def test_cli_fail_on_one_changed_byte(tmp_path: Path) -> None:
    text = (VECTORS / "frost_secp256k1_tr_bip340.json").read_text()
    key = '"binding_nonce_commitment": "'
    at = text.index(key, text.index('"identifier": 3', text.index("round_one_outputs"))) + len(key) + 10
    changed = text[:at] + ("1" if text[at] != "1" else "2") + text[at + 1 :]
    bad = tmp_path / "tr_one_byte.json"
    bad.write_text(changed)
    res = run_cli("frost", str(bad))
    assert res.returncode == 1
    assert res.stdout.startswith("FAIL")
    assert "round_one_outputs.outputs[1].binding_nonce_commitment" in res.stdout


def test_cli_fail_on_changed_signature(tmp_path: Path) -> None:
    v = load("rfc9591_frost_ed25519_sha512.json")
    sig = bytearray(h(v["final_output"]["sig"]))
    sig[40] ^= 1
    v["final_output"]["sig"] = sig.hex()
    bad = tmp_path / "ed_sig.json"
    bad.write_text(json.dumps(v))
    res = run_cli("frost", str(bad))
    assert res.returncode == 1 and "final_output.sig" in res.stdout


def test_cli_errors(tmp_path: Path) -> None:
    assert run_cli("frost", str(tmp_path / "missing.json")).returncode == 2
    junk = tmp_path / "junk.json"
    junk.write_text("{not json")
    assert run_cli("frost", str(junk)).returncode == 2
    # Forcing the wrong suite is a FAIL at the first nonce, not a crash.
    res = run_cli("frost", str(VECTORS / "rfc9591_frost_secp256k1_sha256.json"), "--suite", "schnorr-bip340")
    assert res.returncode == 1 and "hiding_nonce" in res.stdout


def test_key_package_rebuilt_from_vector_is_redacted() -> None:
    v = load("rfc9591_frost_ed25519_sha512.json")
    g = ED25519_SHA512.group
    s = g.deserialize_scalar(h(v["inputs"]["participant_shares"][0]["participant_share"]))
    kp = KeyPackage(ED25519_SHA512.key, 1, s, g.base_mul(s), g.base_mul(s), 2)
    assert v["inputs"]["participant_shares"][0]["participant_share"] not in repr(kp)
    assert str(s) not in repr(kp)
