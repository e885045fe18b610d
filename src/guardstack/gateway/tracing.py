"""OpenTelemetry traces of the gateway's exchanges (``serve
--otlp-traces-endpoint URL``), so a platform team sees in its tracing backend
where a request's time went: the checks, or the model server.

Each exchange is a ``SERVER`` span named after its route (``POST
/v1/chat/completions``), the child of the caller's span when the request
carries W3C ``traceparent``. Under it:

* ``guardstack.check prompt`` / ``response`` / ``tool``: each call to the
  classifier (a stream's output check is one span per check), with the
  decision, the highest harm score and the categories that crossed;
* the call to the model server, a ``CLIENT`` span named ``POST
  /v1/chat/completions`` (to the response headers, as ``upstream_ms``)
  whose context goes upstream in ``traceparent``: vLLM started with its own
  ``--otlp-traces-endpoint`` continues the same trace.

The exchange's span ends when the exchange is recorded, so a stream's span
lasts until its last byte, a halt included. Attributes follow OpenTelemetry's
HTTP and GenAI semantic conventions where one exists (``http.route``,
``gen_ai.request.model``, ...) and are ``guardstack.*`` otherwise. No text
and no user id goes into a span: ``guardstack.exchange_id`` joins a trace to
the event store's record, where access is audited.

The span of the exchange in progress rides in a context variable, so the
judge and the upstream client add their spans without being handed it; when
tracing is off that variable is never set and each would-be span costs one
lookup. Spans are exported in batches by a background thread over OTLP/HTTP
(protobuf) or OTLP/gRPC (``--otlp-traces-protocol grpc``, or the SDK's
``OTEL_EXPORTER_OTLP_TRACES_PROTOCOL``: vLLM's default, port 4317); a
collector that is down loses spans, never requests. Sampling
follows the SDK's environment (``OTEL_TRACES_SAMPLER``; by default every
trace, or the caller's decision), and ``OTEL_SERVICE_NAME`` renames the
service (``guardstack``).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter
    from opentelemetry.trace import Span, Tracer
    from starlette.requests import Request

    from guardstack.gateway.recorder import Exchange
    from guardstack.verdict import Verdict


@dataclass(frozen=True, slots=True)
class _Current:
    """The exchange this task serves: its tracer, and the context its
    children start in (its span's)."""
    tracer: Tracer
    context: Context


#: Unset (None) while the exchange is not traced.
_CURRENT: ContextVar[_Current | None] = ContextVar("guardstack_trace", default=None)

#: What each endpoint is, as GenAI's ``gen_ai.operation.name``.
_OPERATIONS = {"chat.completions": "chat", "responses": "chat", "messages": "chat",
               "ollama.chat": "chat", "completions": "text_completion",
               "ollama.generate": "text_completion", "embeddings": "embeddings",
               "ollama.embed": "embeddings", "ollama.embeddings": "embeddings"}


class TracingUnavailable(RuntimeError):
    """The OpenTelemetry SDK is not installed (``pip install 'guardstack[tracing]'``)."""


#: OTLP's transports, named as ``OTEL_EXPORTER_OTLP_PROTOCOL`` names them.
PROTOCOLS = ("http/protobuf", "grpc")


def otlp_protocol(value: str | None = None) -> str:
    """The OTLP transport: ``value``, else the SDK's environment
    (``OTEL_EXPORTER_OTLP_TRACES_PROTOCOL``, ``OTEL_EXPORTER_OTLP_PROTOCOL``),
    else ``http/protobuf``."""
    chosen = (value or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
              or os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL") or "http/protobuf")
    if chosen not in PROTOCOLS:
        raise ValueError(f"OTLP protocol must be one of {', '.join(PROTOCOLS)}, got {chosen!r}")
    return chosen


def grpc_target(endpoint: str) -> tuple[str, bool | None]:
    """The gRPC exporter's endpoint and whether it is plaintext: ``http://``
    is, ``https://`` is not; a bare ``host:port`` or ``grpc://host:port``
    (vLLM's forms) leaves it to the SDK (``OTEL_EXPORTER_OTLP_TRACES_INSECURE``,
    TLS by default)."""
    parts = urlsplit(endpoint if "://" in endpoint else f"//{endpoint}")
    if parts.scheme not in ("", "http", "https", "grpc") or not parts.hostname \
            or parts.path not in ("", "/"):
        raise ValueError(f"not a gRPC endpoint (host:port or http(s)://host:port): "
                         f"{endpoint!r}")
    return endpoint, {"http": True, "https": False}.get(parts.scheme)


def check_endpoint(endpoint: str, protocol: str | None = None) -> None:
    """Raise ValueError unless ``endpoint`` suits the protocol."""
    if otlp_protocol(protocol) == "grpc":
        grpc_target(endpoint)
    else:
        traces_url(endpoint)


def traces_url(endpoint: str) -> str:
    """Where spans are posted: ``endpoint`` as given, or with OTLP's
    ``/v1/traces`` when it names only a host (``http://collector:4318``)."""
    parts = urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"not an http(s) URL: {endpoint!r}")
    if parts.path in ("", "/"):
        return urlunsplit(parts._replace(path="/v1/traces"))
    return endpoint


class Tracing:
    """The gateway's tracer: spans exported to ``endpoint`` over OTLP
    (``protocol``: ``http/protobuf`` or ``grpc``, see :func:`otlp_protocol`),
    or to ``exporter`` (any OpenTelemetry ``SpanExporter``). Call
    :meth:`shutdown` at the end to send what is still queued."""

    def __init__(self, endpoint: str | None = None, *, protocol: str | None = None,
                 exporter: SpanExporter | None = None, timeout_s: float = 5.0) -> None:
        try:
            from opentelemetry.sdk.resources import Resource
            from opentelemetry.sdk.trace import TracerProvider
            from opentelemetry.sdk.trace.export import BatchSpanProcessor
        except ModuleNotFoundError as exc:
            raise TracingUnavailable(
                f"tracing needs the OpenTelemetry SDK ({exc.name} is missing): "
                "pip install 'guardstack[tracing]'") from None
        from guardstack import __version__

        if exporter is None:
            if endpoint is None:
                raise ValueError("Tracing needs an endpoint or an exporter")
            # A short timeout: a collector that is away must not hold up a
            # gateway's shutdown for long.
            exporter = _exporter(endpoint, otlp_protocol(protocol), timeout_s)
        #: OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES still apply
        resource = Resource.create({"service.name": "guardstack",
                                    "service.version": __version__})
        self.provider: TracerProvider = TracerProvider(resource=resource)
        self.provider.add_span_processor(BatchSpanProcessor(exporter))
        self.tracer = self.provider.get_tracer("guardstack", __version__)
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        self._w3c = TraceContextTextMapPropagator()

    def begin(self, exchange: Exchange, request: Request) -> None:
        """Start ``exchange``'s span, the child of the caller's
        ``traceparent`` if it sent one; it is current in this task."""
        from opentelemetry.trace import SpanKind, set_span_in_context

        route = request.scope.get("route")
        path = getattr(route, "path", None) or request.url.path
        span = self.tracer.start_span(
            f"{request.method} {path}", context=self._w3c.extract(request.headers),
            kind=SpanKind.SERVER,
            attributes={"http.request.method": request.method, "http.route": path,
                        "url.path": request.url.path,
                        "guardstack.exchange_id": exchange.id,
                        "guardstack.endpoint": exchange.endpoint})
        exchange.trace = span
        _CURRENT.set(_Current(self.tracer, set_span_in_context(span)))

    def end(self, exchange: Exchange) -> None:
        """End ``exchange``'s span with what the exchange came to."""
        from opentelemetry.trace import StatusCode

        span = exchange.trace
        if span is None:
            return
        exchange.trace = None
        attributes: dict[str, Any] = {
            "guardstack.decision": exchange.decision,
            "guardstack.stream": exchange.stream,
            "guardstack.halted": exchange.halted,
            "guardstack.classifier_ms": round(exchange.classifier_ms, 3),
        }
        operation = _OPERATIONS.get(exchange.endpoint)
        if operation is not None:
            attributes["gen_ai.operation.name"] = operation
        if exchange.model:
            attributes["gen_ai.request.model"] = str(exchange.model)
        if exchange.finish_reason:
            attributes["gen_ai.response.finish_reasons"] = [exchange.finish_reason]
        if exchange.status_code is not None:
            attributes["http.response.status_code"] = exchange.status_code
        if exchange.tenant:
            attributes["guardstack.tenant"] = exchange.tenant
        if exchange.stream:
            attributes["guardstack.tokens_streamed"] = exchange.tokens_streamed
        if exchange.client_disconnected:
            attributes["guardstack.client_disconnected"] = True
        if exchange.tactics:
            attributes["guardstack.jailbreak_tactics"] = list(exchange.tactics)
        crossed = sorted({c for v in (*exchange.prompt_verdicts, *exchange.response_verdicts,
                                      *exchange.tool_verdicts) for c in v.categories})
        if crossed:
            attributes["guardstack.categories"] = crossed
        span.set_attributes(attributes)
        if exchange.status_code is not None and exchange.status_code >= 500:
            span.set_attribute("error.type", str(exchange.status_code))
            span.set_status(StatusCode.ERROR, f"HTTP {exchange.status_code}")
        end = exchange.finished_at
        span.end(end_time=None if end is None else int(end * 1e9))

    def shutdown(self) -> None:
        """Export what is queued and stop the exporter's thread."""
        self.provider.shutdown()


def _exporter(endpoint: str, protocol: str, timeout_s: float) -> SpanExporter:
    try:
        if protocol == "grpc":
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
                OTLPSpanExporter as GrpcExporter,
            )

            target, insecure = grpc_target(endpoint)
            return GrpcExporter(endpoint=target, insecure=insecure, timeout=timeout_s)
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
            OTLPSpanExporter as HttpExporter,
        )
    except ModuleNotFoundError as exc:
        raise TracingUnavailable(
            f"tracing over {protocol} needs the OTLP exporter ({exc.name} is missing): "
            "pip install 'guardstack[tracing]'") from None
    return HttpExporter(endpoint=traces_url(endpoint), timeout=timeout_s)


@contextlib.contextmanager
def check(role: str, subjects: int, detector: str) -> Iterator[Span | None]:
    """A span around one call to the classifier for this task's exchange
    (None, and nothing recorded, when the exchange is not traced). Record
    the verdicts on it with :func:`verdicts`."""
    current = _CURRENT.get()
    if current is None:
        yield None
        return
    span = current.tracer.start_span(
        f"guardstack.check {role}", context=current.context,
        attributes={"guardstack.role": role, "guardstack.subjects": subjects,
                    "guardstack.detector": detector})
    try:
        yield span
    finally:
        span.end()


def verdicts(span: Span | None, judged: Sequence[Verdict]) -> None:
    """The decision, highest harm score, categories and status of one check."""
    if span is None or not judged:
        return
    from guardstack.verdict import Status, most_severe

    worst = most_severe(judged)
    span.set_attributes({
        "guardstack.decision": worst.decision.value if worst is not None else "allow",
        "guardstack.harm": max(v.scores.get("harm", 0.0) for v in judged),
        "guardstack.categories": sorted({c for v in judged for c in v.categories}),
        "guardstack.status": "error" if any(v.status is Status.ERROR for v in judged)
        else "ok",
    })


@contextlib.contextmanager
def upstream_call(method: str, url: str) -> Iterator[tuple[Span | None, Mapping[str, str]]]:
    """A ``CLIENT`` span around one request to the model server, and the
    W3C headers (``traceparent``, and ``tracestate`` when the caller sent
    one) that carry it upstream; ``(None, {})`` when the exchange is not
    traced. An exception marks the span as an error."""
    current = _CURRENT.get()
    if current is None:
        yield None, {}
        return
    from opentelemetry.trace import SpanKind, StatusCode

    parts = urlsplit(url)
    attributes: dict[str, Any] = {"http.request.method": method, "url.path": parts.path,
                                  "server.address": parts.hostname or ""}
    if parts.port is not None:
        attributes["server.port"] = parts.port
    span = current.tracer.start_span(f"{method} {parts.path}", context=current.context,
                                     kind=SpanKind.CLIENT, attributes=attributes)
    ids = span.get_span_context()
    # As the W3C propagator writes them, without building a context to inject.
    headers = {"traceparent": f"00-{ids.trace_id:032x}-{ids.span_id:016x}-"
                              f"{int(ids.trace_flags):02x}"}
    if ids.trace_state:
        headers["tracestate"] = ids.trace_state.to_header()
    try:
        yield span, headers
    except BaseException as exc:
        span.set_status(StatusCode.ERROR, type(exc).__name__)
        raise
    finally:
        span.end()
