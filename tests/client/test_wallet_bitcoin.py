"""TaprootWallet: the BIP341 output key and bech32m address agree with bip-utils (an independent BIP86
implementation) and the BIP86 test vector; coincurve verifies key-path signatures against the output key."""

from __future__ import annotations

import asyncio
import hashlib

import coincurve
import pytest
from bip_utils import P2TRAddrDecoder, P2TRAddrEncoder

from mpc_ray import sim
from mpc_ray.client.bitcoin import TaprootWallet, taproot_output_key
from mpc_ray.client.signer import BadSignature
from mpc_ray.client.simsigner import SimSigner
from mpc_ray.crypto.frost_suites import SUITES
from mpc_ray.errors import InvalidInput
from mpc_ray.protocols.frost import public_key_bytes

SIGHASH = hashlib.sha256(b"a BIP341 signature hash").digest()


@pytest.fixture(scope="module")
def keys():
    return {"btc": sim.keygen("schnorr-bip340", parties=3, threshold=2),
            "ed": sim.keygen("eddsa-ed25519", parties=3, threshold=2)}


@pytest.fixture(scope="module")
def wallet(keys) -> TaprootWallet:
    return TaprootWallet(SimSigner(keys), "btc")


def test_bip86_vector():
    # BIP86, first receiving address of account 0: internal key -> output key -> address
    internal = bytes.fromhex("cc8a4bc64d897bddc5fbc2f670f7a8ba0b386779106cf1223c6fc5d7cd6fc115")
    output, _ = taproot_output_key(internal)
    assert output.hex() == "a60869f0dbcf1dc659c9cecbaf8050135ea9e8cdc487053f1dc6880949dc684c"
    assert P2TRAddrEncoder.EncodeKey(b"\x02" + internal, hrp="bc") == \
        "bc1p5cyxnuxmeuwuvkwfem96lqzszd02n6xdcjrs20cac6yqjjwudpxqkedrcr"


def test_output_key_and_addresses(wallet, keys):
    key = keys["btc"]
    assert wallet.internal_key == key.public_key
    # the signers' own tweak (the FROST suite's BIP341 key adjustment) gives the same output key
    assert public_key_bytes(SUITES["schnorr-bip340"], key.public_package.group_key, b"") == wallet.output_key
    assert wallet.address == P2TRAddrEncoder.EncodeKey(b"\x02" + wallet.internal_key, hrp="bc")
    assert wallet.address.startswith("bc1p")
    assert P2TRAddrDecoder.DecodeAddr(wallet.address, hrp="bc") == wallet.output_key
    testnet = TaprootWallet(SimSigner(keys), "btc", network="testnet").address
    assert testnet.startswith("tb1p") and P2TRAddrDecoder.DecodeAddr(testnet, hrp="tb") == wallet.output_key
    assert wallet.address_for("regtest").startswith("bcrt1p")
    assert wallet.script_pubkey == b"\x51\x20" + wallet.output_key


def test_key_path_signature_verifies_against_the_output_key(wallet):
    sig = wallet.sign_sighash(SIGHASH)
    assert len(sig) == 64
    assert coincurve.PublicKeyXOnly(wallet.output_key).verify(sig, SIGHASH)
    assert not coincurve.PublicKeyXOnly(wallet.internal_key).verify(sig, SIGHASH)  # tweaked, not the raw key
    with_type = wallet.sign_sighash(SIGHASH, hash_type=0x01)
    assert len(with_type) == 65 and with_type[64] == 0x01
    assert coincurve.PublicKeyXOnly(wallet.output_key).verify(with_type[:64], SIGHASH)


def test_script_tree_commitment(keys):
    root = hashlib.sha256(b"a tapscript tree").digest()
    w = TaprootWallet(SimSigner(keys), "btc", merkle_root=root)
    assert w.output_key == public_key_bytes(SUITES["schnorr-bip340"], keys["btc"].public_package.group_key, root)
    assert coincurve.PublicKeyXOnly(w.output_key).verify(w.sign_sighash(SIGHASH), SIGHASH)


def test_async_twin(wallet):
    sig = asyncio.run(wallet.sign_sighash_async(SIGHASH))
    assert coincurve.PublicKeyXOnly(wallet.output_key).verify(sig, SIGHASH)


def test_refusals(wallet, keys):
    with pytest.raises(InvalidInput, match="32 bytes"):
        wallet.sign_sighash(SIGHASH[:31])
    with pytest.raises(InvalidInput, match="hash_type"):
        wallet.sign_sighash(SIGHASH, hash_type=0x04)
    with pytest.raises(InvalidInput, match="schnorr-bip340"):
        TaprootWallet(SimSigner(keys), "ed")
    with pytest.raises(InvalidInput, match="network"):
        TaprootWallet(SimSigner(keys), "btc", network="litecoin")


class UntweakedSigner(SimSigner):
    """Signs under the internal key: a signature a node would accept for the wrong output."""

    def sign_payload(self, payload):
        return self.sign_message(payload.key_id, payload.message)


def test_wallet_refuses_an_untweaked_signature(keys):
    with pytest.raises(BadSignature):
        TaprootWallet(UntweakedSigner(keys), "btc").sign_sighash(SIGHASH)


def test_hd_child_taproot_wallet(keys):
    """With `path=`, the BIP32 child's x-only key is the internal key; key-path signatures verify under its output."""
    child = TaprootWallet(SimSigner(keys), "btc", path="m/1/2")
    assert child.internal_key == keys["btc"].child_public_key("m/1/2") != keys["btc"].public_key
    assert child.address == P2TRAddrEncoder.EncodeKey(b"\x02" + child.internal_key, hrp="bc")
    assert coincurve.PublicKeyXOnly(child.output_key).verify(child.sign_sighash(SIGHASH), SIGHASH)


def psbt_spending(wallet: TaprootWallet, amounts=(100_000,), foreign: bool = False):
    """An embit PSBT spending `amounts` from the wallet's P2TR output (and one foreign P2TR input if asked)."""
    from embit.psbt import PSBT
    from embit.script import Script
    from embit.transaction import Transaction, TransactionInput, TransactionOutput

    spk = Script(wallet.script_pubkey)
    other = Script(b"\x51\x20" + bytes(range(1, 33)))
    utxos = [TransactionOutput(a, spk) for a in amounts] + ([TransactionOutput(5_000, other)] if foreign else [])
    vin = [TransactionInput(hashlib.sha256(b"prev %d" % i).digest(), i) for i in range(len(utxos))]
    psbt = PSBT(Transaction(vin=vin, vout=[TransactionOutput(sum(amounts) - 1_000, other)]))
    for inp, utxo in zip(psbt.inputs, utxos):
        inp.witness_utxo = utxo
    return psbt


def test_sign_psbt_with_embit(wallet):
    """embit computes each input's BIP341 hash; the finalised witnesses verify (embit and coincurve)."""
    from embit import ec

    psbt = psbt_spending(wallet, amounts=(100_000, 40_000), foreign=True)
    signed = wallet.sign_psbt(psbt.to_string())  # base64 in, PSBT out
    key = ec.PublicKey.from_xonly(wallet.output_key)
    for i in (0, 1):
        (sig,) = signed.inputs[i].final_scriptwitness.items
        sighash = signed.sighash(i, sighash=0)  # SIGHASH_DEFAULT (embit defaults to ALL)
        assert len(sig) == 64 and key.schnorr_verify(ec.SchnorrSig.parse(sig), sighash)
        assert coincurve.PublicKeyXOnly(wallet.output_key).verify(sig, sighash)
    assert signed.inputs[2].final_scriptwitness is None  # not ours: left alone
    again = asyncio.run(wallet.sign_psbt_async(psbt_spending(wallet), hash_type=0x01))
    (sig,) = again.inputs[0].final_scriptwitness.items
    assert len(sig) == 65 and sig[64] == 0x01
    assert coincurve.PublicKeyXOnly(wallet.output_key).verify(sig[:64], again.sighash(0, sighash=0x01))


def test_sign_psbt_refusals(wallet, keys):
    with pytest.raises(InvalidInput, match="no input"):
        TaprootWallet(SimSigner(keys), "btc", path="m/5").sign_psbt(psbt_spending(wallet))
    with pytest.raises(InvalidInput, match="PSBT"):
        wallet.sign_psbt("not a psbt")


# agents: the whole PSBT goes to the nodes as one btc_psbt request ------------------------------------------------
def agent_wallet(keys, **kw) -> TaprootWallet:
    import nacl.signing

    from mpc_ray.client.signer import Agent

    return TaprootWallet(SimSigner(keys, agent=Agent("bot", nacl.signing.SigningKey.generate())), "btc", **kw)


def psbt_paying(wallet: TaprootWallet, amounts=(100_000, 40_000)):
    """A PSBT spending only the wallet's own output, paying a P2WPKH address and change back to the wallet."""
    from embit.psbt import PSBT
    from embit.script import Script
    from embit.transaction import Transaction, TransactionInput, TransactionOutput

    spk = Script(wallet.script_pubkey)
    vin = [TransactionInput(hashlib.sha256(b"prev %d" % i).digest(), i) for i in range(len(amounts))]
    vout = [TransactionOutput(70_000, Script(b"\x00\x14" + bytes(range(20)))),
            TransactionOutput(sum(amounts) - 71_000, spk)]
    psbt = PSBT(Transaction(vin=vin, vout=vout))
    for inp, a in zip(psbt.inputs, amounts):
        inp.witness_utxo = TransactionOutput(a, spk)
    return psbt


def test_agent_signs_a_psbt_through_one_node_checked_request(keys):
    from embit import ec

    from mpc_ray.node.bitcoin_policy import BTC_REGTEST, decode_psbt

    wallet = agent_wallet(keys, network="regtest")
    assert wallet.chain == BTC_REGTEST
    psbt = psbt_paying(wallet)
    intent = decode_psbt(psbt.serialize(), wallet.chain)  # what every node reads from the request
    assert intent.spends == ((f"{BTC_REGTEST}/native", 70_000 + 1_000),) and intent.recipient.startswith("bcrt1q")
    assert dict(intent.details)["sender"] == wallet.address  # embit's bech32m agrees with bip-utils
    signed = wallet.sign_psbt(psbt)
    key = ec.PublicKey.from_xonly(wallet.output_key)
    for i in (0, 1):
        (sig,) = signed.inputs[i].final_scriptwitness.items
        assert len(sig) == 64 and key.schnorr_verify(ec.SchnorrSig.parse(sig), signed.sighash(i, sighash=0))
    again = asyncio.run(wallet.sign_psbt_async(psbt_paying(wallet, amounts=(90_000,)), hash_type=0x01))
    (sig,) = again.inputs[0].final_scriptwitness.items
    assert len(sig) == 65 and sig[64] == 0x01 and again.inputs[0].sighash_type == 0x01
    assert coincurve.PublicKeyXOnly(wallet.output_key).verify(sig[:64], again.sighash(0, sighash=0x01))
    child = agent_wallet(keys, path="m/1/2")  # an HD child's request carries its (signed) path
    (sig,) = child.sign_psbt(psbt_paying(child, amounts=(90_000,))).inputs[0].final_scriptwitness.items
    assert coincurve.PublicKeyXOnly(child.output_key).verify(sig, psbt_paying(child, amounts=(90_000,)).sighash(0, sighash=0))


def test_agent_psbt_refusals_before_anything_is_sent(keys):
    wallet = agent_wallet(keys)
    with pytest.raises(InvalidInput, match="every input"):
        wallet.sign_psbt(psbt_spending(wallet, foreign=True))  # the nodes sign only PSBTs of this wallet's own
    with pytest.raises(InvalidInput, match="SIGHASH_DEFAULT"):
        wallet.sign_psbt(psbt_paying(wallet), hash_type=0x83)
    mixed = psbt_paying(wallet)
    mixed.inputs[1].sighash_type = 0x01
    with pytest.raises(InvalidInput, match="sighash type"):
        wallet.sign_psbt(mixed)
    tree = agent_wallet(keys, merkle_root=hashlib.sha256(b"tree").digest())
    with pytest.raises(InvalidInput, match="script tree"):
        tree.sign_psbt(psbt_spending(tree))
    with pytest.raises(InvalidInput):
        wallet.sign_sighash(SIGHASH)  # an agent never gets a bare hash signed
    with pytest.raises(InvalidInput, match="chain"):
        agent_wallet(keys, network="mainnet", chain="bip122:000000000933ea01ad0ee984209779ba")  # testnet id


class LyingCommittee(SimSigner):
    """Answers an agent's PSBT request with a signature over something else, or with too few signatures."""

    def __init__(self, keys, agent, answer):
        super().__init__(keys, agent=agent)
        self.answer = answer

    def sign_request(self, request):
        return self.answer(self)


@pytest.mark.parametrize("answer,amounts", [
    (lambda s: s.sign_message("btc", SIGHASH, tap_tweak=b""), (90_000,)),  # valid, but over another hash
    (lambda s: s.sign_message("btc", SIGHASH, tap_tweak=b""), (60_000, 40_000)),  # one signature for two inputs
    (lambda s: s.sign_message("btc", SIGHASH), (90_000,)),  # under the untweaked internal key
])
def test_agent_wallet_refuses_a_wrong_answer(keys, answer, amounts):
    import nacl.signing

    from mpc_ray.client.signer import Agent

    wallet = TaprootWallet(LyingCommittee(keys, Agent("bot", nacl.signing.SigningKey.generate()), answer), "btc")
    psbt = psbt_paying(wallet, amounts=amounts)
    with pytest.raises(BadSignature):
        wallet.sign_psbt(psbt)
    assert all(inp.final_scriptwitness is None for inp in psbt.inputs)
