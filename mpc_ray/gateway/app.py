"""The HTTP gateway: a Ray Serve deployment (FastAPI) that relays principal-signed requests to the coordinator.

Agents outside the cluster talk to it (client/remote.py) and never get Ray access: a Ray driver can run arbitrary
code on the cluster, an HTTP client of this gateway can only submit requests that every node verifies itself.

The gateway never signs for an agent and holds no key: it parses the envelope, refuses what is not a principal-signed
``sign`` request (admin kinds do not go through the agent gateway), forwards the request unchanged, and maps typed
errors to HTTP statuses with a typed body (requests/http.py). It is one more untrusted relay: the nodes verify the
agent's signature, the nonce and expiry, decode the body and apply the policy.

Routes:
    POST /v1/sign            SignEnvelope {request: SignedRequest}  -> SignatureOut
    GET  /v1/keys/{key_id}   -> KeyOut (public key and threshold: public information, served without a request);
                                ?path=m/0/7 for a BIP32 child's public key and chain code
    GET  /healthz            -> {"ok": true}
    GET  /openapi.json       the OpenAPI document of these routes (bodies and errors from requests/http.py)
    GET  /docs               Swagger UI on it (for agents not written in Python)

Deploy on a running cluster with `deploy_gateway` (or ``serve run`` on `Gateway`); `shutdown_gateway` removes it.
"""

# no `from __future__ import annotations`: FastAPI reads the route annotations (Request) at runtime, and Serve's
# ingress re-binds the methods outside this module's namespace

import asyncio
import logging
from typing import Any

import ray
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from ray import serve

from ..client.client import DEFAULT_NAMESPACE
from ..client.handle import SignHandle
from ..client.signer import POLICY_SCHEMES
from ..deploy import COORDINATOR_NAME
from ..errors import InvalidInput, MpcError, PolicyDenied
from ..requests import NOT_REFUSALS, RequestFormat, RequestKind, SignedRequest
from ..requests.http import (
    ERROR_STATUSES,
    MAX_REQUEST_BYTES,
    ErrorBody,
    KeyOut,
    SignatureOut,
    SignEnvelope,
    error_response,
)

__all__ = ["APP_NAME", "Gateway", "app", "deploy_gateway", "shutdown_gateway"]

log = logging.getLogger(__name__)
APP_NAME = "mpc-gateway"
# not a request's failure: a cancelled request (client gone, shutdown) must stay cancelled
_PASS_THROUGH = (*NOT_REFUSALS, asyncio.CancelledError)

app = FastAPI(title="mpc-ray gateway", version="1", docs_url="/docs", redoc_url=None, openapi_url="/openapi.json",
              description="Relays principal-signed requests to an mpc-ray committee; every node verifies each "
                          "request and applies its own policy. Errors carry a typed body (ErrorBody).")


def _errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {s: {"model": ErrorBody, "description": ERROR_STATUSES[s]} for s in statuses}


def _openapi() -> dict[str, Any]:
    """FastAPI's document plus the sign envelope: the route reads its body itself (bounded before any parser
    runs), so FastAPI cannot see the model; its schema comes from requests/http.py like every other one."""
    if app.openapi_schema is None:
        doc = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        envelope = SignEnvelope.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas = doc.setdefault("components", {}).setdefault("schemas", {})
        schemas.update(envelope.pop("$defs", {}))
        schemas["SignEnvelope"] = envelope
        _base64_lengths(schemas)
        for path in doc["paths"].values():  # a malformed parameter is a 400 InvalidInput here, never FastAPI's 422
            for operation in path.values():
                operation.get("responses", {}).pop("422", None)
        for name in ("HTTPValidationError", "ValidationError"):
            schemas.pop(name, None)
        app.openapi_schema = doc
    return app.openapi_schema


def _base64_lengths(node: Any) -> None:
    """Pydantic states a bytes field's length bounds as the bounds of its base64 text, which is longer (a 32-byte
    nonce is 44 characters): restate them for the text a client sends."""
    if isinstance(node, dict):
        if node.get("type") == "string" and node.get("format") in ("base64", "base64url"):
            for bound in ("minLength", "maxLength"):
                if bound in node:
                    node[bound] = 4 * -(-node[bound] // 3)  # padded base64 of that many bytes
        for value in node.values():
            _base64_lengths(value)
    elif isinstance(node, list):
        for value in node:
            _base64_lengths(value)


app.openapi = _openapi  # type: ignore[method-assign]
_SIGN_BODY = {"requestBody": {"required": True, "content": {"application/json": {
    "schema": {"$ref": "#/components/schemas/SignEnvelope"}}}}}


def _error(exc: BaseException) -> JSONResponse:
    status, body = error_response(exc)
    if status >= 500 and not isinstance(exc, MpcError):
        log.error("gateway: unexpected %s", type(exc).__name__)  # the type only: messages may echo input
    return JSONResponse(status_code=status, content=body.model_dump(exclude_none=True))


@app.exception_handler(RequestValidationError)
async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    return _error(InvalidInput(f"malformed request: {len(exc.errors())} error(s)"))


async def _bounded_body(request: Request) -> bytes:
    """The request body, read no further than a sign request can be long (a bigger one is refused unread)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_REQUEST_BYTES:
        raise InvalidInput("request too large")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_REQUEST_BYTES:
            raise InvalidInput("request too large")
        chunks.append(chunk)
    return b"".join(chunks)


def check_agent_request(request: SignedRequest) -> None:
    """What the gateway itself refuses before anything reaches the committee."""
    if request.kind is not RequestKind.SIGN:
        raise PolicyDenied("gateway.kind", "the agent gateway relays sign requests only")
    if not any(pid == request.principal_id for pid, _ in request.signatures):
        raise PolicyDenied("auth.unsigned", "the request is not signed by its principal")


@serve.deployment(ray_actor_options={"num_cpus": 0}, max_ongoing_requests=512)
@serve.ingress(app)
class Gateway:
    """One replica relays any number of requests at once: each awaits its coordinator call on the event loop."""

    def __init__(self, namespace: str = DEFAULT_NAMESPACE, timeout_s: float = 60.0) -> None:
        coordinator = ray.get_actor(COORDINATOR_NAME, namespace=namespace)
        self._h = SignHandle(coordinator, timeout=timeout_s).aio

    @app.post("/v1/sign", summary="Sign a principal-signed request", openapi_extra=_SIGN_BODY,
              responses={200: {"model": SignatureOut, "description": "the threshold signature"},
                         **_errors(400, 401, 403, 404, 409, 413, 500, 502, 503, 504)})
    async def sign(self, request: Request) -> Any:
        try:
            envelope = SignEnvelope.parse(await _bounded_body(request))
            check_agent_request(envelope.request)
            info = await self._h.key_info(envelope.request.key_id)  # unknown key: 404 (cached: keys never change)
            taproot_spend = info.scheme == "schnorr-bip340" and envelope.request.format is RequestFormat.BTC_PSBT
            if info.scheme not in POLICY_SCHEMES and not taproot_spend:  # BIP340: whole PSBTs the nodes decode
                raise InvalidInput(f"policy-enforced signing is not available for {info.scheme} keys "
                                   "(BIP340 keys: btc_psbt requests only)")
            sig = await self._h.sign_request(envelope.request)
            return JSONResponse(SignatureOut.of(sig).model_dump(exclude_none=True))
        except _PASS_THROUGH:
            raise
        except BaseException as exc:  # noqa: BLE001 - every failure becomes a typed error body, native panics too
            return _error(exc)

    @app.get("/v1/keys/{key_id}", summary="A key's public description (?path=m/0/7: its BIP32 child's)",
             responses={200: {"model": KeyOut, "description": "public key, threshold, chain code"},
                        **_errors(400, 404, 500, 503, 504)})
    async def key(self, key_id: str, path: str | None = None) -> Any:
        try:
            if not key_id or len(key_id) > 64:
                raise InvalidInput("unknown key")
            if path is not None and len(path) > 256:
                raise InvalidInput("derivation path too long")
            return JSONResponse(KeyOut.of(await self._h.key_info(key_id, path)).model_dump())
        except _PASS_THROUGH:
            raise
        except BaseException as exc:  # noqa: BLE001
            return _error(exc)

    @app.get("/healthz")
    async def healthz(self) -> Any:
        return {"ok": True}


def deploy_gateway(*, host: str = "127.0.0.1", port: int = 8000, namespace: str = DEFAULT_NAMESPACE,
                   timeout_s: float = 60.0, replicas: int = 1) -> str:
    """Start Serve (one HTTP proxy, on the head node) and deploy the gateway; returns its base URL.

    Call from a driver connected to the committee's cluster (`mpc_ray.connect` / `local_cluster`)."""
    serve.start(proxy_location="HeadOnly", http_options={"host": host, "port": port})
    serve.run(Gateway.options(num_replicas=replicas).bind(namespace, timeout_s), name=APP_NAME, route_prefix="/")
    return f"http://{host}:{port}"


def shutdown_gateway() -> None:
    """Remove the gateway and stop Serve on this cluster."""
    serve.shutdown()
