"""A small OpenTelemetry collector for tests: a real HTTP server that takes
OTLP/HTTP trace exports (``POST /v1/traces``, protobuf), or a real gRPC
server that takes OTLP/gRPC ones (``TraceService/Export``), as the collector
a deployment runs does, and keeps the spans it was sent, decoded."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from tests.gateway.serving import serve_app

KINDS = {1: "internal", 2: "server", 3: "client", 4: "producer", 5: "consumer"}


@dataclass(frozen=True)
class Span:
    name: str
    kind: str
    trace_id: str
    span_id: str
    parent_id: str
    start_ns: int
    end_ns: int
    status: int          # 0 unset, 1 ok, 2 error
    attributes: dict[str, Any]
    resource: dict[str, Any]


def _value(v: AnyValue) -> Any:
    field = v.WhichOneof("value")
    if field == "array_value":
        return [_value(x) for x in v.array_value.values]
    return getattr(v, field) if field else None


class Collector:
    def __init__(self) -> None:
        self.spans: list[Span] = []
        self.lock = threading.Lock()
        self.url = ""

    async def traces(self, request: Request) -> Response:
        export = ExportTraceServiceRequest()
        export.ParseFromString(await request.body())
        self.add(export)
        return Response(ExportTraceServiceResponse().SerializeToString(),
                        media_type="application/x-protobuf")

    def add(self, export: ExportTraceServiceRequest) -> None:
        with self.lock:
            for rs in export.resource_spans:
                resource = {a.key: _value(a.value) for a in rs.resource.attributes}
                for ss in rs.scope_spans:
                    for s in ss.spans:
                        self.spans.append(Span(
                            s.name, KINDS.get(s.kind, "unspecified"), s.trace_id.hex(),
                            s.span_id.hex(), s.parent_span_id.hex(), s.start_time_unix_nano,
                            s.end_time_unix_nano, s.status.code,
                            {a.key: _value(a.value) for a in s.attributes}, resource))

    def named(self, name: str) -> list[Span]:
        with self.lock:
            return [s for s in self.spans if s.name == name]


@contextmanager
def running_collector() -> Iterator[Collector]:
    collector = Collector()
    app = Starlette(routes=[Route("/v1/traces", collector.traces, methods=["POST"])])
    with serve_app(app) as url:
        collector.url = url
        yield collector


@contextmanager
def running_grpc_collector() -> Iterator[Collector]:
    """The collector on a real gRPC server (plaintext, a free port);
    ``url`` is ``http://127.0.0.1:PORT``."""
    from concurrent import futures

    import grpc
    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc

    collector = Collector()

    class Service(trace_service_pb2_grpc.TraceServiceServicer):
        def Export(self, request: ExportTraceServiceRequest, context: Any
                   ) -> ExportTraceServiceResponse:
            collector.add(request)
            return ExportTraceServiceResponse()

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(Service(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    collector.url = f"http://127.0.0.1:{port}"
    try:
        yield collector
    finally:
        server.stop(grace=None)
