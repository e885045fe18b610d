"""Gateway benchmarks, measured side by side with direct upstream calls in
the same run, all on loopback.

    python benchmarks/bench_gateway.py                       # small defaults
    python benchmarks/bench_gateway.py --clients 200 --duration 60

What runs: an OpenAI-shaped stub upstream (its own process; answers at once
and streams ``--tokens`` tokens ``--token-ms`` apart) so the gateway's own
cost is not buried in a model's generation jitter, or ``--upstream URL`` for
a real server; and ``guardstack serve`` (its own process) with the real
default detector and a SQLite event store. Prints:

1. non-streamed overhead: gateway latency minus the classifier's time for
   that request (read back from the store) minus direct latency, p50/p99;
   and what the Responses API, Ollama and Anthropic Messages bridges add
   over the chat path they translate to (``/v1/responses``, ``/api/chat``
   and ``/v1/messages`` minus ``/v1/chat/completions``, each net of its
   classifier time);
2. time-to-first-token, direct and through the gateway, beside the part
   the gateway is expected to add (classifier time + hold-back);
3. hold-back sweep: TTFT and tokens shown before a halt, for several
   hold-back sizes, under a policy that halts at the first response check;
4. N concurrent streaming clients for T seconds: gateway-caused errors, and
   events in the store versus exchanges sent. With ``--pg-outage S`` the load
   phase stores into a throwaway PostgreSQL (scripts/postgres.sh) that is
   stopped for S seconds a third of the way in and restarted: events spool
   to a file meanwhile and must all reach the database in the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

FLAG_ONLY = """version: 1
prompt: {default: {threshold: 0.5, action: flag}}
response: {default: {threshold: 0.5, action: flag}}
"""
# Response threshold 0: every response check blocks, so each stream halts at
# its first check whatever the classifier scores.
ALWAYS_HALT = """version: 1
prompt: {default: {threshold: 0.5, action: flag}}
response: {default: {threshold: 0.0, action: block}}
"""
WORDS = ("Once", "upon", "a", "time", "a", "small", "cat", "lived", "in", "a", "quiet", "town",
         "by", "the", "sea", "and", "every", "morning", "it", "walked", "to", "the", "harbour",
         "to", "watch", "the", "boats", "come", "in", ".")


# -- stub upstream ------------------------------------------------------------

def stub_app(tokens: int, token_ms: float) -> Any:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, StreamingResponse
    from starlette.routing import Route

    async def chat(request: Request) -> Any:
        body = await request.json()
        n = int(body.get("max_tokens") or tokens)
        words = [" " + WORDS[i % len(WORDS)] for i in range(n)]
        base = {"id": "chatcmpl-stub", "created": int(time.time()), "model": body["model"]}
        if not body.get("stream"):
            return JSONResponse({**base, "object": "chat.completion", "choices": [
                {"index": 0, "message": {"role": "assistant", "content": "".join(words)},
                 "finish_reason": "length"}]})

        async def events() -> Any:
            def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
                obj = {**base, "object": "chat.completion.chunk",
                       "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
                return f"data: {json.dumps(obj)}\n\n".encode()

            yield chunk({"role": "assistant"})
            for w in words:
                if token_ms:
                    await asyncio.sleep(token_ms / 1000)
                yield chunk({"content": w})
            yield chunk({}, "length")
            yield b"data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    async def models(request: Request) -> Any:
        return JSONResponse({"object": "list", "data": [{"id": "stub", "object": "model"}]})

    return Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"]),
                             Route("/v1/models", models)])


def run_stub(port: int, tokens: int, token_ms: float) -> None:
    import uvicorn

    uvicorn.run(stub_app(tokens, token_ms), host="127.0.0.1", port=port, log_level="warning",
                backlog=4096)


# -- processes ----------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(url: str, proc: subprocess.Popen[bytes], what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{what} exited with {proc.returncode}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"{what} not ready after {timeout} s")


PG_SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "postgres.sh"


class Postgres:
    """A throwaway cluster from scripts/postgres.sh, stoppable mid-run."""

    def __init__(self) -> None:
        out = subprocess.run(["bash", str(PG_SCRIPT), "start"], check=True,
                             capture_output=True, text=True).stdout
        env = dict(line.removeprefix("export ").split("=", 1) for line in out.splitlines()
                   if line.startswith("export "))
        self.url, self.dir = env["GUARDSTACK_TEST_PG_URL"], env["GUARDSTACK_TEST_PG_DIR"]

    def run(self, action: str) -> None:
        subprocess.run(["bash", str(PG_SCRIPT), action, self.dir], check=True)


class Gateway:
    def __init__(self, upstream: str, workdir: Path, policy: str, hold_back: int,
                 check_every: int, tag: str, db: str | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.db = db or f"sqlite:///{workdir / f'{tag}.db'}"
        policy_path = workdir / f"{tag}.yaml"
        policy_path.write_text(policy)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "guardstack", "serve", "--upstream", upstream,
             "--port", str(self.port), "--open", "--rate-limit", "0", "--db", self.db,
             "--policy", str(policy_path), "--hold-back", str(hold_back),
             "--check-every", str(check_every), "--log-level", "warning"],
            cwd=workdir)  # a PostgreSQL store spools to ./guardstack-spool.jsonl
        wait_ready(self.url + "/readyz", self.proc, "gateway")

    def stop(self) -> dict[str, dict[str, Any]]:
        """SIGTERM (flushes the writer); then the stored exchanges by conversation id."""
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=120)
        import sqlalchemy as sa

        from guardstack.store import Store
        from guardstack.store.schema import exchanges

        store = Store(self.db)
        with store.engine.connect() as conn:
            rows = conn.execute(sa.select(exchanges)).mappings().all()
        store.dispose()
        return {r["conversation_id"] or r["id"]: dict(r) for r in rows}


# -- measurements -------------------------------------------------------------

def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, round(q / 100 * (len(s) - 1)))]


def body(stream: bool, max_tokens: int | None = None) -> dict[str, Any]:
    b: dict[str, Any] = {"model": "stub", "stream": stream,
                         "messages": [{"role": "user", "content": "Write a story about a cat."}]}
    if max_tokens:
        b["max_tokens"] = max_tokens
    return b


RESPONSES_BODY = {"model": "stub", "input": "Write a story about a cat."}
OLLAMA_BODY = {"model": "stub", "stream": False,
               "messages": [{"role": "user", "content": "Write a story about a cat."}]}
MESSAGES_BODY = {"model": "stub", "max_tokens": 32,  # the stub's default length (required here)
                 "messages": [{"role": "user", "content": "Write a story about a cat."}]}
BRIDGES = {"chat": ("/v1/chat/completions", body(False)),
           "responses": ("/v1/responses", RESPONSES_BODY),
           "ollama": ("/api/chat", OLLAMA_BODY),
           "messages": ("/v1/messages", MESSAGES_BODY)}


async def timed_post(client: httpx.AsyncClient, url: str, conv: str | None,
                     api: str = "chat") -> float:
    """One non-streamed request, in ms: chat completions, or the same request
    through the gateway's Responses API (``responses``), Ollama (``ollama``)
    or Anthropic Messages (``messages``) bridge."""
    headers = {"x-conversation-id": conv} if conv else {}
    path, payload = BRIDGES[api]
    t = time.perf_counter()
    r = await client.post(url + path, json=payload, headers=headers)
    dt = time.perf_counter() - t
    r.raise_for_status()
    return dt * 1000


async def ttft(client: httpx.AsyncClient, url: str, conv: str | None,
               max_tokens: int | None = None) -> tuple[float, int, str | None]:
    """Time to the first content token, tokens seen, last finish_reason."""
    headers = {"x-conversation-id": conv} if conv else {}
    t = time.perf_counter()
    first, n, finish = float("nan"), 0, None
    async with client.stream("POST", url + "/v1/chat/completions",
                             json=body(True, max_tokens), headers=headers) as r:
        r.raise_for_status()
        async for line in r.aiter_lines():
            if not line.startswith("data: {"):
                continue
            obj = json.loads(line[6:])
            if "error" in obj:
                raise RuntimeError(obj["error"]["message"])
            for c in obj.get("choices", ()):
                if c["delta"].get("content"):
                    n += 1
                    if n == 1:
                        first = (time.perf_counter() - t) * 1000
                finish = c.get("finish_reason") or finish
    return first, n, finish


async def overhead(direct: str, gw: Gateway, n: int) -> dict[str, float]:
    async with httpx.AsyncClient(timeout=60) as c:
        for i in range(10):  # warm both paths (connections, ONNX session)
            await timed_post(c, direct, None)
            await timed_post(c, gw.url, f"warm-{i}")
        for i in range(3):
            await timed_post(c, gw.url, f"warm-r{i}", "responses")
            await timed_post(c, gw.url, f"warm-o{i}", "ollama")
            await timed_post(c, gw.url, f"warm-m{i}", "messages")
        d, g, resp, olla, msgs = [], [], [], [], []
        for i in range(n):  # interleaved so load changes hit all alike
            d.append(await timed_post(c, direct, None))
            g.append(await timed_post(c, gw.url, f"ns-{i}"))
            resp.append(await timed_post(c, gw.url, f"rs-{i}", "responses"))
            olla.append(await timed_post(c, gw.url, f"os-{i}", "ollama"))
            msgs.append(await timed_post(c, gw.url, f"ms-{i}", "messages"))
        t_direct, t_gw = [], []
        for i in range(n):
            t_direct.append((await ttft(c, direct, None))[0])
            t_gw.append((await ttft(c, gw.url, f"st-{i}"))[0])
    rows = gw.stop()
    cls = [rows[f"ns-{i}"]["classifier_ms"] for i in range(n)]
    net = [gi - ci for gi, ci in zip(g, cls, strict=True)]
    paired = [ni - di for ni, di in zip(net, d, strict=True)]
    st_cls = [rows[f"st-{i}"]["classifier_ms"] for i in range(n)]
    # The Responses bridge against the chat path it translates to, each net of
    # its own classifier time, paired request by request.
    r_net = [ri - rows[f"rs-{i}"]["classifier_ms"] for i, ri in enumerate(resp)]
    bridge = [ri - ni for ri, ni in zip(r_net, net, strict=True)]
    o_net = [oi - rows[f"os-{i}"]["classifier_ms"] for i, oi in enumerate(olla)]
    ollama_bridge = [oi - ni for oi, ni in zip(o_net, net, strict=True)]
    m_net = [mi - rows[f"ms-{i}"]["classifier_ms"] for i, mi in enumerate(msgs)]
    messages_bridge = [mi - ni for mi, ni in zip(m_net, net, strict=True)]
    return {
        "direct_p50": pct(d, 50), "direct_p99": pct(d, 99),
        "gateway_p50": pct(g, 50), "gateway_p99": pct(g, 99),
        "classifier_p50": pct(cls, 50), "classifier_p99": pct(cls, 99),
        "gateway_minus_classifier_p50": pct(net, 50),
        "gateway_minus_classifier_p99": pct(net, 99),
        # Each gateway request paired with the direct request just before it.
        "overhead_paired_p50": pct(paired, 50), "overhead_paired_p99": pct(paired, 99),
        "ratio_p50": pct(g, 50) / pct(d, 50),
        "ttft_direct_p50": pct(t_direct, 50), "ttft_gateway_p50": pct(t_gw, 50),
        "ttft_overhead_p50": pct(t_gw, 50) - pct(t_direct, 50),
        "stream_classifier_total_p50": pct(st_cls, 50),
        "responses_p50": pct(resp, 50), "responses_p99": pct(resp, 99),
        "responses_minus_chat_paired_p50": pct(bridge, 50),
        "responses_minus_chat_paired_p99": pct(bridge, 99),
        "ollama_p50": pct(olla, 50), "ollama_p99": pct(olla, 99),
        "ollama_minus_chat_paired_p50": pct(ollama_bridge, 50),
        "ollama_minus_chat_paired_p99": pct(ollama_bridge, 99),
        "messages_p50": pct(msgs, 50), "messages_p99": pct(msgs, 99),
        "messages_minus_chat_paired_p50": pct(messages_bridge, 50),
        "messages_minus_chat_paired_p99": pct(messages_bridge, 99),
    }


async def hold_back_sweep(upstream: str, workdir: Path, sizes: list[int], check_every: int,
                          n: int) -> list[dict[str, float]]:
    out = []
    async with httpx.AsyncClient(timeout=60) as c:
        for hb in sizes:
            gw = Gateway(upstream, workdir, ALWAYS_HALT, hb, check_every, f"halt-{hb}")
            for i in range(3):
                await ttft(c, gw.url, f"warm-{i}", 64)
            shown, firsts = [], []
            for i in range(n):
                first, tokens, finish = await ttft(c, gw.url, f"h-{i}", 64)
                assert finish == "content_filter", finish
                shown.append(tokens)
                firsts.append(first)
            rows = gw.stop()
            leaked = [rows[f"h-{i}"]["extra"]["unsafe_tokens_released"] for i in range(n)]
            out.append({"hold_back": hb, "ttft_ms_p50": round(pct(firsts, 50), 2),
                        "tokens_shown_p50": pct(shown, 50),
                        "tokens_shown_max": max(shown), "recorded_unsafe_max": max(leaked)})
    return out


async def outage(pg: Postgres, after: float, seconds: float) -> dict[str, float]:
    await asyncio.sleep(after)
    t = time.monotonic()
    await asyncio.to_thread(pg.run, "pause")
    down = time.monotonic()
    await asyncio.sleep(seconds)
    await asyncio.to_thread(pg.run, "resume")
    return {"db_stopped_at_s": round(after, 1), "db_down_s": round(time.monotonic() - down, 1),
            "stop_took_s": round(down - t, 1)}


async def load(gw: Gateway, clients: int, duration: float,
               max_tokens: int, pg: Postgres | None = None,
               pg_outage: float = 0.0) -> dict[str, Any]:
    sent = ok = 0
    errors: dict[str, int] = {}
    stop_at = time.monotonic() + duration
    limits = httpx.Limits(max_connections=clients + 10, max_keepalive_connections=clients + 10)

    async def worker(k: int, c: httpx.AsyncClient) -> None:
        nonlocal sent, ok
        i = 0
        while time.monotonic() < stop_at:
            sent += 1
            try:
                _, tokens, finish = await ttft(c, gw.url, f"load-{k}-{i}", max_tokens)
                if finish is None or tokens == 0:
                    raise RuntimeError(f"stream ended without finish ({tokens} tokens)")
                ok += 1
            except Exception as exc:
                key = f"{type(exc).__name__}: {str(exc)[:80]}"
                errors[key] = errors.get(key, 0) + 1
            i += 1

    async with httpx.AsyncClient(timeout=120, limits=limits) as c:
        t = time.monotonic()
        jobs = [worker(k, c) for k in range(clients)]
        down = asyncio.ensure_future(outage(pg, duration / 3, pg_outage)) if pg else None
        await asyncio.gather(*jobs)
        elapsed = time.monotonic() - t
        db = await down if down else {}
    rows = gw.stop()
    stored = sum(1 for key in rows if key.startswith("load-"))
    return {"clients": clients, "seconds": round(elapsed, 1), "exchanges_sent": sent,
            "completed": ok, "errors": errors, "events_stored": stored,
            "streams_per_s": round(ok / elapsed, 1), "store": gw.db.split(":")[0], **db}


def latency(args: argparse.Namespace, upstream: str, direct: str, work: Path,
        stub: bool) -> None:
    gw = Gateway(upstream, work, FLAG_ONLY, args.hold_back, args.check_every, "overhead")
    res = asyncio.run(overhead(direct, gw, args.requests))
    if stub:
        # What hold-back alone should add to TTFT: the stub's time to produce
        # hold_back tokens (or up to the first sentence-end check).
        res["ttft_holdback_expected"] = min(args.hold_back, args.check_every) \
            * args.token_ms
    print("\n## non-streamed latency (ms), n =", args.requests)
    for k, v in res.items():
        print(f"{k:32s} {v:8.2f}")
    print(f"\n## hold-back sweep (always-halt policy, check_every={args.check_every})")
    sweep = asyncio.run(hold_back_sweep(upstream, work,
                                        [int(x) for x in args.sweep.split(",")],
                                        args.check_every, 10))
    for row in sweep:
        print(json.dumps(row))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--upstream", help="real upstream base URL incl. /v1 (default: the stub)")
    p.add_argument("--requests", type=int, default=100, help="timed requests per path")
    p.add_argument("--tokens", type=int, default=32, help="stub: tokens per completion")
    p.add_argument("--token-ms", type=float, default=5.0, help="stub: ms between tokens")
    p.add_argument("--hold-back", type=int, default=16)
    p.add_argument("--check-every", type=int, default=16)
    p.add_argument("--sweep", default="0,4,16", help="hold-back sizes for the halt sweep")
    p.add_argument("--clients", type=int, default=20, help="concurrent streaming clients")
    p.add_argument("--duration", type=float, default=10.0, help="seconds of concurrent load")
    p.add_argument("--pg-outage", type=float, default=0.0, metavar="S",
                   help="load phase on a throwaway PostgreSQL stopped for S seconds mid-load")
    p.add_argument("--only-load", action="store_true",
                   help="skip the latency and hold-back parts")
    p.add_argument("--stub-only", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.stub_only:
        run_stub(args.stub_only, args.tokens, args.token_ms)
        return
    stub = None
    if args.upstream:
        upstream = args.upstream.rstrip("/")
    else:
        port = free_port()
        stub = subprocess.Popen([sys.executable, __file__, "--stub-only", str(port),
                                 "--tokens", str(args.tokens), "--token-ms", str(args.token_ms)])
        upstream = f"http://127.0.0.1:{port}/v1"
        wait_ready(upstream + "/models", stub, "stub upstream")
    direct = upstream.removesuffix("/v1")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            print(f"# upstream: {'stub' if stub else upstream}; cpus: {os.cpu_count()}")
            if not args.only_load:
                latency(args, upstream, direct, work, stub is not None)
            pg = Postgres() if args.pg_outage else None
            print(f"\n## load: {args.clients} streaming clients for {args.duration:g} s"
                  + (f", PostgreSQL stopped for {args.pg_outage:g} s" if pg else ""))
            try:
                gw = Gateway(upstream, work, FLAG_ONLY, args.hold_back, args.check_every,
                             "load", db=pg.url if pg else None)
                print(json.dumps(asyncio.run(load(gw, args.clients, args.duration,
                                                  args.tokens, pg, args.pg_outage)), indent=1))
            finally:
                if pg is not None:
                    pg.run("stop")
    finally:
        if stub is not None:
            stub.terminate()
            stub.wait()


if __name__ == "__main__":
    main()
