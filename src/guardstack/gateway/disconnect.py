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
(:func:`body_read`), so it never takes a body chunk from the handler.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from typing import TypeVar

from starlette.requests import Request

T = TypeVar("T")


class ClientLeft(Exception):
    """The client disconnected before the handler had an answer for it."""


def watch(request: Request) -> None:
    """Mark ``request`` as one whose departure :func:`unless_client_leaves` listens for."""
    request.state.body_read = asyncio.Event()


def body_read(request: Request) -> None:
    """The handler has read the whole body: listening for a disconnect is safe now."""
    event = getattr(request.state, "body_read", None)
    if event is not None:
        event.set()


async def unless_client_leaves(request: Request, work: Awaitable[T]) -> T:
    """``await work``, unless the client disconnects first: then ``work`` is
    cancelled and :class:`ClientLeft` raised."""
    task = asyncio.ensure_future(work)
    listener = asyncio.ensure_future(_departure(request))
    try:
        await asyncio.wait({task, listener}, return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:
        task.cancel()
        listener.cancel()
        raise
    if task.done():
        listener.cancel()
        return task.result()
    task.cancel()
    with contextlib.suppress(BaseException):
        await task
    raise ClientLeft


async def _departure(request: Request) -> None:
    event = getattr(request.state, "body_read", None)
    if event is None:  # not watched: never
        await asyncio.Event().wait()
        return
    await event.wait()
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return
