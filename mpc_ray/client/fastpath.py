"""One-hop ECDSA signing: the client leases presignatures from the coordinator ahead of time and, to sign, asks the
signers of one of them for their partial signatures directly, then combines and verifies itself.

Through the coordinator a signature costs two sequential Ray calls (client -> coordinator -> holders); with a lease
it costs one (client -> holders, in parallel). Leases are fetched in the background in small batches; a leased
presignature has left the coordinator's pool, so nobody else uses it, and the holders still consume each one durably
before answering, so a lease can never sign twice. A leased presignature that is never used is simply wasted.

For a raw digest, anything unusual (no lease, a signer that does not answer, a partial that does not combine) falls
back to the coordinator path, which handles failover, blame and exclusion; a party that failed here is skipped for a
while. A refusal of the operator's request itself (PolicyDenied: its policy, a rate limit) is raised instead: the
coordinator would refuse a fresh one alike. Agent requests (`sign_request`) use leases too: each signer checks the
request and its policy and audits it exactly as through the coordinator. Only a missing lease falls back there; once
a signer has seen a request, its nonce is spent, so a failure is raised (typed) and the agent signs a fresh request,
as on the coordinator path.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Any

import ray

from ..crypto.secp256k1 import Point
from ..errors import MpcError, PolicyDenied
from ..protocols.ecdsa.presign import PresignaturePublic
from ..protocols.ecdsa_protocols import CGGMP21, ecdsa_protocol, protocol_of
from ..protocols.wire import decode
from .raycall import gather, typed_error

_RAY_FAILURES = (ray.exceptions.RayError, TimeoutError)


class PresignatureLeases:
    """Per key, a small queue of leased presignatures (public parts only), refilled in the background."""

    BATCH = 8
    LOW_WATER = 3
    DOWN_S = 5.0
    TIMEOUT_S = 10.0

    def __init__(self, coordinator: Any) -> None:
        self._coordinator = coordinator
        self._lock = threading.Lock()
        self._leases: dict[str, deque[PresignaturePublic]] = {}
        self._public_keys: dict[str, Point] = {}
        self._holders: dict[int, Any] = {}
        self._namespace: str | None = None
        self._fetching: set[str] = set()
        self._down_until: dict[int, float] = {}
        self._unleasable: set[str] = set()  # FROST keys and the like: never ask again

    # leases -------------------------------------------------------------------------------------------
    def _fetch(self, key_id: str) -> None:
        try:
            got = ray.get(self._coordinator.lease_presignatures.remote(key_id, self.BATCH), timeout=self.TIMEOUT_S)
        except (MpcError, *_RAY_FAILURES):
            got = None
        with self._lock:
            self._fetching.discard(key_id)
            if not got:
                return
            if got.get("unleasable"):
                self._unleasable.add(key_id)
                return
            self._namespace = got["namespace"]
            self._public_keys[key_id] = Point.from_bytes(got["public_key"])
            public_type = ecdsa_protocol(got.get("protocol", CGGMP21.name)).public_type  # CGGMP21 or DKLs23
            self._leases.setdefault(key_id, deque()).extend(decode(p, public_type) for p in got["presignatures"])

    def _maybe_refill(self, key_id: str) -> None:
        """Call with the lock held: start a background fetch when the queue runs low."""
        if key_id in self._fetching or key_id in self._unleasable:
            return
        if len(self._leases.get(key_id, ())) <= self.LOW_WATER:
            self._fetching.add(key_id)
            threading.Thread(target=self._fetch, args=(key_id,), daemon=True, name="lease-fetch").start()

    def _take(self, key_id: str) -> tuple[PresignaturePublic, Point] | None:
        now = time.monotonic()
        with self._lock:
            queue = self._leases.get(key_id)
            found = None
            while queue:
                pub = queue.popleft()
                if all(self._down_until.get(p, 0) <= now for p in pub.signers):
                    found = pub
                    break
                # a lease with a party that just failed: drop it (its presignature is simply never used)
            self._maybe_refill(key_id)
            return None if found is None else (found, self._public_keys[key_id])

    def _holder(self, party: int) -> Any:
        h = self._holders.get(party)
        if h is None:
            from ..deploy import actor_name

            h = self._holders[party] = ray.get_actor(actor_name(party), namespace=self._namespace)
        return h

    # signing ------------------------------------------------------------------------------------------
    def sign(self, key_id: str, request: Any) -> tuple[bytes, int] | None:
        """(64-byte r||s, recovery id) for the one digest of an operator's raw_batch `request`, in one round to the
        signers, or None: use the coordinator path (with a fresh request: a signer may have seen this one)."""
        from ..errors import InvalidInput
        from ..requests import SignedRequest, decode_raw_batch

        # checked before a lease is taken: a malformed request must not waste a leased presignature
        if not isinstance(request, SignedRequest) or request.key_id != key_id:
            raise InvalidInput("expected the operator's signed raw_batch request for this key")
        batch = decode_raw_batch(request.body)
        if len(batch.messages) != 1 or batch.tap_tweak is not None or request.derivation_path:
            raise InvalidInput("the one-hop path signs one digest by the master key per request")
        (digest,) = batch.messages
        lease = self._take(key_id)
        if lease is None:
            return None
        pub, public_key = lease
        refs: list = []
        try:
            refs = [self._holder(p).partial_sign.remote(request, [(0, pub.presignature_id)]) for p in pub.signers]
            answers = gather(refs, timeout=self.TIMEOUT_S)  # every signer's answer fetched: none logged unhandled
        except PolicyDenied as exc:
            # the signers refused the operator's request itself (its policy, a rate limit, its signature), before
            # consuming anything: a fresh request through the coordinator would be refused alike, so raise. The other
            # leases stay (dropping them on every refusal would drain the pools); this one is not reused, since a
            # signer that accepted the request may have consumed it
            raise typed_error(exc) from None
        except MpcError:
            # a holder refused (e.g. the key was refreshed and this lease belongs to the old epoch): drop this key's
            # leases; the coordinator path knows what to do
            with self._lock:
                self._leases.pop(key_id, None)
            return None
        except (ValueError, *_RAY_FAILURES):
            self._mark_unresponsive(pub, refs)
            return None
        try:
            proto = protocol_of(pub)  # CGGMP21's sigma_i or DKLs23's online shares
            child = proto.rerandomize_for(pub, public_key, 0, digest)  # the holders re-randomise the master key too
            sig = proto.combine(pub, public_key, digest, {p: a[0] for p, a in zip(pub.signers, answers)}, child)
        except (MpcError, TypeError, IndexError):
            return None  # the coordinator path signs instead, and names and excludes a bad party
        return sig.to_bytes(), sig.recovery_id

    def sign_request(self, request: Any, digest: bytes | None = None) -> tuple[bytes, int] | None:
        """An agent-signed request in one round to the signers of a leased presignature, or None: use the
        coordinator path. Each signer verifies the request, decodes it, applies its policy and audits, as through the
        coordinator, and answers with its partial and the digest it computed; this client combines with that digest
        (or the `digest` a wallet that built the transaction passes) and decodes the request itself only if the
        signature does not verify (coordinator/requests.py `combine_request`). Once a signer has seen the request its
        nonce is spent, so from then on every failure is raised (typed), never retried: the agent signs a fresh
        request, exactly as on the coordinator path."""
        from ..coordinator.requests import combine_request
        from ..requests import SignedRequest

        if not isinstance(request, SignedRequest) or request.derivation_path:
            return None  # HD children need the coordinator's chain code; anything odd gets its typed error there
        lease = self._take(request.key_id)
        if lease is None:
            return None
        pub, public_key = lease
        refs: list = []
        try:
            refs = [self._holder(p).sign_request.remote(request, pub.presignature_id) for p in pub.signers]
            answers = gather(refs, timeout=self.TIMEOUT_S)  # every signer's answer fetched: none logged unhandled
        except MpcError as exc:
            raise typed_error(exc) from None  # a signer's refusal (PolicyDenied naming the rule, ...), audited there
        except (ValueError, *_RAY_FAILURES) as exc:  # ValueError: a holder actor Ray cannot look up
            self._mark_unresponsive(pub, refs)
            from ..coordinator.sessions import PartyUnavailable

            down = [p for p, d in self._down_until.items() if d > time.monotonic() and p in pub.signers]
            raise PartyUnavailable(down[0] if down else pub.signers[0], type(exc).__name__) from None
        sig = combine_request(request, pub, public_key, dict(zip(pub.signers, answers)), digest=digest)
        return sig.to_bytes(), sig.recovery_id

    def _mark_unresponsive(self, pub: PresignaturePublic, refs: list) -> None:
        """Skip, for DOWN_S, the signers whose call failed or did not finish (all of them if unknown)."""
        ready: set[int] = set()
        if refs:
            done, _ = ray.wait(refs, num_returns=len(refs), timeout=0)
            for p, ref in zip(pub.signers, refs):
                if ref in done:
                    try:
                        ray.get(ref, timeout=0)
                        ready.add(p)
                    except Exception:  # noqa: BLE001 - this party failed
                        pass
        until = time.monotonic() + self.DOWN_S
        with self._lock:
            for p in pub.signers:
                if p not in ready:
                    self._down_until[p] = until
