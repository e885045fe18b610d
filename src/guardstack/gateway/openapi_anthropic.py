"""The Anthropic part of the gateway's OpenAPI document: ``/v1/messages`` and
its schemas (:mod:`.anthropic_api` serves it). Like the other schemas, they
name the fields the gateway reads or writes and leave the rest open."""

from __future__ import annotations

from typing import Any

from guardstack.gateway.anthropic_api import ERROR_TYPES

_REF = "#/components/schemas/"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": _REF + name}


_BLOCK_TYPES = ["text", "image", "tool_use", "tool_result", "thinking", "redacted_thinking"]


def schemas() -> dict[str, Any]:
    block = {"type": "object", "required": ["type"], "additionalProperties": True,
             "properties": {"type": {"enum": _BLOCK_TYPES}}}
    return {
        "MessagesRequest": {
            "type": "object", "required": ["model", "max_tokens", "messages"],
            "additionalProperties": True,
            "description": "Anthropic's Messages request. `system`, `messages`, `tools` "
                           "(client tools), `tool_choice`, `stop_sequences`, `temperature`, "
                           "`top_p`, `top_k`, `stream` and `metadata.user_id` (the end user) "
                           "are translated; `thinking` is accepted and not forwarded; "
                           "`container`, `mcp_servers`, server tools and `document` blocks "
                           "answer 400.",
            "properties": {
                "model": {"type": "string"},
                "max_tokens": {"type": "integer", "minimum": 1},
                "system": {"oneOf": [{"type": "string"}, {"type": "array", "items": {
                    "type": "object", "required": ["type", "text"],
                    "properties": {"type": {"const": "text"}, "text": {"type": "string"}}}}]},
                "messages": {"type": "array", "minItems": 1, "items": {
                    "type": "object", "required": ["role", "content"],
                    "additionalProperties": True,
                    "properties": {
                        "role": {"enum": ["user", "assistant"]},
                        "content": {"oneOf": [{"type": "string"},
                                              {"type": "array", "items": block}]}}}},
                "stream": {"type": "boolean"},
                "stop_sequences": {"type": "array", "items": {"type": "string"}},
                "metadata": {"type": "object", "properties": {
                    "user_id": {"type": "string", "description": "The end user: rate limits, "
                                                                 "account states and layer 3 "
                                                                 "see each person."}}},
                "tools": {"type": "array", "items": {
                    "type": "object", "required": ["name"], "additionalProperties": True,
                    "properties": {"type": {"enum": ["custom"]}, "name": {"type": "string"},
                                   "input_schema": {"type": "object"}}}},
                "tool_choice": {"type": "object", "required": ["type"],
                                "additionalProperties": True,
                                "properties": {"type": {"enum": ["auto", "any", "tool",
                                                                 "none"]}}},
                "container": {"not": {}, "description": "Refused (400)."},
                "mcp_servers": {"not": {}, "description": "Refused (400)."},
            },
        },
        "Message": {
            "type": "object", "additionalProperties": True,
            "required": ["id", "type", "role", "model", "content", "stop_reason", "usage"],
            "description": "Anthropic's Message, built from the checked chat completion. Where "
                           "the policy intervened (a blocked prompt, a withheld answer): HTTP "
                           "200, `stop_reason: refusal`, `stop_details` with the category, "
                           "and `--blocked-message` as its text (if set).",
            "properties": {
                "id": {"type": "string", "pattern": "^msg_"},
                "type": {"const": "message"},
                "role": {"const": "assistant"},
                "model": {"type": ["string", "null"]},
                "content": {"type": "array", "items": block},
                "stop_reason": {"enum": ["end_turn", "max_tokens", "tool_use", "refusal",
                                         None]},
                "stop_details": {"type": "object", "required": ["type"], "properties": {
                    "type": {"const": "refusal"},
                    "category": {"enum": ["cyber", "general_harms", None]},
                    "explanation": {"type": "string"}}},
                "usage": {"type": "object", "required": ["input_tokens", "output_tokens"],
                          "properties": {"input_tokens": {"type": "integer", "minimum": 0},
                                         "output_tokens": {"type": "integer", "minimum": 0}}},
            },
        },
        "MessageStreamEvent": {
            "type": "object", "required": ["type"], "additionalProperties": True,
            "description": "One `event: <type>` / `data: <JSON>` server-sent event: "
                           "`message_start`, then per block `content_block_start`, "
                           "`content_block_delta` (`text_delta`, `thinking_delta`, "
                           "`input_json_delta`), `content_block_stop`, then `message_delta` "
                           "(the stop reason; `refusal` when the output check halted the "
                           "stream) and `message_stop`; or `error` if the upstream's stream "
                           "broke.",
            "properties": {"type": {"enum": [
                "message_start", "content_block_start", "content_block_delta",
                "content_block_stop", "message_delta", "message_stop", "error"]}},
        },
        "CountTokensRequest": {
            "type": "object", "required": ["model", "messages"], "additionalProperties": True,
            "description": "A Messages request without `max_tokens`: `system`, `messages` and "
                           "`tools` are counted as the model will see them (with the policy's "
                           "safety system prompt, where it applies).",
            "properties": {"model": {"type": "string"}, "system": {},
                           "messages": {"type": "array", "minItems": 1},
                           "tools": {"type": "array"}},
        },
        "CountTokensResponse": {
            "type": "object", "required": ["input_tokens"],
            "properties": {"input_tokens": {"type": "integer", "minimum": 0}},
        },
        "AnthropicError": {
            "type": "object", "required": ["type", "error"],
            "description": "Anthropic's error envelope (its SDK raises the matching "
                           "exception); upstream errors are re-wrapped in it with their status.",
            "properties": {
                "type": {"const": "error"},
                "error": {"type": "object", "required": ["type", "message"], "properties": {
                    "type": {"enum": sorted(set(ERROR_TYPES.values()))},
                    "message": {"type": "string"}}}},
        },
    }


def paths(security: list[dict[str, list[str]]]) -> dict[str, Any]:
    error = {"application/json": {"schema": _ref("AnthropicError")}}
    statuses = {400: "Bad request", 401: "No valid API key (`x-api-key` or a bearer token)",
                403: "Account suspended", 404: "Model not found (with `--routes`)",
                413: "Body too large",
                429: "Rate limited (see `Retry-After`)", 500: "Gateway error",
                502: "Upstream unreachable or malformed", 503: "Key store unavailable",
                504: "Upstream timed out"}
    return {"/v1/messages": {"post": {
        "operationId": "createMessage", "tags": ["Anthropic-compatible"],
        "security": security,
        "summary": "Messages (Anthropic's API, served over chat completions): input check, "
                   "forward, output check",
        "description": (
            "The request becomes a chat completion and takes the chat path with every check. "
            "A blocked prompt or answer is HTTP 200 with `stop_reason: refusal` (as "
            "Anthropic's API answers when its classifiers intervene); a halted stream ends "
            "with `message_delta` carrying `stop_reason: refusal` and `message_stop`."),
        "parameters": [{"$ref": "#/components/parameters/ConversationId"}],
        "requestBody": {"required": True, "content": {"application/json": {
            "schema": _ref("MessagesRequest"),
            "example": {"model": "smollm2-135m-instruct", "max_tokens": 256,
                        "messages": [{"role": "user", "content": "What is a GGUF file?"}]}}}},
        "responses": {
            "200": {"description": "The Message (JSON), or a server-sent event stream when "
                                   "`stream` is true.",
                    "content": {"application/json": {"schema": _ref("Message")},
                                "text/event-stream": {
                                    "schema": {"type": "string"},
                                    "x-guardstack-event": _ref("MessageStreamEvent")}}},
            **{str(s): {"description": d + ".", "content": error} for s, d in statuses.items()},
            "default": {"description": "An error status from the upstream model server, "
                                       "with its message in Anthropic's envelope.",
                        "content": error},
        },
    }}, "/v1/messages/count_tokens": {"post": {
        "operationId": "countMessageTokens", "tags": ["Anthropic-compatible"],
        "security": security,
        "summary": "Count a Messages request's input tokens with the upstream's tokenizer",
        "description": (
            "Counted by the model server's own tokenizer endpoint, the first that answers: "
            "vLLM's or SGLang's `/tokenize` (chat template applied), llama.cpp's "
            "`/apply-template` and `/tokenize`, llama-cpp-python's `/extras/tokenize/count` "
            "(no template). Nothing is generated or judged; the text is not recorded."),
        "requestBody": {"required": True, "content": {"application/json": {
            "schema": _ref("CountTokensRequest"),
            "example": {"model": "smollm2-135m-instruct",
                        "messages": [{"role": "user", "content": "What is a GGUF file?"}]}}}},
        "responses": {
            "200": {"description": "The count.",
                    "content": {"application/json": {"schema": _ref("CountTokensResponse")}}},
            **{str(s): {"description": d + ".", "content": error} for s, d in statuses.items()},
            "501": {"description": "The upstream has no tokenizer endpoint the gateway knows "
                                   "(Ollama's OpenAI endpoints).", "content": error},
        },
    }}}
