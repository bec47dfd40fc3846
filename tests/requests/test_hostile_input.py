"""Hostile request bodies: JSON nested deep enough to overflow the C stack, and decoders that panic in native code.

py_ecc (imported by eth-account) lifts Python's recursion limit to 100,000, so json.loads recurses on 70,000 nested
"[" (140 KB, under the body limit) until the C stack overflows and the process dies. Every JSON parse of outside
bytes is bounded first by a linear scan (`check_json_bounds`); the crash tests run in a subprocess, beside a control
that shows the same bytes kill an unguarded parser. solders raises pyo3's PanicException, a BaseException, on some
instructions: every decoder failure is the request's InvalidInput, at the holder, the coordinator and the gateway."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap
import time
from types import SimpleNamespace

import nacl.signing
import pytest

from mpc_ray.errors import InvalidInput, MpcError, Unauthorized
from mpc_ray.node.principals import (
    MAX_JSON_DEPTH,
    Principal,
    PrincipalRegistry,
    check_json_bounds,
    parse_strict_json,
    sign_request,
)
from tests.support.policies import TRANSFER_5, solana_panic_message

DEPTH = 70_000  # the reported crash: 140 KB of brackets


def nested(depth: int, open_: bytes = b"[", close: bytes = b"]") -> bytes:
    return open_ * depth + close * depth


def typed_data(inner: bytes) -> bytes:
    return b'{"types":{"EIP712Domain":[]},"primaryType":"EIP712Domain","domain":{},"message":' + inner + b"}"


def run_python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=120)


def test_deep_json_kills_an_unguarded_parser_but_every_entry_point_refuses_it():
    """In a child process with py_ecc's recursion limit: the control (plain json.loads) dies; the bounded parsers,
    the EIP-712 decoder on a signed request, a set_policy / set_principals body and the gateway's envelope parser
    each refuse the same 140 KB with InvalidInput, and the child exits normally."""
    control = run_python(f"""
        import json, sys
        import py_ecc  # noqa: F401 - what eth-account imports: the recursion limit goes to 100,000
        assert sys.getrecursionlimit() >= 100_000
        json.loads("[" * {DEPTH} + "]" * {DEPTH})
        print("survived")
    """)
    assert control.returncode != 0 and "survived" not in control.stdout  # the bytes are lethal to json.loads

    guarded = run_python(f"""
        import hashlib, sys, time
        import nacl.signing
        import py_ecc  # noqa: F401
        assert sys.getrecursionlimit() >= 100_000
        from mpc_ray.errors import InvalidInput
        from mpc_ray.requests.http import SignEnvelope
        from mpc_ray.node.policy import decode_typed_data, intent_from_request, policy_from_request
        from mpc_ray.node.principals import (Principal, PrincipalRegistry, VerifiedRequest, parse_strict_json,
                                             registry_from_request, sign_request)

        deep = b"[" * {DEPTH} + b"]" * {DEPTH}
        body = b'{{"types":{{"EIP712Domain":[]}},"primaryType":"EIP712Domain","domain":{{}},"message":' + deep + b"}}"
        sk = nacl.signing.SigningKey.generate()
        root = Principal.from_signing_key("root", "admin", sk)

        def verified(kind, body, key_id=""):
            req = sign_request(sk, principal_id="root", kind=kind, format="json", body=body, key_id=key_id,
                               now=time.time())
            return VerifiedRequest(req, root, ("root",), req.digest(), bytes(32))

        agent = sign_request(sk, principal_id="bot", kind="sign", format="eip712", body=body, key_id="k1",
                             chain="eip155:8453", now=time.time())
        attempts = {{
            "parse_strict_json": lambda: parse_strict_json(deep),
            "decode_typed_data": lambda: decode_typed_data(body),
            "intent_from_request": lambda: intent_from_request(agent),
            "policy_from_request": lambda: policy_from_request(verified("set_policy", deep, "k1")),
            "registry_from_request": lambda: registry_from_request(verified("set_principals", deep)),
            "registry_from_bytes": lambda: PrincipalRegistry.from_bytes(deep),
            "gateway_envelope": lambda: SignEnvelope.parse(b'{{"request":' + deep + b"}}"),
        }}
        for name, attempt in attempts.items():
            try:
                attempt()
            except InvalidInput as exc:
                assert "nested deeper" in str(exc) or "larger than" in str(exc), (name, str(exc))
                print("refused", name)
            else:
                print("accepted", name)
    """)
    assert guarded.returncode == 0, guarded.stderr[-2000:]
    lines = guarded.stdout.split()
    assert lines.count("refused") == 7 and "accepted" not in lines, guarded.stdout


@pytest.mark.parametrize("doc,ok", [
    (nested(MAX_JSON_DEPTH), True),
    (nested(MAX_JSON_DEPTH + 1), False),
    (nested(MAX_JSON_DEPTH + 1, b"{\"a\":", b"}"), False),
    (b'["' + b"[" * 1000 + b'"]', True),  # brackets inside a string do not nest
    (b'["\\"' + b"[" * 1000 + b'"]', True),  # nor after an escaped quote, still inside the string
    (b'["\\\\"' + b"[" * 1000, False),  # an escaped backslash ends with the string: these brackets count
    (b'"' + b"[" * 1000, False),  # an unterminated string over-counts: refused (it does not parse anyway)
    (b"[" * 10 + b"]" * 20 + b"[" * 70, True),  # a parser stops at the first unmatched "]": nothing after it nests
    (b"[" + b",".join([b"[]"] * 50_000) + b"]", True),  # wide is fine
])
def test_json_depth_is_counted_outside_strings(doc, ok):
    if ok:
        check_json_bounds(doc)
    else:
        with pytest.raises(InvalidInput, match="nested deeper"):
            check_json_bounds(doc)


def test_json_size_and_oversized_numbers_are_refused_typed():
    with pytest.raises(InvalidInput, match="larger than"):
        check_json_bounds(b"[" + b"1," * 200_000 + b"1]")
    check_json_bounds(b"[" + b"1," * 200_000 + b"1]", max_bytes=None)  # the node's own state: any size
    with pytest.raises(InvalidInput, match="not valid JSON"):
        parse_strict_json(b"1" * 5000)  # Python refuses to convert over 4,300 digits: ValueError, now typed
    with pytest.raises(InvalidInput, match="duplicate"):
        parse_strict_json(b'{"a":1,"a":2}')
    assert parse_strict_json(b'{"a":["[[[",{"b":"\\\\"}]}') == {"a": ["[[[", {"b": "\\"}]}


def test_a_native_panic_in_a_decoder_is_invalid_input():
    """solders panics (pyo3 PanicException, a BaseException that passes `except Exception`) on a transfer that
    lists one account; the decoders answer InvalidInput, so no caller sees anything else."""
    from mpc_ray.node.policy import decode_solana_message, intent_from_request
    from tests.support.policies import SOLANA

    from solders import system_program
    from solders.instruction import AccountMeta, Instruction
    from solders.pubkey import Pubkey

    raw = solana_panic_message()
    with pytest.raises(BaseException) as raw_panic:  # the control: solders itself does panic on such an instruction
        system_program.decode_transfer(Instruction(system_program.ID, TRANSFER_5,
                                                   [AccountMeta(Pubkey.new_unique(), True, True)]))
    assert not isinstance(raw_panic.value, Exception)
    req = sign_request(nacl.signing.SigningKey.generate(), principal_id="bot", kind="sign", format="solana_tx",
                       body=raw, key_id="k1", chain=SOLANA, now=time.time())
    with pytest.raises(InvalidInput, match="PanicException"):
        intent_from_request(req)
    with pytest.raises(BaseException) as direct:
        decode_solana_message(raw, SOLANA)
    assert not isinstance(direct.value, Exception)  # the module function still raises it: the guard is the entry


def test_the_coordinator_reads_no_json_and_no_foreign_format_before_the_holders():
    """The coordinator checks no principal signature, so on a FROST key it refuses a format the key cannot sign
    (EIP-712 JSON included) and another kind before decoding anything: nothing is parsed, nothing taken from pools."""
    from mpc_ray.coordinator import frost_requests

    def never(*_):
        raise AssertionError("decoded before the holders checked the signature")

    pools = SimpleNamespace(c=None, keys={"f1": SimpleNamespace(scheme="eddsa-ed25519")})
    sk = nacl.signing.SigningKey.generate()
    deep = sign_request(sk, principal_id="bot", kind="sign", format="eip712", body=typed_data(nested(DEPTH // 2)),
                        key_id="f1", chain="eip155:8453", now=time.time())
    admin = sign_request(sk, principal_id="root", kind="set_policy", format="json", body=b"{}", key_id="f1",
                         now=time.time())
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(frost_requests, "intent_from_request", never)
        with pytest.raises(InvalidInput, match="eip712 cannot be signed with a eddsa-ed25519 key"):
            frost_requests.frost_sign_request(pools, deep)
        with pytest.raises(Unauthorized) as e:
            frost_requests.frost_sign_request(pools, admin)
        assert e.value.rule == "auth.wrong_kind"


def test_the_coordinator_answers_each_request_of_a_batch_typed():
    from mpc_ray.coordinator.requests import _outcome

    class Panic(BaseException):  # what pyo3 raises: not an Exception
        pass

    def panics():
        raise Panic("index out of bounds")

    assert isinstance(_outcome(panics), MpcError)
    with pytest.raises(KeyboardInterrupt):
        _outcome(lambda: (_ for _ in ()).throw(KeyboardInterrupt()))


@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::RuntimeWarning")  # Serve's imports; its wrapper
def test_the_gateway_answers_a_native_panic_with_a_typed_body():
    """A BaseException from below (pyo3's PanicException relayed through Ray) becomes the typed 500 body, not an
    untyped server error; a deeply nested envelope is a 400 before any parser runs."""
    from starlette.requests import Request

    from mpc_ray.gateway.app import Gateway

    class Panic(BaseException):
        pass

    class Handle:
        async def key_info(self, key_id):
            raise Panic("index out of bounds")

    def http(body: bytes) -> Request:
        sent = False

        async def receive():
            nonlocal sent
            if sent:
                return {"type": "http.disconnect"}
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        return Request({"type": "http", "method": "POST", "path": "/v1/sign", "headers": []}, receive)

    gw = object.__new__(Gateway.func_or_class)
    gw._h = Handle()
    sk = nacl.signing.SigningKey.generate()
    req = sign_request(sk, principal_id="bot", kind="sign", format="raw_digest", body=b"\x01" * 32, key_id="k1",
                       now=time.time())
    answer = asyncio.run(Gateway.func_or_class.sign(gw, http(b'{"request":' + req.model_dump_json().encode() + b"}")))
    assert answer.status_code == 500 and json.loads(answer.body) == {"error": "MpcError",
                                                                     "message": "internal error (Panic)"}
    answer = asyncio.run(Gateway.func_or_class.sign(gw, http(b'{"request":' + nested(50_000) + b"}")))
    body = json.loads(answer.body)
    assert answer.status_code == 400 and body["error"] == "InvalidInput" and "nested deeper" in body["message"]


def test_registry_and_policy_versions_default_to_one_for_old_json():
    from mpc_ray.node.policy import Policy
    from tests.support.policies import base_policy

    root = Principal.from_signing_key("root", "admin", nacl.signing.SigningKey.generate())
    reg = PrincipalRegistry(principals=(root,))
    old = json.loads(reg.to_bytes())
    del old["version"]
    assert PrincipalRegistry.from_bytes(json.dumps(old).encode()).version == 1
    pol = json.loads(base_policy().to_bytes())
    del pol["version"]
    assert Policy.from_bytes(json.dumps(pol)).version == 1
    with pytest.raises(InvalidInput):
        PrincipalRegistry.from_bytes(reg.to_bytes().replace(b'"version":1', b'"version":0'))
