"""An in-process guardstack gateway in front of the upstream, for the
``gateway`` configuration when no ``--gateway-url`` is given: uvicorn on a
free loopback port in a background thread, open mode, no rate limit,
recording to memory (an evaluation is not user traffic)."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def running_gateway(upstream: str, *, policy: Any, guard: Any = None,
                    policy_path: str | None = None, timeout: float = 120.0,
                    upstream_api_key: str | None = None) -> Iterator[str]:
    """Yields the gateway's base URL (with ``/v1``). Needs the ``gateway``
    extra (starlette, uvicorn)."""
    import uvicorn

    from guardstack.gateway.app import create_app
    from guardstack.gateway.settings import GatewaySettings
    from guardstack.guard import Guard

    settings = GatewaySettings(upstream=upstream, upstream_api_key=upstream_api_key,
                               policy=policy_path, open=True, rate_limit=0.0,
                               upstream_timeout=timeout)
    app = create_app(settings, guard=guard if guard is not None else Guard(policy))
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, name="guardstack-gateway", daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError("the in-process gateway did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
