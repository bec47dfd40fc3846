"""Each crash the fuzz harnesses (tests/fuzz/harnesses.py) found, as a fixed input that used to escape untyped (or
kill the process) and is now refused with a typed error."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
import textwrap
from types import SimpleNamespace

import httpx
import nacl.signing
import pytest

from mpc_ray.errors import InvalidInput, ProtocolAbort

pytestmark = pytest.mark.fuzz


def test_an_envelope_missing_a_field_is_malformed_not_an_attribute_error():
    """envelope: a relay's pickle can carry a SealedEnvelope state without a field; open_envelope read it and raised
    AttributeError. Now `envelope.malformed`, naming the sender when that field is there."""
    from mpc_ray.node.envelope import SealedEnvelope, open_envelope, seal
    from mpc_ray.node.identity import NodeIdentity
    from mpc_ray.protocols.base import Envelope

    ids = {i: NodeIdentity.generate(i) for i in (1, 2)}
    directory = {i: ident.public() for i, ident in ids.items()}
    sealed = seal(ids[1], Envelope(b"sid", 2, 1, None, b"payload"), "frost.dkg", None)
    open_envelope(sealed, me=ids[2], directory=directory, expected_protocol="frost.dkg")  # the control opens
    for missing in ("sid", "round", "sender", "recipient", "protocol", "body", "signature"):
        hostile = object.__new__(SealedEnvelope)
        hostile.__dict__.update({k: v for k, v in sealed.__dict__.items() if k != missing})
        hostile = pickle.loads(pickle.dumps(hostile))  # as it crosses Ray: the state travels without the field
        with pytest.raises(ProtocolAbort) as abort:
            open_envelope(hostile, me=ids[2], directory=directory, expected_protocol="frost.dkg")
        assert abort.value.check == "envelope.malformed", missing
        assert abort.value.culprit == (0 if missing == "sender" else 1) and abort.value.reporter == 2


def test_a_policy_given_as_text_with_a_lone_surrogate_is_refused_typed():
    """policy: Policy.from_bytes(str) encoded the text first and raised UnicodeEncodeError on a lone surrogate."""
    from mpc_ray.node.policy import Policy, PolicyConfigError
    from tests.support.policies import base_policy

    text = base_policy().to_bytes().decode()
    assert Policy.from_bytes(text) == base_policy()
    for bad in ("\udcfb" + text[1:], text[:-1] + "\ud800}"):
        with pytest.raises(PolicyConfigError, match="UTF-8"):
            Policy.from_bytes(bad)


@pytest.mark.parametrize("token", ["1e400", "-1e400", "NaN", "Infinity"])
def test_a_policy_time_that_its_stored_form_cannot_keep_is_refused(token):
    """policy (store round trip): not_before / not_after accepted inf and NaN, which to_bytes writes as null, so a
    set_policy with not_before 1e400 (never in force; 1e400 passes parse_strict_json as a number) was stored as
    "always in force". Now only finite times are accepted."""
    from mpc_ray.node.policy import Policy, PolicyConfigError
    from mpc_ray.node.principals import parse_strict_json
    from tests.support.policies import base_policy

    text = base_policy().to_bytes().decode()
    for field in ("not_before", "not_after"):
        doc = text.replace(f'"{field}":null', f'"{field}":{token}').encode()
        assert doc != text.encode()
        if token.startswith(("1", "-1")):
            parse_strict_json(doc)  # what policy_from_request checks first lets it through
        with pytest.raises(PolicyConfigError, match="finite"):
            Policy.from_bytes(doc)
    timed = base_policy(not_before=1_700_000_000.5, not_after=1e300)
    assert Policy.from_bytes(timed.to_bytes()) == timed


@pytest.mark.parametrize("epoch", [b"[]", b"{}", b'"epoch"', b"null", b'{"epoch": null}', b'{"epoch": "x"}',
                                   b'{"epoch": [1]}', b'{"epoch": 1e400}', b"{", b'{"epoch": 1, "epoch": 2}'])
def test_a_backup_whose_epoch_entry_is_not_an_epoch_record_is_a_backup_error(epoch):
    """backup: restore read `int(json(entry)["epoch"])` of every epoch-* entry of an opened backup and raised
    TypeError / KeyError / OverflowError on anything else. Now BackupError, before the holder is touched."""
    from mpc_ray.node.backup import BackupError, BackupPayload, HolderBackup, _Entry
    from mpc_ray.protocols.wire import encode
    from tests.fuzz.harnesses import PASSPHRASE, _backup_world, _seal_backup

    world = _backup_world()
    entries = [e for e in world["payload"].entries if not e.name.startswith("epoch-")] + [_Entry("epoch-k1", epoch)]
    payload = BackupPayload(world["header"], 1, entries, [], [])
    blob = _seal_backup(world["header"], encode(payload))
    state = SimpleNamespace(role="holder", party=1)  # nothing of it is read before the entries are checked
    with pytest.raises(BackupError, match="not an epoch record"):
        HolderBackup(state, None).restore(blob, PASSPHRASE)


def test_a_deeply_nested_gateway_answer_is_a_typed_error_not_a_dead_agent():
    """gateway_answers: the remote client parsed the gateway's answer with httpx's json(), unbounded. With
    eth-account loaded (py_ecc lifts the recursion limit to 100,000) 70,000 nested "[" from a compromised gateway
    overflowed the C stack and killed the agent's process. Now the depth is checked first: a typed MpcError."""
    deep = "b'[' * 70_000 + b']' * 70_000"
    control = _run(f"""
        import sys, httpx
        import eth_account  # noqa: F401 - as in an agent's process
        assert sys.getrecursionlimit() >= 100_000
        httpx.Response(200, content={deep}).json()
        print("survived")
    """)
    assert control.returncode != 0 and "survived" not in control.stdout  # the bytes kill an unbounded parser
    guarded = _run(f"""
        import sys, httpx
        import eth_account  # noqa: F401
        from mpc_ray.client.remote import RemoteSigner
        from mpc_ray.errors import MpcError
        assert sys.getrecursionlimit() >= 100_000
        for status in (200, 400):
            try:
                RemoteSigner._answer(httpx.Response(status, content={deep}))
            except MpcError as exc:
                print("refused", type(exc).__name__)
    """)
    assert guarded.returncode == 0, guarded.stderr[-2000:]
    assert guarded.stdout.split() == ["refused", "MpcError"] * 2


def test_a_key_description_no_key_can_have_is_invalid_input():
    """gateway_answers: KeyOut accepts any scheme and threshold; to_key_info built a KeyInfo from them and raised
    pydantic's ValidationError out of RemoteSigner.key_info. Now InvalidInput naming the field."""
    from mpc_ray.client.remote import RemoteSigner
    from mpc_ray.client.signer import Agent

    good = {"key_id": "k1", "scheme": "ecdsa-secp256k1", "public_key": "02" + "11" * 32, "threshold": 2,
            "parties": 3, "chain_code": ""}
    for bad, field in (({"scheme": "rsa"}, "scheme"), ({"threshold": 0}, "threshold"), ({"parties": -1}, "parties")):
        answer = json.dumps({**good, **bad}).encode()
        transport = httpx.MockTransport(lambda request, answer=answer: httpx.Response(200, content=answer))
        remote = RemoteSigner("http://gateway.test", Agent("bot", nacl.signing.SigningKey.generate()),
                              transport=transport)
        with pytest.raises(InvalidInput, match=f"malformed key description: {field}"):
            remote.key_info("k1")
        remote.close()


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=120)
