"""The HTTP gateway on the embedded cluster: an agent without Ray access signs through Serve with the same wallet API,
and malformed, unsigned, forged, replayed and denied requests get a clear 4xx with a typed error body."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time

import coincurve
import httpx
import nacl.signing
import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data

import mpc_ray
from mpc_ray.client.remote import GatewayUnavailable, RemoteSigner
from mpc_ray.client.signer import Agent
from mpc_ray.errors import InvalidInput, PolicyDenied
from mpc_ray.gateway import deploy_gateway, shutdown_gateway
from mpc_ray.node.principals import Principal, PrincipalRegistry, sign_request
from tests.support.policies import (
    ALICE,
    BASE,
    base_policy,
    eip1559,
    eip3009,
    erc20_call,
    unsigned_bytes,
)

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

ADMIN, AGENT = nacl.signing.SigningKey.generate(), nacl.signing.SigningKey.generate()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def gateway():
    with mpc_ray.local_cluster(parties=3, threshold=2, security="112", kdf="min", pool_depth=8) as mpc:
        key = mpc.create_key("ecdsa-secp256k1")
        mpc.bootstrap_principals(PrincipalRegistry(principals=(
            Principal.from_signing_key("root", "admin", ADMIN), Principal.from_signing_key("bot", "agent", AGENT))))
        mpc.set_policy(sign_request(ADMIN, principal_id="root", kind="set_policy", format="json",
                                    body=base_policy(key_id=key.key_id).to_bytes(), key_id=key.key_id,
                                    now=time.time()))
        url = deploy_gateway(port=free_port(), timeout_s=30)
        try:
            yield mpc, key, url
        finally:
            shutdown_gateway()


def usdc_tx(amount: int = 10_000, nonce: int = 7) -> dict:
    return eip1559(data=erc20_call("a9059cbb", ALICE, amount), nonce=nonce)


def agent_request(body: bytes, key=AGENT, principal: str = "bot", kind: str = "sign", key_id: str = "",
                  fmt: str = "evm_tx"):
    return sign_request(key, principal_id=principal, kind=kind, format=fmt, body=body, key_id=key_id, chain=BASE,
                        now=time.time())


def post(url: str, request) -> httpx.Response:
    return httpx.post(f"{url}/v1/sign", content=b'{"request":' + request.model_dump_json().encode() + b"}",
                      headers={"content-type": "application/json"}, timeout=30)


def test_agent_signs_through_http_with_the_same_wallet_api(gateway):
    mpc, key, url = gateway
    with RemoteSigner(url, Agent("bot", AGENT), timeout=30) as remote:
        wallet = remote.evm_wallet(key.key_id)
        assert wallet.address == mpc.evm_wallet(key.key_id).address
        signed = wallet.sign_transaction(usdc_tx())
        assert Account.recover_transaction(signed.raw_transaction) == wallet.address

        async def concurrent():
            txs = await asyncio.gather(*(wallet.sign_transaction_async(usdc_tx(nonce=50 + i)) for i in range(3)))
            await remote.aclose()
            return txs

        for tx in asyncio.run(concurrent()):
            assert Account.recover_transaction(tx.raw_transaction) == wallet.address
        # an x402 EIP-3009 authorization, as eth-account's full_message
        td = eip3009()
        td["message"]["from"] = wallet.address
        sig = wallet.sign_typed_data(full_message=td)
        assert Account.recover_message(encode_typed_data(full_message=td), signature=sig.signature) == wallet.address


def test_malformed_requests_get_400_with_a_typed_body(gateway):
    _, key, url = gateway
    for content in (b"not json", b'{"request": {"principal_id": "bot"}}', b"[]",
                    b'{"request": {}, "extra": 1}'):
        r = httpx.post(f"{url}/v1/sign", content=content, timeout=30)
        assert r.status_code == 400, r.text
        assert r.json()["error"] == "InvalidInput" and "message" in r.json()
    r = httpx.post(f"{url}/v1/sign", content=b"x" * 400_000, timeout=30)
    assert r.status_code == 413 and r.json()["error"] == "InvalidInput"
    # a well-formed request whose body the nodes cannot decode
    r = post(url, agent_request(b"\x02garbage", key_id=key.key_id))
    assert r.status_code == 400 and r.json()["error"] == "InvalidInput"
    r = httpx.get(f"{url}/v1/keys/no-such-key", timeout=30)
    assert r.status_code == 404 and r.json()["error"] == "InvalidInput"


@pytest.mark.parametrize(
    "make,rule,status",
    [
        (lambda k: agent_request(unsigned_bytes(usdc_tx()), key_id=k).model_copy(update={"signatures": ()}),
         "auth.unsigned", 401),
        (lambda k: agent_request(unsigned_bytes(usdc_tx()), key_id=k, key=nacl.signing.SigningKey.generate()),
         "auth.bad_signature", 401),
        (lambda k: agent_request(unsigned_bytes(usdc_tx()), key_id=k, key=nacl.signing.SigningKey.generate(),
                                 principal="mallory"), "auth.unknown_principal", 401),
        (lambda k: agent_request(unsigned_bytes(usdc_tx(amount=50_000_000)), key_id=k), "policy.per_tx_cap", 403),
        (lambda k: agent_request(base_policy(key_id=k).to_bytes(), key_id=k, kind="set_policy", fmt="json",
                                 key=ADMIN, principal="root"), "gateway.kind", 403),
    ],
)
def test_unsigned_forged_and_denied_requests_get_typed_4xx(gateway, make, rule, status):
    _, key, url = gateway
    r = post(url, make(key.key_id))
    assert r.status_code == status, r.text
    body = r.json()
    assert body["error"] == "PolicyDenied" and body["rule"] == rule and body["message"]


def test_agent_taproot_wallet_on_ray_and_over_http(gateway):
    """An agent's TaprootWallet sends whole PSBTs (btc_psbt): the holders take one nonce per input and answer a share
    per input, on Ray through the sign handle and over HTTP through the gateway; each input verifies under the output
    key. A bare hash for a BIP340 key is still refused: no node could check it."""
    from embit.psbt import PSBT
    from embit.script import Script

    from mpc_ray.node.policy import AssetLimit, Policy, TxType
    from tests.support.policies import BTC, BTC_MAINNET, FRIEND, PER_TX, addr, psbt_bytes

    mpc, _, url = gateway
    tr = mpc.create_key("schnorr-bip340")
    r = post(url, agent_request(b"\x01" * 32, key_id=tr.key_id, fmt="raw_digest"))
    assert r.status_code == 400 and r.json()["error"] == "InvalidInput" and "not available" in r.json()["message"]
    policy = Policy(key_id=tr.key_id, principal_id="bot", allowed_chains=(BTC_MAINNET,),
                    allowed_tx_types=(TxType.BTC_TRANSFER,), recipient_allowlist=(addr(FRIEND),),
                    asset_limits=(AssetLimit(asset=BTC, per_tx=PER_TX),))
    mpc.set_policy(sign_request(ADMIN, principal_id="root", kind="set_policy", format="json",
                                body=policy.to_bytes(), key_id=tr.key_id, now=time.time()))
    on_ray = mpc.taproot_wallet(tr.key_id, agent=Agent("bot", AGENT))
    spk = Script(on_ray.script_pubkey)
    signed = on_ray.sign_psbt(PSBT.parse(psbt_bytes(spk, amounts=(40_000, 30_000, 20_000))))
    for i in range(3):
        (sig,) = signed.inputs[i].final_scriptwitness.items
        assert coincurve.PublicKeyXOnly(on_ray.output_key).verify(sig, signed.sighash(i, sighash=0))
    with RemoteSigner(url, Agent("bot", AGENT), timeout=30) as remote:
        over_http = remote.taproot_wallet(tr.key_id)
        assert over_http.address == on_ray.address
        signed = over_http.sign_psbt(PSBT.parse(psbt_bytes(spk, amounts=(25_000, 35_000))))
        for i in range(2):
            (sig,) = signed.inputs[i].final_scriptwitness.items
            assert coincurve.PublicKeyXOnly(over_http.output_key).verify(sig, signed.sighash(i, sighash=0))
        with pytest.raises(PolicyDenied) as e:
            over_http.sign_psbt(PSBT.parse(psbt_bytes(spk, amounts=(150_000,), pays=((FRIEND, 99_500),))))
        assert e.value.rule == "policy.per_tx_cap"


def test_replayed_request_gets_409(gateway):
    _, key, url = gateway
    request = agent_request(unsigned_bytes(usdc_tx(nonce=99)), key_id=key.key_id)
    assert post(url, request).status_code == 200
    r = post(url, request)
    assert r.status_code == 409 and r.json()["rule"] == "auth.replayed"


def test_remote_client_raises_the_typed_errors(gateway):
    _, key, url = gateway
    wallet = RemoteSigner(url, Agent("bot", AGENT)).evm_wallet(key.key_id)
    with pytest.raises(PolicyDenied) as e:
        wallet.sign_transaction(usdc_tx(amount=50_000_000))
    assert e.value.rule == "policy.per_tx_cap"
    with pytest.raises(PolicyDenied) as e:
        asyncio.run(RemoteSigner(url, Agent("eve", nacl.signing.SigningKey.generate()))
                    .evm_wallet(key.key_id).sign_transaction_async(usdc_tx()))
    assert e.value.rule == "auth.unknown_principal"
    with pytest.raises(InvalidInput, match="unknown key"):
        RemoteSigner(url, Agent("bot", AGENT)).evm_wallet("no-such-key")
    with pytest.raises(GatewayUnavailable):
        RemoteSigner(f"http://127.0.0.1:{free_port()}", Agent("bot", AGENT), timeout=5).key_info(key.key_id)
    with pytest.raises(InvalidInput):
        RemoteSigner(url, None)  # type: ignore[arg-type]  # the gateway takes only principal-signed requests


def test_hd_child_over_http(gateway):
    """The gateway serves a child's public key (?path=); the signed path reaches the nodes, whose policy for this
    agent pins no path, so they refuse it."""
    mpc, key, url = gateway
    child = RemoteSigner(url, Agent("bot", AGENT)).evm_wallet(key.key_id, path="m/0/7")
    assert child.address == mpc.handle().evm_wallet(key.key_id, path="m/0/7").address
    with pytest.raises(PolicyDenied) as e:
        child.sign_transaction(usdc_tx(nonce=77))
    assert e.value.rule == "policy.derivation_path"
    r = httpx.get(f"{url}/v1/keys/{key.key_id}", params={"path": "m/0'/1"}, timeout=30)  # hardened: refused
    assert r.status_code == 400 and r.json()["error"] == "InvalidInput"


def test_the_remote_client_needs_no_ray():
    code = "import sys, mpc_ray.client.remote, mpc_ray.client.evm; sys.exit(int('ray' in sys.modules))"
    assert subprocess.run([sys.executable, "-c", code], check=False, timeout=120).returncode == 0



def lying_gateway(attacker: coincurve.PrivateKey) -> httpx.MockTransport:
    """A compromised gateway: it reports its own key as the agent's and signs with it."""
    from mpc_ray.requests.http import KeyOut, SignatureOut, SignEnvelope
    from mpc_ray.node.policy import intent_from_request
    from mpc_ray.types import KeyInfo, Signature

    def handle(request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            info = KeyInfo(key_id="k", scheme="ecdsa-secp256k1", public_key=attacker.public_key.format(),
                           threshold=2, parties=3, chain_code=b"\x01" * 32)
            return httpx.Response(200, json=KeyOut.of(info).model_dump())
        digest = intent_from_request(SignEnvelope.parse(request.content).request).digest
        raw = attacker.sign_recoverable(digest, hasher=None)
        sig = Signature.ecdsa(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:64], "big"), raw[64])
        return httpx.Response(200, json=SignatureOut.of(sig).model_dump(exclude_none=True))

    return httpx.MockTransport(handle)


def test_trusted_keys_stop_a_gateway_that_swaps_the_key():
    from mpc_ray.client.evm import evm_address
    from mpc_ray.client.signer import BadSignature
    from mpc_ray.crypto import bip32
    from mpc_ray.types import KeyInfo

    attacker, real = coincurve.PrivateKey(), coincurve.PrivateKey()
    agent = Agent("bot", AGENT)
    naive = RemoteSigner("http://gw", agent, transport=lying_gateway(attacker)).evm_wallet("k")
    assert naive.address == evm_address(attacker.public_key.format())  # what pinning is for
    pinned_info = KeyInfo(key_id="k", scheme="ecdsa-secp256k1", public_key=real.public_key.format(), threshold=2,
                          parties=3, chain_code=b"\x07" * 32)
    pinned = RemoteSigner("http://gw", agent, transport=lying_gateway(attacker), trusted_keys={"k": pinned_info})
    wallet = pinned.evm_wallet("k")
    assert wallet.address == evm_address(real.public_key.format())
    with pytest.raises(BadSignature):
        wallet.sign_transaction(usdc_tx())
    child = pinned.evm_wallet("k", path="m/0/7")  # derived here from the pinned key, never asked of the gateway
    expected = bip32.derive(real.public_key.format(), b"\x07" * 32, "m/0/7").public_key_bytes
    assert child.address == evm_address(expected)


@pytest.mark.parametrize(
    "status,body,error",
    [
        (200, {"unexpected": True}, "malformed"),  # a 2xx that is no signature
        (200, {"scheme": "ecdsa-secp256k1", "signature": "ff" * 64, "recovery_id": 0}, "normalised"),  # s > n/2
        (502, {"error": "ProtocolAbort", "culprit": 2, "check": "sign.partial", "message": ""}, "party 2"),
        (500, {"detail": "a proxy's own error page"}, "without a typed error body"),
    ],
)
def test_remote_client_types_every_gateway_answer(status, body, error):
    from mpc_ray.errors import MpcError, ProtocolAbort
    from mpc_ray.requests.http import KeyOut
    from mpc_ray.types import KeyInfo

    key = coincurve.PrivateKey()
    info = KeyInfo(key_id="k", scheme="ecdsa-secp256k1", public_key=key.public_key.format(), threshold=2, parties=3)

    def handle(request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            return httpx.Response(200, json=KeyOut.of(info).model_dump())
        return httpx.Response(status, json=body)

    wallet = RemoteSigner("http://gw", Agent("bot", AGENT), transport=httpx.MockTransport(handle)).evm_wallet("k")
    with pytest.raises(MpcError, match=error) as e:
        wallet.sign_transaction(usdc_tx())
    if status == 502:
        assert isinstance(e.value, ProtocolAbort) and (e.value.culprit, e.value.check) == (2, "sign.partial")
