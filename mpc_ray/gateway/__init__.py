"""The HTTP gateway: agents sign through it without Ray access (gateway/app.py); its envelopes and typed error
body (requests/http.py) are shared with the remote client. `deploy_gateway` / `shutdown_gateway` import Ray Serve
only when called, so importing this package stays light."""

from __future__ import annotations

from typing import Any

__all__ = ["deploy_gateway", "shutdown_gateway"]


def deploy_gateway(**kwargs: Any) -> str:
    from .app import deploy_gateway as deploy

    return deploy(**kwargs)


def shutdown_gateway() -> None:
    from .app import shutdown_gateway as shutdown

    shutdown()
