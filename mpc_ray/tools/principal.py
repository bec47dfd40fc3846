"""The one agent principal the agent tools sign as: its Ed25519 key from a file or an environment variable.

    MPC_RAY_AGENT_KEY=bot:<64 hex seed>                 # or
    MPC_RAY_AGENT_KEY_FILE=/run/secrets/agent.json      # {"id": "bot", "seed": "<64 hex>"}, mode 0600

The tools are handed to a language model, so they must never hold more than one agent's authority: a key that is
an admin's or the operator's (found in ``MPC_RAY_CREDENTIALS`` / ``MPC_RAY_ADMIN_KEYS`` / ``MPC_RAY_OPERATOR_KEY``,
or given as `credentials`), a credentials file (admins / operator) passed as the agent's key file, and a principal
that a given registry lists with any role but ``agent`` are refused before anything is signed. The nodes refuse
an admin's or operator's signature on a transaction anyway (wrong role or kind); refusing here keeps such a key
out of the tool process altogether.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import nacl.signing

from ..client.credentials import Credentials
from ..client.signer import Agent
from ..errors import InvalidInput
from ..requests import PrincipalRegistry, Role

__all__ = ["AGENT_KEY_ENV", "AGENT_KEY_FILE_ENV", "load_agent", "refuse_privileged"]

AGENT_KEY_ENV = "MPC_RAY_AGENT_KEY"
AGENT_KEY_FILE_ENV = "MPC_RAY_AGENT_KEY_FILE"


def _seed(text: Any) -> nacl.signing.SigningKey:
    try:
        raw = bytes.fromhex(text) if isinstance(text, str) else b""
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise InvalidInput("an agent key seed is 64 hex digits")
    return nacl.signing.SigningKey(raw)


def _from_file(path: str | Path) -> tuple[str, nacl.signing.SigningKey]:
    path = Path(path)
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise InvalidInput(f"{path} is readable by others (mode {oct(mode & 0o777)}): chmod 600 it")
    try:
        doc = json.loads(path.read_text())
    except json.JSONDecodeError:
        raise InvalidInput(f"{path} is not JSON") from None
    if not isinstance(doc, dict):
        raise InvalidInput(f"{path}: expected {{\"id\": ..., \"seed\": ...}}")
    if "admins" in doc or "operator" in doc:  # a committee's credentials file, not an agent's key
        raise InvalidInput(f"{path} holds admin / operator credentials: the agent tools take one agent's key only")
    if set(doc) != {"id", "seed"} or not isinstance(doc["id"], str):
        raise InvalidInput(f"{path}: expected exactly {{\"id\": ..., \"seed\": ...}}")
    return doc["id"], _seed(doc["seed"])


def load_agent(*, key_file: str | Path | None = None, environ: Mapping[str, str] | None = None,
               credentials: Credentials | None = None, registry: PrincipalRegistry | None = None) -> Agent:
    """The agent principal from `key_file`, else ``MPC_RAY_AGENT_KEY_FILE``, else ``MPC_RAY_AGENT_KEY``
    (``id:hex-seed``); refused (`InvalidInput`) when it is an admin's or operator's (see the module docstring)."""
    env = os.environ if environ is None else environ
    if key_file is not None or env.get(AGENT_KEY_FILE_ENV):
        principal_id, key = _from_file(key_file if key_file is not None else env[AGENT_KEY_FILE_ENV])
    elif env.get(AGENT_KEY_ENV):
        principal_id, sep, seed = env[AGENT_KEY_ENV].strip().partition(":")
        if not sep:
            raise InvalidInput(f"{AGENT_KEY_ENV} is id:hex-seed")
        key = _seed(seed)
    else:
        raise InvalidInput(f"no agent key: set {AGENT_KEY_FILE_ENV} (a JSON file, mode 0600) or {AGENT_KEY_ENV}")
    agent = Agent(principal_id, key)
    refuse_privileged(agent, credentials=credentials, environ=env, registry=registry)
    return agent


def _privileged_from_env(env: Mapping[str, str]) -> Credentials | None:
    """The admin / operator keys this environment names, without running MPC_RAY_CREDENTIALS_COMMAND."""
    if env.get("MPC_RAY_CREDENTIALS"):
        return Credentials.from_file(env["MPC_RAY_CREDENTIALS"])
    return Credentials.load({k: v for k, v in env.items() if k in ("MPC_RAY_ADMIN_KEYS", "MPC_RAY_OPERATOR_KEY")})


def refuse_privileged(agent: Agent, *, credentials: Credentials | None = None,
                      environ: Mapping[str, str] | None = None, registry: PrincipalRegistry | None = None) -> None:
    """InvalidInput if `agent` is (by id or key) an admin or operator of `credentials` or of the environment, or if
    `registry` does not list it as an agent with this very key."""
    if not isinstance(agent, Agent):
        raise InvalidInput("the agent tools sign as one mpc_ray.client.signer.Agent")
    env = os.environ if environ is None else environ
    verify_key = agent.verify_key
    for creds in (credentials, _privileged_from_env(env)):
        if creds is None:
            continue
        for principal in creds.principals():
            if principal.verify_key == verify_key or principal.id == agent.principal_id:
                raise InvalidInput(f"principal {agent.principal_id!r} is an {principal.role.value}'s: the agent "
                                   "tools sign only as an agent")
    if registry is not None:
        mine = [p for p in registry.principals if p.id == agent.principal_id or p.verify_key == verify_key]
        if len(mine) != 1 or mine[0].role != Role.AGENT or mine[0].verify_key != verify_key \
                or mine[0].id != agent.principal_id:
            raise InvalidInput(f"principal {agent.principal_id!r} is not an agent of this committee with this key")
