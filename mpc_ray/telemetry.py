"""Tracing (OpenTelemetry) and metrics (Ray's metrics API) for the runtime.

Spans: one per request (``mpc.sign``, ``mpc.keygen``, ``mpc.sign_request``, ...) and, inside it, one per protocol
round (``mpc.round``). Attributes come from a fixed list of public fields (key id, scheme, signer set, pool depth,
party at fault, ...), each with its own type; anything else is refused with TypeError, so a secret cannot reach an
exporter by a careless call: bytes are never accepted, ints are bounded to 63 bits (a scalar or share is 256 bits or
more) and strings are short. Exceptions are recorded as their type name and public fields (culprit, check, rule),
never their text or stack.

Tracing is off until `configure_tracing` is called, in each process that emits spans (the coordinator actor reads
``MPC_RAY_TRACING`` = console | otlp | memory when it starts, and `Coordinator.configure_tracing` switches a running
one). The provider is this module's own, not OpenTelemetry's global one, so an application's own tracing setup is
left alone. OTLP uses the standard ``OTEL_EXPORTER_OTLP_*`` variables or the `endpoint` argument.

Metrics go through `ray.util.metrics` (exported by Ray's metrics agent, Prometheus format) and are no-ops outside
a Ray worker or driver; every process also keeps a small in-memory mirror (`snapshot`) that `mpc-ray status`
shows: sign latency (count, p50, p99), pool depths, requests that waited for presigning, denials and aborts by
reason, and the last errors (typed ones with their message).
"""

from __future__ import annotations

import collections
import contextvars
import functools
import inspect
import os
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Sequence

from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode

ENV_EXPORTER = "MPC_RAY_TRACING"
ENV_ENDPOINT = "MPC_RAY_OTLP_ENDPOINT"
EXPORTERS = ("console", "otlp", "memory")
TRACER_NAME = "mpc_ray"

_MAX_INT = 2**63 - 1
_MAX_STR = 64
# The only attributes a span may carry, with their types. Names are prefixed with "mpc." on the span.
_ATTRS: dict[str, type] = {
    "key_id": str,
    "scheme": str,
    "operation": str,
    "protocol": str,
    "round": int,
    "sessions": int,
    "messages": int,
    "parties": tuple,  # of ints
    "signer_set": tuple,  # of ints
    "pool_depth": int,
    "party_at_fault": int,
    "check": str,  # the stable name of a failed check, e.g. presign.pi_aff_g.range_z1
    "denied_rule": str,
    "party_unavailable": int,
    "outcome": str,  # ok | error
    "error": str,  # the exception's type name
    "threshold": int,
    "attempts": int,
    "presigned_on_demand": int,  # 1: the request found its pool empty and waited for a fresh presignature / nonce
}
_PARAM_ATTRS = {"key_id": "key_id", "scheme": "scheme", "signers": "signer_set", "threshold": "threshold"}
_COUNT_PARAMS = {"digests": "messages", "messages": "messages", "reqs": "messages", "requests": "messages"}
LATENCY_BOUNDARIES_S = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0]


def public_attribute(name: str, value: Any) -> tuple[str, Any]:
    """("mpc.<name>", value) if `name` is a known public attribute and `value` has its type; TypeError otherwise."""
    kind = _ATTRS.get(name)
    if kind is None:
        raise TypeError(f"span attribute {name!r} is not on the list of public attributes")
    if isinstance(value, (bytes, bytearray, memoryview)):
        raise TypeError(f"span attribute {name!r}: bytes are never put on a span")
    if kind is tuple:
        if not isinstance(value, (tuple, list)) or not all(_small_int(v) for v in value):
            raise TypeError(f"span attribute {name!r} must be a sequence of small ints")
        return f"mpc.{name}", tuple(int(v) for v in value)
    if kind is int:
        if not _small_int(value):
            raise TypeError(f"span attribute {name!r} must be an int below 2**63")
        return f"mpc.{name}", int(value)
    if not isinstance(value, str) or len(value) > _MAX_STR:
        raise TypeError(f"span attribute {name!r} must be a str of at most {_MAX_STR} characters")
    return f"mpc.{name}", value


def _small_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and -_MAX_INT <= v <= _MAX_INT


# tracing --------------------------------------------------------------------------------------------------------
@dataclass
class _TracingState:
    provider: Any = None
    memory: Any = None
    exporter: str | None = None


_tracing = _TracingState()
_tracing_lock = threading.Lock()


def configure_tracing(exporter: str | None = None, *, endpoint: str | None = None,
                      service_name: str = "mpc-ray") -> None:
    """Send this process's spans to `exporter`: "console" (stdout, one JSON object per span), "otlp" (an
    OpenTelemetry collector; `endpoint` or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT), "memory" (kept for
    `finished_spans`, tests) or None (off). Calling it again replaces the previous exporter."""
    if exporter is not None and exporter not in EXPORTERS:
        raise ValueError(f"exporter must be one of {EXPORTERS} or None")
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SimpleSpanProcessor

    with _tracing_lock:
        old = _tracing.provider
        if exporter is None:
            _tracing.provider, _tracing.memory, _tracing.exporter = None, None, None
        else:
            provider = TracerProvider(resource=Resource.create({"service.name": service_name,
                                                                 "process.pid": os.getpid()}))
            memory = None
            if exporter == "memory":
                from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

                memory = InMemorySpanExporter()
                provider.add_span_processor(SimpleSpanProcessor(memory))
            elif exporter == "console":
                import sys

                # this process's stdout now (the exporter's default is the one at its import)
                provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter(out=sys.stdout)))
            else:
                try:
                    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
                except ImportError as exc:  # an optional dependency: pip install "mpc-ray[otlp]"
                    raise ValueError("the OTLP exporter needs opentelemetry-exporter-otlp-proto-http "
                                     "(pip install 'mpc-ray[otlp]')") from exc
                url = endpoint or os.environ.get(ENV_ENDPOINT)
                provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=url) if url else OTLPSpanExporter()))
            _tracing.provider, _tracing.memory, _tracing.exporter = provider, memory, exporter
    if old is not None:
        old.shutdown()  # flushes what the previous exporter still held


def configure_from_env() -> None:
    """What a process started by Ray (the coordinator actor) calls: `MPC_RAY_TRACING`, unset means off."""
    value = os.environ.get(ENV_EXPORTER, "").strip().lower()
    if value and value != "none":
        try:
            configure_tracing(value)
        except ValueError as exc:  # a bad setting must not stop the coordinator: it runs untraced and says why
            import logging

            logging.getLogger(__name__).warning("tracing stays off: %s", exc)


def tracing_exporter() -> str | None:
    return _tracing.exporter


def _tracer():
    provider = _tracing.provider
    return provider.get_tracer(TRACER_NAME) if provider is not None else trace.NoOpTracer()


def finished_spans(clear: bool = False) -> list[dict[str, Any]]:
    """The spans the "memory" exporter holds, oldest first, as plain dicts (picklable: a coordinator returns them)."""
    mem = _tracing.memory
    if mem is None:
        return []
    spans = mem.get_finished_spans()
    if clear:
        mem.clear()
    return [
        {
            "name": s.name,
            "trace_id": f"{s.context.trace_id:032x}",
            "span_id": f"{s.context.span_id:016x}",
            "parent_id": f"{s.parent.span_id:016x}" if s.parent is not None else None,
            "attributes": dict(s.attributes or {}),
            "status": s.status.status_code.name,
            "start_ns": s.start_time,
            "end_ns": s.end_time,
        }
        for s in spans
    ]


def flush() -> None:
    if _tracing.provider is not None:
        _tracing.provider.force_flush()


# the current request: attributes added by `annotate` deep in the call also reach the request's metrics
@dataclass
class _Request:
    operation: str
    attrs: dict[str, Any] = field(default_factory=dict)


_current: contextvars.ContextVar[_Request | None] = contextvars.ContextVar("mpc_ray_request", default=None)


def annotate(**attrs: Any) -> None:
    """Add public attributes to the current span (and the current request, for its metrics)."""
    checked = [public_attribute(k, v) for k, v in attrs.items()]  # refused even when tracing is off
    if _tracing.provider is not None:
        span = trace.get_current_span()
        for name, value in checked:
            span.set_attribute(name, value)
    req = _current.get()
    if req is not None:
        req.attrs.update(attrs)


def _error_facts(exc: BaseException) -> dict[str, Any]:
    """The public facts of an error: its type, and culprit / check / rule where the error names them."""
    from .errors import PolicyDenied, ProtocolAbort

    facts: dict[str, Any] = {"outcome": "error", "error": type(exc).__name__[:_MAX_STR]}
    if isinstance(exc, ProtocolAbort):
        facts.update(party_at_fault=int(exc.culprit), check=str(exc.check)[:_MAX_STR])
    elif isinstance(exc, PolicyDenied):
        facts["denied_rule"] = str(exc.rule)[:_MAX_STR]
    party = getattr(exc, "party", None)
    if _small_int(party) and "party_at_fault" not in facts:
        facts["party_unavailable"] = party
    return facts


def _record_error(span, exc: BaseException) -> dict[str, Any]:
    facts = _error_facts(exc)
    for k, v in facts.items():
        span.set_attribute(*public_attribute(k, v))
    span.set_status(Status(StatusCode.ERROR, facts["error"]))  # the type name only: messages stay out
    return facts


@contextmanager
def request_span(operation: str, **attrs: Any) -> Iterator[None]:
    """A span for one client request; its latency, denials and aborts also go to the metrics."""
    checked = dict(public_attribute(k, v) for k, v in {"operation": operation, **attrs}.items())
    req = _Request(operation, dict(attrs))
    token = _current.set(req)
    t0 = time.perf_counter()
    if _tracing.provider is None:  # tracing off: metrics only, no span machinery on the signing path
        try:
            yield
        except BaseException as exc:
            metrics.request_failed(operation, req.attrs, _error_facts(exc), exc)
            raise
        else:
            metrics.request_done(operation, req.attrs, time.perf_counter() - t0)
        finally:
            _current.reset(token)
        return
    try:
        with _tracer().start_as_current_span(f"mpc.{operation}", attributes=checked,
                                             record_exception=False, set_status_on_exception=False) as span:
            try:
                yield
            except BaseException as exc:
                facts = _record_error(span, exc)
                metrics.request_failed(operation, req.attrs, facts, exc)
                raise
            span.set_attribute("mpc.outcome", "ok")
            metrics.request_done(operation, req.attrs, time.perf_counter() - t0)
    finally:
        _current.reset(token)


@contextmanager
def round_span(protocol: str, round_no: int, parties: Sequence[int], sessions: int = 1, **attrs: Any) -> Iterator[None]:
    """A span for one protocol round, recorded only inside a request (background pool refills make none)."""
    if _current.get() is None or _tracing.provider is None:
        yield
        return
    checked = dict(public_attribute(k, v) for k, v in
                   {"protocol": protocol, "round": round_no, "parties": tuple(parties), "sessions": sessions,
                    **attrs}.items())
    with _tracer().start_as_current_span("mpc.round", attributes=checked, record_exception=False,
                                         set_status_on_exception=False) as span:
        try:
            yield
        except BaseException as exc:
            _record_error(span, exc)
            raise
        span.set_attribute("mpc.outcome", "ok")


def _public_args(sig: inspect.Signature, args: tuple, kwargs: dict) -> dict[str, Any]:
    """Public attributes read off a call's arguments by parameter name (key_id, signers, count of digests)."""
    try:
        bound = sig.bind_partial(*args, **kwargs).arguments
    except TypeError:
        return {}
    out: dict[str, Any] = {}
    for param, attr in _PARAM_ATTRS.items():
        value = bound.get(param)
        if isinstance(value, (str, tuple, list, int)) and not isinstance(value, bool):
            try:
                public_attribute(attr, value)
            except TypeError:
                continue
            out[attr] = tuple(value) if isinstance(value, list) else value
    for param, attr in _COUNT_PARAMS.items():
        if isinstance(bound.get(param), (list, tuple)):
            out[attr] = len(bound[param])
    return out


def traced_request(operation: str) -> Callable[[Callable], Callable]:
    """Decorator: the call is one request span named mpc.<operation> (attributes read off its arguments)."""
    def deco(fn: Callable) -> Callable:
        sig = inspect.signature(fn)  # once: the wrapper sits on the signing path

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with request_span(operation, **_public_args(sig, args, kwargs)):
                return fn(*args, **kwargs)
        return wrapper
    return deco


def traced_round(protocol: str, round_no: int = 1) -> Callable[[Callable], Callable]:
    """Decorator for a one-round step run from the coordinator (e.g. the partial signatures of online signing)."""
    def deco(fn: Callable) -> Callable:
        sig = inspect.signature(fn)

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            found = _public_args(sig, args, kwargs)
            parties = found.pop("signer_set", ())
            found.pop("threshold", None)
            with round_span(protocol, round_no, parties, found.pop("messages", 1), **found):
                return fn(*args, **kwargs)
        return wrapper
    return deco


# metrics --------------------------------------------------------------------------------------------------------
class Metrics:
    """Ray metrics (when this process is part of a Ray cluster) plus an in-memory mirror for `snapshot`."""

    # "client.sign" is measured in the client process: it covers the one-hop path (client/fastpath.py), which
    # reaches the holders without the coordinator, as well as the coordinator path
    SIGN_OPERATIONS = ("sign", "sign_request", "client.sign")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ray: dict[str, Any] | None = None
        self.latencies: dict[str, collections.deque[float]] = {}
        self.latency_count: collections.Counter[str] = collections.Counter()
        self.pool_depth: dict[str, int] = {}
        self.denials: collections.Counter[str] = collections.Counter()
        self.aborts: collections.Counter[str] = collections.Counter()
        self.last_errors: collections.deque[dict[str, Any]] = collections.deque(maxlen=20)
        self.waited_for_presigning: collections.Counter[str] = collections.Counter()  # requests, by key id

    def _ray_metrics(self) -> dict[str, Any] | None:
        """Created on first use inside Ray (ray.util.metrics needs a connected worker); None outside, including
        after the process left Ray (a driver that shut its cluster down, then measures on)."""
        try:
            import ray

            if not ray.is_initialized():
                return None
        except Exception:  # noqa: BLE001 - metrics must never break signing
            return None
        if self._ray is not None:
            return self._ray or None
        try:
            from ray.util.metrics import Counter, Gauge, Histogram

            self._ray = {
                "latency": Histogram("mpc_sign_latency_seconds", "Latency of one signing request, seconds",
                                     boundaries=LATENCY_BOUNDARIES_S, tag_keys=("scheme", "operation")),
                "pool": Gauge("mpc_pool_depth", "Presignatures (ECDSA) or nonces (FROST) ready per pool",
                              tag_keys=("key_id", "pool")),
                "denials": Counter("mpc_denials_total", "Requests refused by a node's policy, by rule",
                                   tag_keys=("rule",)),
                "aborts": Counter("mpc_aborts_total", "Protocol aborts and unavailable parties, by reason",
                                  tag_keys=("reason",)),
            }
        except Exception:  # noqa: BLE001 - metrics must never break signing
            self._ray = {}
        return self._ray or None

    def backend(self) -> str:
        return "ray" if self._ray_metrics() else "memory"

    def request_done(self, operation: str, attrs: dict[str, Any], seconds: float) -> None:
        if operation not in self.SIGN_OPERATIONS:
            return
        self._count_on_demand(attrs)
        scheme = str(attrs.get("scheme", "unknown"))
        series = scheme if operation != "client.sign" else f"client ({scheme})" if "scheme" in attrs else "client"
        with self._lock:
            self.latencies.setdefault(series, collections.deque(maxlen=4096)).append(seconds)
            self.latency_count[series] += 1
        m = self._ray_metrics()
        if m:
            m["latency"].observe(seconds, tags={"scheme": scheme, "operation": operation})

    def request_failed(self, operation: str, attrs: dict[str, Any], facts: dict[str, Any], exc: BaseException) -> None:
        from .errors import MpcError, QuorumUnavailable

        if operation in self.SIGN_OPERATIONS:
            self._count_on_demand(attrs)
        entry = {"time": round(time.time(), 3), "operation": operation, "error": facts["error"],
                 **{k: attrs[k] for k in ("key_id", "scheme") if k in attrs},
                 **{k: facts[k] for k in ("party_at_fault", "check", "denied_rule", "party_unavailable") if k in facts}}
        cause = exc
        while isinstance(getattr(cause, "cause", None), BaseException):  # Ray's RayTaskError wraps the typed error
            cause = cause.cause
        if isinstance(cause, MpcError):  # typed errors carry no secret material (errors.py); others stay type-only
            entry["message"] = str(cause)[:300]
        with self._lock:
            self.last_errors.append(entry)
        if "denied_rule" in facts:
            self.denial(facts["denied_rule"])
        elif isinstance(exc, QuorumUnavailable):  # aborts naming a culprit are counted where it is excluded
            self.abort("quorum_unavailable")

    def _count_on_demand(self, attrs: dict[str, Any]) -> None:
        if attrs.get("presigned_on_demand"):
            with self._lock:
                self.waited_for_presigning[str(attrs.get("key_id", "unknown"))] += 1

    def denial(self, rule: str) -> None:
        with self._lock:
            self.denials[rule] += 1
        m = self._ray_metrics()
        if m:
            m["denials"].inc(tags={"rule": rule})

    def abort(self, reason: str) -> None:
        with self._lock:
            self.aborts[reason] += 1
        m = self._ray_metrics()
        if m:
            m["aborts"].inc(tags={"reason": reason})

    def pool(self, key_id: str, pool: str, depth: int) -> None:
        with self._lock:
            self.pool_depth[f"{key_id}:{pool}"] = depth
        m = self._ray_metrics()
        if m:
            m["pool"].set(depth, tags={"key_id": key_id, "pool": pool})

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            latency = {}
            for scheme, values in self.latencies.items():
                ordered = sorted(values)
                latency[scheme] = {
                    "count": self.latency_count[scheme],
                    "p50_ms": round(ordered[len(ordered) // 2] * 1e3, 2),
                    "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1e3, 2),
                }
            return {
                "metrics_backend": self.backend(),
                "tracing": _tracing.exporter,
                "sign_latency": latency,
                "pool_depth": dict(self.pool_depth),
                "denials": dict(self.denials),
                "aborts": dict(self.aborts),
                "last_errors": list(self.last_errors),
                "waited_for_presigning": dict(self.waited_for_presigning),
            }


metrics = Metrics()


def record_abort(abort: BaseException) -> None:
    """A party was caught sending a bad value: count it by check and put the culprit on the current span."""
    check = str(getattr(abort, "check", type(abort).__name__))[:_MAX_STR]
    culprit = getattr(abort, "culprit", None)
    if _small_int(culprit):
        annotate(party_at_fault=culprit, check=check)
    metrics.abort(check)
    with metrics._lock:
        metrics.last_errors.append({"time": round(time.time(), 3), "error": type(abort).__name__,
                                    "check": check, **({"party_at_fault": culprit} if _small_int(culprit) else {})})


def record_unavailable(party: int) -> None:
    """A party did not answer: counted as an abort of reason party_unavailable, and noted on the current span."""
    if _small_int(party):
        annotate(party_unavailable=party)
    metrics.abort("party_unavailable")


def record_pool(key_id: str, signers: Sequence[int], depth: int) -> None:
    metrics.pool(key_id, "-".join(map(str, signers)), depth)


def snapshot() -> dict[str, Any]:
    return metrics.snapshot()
