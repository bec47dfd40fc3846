"""x402 payments checked offline: the SDK's facilitator on a chain that is not there, and the requirements of a
paid resource (tests/client/test_x402.py, tests/client/test_chain_execution.py)."""

from __future__ import annotations

from x402.mechanisms.evm.exact import ExactEvmFacilitatorScheme
from x402.schemas import PaymentRequirements

USDC_BASE = "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913"


SELLER = "0xA1A1a1a1A1A1A1A1A1a1a1a1a1a1A1A1a1A1a1a1"


NETWORK = "eip155:8453"


class OfflineChain:
    """The facilitator's view of the chain, without a chain: the payer is an EOA, the token a deployed contract."""

    def __init__(self) -> None:
        self.simulated: list[tuple] = []

    def get_addresses(self) -> list[str]:
        return ["0x" + "fa" * 20]

    def get_code(self, address: str) -> bytes:
        return b"\x60\x80" if address.lower() == USDC_BASE.lower() else b""

    def read_contract(self, address, abi, function_name, *args):
        self.simulated.append((address, function_name, args))  # transferWithAuthorization eth_call: succeeds

    def get_chain_id(self) -> int:
        return 8453


def requirements(amount: str = "10000") -> PaymentRequirements:
    return PaymentRequirements(scheme="exact", network=NETWORK, asset=USDC_BASE, amount=amount, pay_to=SELLER,
                               max_timeout_seconds=300, extra={"name": "USD Coin", "version": "2"})


def facilitator_verify(payload, req: PaymentRequirements):
    chain = OfflineChain()
    return ExactEvmFacilitatorScheme(chain).verify(payload, req), chain
