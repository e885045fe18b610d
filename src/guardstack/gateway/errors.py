"""OpenAI's error envelope, so every SDK turns gateway errors into its own
exception types (400 → BadRequestError, 401 → AuthenticationError, ...)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from starlette.responses import JSONResponse

from guardstack.classifiers.base import HARM
from guardstack.verdict import Verdict

#: OpenAI's ``type`` for each status the gateway produces itself.
_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    408: "invalid_request_error",
    413: "invalid_request_error",
    415: "invalid_request_error",
    429: "rate_limit_error",
    500: "server_error",
    502: "upstream_error",
    503: "server_error",
    504: "upstream_timeout",
}


class GatewayError(Exception):
    """An error the gateway answers itself, in OpenAI's envelope."""

    def __init__(self, status: int, message: str, *, code: str | None = None,
                 param: str | None = None, headers: Mapping[str, str] | None = None,
                 extra: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.code, self.param = status, message, code, param
        self.headers = dict(headers or {})
        self.extra = dict(extra or {})

    def body(self) -> dict[str, Any]:
        return error_body(self.status, self.message, code=self.code, param=self.param,
                          extra=self.extra)

    def response(self) -> JSONResponse:
        return JSONResponse(self.body(), status_code=self.status, headers=self.headers)


def invalid(param: str, message: str, code: str = "invalid_value") -> GatewayError:
    """A 400 about one request field, named in ``param``."""
    return GatewayError(400, message, code=code, param=param)


def type_error(param: str, expected: str, value: Any) -> GatewayError:
    """A 400 ``invalid_type`` for a field of the wrong JSON type."""
    return invalid(param, f"Invalid type for '{param}': expected {expected}, got "
                          f"{type(value).__name__}.", code="invalid_type")


def error_body(status: int, message: str, *, code: str | None = None, param: str | None = None,
               extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    err: dict[str, Any] = {
        "message": message,
        "type": _TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error"),
        "param": param,
        "code": code,
    }
    err.update(extra or {})
    return {"error": err}


def content_filter_result(verdicts: list[Verdict]) -> dict[str, dict[str, Any]]:
    """Azure's per-category ``{filtered, severity}`` shape, with our score and
    decision beside it, merged over several verdicts (the most severe wins);
    the policy's blocklists that matched in Azure's ``custom_blocklists``
    entry (``{filtered, details: [{filtered, id}]}``), its denied topics in
    ``denied_topics`` of the same shape."""
    out: dict[str, dict[str, Any]] = {}
    for key, names in (("custom_blocklists", lambda v: v.blocklists),
                       ("denied_topics", lambda v: v.topics)):
        hit: dict[str, bool] = {}
        for v in verdicts:
            for name in names(v):
                hit[name] = hit.get(name, False) or v.blocked
        if hit:
            out[key] = {"filtered": any(hit.values()),
                        "details": [{"filtered": f, "id": name} for name, f in hit.items()]}
    for v in verdicts:
        for cat, score in v.scores.items():
            # ``harm`` is the overall score a named category is attributed
            # under (no category scores above it): filtered whenever a
            # classifier category blocked
            filtered = v.blocked and (cat in v.categories or (cat == HARM and bool(v.categories)))
            prev = out.get(cat)
            entry = {
                "filtered": filtered or bool(prev and prev["filtered"]),
                "severity": _severity(float(score)),
                "score": round(float(score), 4),
            }
            if prev is None or entry["score"] > prev["score"] or entry["filtered"]:
                out[cat] = entry
    return out


def _severity(score: float) -> str:
    # Azure's four levels, read off our probability so Azure-aware clients
    # can show something meaningful.
    if score >= 0.8:
        return "high"
    if score >= 0.5:
        return "medium"
    if score >= 0.2:
        return "low"
    return "safe"


def what_blocked(verdicts: Sequence[Verdict]) -> str:
    """What the blocking verdicts name, for a refusal's message: "categories:
    weapons; blocklists: code_names; topics: investment_advice" ("" if none)."""
    blocking = [v for v in verdicts if v.blocked]
    named = (("categories", {c for v in blocking for c in v.categories}),
             ("blocklists", {b for v in blocking for b in v.blocklists}),
             ("topics", {t for v in blocking for t in v.topics}))
    return "; ".join(f"{what}: {', '.join(sorted(ids))}" for what, ids in named if ids)


def blocked_prompt(verdicts: list[Verdict], *, earlier: bool = False) -> GatewayError:
    """``earlier``: the blocked message is an earlier user message of the
    conversation, which the model would read again (gateway.history)."""
    return blocked("prompt", verdicts, earlier=earlier)


def blocked(role: Literal["prompt", "response"], verdicts: list[Verdict], *,
            earlier: bool = False) -> GatewayError:
    """The ``content_filter`` error for a blocked prompt or response (the
    gateway itself withholds a blocked answer; the LiteLLM guardrail raises
    this body)."""
    reason = next((v.reason for v in verdicts if v.blocked), "")
    if any(v.blocked and v.status.value != "ok" for v in verdicts):
        message = (f"The {role} could not be checked and the policy fails closed: "
                   f"{reason}")
    elif earlier:
        named = what_blocked(verdicts)
        message = ("A message earlier in the conversation was blocked by the content policy" +
                   (f" ({named})" if named else "") + "; the model would read it again with "
                   "this one. Remove it from the conversation or start a new one.")
    else:
        named = what_blocked(verdicts)
        message = f"The {role} was blocked by the content policy" + \
            (f" ({named})" if named else "") + "."
    return GatewayError(
        400, message, code="content_filter", param="prompt" if role == "prompt" else None,
        extra={"innererror": {"code": "ResponsibleAIPolicyViolation",
                              "content_filter_result": content_filter_result(verdicts)}},
    )


def indirect_attack_result(verdicts: list[Verdict]) -> dict[str, bool]:
    """Azure's ``indirect_attack`` entry (Prompt Shields for documents):
    whether the tool-result check found an injection, and whether it blocked."""
    return {"filtered": any(v.blocked for v in verdicts),
            "detected": any(v.categories for v in verdicts)}


def blocked_tool_output(verdicts: list[Verdict]) -> GatewayError:
    """The 400 for a request whose tool result reads as a prompt injection."""
    reason = next((v.reason for v in verdicts if v.blocked), "")
    return GatewayError(
        400, "A tool result in the conversation reads as a prompt injection (instructions to the "
             f"model planted in the content) and was blocked by the content policy: {reason}.",
        code="content_filter", param="messages",
        extra={"innererror": {"code": "ResponsibleAIPolicyViolation",
                              "content_filter_result": {
                                  "indirect_attack": indirect_attack_result(verdicts)}}})
