"""Principals: who may ask a share holder for what, and the registry of them a holder keeps.

A *principal* is an Ed25519 key with an id and a role: ``admin`` (creates keys, sets policies, changes the principal
registry), ``operator`` (back-office signing its policy allows) or ``agent`` (asks for signatures under a policy).
A `PrincipalRegistry` lists them and says how many distinct admin signatures an admin request needs
(``admin_quorum``, k of m). Pure data: the holder stores it (node/principals.py) and checks requests against it
(`mpc_ray.requests.signed.authenticate`).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import nacl.exceptions
import nacl.signing
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..errors import InvalidInput
from .strict_json import check_json_bounds

__all__ = ["MAX_SIGNATURES", "PRINCIPAL_ID_RE", "Principal", "PrincipalRegistry", "Role"]

SIGNATURE_BYTES = 64
MAX_SIGNATURES = 32
PRINCIPAL_ID_RE = r"^[a-z0-9][a-z0-9_-]{0,63}$"  # fits store names like policy.<key>.<principal>
U64_MAX = 2**64 - 1


class Role(StrEnum):
    ADMIN = "admin"  # committee changes, keys, policies, principals: needs the registry's admin quorum
    OPERATOR = "operator"  # back-office signing of digests / messages its policy allows (mpc.sign, sign_many)
    AGENT = "agent"  # transactions under its policy


def _load_verify_key(value: bytes) -> nacl.signing.VerifyKey:
    try:
        return nacl.signing.VerifyKey(value)
    except (nacl.exceptions.CryptoError, ValueError, TypeError):
        raise ValueError("not a valid Ed25519 public key") from None


class Principal(BaseModel):
    """An admin or agent: id, role and Ed25519 public key (32 bytes; hex in JSON)."""

    model_config = ConfigDict(frozen=True, extra="forbid", ser_json_bytes="hex", val_json_bytes="hex")

    id: Annotated[str, Field(pattern=PRINCIPAL_ID_RE)]
    role: Role
    verify_key: Annotated[bytes, Field(min_length=32, max_length=32)]

    @field_validator("verify_key")
    @classmethod
    def _valid_point(cls, v: bytes) -> bytes:
        _load_verify_key(v)
        return v

    @classmethod
    def from_signing_key(cls, id: str, role: Role | str, signing_key: nacl.signing.SigningKey) -> Principal:
        return cls(id=id, role=Role(role), verify_key=bytes(signing_key.verify_key))

    def verify(self, data: bytes, signature: bytes) -> bool:
        """True iff `signature` is this principal's Ed25519 signature of `data`."""
        if not isinstance(signature, bytes) or len(signature) != SIGNATURE_BYTES:
            return False
        try:
            nacl.signing.VerifyKey(self.verify_key).verify(bytes(data), signature)
        except nacl.exceptions.BadSignatureError:
            return False
        return True

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN


class PrincipalRegistry(BaseModel):
    """The principals a holder knows, and how many admin signatures an admin request needs.

    Stored in the node's EncryptedStore (`to_bytes`), and the body of a ``set_principals`` request.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", ser_json_bytes="hex", val_json_bytes="hex")

    principals: tuple[Principal, ...]
    admin_quorum: Annotated[int, Field(ge=1, le=MAX_SIGNATURES)] = 1
    # a holder accepts a set_principals registry only with a version above the one it has (admin.stale_version): an
    # older signed registry held back and delivered late cannot bring a revoked principal back. 1: the first one.
    version: Annotated[int, Field(ge=1, le=U64_MAX)] = 1

    @model_validator(mode="after")
    def _consistent(self) -> PrincipalRegistry:
        ids = [p.id for p in self.principals]
        if len(set(ids)) != len(ids):
            raise ValueError("principal ids must be unique")
        keys = [p.verify_key for p in self.principals]
        if len(set(keys)) != len(keys):
            raise ValueError("one public key cannot belong to two principals")
        admins = sum(1 for p in self.principals if p.is_admin)
        if admins < self.admin_quorum:
            # a quorum that can never be met locks every admin out for good
            raise ValueError(f"admin_quorum {self.admin_quorum} exceeds the number of admins ({admins})")
        return self

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> PrincipalRegistry:
        check_json_bounds(data)  # pydantic's parser has a depth limit of its own; this one is ours
        try:
            return cls.model_validate_json(data)
        except ValidationError as e:
            raise InvalidInput(f"malformed principal registry: {e.error_count()} error(s)") from None

    def get(self, principal_id: str) -> Principal | None:
        for p in self.principals:
            if p.id == principal_id:
                return p
        return None
