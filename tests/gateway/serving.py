"""Serving a gateway app with uvicorn on a free loopback port in a
background thread, as a real client sees it."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from typing import Any

import uvicorn
from tests.fixtures.llama_server import free_port

from guardstack.gateway.recorder import MemoryRecorder


class Running:
    def __init__(self, url: str, app: Any, recorder: MemoryRecorder) -> None:
        self.url, self.app, self.recorder = url, app, recorder

    @property
    def gateway(self) -> Any:
        return self.app.state.gateway

    def wait_for_exchanges(self, n: int, timeout: float = 10.0) -> list[Any]:
        deadline = time.monotonic() + timeout
        while len(self.recorder.exchanges) < n and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.recorder.exchanges


@contextlib.contextmanager
def serve_app(app: Any, port: int | None = None) -> Iterator[str]:
    port = port or free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("gateway did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def read_chat_stream(stream: Any) -> tuple[str, list[str]]:
    """An official client's chat completion stream, read to its end: the
    text the client received and the finish reasons it was told."""
    parts, finishes = [], []
    for chunk in stream:
        for choice in chunk.choices:
            parts.append(choice.delta.content or "")
            if choice.finish_reason:
                finishes.append(choice.finish_reason)
    return "".join(parts), finishes
