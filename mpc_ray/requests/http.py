"""The gateway's JSON envelopes and its typed error body: the HTTP side of the request layer, shared by the gateway
and the remote client (client/remote.py), so no FastAPI, Serve or Ray import here.

Error body, for every non-2xx answer: ``{"error": "<type in mpc_ray.errors>", "message": ..., "rule": ...,
"culprit": ..., "check": ...}`` (rule for PolicyDenied, culprit / check for ProtocolAbort). Status codes:

=====  ===============================================================================================
400    ``InvalidInput``: malformed JSON (or nested deeper than an envelope is), an envelope that does not
       validate, a body the nodes cannot decode
401    ``PolicyDenied`` with an authentication rule: unsigned, unknown principal, bad signature, expired
403    ``PolicyDenied`` otherwise: the nodes' policy (``policy.*``), an admin-only kind, ``gateway.kind``
404    ``InvalidInput``: unknown key (key lookup)
409    ``PolicyDenied`` ``auth.replayed``: the request nonce was used before
413    ``InvalidInput``: the request is larger than any sign request can be
502    ``ProtocolAbort`` (a party sent a bad value; ``culprit`` names it) or ``BadSignature``
503    ``QuorumUnavailable``: fewer than threshold parties could take part
504    ``RequestTimeout``: the committee did not answer within the gateway's timeout
500    ``MpcError``: anything else (no detail leaves the gateway)
=====  ===============================================================================================
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..errors import (
    BadSignature,
    InvalidInput,
    MpcError,
    PolicyDenied,
    ProtocolAbort,
    QuorumUnavailable,
    RequestTimeout,
)
from .signed import SignedRequest
from .strict_json import MAX_BODY_BYTES, check_json_bounds
from ..types import KeyInfo, Signature

__all__ = [
    "MAX_REQUEST_BYTES",
    "ERROR_STATUSES",
    "ErrorBody",
    "KeyOut",
    "SignEnvelope",
    "SignatureOut",
    "error_from_body",
    "error_response",
]

# base64 of the largest body, plus every other field: a sign request never needs more
MAX_REQUEST_BYTES = MAX_BODY_BYTES * 4 // 3 + 16 * 1024
ENVELOPE_DEPTH = 8  # {"request": {"signatures": [[id, sig]]}} nests 4 deep; checked before any parser runs

_AUTH_401 = {"auth.unsigned", "auth.unknown_principal", "auth.bad_signature", "auth.expired", "auth.expiry_too_far"}
ErrorName = Literal["InvalidInput", "PolicyDenied", "QuorumUnavailable", "ProtocolAbort", "RequestTimeout",
                    "BadSignature", "MpcError"]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SignEnvelope(_Model):
    """POST /v1/sign: one principal-signed request (bytes base64, as `SignedRequest` serialises them)."""

    request: SignedRequest

    @classmethod
    def parse(cls, raw: bytes) -> SignEnvelope:
        """From the raw HTTP body; InvalidInput (never the body's content) when it is not one."""
        if len(raw) > MAX_REQUEST_BYTES:
            raise InvalidInput("request too large")
        check_json_bounds(raw, max_bytes=MAX_REQUEST_BYTES, max_depth=ENVELOPE_DEPTH)
        try:
            return cls.model_validate_json(raw)
        except ValidationError as e:
            first = e.errors()[0]
            where = ".".join(str(p) for p in first.get("loc", ()))[:80]
            raise InvalidInput(f"malformed sign envelope: {e.error_count()} error(s), first at {where!r}: "
                               f"{first.get('type', 'invalid')}") from None


class SignatureOut(_Model):
    scheme: str
    # 64 bytes, hex; a btc_psbt request answers one 64-byte BIP340 signature per input, concatenated
    signature: Annotated[str, Field(pattern="^([0-9a-f]{128}){1,256}$")]
    recovery_id: int | None = None

    @classmethod
    def of(cls, sig: Signature) -> SignatureOut:
        return cls(scheme=sig.scheme, signature=sig.to_bytes().hex(), recovery_id=sig.recovery_id)

    def to_signature(self) -> Signature:

        raw = bytes.fromhex(self.signature)
        if len(raw) != 64 and self.scheme != "schnorr-bip340":  # only a PSBT's per-input signatures come several
            raise BadSignature(f"a {self.scheme} signature is 64 bytes")
        if self.scheme == "ecdsa-secp256k1":
            try:
                return Signature.ecdsa(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"),
                                       self.recovery_id)  # type: ignore[arg-type]
            except (ValueError, TypeError):
                raise BadSignature("not a normalised ECDSA signature with its recovery id") from None
        return Signature(self.scheme, raw)


class KeyOut(_Model):
    key_id: str
    scheme: str
    public_key: Annotated[str, Field(pattern="^([0-9a-f]{2}){32,33}$")]  # hex
    threshold: int
    parties: int
    chain_code: Annotated[str, Field(pattern="^([0-9a-f]{64})?$")] = ""  # BIP32 chain code, hex (may be empty)

    @classmethod
    def of(cls, info: KeyInfo) -> KeyOut:
        return cls(key_id=info.key_id, scheme=info.scheme, public_key=info.public_key.hex(),
                   threshold=info.threshold, parties=info.parties, chain_code=info.chain_code.hex())

    def to_key_info(self) -> KeyInfo:
        try:
            return KeyInfo(key_id=self.key_id, scheme=self.scheme, public_key=bytes.fromhex(self.public_key),
                           threshold=self.threshold, parties=self.parties, chain_code=bytes.fromhex(self.chain_code))
        except ValidationError as e:  # a scheme, threshold or party count no key has: a malformed answer, typed
            where = ".".join(str(x) for x in e.errors()[0]["loc"]) or "key"
            raise InvalidInput(f"malformed key description: {where}") from None


# what each error status means, for the OpenAPI document (gateway/app.py); the table above, in words
ERROR_STATUSES = {
    400: "InvalidInput: malformed JSON, an envelope that does not validate, a body the nodes cannot decode",
    401: "PolicyDenied with an authentication rule (auth.unsigned, auth.unknown_principal, auth.bad_signature, "
         "auth.expired, auth.expiry_too_far)",
    403: "PolicyDenied: the nodes' policy (policy.*), an admin-only kind, gateway.kind",
    404: "InvalidInput: unknown key",
    409: "PolicyDenied auth.replayed: the request nonce was used before",
    413: "InvalidInput: larger than any sign request can be",
    500: "MpcError: anything else (no detail leaves the gateway)",
    502: "ProtocolAbort (culprit names the party that sent a bad value) or BadSignature",
    503: "QuorumUnavailable: fewer than threshold parties could take part",
    504: "RequestTimeout: the committee did not answer within the gateway's timeout",
}


class ErrorBody(_Model):
    error: ErrorName
    message: str = ""
    rule: str | None = None
    culprit: int | None = None
    check: str | None = None


def error_response(exc: BaseException) -> tuple[int, ErrorBody]:
    """(HTTP status, typed body) for an exception raised while serving a request."""

    if isinstance(exc, PolicyDenied):
        status = 409 if exc.rule == "auth.replayed" else 401 if exc.rule in _AUTH_401 else 403
        return status, ErrorBody(error="PolicyDenied", rule=exc.rule, message=exc.message)
    if isinstance(exc, InvalidInput):
        message = str(exc)
        status = 413 if message == "request too large" else 404 if message.startswith("unknown key") else 400
        return status, ErrorBody(error="InvalidInput", message=message)
    if isinstance(exc, ProtocolAbort):
        return 502, ErrorBody(error="ProtocolAbort", culprit=exc.culprit, check=exc.check, message=exc.detail)
    if isinstance(exc, RequestTimeout):
        return 504, ErrorBody(error="RequestTimeout", message=str(exc))
    if isinstance(exc, QuorumUnavailable):
        return 503, ErrorBody(error="QuorumUnavailable", message=str(exc))
    if isinstance(exc, BadSignature):
        return 502, ErrorBody(error="BadSignature", message=str(exc))
    return 500, ErrorBody(error="MpcError", message=f"internal error ({type(exc).__name__})")  # type only


def error_from_body(status: int, payload: object) -> MpcError:
    """The typed error a gateway answer describes (the remote client raises it)."""

    try:
        body = ErrorBody.model_validate(payload)
    except ValidationError:
        return MpcError(f"gateway answered HTTP {status} without a typed error body")
    if body.error == "PolicyDenied":
        return PolicyDenied(body.rule or "unknown", body.message)
    if body.error == "InvalidInput":
        return InvalidInput(body.message)
    if body.error == "ProtocolAbort":
        return ProtocolAbort(body.culprit if body.culprit is not None else 0, body.check or "unknown", body.message)
    if body.error == "RequestTimeout":
        return RequestTimeout(body.message)
    if body.error == "QuorumUnavailable":
        return QuorumUnavailable(body.message)
    if body.error == "BadSignature":
        return BadSignature(body.message)
    return MpcError(body.message or f"gateway answered HTTP {status}")
