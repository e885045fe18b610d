"""What OpenTelemetry tracing (``serve --otlp-traces-endpoint``) costs per request.

    .venv/bin/python benchmarks/bench_tracing.py [--requests 400] [--stream] [--ratio R]
                                                 [--protocol http/protobuf|grpc]

Runs the stub upstream of ``bench_gateway.py``, an OTLP/HTTP collector that
accepts every export (its own process, as a deployment's collector is), and
two ``guardstack serve`` processes on the same upstream: one without
tracing (the baseline), one sending its spans to the collector. Requests
alternate between the two, one at a time, so both see the same machine.
Prints each gateway's median and p90 latency and the difference of medians,
and how many spans reached the collector. ``--ratio R`` samples a share R of
the traces (``OTEL_TRACES_SAMPLER=parentbased_traceidratio``). ``--protocol
grpc``: the collector takes OTLP/gRPC and the traced gateway sends over it.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench_gateway import (  # noqa: E402  (a sibling script)
    FLAG_ONLY,
    body,
    free_port,
    pct,
    run_stub,
    wait_ready,
)


def run_collector(port: int, counter: multiprocessing.Value) -> None:  # type: ignore[valid-type]
    import uvicorn
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
        ExportTraceServiceResponse,
    )
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    async def traces(request: Request) -> Response:
        export = ExportTraceServiceRequest()
        export.ParseFromString(await request.body())
        n = sum(len(ss.spans) for rs in export.resource_spans for ss in rs.scope_spans)
        with counter.get_lock():
            counter.value += n
        return Response(ExportTraceServiceResponse().SerializeToString(),
                        media_type="application/x-protobuf")

    uvicorn.run(Starlette(routes=[Route("/v1/traces", traces, methods=["POST"])]),
                host="127.0.0.1", port=port, log_level="warning")


def run_grpc_collector(port: int, counter: multiprocessing.Value) -> None:  # type: ignore[valid-type]
    from concurrent import futures

    import grpc
    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceResponse,
    )

    class Service(trace_service_pb2_grpc.TraceServiceServicer):
        def Export(self, request, context):
            n = sum(len(ss.spans) for rs in request.resource_spans for ss in rs.scope_spans)
            with counter.get_lock():
                counter.value += n
            return ExportTraceServiceResponse()

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(Service(), server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    server.wait_for_termination()


def serve(upstream: str, workdir: Path, tag: str, *extra: str,
          env: dict[str, str] | None = None) -> tuple[subprocess.Popen, str]:
    port = free_port()
    policy = workdir / "policy.yaml"
    policy.write_text(FLAG_ONLY)
    proc = subprocess.Popen(
        [sys.executable, "-m", "guardstack", "serve", "--upstream", upstream, "--port", str(port),
         "--open", "--rate-limit", "0", "--db", f"sqlite:///{workdir / f'{tag}.db'}",
         "--spool", str(workdir / f"{tag}.spool"), "--policy", str(policy),
         "--log-level", "warning", *extra], cwd=workdir, env={**os.environ, **(env or {})})
    url = f"http://127.0.0.1:{port}"
    wait_ready(url + "/readyz", proc, f"gateway {tag}")
    return proc, url


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--stream", action="store_true", help="streamed completions")
    parser.add_argument("--ratio", type=float, help="share of traces sampled (default: all)")
    parser.add_argument("--protocol", choices=("http/protobuf", "grpc"), default="http/protobuf")
    args = parser.parse_args()
    stub_port, collector_port = free_port(), free_port()
    spans = multiprocessing.Value("q", 0)
    children = [multiprocessing.Process(target=run_stub, args=(stub_port, 32, 0.0), daemon=True),
                multiprocessing.Process(target=run_grpc_collector if args.protocol == "grpc"
                                        else run_collector, args=(collector_port, spans),
                                        daemon=True)]
    for child in children:
        child.start()
    procs = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        upstream = f"http://127.0.0.1:{stub_port}/v1"
        try:
            plain, plain_url = serve(upstream, work, "plain")
            procs.append(plain)
            sampling = {} if args.ratio is None else {
                "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
                "OTEL_TRACES_SAMPLER_ARG": str(args.ratio)}
            traced, traced_url = serve(upstream, work, "traced", "--otlp-traces-endpoint",
                                       f"http://127.0.0.1:{collector_port}",
                                       "--otlp-traces-protocol", args.protocol, env=sampling)
            procs.append(traced)
            times: dict[str, list[float]] = {"without tracing": [], "with tracing": []}
            with httpx.Client(timeout=60) as client:
                for url in (plain_url, traced_url):  # warm both
                    for _ in range(20):
                        client.post(url + "/v1/chat/completions", json=body(args.stream))
                for _ in range(args.requests):
                    for name, url in (("without tracing", plain_url),
                                      ("with tracing", traced_url)):
                        start = time.perf_counter()
                        r = client.post(url + "/v1/chat/completions", json=body(args.stream))
                        r.read()
                        times[name].append((time.perf_counter() - start) * 1000)
                        assert r.status_code == 200, r.text
        finally:
            for proc in procs:
                proc.terminate()
                proc.wait(timeout=60)
    for child in children:
        child.terminate()
    print(f"{args.requests} {'streamed' if args.stream else 'non-streamed'} requests per "
          f"gateway, alternated; spans over {args.protocol}")
    print(f"{'gateway':18s} {'p50 ms':>8s} {'p90 ms':>8s}")
    for name, values in times.items():
        print(f"{name:18s} {statistics.median(values):8.2f} {pct(values, 90):8.2f}")
    diff = statistics.median(times["with tracing"]) - statistics.median(times["without tracing"])
    print(f"difference of medians: {diff * 1000:+.0f} us")
    print(f"spans received by the collector: {spans.value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
