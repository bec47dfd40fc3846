"""The signing policy model: what an admin sets for one (key, agent), as a pydantic model that every process reads
the same way. Pure: no Ray, no disk, no clock (`TimeWindow.contains` takes ``now``), so a client or the gateway
builds a `Policy` without loading node/ (its store, with fcntl and Argon2); the holder's side (spend accounting, the
engine, its lookups) is node/policy.py, which re-exports these names under their old import path.

A `Policy` names: allowed chains (CAIP-2, e.g. ``eip155:8453``), allowed transaction types (`TxType`), a recipient
allowlist and denylist, contract calls allowed by (contract, selector), per-asset limits (a per-transaction cap and
rolling-window caps, in base units; asset ids from `native_asset`, `erc20_asset`), rate limits, time windows (UTC),
a validity period, the BIP32 paths its agent may sign for and a version (a holder takes only a higher one).

Caps across signer sets (the promise and how it is kept). A window cap or rate limit in a policy is a promise about
the whole committee: *whatever signer sets the coordinator picks, the total signed in any window stays within the
cap*. Each holder counts every intent it approves (it cannot see signatures it does not take part in) and enforces
a per-node budget ``B = floor(cap * (t - c) / (n - c))`` (`node_budget`) for a t-of-n key, where
``c = policy.compromised_holders`` (default 0). Why it holds: each signature needs t approvals, at least ``t - c`` of
them from honest holders, and the ``n - c`` honest holders approve at most ``B`` each, so the total is at most
``(n - c) * B / (t - c) <= cap``. (The simpler per-node cap C only bounds the total by ``C * n / t``: a 2-of-3
committee with C per node signs 1.5 C through signer sets {1,2}, {2,3}, {1,3}.) The price: one fixed signer set can
spend only ``B`` (two thirds of the cap for 2-of-3) per window. The per-transaction cap needs no scaling: every
signer checks it. `Policy.validate_for_key(threshold, parties)` refuses, with `PolicyConfigError` (an
`InvalidInput`), any configuration whose promise cannot hold or that contradicts itself:

- a spending cap together with ``raw_digest``, generic ``typed_data`` or ``personal_message`` allowed (an opaque
  digest, an EIP-2612 permit or a Safe transaction hash signed as a personal message can move any asset uncounted);
- two networks of a family whose transactions do not commit to the network (``solana:*``, ``bip122:*``): a
  transfer signed under the test network's label is valid on mainnet (`check_chain_families`; the holder also
  checks all the policies of one key together);
- a contract-call rule that targets the contract of a capped ERC-20 asset (``transferFrom``, ``increaseAllowance``
  and friends would bypass the count);
- a window cap whose per-node budget is 0, or below the per-transaction cap (that transaction could never be
  signed); a rate limit whose per-node budget is below one request; ``compromised_holders >= threshold``;
- windows longer than `MAX_WINDOW_S` (92 days: the longest history node/policy.py's `SpendState` keeps).
"""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Iterable
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .errors import InvalidInput, PolicyConfigError
from .intents.base import EVM_ADDRESS_RE, TxType, erc20_asset, native_asset, normalize_address
from .requests.strict_json import check_json_bounds

__all__ = [
    "MAX_WINDOW_S",
    "AssetLimit",
    "ContractCallRule",
    "Policy",
    "PolicyConfigError",
    "RateLimit",
    "TimeWindow",
    "TxType",
    "WindowCap",
    "check_chain_families",
    "erc20_asset",
    "native_asset",
    "node_budget",
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

MAX_WINDOW_S = 92 * 86400  # the longest window: node/policy.py's SpendState keeps that much history
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
        from .crypto.bip32 import format_path, parse_path

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
