"""Audit log: hash chain, node signatures, signed head checkpoint; tampering found at the right record."""

from __future__ import annotations

import io
import json
import os

import nacl.signing
import pytest

from mpc_ray.errors import PolicyDenied
from mpc_ray.node.audit import (
    AuditEntry,
    AuditLog,
    export_jsonl,
    read_head,
    verify_chain,
)
from mpc_ray.node.identity import NodeIdentity
from mpc_ray.node.policy import decode_personal_message
from mpc_ray.node.principals import Principal, RequestVerifier, sign_request
from mpc_ray.node.store import ConsumedLedger, StoreCorrupted, StoreLocked

NOW = 1_700_000_000.0


@pytest.fixture(scope="module")
def ident():
    return NodeIdentity.generate(2)


def _entries(n):
    intent = decode_personal_message(b"hello", "eip155:1")
    out = []
    for i in range(n):
        out.append(
            AuditEntry(
                decision="allow" if i % 2 == 0 else "deny",
                request_digest=bytes([i]) * 32,
                principal="bot",
                kind="sign",
                key_id="k1",
                intent=intent if i % 2 == 0 else None,
                rule=None if i % 2 == 0 else "policy.per_tx_cap",
                reason="allowed" if i % 2 == 0 else "over the cap \u00e9",
                presignature_id=os.urandom(32) if i % 2 == 0 else None,
                signature=os.urandom(64) if i % 2 == 0 else None,
            )
        )
    return out


def _make_log(path, ident, n=3):
    with AuditLog(path, ident) as lg:
        for i, e in enumerate(_entries(n)):
            lg.append(e, now=NOW + i)
    return path


def _line_spans(data: bytes):
    spans, start = [], 0
    for i, b in enumerate(data):
        if b == 0x0A:
            spans.append((start, i + 1))
            start = i + 1
    return spans


def test_append_verify_reopen(tmp_path, ident):
    path = _make_log(tmp_path / "audit.jsonl", ident)
    rep = verify_chain(path, ident.public())
    assert rep.ok and rep.records == 3 and rep.first_break_index is None and rep.anchored == 3
    recs = [json.loads(x) for x in path.read_bytes().splitlines()]
    assert [r["index"] for r in recs] == [0, 1, 2]
    assert recs[1]["prev_hash"] == recs[0]["record_hash"]
    assert recs[0]["intent"]["type"] == "personal_message" and recs[1]["rule"] == "policy.per_tx_cap"
    with AuditLog(path, ident) as lg:  # reopen continues the chain
        assert lg.count == 3
        lg.append_many(_entries(2), now=NOW + 10)  # group commit
    rep = verify_chain(path, ident.public().verify_key)
    assert rep.ok and rep.records == 5
    head = read_head(path)
    assert head.count == 5 and head.verify(ident.public().verify_key)


def test_every_byte_tampered_is_found_at_its_record(tmp_path, ident):
    path = _make_log(tmp_path / "audit.jsonl", ident)
    original = path.read_bytes()
    spans = _line_spans(original)
    assert len(spans) == 3 and spans[-1][1] == len(original)
    for pos in range(len(original)):
        expected = next(i for i, (a, b) in enumerate(spans) if a <= pos < b)
        flip = (0x01, 0x20, 0x80)[pos % 3]  # low bit, case / space, and non-ASCII edits
        data = bytearray(original)
        data[pos] ^= flip
        path.write_bytes(bytes(data))
        rep = verify_chain(path, ident.public())
        assert not rep.ok and rep.first_break_index == expected, (pos, flip, rep)
    path.write_bytes(original)
    assert verify_chain(path, ident.public()).ok


def test_deletion_reordering_duplication_truncation(tmp_path, ident):
    path = _make_log(tmp_path / "audit.jsonl", ident, n=4)
    original = path.read_bytes()
    lines = original.splitlines(keepends=True)

    def check(data, index, words):
        path.write_bytes(data)
        rep = verify_chain(path, ident.public())
        assert not rep.ok and rep.first_break_index == index, rep
        assert any(w in rep.problem for w in words), rep.problem

    check(b"".join(lines[:1] + lines[2:]), 1, ["index"])  # middle record deleted
    check(b"".join(lines[:1] + [lines[2], lines[1]] + lines[3:]), 1, ["index"])  # reordered
    check(b"".join(lines[:2] + [lines[1]] + lines[2:]), 2, ["index"])  # duplicated
    check(b"".join(lines[1:]), 0, ["index"])  # first record deleted
    check(b"".join(lines[:3]), 3, ["truncated"])  # last record deleted: the signed checkpoint notices
    check(b"".join(lines[:2]) + lines[2][:40], 2, ["truncated"])  # cut in the middle of a record
    check(b"", 0, ["truncated"])  # everything deleted, checkpoint left
    path.write_bytes(original)
    # a different node's key verifies nothing
    rep = verify_chain(path, NodeIdentity.generate(2).public())
    assert not rep.ok and rep.first_break_index == 0


def test_checkpoint_tampering_and_loss(tmp_path, ident):
    path = _make_log(tmp_path / "audit.jsonl", ident)
    head_path = path.with_name(path.name + ".head")
    good = head_path.read_bytes()
    for pos in range(len(good)):
        data = bytearray(good)
        data[pos] ^= 0x01
        head_path.write_bytes(bytes(data))
        assert not verify_chain(path, ident.public()).ok, pos
    head_path.unlink()
    rep = verify_chain(path, ident.public())
    assert not rep.ok and "checkpoint" in rep.problem
    with pytest.raises(StoreCorrupted):
        AuditLog(path, ident)  # refuses to continue a log whose checkpoint is gone
    with AuditLog(path, ident, repair_head=True, now=NOW + 50) as lg:  # operator decision, logged in the chain
        assert lg.count == 4
    recs = [json.loads(x) for x in path.read_bytes().splitlines()]
    assert recs[-1]["decision"] == "system" and "checkpoint" in recs[-1]["reason"]
    assert verify_chain(path, ident.public()).ok


def test_torn_tail_is_dropped_on_open_but_acknowledged_records_are_not(tmp_path, ident):
    path = _make_log(tmp_path / "audit.jsonl", ident)
    good = path.read_bytes()
    with open(path, "ab") as f:
        f.write(b'{"decision":"allow","ind')  # a crash mid-append: never acknowledged
    assert verify_chain(path, ident.public()).first_break_index == 3
    with AuditLog(path, ident) as lg:
        assert lg.recovered_torn_bytes > 0 and lg.count == 3
    assert path.read_bytes() == good and verify_chain(path, ident.public()).ok
    # an acknowledged record cut off: refuse to open
    path.write_bytes(good[: _line_spans(good)[2][0] + 10])
    with pytest.raises(StoreCorrupted):
        AuditLog(path, ident)
    # a damaged last record: refuse to open
    data = bytearray(good)
    data[-20] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(StoreCorrupted):
        AuditLog(path, ident)


def test_log_longer_than_checkpoint_is_a_crash_window(tmp_path, ident):
    path = _make_log(tmp_path / "audit.jsonl", ident)
    head_path = path.with_name(path.name + ".head")
    old_head = head_path.read_bytes()
    with AuditLog(path, ident) as lg:
        lg.append(_entries(1)[0], now=NOW + 5)
    head_path.write_bytes(old_head)  # as if the crash hit between the log fsync and the checkpoint rename
    rep = verify_chain(path, ident.public())
    assert rep.ok and rep.records == 4 and rep.anchored == 3
    with AuditLog(path, ident) as lg:
        assert lg.count == 4
    assert read_head(path).count == 4


def test_single_writer(tmp_path, ident):
    with AuditLog(tmp_path / "a.jsonl", ident), pytest.raises(StoreLocked):
        AuditLog(tmp_path / "a.jsonl", ident)


def test_entries_from_requests_and_export(tmp_path, ident):
    sk = nacl.signing.SigningKey.generate()
    with ConsumedLedger(tmp_path / "n.ledger") as led:
        v = RequestVerifier(
            [
                Principal.from_signing_key("root", "admin", sk),
                Principal.from_signing_key("bot", "agent", nacl.signing.SigningKey.generate()),
            ],
            led,
        )
        bad = sign_request(sk, principal_id="bot", kind="sign", format="eip191", body=b"x", key_id="k1", now=NOW)
        with pytest.raises(PolicyDenied) as e:
            v.verify(bad, NOW)
    path = tmp_path / "audit.jsonl"
    with AuditLog(path, ident) as lg:
        rec = lg.append(AuditEntry.for_denial(bad, e.value), now=NOW)
        assert rec["rule"] == "auth.bad_signature" and rec["principal"] == "bot"
        assert rec["request_digest"] == bad.digest().hex()
        lg.append_many(_entries(2), now=NOW + 1)
    out = tmp_path / "export.jsonl"
    rep = export_jsonl(path, out, ident.public())
    assert rep.ok and out.read_bytes() == path.read_bytes()
    buf = io.StringIO()
    data = bytearray(path.read_bytes())
    data[_line_spans(bytes(data))[1][0] + 5] ^= 1
    path.write_bytes(bytes(data))
    rep = export_jsonl(path, buf, ident.public())
    assert not rep.ok and rep.first_break_index == 1 and buf.getvalue().count("\n") == 1  # verified prefix only
