"""A client that hangs up before its answer is ready.

A stream notices a departed client when it next writes; a non-streamed
request has nothing to write until the model has finished, so without a
watch the model server keeps generating for nobody (45 s of a busy llama.cpp
server for one abandoned request in an audit) and the next requests queue
behind it. :func:`unless_client_leaves` runs a handler while listening for
the ASGI ``http.disconnect`` message and cancels the handler when it comes,
which closes the upstream connection: how vLLM, llama.cpp and Ollama learn
to stop generating.

The listening starts only once the request body has been read
(:func:`body_read`), so it never takes a body chunk from the handler, and
runs in one task of its own that cancels the handler's task: the handler
itself runs in the server's task, unwrapped (a task and a wait per request
fewer).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

from starlette.requests import Request

T = TypeVar("T")


class ClientLeft(Exception):
    """The client disconnected before the handler had an answer for it."""


class _Watch:
    __slots__ = ("handler", "left", "listener")

    def __init__(self, handler: asyncio.Task[object]) -> None:
        self.handler = handler
        self.listener: asyncio.Task[None] | None = None
        self.left = False  # the client left and the handler was cancelled for it


def watch(request: Request) -> None:
    """Mark ``request`` as one whose departure :func:`unless_client_leaves`
    listens for; the calling task is the one it cancels."""
    task = asyncio.current_task()
    if task is not None:
        request.state.disconnect_watch = _Watch(task)


def body_read(request: Request) -> None:
    """The handler has read the whole body: listening for a disconnect is safe now."""
    watched = getattr(request.state, "disconnect_watch", None)
    if watched is not None and watched.listener is None:
        watched.listener = asyncio.get_running_loop().create_task(_listen(request, watched))


async def unless_client_leaves(request: Request, work: Awaitable[T]) -> T:
    """``await work``, unless the client disconnects first: then ``work`` is
    cancelled and :class:`ClientLeft` raised. ``work`` runs in the calling
    task, which must be the one that called :func:`watch`."""
    watched: _Watch | None = getattr(request.state, "disconnect_watch", None)
    try:
        return await work
    except asyncio.CancelledError:
        if watched is not None and watched.left:
            watched.left = False
            # Ours alone, not also the server's (shutting down): the client left.
            if watched.handler.uncancel() == 0:
                raise ClientLeft from None
        raise
    finally:
        if watched is not None:
            if watched.listener is not None:
                watched.listener.cancel()
            if watched.left and watched.handler.cancelling():
                # ``work`` swallowed our cancel: the count must not make a
                # later asyncio.timeout in this task misread its own.
                watched.handler.uncancel()


async def _listen(request: Request, watched: _Watch) -> None:
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            break
    watched.left = True
    watched.handler.cancel()
