"""Running a suite against the three configurations, concurrently and
resumably.

Configurations, each on top of the one before:

* ``model``: the bare model, the user's prompt only;
* ``system_prompt``: the policy's safety system prompt first;
* ``gateway``: through the guardstack gateway (layer 2), which blocks
  prompts, halts answers and adds the policy's system prompt for the models
  ``system_prompt_models`` names, exactly as a deployment would.

Harmful items run once per transformation; benign items once per
configuration (over-refusal is measured on prompts as users write them).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from guardstack.model import client, transforms
from guardstack.model.checkpoint import Checkpoint, Key
from guardstack.model.client import UpstreamError
from guardstack.model.judge import JudgeError, ResponseJudge
from guardstack.model.progress import Progress
from guardstack.model.suite import Suite, SuiteItem

CONFIGURATIONS = ("model", "system_prompt", "gateway")
#: Consecutive "cannot connect" failures after which the run stops.
UNREACHABLE_LIMIT = 3


@dataclass(frozen=True, slots=True)
class Target:
    """Where one configuration's requests go."""

    base_url: str
    api_key: str | None = None
    system_prompt: str | None = None


@dataclass(frozen=True, slots=True)
class Task:
    config: str
    transform: str
    item: SuiteItem

    @property
    def key(self) -> Key:
        return (self.config, self.transform, self.item.id)


@dataclass(slots=True)
class RunResult:
    records: list[dict[str, Any]]
    errors: list[tuple[Key, str]] = field(default_factory=list)
    aborted: str | None = None

    @property
    def complete(self) -> bool:
        return not self.errors and self.aborted is None


def plan(suite: Suite, configs: Sequence[str], transform_names: Sequence[str]) -> list[Task]:
    tasks: list[Task] = []
    for config in configs:
        for name in transform_names:
            tasks.extend(Task(config, name, item) for item in suite.harmful)
        tasks.extend(Task(config, "none", item) for item in suite.benign)
    return tasks


class Runner:
    def __init__(self, targets: dict[str, Target], *, model: str, judge: ResponseJudge,
                 checkpoint: Checkpoint, max_tokens: int = 128, concurrency: int = 4,
                 stream: bool = False, timeout: float = 120.0,
                 progress: Progress | None = None,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.targets, self.model, self.judge = targets, model, judge
        self.checkpoint = checkpoint
        self.max_tokens, self.concurrency = max_tokens, max(1, concurrency)
        self.stream, self.timeout = stream, timeout
        self.progress = progress
        self.transport = transport

    def messages(self, task: Task) -> list[dict[str, str]]:
        msgs = transforms.messages(task.transform, task.item.text)
        system = self.targets[task.config].system_prompt
        if system:
            msgs.insert(0, {"role": "system", "content": system})
        return msgs

    async def one(self, http: httpx.AsyncClient, task: Task) -> dict[str, Any]:
        target = self.targets[task.config]
        reply = await client.chat(http, target.base_url, self.model, self.messages(task),
                                  max_tokens=self.max_tokens, stream=self.stream,
                                  api_key=target.api_key, timeout=self.timeout)
        # The whole answer is kept (max_tokens bounds it) so --rejudge can judge
        # it again without asking the model.
        record = {"config": task.config, "transform": task.transform, "id": task.item.id,
                  "kind": task.item.kind, "categories": list(task.item.categories),
                  "reply": reply.kind, "finish_reason": reply.finish_reason,
                  "response": reply.text}
        return await self.judged(record, task.item.text)

    async def judged(self, record: dict[str, Any], prompt: str) -> dict[str, Any]:
        reply = client.Reply(record["reply"], record["response"], record["finish_reason"])
        j = await self.judge.judge(prompt, reply)
        return {**record, "outcome": j.outcome, "harmful": j.harmful,
                "harm_score": round(j.harm_score, 4), "reason": j.reason}

    async def rejudge(self, tasks: Sequence[Task]) -> None:
        """Judge every stored answer again (after the judge or its weights changed)."""
        for task in tasks:
            record = self.checkpoint.records.get(task.key)
            if record is not None:
                self.checkpoint.records[task.key] = await self.judged(record, task.item.text)
        self.checkpoint.changed = True

    async def run(self, tasks: Sequence[Task], rejudge: bool = False) -> RunResult:
        done = self.checkpoint.load(frozenset({"judge"}) if rejudge else frozenset())
        if rejudge:
            await self.rejudge(tasks)
        todo = [t for t in tasks if t.key not in done]
        if self.progress is not None:
            self.progress.start(len(tasks), len(tasks) - len(todo))
        result = RunResult(records=[])
        queue: asyncio.Queue[Task] = asyncio.Queue()
        for t in todo:
            queue.put_nowait(t)
        unreachable = 0
        self.checkpoint.open()

        async def worker(http: httpx.AsyncClient) -> None:
            nonlocal unreachable
            while result.aborted is None:
                try:
                    task = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                label = f"{task.config}/{task.transform}"
                try:
                    record = await self.one(http, task)
                except (UpstreamError, JudgeError) as exc:
                    result.errors.append((task.key, str(exc)))
                    if isinstance(exc, UpstreamError) and exc.unreachable:
                        unreachable += 1
                        if unreachable >= UNREACHABLE_LIMIT:
                            result.aborted = str(exc)
                    if self.progress is not None:
                        self.progress.advance(label, error=True)
                    continue
                unreachable = 0
                self.checkpoint.add(record)
                if self.progress is not None:
                    self.progress.advance(label)

        limits = httpx.Limits(max_connections=self.concurrency * 2)
        try:
            async with httpx.AsyncClient(limits=limits, transport=self.transport) as http:
                await asyncio.gather(*(worker(http) for _ in range(self.concurrency)))
        finally:
            self.checkpoint.close()
            if self.progress is not None:
                self.progress.close()
        wanted = {t.key for t in tasks}
        result.records = [r for k, r in self.checkpoint.records.items() if k in wanted]
        return result
