"""One public surface (issue 19, step 4): every catchable error lives in `mpc_ray.errors` (old import paths keep
working, fields survive pickling), `Scheme` is a `StrEnum` that stands in for the scheme strings, and `MpcClient`'s
`status`, `refresh_key` and `reshare_key` answer typed results that still read like the dicts they were."""

from __future__ import annotations

import ast
import importlib
import inspect
import json
import pickle
from dataclasses import fields
from pathlib import Path

import pytest

from mpc_ray import errors
from mpc_ray.schemes import FROST_SCHEMES, SCHEMES, Scheme
from mpc_ray.types import EpochResult, KeyInfo, KeyStatus, Status

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "mpc_ray"

# (old module, name): each error that used to be defined there
OLD_PATHS = [
    ("mpc_ray.node.backup", "BackupError"),
    ("mpc_ray.node.lifecycle", "StaleEpoch"),
    ("mpc_ray.node.policy", "PolicyConfigError"),
    ("mpc_ray.node.holder", "HolderNotReady"),
    ("mpc_ray.node.store", "StoreCorrupted"),
    ("mpc_ray.node.store", "StoreLocked"),
    ("mpc_ray.node.store", "AlreadyConsumed"),
    ("mpc_ray.node.store", "SecretNotFound"),
    ("mpc_ray.coordinator.frost_pools", "HolderRefused"),
    ("mpc_ray.coordinator.sessions", "PartyUnavailable"),
    ("mpc_ray.coordinator.lifecycle", "LifecycleIncomplete"),
    ("mpc_ray.protocols.ecdsa.presign", "PresignatureUsed"),
    ("mpc_ray.protocols.ecdsa.presign", "PresignInconsistent"),
    ("mpc_ray.protocols.frost.signing", "NonceReuseError"),
    ("mpc_ray.tools.chains", "ChainError"),
    ("mpc_ray.client.signer", "RequestTimeout"),
    ("mpc_ray.client.signer", "BadSignature"),
    ("mpc_ray.client.remote", "GatewayUnavailable"),
    ("mpc_ray.devcluster", "ClusterNotRunning"),
]

ERROR_CLASSES = [c for _, c in inspect.getmembers(errors, inspect.isclass)
                 if issubclass(c, errors.MpcError) and c.__module__ == errors.__name__]


# errors -------------------------------------------------------------------------------------------------------
def _error_classes_outside(pkg: Path, known: set[str]) -> list[str]:
    """Classes defined under `pkg` (outside errors.py) that derive, directly or through each other, from a class
    named in `known`: by the source, so a module that is never imported by a test is covered too."""
    defs = []
    for path in sorted(pkg.rglob("*.py")):
        if path.name == "errors.py" and path.parent == pkg:
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ClassDef):
                bases = {b.id if isinstance(b, ast.Name) else b.attr for b in node.bases
                         if isinstance(b, (ast.Name, ast.Attribute))}
                defs.append((f"{path.relative_to(pkg.parent).as_posix()}:{node.lineno} {node.name}", node.name, bases))
    names, found = set(known), []
    changed = True
    while changed:  # a subclass of a subclass counts too
        changed = False
        for where, name, bases in defs:
            if bases & names and where not in found:
                found.append(where)
                names.add(name)
                changed = True
    return found


def test_every_mpc_error_is_defined_in_errors_py():
    stray = _error_classes_outside(PKG, {c.__name__ for c in ERROR_CLASSES})
    assert not stray, f"define these in mpc_ray/errors.py (re-export from the old module): {stray}"


def test_the_scan_sees_an_error_class_elsewhere(tmp_path):
    # else the test above proves nothing
    (tmp_path / "mpc_ray" / "node").mkdir(parents=True)
    (tmp_path / "mpc_ray" / "node" / "x.py").write_text(
        "from .. import errors\nclass A(errors.QuorumUnavailable): pass\nclass B(A): pass\nclass C(Exception): pass\n")
    found = _error_classes_outside(tmp_path / "mpc_ray", {"QuorumUnavailable"})
    assert [w.rsplit(" ", 1)[1] for w in found] == ["A", "B"]


@pytest.mark.parametrize(("module", "name"), OLD_PATHS, ids=lambda v: v)
def test_old_import_path_gives_the_same_class(module, name):
    assert getattr(importlib.import_module(module), name) is getattr(errors, name)


@pytest.mark.parametrize("cls", ERROR_CLASSES, ids=lambda c: c.__name__)
def test_every_error_has_a_docstring(cls):
    assert cls.__doc__ and cls.__doc__.strip()  # a class's own: __doc__ is not inherited


WITH_FIELDS = [
    errors.PolicyDenied("spend.daily_cap", "over the cap"),
    errors.Unauthorized("auth.bad_signature", "x"),
    errors.ProtocolAbort(2, "pi_enc.range_z1", "z1 too large", reporter=3),
    errors.ProofError("pi_log.eq", "mismatch"),
    errors.PresignInconsistent("delta_check"),
    errors.AlreadyConsumed(b"\x01" * 16),
    errors.PartyUnavailable(3, "timed out"),
    errors.HolderRefused(2, "InvalidInput: bad"),
    errors.LifecycleIncomplete("k1", 4, [2, 3], "party 3 down"),
]


@pytest.mark.parametrize("exc", WITH_FIELDS, ids=lambda e: type(e).__name__)
def test_fields_survive_pickling(exc):
    # Ray ships exceptions between processes by pickle: a caller must still see `culprit`, `check`, `party`...
    back = pickle.loads(pickle.dumps(exc))
    assert type(back) is type(exc) and vars(back) == vars(exc) and str(back) == str(exc)


def test_presign_inconsistent_keeps_its_check_name_once():
    # its constructor adds "presign.": pickling by its args used to add it twice
    assert pickle.loads(pickle.dumps(errors.PresignInconsistent("s_check"))).check == "presign.s_check"


@pytest.mark.parametrize("cls", [c for c in ERROR_CLASSES if c not in {type(e) for e in WITH_FIELDS}
                                 and "__init__" not in vars(c)], ids=lambda c: c.__name__)
def test_plain_errors_pickle(cls):
    back = pickle.loads(pickle.dumps(cls("what happened")))
    assert type(back) is cls and str(back) == "what happened"


# Scheme ------------------------------------------------------------------------------------------------------
def test_scheme_is_its_string():
    assert Scheme.ECDSA_SECP256K1 == "ecdsa-secp256k1" and Scheme("schnorr-bip340") is Scheme.SCHNORR_BIP340
    assert {Scheme.EDDSA_ED25519: 1}["eddsa-ed25519"] == 1  # hashes like the string: dict lookups keep working
    assert f"{Scheme.EDDSA_ED25519}" == "eddsa-ed25519" and json.dumps(Scheme.EDDSA_ED25519) == '"eddsa-ed25519"'
    assert SCHEMES == ("ecdsa-secp256k1", "eddsa-ed25519", "schnorr-bip340")
    assert set(FROST_SCHEMES) == {Scheme.EDDSA_ED25519, Scheme.SCHNORR_BIP340}
    with pytest.raises(ValueError):
        Scheme("ecdsa-p256")


@pytest.mark.parametrize("scheme", ["eddsa-ed25519", Scheme.EDDSA_ED25519])
def test_key_info_takes_a_scheme_or_its_string(scheme):
    info = KeyInfo(key_id="k", scheme=scheme, public_key=b"\x01" * 32, threshold=2, parties=3)
    assert info.scheme is Scheme.EDDSA_ED25519 and info.scheme == "eddsa-ed25519"
    assert json.loads(info.model_dump_json())["scheme"] == "eddsa-ed25519"


def test_key_info_refuses_an_unknown_scheme():
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        KeyInfo(key_id="k", scheme="ecdsa-p256", public_key=b"\x01" * 33, threshold=2, parties=3)


def test_sim_keygen_takes_a_scheme():
    from mpc_ray import sim

    key = sim.keygen(Scheme.EDDSA_ED25519, parties=2, threshold=2)
    sig = key.sign(b"hello")
    assert type(key.scheme) is str and sig.scheme == "eddsa-ed25519"  # plain strings inside


# typed results ------------------------------------------------------------------------------------------------
RAW_STATUS = {
    "parties": [1, 2, 3],
    "threshold": 2,
    "keys": {"e1": {"threshold": 2, "public_key": "02" + "11" * 32, "parties": 3, "members": [1, 2, 3]},
             "f1": {"scheme": "schnorr-bip340", "threshold": 2, "public_key": "22" * 32}},
    "pools": {"e1:1-2": 4, "f1:1": 8},
    "down": [3],
    "excluded": {2: "pi_enc.range_z1"},
    "disputes": [[1, 2]],
    "telemetry": {"waited_for_presigning": {}},
}
RAW_EPOCH = {"key_id": "e1", "scheme": "ecdsa-secp256k1", "epoch": 2, "parties": [1, 2, 3], "threshold": 2,
             "destroyed": {1: 4, 2: 4, 3: 0}}


def test_status_is_typed_and_reads_like_the_dict():
    st = Status.from_dict(RAW_STATUS)
    assert st.keys["e1"].scheme is Scheme.ECDSA_SECP256K1 and st.keys["f1"].scheme is Scheme.SCHNORR_BIP340
    assert st["parties"] == [1, 2, 3] and st["keys"]["e1"]["threshold"] == 2 and st.excluded == {2: "pi_enc.range_z1"}
    # a FROST key's entry has no committee fields: they read as missing, as in the dict
    f1 = st["keys"]["f1"]
    assert "members" not in f1 and f1.get("members", [9]) == [9] and "threshold" in f1
    with pytest.raises(KeyError):
        f1["parties"]
    assert st.get("nothing", 7) == 7
    plain = st.to_dict()
    json.dumps(plain)  # JSON-ready: `mpc-ray status --json` prints it
    assert plain == {**RAW_STATUS, "keys": {"e1": {**RAW_STATUS["keys"]["e1"], "scheme": "ecdsa-secp256k1"},
                                            "f1": RAW_STATUS["keys"]["f1"]}}


def test_status_refuses_a_field_it_has_no_type_for():
    with pytest.raises(TypeError):
        Status.from_dict({**RAW_STATUS, "surprise": 1})


def test_epoch_result_is_typed_and_reads_like_the_dict():
    out = EpochResult.from_dict(RAW_EPOCH)
    assert out.scheme is Scheme.ECDSA_SECP256K1 and out["epoch"] == 2 and out["parties"] == [1, 2, 3]
    assert sum(out["destroyed"].values()) == 8 and out.to_dict() == RAW_EPOCH
    assert pickle.loads(pickle.dumps(out)) == out


def _returned_dict(path: Path, cls: str, func: str) -> ast.expr:
    """The dict literal (or comprehension) that method `func` of class `cls` returns."""
    tree = ast.parse(path.read_text())
    scope = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == cls)
    fn = next(n for n in scope.body if isinstance(n, ast.FunctionDef) and n.name == func)
    return next(n.value for n in ast.walk(fn) if isinstance(n, ast.Return) and isinstance(n.value, (ast.Dict, ast.DictComp)))


def _keys(d: ast.AST) -> set[str]:
    return {k.value for k in getattr(d, "keys", []) if isinstance(k, ast.Constant) and isinstance(k.value, str)}


def test_the_types_cover_what_the_coordinator_answers():
    # the coordinator builds these dicts; a field added there needs a field in the typed result (else from_dict
    # raises TypeError on every call)
    status = _returned_dict(PKG / "coordinator" / "coordinator.py", "Coordinator", "status")
    assert _keys(status) == {f.name for f in fields(Status)}
    assert isinstance(status, ast.Dict)
    entries = set().union(*(_keys(c.value) for c in ast.walk(
        _returned_dict(PKG / "coordinator" / "ecdsa_engine.py", "EcdsaEngine", "key_status"))
        if isinstance(c, ast.DictComp)))
    frost = set().union(*(_keys(c.value) for c in ast.walk(
        _returned_dict(PKG / "coordinator" / "frost_engine.py", "FrostEngine", "key_status"))
        if isinstance(c, ast.DictComp)))
    assert {"threshold", "members", "scheme"} <= entries | frost <= {f.name for f in fields(KeyStatus)}
    epoch = _returned_dict(PKG / "coordinator" / "lifecycle.py", "LifecycleResult", "as_dict")
    assert _keys(epoch) == {f.name for f in fields(EpochResult)}


class _Remote:
    def __init__(self, answer, calls, name):
        self.answer, self.calls, self.name = answer, calls, name

    def remote(self, *args):
        self.calls.append((self.name, args))
        return self.answer


class _FakeCoordinator:
    """Answers as the coordinator actor would (no Ray: `get` is patched to return the value)."""

    def __init__(self):
        self.calls = []
        info = {"key_id": "f1", "scheme": "eddsa-ed25519", "public_key": b"\x02" * 32, "threshold": 2, "parties": 3}
        for name, answer in [("status", RAW_STATUS), ("refresh_key", RAW_EPOCH), ("reshare_key", RAW_EPOCH),
                             ("create_key", info), ("set_policy", None)]:
            setattr(self, name, _Remote(answer, self.calls, name))


@pytest.fixture
def client(monkeypatch):
    from mpc_ray.client import client as client_mod
    from mpc_ray.client.credentials import Credentials

    monkeypatch.setattr(client_mod, "get", lambda value, *a, **k: value)
    return client_mod.MpcClient(_FakeCoordinator(), threshold=2, parties=3,
                                credentials=Credentials.generate(operator_policy=False))


def test_client_answers_typed_results(client):
    assert isinstance(client.status(), Status) and client.status()["keys"]["e1"]["members"] == [1, 2, 3]
    assert isinstance(client.refresh_key("e1"), EpochResult)
    assert client.reshare_key("e1", parties=[1, 2, 3], threshold=2).epoch == 2


def test_client_create_key_takes_a_scheme_and_sends_the_plain_string(client):
    info = client.create_key(Scheme.EDDSA_ED25519, key_id="f1")
    assert info.scheme is Scheme.EDDSA_ED25519
    name, args = next(c for c in client._coordinator.calls if c[0] == "create_key")
    assert type(args[1]) is str and args[1] == "eddsa-ed25519"  # what the holders record and the approval names
    assert json.loads(args[3].body)["scheme"] == "eddsa-ed25519"


def test_client_names_the_default_ecdsa_protocol_and_never_cggmp21_in_the_approval(client):
    """Issue 20: new ECDSA keys are DKLs23 unless CGGMP21 is asked for. The holders read an approval naming no
    protocol as CGGMP21 (older approvals keep their meaning), so the client resolves the default itself and names it;
    a FROST key's approval names no protocol."""
    from mpc_ray.protocols.ecdsa_protocols import DEFAULT_ECDSA_PROTOCOL

    assert DEFAULT_ECDSA_PROTOCOL == "dkls23"
    for asked, sent, approved in [(None, "dkls23", "dkls23"), ("dkls23", "dkls23", "dkls23"),
                                  ("cggmp21", "cggmp21", None)]:
        client._coordinator.calls.clear()
        client.create_key("ecdsa-secp256k1", key_id="e9", protocol=asked)
        _, args = next(c for c in client._coordinator.calls if c[0] == "create_key")
        assert args[4] == sent and json.loads(args[3].body).get("protocol") == approved
    client._coordinator.calls.clear()
    client.create_key("eddsa-ed25519", key_id="f1")
    _, args = next(c for c in client._coordinator.calls if c[0] == "create_key")
    assert len(args) == 4 and "protocol" not in json.loads(args[3].body)


def test_client_create_key_refuses_an_unknown_scheme(client):
    with pytest.raises(errors.InvalidInput):
        client.create_key("ecdsa-p256")
