"""An mpc-ray EVM wallet pays an HTTP 402 resource through the x402 SDK's own client, and the SDK's own facilitator
verification (EIP-3009 signature recovery, recipient, amount, validity window) accepts the payment.

No chain: the facilitator's chain reads go to `OfflineChain`, which says the payer is an EOA and the token is a
contract and lets the transfer simulation pass; the signature check itself is the SDK's (`verify_universal_signature`
-> `verify_eoa_signature`). The keys are `mpc_ray.sim` keys behind `SimSigner` (no Ray).
"""

from __future__ import annotations

import asyncio

import httpx
import pytest
from x402 import x402Client, x402ClientSync
from x402.http.clients.httpx import x402AsyncTransport
from x402.http.constants import PAYMENT_REQUIRED_HEADER, PAYMENT_SIGNATURE_HEADER
from x402.http.utils import (
    decode_payment_signature_header,
    encode_payment_required_header,
)
from x402.mechanisms.evm.exact import (
    register_exact_evm_client,
)
from x402.mechanisms.evm.signer import ClientEvmSigner
from x402.schemas import PaymentRequired

from mpc_ray import sim
from mpc_ray.client.evm import EvmWallet, X402Signer
from mpc_ray.client.simsigner import SimSigner
from tests.support.primes import fixture_paillier_key
from tests.support.x402 import facilitator_verify, requirements


@pytest.fixture(scope="module")
def wallet() -> X402Signer:
    """The SDK's signer: the wallet's x402 adapter (sign_typed_data with a primary type, 65 bytes back)."""
    aux = sim.aux_info(3, "112", paillier_keys={i: fixture_paillier_key("112", i) for i in (1, 2, 3)})
    return EvmWallet(SimSigner({"pay": sim.keygen("ecdsa-secp256k1", parties=3, threshold=2, aux=aux)}),
                     "pay").x402_signer()


def test_wallet_satisfies_the_sdk_signer_protocol(wallet):
    signer: ClientEvmSigner = wallet  # structural: address + sign_typed_data(domain, types, primary_type, message)
    assert signer.address == wallet.address and wallet.address.startswith("0x")


def test_sdk_builds_a_payment_that_the_sdk_verifies(wallet):
    client = register_exact_evm_client(x402ClientSync(), wallet)
    req = requirements()
    payload = client.create_payment_payload(PaymentRequired(accepts=[req]))
    assert payload.payload["authorization"]["from"] == wallet.address
    result, chain = facilitator_verify(payload, req)
    assert result.is_valid, result
    assert result.payer == wallet.address
    assert chain.simulated and chain.simulated[0][1] == "transferWithAuthorization"


def test_sdk_verification_rejects_a_tampered_payment(wallet):
    client = register_exact_evm_client(x402ClientSync(), wallet)
    req = requirements()
    payload = client.create_payment_payload(PaymentRequired(accepts=[req]))
    sig = bytearray(bytes.fromhex(payload.payload["signature"][2:]))
    sig[5] ^= 1
    tampered = payload.model_copy(update={"payload": {**payload.payload, "signature": "0x" + sig.hex()}})
    result, _ = facilitator_verify(tampered, req)
    assert not result.is_valid and result.invalid_reason
    # the same payment presented for a larger amount does not verify either
    result, _ = facilitator_verify(payload, requirements(amount="20000"))
    assert not result.is_valid


def test_agent_pays_a_402_resource_over_http(wallet):
    """The README flow: an httpx client with the SDK's payment transport retries a 402 with the wallet's payment."""
    req = requirements()
    seen: list[bool] = []

    def resource(request: httpx.Request) -> httpx.Response:
        header = request.headers.get(PAYMENT_SIGNATURE_HEADER)
        if header is None:
            return httpx.Response(402, headers={PAYMENT_REQUIRED_HEADER: encode_payment_required_header(
                PaymentRequired(accepts=[req]))}, json={})
        result, _ = facilitator_verify(decode_payment_signature_header(header), req)
        seen.append(result.is_valid)
        return httpx.Response(200 if result.is_valid else 402, json={"weather": "sunny"})

    async def agent() -> httpx.Response:
        x402 = register_exact_evm_client(x402Client(), wallet)
        transport = x402AsyncTransport(x402, transport=httpx.MockTransport(resource))
        async with httpx.AsyncClient(transport=transport) as http:
            return await http.get("https://api.example/weather")

    response = asyncio.run(agent())
    assert response.status_code == 200 and response.json() == {"weather": "sunny"}
    assert seen == [True]
