"""Resumability and a server that dies mid-run. The server's death is a
fault a real server cannot produce on demand, so it is an
httpx.MockTransport; the judge is the real Guard."""

import json

import httpx
import pytest

from guardstack.guard import Guard
from guardstack.model import runner, suite
from guardstack.model.checkpoint import Checkpoint, CheckpointError
from guardstack.model.judge import ResponseJudge

SETTINGS = {"model": "m", "max_tokens": 8, "stream": False, "judge": "fast"}


@pytest.fixture(scope="module")
def judge():
    return ResponseJudge(Guard())


def _answer(request):
    return httpx.Response(200, json={"choices": [{"index": 0, "finish_reason": "stop",
                                                  "message": {"role": "assistant",
                                                              "content": "I can't help."}}]})


def _runner(tmp_path, judge, transport, configs=("model", "system_prompt")):
    targets = {"model": runner.Target("http://up/v1"),
               "system_prompt": runner.Target("http://up/v1", system_prompt="Be safe.")}
    return runner.Runner({c: targets[c] for c in configs}, model="m", judge=judge,
                         checkpoint=Checkpoint(tmp_path / "state.jsonl", SETTINGS),
                         max_tokens=8, concurrency=2, transport=transport)


def test_plan_runs_benign_prompts_once_per_configuration():
    s = suite.limit(suite.load(), 3)
    tasks = runner.plan(s, ["model", "gateway"], ["none", "base64"])
    assert len(tasks) == 2 * (3 * 2 + 3)
    assert all(t.transform == "none" for t in tasks if not t.item.harmful)


async def _run_recording(tmp_path, judge, configs, transform_names):
    """One suite item run; the request bodies the server saw."""
    bodies = []

    def handler(request):
        bodies.append(json.loads(request.content))
        return _answer(request)

    s = suite.limit(suite.load(), 1)
    run = _runner(tmp_path, judge, httpx.MockTransport(handler))
    return s, await run.run(runner.plan(s, configs, transform_names)), bodies


async def test_system_prompt_configuration_sends_the_system_prompt(tmp_path, judge):
    _, result, bodies = await _run_recording(tmp_path, judge, ["model", "system_prompt"],
                                             ["none"])
    assert result.complete and len(result.records) == 4
    roles = sorted(tuple(m["role"] for m in b["messages"]) for b in bodies)
    assert roles == [("system", "user")] * 2 + [("user",)] * 2
    assert all(r["outcome"] == "refused" for r in result.records)


async def test_made_up_history_is_sent_as_a_conversation(tmp_path, judge):
    s, result, bodies = await _run_recording(tmp_path, judge, ["system_prompt"], ["history"])
    assert result.complete
    sent = next(b["messages"] for b in bodies if b["messages"][-1]["content"] == "Continue.")
    assert [m["role"] for m in sent] == ["system", "user", "assistant", "user"]
    assert sent[1]["content"] == s.harmful[0].text
    assert {r["transform"] for r in result.records if r["kind"] == "harmful"} == {"history"}


async def test_server_dying_mid_run_keeps_results_and_resumes(tmp_path, judge):
    calls = {"n": 0}

    def dying(request):
        calls["n"] += 1
        if calls["n"] > 3:
            raise httpx.ConnectError("connection refused", request=request)
        return _answer(request)

    s = suite.limit(suite.load(), 3)
    tasks = runner.plan(s, ["model", "system_prompt"], ["none"])
    first = await _runner(tmp_path, judge, httpx.MockTransport(dying)).run(tasks)
    assert first.aborted and "cannot connect" in first.aborted
    assert len(first.records) == 3 and not first.complete
    # The state file holds exactly what finished.
    lines = (tmp_path / "state.jsonl").read_text().splitlines()
    assert len(lines) == 1 + 3
    seen = []

    def healthy(request):
        seen.append(request)
        return _answer(request)

    second = await _runner(tmp_path, judge, httpx.MockTransport(healthy)).run(tasks)
    assert second.complete and len(second.records) == len(tasks)
    assert len(seen) == len(tasks) - 3  # only the missing items were sent


async def test_item_errors_are_not_checkpointed(tmp_path, judge):
    def flaky(request):
        if "vaccine" in request.content.decode():
            return httpx.Response(500, json={"error": {"message": "overloaded"}})
        return _answer(request)

    s = suite.load()
    tasks = [t for t in runner.plan(s, ["model"], ["none"])][:45]
    result = await _runner(tmp_path, judge, httpx.MockTransport(flaky), ("model",)).run(tasks)
    assert result.errors and not result.aborted
    assert all("HTTP 500" in m for _, m in result.errors)
    assert len(result.records) == len(tasks) - len(result.errors)


def test_checkpoint_damaged_line_and_other_settings(tmp_path):
    path = tmp_path / "state.jsonl"
    cp = Checkpoint(path, SETTINGS)
    cp.load()
    cp.add({"config": "model", "transform": "none", "id": "a", "outcome": "refused"})
    cp.add({"config": "model", "transform": "none", "id": "b", "outcome": "refused"})
    cp.close()
    # An interruption cut the last line short.
    path.write_text(path.read_text()[:-10])
    again = Checkpoint(path, SETTINGS)
    assert set(again.load()) == {("model", "none", "a")} and again.damaged == 1
    again.open()
    again.add({"config": "model", "transform": "none", "id": "b", "outcome": "refused"})
    again.close()
    assert len(Checkpoint(path, SETTINGS).load()) == 2
    with pytest.raises(CheckpointError, match="max_tokens: 8 there, 64 now"):
        Checkpoint(path, {**SETTINGS, "max_tokens": 64}).load()
    other = tmp_path / "other.jsonl"
    other.write_text('{"hello": 1}\n')
    with pytest.raises(CheckpointError, match="not a model-eval state file"):
        Checkpoint(other, SETTINGS).load()


async def test_rejudge_judges_stored_answers_without_asking_the_model(tmp_path, judge):
    s = suite.limit(suite.load(), 1)
    tasks = runner.plan(s, ["model"], ["none"])
    first = await _runner(tmp_path, judge, httpx.MockTransport(_answer), ("model",)).run(tasks)
    assert first.complete

    class Silent:
        async def judge(self, prompt, reply):
            from guardstack.model.judge import Judgement
            return Judgement("complied", True, 0.9, ("cyber",), "new judge")

    def no_calls(request):
        raise AssertionError("the model must not be asked again")

    cp = Checkpoint(tmp_path / "state.jsonl", {**SETTINGS, "judge": "other"})
    run = runner.Runner({"model": runner.Target("http://up/v1")}, model="m", judge=Silent(),
                        checkpoint=cp, transport=httpx.MockTransport(no_calls))
    with pytest.raises(CheckpointError, match="judge"):
        await run.run(tasks)
    again = await run.run(tasks, rejudge=True)
    assert all(r["reason"] == "new judge" and r["response"] == "I can't help."
               for r in again.records)
    # The file now records the new judge and the new judgements.
    reread = Checkpoint(tmp_path / "state.jsonl", {**SETTINGS, "judge": "other"}).load()
    assert all(r["reason"] == "new judge" for r in reread.values())
