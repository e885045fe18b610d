"""A streaming response that always notices a client disconnect and always
closes its body iterator, so the upstream request is cancelled and the
exchange recorded whatever the ASGI server's spec version."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any

import anyio
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send


class GuardedStreamingResponse(StreamingResponse):
    def __init__(self, content: AsyncGenerator[bytes, None], *,
                 on_unstarted: Callable[[], Awaitable[None]],
                 media_type: str = "text/event-stream", **kwargs: Any) -> None:
        super().__init__(content, media_type=media_type, **kwargs)
        self._generator = content
        self._started = False
        self._wrapper = self._iterate()
        self.body_iterator = self._wrapper
        # Runs when the client was gone before the first byte: a generator that
        # never started never reaches its own ``finally``.
        self._on_unstarted = on_unstarted

    async def _iterate(self) -> AsyncGenerator[bytes, None]:
        self._started = True
        async for chunk in self._generator:
            yield chunk

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            async with anyio.create_task_group() as tg:

                async def stream() -> None:
                    # OSError: the client went away while we were sending.
                    with contextlib.suppress(OSError):
                        await self.stream_response(send)
                    tg.cancel_scope.cancel()

                async def watch() -> None:
                    await self.listen_for_disconnect(receive)
                    tg.cancel_scope.cancel()

                tg.start_soon(stream)
                tg.start_soon(watch)
        finally:
            with anyio.CancelScope(shield=True):
                if not self._started:
                    await self._on_unstarted()
                await self._wrapper.aclose()
                await self._generator.aclose()
