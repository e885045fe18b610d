"""Parsing the upstream's server-sent events strictly enough to notice when
it sends garbage or stops mid-event, and encoding ours."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

DONE = b"data: [DONE]\n\n"


class UpstreamStreamError(Exception):
    """The upstream's stream broke: not SSE, not JSON, or cut off mid-event."""


def encode(obj: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode() + b"\n\n"


async def events(chunks: AsyncIterator[bytes]) -> AsyncIterator[dict[str, Any] | None]:
    """Yield each event's JSON object, then ``None`` for ``[DONE]``.

    Raises :class:`UpstreamStreamError` when an event is not JSON or the byte
    stream ends inside an event.
    """
    buf = b""
    data: list[bytes] = []
    async for chunk in chunks:
        buf += chunk
        while True:
            nl = buf.find(b"\n")
            if nl < 0:
                break
            line, buf = buf[:nl].rstrip(b"\r"), buf[nl + 1:]
            if line:
                if line.startswith(b":"):
                    continue  # SSE comment (keep-alive)
                field, _, value = line.partition(b":")
                if field == b"data":
                    data.append(value[1:] if value.startswith(b" ") else value)
                elif field not in (b"event", b"id", b"retry"):
                    raise UpstreamStreamError(
                        f"upstream sent a line that is not server-sent events: {_preview(line)}")
                continue
            if data:
                payload, data = b"\n".join(data), []
                if payload.strip() == b"[DONE]":
                    yield None
                    return
                yield _parse(payload)
    if buf.strip() or data:
        raise UpstreamStreamError("upstream stream ended in the middle of an event")


def _parse(payload: bytes) -> dict[str, Any]:
    try:
        obj = json.loads(payload)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise UpstreamStreamError(
            f"upstream sent an event that is not JSON: {_preview(payload)}") from None
    if not isinstance(obj, dict):
        raise UpstreamStreamError(f"upstream sent an event that is not an object: "
                                  f"{_preview(payload)}")
    return obj


def _preview(raw: bytes, n: int = 80) -> str:
    text = raw[:n].decode("utf-8", "replace")
    return repr(text + ("…" if len(raw) > n else ""))
