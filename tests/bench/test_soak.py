"""The soak with faults (benchmarks/soak.py): its checks on made-up records (fast), and a short soak on Ray (slow).

The short soak signs a few hundred signatures of every kind on an embedded 2-of-3 committee while a seeded schedule
removes and adds back party nodes and kills holders, presign workers and the coordinator; it then asserts what the
long run reports: no reuse, no loss, no wrong signature, no cap exceeded, no untyped error.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import coincurve
import nacl.signing
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import soak  # noqa: E402  (benchmarks/soak.py)


def _ecdsa(priv: coincurve.PrivateKey, i: int, nonce: bytes | None = None) -> soak.Sig:
    digest = hashlib.sha256(b"m%d" % i).digest()
    raw = priv.sign_recoverable(digest, hasher=None)[:64] if nonce is None else nonce + (1).to_bytes(32, "big")
    s = int.from_bytes(raw[32:], "big")
    if s > soak.SECP256K1_N // 2:  # low-s, as the committee returns
        raw = raw[:32] + (soak.SECP256K1_N - s).to_bytes(32, "big")
    return soak.Sig("ecdsa", priv.public_key.format(), digest, raw, ("msg", digest.hex()), 0.0, 1.0)


def test_independent_verification_refuses_a_wrong_signature():
    priv, ed = coincurve.PrivateKey(), nacl.signing.SigningKey.generate()
    good = [_ecdsa(priv, 1), soak.Sig("ed25519", bytes(ed.verify_key), b"hi", ed.sign(b"hi").signature,
                                      ("msg", "x"), 0, 1)]
    xonly = coincurve.PublicKeyXOnly.from_secret(priv.secret).format()
    good.append(soak.Sig("bip340", xonly, b"m" * 32, priv.sign_schnorr(b"m" * 32), ("msg", "y"), 0, 1))
    problems: list[str] = []
    assert soak.verify_all(good, problems) == 0 and problems == []
    flipped = [soak.Sig(s.kind, s.public_key, s.message + b"!", s.signature, s.ref, 0, 1) for s in good]
    high_s = _ecdsa(priv, 2)
    high_s.signature = high_s.signature[:32] + (soak.SECP256K1_N - int.from_bytes(high_s.signature[32:], "big")
                                                ).to_bytes(32, "big")  # valid, but not low-s: refused
    assert soak.verify_all([*flipped, high_s], problems) == 4


def test_a_repeated_nonce_point_is_a_reuse():
    priv = coincurve.PrivateKey()
    sigs = [_ecdsa(priv, i) for i in range(5)]
    assert soak.nonce_point_repeats(sigs) == {"ecdsa_r": 0, "ed25519_R": 0, "bip340_R": 0}
    r = sigs[0].signature[:32]
    assert soak.nonce_point_repeats(sigs + [_ecdsa(priv, 9, nonce=r)])["ecdsa_r"] == 1


def test_rolling_window_sums_count_only_what_was_signed_inside_the_window():
    def sig(t0: float, t1: float, spend: int) -> soak.Sig:
        return soak.Sig("agent_solana", b"", b"", b"", ("req", "r"), t0, t1, spend)

    # 3 + 3 within 10 s: over a cap of 5; the third ends after the window that starts at 0 closes
    sigs = [sig(0, 1, 3), sig(5, 6, 3), sig(9, 11, 3), sig(30, 31, 1)]
    worst, bad = soak.worst_window(sigs, 10, lambda s: s.spend, 5)
    assert (worst, bad) == (6, 2)  # windows starting at 0 (3 + 3) and at 5 (3 + 3)
    assert soak.worst_window(sigs, 10, lambda s: s.spend, 6) == (6, 0)


@pytest.mark.slow
@pytest.mark.ray
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_short_soak_with_faults_keeps_every_invariant():
    """400 signatures or more, through node removals, holder, presign-worker and coordinator kills (each kind at
    least once: the schedule draws the kinds from a shuffled bag), on one committee: each must-be-0 of the long soak
    must be 0 here too. A fifth of the agent requests ask above the per-transaction cap, so the nodes must refuse."""
    cfg = soak.SoakConfig(signatures=400, min_faults=4, seed=18, fault_every_s=1.5, node_down_s=(1.0, 3.0),
                          over_cap_share=0.2, rpc_share=0.0, final_share=0.0, stall_s=240.0)
    rep = soak.Soak(cfg, log=lambda s: None).run()
    soak.print_report(rep)
    assert rep["signatures_total"] >= 400
    assert all(rep["signatures"][k] > 0 for k in soak.KINDS), rep["signatures"]
    assert all(rep["faults"].get(k, 0) >= 1 for k in soak.PROCESS_FAULTS), rep["faults"]
    assert rep["must_be_zero"] == {"reuses": 0, "losses": 0, "wrong_signatures": 0, "cap_violations": 0,
                                   "untyped_errors": 0}, (rep["problems"], rep["untyped"])
    assert all(a["ok"] and a["records"] > 0 for a in rep["audit"].values()), rep["audit"]
    assert rep["policy_denials"], "the load never reached a cap: the cap check saw nothing"
