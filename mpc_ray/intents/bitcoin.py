"""Bitcoin Taproot key-path spends: decode a PSBT, compute its BIP341 signature hashes, build the `Intent` the
policy engine (node/policy.py) judges.

A ``btc_psbt`` request (`RequestFormat.BTC_PSBT`) carries a BIP174 version-0 PSBT whose every input spends, by key
path, the Taproot output of the signing key itself: the BIP341 output key Q = P + hash_TapTweak(P) G of the key's
x-only internal key P with an empty script tree (BIP86), or of its BIP32 child when the request names a derivation
path. Each holder decodes the PSBT itself with embit (the optional ``bitcoin`` extra; no parser of ours), computes
every input's BIP341 signature hash itself, and signs those hashes only: nothing the coordinator says about the
transaction is used.

Chains (CAIP-2, ``bip122:`` + the first 32 hex digits of the genesis block hash, as CAIP-4 names them):

========================================================= =========== ==========================================
``bip122:000000000019d6689c085ae165831e93``                 mainnet     addresses ``bc1...``, ``1...``, ``3...``
``bip122:000000000933ea01ad0ee984209779ba``                 testnet3    ``tb1...``, ``m/n...``, ``2...``
``bip122:00000000da84f2bafbbc53dee25a72ae``                 testnet4    as testnet3
``bip122:00000008819873e925422c1ff0f99f7c``                 signet      as testnet3 (every signet shares this genesis)
``bip122:0f9188f13cb7b2c71f2a335e3a4fc328``                 regtest     ``bcrt1...``, ``m/n...``, ``2...``
========================================================= =========== ==========================================

The native asset is ``<chain>/native`` (`native_asset`), counted in satoshis. A PSBT does not commit to its
network (a testnet-labelled PSBT that spends a mainnet output signs for mainnet), so the policies of one key allow at
most one of these chains (`check_chain_families`, node/policy.py).

Checks, each a `PolicyDenied` naming its rule (the engine's own rules follow them):

- ``policy.chain``: the request names no chain, or one not in the table above (a PSBT carries no chain id; the
  signed request's chain decides the network its addresses are read for).
- ``policy.witness_utxo``: an input without ``PSBT_IN_WITNESS_UTXO``, or with a ``non_witness_utxo`` that is not the
  previous transaction or disagrees with it. The BIP341 hash commits to every input's amount and scriptPubKey, so a
  PSBT that lies about them gets a signature no node on the network accepts: the fee and spend counted here are the
  real ones or nothing is spendable.
- ``policy.sighash_type``: an input asking for any type but SIGHASH_DEFAULT (0x00, or the field absent) and
  SIGHASH_ALL (0x01). Both commit to every input and every output; NONE, SINGLE and ANYONECANPAY let someone else
  change outputs or add inputs after the holders looked, so the spend they judged would not be the one signed.
- ``policy.key_path``: an input carrying a Taproot merkle root or leaf scripts (script-path data: these nodes sign
  for the key path of an empty script tree only).
- ``policy.sender``: the inputs spend from more than one scriptPubKey, or not from a Taproot output (here), or not
  from this key's own output (`check_sender`, on the holder, which knows its key).

Anything malformed is `InvalidInput`: not a PSBT, not version 0, a non-canonical encoding (embit must re-serialise
it to the very bytes signed by the agent), no inputs or more than `MAX_INPUTS`, an input already finalised or with
legacy/segwit-v0 scripts, an output whose script has no address, amounts above 21 million BTC, outputs above inputs.

The intent: type ``btc_transfer``; ``recipients`` the addresses of outputs that do not pay back to the sender (in
order, each once; the allowlist and denylist apply to each), ``recipient`` the first of them; ``amount`` what those
outputs pay; ``spends`` one native spend of amount + fee (fee = inputs - outputs: it leaves the wallet, so caps
count it; change to the sender's own address is not spent); ``digest`` the inputs' 32-byte BIP341 signature hashes
concatenated in input order (what the holders sign, one FROST signature per input). ``details`` has the sender,
its scriptPubKey, the fee, the change, the unsigned txid, the counts and each input's sighash type.
"""

from __future__ import annotations

from typing import Any

from ..errors import InvalidInput, PolicyDenied
from .base import Intent, TxType, as_bytes, merge_spends, native_asset

__all__ = [
    "BITCOIN_CHAINS",
    "BTC_MAINNET",
    "BTC_REGTEST",
    "BTC_SIGNET",
    "BTC_TESTNET3",
    "BTC_TESTNET4",
    "MAX_INPUTS",
    "SIGHASH_TYPES",
    "check_sender",
    "decode_psbt",
    "p2tr_script",
    "split_sighashes",
]

BTC_MAINNET = "bip122:000000000019d6689c085ae165831e93"
BTC_TESTNET3 = "bip122:000000000933ea01ad0ee984209779ba"
BTC_TESTNET4 = "bip122:00000000da84f2bafbbc53dee25a72ae"
BTC_SIGNET = "bip122:00000008819873e925422c1ff0f99f7c"
BTC_REGTEST = "bip122:0f9188f13cb7b2c71f2a335e3a4fc328"
# chain -> embit network name (address prefixes)
BITCOIN_CHAINS: dict[str, str] = {
    BTC_MAINNET: "main",
    BTC_TESTNET3: "test",
    BTC_TESTNET4: "test",
    BTC_SIGNET: "signet",
    BTC_REGTEST: "regtest",
}
SIGHASH_TYPES = (0x00, 0x01)  # SIGHASH_DEFAULT, SIGHASH_ALL: both commit to every input and output
MAX_INPUTS = 256  # one FROST nonce per input and signer; a bound on what one request can take from the pools
MAX_MONEY = 21_000_000 * 100_000_000
SIGHASH_BYTES = 32


def p2tr_script(output_key: bytes) -> bytes:
    """The scriptPubKey of a Taproot output: OP_1 <32-byte x-only output key>."""
    if len(output_key) != 32:
        raise InvalidInput("a Taproot output key is 32 bytes (x-only)")
    return b"\x51\x20" + bytes(output_key)


def split_sighashes(digest: bytes) -> list[bytes]:
    """A ``btc_transfer`` intent's digest back into its per-input 32-byte signature hashes."""
    if not digest or len(digest) % SIGHASH_BYTES:
        raise InvalidInput("not a list of 32-byte signature hashes")
    return [digest[k : k + SIGHASH_BYTES] for k in range(0, len(digest), SIGHASH_BYTES)]


def check_sender(intent: Intent, output_key: bytes) -> None:
    """PolicyDenied ``policy.sender`` unless the PSBT's inputs spend this key's own Taproot output `output_key`."""
    if intent.type is not TxType.BTC_TRANSFER:
        raise InvalidInput("not a Bitcoin intent")
    if dict(intent.details).get("sender_script") != p2tr_script(output_key).hex():
        raise PolicyDenied("policy.sender", "the transaction does not spend from this key's Taproot address")


def _embit() -> tuple[Any, Any, Any]:
    try:
        from embit.networks import NETWORKS
        from embit.psbt import PSBT
        from embit.script import Script
    except ImportError:
        raise InvalidInput("PSBT decoding needs the optional 'embit' package (pip install 'mpc-ray[bitcoin]')") from None
    return PSBT, Script, NETWORKS


def _parse(raw: bytes, psbt_cls: Any) -> Any:
    try:
        psbt = psbt_cls.parse(raw)
        canonical = psbt.serialize() == raw
    except Exception as e:  # noqa: BLE001 - embit raises several types (PSBTError, ValueError, ...) on bad input
        raise InvalidInput(f"malformed PSBT: {type(e).__name__}") from None
    if psbt.version not in (None, 0):
        raise InvalidInput("only version-0 PSBTs (BIP174) are supported")
    if not canonical:
        # re-encoding must give the signed bytes: no field embit skipped or read differently from what was sent
        raise InvalidInput("non-canonical PSBT encoding (re-serialise it with embit)")
    if not 1 <= len(psbt.inputs) <= MAX_INPUTS:
        raise InvalidInput(f"a PSBT here spends 1 to {MAX_INPUTS} inputs")
    if not psbt.outputs:
        raise InvalidInput("a PSBT without outputs")
    return psbt


def _check_input(i: int, inp: Any) -> tuple[bytes, int, int]:
    """(scriptPubKey, amount, sighash type) of input `i` after the per-input checks."""
    utxo = inp.witness_utxo
    if utxo is None:
        raise PolicyDenied("policy.witness_utxo", f"input {i} has no witness_utxo")
    prev = inp.non_witness_utxo
    if prev is not None and (prev.txid() != inp.txid or inp.vout >= len(prev.vout)
                             or prev.vout[inp.vout].serialize() != utxo.serialize()):
        raise PolicyDenied("policy.witness_utxo", f"input {i}: non_witness_utxo disagrees with the outpoint or witness_utxo")
    hash_type = 0 if inp.sighash_type is None else inp.sighash_type
    if hash_type not in SIGHASH_TYPES:
        raise PolicyDenied("policy.sighash_type", f"input {i} asks for sighash type {hash_type:#04x}; only "
                                                  "SIGHASH_DEFAULT and SIGHASH_ALL are signed")
    if inp.taproot_merkle_root or inp.taproot_scripts:
        raise PolicyDenied("policy.key_path", f"input {i} carries script-path data; only key-path spends are signed")
    if inp.final_scriptwitness is not None or inp.final_scriptsig is not None:
        raise InvalidInput(f"input {i} is already finalised")
    if inp.redeem_script is not None or inp.witness_script is not None:
        raise InvalidInput(f"input {i} has a redeem or witness script: not a Taproot key-path input")
    value = int(utxo.value)
    if not 0 <= value <= MAX_MONEY:
        raise InvalidInput(f"input {i}: amount out of range")
    return bytes(utxo.script_pubkey.data), value, hash_type


def decode_psbt(body: bytes, chain: str | None) -> Intent:
    """Decode a ``btc_psbt`` request body for `chain` (see the module docstring) into a ``btc_transfer`` intent."""
    raw = as_bytes(body, "PSBT")
    if chain is None or chain not in BITCOIN_CHAINS:
        raise PolicyDenied("policy.chain", f"chain {chain or '(none)'} is not a Bitcoin network these nodes know")
    psbt_cls, script_cls, networks = _embit()
    network = networks[BITCOIN_CHAINS[chain]]
    psbt = _parse(raw, psbt_cls)
    scripts, values, hash_types = [], [], []
    for i, inp in enumerate(psbt.inputs):
        spk, value, hash_type = _check_input(i, inp)
        scripts.append(spk)
        values.append(value)
        hash_types.append(hash_type)
    sender = scripts[0]
    if len(sender) != 34 or sender[:2] != b"\x51\x20":
        raise PolicyDenied("policy.sender", "input 0 does not spend a Taproot (witness v1) output")
    stranger = next((i for i, s in enumerate(scripts) if s != sender), None)
    if stranger is not None:
        raise PolicyDenied("policy.sender", f"input {stranger} spends from another address than input 0")
    recipients: dict[str, None] = {}  # ordered set
    paid = change = 0
    for o, out in enumerate(psbt.outputs):
        value = int(out.vout.value)
        if not 0 <= value <= MAX_MONEY:
            raise InvalidInput(f"output {o}: amount out of range")
        spk = bytes(out.vout.script_pubkey.data)
        if spk == sender:
            change += value
            continue
        try:
            address = script_cls(spk).address(network)
        except Exception:  # noqa: BLE001 - embit: a script with no address form (OP_RETURN, bare, future versions)
            raise InvalidInput(f"output {o} pays a script with no address; only payments to addresses are signed") from None
        recipients.setdefault(address, None)
        paid += value
    total_in = sum(values)
    fee = total_in - paid - change
    if fee < 0 or total_in > MAX_MONEY:
        raise InvalidInput("the outputs pay more than the inputs hold")
    tx = psbt.tx  # built once: embit rebuilds it on every `psbt.tx`
    spks = [script_cls(s) for s in scripts]
    try:
        sighashes = [bytes(tx.sighash_taproot(i, script_pubkeys=spks, values=values, sighash=hash_types[i]))
                     for i in range(len(values))]
        txid = tx.txid().hex()
    except Exception as e:  # noqa: BLE001 - embit's TransactionError and friends
        raise InvalidInput(f"cannot compute the BIP341 signature hashes: {type(e).__name__}") from None
    asset = native_asset(chain)
    details = {
        "sender": script_cls(sender).address(network),
        "sender_script": sender.hex(),
        "fee": str(fee),
        "change": str(change),
        "txid": txid,
        "inputs": str(len(values)),
        "outputs": str(len(psbt.outputs)),
        "sighash_types": ",".join(str(t) for t in hash_types),
    }
    addresses = tuple(recipients)
    return Intent(
        TxType.BTC_TRANSFER,
        chain,
        b"".join(sighashes),
        asset=asset,
        recipient=addresses[0] if addresses else None,
        amount=paid,
        spends=merge_spends([(asset, paid + fee)]),
        details=tuple(details.items()),
        recipients=addresses,
    )
