"""The principal keys a client signs its requests with: admins (committee changes) and an operator (raw signing).

Every holder entry point that uses a secret or changes state checks a principal's signed request itself
(node/authorized.py), so a client that creates keys, signs digests or changes the committee must hold those keys:

- **admins** sign ``create_key``, ``refresh_key``, ``reshare_key``, ``extend_directory``, ``backup``, ``restore``,
  ``set_policy`` and ``set_principals`` requests; every admin held here co-signs, and the holders require the
  registry's ``admin_quorum`` of distinct admins. A production committee keeps its admins apart (one per person or
  team, quorum above one) and co-signs with `cosign` in a separate step.
- the **operator** signs ``raw_batch`` requests: `mpc.sign` and `sign_many` of digests or messages the key's
  operator policy allows (back-office signing, the CLI, benchmarks).

Where they come from:
- `local_cluster`, `mpc-ray up` and `mpc-ray demo` make fresh ones (`Credentials.generate`) and register them on
  the new committee; `up` keeps them in its state directory (mode 0600) for later CLI calls;
- `Credentials.load()` for a deployed committee: ``MPC_RAY_CREDENTIALS`` (a JSON file, mode 0600 or stricter),
  or ``MPC_RAY_CREDENTIALS_COMMAND`` (a secret-manager command that prints that JSON on stdout), or the
  environment variables ``MPC_RAY_ADMIN_KEYS`` (``id:hex-seed,...``) and ``MPC_RAY_OPERATOR_KEY`` (``id:hex-seed``).
  Rotate a key by registering its successor with a ``set_principals`` request, then dropping the old one.

The JSON form: ``{"admins": [{"id": "alice", "seed": "<64 hex>"}], "operator": {"id": "ops", "seed": "..."},
"operator_policy": false, "coordinator_seed": "<64 hex>"}``. Seeds are Ed25519 private keys: `repr` never shows
them. ``coordinator_seed`` is the coordinator's identity, whose grants alone start presigning and aux-info sessions
(requests/grants.py); a file without one gets a fresh one. Replace it with `MpcClient.set_coordinator` (an
admin-quorum ``set_coordinator`` request), then restart the coordinator with the new seed.
"""

from __future__ import annotations

import json
import os
import secrets
import stat
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import nacl.signing

from ..errors import InvalidInput
from ..requests import (Principal, PrincipalRegistry, RequestFormat, RequestKind, Role, cosign, encode_raw_batch,
                        sign_request)

__all__ = ["Credentials", "RAW_CHAIN"]

RAW_CHAIN = "mpc-ray:raw"  # the chain label of an operator's raw batches: an operator policy allows it
LOCAL_ADMIN, LOCAL_OPERATOR = "local-admin", "local-operator"


@dataclass(frozen=True)
class Credentials:
    admins: tuple[tuple[str, nacl.signing.SigningKey], ...] = ()
    operator: tuple[str, nacl.signing.SigningKey] | None = None
    operator_policy: bool = False  # give every key this client creates a permissive operator policy (dev clusters)
    # the coordinator's Ed25519 seed (requests/grants.py): a committee this client deploys starts its coordinator
    # with it (local_cluster, `mpc-ray up`), so a restart keeps the key the holders took
    coordinator_seed: bytes = field(default_factory=lambda: secrets.token_bytes(32), repr=False)

    def __repr__(self) -> str:
        ops = self.operator[0] if self.operator else None
        return f"Credentials(admins={[a for a, _ in self.admins]}, operator={ops!r}, keys=<redacted>)"

    __str__ = __repr__

    # construction -----------------------------------------------------------------------------------------
    @classmethod
    def generate(cls, *, operator_policy: bool = True) -> Credentials:
        """A fresh admin and operator (for an embedded or single-machine committee)."""
        return cls(((LOCAL_ADMIN, nacl.signing.SigningKey.generate()),),
                   (LOCAL_OPERATOR, nacl.signing.SigningKey.generate()), operator_policy)

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> Credentials:
        try:
            admins = tuple((a["id"], _key(a["seed"])) for a in doc.get("admins", ()))
            op = doc.get("operator")
            operator = (op["id"], _key(op["seed"])) if op else None
            coordinator = doc.get("coordinator_seed")  # absent from older files: a fresh one
            extra = {} if coordinator is None else {"coordinator_seed": bytes(_key(coordinator))}
            return cls(admins, operator, bool(doc.get("operator_policy", False)), **extra)
        except (KeyError, TypeError, AttributeError):
            raise InvalidInput("credentials: expected {admins: [{id, seed}], operator: {id, seed}}") from None

    def to_json(self) -> dict[str, Any]:
        return {"admins": [{"id": i, "seed": bytes(k).hex()} for i, k in self.admins],
                "operator": None if self.operator is None else {"id": self.operator[0],
                                                                "seed": bytes(self.operator[1]).hex()},
                "operator_policy": self.operator_policy, "coordinator_seed": self.coordinator_seed.hex()}

    @classmethod
    def from_file(cls, path: str | Path) -> Credentials:
        path = Path(path)
        mode = path.stat().st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise InvalidInput(f"{path} is readable by others (mode {oct(mode & 0o777)}): chmod 600 it")
        try:
            return cls.from_json(json.loads(path.read_text()))
        except json.JSONDecodeError:
            raise InvalidInput(f"{path} is not JSON") from None

    def save(self, path: str | Path) -> None:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(self.to_json(), f)

    @classmethod
    def load(cls, environ: Mapping[str, str] | None = None) -> Credentials | None:
        """From the environment (see the module docstring), or None when nothing is configured."""
        env = os.environ if environ is None else environ
        if env.get("MPC_RAY_CREDENTIALS"):
            return cls.from_file(env["MPC_RAY_CREDENTIALS"])
        if env.get("MPC_RAY_CREDENTIALS_COMMAND"):
            out = subprocess.run(env["MPC_RAY_CREDENTIALS_COMMAND"], shell=True, capture_output=True, check=False,
                                 timeout=60)
            if out.returncode != 0:
                raise InvalidInput(f"MPC_RAY_CREDENTIALS_COMMAND exited {out.returncode}")
            try:
                return cls.from_json(json.loads(out.stdout))
            except json.JSONDecodeError:
                raise InvalidInput("MPC_RAY_CREDENTIALS_COMMAND did not print JSON") from None
        admins = tuple(_pair(x) for x in env.get("MPC_RAY_ADMIN_KEYS", "").split(",") if x.strip())
        operator = _pair(env["MPC_RAY_OPERATOR_KEY"]) if env.get("MPC_RAY_OPERATOR_KEY") else None
        return cls(admins, operator) if admins or operator else None

    # what the holders need ---------------------------------------------------------------------------------
    def principals(self) -> tuple[Principal, ...]:
        out = [Principal.from_signing_key(i, Role.ADMIN, k) for i, k in self.admins]
        if self.operator is not None:
            out.append(Principal.from_signing_key(self.operator[0], Role.OPERATOR, self.operator[1]))
        return tuple(out)

    def registry(self) -> PrincipalRegistry:
        return PrincipalRegistry(principals=self.principals(), admin_quorum=max(1, len(self.admins)))

    def admin_request(self, kind: RequestKind | str, params: Mapping[str, Any] | None = None, *, key_id: str = "",
                      body: bytes | None = None, ttl_s: int = 600):
        """A ``kind`` request signed by every admin held here: its JSON body names the action's parameters
        exactly as the holders will check them (`params`), or is `body` (a policy, a registry)."""
        if not self.admins:
            raise InvalidInput("this client holds no admin key: set MPC_RAY_CREDENTIALS (see client/credentials.py)")
        if body is None:
            body = json.dumps(dict(params or {}), sort_keys=True, separators=(",", ":")).encode()
        (first_id, first_key), rest = self.admins[0], self.admins[1:]
        req = sign_request(first_key, principal_id=first_id, kind=RequestKind(kind), format=RequestFormat.JSON,
                           body=body, key_id=key_id, now=time.time(), ttl_s=ttl_s)
        for admin_id, key in rest:
            req = cosign(req, admin_id, key)
        return req

    def operator_request(self, key_id: str, messages: Sequence[bytes], *, tap_tweak: bytes | None = None,
                         path: str | None = None, ttl_s: int = 300):
        """A ``raw_batch`` request for `messages` on `key_id`, signed by the operator held here."""
        if self.operator is None:
            raise InvalidInput("this client holds no operator key: set MPC_RAY_CREDENTIALS (client/credentials.py)")
        return sign_request(self.operator[1], principal_id=self.operator[0], kind=RequestKind.SIGN,
                            format=RequestFormat.RAW_BATCH, body=encode_raw_batch(messages, tap_tweak),
                            key_id=key_id, chain=RAW_CHAIN, now=time.time(), ttl_s=ttl_s,
                            derivation_path=path or "")

    def operator_policy_request(self, key_id: str):
        """The permissive operator policy of a dev cluster: raw signing of `key_id`, any derivation path."""
        from ..policy import Policy, TxType

        policy = Policy(key_id=key_id, principal_id=self.operator[0], allowed_chains=(RAW_CHAIN,),
                        allowed_tx_types=(TxType.RAW_DIGEST,), any_derivation_path=True,
                        version=time.time_ns() // 1000)  # versions only go up: a clock in microseconds
        return self.admin_request(RequestKind.SET_POLICY, key_id=key_id, body=policy.to_bytes())


def _key(seed: str) -> nacl.signing.SigningKey:
    try:
        raw = bytes.fromhex(seed)
    except (ValueError, TypeError):
        raise InvalidInput("a key seed is 64 hex digits") from None
    if len(raw) != 32:
        raise InvalidInput("a key seed is 64 hex digits")
    return nacl.signing.SigningKey(raw)


def _pair(text: str) -> tuple[str, nacl.signing.SigningKey]:
    pid, sep, seed = text.strip().partition(":")
    if not sep:
        raise InvalidInput("expected id:hex-seed")
    return pid, _key(seed)
