"""The Ollama part of the gateway's OpenAPI document: ``/api/*`` paths and
their schemas (:mod:`.ollama_api` serves them). Like the OpenAI schemas,
they name the fields the gateway reads or writes and leave the rest open."""

from __future__ import annotations

from typing import Any

from guardstack.gateway.ollama_api import ROLES

_REF = "#/components/schemas/"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": _REF + name}


def _json(name: str) -> dict[str, Any]:
    return {"application/json": {"schema": _ref(name)}}


def _body(name: str, example: dict[str, Any]) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": _ref(name),
                                                               "example": example}}}


_NANOSECONDS = {"type": "integer", "minimum": 0}
_FORMAT = {"oneOf": [{"const": "json"}, {"const": ""}, {"type": "object"}],
           "description": "`json` (response_format json_object) or a JSON schema "
                          "(json_schema)."}
_OPTIONS = {"type": "object", "additionalProperties": True,
            "description": "`temperature`, `top_p`, `seed`, `stop`, `frequency_penalty`, "
                           "`presence_penalty`, `top_k`, `min_p`, `typical_p` and "
                           "`repeat_penalty` are sent as sampling fields, `num_predict` as "
                           "`max_tokens`; load-time options (`num_ctx`, ...) are ignored."}
_THINK = {"oneOf": [{"type": "boolean"}, {"enum": ["low", "medium", "high"]}],
          "description": "A level is sent as `reasoning_effort`; true and false are not sent."}
_IMAGES = {"type": "array", "items": {"type": "string", "contentEncoding": "base64"}}


def schemas() -> dict[str, Any]:
    answer_common = {
        "model": {"type": "string"},
        "created_at": {"type": "string", "format": "date-time"},
        "done": {"type": "boolean"},
        "done_reason": {"enum": ["stop", "length", "content_filter", "load"],
                        "description": "On the final line (`done: true`): `content_filter` "
                                       "when the answer was withheld or the stream halted."},
        "total_duration": _NANOSECONDS, "prompt_eval_duration": _NANOSECONDS,
        "eval_duration": _NANOSECONDS,
        "prompt_eval_count": {"type": "integer", "minimum": 0},
        "eval_count": {"type": "integer", "minimum": 0},
    }
    tool_call = {"type": "object", "required": ["function"], "properties": {
        "function": {"type": "object", "required": ["name"], "properties": {
            "name": {"type": "string"}, "arguments": {"type": "object"}}}}}
    return {
        "OllamaMessage": {
            "type": "object", "required": ["role"], "additionalProperties": True,
            "properties": {
                "role": {"enum": list(ROLES)},
                "content": {"type": ["string", "null"]},
                "images": _IMAGES,
                "thinking": {"type": "string"},
                "tool_calls": {"type": "array", "items": tool_call},
                "tool_name": {"type": "string"},
            },
        },
        "OllamaChatRequest": {
            "type": "object", "required": ["model"], "additionalProperties": True,
            "description": "The last `user` message is judged as a prompt, the messages before "
                           "it as context. Empty `messages` loads the model (answered at once).",
            "properties": {
                "model": {"type": "string"},
                "messages": {"type": "array", "items": _ref("OllamaMessage")},
                "stream": {"type": "boolean", "default": True},
                "format": _FORMAT, "options": _OPTIONS, "think": _THINK,
                "tools": {"type": "array", "items": {"type": "object"}},
                "keep_alive": {"description": "Ignored (the model server's)."},
                "logprobs": {"const": False, "description": "Not supported (400)."},
            },
        },
        "OllamaGenerateRequest": {
            "type": "object", "required": ["model"], "additionalProperties": True,
            "description": "`system` and `prompt` become two chat messages; `raw` prompts go to "
                           "the upstream's `/v1/completions`. No `prompt` loads the model.",
            "properties": {
                "model": {"type": "string"},
                "prompt": {"type": "string"},
                "system": {"type": "string"},
                "images": _IMAGES,
                "raw": {"type": "boolean"},
                "stream": {"type": "boolean", "default": True},
                "format": _FORMAT, "options": _OPTIONS, "think": _THINK,
                **{name: {"description": "Not supported: needs Ollama itself (400 "
                                         "`unsupported_parameter`)."}
                   for name in ("context", "template", "suffix")},
            },
        },
        "OllamaChatResponse": {
            "type": "object", "required": ["model", "created_at", "message", "done"],
            "description": "The answer, or one line of the `application/x-ndjson` stream.",
            "properties": {**answer_common, "message": _ref("OllamaMessage")},
        },
        "OllamaGenerateResponse": {
            "type": "object", "required": ["model", "created_at", "response", "done"],
            "description": "The answer, or one line of the `application/x-ndjson` stream.",
            "properties": {**answer_common, "response": {"type": "string"},
                           "thinking": {"type": "string"}},
        },
        "OllamaError": {
            "type": "object", "required": ["error"],
            "description": "Ollama's error shape (its clients raise `ResponseError` with "
                           "`error`); `code` is the gateway's, as in the OpenAI envelope.",
            "properties": {"error": {"type": "string"}, "code": {"type": "string"}},
        },
        "OllamaTags": {
            "type": "object", "required": ["models"],
            "properties": {"models": {"type": "array", "items": {
                "type": "object", "required": ["name", "model"],
                "properties": {"name": {"type": "string"}, "model": {"type": "string"},
                               "modified_at": {"type": "string", "format": "date-time"},
                               "details": {"type": "object"}}}}},
        },
        "OllamaShowRequest": {
            "type": "object", "additionalProperties": True,
            "description": "`model` (older clients send `name`).",
            "properties": {"model": {"type": "string"}, "name": {"type": "string"}},
        },
        "OllamaShow": {
            "type": "object", "required": ["capabilities"], "additionalProperties": True,
            "properties": {"capabilities": {"type": "array", "items": {"type": "string"}},
                           "details": {"type": "object"}, "model_info": {"type": "object"}},
        },
        "OllamaEmbedRequest": {
            "type": "object", "required": ["model", "input"], "additionalProperties": True,
            "properties": {"model": {"type": "string"}, "input": {"oneOf": [
                {"type": "string"},
                {"type": "array", "minItems": 1, "items": {"type": "string"}}]},
                "dimensions": {"type": "integer"}},
        },
        "OllamaEmbedResponse": {
            "type": "object", "required": ["model", "embeddings"],
            "properties": {"model": {"type": "string"},
                           "embeddings": {"type": "array", "items": {
                               "type": "array", "items": {"type": "number"}}},
                           "prompt_eval_count": {"type": "integer"}},
        },
        "OllamaEmbeddingsRequest": {
            "type": "object", "required": ["model", "prompt"], "additionalProperties": True,
            "properties": {"model": {"type": "string"}, "prompt": {"type": "string"}},
        },
        "OllamaEmbeddingsResponse": {
            "type": "object", "required": ["embedding"],
            "properties": {"embedding": {"type": "array", "items": {"type": "number"}}},
        },
    }


def _errors(*statuses: int) -> dict[str, Any]:
    text = {400: "Bad request, unsupported field or blocked prompt", 401: "No valid API key",
            403: "Account suspended", 404: "Model not found", 413: "Body too large",
            429: "Rate limited", 500: "Gateway error",
            502: "Upstream unreachable or malformed", 503: "Key store unavailable",
            504: "Upstream timed out"}
    return {str(s): {"description": text[s] + " (Ollama's error shape).",
                     "content": _json("OllamaError")} for s in statuses}


_UPSTREAM = {"description": "An error status from the upstream, with its message in Ollama's "
                            "error shape.", "content": _json("OllamaError")}


def _generation(name: str, request: str, answer: str, example: dict[str, Any],
                operation: str, bearer: list[dict[str, list[str]]]) -> dict[str, Any]:
    return {"post": {
        "operationId": operation, "tags": ["Ollama-compatible"], "security": bearer,
        "summary": f"Ollama's {name}, served over the upstream's OpenAI API with the chat "
                   "path's checks",
        "description": "A blocked prompt is a 400 `content_filter`. A blocked answer keeps HTTP "
                       "200 with its text replaced by `--blocked-message` and `done_reason: "
                       "content_filter`; a halted stream ends with a final line carrying "
                       "that `done_reason`; a broken upstream stream with an `error` line.",
        "parameters": [{"$ref": "#/components/parameters/ConversationId"}],
        "requestBody": _body(request, example),
        "responses": {
            "200": {"description": "The answer (JSON), or newline-delimited JSON lines when "
                                   "`stream` is true or absent.",
                    "content": {"application/json": {"schema": _ref(answer)},
                                "application/x-ndjson": {
                                    "schema": {"type": "string",
                                               "description": f"One `{answer}` per line."},
                                    "x-guardstack-event": _ref(answer)}}},
            **_errors(400, 401, 403, 404, 413, 429, 500, 502, 503, 504),
            "default": _UPSTREAM,
        },
    }}


def paths(bearer: list[dict[str, list[str]]],
          public: list[dict[str, list[str]]]) -> dict[str, Any]:
    example = "smollm2-135m-instruct"
    return {
        "/api/chat": _generation("/api/chat", "OllamaChatRequest", "OllamaChatResponse",
                                 {"model": example, "messages": [
                                     {"role": "user", "content": "What is a GGUF file?"}]},
                                 "ollamaChat", bearer),
        "/api/generate": _generation("/api/generate", "OllamaGenerateRequest",
                                     "OllamaGenerateResponse",
                                     {"model": example, "prompt": "What is a GGUF file?",
                                      "stream": False}, "ollamaGenerate", bearer),
        "/api/embed": {"post": {
            "operationId": "ollamaEmbed", "tags": ["Ollama-compatible"], "security": bearer,
            "summary": "Embeddings (Ollama's), forwarded to `/v1/embeddings`; not judged or "
                       "stored",
            "requestBody": _body("OllamaEmbedRequest", {"model": "nomic-embed-text",
                                                        "input": ["How do vaccines work?"]}),
            "responses": {"200": {"description": "One vector per input.",
                                  "content": _json("OllamaEmbedResponse")},
                          **_errors(400, 401, 403, 404, 413, 429, 500, 502, 503, 504),
                          "default": _UPSTREAM}}},
        "/api/embeddings": {"post": {
            "operationId": "ollamaEmbeddings", "tags": ["Ollama-compatible"],
            "security": bearer, "summary": "Ollama's older embeddings endpoint (one prompt)",
            "requestBody": _body("OllamaEmbeddingsRequest",
                                 {"model": "nomic-embed-text", "prompt": "How do vaccines work?"}),
            "responses": {"200": {"description": "The prompt's vector.",
                                  "content": _json("OllamaEmbeddingsResponse")},
                          **_errors(400, 401, 403, 404, 413, 429, 500, 502, 503, 504),
                          "default": _UPSTREAM}}},
        "/api/tags": {"get": {
            "operationId": "ollamaTags", "tags": ["Ollama-compatible"], "security": bearer,
            "summary": "The upstream's `/v1/models` as Ollama lists models",
            "responses": {"200": {"description": "The models.", "content": _json("OllamaTags")},
                          **_errors(401, 403, 429, 502, 503, 504)}}},
        "/api/show": {"post": {
            "operationId": "ollamaShow", "tags": ["Ollama-compatible"], "security": bearer,
            "summary": "A listed model's name and capabilities (no modelfile or template)",
            "requestBody": _body("OllamaShowRequest", {"model": example}),
            "responses": {"200": {"description": "The model.", "content": _json("OllamaShow")},
                          **_errors(400, 401, 403, 404, 413, 429, 502, 503, 504)}}},
        "/": {"get": {
            "operationId": "ollamaHeartbeat", "tags": ["Ollama-compatible"], "security": public,
            "summary": "Plain-text `guardstack is running` (Ollama's CLI heartbeat; HEAD too)",
            "responses": {"200": {"description": "Serving.", "content": {
                "text/plain": {"schema": {"type": "string"}}}}}}},
        "/api/version": {"get": {
            "operationId": "ollamaVersion", "tags": ["Ollama-compatible"], "security": public,
            "summary": "The gateway's version",
            "responses": {"200": {"description": "The version.", "content": {
                "application/json": {"schema": {
                    "type": "object", "required": ["version"],
                    "properties": {"version": {"type": "string"}}}}}}}}},
    }
