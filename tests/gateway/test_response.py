"""The streaming response closes its stream and reports an abandoned one,
whenever the client goes away."""

from __future__ import annotations

import asyncio

from guardstack.gateway.response import GuardedStreamingResponse

SCOPE = {"type": "http", "asgi": {"spec_version": "2.3"}}


def make() -> tuple[GuardedStreamingResponse, list[str]]:
    events: list[str] = []

    async def body():
        try:
            events.append("started")
            while True:
                yield b"data: x\n\n"
                await asyncio.sleep(0.01)
        finally:
            events.append("closed")

    async def unstarted() -> None:
        events.append("unstarted")

    return GuardedStreamingResponse(body(), on_unstarted=unstarted), events


async def test_client_gone_before_the_first_byte_is_reported():
    response, events = make()

    async def receive():
        await asyncio.sleep(10)

    async def send(message):
        raise OSError("client went away")

    await response(SCOPE, receive, send)
    assert events == ["unstarted"]


async def test_disconnect_mid_stream_closes_the_generator():
    response, events = make()
    sent: list[dict] = []

    async def receive():
        while len(sent) < 4:
            await asyncio.sleep(0.005)
        return {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    await asyncio.wait_for(response(SCOPE, receive, send), 5)
    assert events == ["started", "closed"]
