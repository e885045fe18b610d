"""Anthropic Messages streams as LiteLLM hands them to a guardrail: raw
Server-Sent Events bytes (``event: content_block_delta\\ndata: {...}\\n\\n``),
one frame per chunk from LiteLLM's own translation, or transport reads that
join or split frames when the proxy passes an Anthropic upstream through.

:class:`SSEFrames` cuts the bytes into whole frames, reads each as the
chat-shaped event :class:`~guardstack.gateway.streaming.StreamCheck` judges
(text, thinking and tool-input deltas; ``message_delta`` as the finish, so
the last words are judged before the stop reason goes out), keeps track of
what reached the client, and writes the frames that end a halted message as
Anthropic's API ends one its classifiers stopped: the open blocks closed,
``stop_reason: "refusal"`` with ``stop_details``, ``message_stop``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from guardstack.gateway import anthropic_api
from guardstack.verdict import Verdict

#: A frame ends with a blank line; servers may write CRLF.
_FRAME_END = re.compile(rb"\r?\n\r?\n")
#: A block delta's text by the chat delta field StreamCheck reads it as.
_DELTAS = {"text_delta": ("text", "content"),
           "thinking_delta": ("thinking", "reasoning_content")}


def is_frames(chunk: Any) -> bool:
    """Whether a stream chunk is SSE bytes rather than a LiteLLM object."""
    return isinstance(chunk, bytes | bytearray)


def event_name(frame: bytes) -> str | None:
    """The frame's ``event:`` name, read without parsing its data."""
    for line in frame.splitlines():
        if line.startswith(b"event:"):
            return line[6:].strip().decode("utf-8", "replace")
    return None


def parse(frame: bytes) -> dict[str, Any] | None:
    """A frame's JSON data (its ``type`` from the ``event:`` line when the
    data has none); None for a comment, a keep-alive or unreadable data."""
    name, data = None, []
    for line in frame.decode("utf-8", "replace").splitlines():
        if line.startswith("event:"):
            name = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].removeprefix(" "))
    if not data:
        return None
    try:
        event = json.loads("\n".join(data))
    except ValueError:
        return None
    if not isinstance(event, dict):
        return None
    if name and "type" not in event:
        event["type"] = name
    return event


def chat_event(event: dict[str, Any] | None) -> dict[str, Any]:
    """An Anthropic stream event as the chat-shaped dict StreamCheck reads:
    the text of a block delta as a choice's delta, ``message_delta`` as the
    choice's finish; every other event carries no choice."""
    event = event or {}
    kind = event.get("type")
    choices: list[dict[str, Any]] = []
    if kind == "content_block_delta":
        delta = _obj(event.get("delta"))
        field, channel = _DELTAS.get(str(delta.get("type")), (None, None))
        if field is not None and channel is not None:
            text = delta.get(field)
            if isinstance(text, str) and text:
                choices.append({"index": 0, "delta": {channel: text}, "finish_reason": None})
        elif delta.get("type") == "input_json_delta":
            partial = delta.get("partial_json")
            if isinstance(partial, str) and partial:
                choices.append({"index": 0, "finish_reason": None, "delta": {
                    "tool_calls": [{"function": {"arguments": partial}}]}})
    elif kind == "message_delta":
        stop = _obj(event.get("delta")).get("stop_reason")
        choices.append({"index": 0, "delta": {}, "finish_reason": stop or "end_turn"})
    return {"choices": choices}


class SSEFrames:
    """One Anthropic stream's frames: cut from the bytes as they come, and
    what of them the client was sent."""

    def __init__(self) -> None:
        self.buffer = b""
        self.seen = False           # the stream is SSE bytes
        self.open: list[int] = []   # blocks started and not stopped, as sent
        self.ended = False          # message_delta or message_stop was sent
        self.deltas_sent = 0        # block deltas sent (about one token each)

    def split(self, chunk: bytes | bytearray) -> list[bytes]:
        """The whole frames this chunk completes; a part frame waits for the rest."""
        self.seen = True
        self.buffer += bytes(chunk)
        frames = []
        while (end := _FRAME_END.search(self.buffer)) is not None:
            frames.append(self.buffer[:end.end()])
            self.buffer = self.buffer[end.end():]
        return frames

    def rest(self) -> bytes:
        """What the upstream left after its last whole frame, sent as it came."""
        rest, self.buffer = self.buffer, b""
        return rest

    def sent(self, frame: bytes) -> None:
        """Note a frame that went to the client. Deltas, nearly every frame,
        are counted by their ``event:`` line; their data was read to judge them."""
        kind = event_name(frame)
        if kind == "content_block_delta":
            self.deltas_sent += 1
            return
        event = parse(frame) or {}
        kind = event.get("type")
        index = event.get("index")
        if kind == "content_block_start" and isinstance(index, int):
            self.open.append(index)
        elif kind == "content_block_stop" and index in self.open:
            self.open.remove(index)
        elif kind == "content_block_delta":
            self.deltas_sent += 1
        elif kind in ("message_delta", "message_stop"):
            self.ended = True

    def halt(self, verdicts: Sequence[Verdict]) -> list[bytes]:
        """The frames that end a halted message after what was sent: its open
        blocks stopped, stop reason ``refusal`` naming the category."""
        if self.ended:
            return []
        events: list[dict[str, Any]] = [{"type": "content_block_stop", "index": i}
                                        for i in self.open]
        events.append({"type": "message_delta",
                       "delta": {"stop_reason": "refusal", "stop_sequence": None,
                                 "stop_details": anthropic_api.stop_details(verdicts)},
                       "usage": {"output_tokens": self.deltas_sent}})
        events.append({"type": "message_stop"})
        self.open, self.ended = [], True
        return [anthropic_api.encode(e) for e in events]


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}
