"""Talking to the model under test (or to a gateway in front of it) over the
OpenAI chat-completions wire format, streamed or not.

Everything a server can do wrong becomes an :class:`UpstreamError` with a
message a person can act on; a gateway's refusals (HTTP 400
``content_filter`` on the prompt, ``finish_reason: content_filter`` on the
answer) are *results*, not errors.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

import httpx

from guardstack.gateway import output_text

Kind = Literal["answer", "blocked", "halted"]


class UpstreamError(Exception):
    """The server could not give an answer. ``unreachable`` is set when it
    could not be reached at all (so a run can stop instead of failing every
    item)."""

    def __init__(self, message: str, *, unreachable: bool = False) -> None:
        super().__init__(message)
        self.unreachable = unreachable


@dataclass(frozen=True, slots=True)
class Reply:
    kind: Kind
    text: str = ""
    finish_reason: str | None = None


def _error_message(response: httpx.Response, raw: bytes) -> tuple[str, str | None]:
    try:
        err = json.loads(raw).get("error")
    except (ValueError, AttributeError):
        err = None
    if isinstance(err, dict):
        return str(err.get("message") or "")[:300], err.get("code")
    if isinstance(err, str):
        return err[:300], None
    return raw[:300].decode("utf-8", "replace"), None


def _refused_or_raise(response: httpx.Response, raw: bytes) -> Reply:
    message, code = _error_message(response, raw)
    if response.status_code == 400 and code == "content_filter":
        return Reply("blocked", finish_reason="content_filter")
    raise UpstreamError(f"HTTP {response.status_code} from {response.request.url}: "
                        f"{message or '(empty body)'}")


def _completion_text(data: Any) -> tuple[str, str | None]:
    try:
        choice = data["choices"][0]
        message = choice["message"]
        content = message.get("content")
        if content is not None and not isinstance(content, str):
            raise TypeError("content is not text")
        # everything the model wrote: a reasoning model's chain of thought and
        # tool-call arguments are judged with its content, as the gateway does
        return output_text.message_text(message), choice.get("finish_reason")
    except (KeyError, IndexError, TypeError, AttributeError) as exc:
        raise UpstreamError(
            "the server's answer is not an OpenAI chat completion "
            f"(no choices[0].message.content: {type(exc).__name__}): "
            f"{json.dumps(data)[:200]}") from None


async def chat(client: httpx.AsyncClient, base_url: str, model: str,
               messages: list[dict[str, str]], *, max_tokens: int, stream: bool = False,
               api_key: str | None = None, timeout: float = 120.0) -> Reply:
    url = base_url.rstrip("/") + "/chat/completions"
    body = {"model": model, "messages": messages, "max_tokens": max_tokens,
            # Greedy decoding: a resumed or repeated run sees the same answers.
            "temperature": 0, "stream": stream}
    headers = {"authorization": f"Bearer {api_key}"} if api_key else {}
    try:
        if stream:
            return await _stream(client, url, body, headers, timeout)
        response = await client.post(url, json=body, headers=headers, timeout=timeout)
        raw = response.content
    except httpx.ConnectError as exc:
        raise UpstreamError(f"cannot connect to {url}: {exc}", unreachable=True) from None
    except httpx.TimeoutException:
        raise UpstreamError(f"{url} did not answer within {timeout:g} s "
                            "(raise --timeout for a slow server)") from None
    except httpx.HTTPError as exc:
        raise UpstreamError(f"request to {url} failed: {type(exc).__name__}: {exc}") from None
    if response.status_code != 200:
        return _refused_or_raise(response, raw)
    try:
        data = json.loads(raw)
    except ValueError:
        raise UpstreamError(f"{url} answered HTTP 200 with a body that is not JSON: "
                            f"{raw[:200].decode('utf-8', 'replace')!r}") from None
    text, finish = _completion_text(data)
    return Reply("halted" if finish == "content_filter" else "answer", text, finish)


async def _stream(client: httpx.AsyncClient, url: str, body: dict[str, Any],
                  headers: dict[str, str], timeout: float) -> Reply:
    parts: list[str] = []
    channel: str | None = None
    finish: str | None = None
    async with client.stream("POST", url, json=body, headers=headers,
                             timeout=timeout) as response:
        if response.status_code != 200:
            return _refused_or_raise(response, await response.aread())
        done = False
        async for line in response.aiter_lines():
            if not line.startswith("data:"):
                continue
            payload = line[5:].strip()
            if payload == "[DONE]":
                done = True
                break
            try:
                chunk = json.loads(payload)
            except ValueError:
                raise UpstreamError(f"{url} streamed a line that is not JSON: "
                                    f"{payload[:200]!r}") from None
            if not isinstance(chunk, dict):
                raise UpstreamError(f"{url} streamed a non-object chunk: {payload[:200]!r}")
            if "error" in chunk:
                message = chunk["error"].get("message") if isinstance(chunk["error"], dict) \
                    else chunk["error"]
                raise UpstreamError(f"{url} reported an error mid-stream: {message}")
            for choice in chunk.get("choices") or ():
                if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                    continue
                text, channel = output_text.join_streamed(
                    output_text.channels(choice.get("delta")), channel)
                parts.append(text)
                finish = choice.get("finish_reason") or finish
        if not done:
            raise UpstreamError(f"{url} ended the stream without [DONE]")
    text = "".join(parts)
    return Reply("halted" if finish == "content_filter" else "answer", text, finish)


async def list_models(client: httpx.AsyncClient, base_url: str, api_key: str | None = None,
                      timeout: float = 10.0) -> list[str]:
    """The server's model ids; raises UpstreamError when it is down or odd."""
    url = base_url.rstrip("/") + "/models"
    headers = {"authorization": f"Bearer {api_key}"} if api_key else {}
    try:
        response = await client.get(url, headers=headers, timeout=timeout)
    except httpx.ConnectError as exc:
        raise UpstreamError(f"cannot connect to {url}: {exc}", unreachable=True) from None
    except httpx.TimeoutException:
        raise UpstreamError(f"{url} did not answer within {timeout:g} s",
                            unreachable=True) from None
    except httpx.HTTPError as exc:
        raise UpstreamError(f"request to {url} failed: {type(exc).__name__}: {exc}",
                            unreachable=True) from None
    if response.status_code != 200:
        message, _ = _error_message(response, response.content)
        raise UpstreamError(f"HTTP {response.status_code} from {url}: {message}")
    try:
        data = response.json()["data"]
        return [str(m["id"]) for m in data if isinstance(m, dict) and "id" in m]
    except (ValueError, KeyError, TypeError):
        raise UpstreamError(f"{url} did not answer with an OpenAI model list: "
                            f"{response.text[:200]!r}") from None
