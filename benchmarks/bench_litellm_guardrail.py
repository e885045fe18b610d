"""What the LiteLLM guardrail adds to a request: the time its prompt check
takes, in-process and remote (a gateway on loopback), called as LiteLLM's
proxy calls ``async_pre_call_hook``.

    python benchmarks/bench_litellm_guardrail.py
    python benchmarks/bench_litellm_guardrail.py --checks 500

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
import threading
import time

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
    # /v1/moderations never calls the upstream; none runs.
    app = create_app(GatewaySettings(upstream="http://127.0.0.1:9/v1", open=True, rate_limit=0))
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checks", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    args = parser.parse_args()
    url, server, thread = serve_gateway()
    modes = {"in-process": GuardstackGuardrail(guardrail_name="guardstack"),
             "remote": GuardstackGuardrail(guardrail_name="guardstack", api_base=url)}

    async def run() -> None:
        for name, guardrail in modes.items():
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
