"""DKLs23 multiplication (random vector-OLE with its check), pairwise zero-sharing and the committee setup round
party. Tamper tests play a cheating Alice or Bob, or a party sending a bad setup message, and expect the named check
with the culprit."""

from __future__ import annotations

import dataclasses
import pickle
import secrets

import pytest

from mpc_ray.crypto.ot.base_ot import BaseOTMsg1, BaseOTMsg2, BaseOTMsg5
from mpc_ray.crypto.ot.kos import ExtensionMessage
from mpc_ray.crypto.secp256k1 import Q, Point, random_scalar
from mpc_ray.errors import InvalidInput, ProtocolAbort
from mpc_ray.protocols.base import Envelope
from mpc_ray.protocols.dkls23 import rvole
from mpc_ray.protocols.dkls23.rvole import ELL, RHO, XI, RVOLEReceiver, RVOLERequest, RVOLEResponse, rvole_respond
from mpc_ray.protocols.dkls23.setup import DKLs23Setup, SetupMsg1
from mpc_ray.protocols.dkls23.zero_share import ZeroSeeds
from mpc_ray.protocols.wire import decode, encode
from mpc_ray.sim import run_parties

PARTIES = (1, 2, 3)


def _setup(tamper=None, parties=PARTIES):
    sid = b"dkls23-setup:" + secrets.token_bytes(8)
    return run_parties({p: DKLs23Setup(sid, p, parties) for p in parties}, tamper)


@pytest.fixture(scope="module")
def committee():
    return _setup()


def _mul(committee, alice: int, bob: int, sid: bytes, a=None):
    """One multiplication through the wire: returns (a, b, c, d)."""
    a = a or [random_scalar() for _ in range(ELL)]
    rcv = RVOLEReceiver(committee[bob].pairs[alice].ote_receiver, sid)
    req = decode(encode(rcv.request()), RVOLERequest)
    resp, c = rvole_respond(committee[alice].pairs[bob].ote_sender, sid, a, req)
    d = rcv.finish(decode(encode(resp), RVOLEResponse))
    return a, rcv.b, c, d


@pytest.mark.parametrize("alice,bob", [(1, 2), (2, 1), (3, 1), (2, 3)])
def test_multiplication_shares_the_product(committee, alice, bob):
    a, b, c, d = _mul(committee, alice, bob, b"mul:" + secrets.token_bytes(8))
    assert 0 < b < Q
    assert all((c[i] + d[i]) % Q == a[i] * b % Q for i in range(ELL))
    _, b2, _, _ = _mul(committee, alice, bob, b"mul:" + secrets.token_bytes(8))
    assert b2 != b


def _cheating_alice(setup, sid, a, req, row, entry, offset):
    """Alice who uses a different correlation in one row (a selective-failure attempt on Bob's choice bit)."""
    ext = setup.extend(b"dkls23/rvole/" + sid, req.extension, XI)
    v0, v1 = ext.pads(ELL + RHO)
    alpha = list(a) + [random_scalar() for _ in range(RHO)]
    taus = []
    for j, (p0, p1) in enumerate(zip(v0, v1)):
        for k in range(ELL + RHO):
            al = (alpha[k] + (offset if (j, k) == (row, entry) else 0)) % Q
            taus.append(((p0[k] - p1[k] + al) % Q).to_bytes(32, "big"))
    tau = b"".join(taus)
    theta = rvole._theta(ext.context, tau)
    eta = [(alpha[ELL + k] + sum(t * a[i] for i, t in enumerate(theta[k]))) % Q for k in range(RHO)]
    return RVOLEResponse(tau, eta, rvole._mu(ext.context, [[row[i] for row in v0] for i in range(ELL + RHO)], theta))


@pytest.mark.parametrize("entry", [0, ELL])  # an input entry, or the check entry a^
def test_inconsistent_correlation_caught_when_bob_chose_it(committee, entry):
    # The check fails exactly when Bob's choice bit of the row is 1: the leak of one choice bit that the gadget's
    # 2 STAT random extra entries absorb (DKLs19 section 4). Cheat on a row Bob chose, then on one he did not.
    for want_bit in (1, 0):
        sid = b"cheat:" + secrets.token_bytes(8)
        rcv = RVOLEReceiver(committee[2].pairs[1].ote_receiver, sid)
        beta = rcv._ext.choices
        row = next(j for j in range(XI) if (beta >> j) & 1 == want_bit)
        resp = _cheating_alice(committee[1].pairs[2].ote_sender, sid, [5, 7], rcv.request(), row, entry, 1)
        if want_bit:
            with pytest.raises(ProtocolAbort) as info:
                rcv.finish(resp)
            assert (info.value.check, info.value.culprit, info.value.reporter) == ("dkls23.rvole.check", 1, 2)
        else:
            rcv.finish(resp)


@pytest.mark.parametrize("field", ["tau", "eta", "mu"])
def test_tampered_response_refused(committee, field):
    sid = b"tamper:" + secrets.token_bytes(8)
    rcv = RVOLEReceiver(committee[3].pairs[2].ote_receiver, sid)
    resp, _ = rvole_respond(committee[2].pairs[3].ote_sender, sid, [1, 2], rcv.request())
    if field == "tau":
        bad = dataclasses.replace(resp, tau=resp.tau[:-1] + bytes([resp.tau[-1] ^ 1]))
    elif field == "eta":
        bad = dataclasses.replace(resp, eta=[(resp.eta[0] + 1) % Q])
    else:
        bad = dataclasses.replace(resp, mu=bytes(64))
    with pytest.raises(ProtocolAbort) as info:
        rcv.finish(bad)
    assert (info.value.check, info.value.culprit, info.value.reporter) == ("dkls23.rvole.check", 2, 3)


@pytest.mark.parametrize("bad", ["short_tau", "unreduced_tau", "eta_range", "mu_length"])
def test_malformed_response_refused(committee, bad):
    sid = b"shape:" + secrets.token_bytes(8)
    rcv = RVOLEReceiver(committee[3].pairs[1].ote_receiver, sid)
    resp, _ = rvole_respond(committee[1].pairs[3].ote_sender, sid, [1, 2], rcv.request())
    resp = {
        "short_tau": dataclasses.replace(resp, tau=resp.tau[:-32]),
        "unreduced_tau": dataclasses.replace(resp, tau=b"\xff" * 32 + resp.tau[32:]),
        "eta_range": dataclasses.replace(resp, eta=[Q]),
        "mu_length": dataclasses.replace(resp, mu=resp.mu[:32]),
    }[bad]
    with pytest.raises(ProtocolAbort) as info:
        rcv.finish(resp)
    assert (info.value.check, info.value.culprit) == ("dkls23.rvole.shape", 1)


def test_cheating_bob_named_by_alice(committee):
    sid = b"bob:" + secrets.token_bytes(8)
    req = RVOLEReceiver(committee[1].pairs[3].ote_receiver, sid).request()
    ext = req.extension
    bad = RVOLERequest(ExtensionMessage(ext.u, ext.x_tilde, bytes([ext.t_tilde[0] ^ 1]) + ext.t_tilde[1:]))
    with pytest.raises(ProtocolAbort) as info:
        rvole_respond(committee[3].pairs[1].ote_sender, sid, [1, 2], bad)
    assert (info.value.check, info.value.culprit, info.value.reporter) == ("dkls23.ote.kos_check", 1, 3)


def test_request_of_another_session_refused(committee):
    # correlation reuse across sessions: Bob's message for one session id does not pass for another
    rcv = RVOLEReceiver(committee[2].pairs[3].ote_receiver, b"session-A:" + secrets.token_bytes(8))
    with pytest.raises(ProtocolAbort) as info:
        rvole_respond(committee[3].pairs[2].ote_sender, b"session-B", [1, 2], rcv.request())
    assert info.value.check == "dkls23.ote.kos_check" and info.value.culprit == 2


def test_session_id_single_use_and_inputs_checked(committee):
    sid = b"once:" + secrets.token_bytes(8)
    rcv = RVOLEReceiver(committee[1].pairs[2].ote_receiver, sid)
    with pytest.raises(InvalidInput):
        RVOLEReceiver(committee[1].pairs[2].ote_receiver, sid)
    alice = committee[2].pairs[1].ote_sender
    with pytest.raises(InvalidInput):
        rvole_respond(alice, b"other:" + sid, [Q, 1], rcv.request())
    rvole_respond(alice, sid, [1, 2], rcv.request())
    with pytest.raises(InvalidInput):
        rvole_respond(alice, sid, [1, 2], rcv.request())


def test_zero_shares_sum_to_zero_and_are_fresh(committee):
    for signers in ((1, 2), (1, 3), (2, 3), (1, 2, 3)):
        shares = [committee[p].zero_seeds.share(b"z1", signers) for p in signers]
        assert sum(shares) % Q == 0 and all(shares)
    a = committee[1].zero_seeds.share(b"z1", (1, 2, 3))
    assert a != committee[1].zero_seeds.share(b"z2", (1, 2, 3))
    assert a != committee[1].zero_seeds.share(b"z1", (1, 2))
    with pytest.raises(InvalidInput):
        committee[1].zero_seeds.share(b"z1", (2, 3))
    with pytest.raises(InvalidInput):
        ZeroSeeds(1, {2: b"short"})


def test_setup_outputs_hold_secrets_safely(committee):
    out = committee[1]
    assert set(out.pairs) == {2, 3}
    for obj in (out, out.pairs[2], out.zero_seeds, out.pairs[2].ote_sender):
        assert "redacted" in repr(obj)
        with pytest.raises(TypeError):
            pickle.dumps(obj)


# --- the setup round party under a malicious peer ----------------------------------------------------------------


def _rewrite(sender: int, recipient: int, rnd: int, tp, change):
    def tamper(env: Envelope):
        if (env.sender, env.recipient, env.round) == (sender, recipient, rnd):
            return dataclasses.replace(env, payload=encode(change(decode(env.payload, tp))))
        return env

    return tamper


@pytest.mark.parametrize(
    "rnd,tp,change,check",
    [
        (1, SetupMsg1, lambda m: SetupMsg1(BaseOTMsg1(Point.identity(), m.base_ot.proof), m.zero_contribution),
         "dkls23.base_ot.point_b"),
        (1, SetupMsg1, lambda m: SetupMsg1(BaseOTMsg1(Point.base_mul(3), m.base_ot.proof), m.zero_contribution),
         "dkls23.base_ot.dlog_proof"),
        (1, SetupMsg1, lambda m: SetupMsg1(m.base_ot, b"short"), "dkls23.zero.contribution"),
        (2, BaseOTMsg2, lambda m: BaseOTMsg2(m.a_pubs[:5] + [Point.identity()] + m.a_pubs[6:]),
         "dkls23.base_ot.point_a"),
        (5, BaseOTMsg5, lambda m: BaseOTMsg5(m.openings1, m.openings0), "dkls23.base_ot.opening"),
    ],
    ids=["identity_b", "proof", "zero_contribution", "identity_a", "swapped_openings"],
)
def test_setup_names_the_cheating_peer(rnd, tp, change, check):
    with pytest.raises(ProtocolAbort) as info:
        _setup(_rewrite(3, 1, rnd, tp, change))
    assert (info.value.check, info.value.culprit, info.value.reporter) == (check, 3, 1)


def test_setup_off_curve_point_is_a_decode_failure():
    def tamper(env: Envelope):
        if (env.sender, env.recipient, env.round) == (2, 1, 1):
            msg = decode(env.payload, SetupMsg1)
            at = env.payload.index(msg.base_ot.b_pub.to_bytes())
            bad = b"\x02" + (7).to_bytes(32, "big")  # no point of secp256k1 has x = 7
            return dataclasses.replace(env, payload=env.payload[:at] + bad + env.payload[at + 33 :])
        return env

    with pytest.raises(ProtocolAbort) as info:
        _setup(tamper)
    assert (info.value.check, info.value.culprit, info.value.reporter) == ("dkls23.setup.round1.decode", 2, 1)
