"""The cascade with small in-test detectors standing in for the fast
classifier and the guard model (their own behaviour is tested elsewhere)."""

import asyncio

import pytest

from guardstack import detectors
from guardstack.classifiers.base import HARM, Detection, Subject, error_detection
from guardstack.classifiers.cascade import Cascade
from guardstack.verdict import Status


class Scripted:
    """Scores looked up by text; records what it was asked."""

    def __init__(self, name, table, delay=0.0):
        self.name, self.table, self.delay = name, table, delay
        self.seen: list[str] = []
        self.cancelled = 0

    async def detect(self, subjects):
        self.seen += [s.text for s in subjects]
        try:
            await asyncio.sleep(self.delay)
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        out = []
        for s in subjects:
            v = self.table[s.text]
            out.append(v if isinstance(v, Detection) else
                       Detection(scores=v, latency_ms=1.0, embedding=(1.0, 0.0)))
        return out

    def detect_sync(self, subjects):
        return asyncio.run(self.detect(subjects))


FAST = {"clear": {HARM: 0.05}, "bad": {HARM: 0.97, "cyber": 0.9},
        "unsure": {HARM: 0.5, "cyber": 0.4}, "cat-unsure": {HARM: 0.1, "self_harm": 0.35}}
GUARD = {t: {HARM: 0.99 if t == "unsure" else 0.01} for t in FAST}


def subjects(*texts):
    return [Subject(t) for t in texts]


async def test_confident_cases_stay_with_the_fast_classifier():
    fast, guard = Scripted("fast", FAST), Scripted("guard", GUARD)
    c = Cascade(fast, guard)
    out = await c.detect(subjects("clear", "bad", "unsure"))
    assert guard.seen == ["unsure"]
    assert out[0].scores == FAST["clear"] and out[1].scores == FAST["bad"]
    assert out[2].scores == {HARM: 0.99}
    assert out[2].embedding == (1.0, 0.0)  # the fast embedding is kept
    assert c.stats.judged == 3 and c.stats.escalated == 1
    assert c.stats.escalation_rate == pytest.approx(1 / 3)


async def test_per_category_band():
    fast, guard = Scripted("fast", FAST), Scripted("guard", GUARD)
    c = Cascade(fast, guard, bands={"self_harm": (0.3, 0.7)})
    await c.detect(subjects("clear", "cat-unsure"))
    assert guard.seen == ["cat-unsure"]
    c2 = Cascade(Scripted("fast", FAST), guard2 := Scripted("guard", GUARD))
    await c2.detect(subjects("cat-unsure"))
    assert guard2.seen == []


async def test_guard_error_is_an_error_detection_by_default():
    fast = Scripted("fast", FAST)
    guard = Scripted("guard", {"unsure": error_detection("guard-x: unparseable guard output")})
    out = await Cascade(fast, guard).detect(subjects("unsure"))
    assert out[0].status is Status.ERROR and "unparseable" in (out[0].error or "")
    out = await Cascade(fast, guard, on_guard_error="fast").detect(subjects("unsure"))
    assert out[0].status is Status.OK and out[0].scores == FAST["unsure"]


async def test_a_crashing_guard_never_crashes_the_cascade():
    class Broken:
        name = "broken"

        async def detect(self, subjects):
            raise RuntimeError("CUDA out of memory")

        def detect_sync(self, subjects):
            raise RuntimeError("CUDA out of memory")

    c = Cascade(Scripted("fast", FAST), Broken())
    out = await c.detect(subjects("unsure", "clear"))
    assert out[0].status is Status.ERROR and "CUDA out of memory" in (out[0].error or "")
    assert out[1].status is Status.OK
    assert c.stats.guard_errors == 1


async def test_a_failed_fast_check_escalates():
    fast = Scripted("fast", {"clear": error_detection("fast: model missing")})
    guard = Scripted("guard", GUARD)
    out = await Cascade(fast, guard).detect(subjects("clear"))
    assert guard.seen == ["clear"] and out[0].status is Status.OK


async def test_speculative_mode_starts_the_guard_early_and_cancels_confident_ones():
    fast = Scripted("fast", FAST, delay=0.02)
    guard = Scripted("guard", GUARD, delay=0.05)
    c = Cascade(fast, guard, speculative=True)
    out = await c.detect(subjects("clear", "unsure"))
    assert sorted(guard.seen) == ["clear", "unsure"]  # both sent before the fast result
    assert guard.cancelled == 1
    assert out[0].scores == FAST["clear"] and out[1].scores == {HARM: 0.99}
    assert c.stats.escalated == 1


async def test_start_runs_in_the_background_for_the_gateway():
    guard = Scripted("guard", GUARD, delay=0.05)
    c = Cascade(Scripted("fast", FAST), guard)
    run = c.start(subjects("unsure"))
    await asyncio.sleep(0)  # the gateway would send the upstream request here
    assert not run.done()
    (d,) = await run.result(timeout_s=2)
    assert d.scores == {HARM: 0.99}


def test_sync_wrapper_and_loading_by_name():
    c = detectors.load("cascade", fast=Scripted("fast", FAST), guard=Scripted("guard", GUARD),
                       low=0.3, high=0.6)
    out = c.detect_sync(subjects("unsure", "clear"))
    assert [d.scores[HARM] for d in out] == [0.99, 0.05]


def test_bands_are_validated():
    with pytest.raises(ValueError, match="low <= high"):
        Cascade(Scripted("f", {}), Scripted("g", {}), low=0.9, high=0.1)
    with pytest.raises(ValueError, match="two numbers"):
        Cascade(Scripted("f", {}), Scripted("g", {}), bands={"cyber": (0.1,)})
