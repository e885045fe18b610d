"""``POST /v1/messages``, Anthropic's Messages API, served over the
upstream's chat completions.

Clients built on Anthropic's SDK (coding agents among them, pointed at a
local model with ``ANTHROPIC_BASE_URL``) speak this API, not OpenAI's. As
LiteLLM does, the gateway translates: the request becomes a chat completion
(:func:`to_chat`) and takes the chat path with every check (the prompt
check, the tool-result check, the safety system prompt, the streamed output
check and its halt); the answer comes back as a Message (:meth:`Reply.from_chat`)
or as Messages stream events (:class:`EventStream`).

Where the gateway's policy intervenes, the answer is what Anthropic's API
returns when its own classifiers do: HTTP 200, ``stop_reason: "refusal"``
and ``stop_details`` naming the category, with whatever text was already
released (a halted stream) or the gateway's ``--blocked-message``. Server
tools, MCP servers, containers and documents need Anthropic's servers and
answer 400 naming the field; ``thinking`` settings are accepted and not
forwarded (the model server decides whether it reasons, and its reasoning
comes back as thinking blocks).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from guardstack.gateway import output_text
from guardstack.gateway.errors import GatewayError, invalid, type_error, what_blocked
from guardstack.gateway.validation import check_sampling
from guardstack.verdict import Verdict

#: Request fields that need Anthropic's own servers.
UNSUPPORTED = ("container", "mcp_servers")
#: Sampling fields with the same meaning in both APIs (``top_k`` is not in
#: OpenAI's; llama.cpp, vLLM and Ollama read it, others ignore it).
_SAME = ("temperature", "top_p", "top_k")
#: Anthropic's error ``type`` for each status the gateway answers with.
ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error",
               403: "permission_error", 404: "not_found_error", 405: "invalid_request_error",
               413: "request_too_large", 429: "rate_limit_error", 500: "api_error",
               502: "api_error", 503: "overloaded_error", 504: "api_error",
               529: "overloaded_error"}
#: Anthropic's refusal categories for the taxonomy's (others: general_harms).
_REFUSAL_CATEGORY = {"cyber": "cyber"}
_STOP = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use",
         "function_call": "tool_use", "content_filter": "refusal"}


# -- request ----------------------------------------------------------------


def to_chat(body: dict[str, Any]) -> dict[str, Any]:
    """The chat-completions request a Messages request asks for; 400 with
    the field named for anything it cannot mean there."""
    for name in UNSUPPORTED:
        if body.get(name) not in (None, [], ""):
            raise invalid(name, f"'{name}' is not supported: the gateway serves the Messages API "
                                "over the model server's chat completions.",
                          code="unsupported_parameter")
    if "max_tokens" not in body:
        raise invalid("max_tokens", "Missing required parameter: 'max_tokens'.",
                      code="missing_required_parameter")
    limit = body["max_tokens"]
    if not isinstance(limit, int) or isinstance(limit, bool):
        raise type_error("max_tokens", "a positive integer", limit)
    if limit < 1:
        raise invalid("max_tokens", f"'max_tokens' must be at least 1, got {limit}.")
    check_sampling(body)
    raw = body.get("messages")
    if "messages" not in body:
        raise invalid("messages", "Missing required parameter: 'messages'.",
                      code="missing_required_parameter")
    if not isinstance(raw, list):
        raise type_error("messages", "an array of messages", raw)
    if not raw:
        raise invalid("messages", "'messages' must not be empty.")
    messages: list[dict[str, Any]] = []
    system = _system(body.get("system"))
    if system:
        messages.append({"role": "system", "content": system})
    for i, message in enumerate(raw):
        _message(message, f"messages[{i}]", messages)
    chat: dict[str, Any] = {"model": body.get("model"), "messages": messages,
                            "max_tokens": limit}
    if "stream" in body:
        chat["stream"] = body["stream"]
        if body["stream"] is True:
            # so message_delta can carry usage (vLLM, Ollama; others ignore it)
            chat["stream_options"] = {"include_usage": True}
    for name in _SAME:
        if body.get(name) is not None:
            chat[name] = body[name]
    stops = body.get("stop_sequences")
    if stops is not None:
        if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
            raise type_error("stop_sequences", "an array of strings", stops)
        if stops:
            chat["stop"] = stops
    metadata = body.get("metadata")
    if isinstance(metadata, dict) and isinstance(metadata.get("user_id"), str):
        chat["user"] = metadata["user_id"]  # Anthropic's end-user id
    if body.get("tools"):
        chat["tools"] = _tools(body["tools"])
    if body.get("tool_choice") is not None:
        choice, parallel = _tool_choice(body["tool_choice"])
        chat["tool_choice"] = choice
        if parallel is False:
            chat["parallel_tool_calls"] = False
    return chat


#: Content blocks only Anthropic's API has: a request holding one is Anthropic's.
_ANTHROPIC_BLOCKS = {"tool_use", "tool_result", "thinking", "redacted_thinking", "document"}


def is_messages_body(body: Mapping[str, Any]) -> bool:
    """Whether ``body`` is a Messages request rather than a chat one: a
    top-level ``system``, or a block type chat messages never hold (for a
    guardrail that sees both kinds, as LiteLLM's proxy hands it both)."""
    if "system" in body:
        return True
    raw = body.get("messages")
    return isinstance(raw, list) and any(
        isinstance(m, Mapping) and isinstance(m.get("content"), list)
        and any(isinstance(b, Mapping) and b.get("type") in _ANTHROPIC_BLOCKS
                for b in m["content"])
        for m in raw)


def messages_of(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The conversation a Messages request carries, as chat messages, for
    judging it where something else serves it (the LiteLLM guardrail): what
    :func:`to_chat` sends, with a message it cannot translate skipped instead
    of refused."""
    messages: list[dict[str, Any]] = []
    try:
        system = _system(body.get("system"))
    except GatewayError:
        system = ""
    if system:
        messages.append({"role": "system", "content": system})
    raw = body.get("messages")
    for i, message in enumerate(raw if isinstance(raw, list) else ()):
        try:
            _message(message, f"messages[{i}]", messages)
        except GatewayError:
            continue
    return messages


def message_text(message: Any) -> str | None:
    """The text the output check reads in a Message (a dict, as LiteLLM
    returns one): thinking, text and tool inputs, a blank line between;
    None if ``message`` is not one."""
    if not isinstance(message, Mapping) or message.get("type") != "message" \
            or not isinstance(message.get("content"), list):
        return None
    parts = []
    for block in message["content"]:
        if not isinstance(block, Mapping):
            continue
        kind = block.get("type")
        if kind == "text" and isinstance(block.get("text"), str):
            parts.append(block["text"])
        elif kind == "thinking" and isinstance(block.get("thinking"), str):
            parts.append(block["thinking"])
        elif kind == "tool_use":
            parts.append(json.dumps(block.get("input", {}), ensure_ascii=False))
    return "\n\n".join(p for p in parts if p)


def _system(system: Any) -> str:
    if system is None or isinstance(system, str):
        return system or ""
    if isinstance(system, list):
        texts = []
        for i, block in enumerate(system):
            if not isinstance(block, dict) or block.get("type") != "text" \
                    or not isinstance(block.get("text"), str):
                raise type_error(f"system[{i}]", "a text block", block)
            texts.append(block["text"])
        return "\n".join(texts)
    raise type_error("system", "a string or an array of text blocks", system)


def _message(message: Any, param: str, messages: list[dict[str, Any]]) -> None:
    if not isinstance(message, dict):
        raise type_error(param, "an object", message)
    role = message.get("role")
    if role not in ("user", "assistant"):
        raise invalid(f"{param}.role", f"Invalid value for '{param}.role': {role!r}; "
                                       "expected user or assistant.")
    content = message.get("content")
    if isinstance(content, str):
        messages.append({"role": role, "content": content})
        return
    if not isinstance(content, list):
        raise type_error(f"{param}.content", "a string or an array of content blocks", content)
    if not content and role == "user":
        # as Anthropic answers it (an empty final assistant turn, a prefill, is fine)
        raise invalid(f"{param}.content", f"'{param}.content' must not be empty: a user "
                                          "message needs at least one content block.")
    parts: list[dict[str, Any]] = []
    calls: list[dict[str, Any]] = []
    for i, block in enumerate(content):
        where = f"{param}.content[{i}]"
        if not isinstance(block, dict):
            raise type_error(where, "an object", block)
        kind = block.get("type")
        if kind == "text":
            if not isinstance(block.get("text"), str):
                raise type_error(f"{where}.text", "a string", block.get("text"))
            parts.append({"type": "text", "text": block["text"]})
        elif kind == "image" and role == "user":
            parts.append(_image(block.get("source"), where))
        elif kind == "tool_use" and role == "assistant":
            arguments = block.get("input", {})
            calls.append({"id": block.get("id"), "type": "function",
                          "function": {"name": block.get("name"),
                                       "arguments": json.dumps(arguments, ensure_ascii=False)}})
        elif kind == "tool_result" and role == "user":
            # tool results answer the previous turn's calls: they go before the user's words
            messages.append({"role": "tool", "tool_call_id": block.get("tool_use_id"),
                             "content": _tool_result(block, where)})
        elif kind in ("thinking", "redacted_thinking"):
            continue  # a previous turn's reasoning: chat templates drop it anyway
        else:
            raise invalid(f"{where}.type", f"Content blocks of type {kind!r} are not supported "
                                           f"in {role} messages by the gateway's Messages API "
                                           "bridge.", code="unsupported_parameter")
    if role == "assistant":
        text = "".join(p["text"] for p in parts)
        if text or calls:
            turn: dict[str, Any] = {"role": "assistant", "content": text or None}
            if calls:
                turn["tool_calls"] = calls
            messages.append(turn)
    elif parts:
        texts_only = all(p["type"] == "text" for p in parts)
        messages.append({"role": "user", "content": "\n".join(p["text"] for p in parts)
                         if texts_only else parts})


def _image(source: Any, where: str) -> dict[str, Any]:
    if isinstance(source, dict) and source.get("type") == "base64":
        url = f"data:{source.get('media_type', 'image/png')};base64,{source.get('data', '')}"
    elif isinstance(source, dict) and source.get("type") == "url":
        url = str(source.get("url", ""))
    else:
        raise invalid(f"{where}.source", "Image sources other than base64 and url are not "
                                         "supported by the gateway's Messages API bridge.",
                      code="unsupported_parameter")
    return {"type": "image_url", "image_url": {"url": url}}


def _tool_result(block: dict[str, Any], where: str) -> str:
    content = block.get("content")
    if content is None or isinstance(content, str):
        text = content or ""
    elif isinstance(content, list):
        texts = []
        for i, part in enumerate(content):
            if not isinstance(part, dict) or part.get("type") != "text":
                kind = part.get("type") if isinstance(part, dict) else part
                raise invalid(f"{where}.content[{i}].type",
                              f"Tool results with {kind!r} blocks are not supported by the "
                              "gateway's Messages API bridge: the model server takes text.",
                              code="unsupported_parameter")
            texts.append(str(part.get("text", "")))
        text = "\n".join(texts)
    else:
        raise type_error(f"{where}.content", "a string or an array of text blocks", content)
    return f"Error: {text}" if block.get("is_error") is True else text


def _tools(tools: Any) -> list[dict[str, Any]]:
    if not isinstance(tools, list):
        raise type_error("tools", "an array", tools)
    out = []
    for i, tool in enumerate(tools):
        if not isinstance(tool, dict) or tool.get("type") not in (None, "custom"):
            kind = tool.get("type") if isinstance(tool, dict) else tool
            raise invalid(f"tools[{i}].type", f"Tools of type {kind!r} are not supported: the "
                                              "model server runs client tools only.",
                          code="unsupported_parameter")
        function = {"name": tool.get("name"),
                    "parameters": tool.get("input_schema") or {"type": "object"}}
        if tool.get("description"):
            function["description"] = tool["description"]
        out.append({"type": "function", "function": function})
    return out


def _tool_choice(choice: Any) -> tuple[Any, bool | None]:
    if not isinstance(choice, dict):
        raise type_error("tool_choice", "an object", choice)
    parallel = None if choice.get("disable_parallel_tool_use") is None else \
        not choice["disable_parallel_tool_use"]
    kind = choice.get("type")
    if kind == "auto":
        return "auto", parallel
    if kind == "any":
        return "required", parallel
    if kind == "none":
        return "none", parallel
    if kind == "tool":
        return {"type": "function", "function": {"name": choice.get("name")}}, parallel
    raise invalid("tool_choice.type", f"Invalid value for 'tool_choice.type': {kind!r}; "
                                      "expected auto, any, tool or none.")


# -- response ---------------------------------------------------------------


def stop_reason(finish_reason: Any) -> str:
    return _STOP.get(finish_reason, "end_turn") if finish_reason else "end_turn"


def stop_details(verdicts: Sequence[Verdict], *, request: bool = False) -> dict[str, Any]:
    """Anthropic's ``stop_details`` for a refusal: the category that decided
    (as near as Anthropic's list has one) and what the policy stopped: the
    request (``request``: the model was never called) or the answer."""
    blocked = [v for v in verdicts if v.blocked]
    cats = sorted({c for v in blocked for c in v.categories})
    # a harm category maps to Anthropic's; a blocklist or a denied topic is
    # the deployer's rule, no harm category (null, as Anthropic's schema allows)
    category = next((_REFUSAL_CATEGORY[c] for c in cats if c in _REFUSAL_CATEGORY),
                    "general_harms" if cats else None)
    named = what_blocked(verdicts)
    named = f" ({named})" if named else ""
    explanation = (f"The request was blocked by the gateway's content policy{named}; the "
                   "model was not called." if request else
                   f"The answer was stopped by the gateway's content policy{named}.")
    return {"type": "refusal", "category": category, "explanation": explanation}


class Reply:
    """The Message for one request: its id and model, with content built
    from a chat completion or a refusal."""

    def __init__(self, request: Mapping[str, Any], message_id: str) -> None:
        self.request = request
        self.id = message_id

    def body(self, content: list[dict[str, Any]], stop: str | None, *,
             usage: Mapping[str, Any] | None = None, model: str | None = None,
             verdicts: Sequence[Verdict] = (), request: bool = False) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": self.id, "type": "message", "role": "assistant",
            "model": model or self.request.get("model"), "content": content,
            "stop_reason": stop, "stop_sequence": None,
            "usage": dict(usage or {"input_tokens": 0, "output_tokens": 0}),
        }
        if stop == "refusal":
            body["stop_details"] = stop_details(verdicts, request=request)
        return body

    def refusal(self, verdicts: Sequence[Verdict], blocked_message: str) -> dict[str, Any]:
        """The answer to a blocked prompt: the model was never called."""
        content = [_text_block(blocked_message)] if blocked_message else []
        return self.body(content, "refusal", verdicts=verdicts, request=True)

    def from_chat(self, data: dict[str, Any], verdicts: Sequence[Verdict]) -> dict[str, Any]:
        """A (checked) chat completion as a Message."""
        choices = data.get("choices") or [{}]
        choice = _obj(choices[0])
        message = _obj(choice.get("message"))
        content: list[dict[str, Any]] = []
        for channel, text in output_text.channels({k: v for k, v in message.items()
                                                   if k != "tool_calls"}):
            if channel == "reasoning":
                content.append(_thinking_block(text))
            elif channel == "content" and text:
                content.append(_text_block(text))
        calls = message.get("tool_calls")
        for call in calls if isinstance(calls, list) else ():
            fn = _obj(_obj(call).get("function"))
            content.append(_tool_block(call.get("id"), fn.get("name"),
                                       _arguments(fn.get("arguments"))))
        return self.body(content, stop_reason(choice.get("finish_reason")),
                         usage=_usage(data.get("usage")), model=data.get("model"),
                         verdicts=verdicts)


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _arguments(raw: Any) -> Any:
    if isinstance(raw, dict):
        return raw
    try:
        parsed = json.loads(raw) if isinstance(raw, str) and raw.strip() else {}
    except ValueError:
        return {"_raw": raw}  # the model wrote arguments that are not JSON
    return parsed if isinstance(parsed, dict) else {"_raw": raw}


def _usage(usage: Any) -> dict[str, int]:
    usage = _obj(usage)
    given = usage.get("prompt_tokens"), usage.get("completion_tokens")
    tokens_in, tokens_out = (v if isinstance(v, int) else 0 for v in given)
    return {"input_tokens": tokens_in, "output_tokens": tokens_out}


def _text_block(text: str) -> dict[str, Any]:
    return {"type": "text", "text": text}


def _thinking_block(text: str) -> dict[str, Any]:
    return {"type": "thinking", "thinking": text, "signature": ""}


def _tool_block(call_id: Any, name: Any, arguments: Any) -> dict[str, Any]:
    return {"type": "tool_use", "id": call_id, "name": name, "input": arguments}


def error_body(status: int, message: str) -> dict[str, Any]:
    kind = ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
    return {"type": "error", "error": {"type": kind, "message": message}}


def upstream_message(raw: bytes) -> str:
    """The message of an upstream error body (OpenAI's envelope or not)."""
    try:
        data = json.loads(raw)
    except ValueError:
        return raw[:500].decode("utf-8", "replace") or "The upstream model server failed."
    err = data.get("error") if isinstance(data, dict) else None
    if isinstance(err, dict) and isinstance(err.get("message"), str):
        return err["message"]
    if isinstance(err, str):
        return err
    return json.dumps(data)[:500]


# -- streaming --------------------------------------------------------------


class EventStream:
    """Streamed chat-completion chunks (already checked) as Messages events:
    ``message_start``, a content block per channel or tool call with its
    deltas, ``message_delta`` with the stop reason, ``message_stop``; a halt
    ends with stop reason ``refusal``, an upstream failure in ``error``."""

    def __init__(self, reply: Reply) -> None:
        self.reply = reply
        self.blocks = 0                         # blocks opened so far
        self.open: str | None = None            # "text", "thinking" or "tool:<index>"
        self.finish_reason: str | None = None
        self.usage: dict[str, int] = {"input_tokens": 0, "output_tokens": 0}
        self.model: str | None = None
        self.streamed = 0                       # chunks that carried output

    def start(self) -> list[dict[str, Any]]:
        message = self.reply.body([], None)
        return [{"type": "message_start", "message": message}]

    def chunk(self, chunk: dict[str, Any]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        if isinstance(chunk.get("model"), str):
            self.model = chunk["model"]
        if isinstance(chunk.get("usage"), dict):
            self.usage = _usage(chunk["usage"])
        choice = output_text.first_choice(chunk)
        if choice is None:
            return out
        delta = _obj(choice.get("delta"))
        self.streamed += bool(output_text.channels(delta))
        for channel, text in output_text.channels({k: v for k, v in delta.items()
                                                   if k != "tool_calls"}):
            kind = "thinking" if channel == "reasoning" else "text"
            if self.open != kind:
                block = _thinking_block("") if kind == "thinking" else _text_block("")
                out += self._open(kind, block)
            field = "thinking" if kind == "thinking" else "text"
            out.append({"type": "content_block_delta", "index": self.blocks - 1,
                        "delta": {"type": f"{field}_delta", field: text}})
        calls = delta.get("tool_calls")
        for call in calls if isinstance(calls, list) else ():
            if not isinstance(call, dict):
                continue
            fn = _obj(call.get("function"))
            key = f"tool:{call.get('index', 0)}"
            if self.open != key:
                out += self._open(key, _tool_block(call.get("id"), fn.get("name"), {}))
            args = fn.get("arguments")
            if isinstance(args, str) and args:
                out.append({"type": "content_block_delta", "index": self.blocks - 1,
                            "delta": {"type": "input_json_delta", "partial_json": args}})
        if choice.get("finish_reason") is not None:
            self.finish_reason = choice["finish_reason"]
        return out

    def _open(self, key: str, block: dict[str, Any]) -> list[dict[str, Any]]:
        out = self._close()
        out.append({"type": "content_block_start", "index": self.blocks, "content_block": block})
        self.blocks += 1
        self.open = key
        return out

    def _close(self) -> list[dict[str, Any]]:
        if self.open is None:
            return []
        self.open = None
        return [{"type": "content_block_stop", "index": self.blocks - 1}]

    def _end(self, stop: str, verdicts: Sequence[Verdict] = (),
             request: bool = False) -> list[dict[str, Any]]:
        delta: dict[str, Any] = {"stop_reason": stop, "stop_sequence": None}
        if stop == "refusal":
            delta["stop_details"] = stop_details(verdicts, request=request)
        usage = dict(self.usage)
        if not usage["output_tokens"]:
            # servers that send no usage while streaming (llama.cpp's): a chunk
            # is about a token, as the Ollama bridge counts it too
            usage["output_tokens"] = self.streamed
        return [*self._close(), {"type": "message_delta", "delta": delta, "usage": usage},
                {"type": "message_stop"}]

    def finish(self) -> list[dict[str, Any]]:
        """The upstream finished and every word passed the check."""
        return self._end(stop_reason(self.finish_reason))

    def halt(self, verdicts: Sequence[Verdict]) -> list[dict[str, Any]]:
        """The output check stopped the answer: what was released stays, the
        message ends with stop reason ``refusal``."""
        return self._end("refusal", verdicts)

    def refusal(self, verdicts: Sequence[Verdict], blocked_message: str) -> list[dict[str, Any]]:
        """A whole stream for a blocked prompt (the model was never called)."""
        out = self.start()
        if blocked_message:
            out += self._open("text", _text_block(""))
            out.append({"type": "content_block_delta", "index": 0,
                        "delta": {"type": "text_delta", "text": blocked_message}})
        return [*out, *self._end("refusal", verdicts, request=True)]

    def fail(self, error: Mapping[str, Any]) -> list[dict[str, Any]]:
        """The upstream's stream failed (or reported an error in-band)."""
        detail = _obj(error.get("error")) or dict(error)
        message = str(detail.get("message") or "The upstream model server's stream failed.")
        return [*self._close(), {"type": "error",
                                 "error": {"type": "api_error", "message": message}}]


def encode(event: Mapping[str, Any]) -> bytes:
    """One Messages stream event as SSE, named as Anthropic names it."""
    data = json.dumps(event, ensure_ascii=False, separators=(",", ":"))
    return f"event: {event['type']}\ndata: {data}\n\n".encode()
