"""Ollama's native API (``/api/chat``, ``/api/generate`` and the endpoints
its clients call around them), served over the upstream's OpenAI API.

Much of the software written for Ollama speaks its native API, not its
OpenAI one: the ``ollama`` Python and JavaScript clients, Open WebUI,
LangChain's ``ChatOllama``, editor plugins. Pointed at the gateway, they
would have found nothing (404), and pointed at Ollama itself they bypass
every check. So the gateway speaks it too: a native request becomes the chat
completion it means (:func:`chat_request`, :func:`generate_request`), which
takes the chat path with every check (the prompt check, the safety system
prompt, the streamed output check and its halt), and the answer comes back
as Ollama's JSON or its newline-delimited stream (:class:`Reply`,
:class:`NdjsonStream`). The model server behind can be any of them: vLLM,
llama.cpp's server, or Ollama's own ``/v1``.

A blocked prompt is Ollama's error shape, ``{"error": "..."}`` with HTTP
400, which its clients raise (``ollama.ResponseError``); a blocked answer
keeps HTTP 200 with its text withheld and ``done_reason: "content_filter"``,
and a halted stream ends with that ``done_reason`` as well, as the OpenAI
paths end with ``finish_reason: "content_filter"``.

What needs Ollama itself is refused with a 400 naming the field, never
dropped in silence: ``context`` (token ids of an earlier answer),
``template`` and ``suffix``. Load-time options (``num_ctx``, ``num_gpu``,
``keep_alive`` ...) belong to the server and are ignored, as Ollama ignores
options a model does not use.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import AsyncGenerator, Mapping
from datetime import UTC, datetime
from typing import Any, Literal

from starlette.responses import JSONResponse, Response

from guardstack.gateway import output_text
from guardstack.gateway.errors import GatewayError, invalid, type_error
from guardstack.gateway.streaming import Relayed
from guardstack.gateway.validation import check_sampling

Endpoint = Literal["chat", "generate"]

#: Generate fields that need Ollama's own tokenizer or templates.
NATIVE_ONLY = ("context", "template", "suffix")
#: ``options`` read as OpenAI sampling fields (llama.cpp's server and vLLM
#: take top_k, min_p and typical_p too; repeat_penalty is llama.cpp's name,
#: repetition_penalty vLLM's).
_OPTIONS = {"temperature": ("temperature",), "top_p": ("top_p",), "seed": ("seed",),
            "stop": ("stop",), "frequency_penalty": ("frequency_penalty",),
            "presence_penalty": ("presence_penalty",), "top_k": ("top_k",),
            "min_p": ("min_p",), "typical_p": ("typical_p",),
            "repeat_penalty": ("repeat_penalty", "repetition_penalty")}
#: The roles of Ollama's chat messages.
ROLES = ("system", "user", "assistant", "tool")
#: The magic bytes of the image formats vision models take, base64-encoded.
_IMAGE_TYPES = (("iVBORw0KGgo", "image/png"), ("/9j/", "image/jpeg"), ("R0lGOD", "image/gif"),
                ("UklGR", "image/webp"))


# -- requests ----------------------------------------------------------------


def chat_request(body: dict[str, Any]) -> dict[str, Any]:
    """The chat-completions request an ``/api/chat`` request asks for."""
    raw = body.get("messages")
    if raw is not None and not isinstance(raw, list):
        raise type_error("messages", "an array", raw)
    return _common(body, _messages(raw or []))


def generate_request(body: dict[str, Any]) -> dict[str, Any]:
    """The chat-completions request an ``/api/generate`` request asks for:
    its ``system`` and ``prompt`` as two messages (the server applies the
    model's template, as Ollama does). ``raw`` prompts are served by the
    caller over ``/v1/completions`` (:func:`raw_completion_request`)."""
    _refuse_native_only(body)
    prompt = _prompt(body)
    messages: list[dict[str, Any]] = []
    system = body.get("system")
    if system is not None and not isinstance(system, str):
        raise type_error("system", "a string", system)
    if system:
        messages.append({"role": "system", "content": system})
    user: dict[str, Any] = {"role": "user", "content": prompt}
    _attach_images(user, body.get("images"), "images")
    messages.append(user)
    return _common(body, messages)


def raw_completion_request(body: dict[str, Any]) -> dict[str, Any]:
    """``/api/generate`` with ``raw: true`` (the prompt already in the
    model's template) as a ``/v1/completions`` request."""
    _refuse_native_only(body)
    if body.get("images"):
        raise invalid("images", "'images' cannot be sent with 'raw': the model server's "
                                "completions endpoint takes text only.",
                      code="unsupported_parameter")
    request = _common(body, [])
    request.pop("messages")
    for name in ("tools", "reasoning_effort"):
        request.pop(name, None)
    request["prompt"] = _prompt(body)
    return request


def loads_only(body: Mapping[str, Any], endpoint: Endpoint) -> bool:
    """A request with nothing to answer: Ollama's way to load a model
    (Open WebUI sends it), answered at once with ``done_reason: "load"``."""
    if endpoint == "chat":
        return not body.get("messages")
    return not body.get("prompt") and not body.get("images")


def _refuse_native_only(body: Mapping[str, Any]) -> None:
    for name in NATIVE_ONLY:
        if body.get(name):
            raise invalid(name, f"'{name}' is not supported: the gateway serves Ollama's API "
                                "over the model server's OpenAI API, which has no "
                                + ("token context; send the conversation to /api/chat."
                                   if name == "context" else f"'{name}'."),
                          code="unsupported_parameter")


def _prompt(body: Mapping[str, Any]) -> str:
    prompt = body.get("prompt", "")
    if prompt is None:
        return ""
    if not isinstance(prompt, str):
        raise type_error("prompt", "a string", prompt)
    return prompt


def _common(body: Mapping[str, Any], messages: list[dict[str, Any]]) -> dict[str, Any]:
    model = body.get("model")
    if model is None:
        raise invalid("model", "Missing required parameter: 'model'.",
                      code="missing_required_parameter")
    if not isinstance(model, str):
        raise type_error("model", "a string", model)
    stream = body.get("stream", True)  # Ollama streams unless told not to
    if stream is None:
        stream = True
    if not isinstance(stream, bool):
        raise type_error("stream", "a boolean", stream)
    for name in ("logprobs", "top_logprobs"):
        if body.get(name):
            raise invalid(name, f"'{name}' is not supported on the gateway's Ollama API; use "
                                "/v1/chat/completions.", code="unsupported_parameter")
    chat: dict[str, Any] = {"model": model, "messages": messages, "stream": stream}
    if stream:
        # usage for the final line's counts (vLLM, llama.cpp, Ollama; others ignore it)
        chat["stream_options"] = {"include_usage": True}
    _options(body.get("options"), chat)
    fmt = _format(body.get("format"))
    if fmt is not None:
        chat["response_format"] = fmt
    tools = body.get("tools")
    if tools:
        if not isinstance(tools, list):
            raise type_error("tools", "an array", tools)
        chat["tools"] = tools  # Ollama's tool definitions are OpenAI's
    think = body.get("think")
    if isinstance(think, str) and think:
        chat["reasoning_effort"] = think  # "low" | "medium" | "high", as gpt-oss takes it
    elif think not in (None, "") and not isinstance(think, bool):
        raise type_error("think", "a boolean or one of low, medium, high", think)
    return chat


def _options(options: Any, chat: dict[str, Any]) -> None:
    if options is None:
        return
    if not isinstance(options, dict):
        raise type_error("options", "an object", options)
    check_sampling(options, "options.")
    for name, targets in _OPTIONS.items():
        if options.get(name) is not None:
            for target in targets:
                chat[target] = options[name]
    predict = options.get("num_predict")
    if predict is not None:
        if not isinstance(predict, int) or isinstance(predict, bool):
            raise type_error("options.num_predict", "an integer", predict)
        if predict >= 0:  # -1 (no limit) and -2 (fill the context) are the server's default
            chat["max_tokens"] = predict


def _format(fmt: Any) -> dict[str, Any] | None:
    if fmt in (None, ""):
        return None
    if fmt == "json":
        return {"type": "json_object"}
    if isinstance(fmt, dict):
        return {"type": "json_schema", "json_schema": {"name": "response", "schema": fmt}}
    raise type_error("format", "\"json\" or a JSON schema", fmt)


def _messages(raw: list[Any]) -> list[dict[str, Any]]:
    """Ollama's messages as OpenAI's: images as image parts, tool calls with
    ids (Ollama's have none) that later ``tool`` messages answer, matched by
    ``tool_name`` or else in order."""
    out: list[dict[str, Any]] = []
    unanswered: list[tuple[str, str | None]] = []  # (call id, function name)
    for i, m in enumerate(raw):
        param = f"messages[{i}]"
        if not isinstance(m, dict):
            raise type_error(param, "an object", m)
        content = m.get("content")
        if content is None:
            content = ""
        if not isinstance(content, str):
            raise type_error(f"{param}.content", "a string", content)
        role = m.get("role")
        if role not in ROLES:
            raise invalid(f"{param}.role", f"Invalid value for '{param}.role': {role!r}; "
                                           f"expected one of {', '.join(ROLES)}.")
        message: dict[str, Any] = {"role": role, "content": content}
        _attach_images(message, m.get("images"), f"{param}.images")
        calls = m.get("tool_calls")
        if calls:
            if not isinstance(calls, list):
                raise type_error(f"{param}.tool_calls", "an array", calls)
            message["tool_calls"] = [_openai_call(c, f"call_{i}_{k}", f"{param}.tool_calls[{k}]")
                                     for k, c in enumerate(calls)]
            unanswered = [(c["id"], c["function"]["name"]) for c in message["tool_calls"]]
        if m.get("role") == "tool" and unanswered:
            name = m.get("tool_name") or m.get("name")
            pick = next((k for k, (_, n) in enumerate(unanswered) if n == name), 0)
            message["tool_call_id"] = unanswered.pop(pick)[0]
        out.append(message)
    return out


def _openai_call(call: Any, call_id: str, param: str) -> dict[str, Any]:
    function = call.get("function") if isinstance(call, dict) else None
    if not isinstance(function, dict) or not isinstance(function.get("name"), str):
        raise invalid(param, f"'{param}' needs a function with a name.")
    args = function.get("arguments", {})
    return {"id": call_id, "type": "function",
            "function": {"name": function["name"],
                         "arguments": args if isinstance(args, str) else json.dumps(args)}}


def _attach_images(message: dict[str, Any], images: Any, param: str) -> None:
    """Ollama's base64 images as OpenAI image parts after the text."""
    if not images:
        return
    if not isinstance(images, list):
        raise type_error(param, "an array of base64 strings", images)
    for k, image in enumerate(images):
        if not isinstance(image, str):
            raise type_error(f"{param}[{k}]", "a base64 string", image)
    parts: list[dict[str, Any]] = []
    if message["content"]:
        parts.append({"type": "text", "text": message["content"]})
    for data in images:
        mime = next((m for prefix, m in _IMAGE_TYPES if data.startswith(prefix)), "image/png")
        parts.append({"type": "image_url", "image_url": {"url": f"data:{mime};base64,{data}"}})
    message["content"] = parts


# -- answers -----------------------------------------------------------------


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _first_choice(data: Mapping[str, Any]) -> dict[str, Any]:
    choices = data.get("choices")
    return _obj(choices[0]) if isinstance(choices, list) and choices else {}


def _thinking(message: Mapping[str, Any]) -> str:
    """A message's or delta's reasoning (``reasoning_content`` or ``reasoning``)."""
    return "".join(text for channel, text in output_text.channels(message)
                   if channel == "reasoning")


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def _done_reason(finish_reason: Any) -> str:
    # Ollama says "stop" after tool calls too.
    return finish_reason if finish_reason in ("length", "content_filter") else "stop"


class Reply:
    """Ollama's answer objects for one request: ``message`` (chat) or
    ``response`` (generate) lines, and the final one with its counts."""

    def __init__(self, model: str, endpoint: Endpoint, started: float | None = None) -> None:
        self.model, self.endpoint = model, endpoint
        self.started = time.perf_counter() if started is None else started
        self.first_token: float | None = None

    def line(self, content: str = "", thinking: str = "",
             tool_calls: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        if (content or thinking or tool_calls) and self.first_token is None:
            self.first_token = time.perf_counter()
        obj: dict[str, Any] = {"model": self.model, "created_at": _now()}
        if self.endpoint == "chat":
            message: dict[str, Any] = {"role": "assistant", "content": content}
            if thinking:
                message["thinking"] = thinking
            if tool_calls:
                message["tool_calls"] = tool_calls
            obj["message"] = message
        else:
            obj["response"] = content
            if thinking:
                obj["thinking"] = thinking
        obj["done"] = False
        return obj

    def done(self, obj: dict[str, Any], reason: str, usage: Any = None,
             streamed: int | None = None, generated_s: float | None = None) -> dict[str, Any]:
        """``obj`` as the final line: ``done``, its reason, the timings
        (nanoseconds, as Ollama gives them) and the token counts the upstream
        reported (else, streaming, the tokens streamed). A whole answer
        (``generated_s``: the seconds the model server took to send it) has
        no first token to split reading the prompt from writing: its
        ``eval_duration`` is the model server's whole time, so clients that
        divide ``eval_count`` by it show a true lower bound on tokens per
        second, and ``prompt_eval_duration`` is left out."""
        end = time.perf_counter()
        obj.update(done=True, done_reason=reason,
                   total_duration=int((end - self.started) * 1e9))
        usage = usage if isinstance(usage, dict) else {}
        prompt_tokens, completion_tokens = usage.get("prompt_tokens"), usage.get(
            "completion_tokens")
        if isinstance(prompt_tokens, int):
            obj["prompt_eval_count"] = prompt_tokens
        if isinstance(completion_tokens, int):
            obj["eval_count"] = completion_tokens
        elif streamed is not None:
            obj["eval_count"] = streamed
        if generated_s is not None:
            obj["eval_duration"] = int(generated_s * 1e9)
        elif self.first_token is not None:
            obj["prompt_eval_duration"] = int((self.first_token - self.started) * 1e9)
            obj["eval_duration"] = int((end - self.first_token) * 1e9)
        return obj

    def loaded(self) -> dict[str, Any]:
        """The answer to a request with nothing in it (a model load)."""
        return {**self.done(self.line(), "load"), "total_duration": 0}

    def from_chat(self, data: Mapping[str, Any], generated_s: float | None = None
                  ) -> dict[str, Any]:
        """An (already checked) chat completion as one Ollama answer."""
        choice = _first_choice(data)
        message = _obj(choice.get("message"))
        calls = [_ollama_call(c) for c in message.get("tool_calls") or ()
                 if isinstance(c, dict)]
        line = self.line(_str(message.get("content")), _thinking(message), calls)
        return self.done(line, _done_reason(choice.get("finish_reason")), data.get("usage"),
                         generated_s=generated_s)

    def from_completion(self, data: Mapping[str, Any], generated_s: float | None = None
                        ) -> dict[str, Any]:
        """An (already checked) text completion (``raw`` generate) as one answer."""
        choice = _first_choice(data)
        text = _str(choice.get("text"))
        return self.done(self.line(text), _done_reason(choice.get("finish_reason")),
                         data.get("usage"), generated_s=generated_s)


def _ollama_call(call: Mapping[str, Any]) -> dict[str, Any]:
    """An OpenAI tool call as Ollama's: the arguments as an object."""
    function = _obj(call.get("function"))
    args: Any = function.get("arguments")
    if isinstance(args, str):
        # kept as the model wrote it if it is not JSON: the client sees what it got
        with contextlib.suppress(ValueError):
            args = json.loads(args) if args.strip() else {}
    return {"function": {"name": function.get("name"), "arguments": args}}


class NdjsonStream:
    """Streamed (already checked) chat or completion chunks as Ollama's
    stream lines. Tool-call fragments are collected and sent whole before
    the final line, as Ollama sends them."""

    def __init__(self, reply: Reply) -> None:
        self.reply = reply
        self.calls: dict[int, dict[str, Any]] = {}
        self.finish_reason: str | None = None
        self.usage: Any = None
        self.streamed = 0

    def chunk(self, chunk: Mapping[str, Any]) -> list[dict[str, Any]]:
        if isinstance(chunk.get("usage"), dict):
            self.usage = chunk["usage"]
        choice = output_text.first_choice(chunk)
        if choice is None:
            return []
        if choice.get("finish_reason") is not None:
            self.finish_reason = choice["finish_reason"]
        if "delta" not in choice:  # a text completion's chunk
            text = choice.get("text")
            if not isinstance(text, str) or not text:
                return []
            self.streamed += 1
            return [self.reply.line(text)]
        delta = choice["delta"] if isinstance(choice["delta"], dict) else {}
        for call in delta.get("tool_calls") or ():
            if isinstance(call, dict):
                self._collect(call)
        content, thinking = _str(delta.get("content")), _thinking(delta)
        if not content and not thinking:
            return []
        self.streamed += 1
        return [self.reply.line(content, thinking)]

    def _collect(self, call: Mapping[str, Any]) -> None:
        index = call.get("index", 0)
        slot = self.calls.setdefault(index if isinstance(index, int) else 0,
                                     {"function": {"name": None, "arguments": ""}})
        function = _obj(call.get("function"))
        if isinstance(function.get("name"), str):
            slot["function"]["name"] = function["name"]
        if isinstance(function.get("arguments"), str):
            slot["function"]["arguments"] += function["arguments"]

    def finish(self) -> list[dict[str, Any]]:
        out = []
        if self.calls:
            out.append(self.reply.line(tool_calls=[_ollama_call(c) for _, c in
                                                   sorted(self.calls.items())]))
        out.append(self.reply.done(self.reply.line(), _done_reason(self.finish_reason),
                                   self.usage, self.streamed))
        return out

    def halt(self) -> list[dict[str, Any]]:
        """The end of a halted stream: held-back text and tool calls are dropped."""
        return [self.reply.done(self.reply.line(), "content_filter", self.usage, self.streamed)]


def encode(obj: Mapping[str, Any]) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


# -- errors and listings -----------------------------------------------------


def error_body(message: str, code: str | None = None) -> dict[str, Any]:
    """Ollama's error shape (its clients read ``error``); the gateway's code beside it."""
    return {"error": message, **({"code": code} if code else {})}


def error_message(body: Any) -> str:
    """The message of an OpenAI error envelope, an Ollama error or raw text."""
    if isinstance(body, (bytes, str)):
        text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
        try:
            body = json.loads(text)
        except ValueError:
            return text.strip()[:2000] or "The upstream model server returned an error."
    err = body.get("error") if isinstance(body, dict) else None
    if isinstance(err, dict) and isinstance(err.get("message"), str):
        return err["message"]
    if isinstance(err, str):
        return err
    if isinstance(body, dict) and isinstance(body.get("detail"), str):
        return body["detail"]  # FastAPI-style servers (llama-cpp-python)
    return json.dumps(body)[:2000]


def tags(models: Any) -> dict[str, Any]:
    """``/api/tags`` from the upstream's ``/v1/models`` list. Sizes and
    digests are the model server's to know and are left out."""
    data = models.get("data") if isinstance(models, dict) else None
    out = []
    for m in data if isinstance(data, list) else ():
        if not isinstance(m, dict) or not isinstance(m.get("id"), str):
            continue
        entry: dict[str, Any] = {"name": m["id"], "model": m["id"], "details": {}}
        created = m.get("created")
        if isinstance(created, (int, float)) and not isinstance(created, bool) and created > 0:
            entry["modified_at"] = datetime.fromtimestamp(created, UTC).isoformat().replace(
                "+00:00", "Z")
        out.append(entry)
    return {"models": out}


def show(model: str, models: Any) -> dict[str, Any] | None:
    """``/api/show`` for a model the upstream lists (None if it does not):
    what the gateway knows, which is its name; no modelfile or template."""
    entry = next((m for m in tags(models)["models"] if m["name"] == model), None)
    if entry is None:
        return None
    shown = {"modelfile": "", "parameters": "", "template": "", "details": {},
             "model_info": {}, "capabilities": ["completion"]}
    if "modified_at" in entry:
        shown["modified_at"] = entry["modified_at"]
    return shown


def embed_request(body: dict[str, Any], legacy: bool) -> dict[str, Any]:
    """``/api/embed`` (``input``) or the older ``/api/embeddings``
    (``prompt``) as a ``/v1/embeddings`` request."""
    model = body.get("model")
    if not isinstance(model, str):
        raise invalid("model", "Missing required parameter: 'model'.",
                      code="missing_required_parameter") if model is None else \
            type_error("model", "a string", model)
    if legacy:
        prompt = body.get("prompt")
        if not isinstance(prompt, str):
            raise type_error("prompt", "a string", prompt)
        return {"model": model, "input": prompt}
    value = body.get("input")
    if not (isinstance(value, str) or (isinstance(value, list) and value
                                       and all(isinstance(v, str) for v in value))):
        raise type_error("input", "a string or a non-empty array of strings", value)
    request: dict[str, Any] = {"model": model, "input": value}
    if body.get("dimensions") is not None:
        request["dimensions"] = body["dimensions"]
    return request


def embed_answer(data: Any, model: str, legacy: bool) -> dict[str, Any]:
    """The upstream's embeddings in Ollama's shape: one vector per input.
    A server that answers with a vector per token (llama.cpp's servers for a
    model without a pooling type) gets a 502 saying so: Ollama's clients
    take one vector per input, and pooling them here would invent one."""
    rows = data.get("data") if isinstance(data, dict) else None
    if not isinstance(rows, list) or not all(isinstance(r, dict) and isinstance(
            r.get("embedding"), list) for r in rows):
        raise GatewayError(502, "The upstream model server returned malformed embeddings.",
                           code="upstream_error")
    vectors = [r["embedding"] for r in sorted(rows, key=lambda r: r.get("index", 0))]
    if any(v and isinstance(v[0], list) for v in vectors):
        raise GatewayError(502, "The upstream model server returned one embedding per token, "
                                "not one per input: serve an embedding model with pooling "
                                "(Ollama's API has no per-token embeddings).",
                           code="upstream_error")
    if legacy:
        return {"embedding": vectors[0] if vectors else []}
    out: dict[str, Any] = {"model": model, "embeddings": vectors}
    usage = data.get("usage")
    if isinstance(usage, dict) and isinstance(usage.get("prompt_tokens"), int):
        out["prompt_eval_count"] = usage["prompt_tokens"]
    return out


def error_response(exc: GatewayError) -> Response:
    """A gateway error in Ollama's shape, with its status and headers."""
    return JSONResponse(error_body(exc.message, exc.code), status_code=exc.status,
                        headers=exc.headers)


def upstream_error(response: Response) -> Response:
    """An upstream error (passed through as it came) in Ollama's shape."""
    return JSONResponse(error_body(error_message(bytes(response.body))),
                        status_code=response.status_code)


async def ndjson(relayed: AsyncGenerator[tuple[Relayed, dict[str, Any]], None],
                 lines: NdjsonStream) -> AsyncGenerator[bytes, None]:
    """The checked stream as Ollama's newline-delimited JSON."""
    async with contextlib.aclosing(relayed):
        ended = False
        async for kind, obj in relayed:
            if kind == "chunk":
                out = lines.chunk(obj)
            elif kind == "halt":
                out, ended = lines.halt(), True
            elif kind == "error":
                # Ollama's in-stream error: its clients raise it
                out, ended = [error_body(error_message(obj))], True
            else:
                out = [] if ended else lines.finish()
            for line in out:
                yield encode(line)
