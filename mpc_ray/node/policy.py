"""Signing policies: what a share holder decodes, decides and counts before it lends its share to a signature.

Every holder decodes the request body itself (`intent_from_request`), computes the digest it will sign from the
decoded transaction itself, and evaluates the policy itself. Nothing a coordinator or client says *about* a request
is trusted: not a summary, not an amount, not a digest (a caller-given digest is only ever signed as a
``raw_digest`` intent, which is off unless a policy allows it).

Decoding is `mpc_ray.intents` (evm.py, solana.py, bitcoin.py: the ecosystem's own decoders, never a parser of
ours), shared with clients and the coordinator; `Intent`, `TxType`, the asset ids and the decoders are re-exported
here so that old import paths keep working. This module keeps the policy model, spend accounting and the engine.

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

Caps across signer sets (the promise and how it is kept). A window cap or rate limit in a policy is a promise about
the whole committee: *whatever signer sets the coordinator picks, the total signed in any window stays within the
cap*. Each holder counts every intent it approves (it cannot see signatures it does not take part in) and enforces
a per-node budget ``B = floor(cap * (t - c) / (n - c))`` for a t-of-n key, where ``c = policy.compromised_holders``
(default 0). Why it holds: each signature needs t approvals, at least ``t - c`` of them from honest holders, and the
``n - c`` honest holders approve at most ``B`` each, so the total is at most ``(n - c) * B / (t - c) <= cap``. (The
simpler per-node cap C only bounds the total by ``C * n / t <= C * ceil(n / t)``: a 2-of-3 committee with C per
node signs 1.5 C through signer sets {1,2}, {2,3}, {1,3}.) The price: one fixed signer set can spend only
``B`` (two thirds of the cap for 2-of-3) per window. Approvals count even if the signature then fails elsewhere
(a holder cannot know), which errs on the safe side. The per-transaction cap needs no scaling: every signer checks
it. `Policy.validate_for_key(threshold, parties)` refuses, with `PolicyConfigError` (an `InvalidInput`), any
configuration whose promise cannot hold or that contradicts itself:

- a spending cap together with ``raw_digest``, generic ``typed_data`` or ``personal_message`` allowed (an opaque
  digest, an EIP-2612 permit or a Safe transaction hash signed as a personal message can move any asset uncounted);
- two networks of a family whose transactions do not commit to the network (``solana:*``, ``bip122:*``): a
  transfer signed under the test network's label is valid on mainnet (`check_chain_families`; the holder also
  checks all the policies of one key together);
- a contract-call rule that targets the contract of a capped ERC-20 asset (``transferFrom``, ``increaseAllowance``
  and friends would bypass the count);
- a window cap whose per-node budget is 0, or below the per-transaction cap (that transaction could never be
  signed); a rate limit whose per-node budget is below one request; ``compromised_holders >= threshold``;
- windows longer than `MAX_WINDOW_S` (92 days: the longest history `SpendState` keeps).

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

import datetime as _dt
import json
import math
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from ..errors import InvalidInput, PolicyDenied
from ..errors import PolicyConfigError  # noqa: F401  (old import path)
from ..intents import *  # noqa: F403 - the shared intent layer, re-exported under its old import path
from ..intents import __all__ as _intent_names
from ..intents.base import EVM_ADDRESS_RE, Intent, TxType, as_bytes, erc20_asset, normalize_address
from ..intents.decode import _intent_from_request  # noqa: F401 - tests/fuzz drive the decoder without its catch-all
from ..requests.signed import RequestFormat, RequestKind, SignedRequest
from ..requests.strict_json import check_json_bounds, parse_strict_json
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


# signed without the holders seeing an amount: never together with a spending cap. A personal message is opaque too:
# its bytes can be a Safe transaction hash or any protocol's off-chain order (and a 32-byte one is refused outright).
_OPAQUE_TYPES = frozenset({TxType.RAW_DIGEST, TxType.TYPED_DATA, TxType.PERSONAL_MESSAGE})
# chain families whose transactions do not commit to their network: a Solana message or a Bitcoin PSBT signed for a
# test network is just as valid on mainnet, so the request's chain label is all that tells them apart
_UNBOUND_FAMILIES = ("solana:", "bip122:")
_CHAIN_RE = re.compile(r"[-a-z0-9]{3,8}:[-_a-zA-Z0-9]{1,32}")
_SELECTOR_RE = re.compile(r"0x[0-9a-f]{8}")
_HHMM_RE = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])|24:00")
_U256 = 2**256 - 1


# ------------------------------------------------------------------------------------------------------------
# policy model

MAX_WINDOW_S = 92 * 86400
# (bucket granularity s, longest window this level serves): finest level first
_LEVELS: tuple[tuple[int, int], ...] = ((1, 3600), (60, 3 * 86400), (3600, MAX_WINDOW_S))

_Amount = Annotated[int, Field(ge=0, le=_U256)]
_Window = Annotated[int, Field(ge=1, le=MAX_WINDOW_S)]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class WindowCap(_Model):
    """At most `max_amount` (base units) over any rolling `window_s` seconds, across the committee."""

    window_s: _Window
    max_amount: _Amount


class AssetLimit(_Model):
    """Limits for one asset id (see `native_asset`, `erc20_asset`). No caps = allowed, uncapped."""

    asset: str
    per_tx: _Amount | None = None
    windows: tuple[WindowCap, ...] = ()

    @field_validator("asset")
    @classmethod
    def _norm_asset(cls, v: str) -> str:
        chain, sep, rest = v.partition("/")
        if not sep or not _CHAIN_RE.fullmatch(chain) or not rest:
            raise ValueError("asset must look like <caip2 chain>/native or <caip2 chain>/erc20:<address>")
        if rest.startswith("erc20:"):
            addr = rest[len("erc20:") :]
            if not EVM_ADDRESS_RE.fullmatch(addr):
                raise ValueError("erc20 asset needs a 0x address")
            return erc20_asset(chain, addr)
        return v

    @property
    def capped(self) -> bool:
        return self.per_tx is not None or bool(self.windows)


class RateLimit(_Model):
    """At most `max_requests` approved requests over any rolling `window_s` seconds, across the committee."""

    window_s: _Window
    max_requests: Annotated[int, Field(ge=1, le=2**32)]


def _minutes(hhmm: str) -> int:
    if not _HHMM_RE.fullmatch(hhmm):
        raise ValueError("times are HH:MM (00:00 .. 24:00), UTC")
    h, m = hhmm.split(":")
    return int(h) * 60 + int(m)


class TimeWindow(_Model):
    """Signing allowed on `days` (0 = Monday, UTC) from `start` to `end` (HH:MM, UTC, end exclusive)."""

    days: tuple[Annotated[int, Field(ge=0, le=6)], ...] = (0, 1, 2, 3, 4, 5, 6)
    start: str = "00:00"
    end: str = "24:00"

    @model_validator(mode="after")
    def _order(self) -> TimeWindow:
        if _minutes(self.start) >= _minutes(self.end):
            raise ValueError("start must be before end (split overnight windows in two)")
        if not self.days:
            raise ValueError("days must not be empty")
        return self

    def contains(self, now: float) -> bool:
        t = _dt.datetime.fromtimestamp(now, tz=_dt.UTC)
        minute = t.hour * 60 + t.minute
        return t.weekday() in self.days and _minutes(self.start) <= minute < _minutes(self.end)


class ContractCallRule(_Model):
    """Contract calls allowed to `contract` with one of `selectors` (0x + 8 hex digits)."""

    contract: str
    selectors: Annotated[tuple[str, ...], Field(min_length=1)]

    @field_validator("contract")
    @classmethod
    def _addr(cls, v: str) -> str:
        if not EVM_ADDRESS_RE.fullmatch(v):
            raise ValueError("contract must be a 0x address")
        return v.lower()

    @field_validator("selectors")
    @classmethod
    def _sels(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        out = tuple(s.lower() for s in v)
        if not all(_SELECTOR_RE.fullmatch(s) for s in out):
            raise ValueError("selectors are 0x followed by 8 hex digits")
        return out


class Policy(_Model):
    """The policy of one (key, agent). Default-deny: empty lists allow nothing; raw digests are off unless listed."""

    key_id: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
    principal_id: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")]
    allowed_chains: tuple[str, ...] = ()
    allowed_tx_types: tuple[TxType, ...] = ()
    recipient_allowlist: tuple[str, ...] | None = None  # None: any recipient not denylisted
    recipient_denylist: tuple[str, ...] = ()
    contract_calls: tuple[ContractCallRule, ...] = ()
    asset_limits: tuple[AssetLimit, ...] = ()
    allow_unlisted_assets: bool = False
    rate_limits: tuple[RateLimit, ...] = ()
    time_windows: tuple[TimeWindow, ...] | None = None  # None: any time
    # finite: JSON writes inf and NaN as null, so a stored not_before=1e400 ("never") would read back as "always"
    not_before: Annotated[float, Field(allow_inf_nan=False)] | None = None
    not_after: Annotated[float, Field(allow_inf_nan=False)] | None = None
    compromised_holders: Annotated[int, Field(ge=0, le=255)] = 0
    # HD: None = this agent signs only with the key itself (requests without a derivation path); a tuple = only
    # for exactly these BIP32 child paths ("m/0/7"; "m" = the key itself, re-randomised), never without a path.
    derivation_paths: tuple[str, ...] | None = None
    # True: any path, and the key itself (a back-office operator of a dev cluster); derivation_paths must be None
    any_derivation_path: bool = False
    # a holder accepts a set_policy for (key, agent) only with a version above the one it has (admin.stale_version):
    # an older signed policy held back and delivered late cannot undo a stricter one. 1: the first one.
    version: Annotated[int, Field(ge=1, le=2**64 - 1)] = 1

    @field_validator("derivation_paths")
    @classmethod
    def _paths(cls, v: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if v is None:
            return None
        from ..crypto.bip32 import format_path, parse_path

        out = tuple(format_path(parse_path(p)) if isinstance(p, str) else p for p in v)
        if any(not isinstance(p, str) for p in out) or len(set(out)) != len(out):
            raise ValueError("derivation_paths are distinct non-hardened paths like m/0/7")
        return out

    @field_validator("allowed_chains")
    @classmethod
    def _chains(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        if not all(_CHAIN_RE.fullmatch(c) for c in v):
            raise ValueError("chains are CAIP-2 ids such as eip155:1")
        return v

    @field_validator("recipient_allowlist", "recipient_denylist")
    @classmethod
    def _addrs(cls, v: tuple[str, ...] | None) -> tuple[str, ...] | None:
        return None if v is None else tuple(normalize_address(a) for a in v)

    @model_validator(mode="after")
    def _unique_assets(self) -> Policy:
        assets = [a.asset for a in self.asset_limits]
        if len(set(assets)) != len(assets):
            raise ValueError("each asset may appear once in asset_limits")
        return self

    # --------------------------------------------------------------------------------------------------
    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode()

    @classmethod
    def from_bytes(cls, data: bytes | str) -> Policy:
        try:
            data = data.encode() if isinstance(data, str) else data
        except UnicodeEncodeError:  # lone surrogates: not text a JSON document can be
            raise PolicyConfigError("invalid policy: not valid UTF-8 text") from None
        check_json_bounds(data)
        try:
            return cls.model_validate_json(data)
        except ValidationError as e:
            first = e.errors()[0]
            raise PolicyConfigError(
                f"invalid policy: {'.'.join(str(x) for x in first['loc'])}: {first['msg']}"
            ) from None

    def limit_for(self, asset: str) -> AssetLimit | None:
        for lim in self.asset_limits:
            if lim.asset == asset:
                return lim
        return None

    def validate_for_key(self, threshold: int, parties: int) -> None:
        """Refuse (PolicyConfigError) a policy whose caps cannot hold for a `threshold`-of-`parties` key."""
        if not all(isinstance(x, int) and not isinstance(x, bool) for x in (threshold, parties)):
            raise InvalidInput("threshold and parties must be integers")
        if not 1 <= threshold <= parties:
            raise InvalidInput("need 1 <= threshold <= parties")
        c = self.compromised_holders
        if c >= threshold:
            raise PolicyConfigError(
                f"compromised_holders={c} >= threshold={threshold}: that many holders could sign alone, "
                "no holder-side cap can hold"
            )
        check_chain_families([self])
        capped = [lim for lim in self.asset_limits if lim.capped]
        opaque = sorted(t.value for t in _OPAQUE_TYPES if t in self.allowed_tx_types)
        if capped and opaque:
            raise PolicyConfigError(
                f"spending caps cannot hold while {', '.join(opaque)} is allowed: such signatures can move any "
                "asset without the holders seeing an amount; disallow it or remove the caps"
            )
        capped_tokens = {lim.asset.partition("/erc20:")[2] for lim in capped if "/erc20:" in lim.asset}
        for rule in self.contract_calls:
            if rule.contract in capped_tokens:
                raise PolicyConfigError(
                    f"contract calls to {rule.contract} would bypass the cap on that token (transferFrom, "
                    "increaseAllowance, ...); ERC-20 transfer and approve are their own transaction types"
                )
        for lim in capped:
            for w in lim.windows:
                budget = node_budget(w.max_amount, threshold, parties, c)
                if w.max_amount > 0 and budget == 0:
                    raise PolicyConfigError(
                        f"window cap {w.max_amount} on {lim.asset} over {w.window_s} s cannot be split across "
                        f"signer sets of {threshold} of {parties}: each holder's share would be 0"
                    )
                if lim.per_tx is not None and lim.per_tx > budget:
                    need = -(-lim.per_tx * (parties - c) // (threshold - c))
                    raise PolicyConfigError(
                        f"the window cap {w.max_amount} on {lim.asset} over {w.window_s} s holds across signer "
                        f"sets only if each holder approves at most {budget} ({threshold} of {parties} signing"
                        f"{f', {c} compromised' if c else ''}), below the per-transaction cap {lim.per_tx}: raise "
                        f"the window cap to at least {need} or lower the per-transaction cap"
                    )
        for r in self.rate_limits:
            if node_budget(r.max_requests, threshold, parties, c) < 1:
                need = -(-(parties - c) // (threshold - c))
                raise PolicyConfigError(
                    f"rate limit {r.max_requests} per {r.window_s} s cannot be split across signer sets of "
                    f"{threshold} of {parties}: allow at least {need} requests"
                )


def check_chain_families(policies: Iterable[Policy]) -> None:
    """PolicyConfigError if `policies` (one, or all those of one key) allow two networks of a family whose
    transactions do not commit to the network (``solana:*``, ``bip122:*``). A Solana message or a PSBT carries no
    chain id: what is signed for a test network is valid on mainnet too, so an agent allowed an uncapped test network
    could spend mainnet funds of the key by labelling them so. One network per family and key makes the label moot.
    EVM chains may be mixed: EIP-155 and typed transactions commit to their chain id."""
    chains = {c for p in policies for c in p.allowed_chains}
    for family in _UNBOUND_FAMILIES:
        mine = sorted(c for c in chains if c.startswith(family))
        if len(mine) > 1:
            raise PolicyConfigError(
                f"{family}* transactions do not commit to their network, so {', '.join(mine)} cannot be told apart "
                "on one key: allow one of them (use another key for another network)"
            )


def node_budget(cap: int, threshold: int, parties: int, compromised: int = 0) -> int:
    """What one holder may approve so that the committee total stays <= `cap` for any signer sets:
    floor(cap * (t - c) / (n - c))."""
    return cap * (threshold - compromised) // (parties - compromised)


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
