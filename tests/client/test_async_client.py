"""The sign handles on a real Ray committee: hundreds of concurrent signings from one event loop, wallets end to end
(an agent's EVM transactions and x402 authorizations through the nodes' policy; Solana and Taproot directly),
timeouts and typed errors. One embedded cluster for the module."""

from __future__ import annotations

import asyncio
import hashlib
import time

import coincurve
import nacl.signing
import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data
from solders.hash import Hash
from solders.message import Message
from solders.pubkey import Pubkey
from solders.system_program import TransferParams, transfer
from solders.transaction import Transaction

import mpc_ray
from mpc_ray.client.credentials import Credentials
from mpc_ray.client.handle import RequestTimeout
from mpc_ray.client.signer import Agent
from mpc_ray.errors import InvalidInput, MpcError, PolicyDenied
from mpc_ray.node.principals import Principal, PrincipalRegistry, sign_request
from tests.support.policies import ALICE, EVE, USDC, base_policy, eip1559, erc20_call

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

ADMIN, AGENT, HD_AGENT = (nacl.signing.SigningKey.generate() for _ in range(3))


@pytest.fixture(scope="module")
def mpc():
    with mpc_ray.local_cluster(parties=3, threshold=2, security="112", kdf="min", pool_depth=8) as cluster:
        yield cluster


@pytest.fixture(scope="module")
def keys(mpc):
    evm = mpc.create_key("ecdsa-secp256k1")
    ed = mpc.create_key("eddsa-ed25519")
    btc = mpc.create_key("schnorr-bip340")
    mpc.bootstrap_principals(PrincipalRegistry(principals=(Principal.from_signing_key("root", "admin", ADMIN),
                                                            Principal.from_signing_key("bot", "agent", AGENT),
                                                            Principal.from_signing_key("hdbot", "agent", HD_AGENT))))
    mpc.set_policy(sign_request(ADMIN, principal_id="root", kind="set_policy", format="json",
                                body=base_policy(key_id=evm.key_id).to_bytes(), key_id=evm.key_id, now=time.time()))
    # a second agent that may sign only as the child m/0/7 of the same key
    hd_policy = base_policy(key_id=evm.key_id, principal_id="hdbot", derivation_paths=("m/0/7",))
    mpc.set_policy(sign_request(ADMIN, principal_id="root", kind="set_policy", format="json",
                                body=hd_policy.to_bytes(), key_id=evm.key_id, now=time.time()))
    return {"evm": evm, "ed": ed, "btc": btc}


def usdc_tx(amount: int = 10_000, to: str = ALICE, nonce: int = 7) -> dict:
    return eip1559(data=erc20_call("a9059cbb", to, amount), nonce=nonce)


def test_hundreds_of_concurrent_signings_from_one_event_loop(mpc, keys):
    key = keys["ed"]
    n = 300
    messages = [b"solana message %d" % i for i in range(n)]

    async def run():
        h = mpc.aio(timeout=120)
        loop_thread_count = __import__("threading").active_count()
        t0 = time.perf_counter()
        sigs = await asyncio.gather(*(h.sign(key.key_id, m) for m in messages))
        return sigs, time.perf_counter() - t0, loop_thread_count, __import__("threading").active_count()

    sigs, elapsed, threads_before, threads_after = asyncio.run(run())
    vk = nacl.signing.VerifyKey(key.public_key)
    for m, s in zip(messages, sigs):
        vk.verify(m, s.to_bytes())
    assert len({s.to_bytes()[:32] for s in sigs}) == n  # every nonce fresh
    assert threads_after <= threads_before + 2  # awaited ObjectRefs, not a thread per call
    print(f"{n} concurrent Ed25519 signatures in {elapsed:.2f} s ({n / elapsed:.0f}/s)")


def test_agent_evm_wallet_through_the_nodes_policy(mpc, keys):
    """The agent's wallet sends principal-signed requests; the nodes decode, check the policy, sign."""
    key = keys["evm"]
    wallet = mpc.evm_wallet(key.key_id, agent=Agent("bot", AGENT))
    signed = wallet.sign_transaction(usdc_tx())
    assert Account.recover_transaction(signed.raw_transaction) == wallet.address

    async def concurrent():
        return await asyncio.gather(*(wallet.sign_transaction_async(usdc_tx(nonce=100 + i)) for i in range(4)))

    for tx in asyncio.run(concurrent()):
        assert Account.recover_transaction(tx.raw_transaction) == wallet.address
    # an x402 / EIP-3009 authorization as the SDK asks for it, through the same policy
    from x402.mechanisms.evm.types import TypedDataDomain, TypedDataField

    fields = [("from", "address"), ("to", "address"), ("value", "uint256"), ("validAfter", "uint256"),
              ("validBefore", "uint256"), ("nonce", "bytes32")]
    message = {"from": wallet.address, "to": ALICE, "value": 10_000, "validAfter": 0,
               "validBefore": int(time.time()) + 600, "nonce": b"\x11" * 32}
    sig = wallet.x402_signer().sign_typed_data(
        TypedDataDomain(name="USD Coin", version="2", chain_id=8453, verifying_contract=USDC),
        {"TransferWithAuthorization": [TypedDataField(name=n, type=t) for n, t in fields]},
        "TransferWithAuthorization", message)
    typed = encode_typed_data({"name": "USD Coin", "version": "2", "chainId": 8453, "verifyingContract": USDC},
                              {"TransferWithAuthorization": [{"name": n, "type": t} for n, t in fields]}, message)
    assert Account.recover_message(typed, signature=sig) == wallet.address


def test_hd_child_wallet_through_the_nodes_policy(mpc, keys):
    """The child's address comes from the coordinator's derive; the agent's signed path is pinned by its policy."""
    key = keys["evm"]
    child = mpc.handle(agent=Agent("hdbot", HD_AGENT)).evm_wallet(key.key_id, path="m/0/7")
    assert child.address != mpc.evm_wallet(key.key_id).address
    assert Account.recover_transaction(child.sign_transaction(usdc_tx()).raw_transaction) == child.address
    direct = mpc.handle().evm_wallet(key.key_id, path="m/0/7")  # an admin's driver, no agent: sign(path=) directly
    assert direct.address == child.address
    assert Account.recover_transaction(asyncio.run(direct.sign_transaction_async(usdc_tx(nonce=8))).raw_transaction) \
        == child.address
    with pytest.raises(PolicyDenied) as e:
        mpc.handle(agent=Agent("hdbot", HD_AGENT)).evm_wallet(key.key_id, path="m/0/8").sign_transaction(usdc_tx())
    assert e.value.rule == "policy.derivation_path"
    with pytest.raises(PolicyDenied) as e:  # nor may it sign as the master key
        mpc.evm_wallet(key.key_id, agent=Agent("hdbot", HD_AGENT)).sign_transaction(usdc_tx())
    assert e.value.rule == "policy.derivation_path"
    btc = mpc.handle().taproot_wallet(keys["btc"].key_id, path="m/1/2")
    sighash = hashlib.sha256(b"child spend").digest()
    assert coincurve.PublicKeyXOnly(btc.output_key).verify(btc.sign_sighash(sighash), sighash)
    assert btc.internal_key != keys["btc"].public_key


@pytest.mark.parametrize("tx,rule", [(lambda: usdc_tx(amount=50_000_000), "policy.per_tx_cap"),
                                     (lambda: usdc_tx(to=EVE), "policy.recipient_denylist")])
def test_agent_wallet_denied_by_policy(mpc, keys, tx, rule):
    wallet = mpc.evm_wallet(keys["evm"].key_id, agent=Agent("bot", AGENT))
    with pytest.raises(PolicyDenied) as e:
        wallet.sign_transaction(tx())
    assert e.value.rule == rule and type(e.value) is PolicyDenied  # the typed error, not a Ray wrapper
    with pytest.raises(PolicyDenied) as e:
        asyncio.run(wallet.sign_transaction_async(tx()))
    assert e.value.rule == rule


def test_concurrent_agent_requests_are_answered_one_by_one(mpc, keys):
    """Agent requests made in one turn of the loop go out as one `sign_requests` call; each coroutine still gets its
    own answer: a refused request fails alone, with its rule, and its neighbours sign."""
    wallet = mpc.evm_wallet(keys["evm"].key_id, agent=Agent("bot", AGENT))
    txs = [usdc_tx(nonce=200), usdc_tx(to=EVE, nonce=201), usdc_tx(nonce=202), usdc_tx(amount=50_000_000, nonce=203)]

    async def run():
        return await asyncio.gather(*(wallet.sign_transaction_async(tx) for tx in txs), return_exceptions=True)

    ok1, eve, ok2, big = asyncio.run(run())
    for signed in (ok1, ok2):
        assert Account.recover_transaction(signed.raw_transaction) == wallet.address
    assert type(eve) is PolicyDenied and eve.rule == "policy.recipient_denylist"
    assert type(big) is PolicyDenied and big.rule == "policy.per_tx_cap"


def test_an_unknown_agent_is_refused_by_the_nodes(mpc, keys):
    stranger = mpc.evm_wallet(keys["evm"].key_id, agent=Agent("mallory", nacl.signing.SigningKey.generate()))
    with pytest.raises(PolicyDenied) as e:
        stranger.sign_transaction(usdc_tx())
    assert e.value.rule == "auth.unknown_principal"


def test_solana_and_taproot_wallets_on_the_committee(mpc, keys):
    sol = mpc.solana_wallet(keys["ed"].key_id)
    to = Pubkey.from_string("9xQeWvG816bUx9EPjHmaT23yvVM2ZWbrrpZb9PusVFin")
    msg = Message.new_with_blockhash([transfer(TransferParams(from_pubkey=sol.pubkey, to_pubkey=to, lamports=9))],
                                     sol.pubkey, Hash.default())
    sol.sign_transaction(Transaction.new_unsigned(msg)).verify()
    btc = mpc.taproot_wallet(keys["btc"].key_id, network="testnet")
    sighash = hashlib.sha256(b"spend").digest()
    sig = asyncio.run(btc.sign_sighash_async(sighash))
    assert btc.address.startswith("tb1p") and coincurve.PublicKeyXOnly(btc.output_key).verify(sig, sighash)


def test_digest_level_calls_match_the_sim_signer(mpc, keys):
    """SignHandle offers SimSigner's sign_digest / sign_message (the direct path, no agent)."""
    h = mpc.handle()
    digest = hashlib.sha256(b"digest").digest()
    sig = h.sign_digest(keys["evm"].key_id, digest)
    assert coincurve.PublicKey(keys["evm"].public_key).verify(sig.der(), digest, hasher=None)
    sig = asyncio.run(mpc.aio().sign_digest(keys["evm"].key_id, digest))
    assert coincurve.PublicKey(keys["evm"].public_key).verify(sig.der(), digest, hasher=None)
    sig = h.sign_message(keys["btc"].key_id, digest, tap_tweak=b"")
    output_key = mpc.taproot_wallet(keys["btc"].key_id).output_key
    assert coincurve.PublicKeyXOnly(output_key).verify(sig.to_bytes(), digest)


def test_timeouts_and_typed_errors(mpc, keys):
    digest = hashlib.sha256(b"t").digest()
    with pytest.raises(RequestTimeout):
        mpc.handle(timeout=1e-6).sign(keys["ed"].key_id, b"too slow")
    with pytest.raises(RequestTimeout):
        asyncio.run(mpc.aio(timeout=1e-6).sign(keys["ed"].key_id, b"too slow"))
    with pytest.raises(InvalidInput) as e:
        mpc.handle().sign("no-such-key", digest)
    assert type(e.value) is InvalidInput
    with pytest.raises(InvalidInput, match="unknown key"):
        asyncio.run(mpc.aio().key_info("no-such-key"))
    # an agent handle never signs bare digests or hashes: the nodes must see the transaction
    with pytest.raises(InvalidInput, match="agent"):
        mpc.handle(agent=Agent("bot", AGENT)).sign(keys["evm"].key_id, digest)
    with pytest.raises(InvalidInput, match="agent"):
        asyncio.run(mpc.aio(agent=Agent("bot", AGENT)).sign(keys["evm"].key_id, digest))
    with pytest.raises(InvalidInput, match="policy-enforced"):  # Taproot: whole PSBTs only (sign_psbt)
        mpc.taproot_wallet(keys["btc"].key_id, agent=Agent("bot", AGENT)).sign_sighash(digest)
    sol = mpc.solana_wallet(keys["ed"].key_id, agent=Agent("bot", AGENT))
    pay = transfer(TransferParams(from_pubkey=sol.pubkey, to_pubkey=Pubkey.from_bytes(bytes(32)), lamports=9))
    with pytest.raises(PolicyDenied) as e:  # Solana requests reach the nodes, which hold no policy for this agent
        sol.sign_message(Message.new_with_blockhash([pay], sol.pubkey, Hash.default()))
    assert e.value.rule.startswith("policy.")
    with pytest.raises(MpcError):
        mpc.handle(timeout=0)


class _Method:
    def __init__(self, fn) -> None:
        self.fn = fn

    def remote(self, *args):
        return self.fn(*args)


class FakeCoordinator:
    """Stands in for the coordinator actor (no Ray): records each sign_many batch; answers with Ed25519 sigs."""

    def __init__(self, seed: bytes, delay: float = 0.0) -> None:
        self.sk = nacl.signing.SigningKey(seed)
        self.batches: list[int] = []
        self.delay = delay
        pk = bytes(self.sk.verify_key).hex()
        self.status = _Method(lambda: self._done({"parties": [1, 2, 3], "keys": {"ed": {
            "scheme": "eddsa-ed25519", "threshold": 2, "public_key": pk}}}, 0.0))
        self.sign_many = _Method(self._sign_many)
        self.sign_requests = _Method(self._sign_requests)

    def _done(self, value, delay: float | None = None):
        async def answer():
            await asyncio.sleep(self.delay if delay is None else delay)
            return value
        return answer()

    def _sign_many(self, key_id, request):
        """Signs the messages of the operator's raw_batch request (the holders would check it and its policy)."""
        from mpc_ray.node.principals import RequestFormat
        from mpc_ray.node.raw_batch import decode_raw_batch
        from mpc_ray.types import Signature

        assert request.key_id == key_id and request.format is RequestFormat.RAW_BATCH
        messages = decode_raw_batch(request.body).messages
        self.batches.append(len(messages))
        return self._done([Signature("eddsa-ed25519", self.sk.sign(m).signature) for m in messages])


    def _sign_requests(self, requests):
        """Signs the body of each request, except a body of b"deny", refused as a node would refuse it."""
        from mpc_ray.errors import PolicyDenied
        from mpc_ray.types import Signature

        self.batches.append(len(requests))
        return self._done([PolicyDenied("policy.tx_type") if r.body == b"deny" else
                           Signature("eddsa-ed25519", self.sk.sign(r.body).signature) for r in requests])


def test_concurrent_agent_requests_are_coalesced_into_batches():
    from mpc_ray.client.handle import SignHandle
    from mpc_ray.node.principals import sign_request

    coord = FakeCoordinator(b"\x04" * 32)
    h = SignHandle(coord, timeout=5).aio
    agent = nacl.signing.SigningKey.generate()

    def req(body: bytes):
        return sign_request(agent, principal_id="bot", kind="sign", format="raw_digest", body=body, key_id="ed",
                            now=time.time())

    bodies = [bytes([i % 250 + 1]) * 32 for i in range(300)]
    bodies[7] = b"deny"

    async def run():
        return await asyncio.gather(*(h.sign_request(req(b)) for b in bodies), return_exceptions=True)

    out = asyncio.run(run())
    assert coord.batches == [256, 44]  # 300 coroutines in one turn: two sign_requests calls
    assert isinstance(out[7], PolicyDenied) and out[7].rule == "policy.tx_type"
    for i, sig in enumerate(out):
        if i != 7:
            coord.sk.verify_key.verify(bodies[i], sig.to_bytes())


def test_concurrent_direct_signings_are_coalesced_into_batches():
    from mpc_ray.client.handle import SignHandle

    coord = FakeCoordinator(b"\x01" * 32)
    h = SignHandle(coord, timeout=5, credentials=Credentials.generate()).aio  # the operator signs each batch

    async def run():
        first = await h.sign("ed", b"alone")  # a lone call is flushed on the next loop turn
        many = await asyncio.gather(*(h.sign("ed", b"m%d" % i) for i in range(600)))
        return first, many

    first, many = asyncio.run(run())
    assert coord.batches == [1, 256, 256, 88]  # 600 coroutines, three sign_many calls of at most 256
    vk = coord.sk.verify_key
    vk.verify(b"alone", first.to_bytes())
    for i, s in enumerate(many):
        vk.verify(b"m%d" % i, s.to_bytes())


def test_a_bad_message_does_not_fail_its_batch_and_timeouts_are_per_waiter():
    from mpc_ray.client.handle import SignHandle

    coord = FakeCoordinator(b"\x02" * 32)
    h = SignHandle(coord, timeout=5, credentials=Credentials.generate()).aio

    async def run():
        return await asyncio.gather(h.sign("ed", b"ok"), h.sign("ed", "not bytes"), h.sign("nope", b"x"),
                                    return_exceptions=True)

    ok, bad, unknown = asyncio.run(run())
    assert ok.scheme == "eddsa-ed25519" and isinstance(bad, InvalidInput) and isinstance(unknown, InvalidInput)
    assert coord.batches == [1]
    slow_coord = FakeCoordinator(b"\x03" * 32, delay=0.3)  # the key lookup answers at once, signing late
    slow = SignHandle(slow_coord, timeout=0.1, credentials=Credentials.generate()).aio
    with pytest.raises(RequestTimeout):
        asyncio.run(slow.sign("ed", b"late"))
    assert slow_coord.batches == [1]


def test_direct_batches_fit_the_operator_request_size():
    """Every batch of direct signatures is one operator raw_batch request, whose signed body is at most 256 KiB: the
    handles split large batches (by count and by bytes) instead of failing every message coalesced with them."""
    from mpc_ray.client.handle import SignHandle

    coord = FakeCoordinator(b"\x05" * 32)
    h = SignHandle(coord, timeout=5, credentials=Credentials.generate())
    big = [b"%04d" % i + b"\x00" * 1196 for i in range(300)]  # 1.2 kB each (a Solana message), 360 kB in all

    async def run():
        return await asyncio.gather(*(h.aio.sign("ed", m) for m in big))

    h._get = lambda ref, timeout=None: asyncio.run(ref)  # the fake answers with coroutines, not Ray refs
    for sigs in (asyncio.run(run()), h.sign_many("ed", big), asyncio.run(h.aio.sign_many("ed", big))):
        assert len(sigs) == len(big)
        for m, s in zip(big, sigs):
            coord.sk.verify_key.verify(m, s.to_bytes())
    assert max(coord.batches) <= 256 and sum(coord.batches) == 3 * len(big)
    assert h.sign_many("ed", []) == []
