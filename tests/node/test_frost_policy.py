"""Node-enforced policy on FROST keys (in process): an agent-signed Solana transfer on an Ed25519 key is decoded,
checked and signed by each holder; refusals consume no nonce and are audited."""

from __future__ import annotations

import json
import time
from pathlib import Path

import nacl.signing
import pytest
from solders.pubkey import Pubkey

from mpc_ray.coordinator.frost_engine import combine
from mpc_ray.errors import InvalidInput, PolicyDenied
from mpc_ray.node.audit import verify_chain
from mpc_ray.node.policy import AssetLimit, Policy, PolicyConfigError, TxType, native_asset
from mpc_ray.node.principals import Principal, PrincipalRegistry, RequestKind, sign_request
from tests.support.committee import Committee
from tests.support.policies import SOLANA
from tests.support.policies import solana_transfer

ADMIN, AGENT = nacl.signing.SigningKey.generate(), nacl.signing.SigningKey.generate()
FRIEND = Pubkey.new_unique()


@pytest.fixture(scope="module")
def committee(tmp_path_factory):
    c = Committee(tmp_path_factory.mktemp("frost-policy"))
    key = c.dkg("sol", "eddsa-ed25519")
    c.address = Pubkey(key.public_key)
    # the committee's admins add this module's admin and agent (a higher registry version, as a client would)
    registry = PrincipalRegistry(principals=c.principals.creds.principals() + (
        Principal.from_signing_key("root", "admin", ADMIN), Principal.from_signing_key("bot", "agent", AGENT)),
        version=2)
    change = c.principals.creds.admin_request(RequestKind.SET_PRINCIPALS, body=registry.to_bytes())
    req = set_policy_request(sol_policy())
    for h in c.holders.values():
        h.set_principals(change)
        h.set_policy(req)
    return c


def sol_policy(**overrides) -> Policy:
    fields = {"key_id": "sol", "principal_id": "bot", "allowed_chains": (SOLANA,),
              "allowed_tx_types": (TxType.SOLANA_TRANSFER,), "recipient_allowlist": (str(FRIEND),),
              "asset_limits": (AssetLimit(asset=native_asset(SOLANA), per_tx=1_000_000),)}
    return Policy(**{**fields, **overrides})


def set_policy_request(policy: Policy):
    return sign_request(ADMIN, principal_id="root", kind="set_policy", format="json", body=policy.to_bytes(),
                        key_id=policy.key_id, now=time.time())


def agent_request(message: bytes, fmt: str = "solana_tx"):
    return sign_request(AGENT, principal_id="bot", kind="sign", format=fmt, body=message, key_id="sol",
                        chain=SOLANA, now=time.time())


def test_allowed_solana_transfer_is_signed_by_the_nodes(committee):
    c = committee
    msg = solana_transfer(c.address, FRIEND, 250_000)
    got, (clist,) = c.commit("sol", [1, 3])
    req = agent_request(msg)
    answers = {p: c.holders[p].frost_sign_request(req, got[p][0][0], clist) for p in (1, 3)}
    sig, liars = combine(c.keys["sol"], msg, clist, {p: a[0] for p, a in answers.items()},
                         {p: a[1] for p, a in answers.items()})
    assert liars == []
    nacl.signing.VerifyKey(bytes(c.address)).verify(msg, sig)  # what a Solana validator checks


@pytest.mark.parametrize("make,rule", [
    (lambda c: agent_request(solana_transfer(c.address, Pubkey.new_unique(), 1_000)), "policy.recipient_allowlist"),
    (lambda c: agent_request(solana_transfer(c.address, FRIEND, 5_000_000)), "policy.per_tx_cap"),
    (lambda c: agent_request(solana_transfer(Pubkey.new_unique(), FRIEND, 1_000)), "policy.sender"),
])
def test_refused_by_every_node_and_no_nonce_consumed(committee, make, rule):
    c = committee
    got, (clist,) = c.commit("sol", [1, 2])
    before = {p: c.holders[p].frost_signer.nonce_count("sol") for p in (1, 2)}
    req = make(c)
    for p in (1, 2):
        with pytest.raises(PolicyDenied) as e:
            c.holders[p].frost_sign_request(req, got[p][0][0], clist)
        assert e.value.rule == rule
    assert {p: c.holders[p].frost_signer.nonce_count("sol") for p in (1, 2)} == before
    for p in (1, 2):
        h = c.holders[p]
        assert verify_chain(Path(h.dir) / "audit.jsonl", h.identity.public().verify_key).ok


def test_evm_formats_are_refused_on_an_ed25519_key(committee):
    c = committee
    got, (clist,) = c.commit("sol", [2, 3])
    with pytest.raises(InvalidInput):
        c.holders[2].frost_sign_request(agent_request(b"\x02\xc0", fmt="evm_tx"), got[2][0][0], clist)
    assert c.holders[2].frost_signer.nonce_count("sol") >= 1


DEVNET = "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1"


def last_record(h) -> dict:
    return json.loads((Path(h.dir) / "audit.jsonl").read_text().splitlines()[-1])


def test_a_mainnet_transfer_labelled_as_devnet_is_not_signed(committee):
    """A Solana message does not name its cluster. With mainnet capped at 1 SOL, a policy that also allowed devnet
    uncapped on the same key would let a 50 SOL mainnet transfer through under the devnet label: every holder
    refuses such a policy (audited), and a devnet-only policy for another principal on the same key too; the
    labelled transfer is then refused, nothing consumed."""
    c = committee
    sol = 10**9
    version = c.holders[1].authorization.signing.policy("policy.sol.bot").version + 1
    both = sol_policy(allowed_chains=(SOLANA, DEVNET), recipient_allowlist=None, version=version,
                      asset_limits=(AssetLimit(asset=native_asset(SOLANA), per_tx=sol),
                                    AssetLimit(asset=native_asset(DEVNET))))
    beside = sol_policy(principal_id="tester", allowed_chains=(DEVNET,), recipient_allowlist=None, asset_limits=(),
                        allow_unlisted_assets=True)
    for policy in (both, beside):
        req = set_policy_request(policy)
        for h in c.holders.values():
            with pytest.raises(PolicyConfigError, match="do not commit to their network"):
                h.set_policy(req)
            rec = last_record(h)
            assert rec["kind"] == "set_policy" and rec["decision"] == "error" and rec["nonce_id"]
    got, (clist,) = c.commit("sol", [1, 2])
    before = {p: c.holders[p].frost_signer.nonce_count("sol") for p in (1, 2)}
    labelled = sign_request(AGENT, principal_id="bot", kind="sign", format="solana_tx",
                            body=solana_transfer(c.address, FRIEND, 50 * sol), key_id="sol", chain=DEVNET,
                            now=time.time())
    for p in (1, 2):
        with pytest.raises(PolicyDenied) as e:
            c.holders[p].frost_sign_request(labelled, got[p][0][0], clist)
        assert e.value.rule == "policy.chain"
    assert {p: c.holders[p].frost_signer.nonce_count("sol") for p in (1, 2)} == before


def test_hostile_requests_on_the_frost_path(committee):
    """An admin's set_policy relayed to the FROST sign path burns nothing (auth.wrong_kind), so it still takes effect
    on every holder; a Solana message on which solders panics is InvalidInput, audited, no nonce pair consumed."""
    from tests.support.policies import solana_panic_message

    c = committee
    got, (clist,) = c.commit("sol", [1, 2])
    before = {p: c.holders[p].frost_signer.nonce_count("sol") for p in (1, 2)}
    version = c.holders[1].authorization.signing.policy("policy.sol.bot").version + 1
    admin = set_policy_request(sol_policy(version=version))
    with pytest.raises(PolicyDenied) as e:
        c.holders[1].frost_sign_request(admin, got[1][0][0], clist)
    assert e.value.rule == "auth.wrong_kind" and last_record(c.holders[1])["nonce_id"] is None
    for h in c.holders.values():
        h.set_policy(admin)
    panic = agent_request(solana_panic_message())
    for p in (1, 2):
        with pytest.raises(InvalidInput, match="PanicException"):
            c.holders[p].frost_sign_request(panic, got[p][0][0], clist)
        rec = last_record(c.holders[p])
        assert rec["decision"] == "error" and rec["rule"] == "InvalidInput" and rec["nonce_id"]
    assert {p: c.holders[p].frost_signer.nonce_count("sol") for p in (1, 2)} == before
