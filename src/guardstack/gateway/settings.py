"""Gateway settings: one table of ``(name, default, help)`` feeding the CLI
flags, docs/gateway.md and validation."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from guardstack.gateway.tracing import check_endpoint, otlp_protocol
from guardstack.urls import normalize_base_url


@dataclass(frozen=True, slots=True)
class Setting:
    name: str
    default: Any
    help: str


#: Every ``guardstack serve`` setting. The CLI flag is ``--`` + name with
#: ``_`` written as ``-``.
SETTINGS: tuple[Setting, ...] = (
    Setting("upstream", None,
            "Base URL of the OpenAI-compatible model server (e.g. "
            "http://127.0.0.1:8080/v1; a URL without a path gets /v1). Required unless --routes "
            "names the servers; with --routes, the server for model names no route matches."),
    Setting("routes", None,
            "YAML file naming which model server serves which model names, for several "
            "servers behind one gateway (routes: a list of {model: pattern, upstream: URL, "
            "api_key: os.environ/NAME}; first match wins; docs/deploy.md)."),
    Setting("upstream_api_key", None,
            "Bearer key the gateway sends upstream. Give it as an environment variable "
            "reference (os.environ/NAME); never written to config files."),
    Setting("host", "127.0.0.1", "Address to listen on."),
    Setting("port", 8000, "Port to listen on."),
    Setting("policy", None, "Policy file (YAML); the shipped default policy when omitted."),
    Setting("tenant_policies", None,
            "Folder of per-tenant policy files, TENANT.yaml: requests whose API key belongs "
            "to that tenant are judged by its file, others by --policy. Each must name the "
            "same detector (the classifier is shared)."),
    Setting("db", None,
            "Event store URL (sqlite:///path or postgresql://...); $GUARDSTACK_DB when "
            "omitted, else sqlite:///guardstack.db in the working directory."),
    Setting("spool", None,
            "File events wait in while the store does not answer, replayed when it does "
            "(default: next to a SQLite file as FILE.spool.jsonl, else "
            "./guardstack-spool.jsonl). One process per spool: give each gateway process on "
            "one host its own."),
    Setting("redact", False,
            "Replace e-mail addresses, phone numbers and card numbers in recorded text "
            "before it is stored."),
    Setting("open", False,
            "Accept requests without an API key (local use). Requests are then attributed "
            "to the OpenAI 'user' field (or 'safety_identifier', or the end_user_header), or "
            "'anonymous'."),
    Setting("end_user_header", "X-OpenWebUI-User-Id",
            "Request header naming the end user when the body names none (Open WebUI sends "
            "this one with ENABLE_FORWARD_USER_INFO_HEADERS; Ollama's API has no 'user' "
            "field). Read for keys issued with --end-users and in --open mode; empty: never."),
    Setting("classifier_threads", 1,
            "ONNX Runtime threads per call of the built-in fast detector (0: its own default). "
            "1 measured best on 2 cores: two checks run side by side and the event loop keeps "
            "its core."),
    Setting("classifier_calls", 2,
            "Classifier calls that may run at once; checks arriving meanwhile are batched "
            "into the next call."),
    Setting("hold_back", 16,
            "Streamed output: how many tokens the gateway holds back until they are checked. "
            "0 streams every token at once (lowest latency; unsafe text can reach the client "
            "before a halt)."),
    Setting("check_every", 16,
            "Streamed output: check at least every N tokens (and at each sentence end)."),
    Setting("window_tokens", 256,
            "Streamed output: how many of the latest response tokens each check judges."),
    Setting("max_body_bytes", 1_048_576, "Largest request body accepted (bytes); larger is 413."),
    Setting("upstream_timeout", 120.0,
            "Seconds to wait for the upstream's response headers or its next chunk; then 504."),
    Setting("connect_timeout", 5.0, "Seconds to wait for a connection to the upstream."),
    Setting("keep_alive", 75.0,
            "Seconds an idle client connection stays open. Longer than client pools keep idle "
            "connections, so a reused connection is not closed under the client's request."),
    Setting("rate_limit", 10.0,
            "Requests per second each user may make (token bucket); 0 turns limits off."),
    Setting("rate_burst", 20, "Bucket size: requests a user may make at once."),
    Setting("rate_limited_factor", 0.1,
            "Share of rate_limit left to a user whose account state is rate_limited."),
    Setting("shared_rate_limits", False,
            "Keep the rate limits' buckets in the event store (--db), so every gateway "
            "replica on that store shares each user's limit; off: each process has its own "
            "(N replicas allow N times the rate). Replicas on several hosts share a PostgreSQL "
            "store; processes on one host may share a SQLite file, each with its own --spool. "
            "While the store does not answer, each process limits on its own."),
    Setting("state_ttl", 5.0, "Seconds key lookups and account states are cached."),
    Setting("blocked_message", "",
            "Content returned in place of a blocked non-streamed completion."),
    Setting("keep_developer_role", False,
            "Forward OpenAI 'developer' messages as they are. Off: they go upstream as "
            "'system', the only instruction role open-weight chat templates and llama.cpp's "
            "server know."),
    Setting("reload_every", 0.0,
            "Seconds between looks at --policy, --tenant-policies and --routes: when one "
            "changed (a Kubernetes ConfigMap update, a deploy), they are re-read as on SIGHUP, "
            "all or nothing. 0: only on SIGHUP."),
    Setting("stored_responses", 1000,
            "Responses API answers kept in memory (per process, oldest dropped first) for "
            "previous_response_id; 0 refuses previous_response_id."),
    Setting("stored_responses_ttl", 86400.0,
            "Seconds a Responses API answer may be continued with previous_response_id; "
            "then it is forgotten, in memory and in the store."),
    Setting("shared_responses", False,
            "Also keep Responses API answers in the event store (--db), so a client can "
            "continue one with previous_response_id on any replica, not only the one that "
            "answered. The conversation is stored as sent (--redact does not apply) for "
            "--stored-responses-ttl; `guardstack purge` deletes it with traffic of its age. "
            "While the store does not answer, each process continues its own answers."),
    Setting("otlp_traces_endpoint", None,
            "Send OpenTelemetry traces to this collector: over OTLP/HTTP a URL "
            "(http://collector:4318 means its /v1/traces), over gRPC host:port or "
            "http(s)://host:port (--otlp-traces-protocol). A span per exchange, its checks "
            "and its call upstream, whose traceparent vLLM's own tracing continues. No text "
            "or user id goes into a span. Needs guardstack[tracing]."),
    Setting("otlp_traces_protocol", None,
            "http/protobuf or grpc (vLLM's default; a collector listens on 4317 for it). "
            "Unset: the SDK's OTEL_EXPORTER_OTLP_TRACES_PROTOCOL or OTEL_EXPORTER_OTLP_PROTOCOL, "
            "else http/protobuf."),
)

DEFAULTS: dict[str, Any] = {s.name: s.default for s in SETTINGS}


@dataclass(frozen=True, slots=True)
class GatewaySettings:
    upstream: str | None = "http://127.0.0.1:8080/v1"
    upstream_api_key: str | None = None
    routes: str | None = None
    host: str = DEFAULTS["host"]
    port: int = DEFAULTS["port"]
    policy: str | None = None
    tenant_policies: str | None = None
    db: str | None = None
    spool: str | None = None
    redact: bool = False
    open: bool = False
    classifier_threads: int = DEFAULTS["classifier_threads"]
    classifier_calls: int = DEFAULTS["classifier_calls"]
    hold_back: int = DEFAULTS["hold_back"]
    check_every: int = DEFAULTS["check_every"]
    window_tokens: int = DEFAULTS["window_tokens"]
    max_body_bytes: int = DEFAULTS["max_body_bytes"]
    upstream_timeout: float = DEFAULTS["upstream_timeout"]
    connect_timeout: float = DEFAULTS["connect_timeout"]
    keep_alive: float = DEFAULTS["keep_alive"]
    rate_limit: float = DEFAULTS["rate_limit"]
    rate_burst: int = DEFAULTS["rate_burst"]
    rate_limited_factor: float = DEFAULTS["rate_limited_factor"]
    shared_rate_limits: bool = DEFAULTS["shared_rate_limits"]
    state_ttl: float = DEFAULTS["state_ttl"]
    blocked_message: str = DEFAULTS["blocked_message"]
    end_user_header: str = DEFAULTS["end_user_header"]
    keep_developer_role: bool = DEFAULTS["keep_developer_role"]
    stored_responses: int = DEFAULTS["stored_responses"]
    stored_responses_ttl: float = DEFAULTS["stored_responses_ttl"]
    shared_responses: bool = DEFAULTS["shared_responses"]
    otlp_traces_endpoint: str | None = DEFAULTS["otlp_traces_endpoint"]
    otlp_traces_protocol: str | None = DEFAULTS["otlp_traces_protocol"]
    reload_every: float = DEFAULTS["reload_every"]
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        problems = []
        if self.upstream is None:
            if self.routes is None:
                problems.append("upstream: required unless routes names the model servers")
        else:
            try:
                # "http://host:8080" means its OpenAI API, under /v1 on every server
                object.__setattr__(self, "upstream", normalize_base_url(self.upstream))
            except ValueError:
                problems.append(f"upstream: must be an http(s) URL, got {self.upstream!r}")
        for name in ("hold_back", "port", "classifier_threads", "stored_responses"):
            if getattr(self, name) < 0:
                problems.append(f"{name}: must be >= 0, got {getattr(self, name)!r}")
        if self.port > 65535:
            problems.append(f"port: must be at most 65535, got {self.port!r}")
        for name in ("check_every", "window_tokens", "classifier_calls", "max_body_bytes",
                     "rate_burst"):
            if getattr(self, name) < 1:
                problems.append(f"{name}: must be >= 1, got {getattr(self, name)!r}")
        for name in ("upstream_timeout", "connect_timeout", "state_ttl", "keep_alive",
                     "stored_responses_ttl"):
            if getattr(self, name) <= 0:
                problems.append(f"{name}: must be > 0, got {getattr(self, name)!r}")
        if self.window_tokens < self.check_every:
            problems.append(f"window_tokens ({self.window_tokens}) must be >= check_every "
                            f"({self.check_every}), or some tokens would never be checked")
        protocol = None
        if self.otlp_traces_endpoint is not None or self.otlp_traces_protocol is not None:
            try:  # the environment's choice matters only when tracing is on
                protocol = otlp_protocol(self.otlp_traces_protocol)
            except ValueError as exc:
                problems.append(f"otlp_traces_protocol: {exc}")
        if self.otlp_traces_endpoint is not None and protocol is not None:
            try:
                check_endpoint(self.otlp_traces_endpoint, protocol)
            except ValueError:
                what = ("host:port or http(s)://host:port" if protocol == "grpc"
                        else "an http(s) URL")
                problems.append(f"otlp_traces_endpoint: must be {what} for {protocol}, got "
                                f"{self.otlp_traces_endpoint!r}")
        if self.rate_limit < 0:
            problems.append(f"rate_limit: must be >= 0, got {self.rate_limit!r}")
        if self.reload_every < 0:
            problems.append(f"reload_every: must be >= 0, got {self.reload_every!r}")
        if not 0 < self.rate_limited_factor <= 1:
            problems.append(
                f"rate_limited_factor: must be in (0, 1], got {self.rate_limited_factor!r}")
        if problems:
            raise ValueError("; ".join(problems))

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls) if f.name != "extra")


def settings_markdown() -> str:
    """The settings table as docs/gateway.md shows it (a test keeps them equal)."""
    rows = ["| flag | default | what it does |", "| --- | --- | --- |"]
    for s in SETTINGS:
        flag = "--" + s.name.replace("_", "-")
        if s.default is False:
            default = "off"
        elif s.default is None:
            default = "—"
        elif s.default == "":
            default = "(empty)"
        else:
            default = str(s.default)
        rows.append(f"| `{flag}` | {default} | {s.help} |")
    return "\n".join(rows) + "\n"
