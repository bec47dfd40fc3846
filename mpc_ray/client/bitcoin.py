"""`TaprootWallet`: a BIP341 key-path signer on a FROST BIP340 ("schnorr-bip340") threshold key.

    wallet = mpc.taproot_wallet(key.key_id)                  # network "mainnet" (bc1p...), "testnet" / "signet"
    wallet.internal_key, wallet.output_key                   # 32-byte x-only keys: P and Q = P + t G
    wallet.address                                           # bech32m P2TR address of Q
    sig = wallet.sign_sighash(sighash)                       # 64-byte BIP340 signature under Q (SIGHASH_DEFAULT)
    wallet.sign_sighash(sighash, hash_type=0x01)             # 65 bytes: signature || hash type
    wallet.sign_psbt(psbt)                                   # embit PSBT: finalises every input it can spend

The group key is the *internal* key P; the output key is Q = P + int(TapTweak(P || merkle_root)) G (BIP341; the
merkle root is empty for a key-path-only output, as BIP86 wallets make). The holders apply the same tweak to their
shares (`tap_tweak`), so the threshold signature verifies under Q with any BIP340 verifier; the wallet checks it with
libsecp256k1 before returning it (`BadSignature` otherwise). The tweaked key comes from libsecp256k1
(`xonly_pubkey_tweak_add`), the address from bip-utils' segwit encoder (bech32m for witness v1).

The wallet signs BIP341 signature hashes. `sign_psbt` takes an embit PSBT (optional dependency: the ``bitcoin``
extra), lets embit compute each input's BIP341 signature hash from the PSBT's prevouts, and finalises every input
whose witness UTXO pays to this wallet's output key with the key-path witness.

With an agent on the signer (``mpc.taproot_wallet(key_id, agent=Agent(...))``) the nodes decide: `sign_psbt` sends
the whole PSBT as one principal-signed ``btc_psbt`` request for the wallet's chain (``chain=``, by default the
network's CAIP-2 id, node/bitcoin_policy.py), and every holder decodes it, computes each input's BIP341 hash itself,
applies the agent's policy (recipients, caps counting the fee, ...) and signs every input at once. Such a PSBT must
spend only this wallet's own key-path output (every input with its witness UTXO; no script tree) with
SIGHASH_DEFAULT or SIGHASH_ALL; the wallet refuses anything else before sending it. The answer (one 64-byte BIP340
signature per input, concatenated) is checked input by input against the wallet's own embit hashes and the output
key before the PSBT is finalised. `sign_sighash` stays agent-free: an agent never gets a bare hash signed. A
`SimSigner` with an agent checks the nodes' decoding of the request and signs in process (no policy: no nodes).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from typing import Any

import coincurve
from bip_utils import SegwitBech32Encoder

from ..crypto.secp256k1 import Q as CURVE_ORDER
from ..errors import InvalidInput
from ..intents.bitcoin import (
    BTC_MAINNET,
    BTC_REGTEST,
    BTC_SIGNET,
    BTC_TESTNET3,
    BTC_TESTNET4,
    split_sighashes,
)
from ..requests import RequestFormat, SignedRequest
from ..types import Signature
from .signer import BadSignature, Payload, Signer

__all__ = ["CHAINS", "HRP", "TaprootWallet", "taproot_output_key"]

HRP = {"mainnet": "bc", "testnet": "tb", "testnet4": "tb", "signet": "tb", "regtest": "bcrt"}
# the CAIP-2 chain an agent's request names for each network (node/bitcoin_policy.py); testnet is testnet3
CHAINS = {"mainnet": BTC_MAINNET, "testnet": BTC_TESTNET3, "testnet4": BTC_TESTNET4, "signet": BTC_SIGNET,
          "regtest": BTC_REGTEST}
SIGHASH_TYPES = (0x00, 0x01, 0x02, 0x03, 0x81, 0x82, 0x83)  # BIP341: DEFAULT, ALL, NONE, SINGLE, (|ANYONECANPAY)


def _tagged_hash(tag: str, data: bytes) -> bytes:
    t = hashlib.sha256(tag.encode()).digest()
    return hashlib.sha256(t + t + data).digest()


def taproot_output_key(internal_key: bytes, merkle_root: bytes = b"") -> tuple[bytes, int]:
    """(x-only output key Q, parity of Q's Y) for internal key P (BIP341 ``taproot_tweak_pubkey``)."""
    if len(internal_key) != 32 or len(merkle_root) not in (0, 32):
        raise InvalidInput("internal key is 32 bytes (x-only); merkle root is empty or 32 bytes")
    tweak = _tagged_hash("TapTweak", bytes(internal_key) + bytes(merkle_root))
    if int.from_bytes(tweak, "big") >= CURVE_ORDER:
        raise InvalidInput("TapTweak out of range (probability 2^-128)")
    try:
        key = coincurve.PublicKeyXOnly(bytes(internal_key))
        key.tweak_add(tweak)
    except ValueError:
        raise InvalidInput("not a valid x-only public key, or the tweak gives the point at infinity") from None
    return key.format(), key.parity


class TaprootWallet:
    """See the module docstring."""

    def __init__(self, signer: Signer, key_id: str, *, network: str = "mainnet", merkle_root: bytes = b"",
                 path: str | None = None, chain: str | None = None) -> None:
        info = signer.key_info(key_id, path)  # with `path`: the BIP32 child's x-only key is the internal key
        if info.scheme != "schnorr-bip340":
            raise InvalidInput(f"key {key_id!r} is {info.scheme}; a Taproot wallet needs a schnorr-bip340 key")
        if network not in HRP:
            raise InvalidInput(f"network is one of {sorted(HRP)}")
        self._signer = signer
        self.key_id = key_id
        self.path = path
        self.network = network
        if chain is not None and chain not in {c for n, c in CHAINS.items() if HRP[n] == HRP[network]}:
            raise InvalidInput(f"chain must be the CAIP-2 id of a Bitcoin network with {network}'s addresses")
        self.chain = CHAINS[network] if chain is None else chain  # what an agent's requests name
        self.merkle_root = bytes(merkle_root)
        self.internal_key = info.public_key
        self.output_key, self.output_parity = taproot_output_key(self.internal_key, self.merkle_root)
        self._verifier = coincurve.PublicKeyXOnly(self.output_key)

    @property
    def address(self) -> str:
        """The bech32m P2TR address (witness v1 program = output key) on this wallet's network."""
        return self.address_for(self.network)

    def address_for(self, network: str) -> str:
        if network not in HRP:
            raise InvalidInput(f"network is one of {sorted(HRP)}")
        return SegwitBech32Encoder.Encode(HRP[network], 1, self.output_key)

    @property
    def script_pubkey(self) -> bytes:
        """OP_1 <32-byte output key>."""
        return b"\x51\x20" + self.output_key

    def __repr__(self) -> str:
        return f"TaprootWallet(key_id={self.key_id!r}, address={self.address})"

    # -------------------------------------------------------------------------------------------------------
    def _prepare(self, sighash: bytes, hash_type: int) -> tuple[Payload, Callable[[Signature], bytes]]:
        if not isinstance(sighash, (bytes, bytearray)) or len(sighash) != 32:
            raise InvalidInput("a BIP341 signature hash is 32 bytes")
        if hash_type not in SIGHASH_TYPES:
            raise InvalidInput(f"hash_type must be one of {[hex(t) for t in SIGHASH_TYPES]}")
        payload = Payload(self.key_id, bytes(sighash), None, tap_tweak=self.merkle_root, path=self.path)
        # BIP341: SIGHASH_DEFAULT signatures are 64 bytes; any other type is appended as a 65th byte
        return payload, lambda sig: sig.to_bytes() + (bytes([hash_type]) if hash_type else b"")

    def _checked(self, payload: Payload, sig: Signature) -> Signature:
        if not isinstance(sig, Signature) or sig.scheme != "schnorr-bip340" or len(sig.to_bytes()) != 64:
            raise BadSignature("the signer returned no BIP340 signature")
        if not self._verifier.verify(sig.to_bytes(), payload.message):
            raise BadSignature("the returned signature does not verify under the Taproot output key")
        return sig

    def _run(self, payload: Payload, finish: Callable[[Signature], Any]) -> Any:
        return finish(self._checked(payload, self._signer.sign_payload(payload)))

    async def _run_async(self, payload: Payload, finish: Callable[[Signature], Any]) -> Any:
        return finish(self._checked(payload, await self._signer.sign_payload_async(payload)))

    def sign_sighash(self, sighash: bytes, hash_type: int = 0x00) -> bytes:
        """The key-path witness signature for a BIP341 signature hash: 64 bytes (SIGHASH_DEFAULT) or 65."""
        return self._run(*self._prepare(sighash, hash_type))

    async def sign_sighash_async(self, sighash: bytes, hash_type: int = 0x00) -> bytes:
        return await self._run_async(*self._prepare(sighash, hash_type))

    # PSBT (embit) ---------------------------------------------------------------------------------------------
    def _psbt_inputs(self, psbt: Any, hash_type: int) -> tuple[Any, list[tuple[int, bytes]]]:
        """(the PSBT, [(input index, BIP341 signature hash)] for every input this wallet spends by key path)."""
        try:
            from embit.psbt import PSBT
        except ImportError:
            raise InvalidInput("sign_psbt needs the optional 'embit' package (pip install 'mpc-ray[bitcoin]')") from None
        if isinstance(psbt, str):
            try:
                psbt = PSBT.from_string(psbt)
            except Exception:  # noqa: BLE001 - embit raises several types on bad input
                raise InvalidInput("not a PSBT (base64)") from None
        if not isinstance(psbt, PSBT):
            raise InvalidInput("sign_psbt takes an embit PSBT or its base64 string")
        ours = []
        for i, inp in enumerate(psbt.inputs):
            utxo = inp.witness_utxo
            if utxo is None or utxo.script_pubkey.data != self.script_pubkey:
                continue  # not ours (or no witness UTXO to compute a BIP341 hash from)
            if (inp.taproot_merkle_root or b"") != self.merkle_root:
                raise InvalidInput(f"input {i} commits to another script tree than this wallet's")
            try:
                ours.append((i, bytes(psbt.sighash(i, sighash=hash_type))))
            except Exception as e:  # noqa: BLE001 - missing prevouts of other inputs, bad sighash type
                raise InvalidInput(f"cannot compute the BIP341 signature hash of input {i}: {type(e).__name__}") from None
        if not ours:
            raise InvalidInput("no input of this PSBT is spent by this wallet's output key")
        return psbt, ours

    @staticmethod
    def _finalise(psbt: Any, index: int, witness_sig: bytes) -> None:
        from embit.script import Witness

        psbt.inputs[index].final_scriptwitness = Witness([witness_sig])

    def sign_psbt(self, psbt: Any, hash_type: int = 0x00) -> Any:
        """Finalise every input of `psbt` (an embit PSBT, changed in place, or its base64) that this wallet spends by
        key path, and return the PSBT; InvalidInput if it spends none. With an agent: one request for the whole PSBT,
        which must spend only this wallet's output (see the module docstring)."""
        psbt, ours = self._psbt_inputs(psbt, hash_type)
        if self._agent is not None:
            request, sighashes = self._psbt_request(psbt, ours, hash_type)
            return self._finalise_all(psbt, sighashes, self._submit(request), hash_type)
        for index, sighash in ours:
            self._finalise(psbt, index, self.sign_sighash(sighash, hash_type))
        return psbt

    async def sign_psbt_async(self, psbt: Any, hash_type: int = 0x00) -> Any:
        psbt, ours = self._psbt_inputs(psbt, hash_type)
        if self._agent is not None:
            request, sighashes = self._psbt_request(psbt, ours, hash_type)
            # one request, answered once: a thread keeps the event loop free while the signer waits
            return self._finalise_all(psbt, sighashes, await asyncio.to_thread(self._submit, request), hash_type)
        sigs = await asyncio.gather(*(self.sign_sighash_async(h, hash_type) for _, h in ours))
        for (index, _), sig in zip(ours, sigs):
            self._finalise(psbt, index, sig)
        return psbt

    # agent path: one node-checked btc_psbt request -------------------------------------------------------------
    @property
    def _agent(self) -> Any:
        return getattr(self._signer, "agent", None)

    def _psbt_request(self, psbt: Any, ours: list[tuple[int, bytes]],
                      hash_type: int) -> tuple[SignedRequest, list[bytes]]:
        """The agent-signed ``btc_psbt`` request for `psbt` and the inputs' hashes this wallet computed."""
        if self.merkle_root:
            raise InvalidInput("the nodes sign key-path spends of an output without a script tree only")
        if hash_type not in (0x00, 0x01):
            raise InvalidInput("the nodes sign SIGHASH_DEFAULT and SIGHASH_ALL inputs only")
        if len(ours) != len(psbt.inputs):
            raise InvalidInput("under an agent's policy every input must spend this wallet's own output")
        for i, inp in enumerate(psbt.inputs):
            if inp.sighash_type not in (None, hash_type):
                raise InvalidInput(f"input {i} asks for sighash type {inp.sighash_type}, not {hash_type}")
            if hash_type:  # the nodes read the type from the PSBT: say it there
                inp.sighash_type = hash_type
        sighashes = [h for _, h in ours]
        payload = Payload(self.key_id, b"".join(sighashes), RequestFormat.BTC_PSBT, psbt.serialize(), self.chain,
                          path=self.path)
        return self._agent.sign(payload), sighashes

    def _submit(self, request: SignedRequest) -> Signature:
        submit = getattr(self._signer, "sign_request", None)
        if callable(submit):
            return submit(request)
        if getattr(self._signer, "simulates_committee", False):  # client/simsigner.py
            return self._simulate(request)
        raise InvalidInput("this signer cannot submit an agent's request")

    def _simulate(self, request: SignedRequest) -> Signature:
        """The simulator's stand-in for the committee: the nodes' decoder must arrive at the wallet's hashes."""
        from ..intents import intent_from_request

        sighashes = split_sighashes(intent_from_request(request).digest)
        sim: Any = self._signer
        sigs = [sim.sign_message(self.key_id, h, tap_tweak=b"", path=self.path).to_bytes() for h in sighashes]
        return Signature("schnorr-bip340", b"".join(sigs))

    def _finalise_all(self, psbt: Any, sighashes: list[bytes], sig: Any, hash_type: int) -> Any:
        """Check the committee's answer (one BIP340 signature per input) against this wallet's own hashes and
        output key, then finalise every input; BadSignature for anything else."""
        raw = sig.to_bytes() if isinstance(sig, Signature) and sig.scheme == "schnorr-bip340" else b""
        if len(raw) != 64 * len(sighashes):
            raise BadSignature(f"expected {len(sighashes)} BIP340 signatures, one per input")
        for i, sighash in enumerate(sighashes):
            part = raw[64 * i: 64 * (i + 1)]
            if not self._verifier.verify(part, sighash):
                raise BadSignature(f"the signature of input {i} does not verify under the Taproot output key")
        for i in range(len(sighashes)):
            self._finalise(psbt, i, raw[64 * i: 64 * (i + 1)] + (bytes([hash_type]) if hash_type else b""))
        return psbt
