"""Signing policies: what a share holder decodes, decides and counts before it lends its share to a signature.

Every holder decodes the request body itself (`intent_from_request`), computes the digest it will sign from the
decoded transaction itself, and evaluates the policy itself. Nothing a coordinator or client says *about* a request
is trusted: not a summary, not an amount, not a digest (a caller-given digest is only ever signed as a
``raw_digest`` intent, which is off unless a policy allows it).

Decoding is `mpc_ray.intents` (evm.py, solana.py, bitcoin.py: the ecosystem's own decoders, never a parser of
ours), shared with clients and the coordinator; `Intent`, `TxType`, the asset ids and the decoders are re-exported
here so that old import paths keep working. The policy model is mpc_ray/policy.py (pure: clients build policies
without loading node/), re-exported here too. This module keeps spend accounting, the engine and the holder's checks.

Policies are attached to (key, agent) and set only by admin requests. A `Policy` names: allowed chains (CAIP-2,
e.g. ``eip155:8453``), allowed transaction types (`TxType`), a recipient allowlist and denylist, contract calls
allowed by (contract, selector), per-asset limits (a per-transaction cap and rolling-window caps, in base units),
rate limits, time windows (UTC) and a validity period. Denials are `PolicyDenied(rule, message)`; the message names
the rule and the asset of the agent's own request, never limit values or list contents (those go to the audit log
through `Decision.detail`). Rules, checked in this order:

``policy.time_window`` ``policy.chain`` ``policy.raw_digest`` ``policy.tx_type`` ``policy.contract_call``
``policy.recipient_denylist`` ``policy.recipient_allowlist`` ``policy.asset`` ``policy.per_tx_cap``
``policy.window_cap`` ``policy.rate_limit`` (and ``policy.none`` / ``policy.binding`` from `check_binding`, for the
holder's lookup of the policy; ``policy.derivation_path`` from `check_derivation_path`: the request's signed BIP32
path must be one that `Policy.derivation_paths` pins, or absent when that is None).

Spending: an intent's ``spends`` lists every asset it can debit, in base units. A native EVM spend is
``value + gas * maxFeePerGas`` (``gasPrice`` for legacy / EIP-2930): the worst-case debit, so fees cannot drain a
capped balance. An ERC-20 ``approve`` counts its full amount (the spender can move it without another signature).
An EIP-3009 authorization counts its value. A Bitcoin PSBT (``btc_psbt``, intents/bitcoin.py) counts what its
outputs pay to addresses other than the key's own plus the fee; each of its recipients meets the lists.

Caps across signer sets: a window cap or rate limit promises a committee-wide total whatever signer sets sign;
each holder enforces its per-node share ``floor(cap * (t - c) / (n - c))`` of it (`node_budget`). Why that holds,
and what `Policy.validate_for_key` refuses: the policy model's module, mpc_ray/policy.py. Approvals count even if
the signature then fails elsewhere (a holder cannot know), which errs on the safe side.

Spend state (`SpendState`) is per node and per (key, agent), persisted as bytes. Counters are kept in buckets of
1 s (windows up to 1 h), 1 min (up to 3 days) and 1 h (up to 92 days); a window sum counts every bucket that
overlaps the window, so it over-counts by at most one bucket, never under-counts, and history survives policy
changes. Size stays bounded (about 8,700 buckets per asset at most).

Integration (the holder, later): on ``set_policy``: `RequestVerifier.verify` -> `policy_from_request` ->
``policy.validate_for_key(key.threshold, key.parties)`` -> the version above the stored one's (``Policy.version``;
else PolicyDenied ``admin.stale_version``) -> store ``policy.to_bytes()`` under `policy_store_name`. On
``sign``: verify -> ``check_binding(stored policy of (key_id, principal) or None, verified)`` -> ``intent =
intent_from_request(verified.request)`` -> load `SpendState` from `spend_store_name` -> ``decision =
PolicyEngine(policy, state, threshold=t, parties=n).authorize(intent, now)`` (raises PolicyDenied; records spend
only if allowed) -> ``store.put(spend_store_name(...), state.to_bytes())`` BEFORE any presignature is consumed ->
sign ``intent.digest`` (never a digest from the coordinator) -> audit. Hold one lock per (key, agent) from loading
the state to persisting it (or keep one engine per (key, agent) in memory). The coordinator passes the
`SignedRequest` unchanged to every holder of the signer set, plus the presignature id.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ..errors import InvalidInput, PolicyDenied
from ..errors import PolicyConfigError  # noqa: F401  (old import path)
from ..intents import *  # noqa: F403 - the shared intent layer, re-exported under its old import path
from ..intents import __all__ as _intent_names
from ..intents.base import Intent, TxType, as_bytes, normalize_address
from ..intents.decode import _intent_from_request  # noqa: F401 - tests/fuzz drive the decoder without its catch-all
from ..policy import (  # noqa: F401 - the policy model, re-exported under its old import path
    MAX_WINDOW_S,
    AssetLimit,
    ContractCallRule,
    Policy,
    RateLimit,
    TimeWindow,
    WindowCap,
    check_chain_families,
    node_budget,
)
from ..requests.signed import RequestFormat, RequestKind, SignedRequest
from ..requests.strict_json import parse_strict_json
from .principals import VerifiedRequest

__all__ = [
    "MAX_WINDOW_S",
    "AssetLimit",
    "ContractCallRule",
    "Decision",
    "Policy",
    "PolicyConfigError",
    "PolicyEngine",
    "RateLimit",
    "SpendState",
    "TimeWindow",
    "WindowCap",
    "check_binding",
    "check_chain_families",
    "node_budget",
    "policy_from_request",
    "policy_store_name",
    "spend_store_name",
    *_intent_names,
]


# (bucket granularity s, longest window this level serves): finest level first
_LEVELS: tuple[tuple[int, int], ...] = ((1, 3600), (60, 3 * 86400), (3600, MAX_WINDOW_S))


# ------------------------------------------------------------------------------------------------------------
# store names and the holder's checks of a request against its policy


def policy_store_name(key_id: str, principal_id: str) -> str:
    """EncryptedStore entry name of the policy of (key, agent)."""
    return f"policy.{key_id}.{principal_id}"


def spend_store_name(key_id: str, principal_id: str) -> str:
    """EncryptedStore entry name of the spend state of (key, agent)."""
    return f"spend.{key_id}.{principal_id}"


def check_binding(policy: Policy | None, verified: VerifiedRequest) -> Policy:
    """The policy the holder looked up for a ``sign`` request, checked to be the one of (its key, its principal).

    PolicyDenied ``policy.none`` if there is none (default deny), ``policy.binding`` if it belongs elsewhere.
    """
    if policy is None:
        raise PolicyDenied("policy.none", "no policy allows this principal to use this key")
    req = verified.request
    if policy.key_id != req.key_id or policy.principal_id != verified.principal.id:
        raise PolicyDenied("policy.binding", "the policy found does not belong to this key and principal")
    return policy


def check_derivation_path(policy: Policy, request: SignedRequest) -> None:
    """PolicyDenied ``policy.derivation_path`` unless the request's (signed) derivation path is one the policy of
    (key, agent) pins: none at all when `Policy.derivation_paths` is None, else one of those paths exactly."""
    path = request.derivation_path or None
    allowed = policy.derivation_paths
    if policy.any_derivation_path and allowed is None:
        return
    if (path is None and allowed is None) or (path is not None and allowed is not None and path in allowed):
        return
    raise PolicyDenied("policy.derivation_path", "this agent may not sign for that derivation path of the key")


def policy_from_request(verified: VerifiedRequest) -> Policy:
    """The `Policy` carried by a verified ``set_policy`` request; it must name the request's key."""
    req = verified.request
    if req.kind is not RequestKind.SET_POLICY or req.format is not RequestFormat.JSON:
        raise InvalidInput("not a set_policy request with a JSON body")
    parse_strict_json(req.body)  # duplicate keys etc. refused before pydantic sees the text
    policy = Policy.from_bytes(req.body)
    if policy.key_id != req.key_id:
        raise InvalidInput("the policy's key_id differs from the request's key_id")
    return policy


# ------------------------------------------------------------------------------------------------------------
# spend state


_REQUESTS = "requests"


def _asset_counter(asset: str) -> str:
    return "asset:" + asset


class SpendState:
    """Per-node counters of approved amounts and requests, bucketed at three granularities. Not thread-safe on its
    own; `PolicyEngine` serialises access. `to_bytes` / `from_bytes` for the holder's EncryptedStore."""

    _VERSION = 1

    def __init__(self) -> None:
        # counter -> one {bucket index: amount} per level
        self._counters: dict[str, list[dict[int, int]]] = {}

    @staticmethod
    def _level_for(window_s: int) -> int:
        for i, (_, longest) in enumerate(_LEVELS):
            if window_s <= longest:
                return i
        raise InvalidInput(f"windows longer than {MAX_WINDOW_S} s are not supported")

    def add(self, counter: str, amount: int, now: float) -> None:
        if amount < 0:
            raise InvalidInput("amounts are non-negative")
        levels = self._counters.setdefault(counter, [{} for _ in _LEVELS])
        for (gran, longest), buckets in zip(_LEVELS, levels):
            b = int(now // gran)
            buckets[b] = buckets.get(b, 0) + amount
            # drop buckets that no window this level serves can overlap any more
            cutoff = (now - longest) // gran  # buckets b with (b + 1) * gran <= now - longest
            if len(buckets) > 1:
                for old in [k for k in buckets if k + 1 <= cutoff]:
                    del buckets[old]

    def record(self, spends: Iterable[tuple[str, int]], now: float) -> None:
        """Count one approved request and its spends (asset, amount) at `now`."""
        for asset, amount in spends:
            self.add(_asset_counter(asset), amount, now)
        self.add(_REQUESTS, 1, now)

    def total(self, counter: str, window_s: int, now: float) -> int:
        """Sum over every bucket that overlaps (now - window_s, now] (and any from the future: clock steps)."""
        levels = self._counters.get(counter)
        if not levels:
            return 0
        i = self._level_for(window_s)
        gran = _LEVELS[i][0]
        start = now - window_s
        return sum(v for b, v in levels[i].items() if (b + 1) * gran > start)

    def to_bytes(self) -> bytes:
        doc = {
            "v": self._VERSION,
            "levels": [g for g, _ in _LEVELS],
            "counters": {
                name: [sorted([b, v] for b, v in buckets.items()) for buckets in levels]
                for name, levels in sorted(self._counters.items())
            },
        }
        return json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> SpendState:
        obj: Any = parse_strict_json(as_bytes(data, "spend state"), max_bytes=None)  # the node's own, any size
        state = cls()
        try:
            if obj["v"] != cls._VERSION or obj["levels"] != [g for g, _ in _LEVELS]:
                raise InvalidInput("unsupported spend state version")
            for name, levels in obj["counters"].items():
                if not isinstance(name, str) or not isinstance(levels, list) or len(levels) != len(_LEVELS):
                    raise InvalidInput("malformed spend state")
                parsed = []
                for buckets in levels:
                    d: dict[int, int] = {}
                    for b, v in buckets:
                        if type(b) is not int or type(v) is not int or v < 0 or b in d:
                            raise InvalidInput("malformed spend state")
                        d[b] = v
                    parsed.append(d)
                state._counters[name] = parsed
        except (KeyError, TypeError, ValueError, AttributeError):
            raise InvalidInput("malformed spend state") from None
        return state

    def __repr__(self) -> str:
        return f"SpendState({len(self._counters)} counters)"


# ------------------------------------------------------------------------------------------------------------
# engine


@dataclass(frozen=True)
class Decision:
    """Outcome of `PolicyEngine.evaluate`. `message` is safe to show the agent; `detail` is for the audit log."""

    allowed: bool
    rule: str | None
    message: str
    intent: Intent
    detail: str = ""

    def raise_if_denied(self) -> None:
        if not self.allowed:
            raise PolicyDenied(self.rule or "policy", self.message)


class PolicyEngine:
    """Evaluates intents against one (key, agent) policy and counts what it approves in `spend_state`.

    `threshold` / `parties` are the key's (t-of-n); the policy is validated for them at construction
    (PolicyConfigError). Thread-safe: `authorize` evaluates and records under one lock.
    """

    def __init__(self, policy: Policy, spend_state: SpendState, *, threshold: int, parties: int) -> None:
        if not isinstance(policy, Policy) or not isinstance(spend_state, SpendState):
            raise InvalidInput("expected a Policy and a SpendState")
        policy.validate_for_key(threshold, parties)
        self._policy = policy
        self._state = spend_state
        self._t, self._n, self._c = threshold, parties, policy.compromised_holders
        self._lock = threading.Lock()

    @property
    def policy(self) -> Policy:
        return self._policy

    @property
    def spend_state(self) -> SpendState:
        return self._state

    def budget(self, cap: int) -> int:
        """This holder's share of a committee-wide cap (see the module docstring)."""
        return node_budget(cap, self._t, self._n, self._c)

    def evaluate(self, intent: Intent, now: float) -> Decision:
        """Decide without changing any state."""
        with self._lock:
            return self._evaluate(intent, now)

    def record(self, intent: Intent, now: float) -> None:
        """Count an allowed intent (its spends and one request). Re-checks: PolicyDenied if it is not allowed."""
        self.authorize(intent, now)

    def authorize(self, intent: Intent, now: float) -> Decision:
        """Evaluate; if allowed, record it and return the decision; if denied, raise PolicyDenied (nothing recorded)."""
        with self._lock:
            decision = self._evaluate(intent, now)
            decision.raise_if_denied()
            self._state.record(intent.spends, now)
            return decision

    def _evaluate(self, intent: Intent, now: float) -> Decision:
        if not isinstance(intent, Intent):
            raise InvalidInput("expected an Intent")
        if not isinstance(now, (int, float)) or isinstance(now, bool) or not math.isfinite(now):
            raise InvalidInput("now must be unix seconds")
        p = self._policy

        def deny(rule: str, message: str, detail: str = "") -> Decision:
            return Decision(False, rule, message, intent, detail or message)

        # time
        if (p.not_before is not None and now < p.not_before) or (p.not_after is not None and now >= p.not_after):
            return deny("policy.time_window", "the policy is not in force at this time")
        if p.time_windows is not None and not any(w.contains(now) for w in p.time_windows):
            return deny("policy.time_window", "signing is not allowed at this time")
        # chain and type
        if intent.chain is None or intent.chain not in p.allowed_chains:
            return deny("policy.chain", f"chain {intent.chain or '(none)'} is not allowed")
        if intent.type not in p.allowed_tx_types:
            if intent.type is TxType.RAW_DIGEST:
                return deny("policy.raw_digest", "raw digest signing is not allowed")
            return deny("policy.tx_type", f"transaction type {intent.type.value} is not allowed")
        if intent.type is TxType.CONTRACT_CALL:
            ok = any(r.contract == intent.contract and intent.selector in r.selectors for r in p.contract_calls)
            if not ok:
                return deny(
                    "policy.contract_call",
                    "this contract call (contract, selector) is not allowed",
                    f"contract {intent.contract} selector {intent.selector} not in contract_calls",
                )
        # counterparties
        parties = {a for a in (intent.recipient, intent.contract, *intent.recipients) if a is not None}
        if any(normalize_address(a) in p.recipient_denylist for a in parties):
            return deny(
                "policy.recipient_denylist",
                "the recipient or contract is denylisted",
                f"denylisted counterparty among {sorted(parties)}",
            )
        # contract calls have their own allowlist (contract_calls)
        if p.recipient_allowlist is not None and intent.type is not TxType.CONTRACT_CALL:
            outside = [a for a in (intent.recipient, *intent.recipients)
                       if a is not None and normalize_address(a) not in p.recipient_allowlist]
            if outside:
                return deny(
                    "policy.recipient_allowlist",
                    "the recipient is not on the allowlist",
                    f"recipient {outside[0]} not allowlisted",
                )
        # amounts
        for asset, amount in intent.spends:
            lim = p.limit_for(asset)
            if lim is None:
                if p.allow_unlisted_assets:
                    continue
                return deny("policy.asset", f"asset {asset} is not allowed")
            if lim.per_tx is not None and amount > lim.per_tx:
                return deny(
                    "policy.per_tx_cap",
                    f"the amount exceeds the per-transaction cap for {asset}",
                    f"{asset}: {amount} > per_tx {lim.per_tx}",
                )
        for asset, amount in intent.spends:
            lim = p.limit_for(asset)
            if lim is None:
                continue
            for w in lim.windows:
                spent = self._state.total(_asset_counter(asset), w.window_s, now)
                budget = self.budget(w.max_amount)
                if spent + amount > budget:
                    return deny(
                        "policy.window_cap",
                        f"the amount would exceed a rolling spending cap for {asset}",
                        f"{asset}: {spent} + {amount} > node budget {budget} of cap {w.max_amount} per {w.window_s} s",
                    )
        for r in p.rate_limits:
            count = self._state.total(_REQUESTS, r.window_s, now)
            budget = self.budget(r.max_requests)
            if count + 1 > budget:
                return deny(
                    "policy.rate_limit",
                    "too many requests; try again later",
                    f"{count} + 1 > node budget {budget} of {r.max_requests} per {r.window_s} s",
                )
        return Decision(True, None, "allowed", intent, "allowed")
