"""How many tokens a request's input is, counted by the upstream model
server's own tokenizer: what Anthropic's ``POST /v1/messages/count_tokens``
answers (coding agents call it often, to know when to compact their context).

OpenAI's API has no such endpoint, so each server family's own is tried,
and the first that answers is remembered:

* vLLM and SGLang: ``POST /tokenize`` with the chat messages (and tools),
  rendered by the model's chat template: ``{"count": N}``.
* llama.cpp's ``llama-server``: ``POST /apply-template`` renders the messages
  with the model's template, ``POST /tokenize`` counts the prompt (a server
  without ``--jinja`` renders no tools: their definitions are counted as text).
* llama-cpp-python's server: ``POST /extras/tokenize/count`` on the messages'
  text (it has no template endpoint: the template's few tokens a message are
  not counted).

A server with none of them (Ollama's OpenAI endpoints) cannot count: the
answer is None and the caller says so; no number is made up. The counter
asks again after ``retry_after_s``, in case the server behind the URL changed.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

from guardstack.gateway.upstream import Upstream

#: One server family's way to count; None when the server does not offer it.
Method = Callable[[Upstream, dict[str, Any]], Awaitable[int | None]]


async def _post(upstream: Upstream, path: str, body: dict[str, Any]) -> dict[str, Any] | None:
    """A 2xx JSON object from the server's root (not its /v1), else None.
    An unreachable or silent server raises the usual 502/504."""
    response, _ = await upstream.open("POST", f"../{path}", body)
    raw = await upstream.read(response)
    if not 200 <= response.status_code < 300:
        return None
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 \
        else None


def _with_tools(chat: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    if chat.get("tools"):
        body["tools"] = chat["tools"]
    return body


async def _vllm(upstream: Upstream, chat: dict[str, Any]) -> int | None:
    data = await _post(upstream, "tokenize", _with_tools(chat, {
        "model": chat.get("model"), "messages": chat["messages"],
        "add_generation_prompt": True}))
    return _count(data.get("count")) if data else None


async def _llama_cpp(upstream: Upstream, chat: dict[str, Any]) -> int | None:
    rendered = await _post(upstream, "apply-template",
                           _with_tools(chat, {"messages": chat["messages"]}))
    tools = ""
    if rendered is None and chat.get("tools"):
        # Without --jinja, llama-server's templates refuse tools: render the
        # messages alone and count the tools' definitions as text beside them.
        rendered = await _post(upstream, "apply-template", {"messages": chat["messages"]})
        tools = "\n" + json.dumps(chat["tools"], ensure_ascii=False)
    prompt = rendered.get("prompt") if rendered else None
    if not isinstance(prompt, str):
        return None
    data = await _post(upstream, "tokenize", {"content": prompt + tools, "add_special": True})
    tokens = data.get("tokens") if data else None
    return len(tokens) if isinstance(tokens, list) else None


async def _llama_cpp_python(upstream: Upstream, chat: dict[str, Any]) -> int | None:
    data = await _post(upstream, "extras/tokenize/count",
                       {"model": chat.get("model"), "input": plain_text(chat)})
    return _count(data.get("count")) if data else None


def plain_text(chat: dict[str, Any]) -> str:
    """The chat request as text, for a tokenizer without the chat template:
    each message's role and text, tool calls and the tools' definitions."""
    parts: list[str] = []
    for message in chat["messages"]:
        content = message.get("content")
        if isinstance(content, list):
            content = "\n".join(p.get("text", "") for p in content if isinstance(p, dict))
        parts.append(f"{message.get('role')}\n{content or ''}")
        for call in message.get("tool_calls") or ():
            fn = call.get("function") or {}
            parts.append(f"{fn.get('name', '')}({fn.get('arguments', '')})")
    if chat.get("tools"):
        parts.append(json.dumps(chat["tools"], ensure_ascii=False))
    return "\n".join(parts)


METHODS: tuple[Method, ...] = (_vllm, _llama_cpp, _llama_cpp_python)


class TokenCounter:
    def __init__(self, upstream: Upstream, *, retry_after_s: float = 60.0) -> None:
        self.upstream = upstream
        self.retry_after_s = retry_after_s
        self.method: Method | None = None   # the one that answered last
        self._none_since: float | None = None  # when every method last failed (method None)

    async def count(self, chat: dict[str, Any]) -> int | None:
        """The input tokens of a chat request (messages, tools), or None when
        the upstream offers no tokenizer endpoint."""
        if self._none_since is not None and \
                time.monotonic() - self._none_since < self.retry_after_s:
            return None
        order = [m for m in (self.method,) if m is not None]
        order += [m for m in METHODS if m is not self.method]
        for method in order:
            counted = await method(self.upstream, chat)
            if counted is not None:
                self.method, self._none_since = method, None
                return counted
        self.method, self._none_since = None, time.monotonic()
        return None
