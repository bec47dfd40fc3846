"""Node-checked Taproot key-path spends (in process): an agent-signed PSBT on a FROST BIP340 key is decoded by each
holder with embit, its BIP341 hashes computed there, its spend judged by the policy engine, and signed once per
input; refusals name their rule on every node, are audited and consume no nonce; a lying coordinator gets nothing.
The coordinator's own side (coordinator/frost_requests.py) runs here too, on in-process holders."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from types import SimpleNamespace

import coincurve
import nacl.signing
import pytest
from embit import ec
from embit.psbt import PSBT
from embit.script import Script
from embit.transaction import Transaction, TransactionInput, TransactionOutput

from mpc_ray.coordinator.frost_engine import combine
from mpc_ray.coordinator.frost_requests import frost_sign_request
from mpc_ray.errors import InvalidInput, MpcError, PolicyDenied, ProtocolAbort
from mpc_ray.node.audit import verify_chain
from mpc_ray.node.bitcoin_policy import (
    BTC_MAINNET,
    BTC_TESTNET4,
    decode_psbt,
    p2tr_script,
    split_sighashes,
)
from mpc_ray.node.policy import AssetLimit, Policy, TxType, WindowCap, native_asset
from mpc_ray.node.principals import Principal, PrincipalRegistry, RequestKind, sign_request
from mpc_ray.protocols.frost import public_key_bytes
from tests.support.committee import Committee
from tests.support.policies import BTC, FEE, FRIEND, PER_TX, addr, psbt_bytes

ADMIN, AGENT, HD_AGENT, MALLORY = (nacl.signing.SigningKey.generate() for _ in range(4))
FRIEND2 = Script(b"\x51\x20" + hashlib.sha256(b"friend 2").digest())  # P2TR, bech32m
STRANGER = Script(b"\x00\x14" + b"\xee" * 20)


@pytest.fixture(scope="module")
def committee(tmp_path_factory):
    c = Committee(tmp_path_factory.mktemp("btc-policy"))
    key = c.dkg("tr", "schnorr-bip340")
    c.output_key = public_key_bytes(key.suite, key.public_package.group_key, b"")
    c.spk = Script(p2tr_script(c.output_key))
    registry = add_principals(c, Principal.from_signing_key("root", "admin", ADMIN),
                              Principal.from_signing_key("bot", "agent", AGENT),
                              Principal.from_signing_key("hdbot", "agent", HD_AGENT))
    limit = AssetLimit(asset=BTC, per_tx=PER_TX, windows=(WindowCap(window_s=3600, max_amount=600_000),))
    policy = Policy(key_id="tr", principal_id="bot", allowed_chains=(BTC_MAINNET,),
                    allowed_tx_types=(TxType.BTC_TRANSFER,), recipient_allowlist=(addr(FRIEND), addr(FRIEND2)),
                    asset_limits=(limit,))
    hd_policy = policy.model_copy(update={"principal_id": "hdbot", "derivation_paths": ("m/0/3",)})
    for h in c.holders.values():
        h.set_principals(registry)
    for p in (policy, hd_policy):
        req = sign_request(ADMIN, principal_id="root", kind="set_policy", format="json", body=p.to_bytes(),
                           key_id="tr", now=time.time())
        for h in c.holders.values():
            h.set_policy(req)
    return c


def add_principals(c, *principals: Principal):
    """The committee admins' set_principals request adding `principals` (registry version 2, as a client would)."""
    registry = PrincipalRegistry(principals=c.principals.creds.principals() + principals, version=2)
    return c.principals.creds.admin_request(RequestKind.SET_PRINCIPALS, body=registry.to_bytes())


def agent_request(body: bytes, chain: str = BTC_MAINNET, key=AGENT, principal="bot", **kw):
    return sign_request(key, principal_id=principal, kind="sign", format="btc_psbt", body=body, key_id="tr",
                        chain=chain, now=time.time(), **kw)


def commit(c, signers, count):
    """{party: [nonce ids]} and one commitment list per input."""
    got = {p: c.principals.commit(c.holders[p], "tr", count) for p in signers}
    lists = [b"".join(got[p][k][1] for p in sorted(signers)) for k in range(count)]
    return {p: [nid for nid, _ in v] for p, v in got.items()}, lists


def counts(c, signers):
    return {p: c.holders[p].frost_signer.nonce_count("tr") for p in signers}


class InProcessPools:
    """What coordinator/frost_requests.py needs of the FROST engine (`FrostSigning`), over in-process holders."""

    def __init__(self, c, signers=(1, 2)) -> None:
        self.keys, self.signers, self.excluded, self.committee = c.keys, list(signers), [], c

    def choose_signers(self, key):
        return self.signers

    def take(self, key, signers, count):
        return {p: self.committee.principals.commit(self.committee.holders[p], key.key_id, count) for p in signers}

    def holder(self, p):
        return SimpleNamespace(frost_sign_request=SimpleNamespace(remote=self.committee.holders[p].frost_sign_request))

    def answers(self, refs):
        return refs

    def exclude(self, exc):
        self.excluded.append(exc)


def test_allowed_psbt_is_signed_per_input_and_verifies_under_the_output_key(committee):
    c = committee
    body = psbt_bytes(c.spk, amounts=(60_000, 45_000), pays=((FRIEND, 50_000), (FRIEND2, 40_000)))
    sig = frost_sign_request(InProcessPools(c, (1, 3)), agent_request(body))
    psbt = PSBT.parse(body)
    key = ec.PublicKey.from_xonly(c.output_key)
    raw = sig.to_bytes()
    assert sig.scheme == "schnorr-bip340" and len(raw) == 2 * 64
    for i in range(2):
        sighash = psbt.sighash(i, sighash=0)  # embit's own BIP341 hash, SIGHASH_DEFAULT
        part = raw[64 * i: 64 * (i + 1)]
        assert key.schnorr_verify(ec.SchnorrSig.parse(part), sighash)
        assert coincurve.PublicKeyXOnly(c.output_key).verify(part, sighash)
        assert not coincurve.PublicKeyXOnly(c.keys["tr"].public_key).verify(part, sighash)  # tweaked key only
    for p in (1, 3):  # each node logged the allowed spend: both payments plus the fee, and both nonces
        last = json.loads((Path(c.holders[p].dir) / "audit.jsonl").read_text().splitlines()[-1])
        assert last["decision"] == "allow" and last["intent"]["spends"] == [[BTC, str(90_000 + FEE)]]
        assert last["intent"]["recipients"] == [addr(FRIEND), addr(FRIEND2)]
        assert len(last["intent"]["details"]["nonce_ids"].split(",")) == 2


def test_decoded_intent_counts_the_fee_and_not_the_change(committee):
    c = committee
    body = psbt_bytes(c.spk, amounts=(80_000,), pays=((FRIEND, 30_000),), fee=700)
    intent = decode_psbt(body, BTC_MAINNET)
    d = dict(intent.details)
    assert (intent.type, intent.amount, intent.spends) == (TxType.BTC_TRANSFER, 30_000, ((BTC, 30_700),))
    assert (d["fee"], d["change"], d["sender"]) == ("700", "49300", c.spk.address())
    assert d["sender"].startswith("bc1p") and intent.recipient == addr(FRIEND).lower()
    assert split_sighashes(intent.digest) == [PSBT.parse(body).sighash(0, sighash=0)]
    testnet = decode_psbt(body, BTC_TESTNET4)
    assert testnet.recipient.startswith("tb1q") and testnet.asset == native_asset(BTC_TESTNET4)
    consolidation = decode_psbt(psbt_bytes(c.spk, amounts=(5_000, 6_000), pays=()), BTC_MAINNET)
    assert consolidation.recipients == () and consolidation.spends == ((BTC, FEE),)


def foreign_input(psbt):
    psbt.inputs[1].witness_utxo = TransactionOutput(psbt.inputs[1].witness_utxo.value, FRIEND2)


def set_sighash(t):
    def edit(psbt):
        psbt.inputs[0].sighash_type = t
    return edit


def drop_witness_utxo(psbt):
    psbt.inputs[0].witness_utxo = None
    psbt.inputs[0].non_witness_utxo = Transaction(vin=[TransactionInput(b"\x01" * 32, 0)],
                                                  vout=[TransactionOutput(60_000, Script(b"\x51\x20" + b"\x02" * 32))])


def script_path(psbt):
    psbt.inputs[0].taproot_merkle_root = hashlib.sha256(b"tree").digest()


MATRIX = [
    # wrong recipient: the second output pays someone not on the allowlist
    (lambda c: agent_request(psbt_bytes(c.spk, pays=((FRIEND, 10_000), (STRANGER, 10_000)))),
     "policy.recipient_allowlist"),
    # over the cap only because of the fee: 99,500 paid + 1,000 fee > 100,000
    (lambda c: agent_request(psbt_bytes(c.spk, amounts=(150_000,), pays=((FRIEND, 99_500),))), "policy.per_tx_cap"),
    # an input not from the key's own address (and a PSBT spending only someone else's output)
    (lambda c: agent_request(psbt_bytes(c.spk, amounts=(30_000, 30_000), edit=foreign_input)), "policy.sender"),
    (lambda c: agent_request(psbt_bytes(FRIEND2)), "policy.sender"),
    (lambda c: agent_request(psbt_bytes(c.spk, edit=drop_witness_utxo)), "policy.witness_utxo"),
    (lambda c: agent_request(psbt_bytes(c.spk, edit=set_sighash(0x02))), "policy.sighash_type"),  # NONE
    (lambda c: agent_request(psbt_bytes(c.spk, edit=set_sighash(0x81))), "policy.sighash_type"),  # ALL|ANYONECANPAY
    (lambda c: agent_request(psbt_bytes(c.spk, edit=script_path)), "policy.key_path"),
    # wrong chain: a testnet spend where the policy allows mainnet, and a chain that is not Bitcoin at all
    (lambda c: agent_request(psbt_bytes(c.spk), chain=BTC_TESTNET4), "policy.chain"),
    (lambda c: agent_request(psbt_bytes(c.spk), chain="eip155:1"), "policy.chain"),
]


@pytest.mark.parametrize("make,rule", MATRIX)
def test_refused_by_every_node_audited_and_no_nonce_consumed(committee, make, rule):
    c = committee
    req = make(c)
    inputs = len(PSBT.parse(req.body).inputs)
    ids, lists = commit(c, (1, 2), inputs)
    before = counts(c, (1, 2))
    for p in (1, 2):
        with pytest.raises(PolicyDenied) as e:
            c.holders[p].frost_sign_request(req, ids[p], lists)
        assert e.value.rule == rule
    assert counts(c, (1, 2)) == before
    for p in (1, 2):
        h = c.holders[p]
        last = json.loads((Path(h.dir) / "audit.jsonl").read_text().splitlines()[-1])
        assert (last["decision"], last["rule"], last["presignature_id"]) == ("deny", rule, None)
        assert verify_chain(Path(h.dir) / "audit.jsonl", h.identity.public().verify_key).ok
    with pytest.raises(PolicyDenied) as e:  # the coordinator refuses before taking a commitment, too
        frost_sign_request(InProcessPools(c), make(c))
    assert e.value.rule == rule


def test_sighash_all_is_signed_and_hashed_with_its_type(committee):
    c = committee
    body = psbt_bytes(c.spk, edit=set_sighash(0x01))
    sig = frost_sign_request(InProcessPools(c, (2, 3)), agent_request(body)).to_bytes()
    assert coincurve.PublicKeyXOnly(c.output_key).verify(sig, PSBT.parse(body).sighash(0, sighash=0x01))


def test_rolling_cap_counts_the_fees(committee, tmp_path):
    """600,000 per hour over 2-of-3 is 400,000 per holder: four spends of 79,000 + 2,000 fee fit (324,000); a fifth,
    after the holders restarted, is refused because of the fees (5 x 79,000 = 395,000 would fit, 5 x 81,000 not)."""
    from tests.support.committee import Committee as Fresh

    c = Fresh(tmp_path)
    key = c.dkg("tr", "schnorr-bip340")
    spk = Script(p2tr_script(public_key_bytes(key.suite, key.public_package.group_key, b"")))
    registry = add_principals(c, Principal.from_signing_key("root", "admin", ADMIN),
                              Principal.from_signing_key("bot", "agent", AGENT))
    policy = Policy(key_id="tr", principal_id="bot", allowed_chains=(BTC_MAINNET,),
                    allowed_tx_types=(TxType.BTC_TRANSFER,),
                    asset_limits=(AssetLimit(asset=BTC, per_tx=PER_TX,
                                             windows=(WindowCap(window_s=3600, max_amount=600_000),)),))
    req = sign_request(ADMIN, principal_id="root", kind="set_policy", format="json", body=policy.to_bytes(),
                       key_id="tr", now=time.time())
    for h in c.holders.values():
        h.set_principals(registry)
        h.set_policy(req)
    pools = InProcessPools(c, (1, 2))
    def spend():
        return agent_request(psbt_bytes(spk, amounts=(200_000,), pays=((FRIEND, 79_000),), fee=2_000))

    for _ in range(4):
        frost_sign_request(pools, spend())
    for p in (1, 2):  # the counts survive a restart of the holders (spend snapshot and audit journal)
        c.restart(p)  # closes the holder's authorization state (its snapshot) first
    with pytest.raises(PolicyDenied) as e:
        frost_sign_request(pools, spend())
    assert e.value.rule == "policy.window_cap"


def test_a_lying_coordinator_gets_nothing_and_consumes_nothing(committee):
    c = committee
    honest_body = psbt_bytes(c.spk, amounts=(30_000, 30_000), pays=((FRIEND, 20_000),))
    honest = agent_request(honest_body)
    other = psbt_bytes(c.spk, amounts=(30_000, 30_000), pays=((FRIEND2, 20_000),))  # also within policy
    ids, lists = commit(c, (1, 3), 2)
    before = counts(c, (1, 3))
    for lie in (honest.model_copy(update={"body": other}),  # same agent signature, another PSBT
                honest.model_copy(update={"chain": BTC_TESTNET4}),  # same PSBT, another network
                agent_request(other, key=MALLORY)):  # the coordinator's own key under the agent's name
        for p in (1, 3):
            with pytest.raises(PolicyDenied) as e:
                c.holders[p].frost_sign_request(lie, ids[p], lists)
            assert e.value.rule == "auth.bad_signature"
    # the wrong shape of call: refused before the request is even verified, so the honest request stays usable
    for nid, cl in ((ids[1][:1], lists), (ids[1], lists[:1]), (ids[1][0], lists[0]), ([], [])):
        with pytest.raises(InvalidInput):
            c.holders[1].frost_sign_request(honest, nid, cl)
    assert counts(c, (1, 3)) == before
    # fewer (or more) inputs' worth of nonces than the PSBT has: refused after decoding, before any nonce is taken
    three, lists3 = commit(c, (1, 3), 3)
    before = counts(c, (1, 3))
    for p, (nid, cl) in ((1, (ids[1][:1], lists[:1])), (3, (three[3], lists3))):
        with pytest.raises(InvalidInput, match="inputs"):
            c.holders[p].frost_sign_request(agent_request(honest_body), nid, cl)
    with pytest.raises(MpcError):  # one nonce for both inputs
        c.holders[1].frost_sign_request(agent_request(honest_body), [ids[1][0], ids[1][0]], lists)
    assert counts(c, (1, 3)) == before
    # shares over the agent's PSBT make no signature over another input's (or another PSBT's) hash
    answers = {p: c.holders[p].frost_sign_request(honest, ids[p], lists) for p in (1, 3)}
    key, honest_hashes = c.keys["tr"], split_sighashes(decode_psbt(honest_body, BTC_MAINNET).digest)
    for k, wrong in ((0, honest_hashes[1]), (1, decode_psbt(other, BTC_MAINNET).digest[32:])):
        with pytest.raises(ProtocolAbort):
            combine(key, wrong, lists[k], {p: a[k][0] for p, a in answers.items()},
                    {p: a[k][1] for p, a in answers.items()}, b"")
    for k in (0, 1):
        sig, liars = combine(key, honest_hashes[k], lists[k], {p: a[k][0] for p, a in answers.items()},
                             {p: a[k][1] for p, a in answers.items()}, b"")
        assert liars == [] and coincurve.PublicKeyXOnly(c.output_key).verify(sig, honest_hashes[k])


def test_coordinator_names_a_holder_that_answers_too_few_shares(committee):
    c = committee
    pools = InProcessPools(c, (1, 2))
    real = c.holders[2].frost_sign_request
    pools.holder = lambda p: SimpleNamespace(frost_sign_request=SimpleNamespace(
        remote=(lambda *a: real(*a)[:1]) if p == 2 else c.holders[p].frost_sign_request))
    with pytest.raises(ProtocolAbort) as e:
        frost_sign_request(pools, agent_request(psbt_bytes(c.spk, amounts=(30_000, 30_000))))
    assert (e.value.culprit, e.value.check) == (2, "frost.sign.answer") and pools.excluded


def test_hd_child_spends_need_the_pinned_path(committee):
    c = committee
    key = c.keys["tr"]
    child_q = public_key_bytes(key.suite, key.public_package.group_key, b"", key.hd_tweak("m/0/3"))
    child_spk = Script(p2tr_script(child_q))
    body = psbt_bytes(child_spk)
    sig = frost_sign_request(InProcessPools(c), agent_request(body, key=HD_AGENT, principal="hdbot",
                                                              derivation_path="m/0/3"))
    assert coincurve.PublicKeyXOnly(child_q).verify(sig.to_bytes(), PSBT.parse(body).sighash(0, sighash=0))
    ids, lists = commit(c, (1, 2), 1)
    for req, rule in ((agent_request(body, key=HD_AGENT, principal="hdbot"), "policy.derivation_path"),
                      (agent_request(body, key=HD_AGENT, principal="hdbot", derivation_path="m/0/4"),
                       "policy.derivation_path"),
                      (agent_request(psbt_bytes(c.spk), key=HD_AGENT, principal="hdbot", derivation_path="m/0/3"),
                       "policy.sender")):
        with pytest.raises(PolicyDenied) as e:
            c.holders[1].frost_sign_request(req, ids[1], lists)
        assert e.value.rule == rule


def test_a_psbt_is_not_signed_with_an_ed25519_key(committee):
    c = committee
    if "ed" not in c.keys:
        c.dkg("ed", "eddsa-ed25519")
    req = sign_request(AGENT, principal_id="bot", kind="sign", format="btc_psbt", body=psbt_bytes(c.spk),
                       key_id="ed", chain=BTC_MAINNET, now=time.time())
    with pytest.raises(InvalidInput, match="schnorr-bip340"):
        frost_sign_request(InProcessPools(c), req)


@pytest.mark.parametrize("mutate,match", [
    (lambda b: b[:-3], "malformed PSBT"),
    (lambda b: b"not a psbt", "malformed PSBT"),
])
def test_malformed_psbts_are_invalid_input(committee, mutate, match):
    with pytest.raises(InvalidInput, match=match):
        decode_psbt(mutate(psbt_bytes(committee.spk)), BTC_MAINNET)


def test_decoder_refusals(committee):
    c = committee

    def finalised(psbt):
        from embit.script import Witness

        psbt.inputs[0].final_scriptwitness = Witness([b"\x01" * 64])

    def lying_prev(psbt):
        psbt.inputs[0].non_witness_utxo = Transaction(vin=[TransactionInput(b"\x01" * 32, 0)],
                                                      vout=[TransactionOutput(1, c.spk)])

    with pytest.raises(InvalidInput, match="finalised"):
        decode_psbt(psbt_bytes(c.spk, edit=finalised), BTC_MAINNET)
    with pytest.raises(PolicyDenied) as e:
        decode_psbt(psbt_bytes(c.spk, edit=lying_prev), BTC_MAINNET)
    assert e.value.rule == "policy.witness_utxo"
    with pytest.raises(InvalidInput, match="more than the inputs"):
        decode_psbt(psbt_bytes(c.spk, amounts=(10_000,), pays=((FRIEND, 20_000),), fee=0), BTC_MAINNET)
    with pytest.raises(InvalidInput, match="no address"):
        decode_psbt(psbt_bytes(c.spk, pays=((Script(b"\x6a\x04abcd"), 0),)), BTC_MAINNET)  # OP_RETURN
    with pytest.raises(PolicyDenied) as e:
        decode_psbt(psbt_bytes(c.spk), None)
    assert e.value.rule == "policy.chain"


class CommitteeSigner:
    """A `Signer` with an agent whose requests go to the coordinator code over the in-process holders."""

    def __init__(self, c, agent_key, principal="bot") -> None:
        from mpc_ray.client.signer import Agent

        self.c, self.agent = c, Agent(principal, agent_key)

    def key_info(self, key_id, path=None):
        from mpc_ray.types import KeyInfo

        assert path is None
        key = self.c.keys[key_id]
        return KeyInfo(key_id=key_id, scheme=key.scheme, public_key=key.public_key, threshold=2, parties=3)

    def sign_request(self, request):
        return frost_sign_request(InProcessPools(self.c, (2, 3)), request)


def test_taproot_wallet_with_an_agent_signs_through_the_nodes(committee):
    from mpc_ray.client.bitcoin import TaprootWallet

    c = committee
    wallet = TaprootWallet(CommitteeSigner(c, AGENT), "tr")
    assert wallet.output_key == c.output_key and wallet.chain == BTC_MAINNET
    psbt = PSBT.parse(psbt_bytes(c.spk, amounts=(40_000, 30_000), pays=((FRIEND2, 60_000),)))
    signed = wallet.sign_psbt(psbt.to_string())
    key = ec.PublicKey.from_xonly(c.output_key)
    for i in (0, 1):
        (sig,) = signed.inputs[i].final_scriptwitness.items
        assert key.schnorr_verify(ec.SchnorrSig.parse(sig), signed.sighash(i, sighash=0))
    with pytest.raises(PolicyDenied) as e:  # the nodes' policy, not the wallet, refuses a stranger
        wallet.sign_psbt(PSBT.parse(psbt_bytes(c.spk, pays=((STRANGER, 1_000),))))
    assert e.value.rule == "policy.recipient_allowlist"


def test_a_mainnet_psbt_labelled_as_testnet_is_not_signed(committee):
    """A PSBT does not name its network: with mainnet capped at 100,000 sats, a policy that also allowed testnet
    uncapped on the same key would sign a 4,000,000-sat mainnet spend labelled as testnet (valid on mainnet).
    Every holder refuses such a policy (audited), and a testnet-only policy for another principal on the same key;
    the labelled PSBT is then refused, no nonce consumed."""
    from mpc_ray.node.bitcoin_policy import BTC_TESTNET3
    from mpc_ray.node.policy import PolicyConfigError

    c = committee
    version = c.holders[1].authorization.signing.policy("policy.tr.bot").version + 1
    both = Policy(key_id="tr", principal_id="bot", allowed_chains=(BTC_MAINNET, BTC_TESTNET3),
                  allowed_tx_types=(TxType.BTC_TRANSFER,), version=version,
                  asset_limits=(AssetLimit(asset=BTC, per_tx=PER_TX), AssetLimit(asset=native_asset(BTC_TESTNET3))))
    beside = Policy(key_id="tr", principal_id="tester", allowed_chains=(BTC_TESTNET3,),
                    allowed_tx_types=(TxType.BTC_TRANSFER,), allow_unlisted_assets=True)
    for policy in (both, beside):
        req = sign_request(ADMIN, principal_id="root", kind="set_policy", format="json", body=policy.to_bytes(),
                           key_id="tr", now=time.time())
        for h in c.holders.values():
            with pytest.raises(PolicyConfigError, match="do not commit to their network"):
                h.set_policy(req)
            rec = json.loads((Path(h.dir) / "audit.jsonl").read_text().splitlines()[-1])
            assert rec["kind"] == "set_policy" and rec["decision"] == "error" and rec["nonce_id"]
    ids, lists = commit(c, (1, 2), 1)
    before = counts(c, (1, 2))
    labelled = agent_request(psbt_bytes(c.spk, amounts=(4_100_000,), pays=((FRIEND, 4_000_000),)), chain=BTC_TESTNET3)
    for p in (1, 2):
        with pytest.raises(PolicyDenied) as e:
            c.holders[p].frost_sign_request(labelled, ids[p], lists)
        assert e.value.rule == "policy.chain"
    assert counts(c, (1, 2)) == before
