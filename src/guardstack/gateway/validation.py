"""Reading and validating request bodies: size limit, UTF-8, JSON, and the
shape of the fields the gateway itself relies on. Everything else in the
body is forwarded untouched for the upstream to judge."""

from __future__ import annotations

import asyncio
import json
import math
import re
from typing import Any, cast

from starlette.requests import ClientDisconnect, Request

from guardstack.classifiers.base import Message, Role, Subject
from guardstack.content_parts import part_text
from guardstack.gateway import disconnect
from guardstack.gateway.errors import GatewayError, type_error

ROLES = ("system", "developer", "user", "assistant", "tool", "function")
#: Seconds a request body may go without a byte before the gateway gives up on
#: it (a client that sends fewer bytes than its Content-Length, or stalls).
BODY_IDLE_TIMEOUT_S = 30.0


async def read_json(request: Request, limit: int) -> dict[str, Any]:
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("", "identity"):
        # Decompressing would need its own size limit (a small gzip body can
        # inflate to gigabytes); OpenAI's clients send plain JSON.
        raise GatewayError(415, f"Content-Encoding {encoding!r} is not supported; send the "
                                "JSON body uncompressed.", code="unsupported_encoding")
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            too_big = int(declared) > limit
        except ValueError:
            raise GatewayError(400, "Content-Length is not a number.") from None
        if too_big:
            raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    # Count while reading: a chunked body has no Content-Length to trust.
    loop = asyncio.get_running_loop()
    try:
        # One deadline moved on by each chunk (no task per chunk on this path).
        async with asyncio.timeout(BODY_IDLE_TIMEOUT_S) as idle:
            async for chunk in request.stream():
                idle.reschedule(loop.time() + BODY_IDLE_TIMEOUT_S)
                size += len(chunk)
                if size > limit:
                    raise _too_large(limit)
                chunks.append(chunk)
    except TimeoutError:
        raise GatewayError(408, f"No part of the request body arrived for "
                                f"{BODY_IDLE_TIMEOUT_S:g} s.", code="request_timeout") from None
    except ClientDisconnect:
        raise GatewayError(499, "The client closed the connection before its request "
                                "body arrived.", code="client_disconnected") from None
    disconnect.body_read(request)
    raw = b"".join(chunks)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise GatewayError(400, f"Request body is not valid UTF-8 (byte {exc.start}).",
                           code="invalid_encoding") from None
    if not text.strip():
        raise GatewayError(400, "Request body is empty; expected a JSON object.",
                           code="invalid_json")
    try:
        body = json.loads(text, parse_constant=_no_constant, parse_float=_finite)
    except json.JSONDecodeError as exc:
        raise GatewayError(400, f"Request body is not valid JSON: {exc.msg} "
                                f"(line {exc.lineno}, column {exc.colno}).",
                           code="invalid_json") from None
    except ValueError as exc:  # NaN, 1e309, an integer of more than 4,300 digits
        raise GatewayError(400, f"Request body is not valid JSON: {exc}.",
                           code="invalid_json") from None
    except RecursionError:
        raise GatewayError(400, "Request body is not valid JSON: nested too deeply.",
                           code="invalid_json") from None
    if not isinstance(body, dict):
        raise GatewayError(400, "Request body must be a JSON object.", code="invalid_json")
    if _SURROGATE_ESCAPE.search(text):
        _refuse_lone_surrogates(body)
    return body


# A JSON escape of a UTF-16 surrogate: a pair is one character (an emoji
# escaped by a client), a lone one is text no encoder, database or model can take.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite(literal: str) -> float:
    value = float(literal)
    if math.isinf(value):
        raise ValueError(f"the number {literal[:40]} is out of range")
    return value


def _refuse_lone_surrogates(body: dict[str, Any]) -> None:
    """400 for a string (or key) holding a lone surrogate such as "\\ud800"."""
    stack: list[Any] = [body]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise GatewayError(
                    400, f"Request body holds a lone UTF-16 surrogate "
                         f"(\\u{ord(item[exc.start]):04x}), which is not text.",
                    code="invalid_encoding") from None


def _too_large(limit: int) -> GatewayError:
    return GatewayError(413, f"Request body is larger than the limit of {limit} bytes.",
                        code="request_too_large")


def required(body: dict[str, Any], param: str) -> Any:
    if param not in body:
        raise GatewayError(400, f"Missing required parameter: '{param}'.",
                           code="missing_required_parameter", param=param)
    return body[param]


#: Sampling fields whose JSON type the gateway checks before forwarding them:
#: a wrong one would reach the model server, and its own error (from some
#: servers a 500 with their internals) would be the client's answer.
INTEGERS = ("max_tokens", "max_completion_tokens", "max_output_tokens", "n", "seed",
            "top_logprobs", "best_of", "top_k", "num_ctx")
NUMBERS = ("temperature", "top_p", "presence_penalty", "frequency_penalty", "min_p",
           "typical_p", "repeat_penalty", "repetition_penalty")


def check_sampling(body: dict[str, Any], prefix: str = "") -> None:
    """400 ``invalid_type`` naming the field (``prefix`` + name) for a sampling
    field of the wrong type; null means the default and passes."""
    for name in INTEGERS:
        value = body.get(name)
        # 512.0 passes, as the servers' own validation (pydantic, lax) takes it
        whole = isinstance(value, float) and value.is_integer()
        if value is not None and not whole and (not isinstance(value, int)
                                                or isinstance(value, bool)):
            raise type_error(prefix + name, "an integer", value)
    for name in NUMBERS:
        value = body.get(name)
        if value is not None and (not isinstance(value, int | float) or isinstance(value, bool)):
            raise type_error(prefix + name, "a number", value)
    stop = body.get("stop")
    if stop is not None and not isinstance(stop, str) and not (
            isinstance(stop, list) and all(isinstance(s, str) for s in stop)):
        raise type_error(prefix + "stop", "a string or an array of strings", stop)


def check_common(body: dict[str, Any]) -> None:
    model = body.get("model")
    if model is None:
        raise GatewayError(400, "Missing required parameter: 'model'.",
                           code="missing_required_parameter", param="model")
    if not isinstance(model, str):
        raise type_error("model", "a string", model)
    stream = body.get("stream", False)
    if not isinstance(stream, bool) and stream is not None:
        raise type_error("stream", "a boolean", stream)
    for name in ("user", "safety_identifier"):
        value = body.get(name)
        if value is not None and not isinstance(value, str):
            raise type_error(name, "a string", value)
    check_sampling(body)


def content_text(content: Any, param: str) -> str:
    """The text of a message's content: a string, or OpenAI's list of parts,
    each part's text whatever its type says (:mod:`guardstack.content_parts`:
    a model server that renders it must not receive it unread). Images and
    audio pass through."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for i, part in enumerate(content):
            if not isinstance(part, dict):
                raise type_error(f"{param}[{i}]", "an object", part)
            text = part_text(part)
            if part.get("type") == "text" and text is None:
                raise type_error(f"{param}[{i}].text", "a string", part.get("text"))
            if text is not None:
                texts.append(text)
        return "\n".join(texts)
    raise type_error(param, "a string or an array of content parts", content)


def chat_messages(body: dict[str, Any]) -> list[Message]:
    check_common(body)
    raw = required(body, "messages")
    if isinstance(raw, list) and not raw:
        raise GatewayError(400, "'messages' must not be empty.", code="invalid_value",
                           param="messages")
    return message_list(raw, "messages")


def message_list(raw: Any, param: str) -> list[Message]:
    if not isinstance(raw, list):
        raise type_error(param, "an array", raw)
    out = []
    for i, m in enumerate(raw):
        if not isinstance(m, dict):
            raise type_error(f"{param}[{i}]", "an object", m)
        role = m.get("role")
        if not isinstance(role, str):
            raise GatewayError(400, f"Missing or invalid '{param}[{i}].role'.",
                               code="invalid_value", param=f"{param}[{i}].role")
        if role not in ROLES:
            raise GatewayError(400, f"Invalid value for '{param}[{i}].role': {role!r}; "
                                    f"expected one of {', '.join(ROLES)}.",
                               code="invalid_value", param=f"{param}[{i}].role")
        out.append(Message(role, content_text(m.get("content"), f"{param}[{i}].content")))
    return out


def completion_prompts(body: dict[str, Any]) -> list[str]:
    check_common(body)
    prompt = required(body, "prompt")
    if isinstance(prompt, str):
        return [prompt]
    if isinstance(prompt, list) and all(isinstance(p, str) for p in prompt):
        return list(prompt)
    if isinstance(prompt, list) and all(isinstance(p, int) for p in prompt):
        # Token ids: the gateway cannot read them without the model's tokenizer.
        raise GatewayError(400, "Token-id prompts cannot be checked; send text.",
                           code="invalid_type", param="prompt")
    raise type_error("prompt", "a string or an array of strings", prompt)


def completion_suffix(body: dict[str, Any]) -> str | None:
    """The text a fill-in-the-middle completion ends with (``suffix``, which
    llama-cpp-python's server reads): the model reads it with the prompt."""
    suffix = body.get("suffix")
    if suffix is not None and not isinstance(suffix, str):
        raise type_error("suffix", "a string", suffix)
    return suffix or None


def with_suffix(prompts: list[str], suffix: str | None) -> list[str]:
    """Each prompt as the model reads it, and so as it is judged: with the
    fill-in-the-middle ``suffix`` after it."""
    return [f"{p}\n{suffix}" for p in prompts] if suffix else prompts


def moderation_role(body: dict[str, Any]) -> str:
    """What the inputs are, by guardstack's optional ``guardstack.role``:
    ``prompt`` (OpenAI's schema: the default), ``response`` (a model's
    answers) or ``tool`` (documents an agent reads, for the injection check)."""
    ext = body.get("guardstack")
    if ext is None:
        return "prompt"
    if not isinstance(ext, dict):
        raise type_error("guardstack", "an object", ext)
    role = ext.get("role", "prompt")
    if role not in ("prompt", "response", "tool"):
        raise GatewayError(400, f"Invalid value for 'guardstack.role': {role!r}; expected "
                                "prompt, response or tool.", code="invalid_value",
                           param="guardstack.role")
    return str(role)


def moderation_prompt_clean(body: dict[str, Any]) -> bool:
    """guardstack's optional ``guardstack.prompt_clean``: the answers judged
    (``role: response``) reply to a prompt the caller's own prompt check
    passed, so the policy's ``response.clean_prompt_threshold`` applies."""
    ext = body.get("guardstack")
    value = ext.get("prompt_clean", False) if isinstance(ext, dict) else False
    if not isinstance(value, bool):
        raise type_error("guardstack.prompt_clean", "a boolean", value)
    if value and moderation_role(body) != "response":
        raise GatewayError(400, "'guardstack.prompt_clean' applies to answers only; send it "
                                "with 'guardstack.role': 'response'.", code="invalid_value",
                           param="guardstack.prompt_clean")
    return value


def moderation_subjects(body: dict[str, Any]) -> list[Subject]:
    """The inputs to judge as prompts or answers. OpenAI's schema makes each
    a prompt without context; guardstack's optional ``guardstack`` object
    names their role and the conversation before them (the LiteLLM
    guardrail's remote mode sends answers as responses)."""
    texts = moderation_inputs(body)
    role = moderation_role(body)
    ext = body.get("guardstack")
    if ext is None:
        return [Subject(t, "prompt") for t in texts]
    context = tuple(message_list(ext.get("context", []), "guardstack.context"))
    return [Subject(t, cast(Role, role), context) for t in texts]


def moderation_inputs(body: dict[str, Any]) -> list[str]:
    value = required(body, "input")
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value:
        out = []
        for i, item in enumerate(value):
            if isinstance(item, str):
                out.append(item)
            elif isinstance(item, dict) and item.get("type") == "text":
                text = item.get("text")
                if not isinstance(text, str):
                    raise type_error(f"input[{i}].text", "a string", text)
                out.append(text)
            elif isinstance(item, dict) and item.get("type") == "image_url":
                raise GatewayError(400, "Image inputs are not supported by this moderation "
                                        "endpoint.", code="invalid_value", param=f"input[{i}]")
            else:
                raise type_error(f"input[{i}]", "a string or a text part", item)
        return out
    if isinstance(value, list):
        raise GatewayError(400, "'input' must not be empty.", code="invalid_value",
                           param="input")
    raise type_error("input", "a string or a non-empty array", value)


def check_embedding_input(body: dict[str, Any]) -> None:
    """Raise unless ``input`` has a shape OpenAI's schema allows: a string,
    an array of strings, an array of token ids, or an array of token-id
    arrays. Nothing is judged: an embedding is read by programs, not people."""
    check_common(body)
    value = required(body, "input")
    if isinstance(value, str):
        return
    if not isinstance(value, list) or not value:
        raise type_error("input", "a string or a non-empty array", value)
    if all(_token_id(v) for v in value):
        return  # one text as token ids
    for i, item in enumerate(value):
        if not (isinstance(item, str)
                or (isinstance(item, list) and item and all(_token_id(t) for t in item))):
            raise type_error(f"input[{i}]", "a string or a non-empty array of token ids",
                             item)


def _token_id(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
