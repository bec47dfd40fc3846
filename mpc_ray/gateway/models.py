"""Old import path of the gateway's JSON envelopes and error body, which are now `mpc_ray.requests.http`."""

from ..requests.http import (  # noqa: F401
    ERROR_STATUSES,
    MAX_REQUEST_BYTES,
    ErrorBody,
    KeyOut,
    SignatureOut,
    SignEnvelope,
    error_from_body,
    error_response,
)
