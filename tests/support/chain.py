"""In-process chains for the agent-tool tests: an EVM (eth-tester + py-evm through web3's EthereumTesterProvider)
with a small ERC-20 token deployed from bytecode kept here, and a Solana runtime (solders.litesvm).

The token is hand-assembled (nothing is compiled at test time). Storage slot = holder address; the deployer gets
10**24 units. Listing (runtime):

    PUSH1 0 CALLDATALOAD PUSH1 0xe0 SHR                          ; selector
    DUP1 PUSH4 a9059cbb EQ PUSH2 transfer JUMPI
    DUP1 PUSH4 70a08231 EQ PUSH2 balanceOf JUMPI
  fail: JUMPDEST PUSH1 0 DUP1 REVERT
  balanceOf: JUMPDEST PUSH1 4 CALLDATALOAD SLOAD PUSH1 0 MSTORE PUSH1 32 PUSH1 0 RETURN
  transfer: JUMPDEST CALLVALUE PUSH2 fail JUMPI                ; not payable
    CALLER SLOAD PUSH1 0x24 CALLDATALOAD                         ; bal amt
    DUP1 DUP3 LT PUSH2 fail JUMPI                                ; bal < amt: revert
    DUP1 DUP3 SUB CALLER SSTORE                                  ; balance[caller] = bal - amt
    PUSH1 4 CALLDATALOAD DUP1 SLOAD DUP3 ADD SWAP1 SSTORE        ; balance[to] += amt
    PUSH1 0 MSTORE PUSH1 4 CALLDATALOAD CALLER PUSH32 <Transfer topic> PUSH1 32 PUSH1 0 LOG3
    PUSH1 1 PUSH1 0 MSTORE PUSH1 32 PUSH1 0 RETURN               ; true

Constructor: PUSH32 10**24 CALLER SSTORE, then CODECOPY the runtime and RETURN it.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
from solders.transaction import VersionedTransaction
from solders.transaction_metadata import FailedTransactionMetadata

from mpc_ray.tools.chains import ChainError

TOKEN_BYTECODE = bytes.fromhex(
    "7f00000000000000000000000000000000000000000000d3c21bcecceda10000003355610085806100306000396000f3"
    "60003560e01c8063a9059cbb1461002e57806370a0823114610021575b600080fd5b6004355460005260206000f35b34"
    "61001c57335460243580821061001c578082033355600435805482019055600052600435337fddf252ad1be2c89b69c2"
    "b068fc378daa952ba7f163c4a11628f55a4df523b3ef60206000a3600160005260206000f3")
TOKEN_SUPPLY = 10**24
TOKEN_ABI = [
    {"name": "transfer", "type": "function", "stateMutability": "nonpayable",
     "inputs": [{"name": "to", "type": "address"}, {"name": "amount", "type": "uint256"}],
     "outputs": [{"name": "", "type": "bool"}]},
    {"name": "balanceOf", "type": "function", "stateMutability": "view",
     "inputs": [{"name": "holder", "type": "address"}], "outputs": [{"name": "", "type": "uint256"}]},
    {"name": "Transfer", "type": "event", "anonymous": False,
     "inputs": [{"name": "from", "type": "address", "indexed": True},
                {"name": "to", "type": "address", "indexed": True},
                {"name": "value", "type": "uint256", "indexed": False}]},
]


def evm_tester() -> Any:
    """A fresh in-process EVM: web3 over eth-tester's py-evm backend (auto-mining, EIP-1559 fees)."""
    from web3 import EthereumTesterProvider, Web3

    return Web3(EthereumTesterProvider())


def deploy_token(w3: Any, owner: str | None = None) -> Any:
    """The test token, its whole supply held by `owner` (default: the tester's first funded account)."""
    owner = owner or w3.eth.accounts[0]
    receipt = w3.eth.wait_for_transaction_receipt(w3.eth.send_transaction({"from": owner, "data": TOKEN_BYTECODE,
                                                                         "gas": 300_000}))
    assert receipt["status"] == 1
    return w3.eth.contract(receipt["contractAddress"], abi=TOKEN_ABI)


def fund(w3: Any, address: str, wei: int) -> None:
    tx = w3.eth.send_transaction({"from": w3.eth.accounts[0], "to": address, "value": wei})
    assert w3.eth.wait_for_transaction_receipt(tx)["status"] == 1


class LiteSvmChain:
    """`SolanaChain` over an in-process LiteSVM (signatures verified, blockhash checked, fees charged)."""

    def __init__(self, svm: Any) -> None:
        self.svm = svm
        self.sent: list[str] = []

    def latest_blockhash(self) -> Any:
        return self.svm.latest_blockhash()

    def send(self, tx: Any) -> dict[str, Any]:
        out = self.svm.send_transaction(tx)
        if isinstance(out, FailedTransactionMetadata):
            raise ChainError(f"the runtime refused the transaction: {out.err()}")
        signature = str(tx.signatures[0])
        self.sent.append(signature)
        return {"signature": signature, "status": "processed", "slot": int(self.svm.get_clock().slot)}


def litesvm_rpc(svm: Any) -> httpx.MockTransport:
    """A Solana JSON-RPC endpoint (the three calls `SolanaRpc` makes) answered by LiteSVM, as an httpx transport."""
    landed: dict[str, int] = {}

    def handle(request: httpx.Request) -> httpx.Response:
        call = json.loads(request.content)
        method, params = call["method"], call["params"]
        if method == "getLatestBlockhash":
            result: Any = {"context": {"slot": 1}, "value": {"blockhash": str(svm.latest_blockhash()),
                                                               "lastValidBlockHeight": 300}}
        elif method == "sendTransaction":
            tx = VersionedTransaction.from_bytes(base64.b64decode(params[0]))
            out = svm.send_transaction(tx)
            if isinstance(out, FailedTransactionMetadata):
                return httpx.Response(200, json={"jsonrpc": "2.0", "id": call["id"],
                                                 "error": {"code": -32002, "message": f"failed: {out.err()}"}})
            result = str(tx.signatures[0])
            landed[result] = int(svm.get_clock().slot)
        elif method == "getSignatureStatuses":
            result = {"context": {"slot": 1}, "value": [
                {"slot": landed[s], "confirmations": None, "err": None, "confirmationStatus": "confirmed"}
                if s in landed else None for s in params[0]]}
        else:
            return httpx.Response(200, json={"jsonrpc": "2.0", "id": call["id"],
                                             "error": {"code": -32601, "message": "method not found"}})
        return httpx.Response(200, json={"jsonrpc": "2.0", "id": call["id"], "result": result})

    return httpx.MockTransport(handle)
