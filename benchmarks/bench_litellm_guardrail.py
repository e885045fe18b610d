"""What the LiteLLM guardrail adds to a request: the time its prompt check
takes, in-process and remote (a gateway on loopback), called as LiteLLM's
proxy calls ``async_pre_call_hook``; and, with ``--streams N``, the streamed
output check on one answer as chat chunks (LiteLLM's ``ModelResponseStream``)
and as the raw Anthropic SSE frames of a ``/v1/messages`` stream, alternated,
so the frame reading's cost shows as their difference.

    python benchmarks/bench_litellm_guardrail.py
    python benchmarks/bench_litellm_guardrail.py --checks 500
    python benchmarks/bench_litellm_guardrail.py --checks 0 --streams 40

Both modes use the shipped default policy and fast classifier; the remote
gateway runs in this process (its own thread and event loop, as uvicorn
serves it) so the numbers include the HTTP round trip but no network.
Prints p50 and p95 per mode, after ``--warmup`` checks.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import tempfile
import threading
import time
from collections.abc import AsyncIterator

# litellm fetches its price map from the internet on import; not needed here.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import uvicorn
from litellm.caching.caching import DualCache
from litellm.types.proxy.auth.user_api_key_auth import UserAPIKeyAuth

from guardstack.gateway.app import create_app
from guardstack.gateway.settings import GatewaySettings
from guardstack.integrations.litellm_guardrail import GuardstackGuardrail

PROMPTS = [
    "What is a good name for a pet goldfish?",
    "How long should I boil an egg for a runny yolk?",
    "What were the main causes of the First World War?",
    "Can you recommend a vegetarian lasagna recipe?",
]


def serve_gateway() -> tuple[str, uvicorn.Server, threading.Thread]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # /v1/moderations never calls the upstream; none runs. The store goes to a scratch
    # folder, not the default guardstack.db in the working directory.
    db = f"sqlite:///{tempfile.mkdtemp(prefix='bench-litellm-')}/events.db"
    app = create_app(GatewaySettings(upstream="http://127.0.0.1:9/v1", open=True, rate_limit=0,
                                     db=db))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    return f"http://127.0.0.1:{port}", server, thread


async def measure(guardrail: GuardstackGuardrail, checks: int, warmup: int) -> list[float]:
    times = []
    for i in range(warmup + checks):
        data = {"messages": [{"role": "user", "content": PROMPTS[i % len(PROMPTS)]}]}
        start = time.perf_counter()
        await guardrail.async_pre_call_hook(user_api_key_dict=UserAPIKeyAuth(),
                                            cache=DualCache(), data=data,
                                            call_type="acompletion")
        if i >= warmup:
            times.append((time.perf_counter() - start) * 1000)
    return times


ANSWER = ("Goldfish do well in a large tank with a filter. Change about a quarter of the water "
          "each week, and keep the temperature steady. Feed them a little once or twice a day, "
          "only what they finish in two minutes. A tank of forty litres suits one or two fish, "
          "and plants give them places to rest. ") * 2


def chat_chunks(words: list[str]) -> list[object]:
    from litellm.types.utils import Delta, ModelResponseStream, StreamingChoices

    chunks = [ModelResponseStream(id="c1", model="m", choices=[
        StreamingChoices(index=0, delta=Delta(content=w))]) for w in words]
    chunks.append(ModelResponseStream(id="c1", model="m", choices=[
        StreamingChoices(index=0, delta=Delta(), finish_reason="stop")]))
    return chunks


def sse_frames(words: list[str]) -> list[object]:
    import json

    def frame(event: dict) -> bytes:  # as LiteLLM writes them (anthropic_sse_frame)
        return f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode()

    return [frame({"type": "message_start", "message": {
                "id": "msg_1", "type": "message", "role": "assistant", "content": [],
                "model": "m", "usage": {"input_tokens": 9, "output_tokens": 0}}}),
            frame({"type": "content_block_start", "index": 0,
                   "content_block": {"type": "text", "text": ""}}),
            *(frame({"type": "content_block_delta", "index": 0,
                     "delta": {"type": "text_delta", "text": w}}) for w in words),
            frame({"type": "content_block_stop", "index": 0}),
            frame({"type": "message_delta", "delta": {"stop_reason": "end_turn"},
                   "usage": {"output_tokens": len(words)}}),
            frame({"type": "message_stop"})]


async def replay(items: list[object]) -> AsyncIterator[object]:
    for item in items:
        yield item


async def measure_streams(guardrail: GuardstackGuardrail, repeats: int
                          ) -> dict[str, list[float]]:
    words = [" " + w for w in ANSWER.split()]
    shapes = {"chat chunks": chat_chunks(words), "Anthropic SSE": sse_frames(words)}
    times: dict[str, list[float]] = {name: [] for name in shapes}
    for i in range(repeats + 2):  # two warm-up rounds
        for name, items in shapes.items():
            data = {"messages": [{"role": "user", "content": PROMPTS[0]}]}
            start = time.perf_counter()
            out = [c async for c in guardrail.guard_stream(replay(items), data)]
            if i >= 2:
                times[name].append((time.perf_counter() - start) * 1000)
            assert len(out) == len(items), (name, len(out), len(items))
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checks", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--streams", type=int, default=0,
                        help="also time the streamed check over N answers of each shape "
                        "(in-process)")
    args = parser.parse_args()
    url, server, thread = serve_gateway()
    modes = {"in-process": GuardstackGuardrail(guardrail_name="guardstack"),
             "remote": GuardstackGuardrail(guardrail_name="guardstack", api_base=url)}

    async def run() -> None:
        if args.streams:
            times = await measure_streams(modes["in-process"], args.streams)
            words = len(ANSWER.split())
            medians = {name: statistics.median(t) for name, t in times.items()}
            for name, median in medians.items():
                print(f"{name:>14}: streamed check of a {words}-token answer p50 "
                      f"{median:.2f} ms ({len(times[name])} answers)")
            extra = medians["Anthropic SSE"] - medians["chat chunks"]
            print(f"   SSE framing: {extra:+.2f} ms per answer, "
                  f"{extra * 1000 / words:+.1f} us per token, "
                  f"ratio {medians['Anthropic SSE'] / medians['chat chunks']:.3f}")
        for name, guardrail in modes.items():
            if args.checks <= 0:
                await guardrail.aclose()
                continue
            times = sorted(await measure(guardrail, args.checks, args.warmup))
            p95 = times[max(0, round(0.95 * len(times)) - 1)]
            print(f"{name:>10}: prompt check p50 {statistics.median(times):.2f} ms, "
                  f"p95 {p95:.2f} ms ({len(times)} checks)")
            await guardrail.aclose()

    try:
        asyncio.run(run())
    finally:
        server.should_exit = True
        thread.join(timeout=30)
    print(f"load average after the run: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
