"""What a new user meets first on the client side (issue 17): typed errors with their own message from every entry
point (never Ray's wrapper or a remote traceback), a handled refusal not logged as an unhandled error, one return
type per wallet method (x402 has its own adapter), `async with` on the async handle and `RemoteSigner`, `py.typed`,
and the gateway's `/docs` and `/openapi.json`."""

from __future__ import annotations

import asyncio
import gc
import logging
import time
import tomllib
from pathlib import Path

import httpx
import jsonschema
import nacl.signing
import pytest
from eth_account import Account
from eth_account.datastructures import SignedMessage
from eth_account.messages import encode_typed_data
from ray.exceptions import ActorDiedError, ActorUnavailableError, GetTimeoutError, RayError, RayTaskError
from x402.mechanisms.evm.types import TypedDataDomain, TypedDataField

import mpc_ray
from mpc_ray import sim
from mpc_ray.client.evm import EvmWallet, X402Signer
from mpc_ray.client.handle import SignHandle
from mpc_ray.client.raycall import typed_error
from mpc_ray.client.remote import RemoteSigner
from mpc_ray.client.signer import Agent, RequestTimeout
from mpc_ray.client.simsigner import SimSigner
from mpc_ray.errors import InvalidInput, MpcError, PolicyDenied, ProtocolAbort, QuorumUnavailable, Unauthorized
from mpc_ray.node.principals import Principal, PrincipalRegistry, sign_request
from tests.support.primes import fixture_paillier_key
from tests.support.policies import ALICE, USDC, base_policy, eip1559, erc20_call

ROOT = Path(__file__).resolve().parents[2]
AGENT = nacl.signing.SigningKey.generate()
DIGEST = bytes(range(32))
EIP3009 = [("from", "address"), ("to", "address"), ("value", "uint256"), ("validAfter", "uint256"),
           ("validBefore", "uint256"), ("nonce", "bytes32")]


def assert_clean(exc: BaseException, cls: type) -> None:
    """The typed error itself: its exact class, its own message, no Ray wrapper or remote traceback attached."""
    assert type(exc) is cls, f"{type(exc)!r}: {exc}"
    assert not isinstance(exc, RayError)
    text = str(exc)
    for bad in ("Traceback", "RayTaskError", "ray::", "\x1b[", 'File "'):
        assert bad not in text, text
    assert exc.__cause__ is None  # raised `from None`: printing it shows no chained Ray error either


def raised(fn, *args, **kwargs) -> BaseException:
    with pytest.raises(Exception) as info:
        fn(*args, **kwargs)
    return info.value


# the unwrapping, without a cluster ------------------------------------------------------------------------------
def wrapped(cause: BaseException, name: str = "Coordinator.sign_many()") -> RayTaskError:
    """What `ray.get` raises for `cause`: Ray's dual-class wrapper whose message is the remote traceback."""
    remote_traceback = f"Traceback (most recent call last):\n  File \"x.py\"\n{cause!r}"
    return RayTaskError(name, remote_traceback, cause).as_instanceof_cause()


def test_typed_error_unwraps_to_the_remote_cause_with_its_fields():
    denied = PolicyDenied("policy.per_tx_cap", "over the cap")
    out = typed_error(wrapped(denied))
    assert out is denied and out.rule == "policy.per_tx_cap"
    assert_clean(out, PolicyDenied)
    # a coordinator that re-raised a holder's error: one wrapper inside another
    abort = ProtocolAbort(3, "sign.pi_log.range_z1", "z1 out of range", reporter=1)
    out = typed_error(RayTaskError("Coordinator.sign()", "tb", wrapped(abort, "HolderActor.sign()")))
    assert out is abort and (out.culprit, out.check, out.reporter) == (3, "sign.pi_log.range_z1", 1)
    assert_clean(out, ProtocolAbort)


def test_typed_error_of_ray_failures():
    gone = typed_error(ActorDiedError(), "party 2's holder")
    assert_clean(gone, QuorumUnavailable)
    assert "party 2's holder is unavailable" in str(gone)
    assert_clean(typed_error(ActorUnavailableError("restarting", b"\0" * 16)), QuorumUnavailable)
    late = typed_error(GetTimeoutError("get timed out"))
    assert_clean(late, RequestTimeout)
    # a remote bug that is no mpc-ray error: its type only (a message may echo input)
    bug = typed_error(wrapped(ValueError("non-hexadecimal number found in fromhex() arg: secret-ish")))
    assert_clean(bug, MpcError)
    assert "ValueError" in str(bug) and "secret-ish" not in str(bug)


# wallets: one return type per name; x402 has its own adapter ------------------------------------------------------
@pytest.fixture(scope="module")
def wallet() -> EvmWallet:
    aux = sim.aux_info(3, "112", paillier_keys={i: fixture_paillier_key("112", i) for i in (1, 2, 3)})
    return EvmWallet(SimSigner({"pay": sim.keygen("ecdsa-secp256k1", parties=3, threshold=2, aux=aux)}), "pay")


def x402_call(address: str):
    domain = TypedDataDomain(name="USD Coin", version="2", chain_id=8453, verifying_contract=USDC)
    types = {"TransferWithAuthorization": [TypedDataField(name=n, type=t) for n, t in EIP3009]}
    message = {"from": address, "to": ALICE, "value": 10_000, "validAfter": 0, "validBefore": 2**40,
               "nonce": b"\x42" * 32}
    expected = encode_typed_data({"name": "USD Coin", "version": "2", "chainId": 8453, "verifyingContract": USDC},
                                 {"TransferWithAuthorization": [{"name": n, "type": t} for n, t in EIP3009]}, message)
    return (domain, types, "TransferWithAuthorization", message), expected


def test_sign_typed_data_returns_one_type_and_x402_has_its_adapter(wallet):
    args, expected = x402_call(wallet.address)
    domain, types, _, message = args
    plain = {"name": "USD Coin", "version": "2", "chainId": 8453, "verifyingContract": USDC}
    signed = wallet.sign_typed_data(plain, types, message)
    assert type(signed) is SignedMessage
    assert Account.recover_message(expected, signature=signed.signature) == wallet.address
    # x402's call shape on the wallet itself is refused, typed, pointing at the adapter (positional or keywords)
    for exc in (raised(wallet.sign_typed_data, *args),
                raised(wallet.sign_typed_data, domain=domain, types=types, primary_type="TransferWithAuthorization",
                       message=message)):
        assert_clean(exc, InvalidInput)
        assert "x402_signer()" in str(exc)
    signer = wallet.x402_signer()
    assert isinstance(signer, X402Signer) and signer.address == wallet.address
    for sig in (signer.sign_typed_data(*args), asyncio.run(signer.sign_typed_data_async(*args)),
                signer.sign_typed_data(domain=domain, types=types, primary_type="TransferWithAuthorization",
                                       message=message)):
        assert type(sig) is bytes and len(sig) == 65 and sig[64] in (27, 28)
        assert Account.recover_message(expected, signature=sig) == wallet.address
    assert type(asyncio.run(wallet.sign_typed_data_async(full_message={
        "types": {"EIP712Domain": [{"name": "name", "type": "string"}], **{
            "TransferWithAuthorization": [{"name": n, "type": t} for n, t in EIP3009]}},
        "primaryType": "TransferWithAuthorization", "domain": {"name": "USD Coin"},
        "message": {**message, "nonce": "0x" + "42" * 32}}))) is SignedMessage
    assert_clean(raised(signer.sign_typed_data, domain, types, None, message), InvalidInput)


# async context managers ---------------------------------------------------------------------------------------
def test_async_handle_is_an_async_context_manager_that_waits_for_its_batches():
    handle = SignHandle(object(), timeout=5)
    finished: list[str] = []

    async def batch() -> None:
        await asyncio.sleep(0.05)
        finished.append("batch")

    async def main() -> None:
        async with handle.aio as h:
            assert h is handle.aio
            h._track(asyncio.get_running_loop().create_task(batch()))  # as a coalesced flush schedules its batch
        assert finished == ["batch"]  # the block ended only after the batch it started
        with pytest.raises(InvalidInput):  # errors inside the block propagate unchanged
            async with handle.aio:
                raise InvalidInput("inside")

    asyncio.run(main())


def test_remote_signer_supports_with_and_async_with():
    key = {"key_id": "k1", "scheme": "ecdsa-secp256k1", "public_key": "02" + "11" * 32, "threshold": 2,
           "parties": 3, "chain_code": ""}

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=key)

    agent = Agent("bot", AGENT)

    async def main() -> RemoteSigner:
        async with RemoteSigner("http://gw", agent, async_transport=httpx.MockTransport(answer),
                                transport=httpx.MockTransport(answer)) as remote:
            assert (await remote.key_info_async("k1")).key_id == "k1"
            pool = remote._aclient()
            assert not pool.is_closed
        assert pool.is_closed and remote._client.is_closed
        return remote

    asyncio.run(main())
    with RemoteSigner("http://gw", agent, transport=httpx.MockTransport(answer)) as remote:
        assert remote.key_info("k1").key_id == "k1"
    assert remote._client.is_closed


# packaging and the gateway's documents ------------------------------------------------------------------------
def test_py_typed_is_shipped():
    assert (ROOT / "mpc_ray" / "py.typed").is_file()
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "py.typed" in config["tool"]["setuptools"]["package-data"]["mpc_ray"]


def test_gateway_serves_docs_and_an_openapi_document_of_its_models():
    from fastapi.testclient import TestClient

    from mpc_ray.gateway.app import app

    client = TestClient(app)
    docs = client.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower() and "/openapi.json" in docs.text
    response = client.get("/openapi.json")
    assert response.status_code == 200
    doc = response.json()
    assert doc["openapi"].startswith("3.")
    assert set(doc["paths"]) >= {"/v1/sign", "/v1/keys/{key_id}", "/healthz"}
    sign = doc["paths"]["/v1/sign"]["post"]
    assert sign["requestBody"]["content"]["application/json"]["schema"]["$ref"] == "#/components/schemas/SignEnvelope"
    assert sign["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/SignatureOut")
    assert sign["responses"]["403"]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorBody")
    assert "422" not in sign["responses"] and "422" not in doc["paths"]["/v1/keys/{key_id}"]["get"]["responses"]
    keys = doc["paths"]["/v1/keys/{key_id}"]["get"]
    assert keys["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/KeyOut")
    assert {p["name"] for p in keys["parameters"]} == {"key_id", "path"}  # no `self` of the Serve class

    # every reference resolves, and a real envelope validates against the document's own schema
    schemas = doc["components"]["schemas"]
    refs = set()

    def collect(node):
        if isinstance(node, dict):
            if isinstance(node.get("$ref"), str):
                refs.add(node["$ref"])
            for v in node.values():
                collect(v)
        elif isinstance(node, list):
            for v in node:
                collect(v)

    collect(doc)
    assert refs and all(r.startswith("#/components/schemas/") and r.rsplit("/", 1)[1] in schemas for r in refs)
    request = sign_request(AGENT, principal_id="bot", kind="sign", format="evm_tx", body=b"\x02\xc0",
                           key_id="k1", chain="eip155:8453", now=time.time())
    envelope = {"request": request.model_dump(mode="json")}
    validator = jsonschema.Draft202012Validator({"$ref": "#/components/schemas/SignEnvelope", **doc})
    validator.validate(envelope)
    with pytest.raises(jsonschema.ValidationError):
        validator.validate({"request": {**envelope["request"], "kind": "launch_missiles"}})


# on a committee: every entry point raises the typed error itself ----------------------------------------------
@pytest.fixture(scope="module")
def committee():
    """A dev committee whose own admin registers the agent ``bot`` and gives the key `base_policy`."""
    with mpc_ray.local_cluster(parties=3, threshold=2, security="112", kdf="min", pool_depth=4) as mpc:
        key = mpc.create_key("ecdsa-secp256k1")
        bot = Principal.from_signing_key("bot", "agent", AGENT)
        mpc.bootstrap_principals(PrincipalRegistry(principals=(*mpc.credentials.principals(), bot)))
        mpc.set_policy(mpc.credentials.admin_request("set_policy", key_id=key.key_id,
                                                     body=base_policy(key_id=key.key_id).to_bytes()))
        yield mpc, key


def test_client_calls_raise_the_typed_error_itself(committee):
    mpc, key = committee
    exc = raised(mpc.create_key, threshold=5)
    assert_clean(exc, InvalidInput)
    assert "between 1 and 3" in str(exc)
    assert_clean(raised(mpc.create_key, threshold=0), InvalidInput)  # not silently the default
    assert_clean(raised(mpc.create_key, key_id=key.key_id), InvalidInput)  # the coordinator's refusal: key exists
    exc = raised(mpc.sign, "nope", DIGEST)
    assert_clean(exc, InvalidInput)
    assert "nope" in str(exc)
    assert_clean(raised(mpc.sign, key.key_id, b"short"), InvalidInput)
    assert_clean(raised(mpc.sign_many, "nope", [DIGEST, DIGEST]), InvalidInput)
    assert_clean(raised(mpc.derive, key.key_id, "m/0'/1"), InvalidInput)
    stranger = nacl.signing.SigningKey.generate()
    exc = raised(mpc.set_policy, sign_request(stranger, principal_id="root", kind="set_policy", format="json",
                                              body=base_policy(key_id=key.key_id).to_bytes(), key_id=key.key_id,
                                              now=time.time()))
    assert_clean(exc, Unauthorized)
    assert exc.rule.startswith("auth.")
    exc = raised(mpc_ray.connect, namespace="no-committee-here")
    assert_clean(exc, QuorumUnavailable)
    assert "no-committee-here" in str(exc)


def test_handles_and_wallets_raise_the_typed_error_itself(committee):
    mpc, key = committee
    handle = mpc.handle()
    assert_clean(raised(handle.sign, "nope", DIGEST), InvalidInput)
    assert_clean(raised(handle.sign, key.key_id, b"short"), InvalidInput)
    assert_clean(raised(handle.sign_many, key.key_id, [DIGEST, b"short"]), InvalidInput)
    for make in (mpc.evm_wallet, mpc.solana_wallet, mpc.taproot_wallet):
        exc = raised(make, "nope")
        assert_clean(exc, InvalidInput)
        assert "nope" in str(exc)
    assert_clean(raised(mpc.solana_wallet, key.key_id), InvalidInput)  # wrong scheme, named

    async def on_the_loop() -> list[BaseException]:
        out = []
        async with mpc.aio() as aio:
            for call in (aio.sign("nope", DIGEST), aio.sign(key.key_id, b"short"),
                         aio.sign_many(key.key_id, [DIGEST, b"short"]), aio.key_info("nope")):
                try:
                    await call
                except Exception as e:  # noqa: BLE001 - collected and checked below
                    out.append(e)
        return out

    errors = asyncio.run(on_the_loop())
    assert len(errors) == 4
    for exc in errors:
        assert_clean(exc, InvalidInput)


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def test_a_handled_denial_is_not_logged_as_an_unhandled_error(committee):
    """Every signer of a leased presignature refuses an over-the-cap transfer; the agent gets one clean
    PolicyDenied and its process logs no `Unhandled error` for the refusals it did not raise."""
    mpc, key = committee
    wallet = mpc.evm_wallet(key.key_id, agent=Agent("bot", AGENT))
    records = Records()
    ray_worker_log = logging.getLogger("ray._private.worker")  # where Ray reports errors dropped unfetched
    ray_worker_log.addHandler(records)
    try:
        mpc.wait_for_pools(key.key_id, 2, timeout=240)
        big = eip1559(data=erc20_call("a9059cbb", ALICE, 10**15), nonce=1)
        handle, leased = wallet._signer, []
        for _ in range(8):
            exc = raised(wallet.sign_transaction, big)
            assert_clean(exc, PolicyDenied)
            assert exc.rule == "policy.per_tx_cap"
            if leased and leased[-1] is not None:
                break  # this denial came from the signers of a leased presignature (one hop), not the coordinator
            if not leased:  # the first request made the handle's lease book: note from now on what it hands out
                take = handle._leases._take
                handle._leases._take = lambda key_id: leased.append(take(key_id)) or leased[-1]
            time.sleep(1.0)  # the background lease fetch the first request started lands
        assert leased and leased[-1] is not None, "no denial went through the one-hop (leased) path"
        del exc
        gc.collect()
        time.sleep(2.0)  # Ray reports a dropped error ref when its owner frees it
        gc.collect()
    finally:
        ray_worker_log.removeHandler(records)
    assert not [m for m in records.messages if "Unhandled error" in m], records.messages


def _log_records(actor) -> list[str]:
    """(Run inside the actor by __ray_call__.) Start, or return what was collected of, Ray's dropped-error reports."""
    log = logging.getLogger("ray._private.worker")
    handler = next((h for h in log.handlers if isinstance(h, Records)), None)
    if handler is None:
        log.addHandler(Records())
        return []
    gc.collect()
    return list(handler.messages)


@pytest.mark.parametrize("scheme", ["ecdsa-secp256k1", "eddsa-ed25519"])
def test_a_denial_through_the_coordinator_is_not_logged_as_an_unhandled_error(committee, scheme):
    """Both signers refuse an operator batch the operator's policy no longer allows; the coordinator reads both
    refusals (coordinator/sessions.py `gather`; for FROST, frost_engine.py `_get_all`) and raises the nodes' decision
    itself, so its process logs no `Unhandled error` for the second one."""
    import ray

    from mpc_ray.coordinator.coordinator import COORDINATOR_NAME
    from mpc_ray.intents import TxType
    from mpc_ray.node.policy import Policy

    mpc, _ = committee
    key = mpc.create_key(scheme)
    creds = mpc.credentials
    narrow = Policy(key_id=key.key_id, principal_id=creds.operator[0], allowed_chains=("eip155:1",),
                    allowed_tx_types=(TxType.RAW_DIGEST,), version=time.time_ns() // 1000)
    mpc.set_policy(creds.admin_request("set_policy", key_id=key.key_id, body=narrow.to_bytes()))
    coordinator = ray.get_actor(COORDINATOR_NAME)
    ray.get(coordinator.__ray_call__.remote(_log_records))
    for i in range(3):
        exc = raised(mpc.sign_many, key.key_id, [bytes([i]) * 32, bytes([i + 1]) * 32])
        assert_clean(exc, PolicyDenied)
    del exc
    gc.collect()
    time.sleep(2.0)  # Ray reports a dropped error ref when its owner frees it
    messages = ray.get(coordinator.__ray_call__.remote(_log_records))
    assert not [m for m in messages if "Unhandled error" in m], messages
