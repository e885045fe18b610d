"""The gateway's API as an OpenAPI 3.1 document.

Served at ``GET /openapi.json`` and rendered into docs/openapi.json and
docs/api.md by :mod:`guardstack.reference`. Written out by hand rather than
derived from docstrings because most of the API is OpenAI's: the request
bodies are forwarded untouched, so the schemas name only the fields the
gateway reads or adds and leave the rest open (``additionalProperties``).
Enumerations (roles, categories, decisions, error codes) come from the code
they describe; tests/gateway/test_openapi.py compares the paths with the
app's routes and the schemas with what the official ``openai`` client sends.
"""

from __future__ import annotations

import copy
from typing import Any

from guardstack import taxonomy
from guardstack.gateway import openapi_anthropic, openapi_ollama
from guardstack.gateway.validation import ROLES
from guardstack.verdict import Action, Status

#: Version of this API description (``info.version``); bump it when the API
#: changes. Independent of the package version, so a release does not
#: invalidate the generated docs.
API_VERSION = "1.0"

#: Mounted sub-applications that are not part of the JSON API, with why.
NOT_IN_API: dict[str, str] = {
    "/ui": "the reviewer dashboard's HTML pages (docs/dashboard.md)",
}

#: Every ``error.code`` the gateway produces itself: (code, HTTP status, when).
#: Upstream errors are passed through with the upstream's own body.
ERROR_CODES: tuple[tuple[str, int, str], ...] = (
    ("content_filter", 400, "The prompt was blocked by the policy (or could not be checked "
                            "and the policy fails closed); `innererror` has the categories."),
    ("invalid_json", 400, "Body empty, not JSON, or not a JSON object; or JSON no client "
                          "can send on: NaN, Infinity, a number out of range, an integer "
                          "over 4,300 digits, nesting too deep."),
    ("invalid_encoding", 400, "Body is not UTF-8, or a string holds a lone UTF-16 surrogate "
                              "escape (`\\ud800`)."),
    ("unsupported_encoding", 415, "A compressed body (`Content-Encoding: gzip`, ...): send "
                                  "the JSON uncompressed."),
    ("request_timeout", 408, "No part of the body arrived for 30 s (a client that stalls or "
                             "sends less than its `Content-Length`)."),
    ("client_disconnected", 499, "Recorded, never read: the client closed the connection "
                                 "before its body arrived or before its answer was ready "
                                 "(the upstream call is cancelled)."),
    ("missing_required_parameter", 400, "`model`, `messages`, `prompt` or `input` missing; "
                                        "`param` names it."),
    ("invalid_type", 400, "A field has the wrong type (or a token-id prompt); `param` names it."),
    ("invalid_value", 400, "A field has a wrong value (empty `messages`, unknown role, image "
                           "input to moderations); `param` names it."),
    ("unsupported_parameter", 400, "A Responses API field that needs state or a hosted tool "
                                   "(`conversation`, `background`, `prompt`, item references, "
                                   "file inputs, non-function tools; `previous_response_id` "
                                   "under `--stored-responses 0`), or an Ollama field that "
                                   "needs Ollama itself (`context`, `template`, `suffix`, "
                                   "`logprobs`); `param` names it."),
    ("previous_response_not_found", 404, "`previous_response_id` names no response of this "
                                         "user's that the gateway still holds "
                                         "(`--stored-responses`, `--stored-responses-ttl`, "
                                         "`--shared-responses`)."),
    ("model_not_found", 404, "`/api/show` names a model the upstream does not list."),
    ("invalid_api_key", 401, "No key, or a key that is unknown or revoked."),
    ("account_suspended", 403, "Layer 3 (or an operator) suspended the account."),
    ("request_too_large", 413, "Body over `--max-body-bytes`."),
    ("rate_limit_exceeded", 429, "Per-user rate limit; see the `Retry-After` header."),
    ("internal_error", 500, "A gateway bug; the message names the exchange id to find in "
                            "the log."),
    ("model_not_found", 404, "`GET /v1/models/{model}` for a model the upstream does not list."),
    ("model_not_found", 404, "With `--routes`: no route names the request's `model` and there "
                             "is no `--upstream` for the rest."),
    ("upstream_unavailable", 502, "The upstream model server refused or dropped the "
                                  "connection."),
    ("upstream_error", 502, "The upstream answered with a malformed completion, or its stream "
                            "broke (then sent in-band as the stream's last event)."),
    ("not_supported", 501, "`/v1/messages/count_tokens` on an upstream with no tokenizer "
                           "endpoint the gateway knows (Ollama's OpenAI endpoints)."),
    ("key_store_unavailable", 503, "API keys cannot be checked (event store down)."),
    ("upstream_timeout", 504, "The upstream sent no headers, or no next chunk, within "
                              "`--upstream-timeout`."),
)

_REF = "#/components/schemas/"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": _REF + name}


def _error_response(description: str, *, headers: dict[str, Any] | None = None
                    ) -> dict[str, Any]:
    out: dict[str, Any] = {"description": description,
                           "content": {"application/json": {"schema": _ref("Error")}}}
    if headers:
        out["headers"] = headers
    return out


def _codes(status: int, blocks: bool = True) -> str:
    return ", ".join(f"`{c}`" for c, s, _ in ERROR_CODES
                     if s == status and (blocks or c != "content_filter"))


def _schemas() -> dict[str, Any]:
    scores = {"type": "object", "additionalProperties": {"type": "number"}}
    filter_entry = {
        "type": "object",
        "required": ["filtered", "severity", "score"],
        "properties": {
            "filtered": {"type": "boolean",
                         "description": "True for the categories that caused the block."},
            "severity": {"enum": ["safe", "low", "medium", "high"],
                         "description": "Read off the score: >= 0.8 high, >= 0.5 medium, "
                                        ">= 0.2 low, else safe (Azure's levels)."},
            "score": {"type": "number", "minimum": 0, "maximum": 1},
        },
    }
    text_or_parts = {
        "oneOf": [{"type": "string"}, {"type": "array", "items": _ref("ContentPart")},
                  {"type": "null"}],
    }
    names = ", ".join(f"`{c}`" for c in taxonomy.OPENAI_CATEGORIES)

    def per_openai_category(value: dict[str, Any], what: str) -> dict[str, Any]:
        return {"type": "object", "required": list(taxonomy.OPENAI_CATEGORIES),
                "propertyNames": {"enum": list(taxonomy.OPENAI_CATEGORIES)},
                "additionalProperties": value,
                "description": f"{what} for each of OpenAI's categories: {names}."}

    openai_bools = per_openai_category({"type": "boolean"}, "Crossed or not")
    openai_scores = per_openai_category({"type": "number"},
                                        "Score (mapped from guardstack's categories)")
    return {
        "Error": {
            "type": "object",
            "required": ["error"],
            "description": "OpenAI's error envelope; every SDK maps it to its exception types.",
            "properties": {"error": {
                "type": "object",
                "required": ["message", "type", "param", "code"],
                "properties": {
                    "message": {"type": "string"},
                    "type": {"type": "string", "examples": ["invalid_request_error"]},
                    "param": {"type": ["string", "null"],
                              "description": "The field at fault, e.g. `messages[2].role`."},
                    "code": {"type": ["string", "null"],
                             "enum": [c for c, _, _ in ERROR_CODES] + [None]},
                    "innererror": _ref("InnerError"),
                },
            }},
        },
        "InnerError": {
            "type": "object",
            "description": "Azure OpenAI's shape, on `content_filter` errors only.",
            "required": ["code", "content_filter_result"],
            "properties": {"code": {"const": "ResponsibleAIPolicyViolation"},
                           "content_filter_result": _ref("ContentFilterResult")},
        },
        "ContentFilterResult": {
            "type": "object",
            "description": "Per label (`harm` and the taxonomy's category ids): Azure's "
                           "`{filtered, severity}` with guardstack's probability as `score`. "
                           "With the policy's `tool_output` check on, a prompt's entry also "
                           "has Azure's `indirect_attack`: whether a tool result read as an "
                           "injection (`detected`) and was blocked (`filtered`).",
            "propertyNames": {"enum": ["harm", "indirect_attack", *taxonomy.CATEGORY_IDS]},
            "properties": {"indirect_attack": {
                "type": "object", "required": ["filtered", "detected"],
                "properties": {"filtered": {"type": "boolean"},
                               "detected": {"type": "boolean"}}}},
            "additionalProperties": filter_entry,
        },
        "ContentPart": {
            "type": "object", "required": ["type"], "additionalProperties": True,
            "description": "Only `text` parts are judged; other parts pass through.",
            "properties": {"type": {"type": "string"}, "text": {"type": "string"}},
        },
        "ChatMessage": {
            "type": "object", "required": ["role"], "additionalProperties": True,
            "properties": {"role": {"enum": list(ROLES)}, "content": text_or_parts,
                           "name": {"type": "string"}},
        },
        "RequestCommon": {
            "type": "object", "required": ["model"], "additionalProperties": True,
            "properties": {
                "model": {"type": "string",
                          "description": "Passed to the upstream as is. For chat requests, "
                                         "models matching the policy's "
                                         "`system_prompt_models` get its safety system "
                                         "prompt (a name the upstream does not list is "
                                         "judged by the names it lists)."},
                "stream": {"type": ["boolean", "null"]},
                "user": {"type": "string",
                         "description": "Recorded; under `--open` it is the identity."},
                "safety_identifier": {"type": "string",
                                      "description": "OpenAI's successor to `user`; read "
                                                     "the same way when `user` is absent."},
                "metadata": {"type": "object", "additionalProperties": True,
                             "properties": {"conversation_id": {
                                 "type": "string",
                                 "description": "Conversation id for layer 3 (the "
                                                "`X-Conversation-Id` header wins)."}}},
            },
        },
        "ChatCompletionRequest": {
            "description": "OpenAI's chat request. Fields not listed are forwarded untouched.",
            "allOf": [_ref("RequestCommon"), {
                "type": "object", "required": ["messages"],
                "properties": {"messages": {"type": "array", "minItems": 1,
                                            "items": _ref("ChatMessage")}},
            }],
        },
        "CompletionRequest": {
            "description": "OpenAI's legacy completions request; each prompt string is judged. "
                           "Token-id prompts are refused (they cannot be read).",
            "allOf": [_ref("RequestCommon"), {
                "type": "object", "required": ["prompt"],
                "properties": {"prompt": {"oneOf": [
                    {"type": "string"}, {"type": "array", "items": {"type": "string"}}]}},
            }],
        },
        "ResponseRequest": {
            "description": "OpenAI's Responses request, served over the upstream's chat "
                           "completions: `instructions` becomes the system message, `input` "
                           "the messages (text, images, function calls and their outputs), "
                           "`max_output_tokens` `max_tokens`, function `tools`, `tool_choice`, "
                           "`text.format` and `reasoning.effort` their chat equivalents. The "
                           "last user message is judged with the rest as context.",
            "allOf": [_ref("RequestCommon"), {
                "type": "object", "required": ["input"],
                "properties": {
                    "input": {"oneOf": [
                        {"type": "string"},
                        {"type": "array", "minItems": 1, "items": {
                            "type": "object", "additionalProperties": True,
                            "properties": {
                                "type": {"enum": ["message", "function_call",
                                                  "function_call_output", "reasoning"]},
                                "role": {"enum": ["user", "system", "developer",
                                                  "assistant"]},
                                "content": {"oneOf": [
                                    {"type": "string"},
                                    {"type": "array", "items": {
                                        "type": "object", "required": ["type"],
                                        "additionalProperties": True,
                                        "properties": {"type": {"enum": [
                                            "input_text", "output_text", "text", "refusal",
                                            "input_image"]}}}}]},
                            }}}]},
                    "instructions": {"type": ["string", "null"]},
                    "max_output_tokens": {"type": ["integer", "null"]},
                    "previous_response_id": {
                        "type": ["string", "null"],
                        "description": "Continue a recent response of the same user's, held "
                                       "in the gateway's memory (`--stored-responses`) or, "
                                       "with `--shared-responses`, in the store every replica "
                                       "shares; 404 `previous_response_not_found` otherwise."},
                    "store": {"type": ["boolean", "null"],
                              "description": "`false`: the answer is not held for a later "
                                             "`previous_response_id`."},
                    "conversation": {"not": {}, "description": "Refused "
                                                               "(`unsupported_parameter`)."},
                },
            }],
        },
        "Response": {
            "type": "object", "additionalProperties": True,
            "required": ["id", "object", "created_at", "status", "model", "output"],
            "description": "OpenAI's Responses object, built from the checked chat completion. "
                           "A blocked answer comes back with HTTP 200, `status: incomplete`, "
                           "`incomplete_details.reason: content_filter` and its text replaced "
                           "by `--blocked-message`.",
            "properties": {
                "id": {"type": "string", "pattern": "^resp_"},
                "object": {"const": "response"},
                "created_at": {"type": "integer"},
                "status": {"enum": ["in_progress", "completed", "incomplete", "failed"]},
                "model": {"type": "string"},
                "output": {"type": "array", "items": {
                    "type": "object", "required": ["type", "id"], "additionalProperties": True,
                    "properties": {"type": {"enum": ["message", "reasoning", "function_call"]},
                                   "id": {"type": "string"}}}},
                "incomplete_details": {"oneOf": [{"type": "null"}, {
                    "type": "object", "required": ["reason"],
                    "properties": {"reason": {"enum": ["max_output_tokens",
                                                       "content_filter"]}}}]},
                "error": {"oneOf": [{"type": "null"}, {
                    "type": "object", "required": ["code", "message"],
                    "properties": {"code": {"type": "string"},
                                   "message": {"type": "string"}}}]},
                "usage": {"type": ["object", "null"], "additionalProperties": True},
                "moderation": {
                    "type": "object",
                    "description": "The gateway's verdicts in the Responses API's own field: "
                                   "the prompt's (`input`) and the answer's most severe "
                                   "(`output`).",
                    "properties": {side: {"allOf": [_ref("ModerationResult"), {
                        "type": "object", "required": ["model", "type"],
                        "properties": {"model": {"type": "string"},
                                       "type": {"const": "moderation_result"}}}]}
                        for side in ("input", "output")}},
            },
        },
        "ResponseStreamEvent": {
            "type": "object", "required": ["type", "sequence_number"],
            "additionalProperties": True,
            "description": "One Responses stream event, sent as `event: <type>` and `data: "
                           "<JSON>`: `response.created`, `response.in_progress`, output items "
                           "with their deltas, then `response.completed`. A halted stream ends "
                           "with `response.incomplete` (reason `content_filter`), a broken "
                           "upstream stream with `error` and `response.failed`. No `[DONE]`.",
            "properties": {"type": {"type": "string", "pattern": "^(response\\.|error$)"},
                           "sequence_number": {"type": "integer", "minimum": 0},
                           "response": _ref("Response")},
        },
        "ModerationRequest": {
            "type": "object", "required": ["input"], "additionalProperties": True,
            "properties": {
                "input": {"oneOf": [
                    {"type": "string"},
                    {"type": "array", "minItems": 1, "items": {"oneOf": [
                        {"type": "string"},
                        {"type": "object", "required": ["type", "text"],
                         "properties": {"type": {"const": "text"},
                                        "text": {"type": "string"}}}]}}]},
                "model": {"type": "string",
                          "description": "Echoed back; the gateway's classifier always "
                                         "judges."},
                "guardstack": {
                    "type": "object", "additionalProperties": True,
                    "description": "guardstack's extension: what the inputs are. Without "
                                   "it each input is a prompt without context.",
                    "properties": {
                        "role": {"enum": ["prompt", "response", "tool"],
                                 "default": "prompt",
                                 "description": "Judge the inputs as user prompts or as "
                                                "a model's answers (the policy's rules "
                                                "for that role), or as documents an agent "
                                                "reads (`tool`: the indirect-injection rules, "
                                                "under the policy's `tool_output`, `flag` "
                                                "where that is off; texts not stored)."},
                        "context": {"type": "array", "items": _ref("ChatMessage"),
                                    "description": "The conversation before the inputs."},
                        "prompt_clean": {
                            "type": "boolean", "default": False,
                            "description": "With `role: response`: the answers reply to a "
                                           "prompt the caller's own prompt check passed, so "
                                           "the policy's `response.clean_prompt_threshold` "
                                           "applies (block rules act from it, flag below "
                                           "it). 400 with any other role."},
                    },
                },
            },
        },
        "Completion": {
            "type": "object", "required": ["choices"], "additionalProperties": True,
            "description": "The upstream's `chat.completion` (choices with `message`) or "
                           "`text_completion` (choices with `text`), with guardstack's filter "
                           "results added.",
            "properties": {
                "id": {"type": "string"}, "object": {"type": "string"},
                "created": {"type": "integer"}, "model": {"type": "string"},
                "choices": {"type": "array", "items": {
                    "type": "object", "additionalProperties": True,
                    "properties": {
                        "index": {"type": "integer"},
                        "message": {"type": "object", "additionalProperties": True},
                        "text": {"type": "string",
                                 "description": "`/v1/completions` choices."},
                        "finish_reason": {
                            "type": ["string", "null"],
                            "description": "`content_filter` when the output check blocked "
                                           "this choice; its content is then "
                                           "`--blocked-message`."},
                        "content_filter_results": _ref("ContentFilterResult"),
                    }}},
                "prompt_filter_results": {"type": "array", "items": {
                    "type": "object", "required": ["prompt_index", "content_filter_results"],
                    "properties": {"prompt_index": {"type": "integer"},
                                   "content_filter_results": _ref("ContentFilterResult")}}},
                "usage": {"type": "object", "additionalProperties": True},
            },
        },
        "CompletionChunk": {
            "type": "object", "additionalProperties": True,
            "description": "One `data:` event of a stream, as the upstream sent it. A halted "
                           "stream ends with a chunk whose choices have `finish_reason` "
                           "`content_filter`; a broken upstream stream ends with an "
                           "`{\"error\": ...}` event. Both are followed by `data: [DONE]`.",
            "properties": {
                "id": {"type": "string"}, "object": {"type": "string"},
                "model": {"type": "string"},
                "choices": {"type": "array", "items": {
                    "type": "object", "additionalProperties": True,
                    "properties": {"index": {"type": "integer"},
                                   "delta": {"type": "object", "additionalProperties": True},
                                   "text": {"type": "string"},
                                   "finish_reason": {"type": ["string", "null"]}}}},
                "error": {"type": "object", "additionalProperties": True},
            },
        },
        "ModerationResponse": {
            "type": "object", "required": ["id", "model", "results"],
            "properties": {
                "id": {"type": "string", "pattern": "^modr-"},
                "model": {"type": "string"},
                "results": {"type": "array", "items": _ref("ModerationResult")},
            },
        },
        "ModerationResult": {
            "type": "object",
            "required": ["flagged", "categories", "category_scores",
                         "category_applied_input_types", "guardstack"],
            "properties": {
                "flagged": {"type": "boolean"},
                "categories": openai_bools,
                "category_scores": openai_scores,
                "category_applied_input_types": {
                    "type": "object",
                    "additionalProperties": {"type": "array", "items": {"const": "text"}}},
                "guardstack": {
                    "type": "object",
                    "description": "guardstack's own verdict, in its finer taxonomy.",
                    "required": ["decision", "status", "categories", "category_scores",
                                 "reason", "detector"],
                    "properties": {
                        "decision": {"enum": [a.value for a in Action]},
                        "status": {"enum": [s.value for s in Status],
                                   "description": "`error`: the classifier failed and the "
                                                  "policy's on_error decided."},
                        "categories": {"type": "array",
                                       "items": {"enum": list(taxonomy.CATEGORY_IDS)}},
                        "category_scores": scores,
                        "reason": {"type": "string"},
                        "detector": {"type": "string"},
                    },
                },
            },
        },
        "EmbeddingRequest": {
            "type": "object", "required": ["model", "input"], "additionalProperties": True,
            "description": "Forwarded as sent; the input is neither judged nor stored.",
            "properties": {
                "model": {"type": "string"},
                "input": {"oneOf": [
                    {"type": "string"},
                    {"type": "array", "minItems": 1, "items": {"type": "integer"}},
                    {"type": "array", "minItems": 1, "items": {"oneOf": [
                        {"type": "string"},
                        {"type": "array", "minItems": 1, "items": {"type": "integer"}}]}}]},
                "user": {"type": "string"},
            },
        },
        "EmbeddingList": {
            "type": "object", "additionalProperties": True,
            "description": "The upstream's answer, passed through as is.",
            "properties": {"object": {"type": "string"}, "data": {
                "type": "array", "items": {"type": "object", "required": ["embedding"],
                                           "additionalProperties": True}}},
        },
        "ModelList": {
            "type": "object", "additionalProperties": True,
            "description": "The upstream's answer, passed through as is.",
            "properties": {"object": {"type": "string"}, "data": {
                "type": "array", "items": _ref("Model")}},
        },
        "Model": {"type": "object", "required": ["id"], "additionalProperties": True,
                  "properties": {"id": {"type": "string"}}},
        "Health": {"type": "object", "required": ["status"],
                   "properties": {"status": {"const": "ok"}}},
        "Readiness": {
            "type": "object", "required": ["status", "upstream", "classifier"],
            "properties": {"status": {"enum": ["ready", "not ready"]},
                           "upstream": {"type": "boolean",
                                        "description": "Every upstream answered "
                                                       "`GET /models`."},
                           "upstreams": {"type": "object",
                                         "additionalProperties": {"type": "boolean"},
                                         "description": "With `--routes`: each model "
                                                        "server's base URL and whether it "
                                                        "answered."},
                           "classifier": {"type": "boolean"}},
        },
    }


def _errors(*statuses: int, blocks: bool = True) -> dict[str, Any]:
    """Error responses; ``blocks=False`` for endpoints that never block a
    prompt (moderations answers a verdict, embeddings are not judged)."""
    out: dict[str, Any] = {}
    for status in statuses:
        codes = _codes(status, blocks)
        headers = None
        if status == 429:
            headers = {"Retry-After": {"description": "Seconds until a request is allowed.",
                                       "schema": {"type": "integer"}}}
        text = {
            400: "Bad request or blocked prompt" if blocks else "Bad request",
            401: "No valid API key (checked before the body is read)",
            403: "Account suspended",
            404: "Not found (a previous response, a model)",
            413: "Body too large",
            429: "Rate limited",
            500: "Gateway error",
            502: "Upstream unreachable or malformed",
            503: "Key store unavailable",
            504: "Upstream timed out",
        }[status]
        out[str(status)] = _error_response(f"{text}. Codes: {codes}." if codes else text + ".",
                                           headers=headers)
    return out


_PASSTHROUGH = {"description": "An error status from the upstream model server, passed "
                               "through unchanged (status and body)."}


_CHAT_ENDINGS = ("a blocked choice comes back with HTTP 200, `finish_reason: content_filter` "
                 "and its content replaced by `--blocked-message`",
                 "ends the stream with a `content_filter` chunk and `[DONE]`")
_RESPONSE_ENDINGS = ("a blocked answer comes back with HTTP 200, `status: incomplete`, "
                     "`incomplete_details.reason: content_filter` and its text replaced by "
                     "`--blocked-message`",
                     "ends the stream with `response.incomplete` (reason `content_filter`)")


def _generation(kind: str, request: str, example: dict[str, Any], *,
                answer: str = "Completion", event: str = "CompletionChunk") -> dict[str, Any]:
    blocked, halted = _RESPONSE_ENDINGS if answer == "Response" else _CHAT_ENDINGS
    stream_text = ("`event: <type>` and `data: <ResponseStreamEvent JSON>` events"
                   if answer == "Response" else
                   "`data: <CompletionChunk JSON>` events, ending with `data: [DONE]`")
    return {
        "summary": f"{kind}: input check, forward, output check",
        "description": (
            "The prompt is judged before it reaches the upstream (a `block` is a 400 "
            f"`content_filter`). Non-streamed: the whole completion is judged; {blocked}. "
            "Streamed (`stream: true`): judged while it streams, with up to `--hold-back` "
            f"tokens held back; a `block` cancels the upstream and {halted}."),
        "parameters": [{"$ref": "#/components/parameters/ConversationId"}],
        "requestBody": {"required": True, "content": {"application/json": {
            "schema": _ref(request), "example": example}}},
        "responses": {
            "200": {
                "description": "The completion (JSON), or a server-sent event stream when "
                               "`stream` is true.",
                "headers": {
                    "X-Request-Id": {"description": "The exchange's id in the event store, on "
                                                    "every answer of the API (errors too), also "
                                                    "as `request-id` for Anthropic's SDK; the "
                                                    "openai SDK exposes it as `_request_id`.",
                                     "schema": {"type": "string"}},
                    "Cache-Control": {"description": "`no-cache` on streams.",
                                      "schema": {"type": "string"}},
                    "X-Accel-Buffering": {"description": "`no` on streams, so nginx does not "
                                                         "buffer them.",
                                          "schema": {"type": "string"}}},
                "content": {
                    "application/json": {"schema": _ref(answer)},
                    "text/event-stream": {
                        "schema": {"type": "string", "description": stream_text + "."},
                        "x-guardstack-event": _ref(event)},
                },
            },
            **_errors(400, 401, 403, 404, 413, 429, 500, 502, 503, 504),
            "default": _PASSTHROUGH,
        },
    }


def document() -> dict[str, Any]:
    """The OpenAPI 3.1 document (a fresh copy each call)."""
    bearer: list[dict[str, list[str]]] = [{"bearerAuth": []}]
    public: list[dict[str, list[str]]] = []
    paths: dict[str, Any] = {
        "/v1/chat/completions": {"post": {
            **_generation("Chat completions", "ChatCompletionRequest",
                          {"model": "smollm2-135m-instruct", "stream": True,
                           "messages": [{"role": "user", "content": "What is a GGUF file?"}]}),
            "operationId": "createChatCompletion", "tags": ["OpenAI-compatible"],
            "security": bearer}},
        "/v1/completions": {"post": {
            **_generation("Completions (legacy)", "CompletionRequest",
                          {"model": "smollm2-135m-instruct", "prompt": "A GGUF file is",
                           "max_tokens": 32}),
            "operationId": "createCompletion", "tags": ["OpenAI-compatible"],
            "security": bearer}},
        "/v1/responses": {"post": {
            **_generation("Responses (served over chat completions)", "ResponseRequest",
                          {"model": "smollm2-135m-instruct", "instructions": "Be brief.",
                           "input": "What is a GGUF file?"},
                          answer="Response", event="ResponseStreamEvent"),
            "operationId": "createResponse", "tags": ["OpenAI-compatible"],
            "security": bearer}},
        "/v1/moderations": {"post": {
            "operationId": "createModeration", "tags": ["OpenAI-compatible"],
            "summary": "Moderation in OpenAI's schema, scored by guardstack's classifier",
            "description": "OpenAI's category names are mapped from guardstack's taxonomy; the "
                           "finer verdict is under each result's `guardstack` key. Nothing is "
                           "sent upstream.",
            "security": bearer,
            "requestBody": {"required": True, "content": {"application/json": {
                "schema": _ref("ModerationRequest"),
                "example": {"input": ["How do vaccines work?"]}}}},
            "responses": {"200": {"description": "One result per input.", "content": {
                "application/json": {"schema": _ref("ModerationResponse")}}},
                **_errors(400, 401, 403, 413, 429, 500, 503, blocks=False)},
        }},
        "/v1/embeddings": {"post": {
            "operationId": "createEmbedding", "tags": ["OpenAI-compatible"],
            "summary": "Embeddings, forwarded to the upstream after the key, account state "
                       "and rate limit",
            "description": "An embedding is read by programs, not people, and its inputs are "
                           "mostly documents being indexed: the input is neither judged nor "
                           "stored (the exchange is recorded without it).",
            "security": bearer,
            "requestBody": {"required": True, "content": {"application/json": {
                "schema": _ref("EmbeddingRequest"),
                "example": {"model": "nomic-embed-text", "input": ["How do vaccines work?"]}}}},
            "responses": {"200": {"description": "The upstream's embeddings.", "content": {
                "application/json": {"schema": _ref("EmbeddingList")}}},
                **_errors(400, 401, 403, 404, 413, 429, 500, 502, 503, 504, blocks=False),
                "default": _PASSTHROUGH},
        }},
        "/v1/models": {"get": {
            "operationId": "listModels", "tags": ["OpenAI-compatible"],
            "summary": "The upstream's model list, proxied as is",
            "security": bearer,
            "responses": {"200": {"description": "The upstream's model list.", "content": {
                "application/json": {"schema": _ref("ModelList")}}},
                **_errors(401, 403, 429, 502, 503, 504), "default": _PASSTHROUGH},
        }},
        "/v1/models/{model}": {"get": {
            "operationId": "retrieveModel", "tags": ["OpenAI-compatible"],
            "summary": "One model: the upstream's answer, or the entry of its list",
            "description": "Servers that answer only the list (vLLM, llama.cpp) get the entry "
                           "whose `id` is the model; a name with `/` is one path parameter.",
            "security": bearer,
            "parameters": [{"name": "model", "in": "path", "required": True,
                            "schema": {"type": "string"}}],
            "responses": {"200": {"description": "The model.", "content": {
                "application/json": {"schema": _ref("Model")}}},
                **_errors(401, 403, 404, 429, 502, 503, 504), "default": _PASSTHROUGH},
        }},
        **openapi_ollama.paths(bearer, public),
        **openapi_anthropic.paths([{"bearerAuth": []}, {"apiKeyAuth": []}]),
        "/healthz": {"get": {
            "operationId": "healthz", "tags": ["Operations"], "security": public,
            "summary": "Liveness: 200 while the process serves",
            "responses": {"200": {"description": "Serving.", "content": {
                "application/json": {"schema": _ref("Health")}}}},
        }},
        "/readyz": {"get": {
            "operationId": "readyz", "tags": ["Operations"], "security": public,
            "summary": "Readiness: the upstreams answer and the classifier is loaded",
            "responses": {
                "200": {"description": "Ready.", "content": {
                    "application/json": {"schema": _ref("Readiness")}}},
                "503": {"description": "Not ready; the body says which part is missing.",
                        "content": {"application/json": {"schema": _ref("Readiness")}}}},
        }},
        "/metrics": {"get": {
            "operationId": "metrics", "tags": ["Operations"], "security": public,
            "summary": "Prometheus metrics (text exposition format)",
            "responses": {"200": {"description": "Metrics; see docs/gateway.md for the list.",
                                  "content": {"text/plain": {"schema": {"type": "string"}}}}},
        }},
        "/openapi.json": {"get": {
            "operationId": "openapi", "tags": ["Operations"], "security": public,
            "summary": "This document",
            "responses": {"200": {"description": "OpenAPI 3.1.", "content": {
                "application/json": {"schema": {"type": "object"}}}}},
        }},
    }
    doc = {
        "openapi": "3.1.0",
        "info": {
            "title": "guardstack gateway",
            "version": API_VERSION,
            "summary": "OpenAI-compatible guard gateway for open-weight model servers.",
            "description": (
                "Put `guardstack serve --upstream URL` in front of vLLM, llama.cpp's server or "
                "Ollama and point any OpenAI client at it. Prompts are checked before they "
                "reach the model, completions while they stream back, and every exchange is "
                "recorded for offline analysis. Errors use OpenAI's envelope; blocked prompts "
                "add Azure's `innererror.content_filter_result`."),
            "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"},
        },
        "tags": [{"name": "OpenAI-compatible",
                  "description": "OpenAI's API, guarded."},
                 {"name": "Ollama-compatible",
                  "description": "Ollama's native API, served over the upstream's OpenAI API "
                                 "with the same checks."},
                 {"name": "Anthropic-compatible",
                  "description": "Anthropic's Messages API, served over the upstream's OpenAI "
                                 "API with the same checks."},
                 {"name": "Operations",
                  "description": "Health, readiness, metrics; no API key needed."}],
        "paths": paths,
        "components": {
            "schemas": {**_schemas(), **openapi_ollama.schemas(),
                        **openapi_anthropic.schemas()},
            "parameters": {"ConversationId": {
                "name": "X-Conversation-Id", "in": "header", "required": False,
                "schema": {"type": "string"},
                "description": "Groups exchanges into a conversation for layer 3 "
                               "(else `metadata.conversation_id` in the body, else Open "
                               "WebUI's `X-OpenWebUI-Chat-Id` header)."}},
            "securitySchemes": {"bearerAuth": {
                "type": "http", "scheme": "bearer",
                "description": "A key from `guardstack keys add USER`. Not needed when the "
                               "gateway runs with `--open`. The gateway never forwards it; it "
                               "sends `--upstream-api-key` upstream."},
                "apiKeyAuth": {
                    "type": "apiKey", "in": "header", "name": "x-api-key",
                    "description": "The same key as Anthropic's clients send it "
                                   "(`/v1/messages`)."}},
        },
    }
    return copy.deepcopy(doc)


__all__ = ["API_VERSION", "ERROR_CODES", "NOT_IN_API", "document"]
