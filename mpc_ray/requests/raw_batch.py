"""The body of a ``raw_batch`` request: the opaque messages an operator asks the committee to sign.

One signed request names every message of an `mpc.sign` / `sign_many` call, so a batch costs one principal signature
and one verification per holder, however many messages it carries. Each message may be signed a few times per
holder under one request, each with a fresh one-time secret (node/authorized.py keeps count), and only if the operator's policy on the key allows
``raw_digest`` (the messages are opaque: nothing is decoded, nothing can be counted against a spending cap).

Encoding (canonical: one byte string per batch, so the signed bytes name exactly one list):

    version 0x01 || tweak length (1 byte: 0xFF none, 0 for b"", 32 for a merkle root) || tweak
                 || count (4 bytes, big-endian, >= 1) || (length (4 bytes) || message) * count

`tap_tweak` is the BIP341 Taproot tweak of a BIP340 key (b"" for a key-path-only output, or a 32-byte merkle
root); it is part of what the operator signs, so no relay can move a signature to another output key.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Sequence

from ..errors import InvalidInput

__all__ = ["MAX_MESSAGES", "RawBatch", "decode_raw_batch", "encode_raw_batch"]

MAX_MESSAGES = 4096
MAX_MESSAGE_BYTES = 64 * 1024
RAW_BATCH_MESSAGES = 1024  # messages per operator request a client sends (one holder call signs at most this many)
RAW_BATCH_BYTES = 192 * 1024  # and at most this much message data (a signed request's body is <= 256 KiB)
_VERSION = 1
_NO_TWEAK = 0xFF


@dataclass(frozen=True)
class RawBatch:
    messages: tuple[bytes, ...]
    tap_tweak: bytes | None = None


def encode_raw_batch(messages: Sequence[bytes], tap_tweak: bytes | None = None) -> bytes:
    if isinstance(messages, (bytes, str)) or not 1 <= len(messages) <= MAX_MESSAGES:
        raise InvalidInput(f"a batch holds 1 to {MAX_MESSAGES} messages")
    if not all(isinstance(m, (bytes, bytearray)) and len(m) <= MAX_MESSAGE_BYTES for m in messages):
        raise InvalidInput(f"messages are bytes of at most {MAX_MESSAGE_BYTES} bytes")
    if tap_tweak is None:
        head = bytes([_VERSION, _NO_TWEAK])
    elif isinstance(tap_tweak, (bytes, bytearray)) and len(tap_tweak) in (0, 32):
        head = bytes([_VERSION, len(tap_tweak)]) + bytes(tap_tweak)
    else:
        raise InvalidInput("tap_tweak is b'' or a 32-byte merkle root")
    return head + struct.pack(">I", len(messages)) + b"".join(struct.pack(">I", len(m)) + bytes(m) for m in messages)


def decode_raw_batch(body: bytes) -> RawBatch:
    """The messages and tweak of a ``raw_batch`` body; InvalidInput for anything but the canonical encoding."""
    if not isinstance(body, (bytes, bytearray)) or len(body) < 6 or body[0] != _VERSION:
        raise InvalidInput("raw_batch: not a version-1 batch")
    body = bytes(body)
    tweak_len, pos = body[1], 2
    tap_tweak: bytes | None = None
    if tweak_len != _NO_TWEAK:
        if tweak_len not in (0, 32) or len(body) < pos + tweak_len + 4:
            raise InvalidInput("raw_batch: a tweak is 0 or 32 bytes")
        tap_tweak, pos = body[pos:pos + tweak_len], pos + tweak_len
    if len(body) < pos + 4:
        raise InvalidInput("raw_batch: truncated")
    (count,), pos = struct.unpack_from(">I", body, pos), pos + 4
    if not 1 <= count <= MAX_MESSAGES:
        raise InvalidInput(f"raw_batch: a batch holds 1 to {MAX_MESSAGES} messages")
    messages = []
    for _ in range(count):
        if len(body) < pos + 4:
            raise InvalidInput("raw_batch: truncated")
        (size,), pos = struct.unpack_from(">I", body, pos), pos + 4
        if size > MAX_MESSAGE_BYTES or len(body) < pos + size:
            raise InvalidInput("raw_batch: truncated or oversized message")
        messages.append(body[pos:pos + size])
        pos += size
    if pos != len(body):
        raise InvalidInput("raw_batch: trailing bytes")
    return RawBatch(tuple(messages), tap_tweak)


def raw_chunks(messages: Sequence[bytes], max_count: int | None = None) -> list[tuple[int, int]]:
    """(lo, hi) runs of `messages` that each fit one operator raw_batch request a client sends: at most `max_count`
    (default RAW_BATCH_MESSAGES) messages and RAW_BATCH_BYTES of message data (the signed body has a size limit)."""
    limit = RAW_BATCH_MESSAGES if max_count is None else min(max_count, RAW_BATCH_MESSAGES)
    out, lo, size = [], 0, 0
    for i, m in enumerate(messages):
        if i > lo and (i - lo >= limit or size + len(m) > RAW_BATCH_BYTES):
            out.append((lo, i))
            lo, size = i, 0
        size += len(m) + 4
    if len(messages) > lo:
        out.append((lo, len(messages)))
    return out
