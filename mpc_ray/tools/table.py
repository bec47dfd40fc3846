"""The agent tool table: one entry per tool (name, description, strict input model, handler), shared by every door.

    tools = AgentTools(mpc.handle(agent=agent), evm_key_id=k.key_id, evm_chains=EvmChains({1: w3}))
    tools.call("send_evm_transaction", {"chain_id": 1, "to": "0x...", "value_wei": 10**15})
    # {"tx_hash": "0x...", "status": "success", ...} or {"error": "PolicyDenied", "message": ..., "rule": ...}

The MCP server (tools/mcp.py), the LangChain tools (tools/langchain.py) and the OpenAI Agents SDK tools
(tools/openai_agents.py) are thin adapters over `TOOLS`: adding a tool is adding one `ToolSpec` here.

Scope: an `AgentTools` signs as exactly one agent principal, the `Agent` its signer carries (a Ray handle made with
``agent=``, or a `RemoteSigner`); a signer without one would sign as the committee's operator and is refused, as is
an agent key that is an admin's or operator's (tools/principal.py). Every signature still goes to the nodes as that
agent's signed request, so the nodes decode it, apply the agent's policy and audit it; a refusal comes back as
``{"error": "PolicyDenied", "rule": "policy.per_tx_cap", ...}`` and nothing is sent to the chain.

Inputs are pydantic models with ``extra="forbid"``: an unknown field, a malformed address or amount is refused
(``{"error": "InvalidInput", ...}``) before anything is signed. Results are JSON objects. Amounts are integers in
the chain's base unit (wei, lamports, token base units); an integer or a decimal string is accepted (JSON numbers
above 2^53 lose precision in many clients).
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..client.signer import Agent
from ..errors import InvalidInput, MpcError, PolicyDenied
from .chains import ChainError, EvmChains, SolanaChain, evm_call
from .principal import refuse_privileged

__all__ = ["TOOLS", "AgentTools", "ToolSpec", "error_result"]

ERC20_TRANSFER = bytes.fromhex("a9059cbb")  # transfer(address,uint256)
MAX_BODY_CHARS = 16_384  # of a paid resource's answer handed back to the model

# -- input types ------------------------------------------------------------------------------------------------
EvmAddress = Annotated[str, Field(pattern=r"^0x[0-9a-fA-F]{40}$", description="0x-prefixed 20-byte address")]
Amount = Annotated[Annotated[int, Field(ge=0, le=2**256 - 1)] | Annotated[str, Field(pattern=r"^[0-9]{1,78}$")],
                   Field(description="integer in the chain's base unit (wei, lamports, token units); an integer or "
                                     "a decimal string")]
ChainId = Annotated[int, Field(ge=1, le=2**63 - 1, description="EIP-155 chain id, e.g. 1, 8453")]
Gas = Annotated[int, Field(ge=21_000, le=30_000_000)]
HexData = Annotated[str, Field(pattern=r"^0x([0-9a-fA-F]{2})*$", max_length=2 + 2 * 131_072,
                                description="0x-prefixed calldata")]
Base58Address = Annotated[str, Field(pattern=r"^[1-9A-HJ-NP-Za-km-z]{32,44}$", description="base58 Solana address")]
Base64 = Annotated[str, Field(pattern=r"^[A-Za-z0-9+/]+={0,2}$", max_length=1_400_000)]


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NoInput(_Input):
    pass


class EvmFees(_Input):
    tx_type: Literal["eip1559", "legacy"] = Field("eip1559", description="EIP-1559 (type 2) or legacy EIP-155")
    gas: Gas | None = Field(None, description="gas limit; default: the chain's estimate")
    max_fee_per_gas: Amount | None = Field(None, description="EIP-1559; default: 2 x base fee + priority fee")
    max_priority_fee_per_gas: Amount | None = Field(None, description="EIP-1559; default: the chain's suggestion")
    gas_price: Amount | None = Field(None, description="legacy; default: the chain's gas price")
    nonce: Annotated[int, Field(ge=0, le=2**64 - 2)] | None = Field(None, description="default: the next one")
    wait: bool = Field(True, description="wait for the receipt")


class SendEvmTransaction(EvmFees):
    chain_id: ChainId
    to: EvmAddress
    value_wei: Amount = 0
    data: HexData = "0x"


class TransferErc20(EvmFees):
    chain_id: ChainId
    token: EvmAddress
    to: EvmAddress
    amount: Amount


class SignTypedData(_Input):
    typed_data: dict[str, Any] = Field(description="the full EIP-712 document: types, primaryType, domain, message")


class PayX402(_Input):
    url: Annotated[str, Field(pattern=r"^https?://[^\s]{1,2000}$")]
    method: Literal["GET", "POST"] = "GET"
    json_body: dict[str, Any] | None = None


class TransferSol(_Input):
    to: Base58Address
    lamports: Annotated[int, Field(ge=1, le=2**64 - 1)]


class SendSolanaTransaction(_Input):
    transaction_base64: Base64 = Field(description="a serialized (legacy or v0) transaction this wallet pays for; "
                                                   "its signature slots may be empty")


class SignPsbt(_Input):
    psbt_base64: Base64


@dataclass(frozen=True)
class ToolSpec:
    name: str
    description: str
    input: type[BaseModel]
    run: Callable[[AgentTools, Any], dict[str, Any]]
    sends: bool = False  # the tool moves funds on a chain (adapters may mark it as not read-only)

    def schema(self) -> dict[str, Any]:
        """The strict JSON schema of the input (``additionalProperties: false``)."""
        return self.input.model_json_schema()


def error_result(exc: BaseException) -> dict[str, Any]:
    """{"error": type, "message": ...} (+ "rule" for PolicyDenied); an unexpected error names its type only."""
    if isinstance(exc, ValidationError):
        where = sorted({".".join(str(p) for p in e["loc"]) or "(input)" for e in exc.errors()})
        problems = sorted({e["type"] for e in exc.errors()})
        return {"error": "InvalidInput", "message": f"invalid input at {where}: {problems}"}
    if isinstance(exc, MpcError):
        out: dict[str, Any] = {"error": type(exc).__name__, "message": str(exc)}
        if isinstance(exc, PolicyDenied):
            out["rule"] = exc.rule
        return out
    return {"error": "InternalError", "message": f"unexpected {type(exc).__name__}"}


def _amount(value: int | str | None) -> int | None:
    if value is None:
        return None
    if int(value) >= 2**256:  # a 78-digit string can exceed uint256
        raise InvalidInput("amounts are below 2**256")
    return int(value)


# -- handlers ---------------------------------------------------------------------------------------------------
def _addresses(t: AgentTools, _: NoInput) -> dict[str, Any]:
    out: dict[str, Any] = {"principal": t.agent.principal_id}
    if t.evm_key_id:
        w = t.evm_wallet()
        out["evm"] = {"key_id": w.key_id, "path": w.path, "address": w.address, "chains": t.evm_chains.ids()}
    if t.solana_key_id:
        s = t.solana_wallet()
        out["solana"] = {"key_id": s.key_id, "address": s.address, "chain": s.chain}
    if t.bitcoin_key_id:
        b = t.taproot_wallet()
        out["bitcoin"] = {"key_id": b.key_id, "address": b.address, "network": b.network, "chain": b.chain}
    return out


def _send_evm(t: AgentTools, args: SendEvmTransaction) -> dict[str, Any]:
    return t.send_evm(args, to=args.to, value=_amount(args.value_wei), data=bytes.fromhex(args.data[2:]))


def _transfer_erc20(t: AgentTools, args: TransferErc20) -> dict[str, Any]:
    from eth_abi import encode as abi_encode

    data = ERC20_TRANSFER + abi_encode(["address", "uint256"], [args.to, _amount(args.amount)])
    return t.send_evm(args, to=args.token, value=0, data=data)


def _sign_typed_data(t: AgentTools, args: SignTypedData) -> dict[str, Any]:
    wallet = t.evm_wallet()
    signed = wallet.sign_typed_data(full_message=args.typed_data)
    return {"signer": wallet.address, "signature": "0x" + bytes(signed.signature).hex(),
            "message_hash": "0x" + bytes(signed.message_hash).hex()}


def _pay_x402(t: AgentTools, args: PayX402) -> dict[str, Any]:
    return asyncio.run(t.pay_x402(args))


def _transfer_sol(t: AgentTools, args: TransferSol) -> dict[str, Any]:
    from solders.message import Message
    from solders.pubkey import Pubkey
    from solders.system_program import TransferParams, transfer
    from solders.transaction import Transaction

    wallet, chain = t.solana_wallet(), t.solana_chain()
    try:
        to = Pubkey.from_string(args.to)
    except ValueError:
        raise InvalidInput("not a Solana address") from None
    ix = transfer(TransferParams(from_pubkey=wallet.pubkey, to_pubkey=to, lamports=args.lamports))
    message = Message.new_with_blockhash([ix], wallet.pubkey, chain.latest_blockhash())
    signed = wallet.sign_transaction(Transaction.new_unsigned(message))
    return {"from": wallet.address, "to": args.to, "lamports": args.lamports, **chain.send(signed)}


def _send_solana_transaction(t: AgentTools, args: SendSolanaTransaction) -> dict[str, Any]:
    from solders.message import Message
    from solders.transaction import Transaction, VersionedTransaction

    raw = base64.b64decode(args.transaction_base64)
    try:  # the wire form does not say which: a v0 message starts with 0x80 after the signatures
        tx: Transaction | VersionedTransaction = VersionedTransaction.from_bytes(raw)
        if isinstance(tx.message, Message):
            tx = Transaction.from_bytes(raw)
    except ValueError:
        raise InvalidInput("not a serialized Solana transaction") from None
    wallet = t.solana_wallet()
    signed = wallet.sign_transaction(tx)
    return {"from": wallet.address, **t.solana_chain().send(signed)}


def _sign_psbt(t: AgentTools, args: SignPsbt) -> dict[str, Any]:
    wallet = t.taproot_wallet()
    psbt = wallet.sign_psbt(args.psbt_base64)  # InvalidInput for a PSBT that is not base64 or not this key's
    tx = psbt.tx  # the unsigned transaction; every input is this key's (the nodes require it): add the witnesses
    for i, inp in enumerate(psbt.inputs):
        tx.vin[i].witness = inp.final_scriptwitness
    return {"psbt_base64": psbt.to_string(), "inputs_signed": len(psbt.inputs), "transaction_hex": tx.serialize().hex(),
            "txid": tx.txid().hex(), "address": wallet.address}


TOOLS: tuple[ToolSpec, ...] = (
    ToolSpec("get_addresses", "This agent's addresses: EVM, Solana and Bitcoin (Taproot), and its EVM chains.",
             NoInput, _addresses),
    ToolSpec("send_evm_transaction",
             "Sign and send an EVM transaction (native transfer or contract call) from this agent's address under "
             "its policy; waits for the receipt. Nonce, gas and fees default to the chain's.",
             SendEvmTransaction, _send_evm, sends=True),
    ToolSpec("transfer_erc20", "Send `amount` base units of an ERC-20 token to `to` (transfer(address,uint256)).",
             TransferErc20, _transfer_erc20, sends=True),
    ToolSpec("sign_typed_data", "Sign an EIP-712 typed-data document (e.g. a permit or an EIP-3009 authorization) "
             "with this agent's EVM key under its policy; returns the 65-byte signature.",
             SignTypedData, _sign_typed_data),
    ToolSpec("pay_x402", "Fetch an HTTP resource, paying its HTTP 402 (x402 'exact' EVM scheme) from this agent's "
             "EVM address under its policy; returns the status, the payment response and the body.",
             PayX402, _pay_x402, sends=True),
    ToolSpec("transfer_sol", "Send `lamports` SOL from this agent's Solana address to `to` (a System Program "
             "transfer) under its policy; waits for confirmation.", TransferSol, _transfer_sol, sends=True),
    ToolSpec("send_solana_transaction", "Sign and send a prepared Solana transaction (base64) that this agent's "
             "address pays for, under its policy.", SendSolanaTransaction, _send_solana_transaction, sends=True),
    ToolSpec("sign_psbt", "Sign every input of a PSBT (base64) that spends this agent's Taproot output (key path, "
             "BIP341) under its policy; returns the finalised PSBT and the raw transaction to broadcast.",
             SignPsbt, _sign_psbt),
)
_BY_NAME = {spec.name: spec for spec in TOOLS}


class AgentTools:
    """The tools of one agent principal on one committee; see the module docstring. Thread-safe for calls."""

    def __init__(self, signer: Any, *, evm_key_id: str | None = None, evm_path: str | None = None,
                 solana_key_id: str | None = None, solana_chain: str | None = None,
                 bitcoin_key_id: str | None = None, bitcoin_network: str = "mainnet",
                 evm_chains: EvmChains | Mapping[int, Any] | None = None, solana: SolanaChain | None = None,
                 x402_transport: Any = None, receipt_timeout_s: float = 120.0, credentials: Any = None,
                 registry: Any = None) -> None:
        agent = getattr(signer, "agent", None)
        if not isinstance(agent, Agent):
            raise InvalidInput("the agent tools need a signer that signs as an agent (mpc.handle(agent=...) or "
                               "RemoteSigner): without one it would sign as the committee's operator")
        refuse_privileged(agent, credentials=credentials, registry=registry)
        self.signer, self.agent = signer, agent
        self.evm_key_id, self.evm_path = evm_key_id, evm_path
        self.solana_key_id, self._solana_caip2 = solana_key_id, solana_chain
        self.bitcoin_key_id, self.bitcoin_network = bitcoin_key_id, bitcoin_network
        self.evm_chains = evm_chains if isinstance(evm_chains, EvmChains) else EvmChains(evm_chains)
        self._solana = solana
        self._x402_transport = x402_transport  # tests: an httpx transport standing in for the network
        self.receipt_timeout_s = float(receipt_timeout_s)
        self._wallets: dict[str, Any] = {}

    def __repr__(self) -> str:
        return f"AgentTools(agent={self.agent!r}, tools={[s.name for s in TOOLS]})"

    # the table ---------------------------------------------------------------------------------------------
    @staticmethod
    def specs() -> tuple[ToolSpec, ...]:
        return TOOLS

    def call(self, name: str, arguments: Mapping[str, Any] | None) -> dict[str, Any]:
        """Run tool `name` on `arguments`: its result, or a structured error (never raises for a tool's failure)."""
        spec = _BY_NAME.get(name)
        if spec is None:
            return {"error": "UnknownTool", "message": f"no tool {name!r}; tools: {sorted(_BY_NAME)}"}
        try:
            args = spec.input.model_validate(dict(arguments or {}))
            return spec.run(self, args)
        except Exception as exc:  # noqa: BLE001 - every failure is answered as a structured error
            return error_result(exc)

    async def acall(self, name: str, arguments: Mapping[str, Any] | None) -> dict[str, Any]:
        """`call` off the event loop (the wallets block on the committee, web3 on the chain)."""
        return await asyncio.to_thread(self.call, name, arguments)

    # wallets and chains --------------------------------------------------------------------------------------
    def _wallet(self, kind: str, make: Callable[[], Any]) -> Any:
        wallet = self._wallets.get(kind)
        if wallet is None:
            wallet = self._wallets[kind] = make()
        return wallet

    def evm_wallet(self) -> Any:
        if not self.evm_key_id:
            raise InvalidInput("this agent has no EVM key configured")
        return self._wallet("evm", lambda: self.signer.evm_wallet(self.evm_key_id, path=self.evm_path))

    def solana_wallet(self) -> Any:
        if not self.solana_key_id:
            raise InvalidInput("this agent has no Solana key configured")
        return self._wallet("sol", lambda: self.signer.solana_wallet(self.solana_key_id, chain=self._solana_caip2))

    def taproot_wallet(self) -> Any:
        if not self.bitcoin_key_id:
            raise InvalidInput("this agent has no Bitcoin key configured")
        return self._wallet("btc", lambda: self.signer.taproot_wallet(self.bitcoin_key_id,
                                                                        network=self.bitcoin_network))

    def solana_chain(self) -> SolanaChain:
        if self._solana is None:
            raise InvalidInput("no Solana RPC endpoint configured")
        return self._solana

    # EVM ---------------------------------------------------------------------------------------------------
    def send_evm(self, fees: EvmFees, *, to: str, value: int, data: bytes) -> dict[str, Any]:
        """Fill nonce, gas and fees from the chain, sign through the committee, broadcast, wait for the receipt."""
        from eth_utils import is_checksum_address, to_checksum_address

        chain_id: int = fees.chain_id  # type: ignore[attr-defined]
        w3 = self.evm_chains.get(chain_id)
        wallet = self.evm_wallet()
        if to != to.lower() and to[2:] != to[2:].upper() and not is_checksum_address(to):
            raise InvalidInput("the address's mixed case is not its EIP-55 checksum (a typo?)")
        to = to_checksum_address(to)
        tx: dict[str, Any] = {"chainId": chain_id, "to": to, "value": value, "data": data}
        tx["nonce"] = fees.nonce if fees.nonce is not None else evm_call(
            lambda: w3.eth.get_transaction_count(wallet.address, "pending"))
        tx["gas"] = fees.gas or evm_call(lambda: w3.eth.estimate_gas(
            {"from": wallet.address, "to": to, "value": value, "data": data}))
        if fees.tx_type == "legacy":
            if fees.max_fee_per_gas is not None or fees.max_priority_fee_per_gas is not None:
                raise InvalidInput("a legacy transaction takes gas_price, not EIP-1559 fees")
            tx["gasPrice"] = _amount(fees.gas_price) or evm_call(lambda: w3.eth.gas_price)
        else:
            if fees.gas_price is not None:
                raise InvalidInput("an EIP-1559 transaction takes max_fee_per_gas / max_priority_fee_per_gas")
            priority = _amount(fees.max_priority_fee_per_gas)
            if priority is None:
                priority = evm_call(lambda: w3.eth.max_priority_fee)
            max_fee = _amount(fees.max_fee_per_gas)
            if max_fee is None:
                base = evm_call(lambda: w3.eth.get_block("latest").get("baseFeePerGas")) or 0
                max_fee = 2 * base + priority
            tx.update(type=2, maxFeePerGas=max_fee, maxPriorityFeePerGas=priority)
        signed = wallet.sign_transaction(tx)  # the nodes decode it and apply the policy: PolicyDenied stops here
        tx_hash = evm_call(lambda: w3.eth.send_raw_transaction(signed.raw_transaction))
        out: dict[str, Any] = {"chain_id": chain_id, "tx_hash": "0x" + bytes(tx_hash).hex(), "from": wallet.address,
                               "to": to, "nonce": tx["nonce"], "status": "pending"}
        if fees.wait:
            receipt = evm_call(lambda: w3.eth.wait_for_transaction_receipt(tx_hash, timeout=self.receipt_timeout_s))
            out.update(status="success" if receipt["status"] == 1 else "reverted",
                       block_number=int(receipt["blockNumber"]), gas_used=int(receipt["gasUsed"]),
                       effective_gas_price=int(receipt.get("effectiveGasPrice") or 0))
        return out

    # x402 --------------------------------------------------------------------------------------------------
    async def pay_x402(self, args: PayX402) -> dict[str, Any]:
        try:
            import httpx
            from x402 import x402Client
            from x402.http.clients.httpx import x402AsyncTransport
            from x402.mechanisms.evm.exact import register_exact_evm_client
        except ImportError:
            raise InvalidInput("pay_x402 needs the x402 SDK (pip install 'mpc-ray[x402]')") from None
        signer = _CountingSigner(self.evm_wallet().x402_signer())
        client = register_exact_evm_client(x402Client(), signer)
        inner = self._x402_transport or httpx.AsyncHTTPTransport()
        try:
            async with httpx.AsyncClient(transport=x402AsyncTransport(client, transport=inner),
                                         timeout=60.0) as http:
                response = await http.request(args.method, args.url, json=args.json_body)
        except MpcError:
            raise
        except httpx.HTTPError as e:
            raise ChainError(f"x402 request failed: {type(e).__name__}") from None
        except Exception as e:  # noqa: BLE001 - the SDK's payment errors (no matching requirement, ...)
            cause = e.__cause__ or e.__context__
            if isinstance(cause, MpcError):  # the wallet's refusal (PolicyDenied ...) inside the SDK's wrapper
                raise cause from None
            raise InvalidInput(f"x402 payment failed: {type(e).__name__}: {e}"[:2000]) from None
        payment = next((v for k, v in response.headers.items() if k.lower() in ("payment-response",
                                                                                "x-payment-response")), None)
        body = response.text
        return {"url": args.url, "status_code": response.status_code, "paid": signer.signed > 0,
                "payer": signer.address, "payment_response": payment, "body": body[:MAX_BODY_CHARS], "truncated": len(body) > MAX_BODY_CHARS}


class _CountingSigner:
    """x402's signer, counting the payments it authorised (the SDK retries inside its transport)."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.signed = inner, 0

    @property
    def address(self) -> str:
        return self.inner.address

    def sign_typed_data(self, *args: Any, **kwargs: Any) -> bytes:
        out = self.inner.sign_typed_data(*args, **kwargs)
        self.signed += 1
        return out


def dumps(result: Mapping[str, Any]) -> str:
    """A tool result as compact JSON text (the adapters' text content)."""
    return json.dumps(result, separators=(",", ":"), default=str)
