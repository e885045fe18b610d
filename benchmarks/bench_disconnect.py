"""What the gateway's departure watch (``guardstack.gateway.disconnect``)
costs per non-streamed request, measured apart from everything else: the
same small handler (three event-loop turns) run bare and under the watch, in
one uvloop loop, alternated, seven rounds; prints the medians.

    python benchmarks/bench_disconnect.py
    python benchmarks/bench_disconnect.py --compare /tmp/old/disconnect.py

``--compare FILE`` times another version of the module beside the current
one (a copy of it from an earlier commit: ``git show REV:src/guardstack/
gateway/disconnect.py > FILE``). The whole-gateway figure is
``bench_gateway.py``'s, where this cost is far below the noise.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import statistics
import time
from collections.abc import Awaitable, Callable
from types import ModuleType
from typing import Any

from starlette.requests import Request

from guardstack.gateway import disconnect


async def _never() -> dict[str, Any]:
    await asyncio.Event().wait()
    return {}


def _request() -> Request:
    return Request({"type": "http", "method": "POST", "path": "/", "headers": []}, _never)


async def _work(request: Request, module: ModuleType | None) -> int:
    if module is not None:
        module.body_read(request)
    for _ in range(3):
        await asyncio.sleep(0)
    return 1


async def _bare() -> int:
    return await _work(_request(), None)


def _watched(module: ModuleType) -> Callable[[], Awaitable[int]]:
    async def one() -> int:
        request = _request()
        module.watch(request)
        return await module.unless_client_leaves(request, _work(request, module))
    return one


async def _run(n: int, rounds: int, versions: dict[str, ModuleType]) -> None:
    cases: dict[str, Callable[[], Awaitable[int]]] = {"bare": _bare}
    cases.update({name: _watched(m) for name, m in versions.items()})
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(rounds):
        for name, case in cases.items():
            start = time.perf_counter()
            for _ in range(n):
                await case()
            times[name].append((time.perf_counter() - start) / n * 1e6)
    bare = statistics.median(times["bare"])
    for name, runs in times.items():
        med = statistics.median(runs)
        added = "" if name == "bare" else f"   watch adds {med - bare:6.2f} us"
        print(f"{name:10s} {med:7.2f} us per request{added}")


def _load(path: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location("disconnect_compared", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--requests", type=int, default=20000, help="requests per round and case")
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--compare", metavar="FILE", help="another disconnect.py to time beside")
    args = p.parse_args()
    versions = {"current": disconnect}
    if args.compare:
        versions["compared"] = _load(args.compare)
    try:
        import uvloop  # the gateway extra's loop, as `guardstack serve` runs
        uvloop.run(_run(args.requests, args.rounds, versions))
    except ImportError:
        asyncio.run(_run(args.requests, args.rounds, versions))


if __name__ == "__main__":
    main()
