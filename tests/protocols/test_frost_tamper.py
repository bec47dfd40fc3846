"""A malicious party (through run_parties' tamper hook) is named, with the right check, every time."""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import pytest
from nacl import bindings as nacl

from mpc_ray.crypto import ed25519 as ed
from mpc_ray.crypto.frost_suites import SUITES
from mpc_ray.errors import ProtocolAbort
from mpc_ray.protocols import wire
from mpc_ray.protocols.frost import SignParty, commit
from mpc_ray.protocols.frost.messages import CommitmentMsg, DkgCommitMsg, DkgEchoMsg, DkgShareMsg, ShareMsg
from mpc_ray.sim.router import run_parties
from tests.support.frost import replace_payload, run_dkg, sign_parties, tamper_msg

SUITE_KEYS = ["eddsa-ed25519", "schnorr-bip340"]
T8 = bytes.fromhex("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a")  # order 8
SMALL_ORDER = {
    "identity": ed.IDENTITY_BYTES,
    "order2": bytes.fromhex("ec" + "ff" * 30 + "7f"),
    "order4": bytes(32),
    "order8": T8,
}


@pytest.fixture(scope="module")
def keys() -> dict[str, Any]:
    return {k: run_dkg(k, 3, 2, sid=b"tamper-keys-" + k.encode()) for k in SUITE_KEYS}


def expect_abort(fn: Callable[[], Any], culprit: int, check: str) -> ProtocolAbort:
    with pytest.raises(ProtocolAbort) as exc:
        fn()
    assert exc.value.culprit == culprit, str(exc.value)
    assert exc.value.check == check, str(exc.value)
    assert exc.value.reporter not in (None, culprit)
    return exc.value


def sign_run(outs: Any, tamper: Any, signers: tuple[int, ...] = (1, 2, 3), msg: bytes = b"tamper") -> Any:
    return lambda: run_parties(sign_parties(outs, list(signers), msg), tamper)


def non_canonical(suite_key: str, value: int) -> bytes:
    """An encoding of value + order (same residue, refused by canonical decoding)."""
    g = SUITES[suite_key].group
    big = value + g.order
    if big >= 1 << 256:
        big = g.order  # still >= order
    return big.to_bytes(32, "little" if suite_key == "eddsa-ed25519" else "big")


def other_point(suite_key: str) -> bytes:
    g = SUITES[suite_key].group
    return g.serialize_element(g.base_mul(424242))


# signing ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("suite_key", SUITE_KEYS)
def test_wrong_share(keys: Any, suite_key: str) -> None:
    g = SUITES[suite_key].group

    def bump(m: ShareMsg) -> ShareMsg:
        return dataclasses.replace(m, share=g.serialize_scalar(g.deserialize_scalar(m.share) + 1))

    err = expect_abort(sign_run(keys[suite_key], tamper_msg(2, 2, ShareMsg, bump)), 2, "frost.sign.share")
    assert "does not verify" in err.detail


@pytest.mark.parametrize("suite_key", SUITE_KEYS)
def test_non_canonical_share(keys: Any, suite_key: str) -> None:
    g = SUITES[suite_key].group

    def overflow(m: ShareMsg) -> ShareMsg:
        return dataclasses.replace(m, share=non_canonical(suite_key, g.deserialize_scalar(m.share)))

    expect_abort(sign_run(keys[suite_key], tamper_msg(3, 2, ShareMsg, overflow)), 3, "frost.sign.share")


def test_abort_message_carries_no_secret(keys: Any) -> None:
    g = SUITES["eddsa-ed25519"].group
    seen: list[bytes] = []

    def bump(m: ShareMsg) -> ShareMsg:
        seen.append(m.share)
        return dataclasses.replace(m, share=g.serialize_scalar(g.deserialize_scalar(m.share) + 1))

    err = expect_abort(sign_run(keys["eddsa-ed25519"], tamper_msg(1, 2, ShareMsg, bump)), 1, "frost.sign.share")
    text = str(err) + repr(err.args)
    for o in keys["eddsa-ed25519"].values():
        assert str(o.key_package.signing_share) not in text
        assert g.serialize_scalar(o.key_package.signing_share).hex() not in text
    assert seen and seen[0].hex() not in text


@pytest.mark.parametrize("kind", list(SMALL_ORDER) + ["mixed_order", "non_canonical", "off_curve", "short"])
@pytest.mark.parametrize("field", ["hiding", "binding"])
def test_bad_commitment_point_ed25519(keys: Any, kind: str, field: str) -> None:
    if kind in SMALL_ORDER:
        bad = SMALL_ORDER[kind]
    elif kind == "mixed_order":  # prime-order point plus a torsion component: on the curve, wrong subgroup
        bad = nacl.crypto_core_ed25519_add(ed.B.to_bytes(), T8)
    elif kind == "non_canonical":  # y = p + 3 >= p
        bad = (ed.FIELD_P + 3).to_bytes(32, "little")
    elif kind == "off_curve":
        y = 2
        while True:  # the first y with no x on the curve
            cand = y.to_bytes(32, "little")
            if not nacl.crypto_core_ed25519_is_valid_point(cand):
                try:
                    nacl.crypto_core_ed25519_add(cand, ed.B.to_bytes())
                except RuntimeError:  # libsodium: not on the curve
                    bad = cand
                    break
            y += 1
    else:
        bad = b"\x01" * 31
    hook = tamper_msg(2, 1, CommitmentMsg, lambda m: dataclasses.replace(m, **{field: bad}))
    expect_abort(sign_run(keys["eddsa-ed25519"], hook), 2, "frost.sign.commitment_point")


@pytest.mark.parametrize(
    "bad",
    [bytes(33), b"\x04" + bytes(range(32)), b"\x02" + b"\xff" * 32, b"\x02" + (7).to_bytes(32, "big")],
    ids=["identity", "bad-prefix", "x-not-field", "x-off-curve"],
)
def test_bad_commitment_point_secp256k1(keys: Any, bad: bytes) -> None:
    hook = tamper_msg(3, 1, CommitmentMsg, lambda m: dataclasses.replace(m, binding=bad))
    expect_abort(sign_run(keys["schnorr-bip340"], hook), 3, "frost.sign.commitment_point")


@pytest.mark.parametrize("suite_key", SUITE_KEYS)
def test_identifier_claims_another_party(keys: Any, suite_key: str) -> None:
    hook = tamper_msg(3, 1, CommitmentMsg, lambda m: dataclasses.replace(m, identifier=1))
    expect_abort(sign_run(keys[suite_key], hook), 3, "frost.sign.identifier")
    hook2 = tamper_msg(2, 2, ShareMsg, lambda m: dataclasses.replace(m, identifier=3))
    expect_abort(sign_run(keys[suite_key], hook2), 2, "frost.sign.identifier")


@pytest.mark.parametrize("suite_key", SUITE_KEYS)
def test_commitment_list_out_of_order(keys: Any, suite_key: str) -> None:
    hook = tamper_msg(2, 2, ShareMsg, lambda m: dataclasses.replace(m, commitments=m.commitments[::-1]))
    expect_abort(sign_run(keys[suite_key], hook), 2, "frost.sign.commitment_list")


@pytest.mark.parametrize("suite_key", SUITE_KEYS)
def test_commitment_list_duplicate_identifier(keys: Any, suite_key: str) -> None:
    def dup(m: ShareMsg) -> ShareMsg:
        c = list(m.commitments)
        c[1] = dataclasses.replace(c[1], identifier=c[0].identifier)
        return dataclasses.replace(m, commitments=c)

    expect_abort(sign_run(keys[suite_key], tamper_msg(3, 2, ShareMsg, dup)), 3, "frost.sign.commitment_list")

    def missing(m: ShareMsg) -> ShareMsg:
        return dataclasses.replace(m, commitments=m.commitments[:-1])

    expect_abort(sign_run(keys[suite_key], tamper_msg(1, 2, ShareMsg, missing)), 1, "frost.sign.commitment_list")


@pytest.mark.parametrize("suite_key", SUITE_KEYS)
def test_echo_of_other_commitments(keys: Any, suite_key: str) -> None:
    def swap(m: ShareMsg) -> ShareMsg:
        c = list(m.commitments)
        c[2] = dataclasses.replace(c[2], hiding=other_point(suite_key))
        return dataclasses.replace(m, commitments=c)

    expect_abort(sign_run(keys[suite_key], tamper_msg(1, 2, ShareMsg, swap)), 1, "frost.sign.echo")


def test_different_message(keys: Any) -> None:
    outs = keys["eddsa-ed25519"]
    pub = outs[1].public_package
    # Party 3 was handed another message (a faulty coordinator or party): the others name it.
    parties = {i: SignParty(pub.suite, outs[i].key_package, pub, b"agreed", b"x", [1, 2, 3]) for i in (1, 2)}
    parties[3] = SignParty(pub.suite, outs[3].key_package, pub, b"something else", b"x", [1, 2, 3])
    expect_abort(lambda: run_parties(parties), 3, "frost.sign.message")


@pytest.mark.parametrize("suite_key", SUITE_KEYS)
@pytest.mark.parametrize("round_", [1, 2])
def test_garbage_bytes_sign(keys: Any, suite_key: str, round_: int) -> None:
    for payload in (b"\xc1\xc1garbage", wire.encode(DkgEchoMsg(b"wrong type")), b""):
        expect_abort(sign_run(keys[suite_key], replace_payload(2, round_, payload)), 2, "frost.decode")


@pytest.mark.parametrize("suite_key", SUITE_KEYS)
def test_reused_nonce(keys: Any, suite_key: str) -> None:
    """A buggy pool hands one precomputed nonce pair to two sessions: the second use is refused, by name."""
    outs = keys[suite_key]
    pub = outs[1].public_package
    suite = pub.suite
    pooled = commit(suite, 1, outs[1].key_package.signing_share)

    def session(sid: bytes, msg: bytes) -> dict[int, SignParty]:
        p = {i: SignParty(suite, outs[i].key_package, pub, msg, sid, [1, 2]) for i in (2,)}
        p[1] = SignParty(suite, outs[1].key_package, pub, msg, sid, [1, 2], nonces=pooled)
        return p

    first, second = session(b"s1", b"message one"), session(b"s2", b"message two")
    run_parties(first)
    assert pooled.used and "redacted" in repr(pooled)
    with pytest.raises(ProtocolAbort) as exc:
        run_parties(second)
    # The faulty party stops itself before any share made with the spent pair can leave it.
    assert (exc.value.culprit, exc.value.check, exc.value.reporter) == (1, "frost.sign.nonce_reuse", 1)


# DKG --------------------------------------------------------------------------------------------------------
def dkg_run(suite_key: str, tamper: Any, n: int = 3, t: int = 2) -> Callable[[], Any]:
    return lambda: run_dkg(suite_key, n, t, sid=b"tamper-dkg", tamper=tamper)


@pytest.mark.parametrize("suite_key", SUITE_KEYS)
def test_dkg_bad_share(keys: Any, suite_key: str) -> None:
    g = SUITES[suite_key].group

    def bump(m: DkgShareMsg) -> DkgShareMsg:
        return DkgShareMsg(g.serialize_scalar(g.deserialize_scalar(m.share) + 1))

    expect_abort(
        dkg_run(suite_key, tamper_msg(2, 2, DkgShareMsg, bump, direct=True, recipient=3)), 2, "frost.dkg.share"
    )

    def overflow(m: DkgShareMsg) -> DkgShareMsg:
        return DkgShareMsg(non_canonical(suite_key, g.deserialize_scalar(m.share)))

    expect_abort(dkg_run(suite_key, tamper_msg(1, 2, DkgShareMsg, overflow, direct=True)), 1, "frost.dkg.share")


@pytest.mark.parametrize("suite_key", SUITE_KEYS)
def test_dkg_bad_pok(keys: Any, suite_key: str) -> None:
    g = SUITES[suite_key].group

    def bump_z(m: DkgCommitMsg) -> DkgCommitMsg:
        return dataclasses.replace(m, pok_z=g.serialize_scalar(g.deserialize_scalar(m.pok_z) + 1))

    expect_abort(dkg_run(suite_key, tamper_msg(2, 1, DkgCommitMsg, bump_z)), 2, "frost.dkg.pok")
    expect_abort(
        dkg_run(
            suite_key, tamper_msg(3, 1, DkgCommitMsg, lambda m: dataclasses.replace(m, pok_r=other_point(suite_key)))
        ),
        3,
        "frost.dkg.pok",
    )
    expect_abort(
        dkg_run(
            suite_key,
            tamper_msg(1, 1, DkgCommitMsg, lambda m: dataclasses.replace(m, pok_z=non_canonical(suite_key, 5))),
        ),
        1,
        "frost.dkg.pok",
    )
    # A commitment whose constant term was swapped (e.g. to cancel someone's key) no longer matches the proof.
    expect_abort(
        dkg_run(
            suite_key,
            tamper_msg(
                2,
                1,
                DkgCommitMsg,
                lambda m: dataclasses.replace(m, commitments=[other_point(suite_key), *m.commitments[1:]]),
            ),
        ),
        2,
        "frost.dkg.pok",
    )


@pytest.mark.parametrize("suite_key", SUITE_KEYS)
def test_dkg_copied_round1_is_refused(keys: Any, suite_key: str) -> None:
    """Party 3 replays party 1's commitments and proof as its own: the proof is bound to the identifier."""
    stash: dict[str, Any] = {}

    def hook(env: Any) -> Any:
        if env.round == 1 and env.sender == 1:
            stash["m"] = wire.decode(env.payload, DkgCommitMsg)
        return env

    def copy(env: Any) -> Any:
        env = hook(env)
        if env.round == 1 and env.sender == 3 and "m" in stash:
            return dataclasses.replace(env, payload=wire.encode(dataclasses.replace(stash["m"], identifier=3)))
        return env

    expect_abort(dkg_run(suite_key, copy), 3, "frost.dkg.pok")


@pytest.mark.parametrize("suite_key", SUITE_KEYS)
def test_dkg_wrong_echo(keys: Any, suite_key: str) -> None:
    hook = tamper_msg(3, 2, DkgEchoMsg, lambda m: DkgEchoMsg(bytes(32)))
    expect_abort(dkg_run(suite_key, hook), 3, "frost.dkg.echo")


@pytest.mark.parametrize("suite_key", SUITE_KEYS)
def test_dkg_commitment_count_and_points(keys: Any, suite_key: str) -> None:
    expect_abort(
        dkg_run(
            suite_key, tamper_msg(2, 1, DkgCommitMsg, lambda m: dataclasses.replace(m, commitments=m.commitments[:-1]))
        ),
        2,
        "frost.dkg.commitment_count",
    )
    expect_abort(
        dkg_run(
            suite_key,
            tamper_msg(
                2,
                1,
                DkgCommitMsg,
                lambda m: dataclasses.replace(m, commitments=[*m.commitments, other_point(suite_key)]),
            ),
        ),
        2,
        "frost.dkg.commitment_count",
    )
    identity = ed.IDENTITY_BYTES if suite_key == "eddsa-ed25519" else bytes(33)
    expect_abort(
        dkg_run(
            suite_key,
            tamper_msg(1, 1, DkgCommitMsg, lambda m: dataclasses.replace(m, commitments=[m.commitments[0], identity])),
        ),
        1,
        "frost.dkg.commitment_point",
    )
    if suite_key == "eddsa-ed25519":
        expect_abort(
            dkg_run(suite_key, tamper_msg(1, 1, DkgCommitMsg, lambda m: dataclasses.replace(m, pok_r=T8))),
            1,
            "frost.dkg.pok",
        )


@pytest.mark.parametrize("suite_key", SUITE_KEYS)
def test_dkg_identifier(keys: Any, suite_key: str) -> None:
    hook = tamper_msg(2, 1, DkgCommitMsg, lambda m: dataclasses.replace(m, identifier=1))
    expect_abort(dkg_run(suite_key, hook), 2, "frost.dkg.identifier")


@pytest.mark.parametrize("suite_key", SUITE_KEYS)
@pytest.mark.parametrize("round_", [1, 2])
def test_dkg_garbage_bytes(keys: Any, suite_key: str, round_: int) -> None:
    expect_abort(dkg_run(suite_key, replace_payload(3, round_, b"\x93\x01\x02garbage")), 3, "frost.decode")


def test_dkg_pok_bound_to_session() -> None:
    from mpc_ray.protocols.frost.dkg import prove_knowledge, verify_knowledge

    for suite in SUITES.values():
        g = suite.group
        a0 = g.random_scalar()
        c0 = g.base_mul(a0)
        r, mu = prove_knowledge(suite, b"session-A", 1, a0, c0)
        assert verify_knowledge(suite, b"session-A", 1, c0, r, mu)
        assert not verify_knowledge(suite, b"session-B", 1, c0, r, mu)  # no replay into another run
        assert not verify_knowledge(suite, b"session-A", 2, c0, r, mu)  # nor under another identifier
