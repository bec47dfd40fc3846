"""Helpers every OT module shares: length-prefixed hashing, check names, and the secret-holder base class."""

from __future__ import annotations

import hashlib
from typing import Any, NoReturn

from ...errors import ProtocolAbort

CHECK_PREFIX = "dkls23"
SEED_BYTES = 32


def hash_parts(tag: bytes, *parts: bytes, size: int = 32) -> bytes:
    """SHAKE-256 over the tag and each part, every one length-prefixed so that no two part lists hash alike."""
    h = hashlib.shake_256()
    for part in (tag, *parts):
        h.update(len(part).to_bytes(8, "big"))
        h.update(part)
    return h.digest(size)


def u32(value: int) -> bytes:
    return value.to_bytes(4, "big")


def abort(culprit: int, check: str, reporter: int, detail: str = "") -> ProtocolAbort:
    """A named failure of a DKLs23 check: `check` is the part after "dkls23." (for example "ote.kos_check")."""
    return ProtocolAbort(culprit, f"{CHECK_PREFIX}.{check}", detail, reporter=reporter)


class SecretHolder:
    """Base of every object that holds OT secrets: its repr is redacted and it refuses to be pickled (Ray's object
    store, logs and tracebacks must never see seeds, choice bits or pads); the store layer persists secrets through
    the explicit `to_secret_bytes` of the setup classes instead."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(<secret redacted>)"

    __str__ = __repr__

    def __reduce__(self) -> NoReturn:
        raise TypeError(f"{type(self).__name__} holds OT secrets and cannot be pickled")

    def __reduce_ex__(self, protocol: Any) -> NoReturn:
        self.__reduce__()
        raise AssertionError("unreachable")

    def __copy__(self) -> Any:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> Any:
        return self
