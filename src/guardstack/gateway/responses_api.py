"""``POST /v1/responses``, OpenAI's Responses API, served over the upstream's
chat completions.

The official clients have moved to ``client.responses.create``; llama.cpp's
server and most Ollama and vLLM deployments speak chat completions. Like
LiteLLM, the gateway translates: the request becomes a chat completion
(:func:`to_chat`), which then takes the chat path with every check (the
prompt check, the safety system prompt, the streamed output check and its
halt), and the answer comes back as a Responses object (:meth:`Reply.body`)
or as Responses stream events (:class:`EventStream`).

``previous_response_id`` continues a recent answer of the same user's from
the gateway's memory (:mod:`.stored_responses`); ``conversation``,
``background``, stored prompts, ``item_reference`` inputs and OpenAI's hosted
tools need state or tools the gateway does not have, and answer 400 naming
the field, never a silent drop. Function tools, images, JSON output and reasoning
effort are translated. Each reply carries the gateway's verdicts in the
Responses API's own ``moderation`` field (input and output), scored as
``/v1/moderations`` scores them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from typing import Any

from guardstack.gateway import moderation, output_text
from guardstack.gateway.errors import GatewayError, invalid, type_error
from guardstack.gateway.validation import check_sampling
from guardstack.verdict import Verdict, most_severe

#: Fields that need state the bridge does not keep, or a server that runs jobs.
STATEFUL = ("conversation", "background", "prompt")
#: Sampling fields with the same name and meaning in both APIs.
_SAME = ("temperature", "top_p", "user", "safety_identifier", "parallel_tool_calls",
         "metadata", "service_tier", "seed", "stop")


# -- request ----------------------------------------------------------------


def to_chat(body: dict[str, Any]) -> dict[str, Any]:
    """The chat-completions request a Responses request asks for; 400 with
    the field named for anything it cannot mean there."""
    for name in STATEFUL:
        if body.get(name) not in (None, False):
            raise invalid(name, f"'{name}' is not supported: the gateway serves the Responses "
                                "API over the model server's chat completions; send the "
                                "conversation in 'input' (or continue a recent response "
                                "with 'previous_response_id').", code="unsupported_parameter")
    previous = body.get("previous_response_id")
    if previous is not None and not isinstance(previous, str):
        raise type_error("previous_response_id", "a string", previous)
    check_sampling(body)
    if "input" not in body:
        raise invalid("input", "Missing required parameter: 'input'.",
                      code="missing_required_parameter")
    messages: list[dict[str, Any]] = []
    instructions = body.get("instructions")
    if isinstance(instructions, str):
        if instructions.strip():
            messages.append({"role": "system", "content": instructions})
    elif instructions is not None:
        raise type_error("instructions", "a string", instructions)
    raw = body["input"]
    if isinstance(raw, str):
        messages.append({"role": "user", "content": raw})
    elif isinstance(raw, list) and raw:
        for i, item in enumerate(raw):
            _input_item(item, f"input[{i}]", messages)
    else:
        raise type_error("input", "a string or a non-empty array of input items", raw)
    chat: dict[str, Any] = {"model": body.get("model"), "messages": messages}
    if "stream" in body:
        chat["stream"] = body["stream"]
        if body["stream"] is True:
            # so response.completed can carry usage (vLLM, Ollama; others ignore it)
            chat["stream_options"] = {"include_usage": True}
    for name in _SAME:
        if name in body:
            chat[name] = body[name]
    if body.get("max_output_tokens") is not None:
        chat["max_tokens"] = body["max_output_tokens"]
    if body.get("top_logprobs") is not None:
        # chat completions return logprobs only when asked, top ones on top of that
        chat.update(logprobs=True, top_logprobs=body["top_logprobs"])
    if body.get("tools"):
        chat["tools"] = _tools(body["tools"])
    if "tool_choice" in body:
        chat["tool_choice"] = _tool_choice(body["tool_choice"])
    text = body.get("text")
    if text is not None:
        fmt = _response_format(text)
        if fmt is not None:
            chat["response_format"] = fmt
    reasoning = body.get("reasoning")
    if isinstance(reasoning, dict) and isinstance(reasoning.get("effort"), str):
        chat["reasoning_effort"] = reasoning["effort"]
    return chat


def with_history(chat: dict[str, Any], body: Mapping[str, Any],
                 history: list[dict[str, Any]]) -> dict[str, Any]:
    """``chat`` continuing a stored conversation: the earlier turns go after
    the request's own instructions (a previous response's instructions are
    not carried over, as in OpenAI's API) and before its new input."""
    messages = chat["messages"]
    cut = 1 if _has_instructions(body) else 0
    return {**chat, "messages": [*messages[:cut], *history, *messages[cut:]]}


def conversation_of(chat: dict[str, Any], body: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The turns of ``chat`` without the request's instructions: what a
    response that follows it continues."""
    return list(chat["messages"][1 if _has_instructions(body) else 0:])


def _has_instructions(body: Mapping[str, Any]) -> bool:
    instructions = body.get("instructions")
    return isinstance(instructions, str) and bool(instructions.strip())


def assistant_messages(output: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A response's output items as the chat message that continues from
    them: one assistant turn with its text and its function calls as
    ``tool_calls`` (reasoning is not carried over); none if it said nothing."""
    text = "".join(part.get("text", "") for item in output if item.get("type") == "message"
                   for part in item.get("content") or () if isinstance(part, dict))
    calls = [{"id": item.get("call_id"), "type": "function",
              "function": {"name": item.get("name"), "arguments": item.get("arguments", "")}}
             for item in output if item.get("type") == "function_call"]
    if not text and not calls:
        return []
    message: dict[str, Any] = {"role": "assistant", "content": text or None}
    if calls:
        message["tool_calls"] = calls
    return [message]


def messages_of(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The conversation a Responses request carries, as chat messages, for
    judging it where something else serves it (the LiteLLM guardrail): what
    :func:`to_chat` sends, with what it cannot translate skipped instead of
    refused (a proxy with state and hosted tools serves those itself)."""
    messages: list[dict[str, Any]] = []
    instructions = body.get("instructions")
    if isinstance(instructions, str) and instructions.strip():
        messages.append({"role": "system", "content": instructions})
    raw = body.get("input")
    if isinstance(raw, str):
        messages.append({"role": "user", "content": raw})
    for i, item in enumerate(raw if isinstance(raw, list) else ()):
        try:
            _input_item(item, f"input[{i}]", messages)
        except GatewayError:
            parts = item.get("content") if isinstance(item, dict) else None
            texts = [p["text"] for p in parts if isinstance(p, dict)
                     and isinstance(p.get("text"), str)] if isinstance(parts, list) else []
            role = item.get("role") if isinstance(item, dict) else None
            if texts and role in ("user", "system", "developer", "assistant"):
                messages.append({"role": role, "content": "\n".join(texts)})
    return messages


def _input_item(item: Any, param: str, messages: list[dict[str, Any]]) -> None:
    if isinstance(item, str):
        messages.append({"role": "user", "content": item})
        return
    if not isinstance(item, dict):
        raise type_error(param, "an object", item)
    kind = item.get("type", "message")
    if kind == "message":
        role = item.get("role")
        if role not in ("user", "system", "developer", "assistant"):
            raise invalid(f"{param}.role", f"Invalid value for '{param}.role': {role!r}; "
                                           "expected user, system, developer or assistant.")
        # "developer" goes upstream as "system" unless --keep-developer-role
        messages.append({"role": role, "content": _content(item.get("content"), param)})
    elif kind == "function_call":
        call = {"id": item.get("call_id") or item.get("id"), "type": "function",
                "function": {"name": item.get("name"), "arguments": item.get("arguments", "")}}
        last = messages[-1] if messages else None
        if last and last["role"] == "assistant":
            # the text before a call, and parallel calls: one assistant turn
            last.setdefault("tool_calls", []).append(call)
        else:
            messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
    elif kind == "function_call_output":
        output = item.get("output")
        if not isinstance(output, str):
            output = json.dumps(output)
        messages.append({"role": "tool", "tool_call_id": item.get("call_id"), "content": output})
    elif kind == "reasoning":
        return  # a previous turn's reasoning: chat templates drop it anyway
    else:
        raise invalid(f"{param}.type", f"Input items of type {kind!r} are not supported by "
                                       "the gateway's Responses API bridge.",
                      code="unsupported_parameter")


def _content(content: Any, param: str) -> str | list[dict[str, Any]]:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise type_error(f"{param}.content", "a string or an array of content parts", content)
    parts: list[dict[str, Any]] = []
    for i, part in enumerate(content):
        where = f"{param}.content[{i}]"
        if not isinstance(part, dict):
            raise type_error(where, "an object", part)
        kind = part.get("type")
        if kind in ("input_text", "output_text", "text"):
            text = part.get("text")
            if not isinstance(text, str):
                raise type_error(f"{where}.text", "a string", text)
            parts.append({"type": "text", "text": text})
        elif kind == "refusal":
            parts.append({"type": "text", "text": str(part.get("refusal", ""))})
        elif kind == "input_image" and isinstance(part.get("image_url"), str):
            image: dict[str, Any] = {"url": part["image_url"]}
            if part.get("detail"):
                image["detail"] = part["detail"]
            parts.append({"type": "image_url", "image_url": image})
        else:
            raise invalid(f"{where}.type", f"Content parts of type {kind!r} are not supported "
                                           "by the gateway's Responses API bridge.",
                          code="unsupported_parameter")
    if all(p["type"] == "text" for p in parts):
        return "\n".join(p["text"] for p in parts)
    return parts


def _tools(tools: Any) -> list[dict[str, Any]]:
    if not isinstance(tools, list):
        raise type_error("tools", "an array", tools)
    out = []
    for i, tool in enumerate(tools):
        if not isinstance(tool, dict) or tool.get("type") != "function":
            kind = tool.get("type") if isinstance(tool, dict) else tool
            raise invalid(f"tools[{i}].type", f"Tools of type {kind!r} are not supported: the "
                                              "model server runs function tools only.",
                          code="unsupported_parameter")
        function = {k: tool[k] for k in ("name", "description", "parameters", "strict")
                    if tool.get(k) is not None}
        out.append({"type": "function", "function": function})
    return out


def _tool_choice(choice: Any) -> Any:
    if isinstance(choice, dict) and choice.get("type") == "function":
        return {"type": "function", "function": {"name": choice.get("name")}}
    return choice


def _response_format(text: Any) -> dict[str, Any] | None:
    fmt = text.get("format") if isinstance(text, dict) else None
    if not isinstance(fmt, dict) or fmt.get("type") in (None, "text"):
        return None
    if fmt.get("type") == "json_schema":
        schema = {k: fmt[k] for k in ("name", "schema", "strict", "description") if k in fmt}
        return {"type": "json_schema", "json_schema": schema}
    return {"type": fmt["type"]}


# -- response ---------------------------------------------------------------


class Reply:
    """The Responses object for one request: its id, the request fields it
    echoes, and the output built from a chat completion."""

    def __init__(self, request: dict[str, Any], response_id: str, moderation_model: str) -> None:
        self.request = request
        self.id = response_id
        self.created_at = int(time.time())
        self.moderation_model = moderation_model

    def body(self, output: list[dict[str, Any]], *, status: str,
             incomplete: str | None = None, usage: dict[str, Any] | None = None,
             model: str | None = None, error: dict[str, Any] | None = None,
             prompt: Sequence[Verdict] = (), answer: Sequence[Verdict] = ()) -> dict[str, Any]:
        r = self.request
        tools = r.get("tools") if isinstance(r.get("tools"), list) else []
        body: dict[str, Any] = {
            "id": self.id, "object": "response", "created_at": self.created_at,
            "status": status, "model": model or r.get("model"),
            "output": output, "error": error,
            "incomplete_details": {"reason": incomplete} if incomplete else None,
            "instructions": r.get("instructions"), "metadata": r.get("metadata"),
            "max_output_tokens": r.get("max_output_tokens"),
            "parallel_tool_calls": r.get("parallel_tool_calls", True),
            "temperature": r.get("temperature"), "top_p": r.get("top_p"),
            "tool_choice": r.get("tool_choice", "auto"), "tools": tools,
            "text": r.get("text") or {"format": {"type": "text"}},
            "user": r.get("user"), "usage": usage,
        }
        if status in ("completed", "incomplete"):
            body["completed_at"] = int(time.time())
        checked = {}
        for side, verdicts in (("input", prompt), ("output", answer)):
            v = most_severe(verdicts)
            if v is not None:
                checked[side] = {**moderation.verdict_result(v), "model": self.moderation_model,
                                 "type": "moderation_result"}
        if checked:
            body["moderation"] = checked
        return body

    def from_chat(self, data: dict[str, Any], prompt: Sequence[Verdict],
                  answer: Sequence[Verdict]) -> dict[str, Any]:
        """A (checked) chat completion as a Responses object."""
        choices = data.get("choices") or [{}]
        choice = _obj(choices[0])
        message = _obj(choice.get("message"))
        output: list[dict[str, Any]] = []
        for channel, text in output_text.channels({k: v for k, v in message.items()
                                                   if k != "tool_calls"}):
            if channel == "reasoning":
                output.append(_reasoning_item(f"rs_{self.id}", text))
            elif channel == "content":
                output.append(_message_item(f"msg_{self.id}", text, "completed"))
        calls = message.get("tool_calls")
        for i, call in enumerate(calls if isinstance(calls, list) else ()):
            fn = _obj(call).get("function")
            if isinstance(fn, dict):
                output.append(_call_item(f"fc_{self.id}_{i}", call.get("id"), fn.get("name"),
                                         fn.get("arguments") or "", "completed"))
        if not output:
            output.append(_message_item(f"msg_{self.id}", "", "completed"))
        status, incomplete = _status(choice.get("finish_reason"))
        return self.body(output, status=status, incomplete=incomplete,
                         usage=_usage(data.get("usage")), model=data.get("model"),
                         prompt=prompt, answer=answer)


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _status(finish_reason: Any) -> tuple[str, str | None]:
    if finish_reason == "content_filter":
        return "incomplete", "content_filter"
    if finish_reason == "length":
        return "incomplete", "max_output_tokens"
    return "completed", None


def _usage(usage: Any) -> dict[str, Any] | None:
    if not isinstance(usage, dict):
        return None
    given = usage.get("prompt_tokens"), usage.get("completion_tokens")
    tokens_in, tokens_out = (v if isinstance(v, int) else 0 for v in given)
    return {"input_tokens": tokens_in, "output_tokens": tokens_out,
            "total_tokens": usage.get("total_tokens") or tokens_in + tokens_out,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens_details": {"reasoning_tokens": 0}}


def _message_item(item_id: str, text: str, status: str) -> dict[str, Any]:
    return {"type": "message", "id": item_id, "status": status, "role": "assistant",
            "content": [{"type": "output_text", "text": text, "annotations": []}]}


def _reasoning_item(item_id: str, text: str) -> dict[str, Any]:
    return {"type": "reasoning", "id": item_id, "summary": [],
            "content": [{"type": "reasoning_text", "text": text}]}


def _call_item(item_id: str, call_id: Any, name: Any, arguments: str,
               status: str) -> dict[str, Any]:
    return {"type": "function_call", "id": item_id, "call_id": call_id, "name": name,
            "arguments": arguments, "status": status}


# -- streaming --------------------------------------------------------------


class EventStream:
    """Streamed chat-completion chunks (already checked) as Responses events:
    ``response.created``, an output item per channel with its deltas, and
    ``response.completed``; a halt ends in ``response.incomplete`` with reason
    ``content_filter``, an upstream failure in ``error`` and
    ``response.failed``."""

    def __init__(self, reply: Reply) -> None:
        self.reply = reply
        self.seq = 0
        self.output: list[dict[str, Any]] = []
        self.open: dict[str, Any] | None = None   # the item receiving deltas
        self.calls: dict[int, dict[str, Any]] = {}
        self.finish_reason: str | None = None
        self.usage: dict[str, Any] | None = None
        self.model: str | None = None

    def _event(self, kind: str, **fields: Any) -> dict[str, Any]:
        event = {"type": kind, "sequence_number": self.seq, **fields}
        self.seq += 1
        return event

    def start(self, prompt: Sequence[Verdict] = ()) -> list[dict[str, Any]]:
        """The opening events; they carry the prompt's verdict already."""
        snapshot = self.reply.body([], status="in_progress", prompt=prompt)
        return [self._event("response.created", response=snapshot),
                self._event("response.in_progress", response=snapshot)]

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
        for channel, text in output_text.channels({k: v for k, v in delta.items()
                                                   if k != "tool_calls"}):
            out += self._text(channel, text)
        calls = delta.get("tool_calls")
        for call in calls if isinstance(calls, list) else ():
            if isinstance(call, dict):
                out += self._call(call)
        if choice.get("finish_reason") is not None:
            self.finish_reason = choice["finish_reason"]
        return out

    def _text(self, channel: str, text: str) -> list[dict[str, Any]]:
        kind = "reasoning" if channel == "reasoning" else "message"
        out: list[dict[str, Any]] = []
        if self.open is None or self.open["type"] != kind:
            out += self._close("completed")
            n = len(self.output)
            item = (_reasoning_item(f"rs_{self.reply.id}_{n}", "") if kind == "reasoning"
                    else _message_item(f"msg_{self.reply.id}_{n}", "", "in_progress"))
            self._add(item, out)
            if kind == "message":
                out.append(self._event("response.content_part.added", item_id=item["id"],
                                       output_index=n, content_index=0,
                                       part={"type": "output_text", "text": "",
                                             "annotations": []}))
        current = self.open
        assert current is not None
        current["content"][0]["text"] += text
        name = "response.reasoning_text.delta" if kind == "reasoning" else \
            "response.output_text.delta"
        extra: dict[str, Any] = {} if kind == "reasoning" else {"logprobs": []}
        out.append(self._event(name, item_id=current["id"], output_index=len(self.output) - 1,
                               content_index=0, delta=text, **extra))
        return out

    def _call(self, call: dict[str, Any]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        index = call.get("index", 0)
        fn = _obj(call.get("function"))
        item = self.calls.get(index)
        if item is None or item is not self.open:
            out += self._close("completed")
            n = len(self.output)
            item = _call_item(f"fc_{self.reply.id}_{n}", call.get("id"), fn.get("name"), "",
                              "in_progress")
            self.calls[index] = item
            self._add(item, out)
        args = fn.get("arguments")
        if isinstance(args, str) and args:
            item["arguments"] += args
            out.append(self._event("response.function_call_arguments.delta",
                                   item_id=item["id"], output_index=len(self.output) - 1,
                                   delta=args))
        return out

    def _add(self, item: dict[str, Any], out: list[dict[str, Any]]) -> None:
        self.output.append(item)
        self.open = item
        added = json.loads(json.dumps(item))
        if "content" in added:
            added["content"] = []  # parts arrive in their own events
        out.append(self._event("response.output_item.added", output_index=len(self.output) - 1,
                               item=added))

    def _close(self, status: str) -> list[dict[str, Any]]:
        item, self.open = self.open, None
        if item is None:
            return []
        index = self.output.index(item)
        out = []
        if item["type"] == "message":
            part = item["content"][0]
            out.append(self._event("response.output_text.done", item_id=item["id"],
                                   output_index=index, content_index=0, text=part["text"],
                                   logprobs=[]))
            out.append(self._event("response.content_part.done", item_id=item["id"],
                                   output_index=index, content_index=0, part=part))
        elif item["type"] == "reasoning":
            out.append(self._event("response.reasoning_text.done", item_id=item["id"],
                                   output_index=index, content_index=0,
                                   text=item["content"][0]["text"]))
        else:
            out.append(self._event("response.function_call_arguments.done",
                                   item_id=item["id"], output_index=index,
                                   arguments=item["arguments"]))
        if "status" in item:
            item["status"] = status
        out.append(self._event("response.output_item.done", output_index=index, item=item))
        return out

    def finish(self, prompt: Sequence[Verdict], answer: Sequence[Verdict]) -> list[dict[str, Any]]:
        """The upstream finished and every word passed the check."""
        status, incomplete = _status(self.finish_reason)
        out = self._close("completed" if status == "completed" else "incomplete")
        body = self.reply.body(self.output, status=status, incomplete=incomplete,
                               usage=self.usage, model=self.model, prompt=prompt,
                               answer=answer)
        return [*out, self._event(f"response.{status}", response=body)]

    def halt(self, prompt: Sequence[Verdict], answer: Sequence[Verdict]) -> list[dict[str, Any]]:
        """The output check stopped the answer: what was released stays, the
        response ends incomplete with reason ``content_filter``."""
        out = self._close("incomplete")
        body = self.reply.body(self.output, status="incomplete", incomplete="content_filter",
                               usage=self.usage, model=self.model, prompt=prompt,
                               answer=answer)
        return [*out, self._event("response.incomplete", response=body)]

    def fail(self, error: dict[str, Any]) -> list[dict[str, Any]]:
        """The upstream's stream failed (or reported an error in-band)."""
        detail = _obj(error.get("error")) or error
        code = str(detail.get("code") or "upstream_error")
        message = str(detail.get("message") or "The upstream model server's stream failed.")
        out = self._close("incomplete")
        body = self.reply.body(self.output, status="failed", model=self.model,
                               error={"code": code, "message": message})
        return [*out, self._event("error", code=code, message=message, param=None),
                self._event("response.failed", response=body)]


def encode(event: dict[str, Any]) -> bytes:
    """One Responses stream event as SSE, named as OpenAI names it."""
    data = json.dumps(event, ensure_ascii=False, separators=(",", ":"))
    return f"event: {event['type']}\ndata: {data}\n\n".encode()
