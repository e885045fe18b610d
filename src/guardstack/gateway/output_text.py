"""What a model said, from one choice of a completion: the text the output
check judges.

An answer is more than ``content``. Reasoning models served by vLLM,
llama.cpp or Ollama (gpt-oss, Qwen3, DeepSeek-R1) send their chain of
thought as ``reasoning_content`` or ``reasoning``, and clients show it; a
model calling tools writes into ``tool_calls[].function.arguments``. A check
that read ``content`` alone would pass whatever the model put in the other
two, so every channel is judged.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: Chain-of-thought fields, as vLLM, llama.cpp's server and Ollama name them.
REASONING_FIELDS = ("reasoning_content", "reasoning")
#: Everything a withheld answer must lose besides its content.
WITHHELD_FIELDS = (*REASONING_FIELDS, "tool_calls", "function_call")


def first_choice(chunk: Any) -> dict[str, Any] | None:
    """A streamed chunk's choice 0: the one an API with a single answer per
    request (Responses, Ollama's, Anthropic's) relays; None if it has none."""
    choices = chunk.get("choices") if isinstance(chunk, Mapping) else None
    if not isinstance(choices, list):
        return None
    return next((c for c in choices if isinstance(c, dict) and c.get("index", 0) == 0), None)


def channels(message: Any) -> list[tuple[str, str]]:
    """``(channel, text)`` pairs of a chat ``message`` or streamed ``delta``,
    in the order a model produces them: reasoning, content, tool arguments."""
    if not isinstance(message, dict):
        return []
    out: list[tuple[str, str]] = []
    for name in REASONING_FIELDS:
        value = message.get(name)
        if isinstance(value, str) and value:
            out.append(("reasoning", value))
            break  # some servers send the same text under both names
    content = message.get("content")
    if isinstance(content, str) and content:
        out.append(("content", content))
    calls = message.get("tool_calls")
    for call in calls if isinstance(calls, list) else ():
        function = call.get("function") if isinstance(call, dict) else None
        args = function.get("arguments") if isinstance(function, dict) else None
        if isinstance(args, str) and args:
            out.append(("tool", args))
    legacy = message.get("function_call")
    args = legacy.get("arguments") if isinstance(legacy, dict) else None
    if isinstance(args, str) and args:
        out.append(("tool", args))
    return out


def message_text(message: Any) -> str:
    """All of a chat message's channels as one text, a blank line between."""
    return "\n\n".join(text for _, text in channels(message))


def join_streamed(pairs: list[tuple[str, str]], last: str | None) -> tuple[str, str | None]:
    """One streamed delta's ``(channel, text)`` pairs as text, with a blank
    line where the model moves on from the channel ``last`` streamed (so
    reasoning and answer read as a client shows them); and the channel it
    ends on."""
    parts = []
    for channel, text in pairs:
        parts.append(text if last in (None, channel) else "\n\n" + text)
        last = channel
    return "".join(parts), last


def withhold(message: dict[str, Any], replacement: str) -> None:
    """Replace a blocked chat message's content and drop its other channels."""
    message["content"] = replacement
    for name in WITHHELD_FIELDS:
        message.pop(name, None)
