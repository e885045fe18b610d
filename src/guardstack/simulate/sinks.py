"""Where simulated traffic goes: a JSONL file (plus its ground truth), or a
live gateway as real multi-turn chats through the official clients: the
``openai`` client over chat completions or the Responses API, the ``ollama``
client over Ollama's native API (as Open WebUI would send it), the
``anthropic`` client over the Messages API, or a mix by user."""

from __future__ import annotations

import asyncio
import json
import os
import zlib
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from guardstack.simulate.generator import Record, Session, Traffic

#: Header the gateway reads to group exchanges into a conversation.
CONVERSATION_HEADER = "X-Conversation-Id"
#: Header Open WebUI names its user in; the gateway reads it (--end-user-header)
#: where a request has no `user` field, as Ollama's API has none.
END_USER_HEADER = "X-OpenWebUI-User-Id"
#: Which API the simulated clients speak; "mixed" splits users among the four
#: (stably, by user id), as a platform with several client apps would.
Api = Literal["chat", "responses", "ollama", "messages", "mixed"]
ClientApi = Literal["chat", "responses", "ollama", "messages"]
CLIENT_APIS: tuple[ClientApi, ...] = ("chat", "responses", "ollama", "messages")
DEFAULT_MAX_RETRIES = 6
DEFAULT_BACKOFF_S = 0.5
MAX_BACKOFF_S = 30.0


def _atomic_write(path: Path, lines: Iterable[str]) -> None:
    """Write through a temporary file and rename, so an interrupted run never
    leaves a half-written file that looks complete."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # A plain open() (not mkstemp, which makes the file 0600) keeps the
    # permissions the user's umask gives any other output file.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8", newline="\n") as handle:
            for line in lines:
                handle.write(line)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def record_line(record: dict[str, Any]) -> str:
    # ensure_ascii=False keeps the multilingual campaigns readable; U+2028/2029
    # never occur in our texts, so str.splitlines() sees the same lines.
    return json.dumps(record, ensure_ascii=False) + "\n"


def ingest_lines(record: Record) -> list[dict[str, Any]]:
    """A user turn in the ingest format, and for an agent turn the page its
    assistant read as a ``tool`` line a second later (``guardstack ingest``
    checks it for planted instructions, as the gateway checks a tool result)."""
    line = record.to_json()
    tool = line.pop("tool", None)
    if tool is None:
        return [line]
    page = {**line, "ts": (record.ts + timedelta(seconds=1)).isoformat(timespec="seconds"),
            "role": "tool", "content": tool["result"], "id": f"{record.id}-page",
            "tool": {"name": tool["name"], "url": tool["url"]}}
    return [line, page]


def write_jsonl(records: Iterable[Record | dict[str, str]], path: Path) -> int:
    """Records as JSONL (a Record as its :func:`ingest_lines`); returns how
    many records were written."""
    count = 0

    def lines() -> Iterable[str]:
        nonlocal count
        for record in records:
            count += 1
            if isinstance(record, Record):
                yield from (record_line(line) for line in ingest_lines(record))
            else:
                yield record_line(record)

    _atomic_write(path, lines())
    return count


def write_truth(truth: dict[str, Any], path: Path) -> None:
    _atomic_write(path, [json.dumps(truth, ensure_ascii=False, indent=1) + "\n"])


def default_truth_path(out: Path) -> Path:
    """``traffic.jsonl`` → ``traffic.truth.json`` beside it."""
    name = out.name[: -len(".jsonl")] if out.name.endswith(".jsonl") else out.name
    return out.with_name(f"{name}.truth.json")


# ---------------------------------------------------------------- gateway


@dataclass
class GatewaySummary:
    users: int = 0
    sessions: int = 0
    sent: int = 0  # user turns attempted (each counted once, whatever the retries)
    answered: int = 0
    blocked: int = 0  # HTTP 400 content_filter on the prompt
    halted: int = 0  # answer ended with finish_reason=content_filter
    rate_limited: int = 0  # 429 answers received (each retried after a back-off)
    errors: int = 0
    error_kinds: Counter[str] = field(default_factory=Counter)
    responses_api: int = 0  # user turns sent through the Responses API
    ollama_api: int = 0  # user turns sent through Ollama's native API
    messages_api: int = 0  # user turns sent through Anthropic's Messages API
    blocked_ids: list[str] = field(default_factory=list)
    halted_ids: list[str] = field(default_factory=list)
    #: User turns and the model's real answers, in the JSONL record format.
    transcript: list[dict[str, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "users": self.users,
            "sessions": self.sessions,
            "sent": self.sent,
            "answered": self.answered,
            "blocked": self.blocked,
            "halted": self.halted,
            "rate_limited": self.rate_limited,
            "errors": self.errors,
            "error_kinds": dict(sorted(self.error_kinds.items())),
            "responses_api": self.responses_api,
            "ollama_api": self.ollama_api,
            "messages_api": self.messages_api,
        }


def _retry_after(exc: Any) -> float | None:
    response = getattr(exc, "response", None)
    value = response.headers.get("retry-after") if response is not None else None
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


async def _complete(client: Any, model: str, messages: list[dict[str, Any]], session: Session,
                    *, max_tokens: int | None, stream: bool) -> tuple[str, str | None]:
    """One chat completion: the answer's text and its finish reason. A stream
    is read to its end, so a halt mid-way shows as ``content_filter``."""
    extra: dict[str, Any] = {} if max_tokens is None else {"max_tokens": max_tokens}
    response = await client.chat.completions.create(
        model=model,
        messages=messages,
        user=session.user,
        extra_headers={CONVERSATION_HEADER: session.id},
        stream=stream,
        **extra,
    )
    if not stream:
        choice = response.choices[0] if response.choices else None
        if choice is None:
            return "", None
        return choice.message.content or "", choice.finish_reason
    parts: list[str] = []
    finish: str | None = None
    async for chunk in response:
        for choice in chunk.choices:
            parts.append(choice.delta.content or "")
            finish = choice.finish_reason or finish
    return "".join(parts), finish


class _StreamFailed(Exception):
    """A Responses stream that ended in an ``error`` event."""


async def _respond(client: Any, model: str, text: str | list[dict[str, Any]],
                   previous: str | None, session: Session,
                   *, max_tokens: int | None, stream: bool) -> tuple[str, str | None, str]:
    """One Responses API turn: the new user text only (or, for an agent turn,
    it with the page fetch as input items), continuing the session's last
    answer by ``previous_response_id``. The answer's text, its
    finish in chat terms (``content_filter`` for a blocked or halted answer,
    ``length``, ``stop``) and the response id."""
    extra: dict[str, Any] = {} if max_tokens is None else {"max_output_tokens": max_tokens}
    if previous is not None:
        extra["previous_response_id"] = previous
    response = await client.responses.create(
        model=model, input=text, user=session.user,
        extra_headers={CONVERSATION_HEADER: session.id}, stream=stream, **extra)
    if stream:
        parts: list[str] = []
        final = None
        async for event in response:
            if event.type == "response.output_text.delta":
                parts.append(event.delta)
            elif event.type == "error":
                raise _StreamFailed(getattr(event, "message", "stream error"))
            elif event.type in ("response.completed", "response.incomplete", "response.failed"):
                final = event.response
        if final is None or final.status == "failed":
            raise _StreamFailed("the stream ended without a response")
        text_out, response = "".join(parts), final
    else:
        text_out = response.output_text
    reason = response.incomplete_details.reason if response.incomplete_details else None
    finish = {"content_filter": "content_filter", "max_output_tokens": "length"}.get(
        reason or "", "stop")
    return text_out, finish, response.id


def client_api(api: Api, user: str) -> ClientApi:
    """The API ``user``'s client speaks: ``mixed`` splits users by their id."""
    return CLIENT_APIS[zlib.crc32(user.encode()) % len(CLIENT_APIS)] if api == "mixed" else api


class _Blocked(Exception):
    """The gateway refused the prompt (content_filter)."""


class _RateLimited(Exception):
    def __init__(self, retry_after: float | None) -> None:
        self.retry_after = retry_after


class _Failed(Exception):
    """Any other failure, named as the summary counts it."""


async def _openai_turn(client: Any, api: ClientApi, model: str, messages: list[dict[str, Any]],
                       text: str | list[dict[str, Any]], previous: str | None,
                       session: Session, *,
                       max_tokens: int | None, stream: bool
                       ) -> tuple[str, str | None, str | None]:
    """One turn through the ``openai`` client: the answer, its finish reason
    and (Responses API) the response id; failures as the exceptions above."""
    import openai

    try:
        if api == "responses":
            return await _respond(client, model, text, previous, session,
                                  max_tokens=max_tokens, stream=stream)
        answer, finish = await _complete(client, model, messages, session,
                                         max_tokens=max_tokens, stream=stream)
        return answer, finish, None
    except openai.RateLimitError as exc:
        raise _RateLimited(_retry_after(exc)) from None
    except openai.BadRequestError as exc:
        if exc.code == "content_filter":
            raise _Blocked() from None
        raise _Failed(f"http 400 ({exc.code or 'bad request'})") from None
    except openai.APIStatusError as exc:
        raise _Failed(f"http {exc.status_code}") from None
    except openai.APIConnectionError as exc:
        raise _Failed(type(exc).__name__) from None
    except (openai.APIError, _StreamFailed):
        # An error event inside a stream (the upstream failed mid-answer).
        raise _Failed("stream error") from None


async def _ollama_turn(client: Any, model: str, messages: list[dict[str, Any]], *,
                       max_tokens: int | None, stream: bool) -> tuple[str, str | None]:
    """One turn through the ``ollama`` client (``/api/chat``): the answer and
    its ``done_reason``; failures as the exceptions above."""
    import httpx
    import ollama

    options = None if max_tokens is None else {"num_predict": max_tokens}
    try:
        if not stream:
            reply = await client.chat(model=model, messages=messages, options=options)
            return reply.message.content or "", reply.done_reason
        parts: list[str] = []
        finish: str | None = None
        async for part in await client.chat(model=model, messages=messages, options=options,
                                            stream=True):
            parts.append(part.message.content or "")
            finish = part.done_reason if part.done else finish
        return "".join(parts), finish
    except ollama.ResponseError as exc:
        if exc.status_code == 429:
            raise _RateLimited(None) from None  # the client keeps no Retry-After
        # The client keeps only the message of Ollama's {"error": ...}; the
        # gateway's refusals of a prompt all begin so.
        if exc.status_code == 400 and str(exc.error).startswith("The prompt "):
            raise _Blocked() from None
        if exc.status_code == -1:  # an {"error"} line inside the stream
            raise _Failed("stream error") from None
        raise _Failed(f"http {exc.status_code}") from None
    except (ConnectionError, httpx.HTTPError) as exc:
        raise _Failed(type(exc).__name__) from None


async def _anthropic_turn(client: Any, model: str, messages: list[dict[str, Any]],
                          session: Session, *, max_tokens: int | None,
                          stream: bool) -> tuple[str, str | None]:
    """One turn through the ``anthropic`` client (``/v1/messages``): the
    answer and its finish in chat terms. The gateway answers a policy
    intervention with ``stop_reason: refusal``; its explanation says whether
    the request never reached the model (blocked) or the answer was stopped."""
    import anthropic

    kw: dict[str, Any] = {"model": model, "messages": messages,
                          "max_tokens": max_tokens or 1024,  # required by this API
                          "metadata": {"user_id": session.user},
                          "extra_headers": {CONVERSATION_HEADER: session.id}}
    try:
        if stream:
            async with client.messages.stream(**kw) as events:
                async for _ in events:
                    pass
                message = await events.get_final_message()
        else:
            message = await client.messages.create(**kw)
    except anthropic.RateLimitError as exc:
        raise _RateLimited(_retry_after(exc)) from None
    except anthropic.APIStatusError as exc:
        raise _Failed(f"http {exc.status_code}") from None
    except anthropic.APIConnectionError as exc:
        raise _Failed(type(exc).__name__) from None
    text = "".join(b.text for b in message.content if b.type == "text")
    if message.stop_reason == "refusal":
        details = getattr(message, "stop_details", None)
        if str(getattr(details, "explanation", "")).startswith("The request was blocked"):
            raise _Blocked()
        return text, "content_filter"
    return text, "length" if message.stop_reason == "max_tokens" else "stop"


_FETCH = "fetch_page"


def _turn_messages(record: Record, speaks: ClientApi) -> list[dict[str, Any]]:
    """A record as the messages a client sends: the user's text, and for an
    agent turn the assistant's page fetch and the page, as the client of
    ``speaks`` writes them (the ``ollama`` client, Anthropic's tool_use and
    tool_result blocks, else OpenAI's chat API)."""
    out: list[dict[str, Any]] = [{"role": "user", "content": record.content}]
    if record.tool is None:
        return out
    url, page = record.tool
    if speaks == "messages":
        call = f"toolu_{record.id}"
        out += [{"role": "assistant", "content": [
                    {"type": "tool_use", "id": call, "name": _FETCH, "input": {"url": url}}]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": call, "content": page}]}]
    elif speaks == "ollama":
        out += [{"role": "assistant", "content": "",
                 "tool_calls": [{"function": {"name": _FETCH, "arguments": {"url": url}}}]},
                {"role": "tool", "content": page, "tool_name": _FETCH}]
    else:
        call = f"call_{record.id}"
        out += [{"role": "assistant", "content": None,
                 "tool_calls": [{"id": call, "type": "function",
                                 "function": {"name": _FETCH,
                                              "arguments": json.dumps({"url": url})}}]},
                {"role": "tool", "tool_call_id": call, "content": page}]
    return out


def _responses_input(record: Record) -> str | list[dict[str, Any]]:
    """A record as the Responses API's input: its text, or for an agent turn
    the text, the page fetch and its output as input items."""
    if record.tool is None:
        return record.content
    url, page = record.tool
    call = f"call_{record.id}"
    return [{"role": "user", "content": record.content},
            {"type": "function_call", "call_id": call, "name": _FETCH,
             "arguments": json.dumps({"url": url})},
            {"type": "function_call_output", "call_id": call, "output": page}]


async def _send_session(client: Any, session: Session, model: str, summary: GatewaySummary,
                        *, max_retries: int, backoff_s: float, max_tokens: int | None = None,
                        stream: bool = False, api: Api = "chat",
                        ollama_client: Any = None, anthropic_client: Any = None) -> None:
    """A session's turns, in order, as one multi-turn chat. ``ollama_client``
    makes a client for the session (its headers name the user and the
    conversation: Ollama's API has no field for either); ``anthropic_client``
    is the Messages API clients' (shared)."""
    speaks = client_api(api, session.user)
    previous: str | None = None  # the Responses API's last answer in this session
    messages: list[dict[str, Any]] = []
    ollama = ollama_client(session) if speaks == "ollama" else None
    try:
        for record in session.records:
            summary.sent += 1
            summary.responses_api += speaks == "responses"
            summary.ollama_api += speaks == "ollama"
            summary.messages_api += speaks == "messages"
            summary.transcript.append(record.to_json())
            turn = _turn_messages(record, speaks)
            messages.extend(turn)
            for attempt in range(max_retries + 1):
                try:
                    if ollama is not None:
                        answer, finish = await _ollama_turn(ollama, model, messages,
                                                            max_tokens=max_tokens, stream=stream)
                    elif speaks == "messages":
                        answer, finish = await _anthropic_turn(
                            anthropic_client, model, messages, session,
                            max_tokens=max_tokens, stream=stream)
                    else:
                        answer, finish, response_id = await _openai_turn(
                            client, speaks, model, messages, _responses_input(record),
                            previous, session, max_tokens=max_tokens, stream=stream)
                        previous = response_id or previous
                except _RateLimited as exc:
                    summary.rate_limited += 1
                    if attempt == max_retries:
                        summary.errors += 1
                        summary.error_kinds["http 429 (retries exhausted)"] += 1
                        del messages[-len(turn):]
                        break
                    delay = exc.retry_after
                    await asyncio.sleep(min(MAX_BACKOFF_S, delay if delay is not None
                                            else backoff_s * 2**attempt))
                    continue
                except _Blocked:
                    # A blocked prompt never reached the model: leave it out of the
                    # history, as a chat UI would, so later turns are judged on their own.
                    del messages[-len(turn):]
                    summary.blocked += 1
                    summary.blocked_ids.append(record.id)
                    break
                except _Failed as exc:
                    del messages[-len(turn):]
                    summary.errors += 1
                    summary.error_kinds[str(exc)] += 1
                    break
                summary.answered += 1
                if finish == "content_filter":
                    summary.halted += 1
                    summary.halted_ids.append(record.id)
                messages.append({"role": "assistant", "content": answer})
                reply = record.to_json()
                reply.update(
                    role="assistant",
                    content=answer,
                    # Simulated clock: the answer lands a couple of seconds after the
                    # question and before the next one (turn gaps are >= 5 s).
                    ts=(record.ts + timedelta(seconds=2)).isoformat(timespec="seconds"),
                    id=f"{record.id}-a",
                )
                summary.transcript.append(reply)
                break
    finally:
        if ollama is not None:
            await ollama.close()


async def replay(traffic: Traffic, base_url: str, api_key: str, model: str, *,
                 concurrency: int = 4, max_retries: int = DEFAULT_MAX_RETRIES,
                 backoff_s: float = DEFAULT_BACKOFF_S, timeout_s: float = 120.0,
                 max_tokens: int | None = None, stream: bool = False,
                 api: Api = "chat") -> GatewaySummary:
    """Send every session as a multi-turn chat, each user's sessions in time
    order (so account states the gateway sets apply to later sessions), up to
    ``concurrency`` users at once. The gateway sees real time, not the
    simulated timestamps; those survive only in the transcript.
    ``max_tokens`` caps each answer (None: the server's default); ``stream``
    asks for streamed answers, so the gateway's mid-stream halts are exercised;
    ``api`` picks chat completions, the Responses API (each turn continues
    the last by ``previous_response_id``), Ollama's ``/api/chat`` (the user
    and conversation in headers, as Open WebUI sends them), Anthropic's
    ``/v1/messages`` (the user in ``metadata.user_id``) or a mix by user."""
    from openai import AsyncOpenAI

    def ollama_client(session: Session) -> Any:
        import ollama

        return ollama.AsyncClient(host=base_url.rstrip("/").removesuffix("/v1"),
                                  timeout=timeout_s,
                                  headers={"authorization": f"Bearer {api_key}",
                                           END_USER_HEADER: session.user,
                                           CONVERSATION_HEADER: session.id})

    users = traffic.sessions_by_user()
    summary = GatewaySummary(users=len(users),
                             sessions=sum(len(s) for s in users.values()))
    gate = asyncio.Semaphore(concurrency)
    anthropic_client = None
    if any(client_api(api, u) == "messages" for u in users):
        import anthropic

        anthropic_client = anthropic.AsyncAnthropic(
            base_url=base_url.rstrip("/").removesuffix("/v1"), api_key=api_key,
            max_retries=0, timeout=timeout_s)
    # Our own retry loop counts and paces 429s; the client's would hide them.
    try:
        async with AsyncOpenAI(base_url=base_url, api_key=api_key, max_retries=0,
                               timeout=timeout_s) as client:

            async def one_user(sessions: list[Session]) -> None:
                async with gate:
                    for session in sessions:
                        await _send_session(client, session, model, summary,
                                            max_retries=max_retries, backoff_s=backoff_s,
                                            max_tokens=max_tokens, stream=stream, api=api,
                                            ollama_client=ollama_client,
                                            anthropic_client=anthropic_client)

            await asyncio.gather(*(one_user(users[u]) for u in sorted(users)))
    finally:
        if anthropic_client is not None:
            await anthropic_client.close()
    # Time order across users; within a session a question precedes its answer.
    summary.transcript.sort(key=lambda r: (datetime.fromisoformat(r["ts"]).timestamp(),
                                           r["session"], r["role"] != "user"))
    return summary
