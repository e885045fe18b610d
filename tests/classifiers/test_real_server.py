"""The HTTP path against a real OpenAI-compatible server: llama.cpp serving
SmolLM2-135M-Instruct stands in for the guard model. SmolLM2 has no guard
training, so its answers do not parse: every backend must turn that into a
status=error detection that the policy's fail mode resolves, never a crash."""

import argparse

import pytest
from tests.fixtures.llama_server import MODEL_ALIAS

from guardstack import detectors
from guardstack.classifiers.backend_options import add_backend_arguments, detector_from_args
from guardstack.classifiers.base import HARM, Message, Subject
from guardstack.guard import Guard
from guardstack.policy import Policy
from guardstack.verdict import Action, Status

pytestmark = pytest.mark.slow

PROMPT = "What household chemicals are unsafe to mix when cleaning a bathroom?"
RESPONSE = "Never mix bleach with ammonia or with acids such as vinegar."
SUBJECTS = [Subject(PROMPT), Subject(RESPONSE, "response", (Message("user", PROMPT),))]

BACKENDS = {
    "llama-guard-3": {},
    "qwen3guard": {},
    "shieldgemma": {"policies": ["dangerous"]},
    "granite-guardian": {"risks": ["harm"]},
    # SmolLM2 is slow on a long policy; one category keeps the test short.
    "gpt-oss-safeguard": {"categories": ["privacy"], "max_tokens": 16,
                          "reasoning_effort": None},
}


def _valid(d):
    if d.status is Status.OK:
        return all(0.0 <= v <= 1.0 for v in d.scores.values()) and HARM in d.scores
    return bool(d.error)


@pytest.mark.parametrize("name", sorted(BACKENDS))
async def test_backend_over_http_never_crashes(llama_server, name):
    # gpt-oss-safeguard's policy prompt is long: on a loaded 2-core machine
    # SmolLM2 took over 60 s to read it, so the HTTP timeout is generous here.
    backend = detectors.load(name, base_url=llama_server, model=MODEL_ALIAS, timeout=300,
                             max_retries=0, **BACKENDS[name])
    async with backend:
        out = await backend.detect(SUBJECTS)
    assert len(out) == 2 and all(_valid(d) for d in out)
    assert backend.client.stats.requests >= 2
    for d in out:
        # The HTTP exchange itself worked: whatever failed was the answer.
        assert d.status is Status.OK or "unparseable guard output" in (d.error or ""), d.error


async def test_smollm2_answers_are_unparseable_error_detections(llama_server):
    backend = detectors.load("qwen3guard", base_url=llama_server, model=MODEL_ALIAS,
                             timeout=60, max_retries=0)
    async with backend:
        out = await backend.detect(SUBJECTS)
    assert [d.status for d in out] == [Status.ERROR, Status.ERROR]
    assert all("unparseable guard output" in (d.error or "") for d in out)


async def test_server_side_failure_is_an_error_detection(llama_server):
    # Llama Guard 4's request carries typed content parts; SmolLM2's chat
    # template cannot concatenate them and the server answers HTTP 500.
    backend = detectors.load("llama-guard-4", base_url=llama_server, model=MODEL_ALIAS,
                             timeout=60, max_retries=1)
    backend.client.backoff_s = backend.client.backoff_max_s = 0.01
    async with backend:
        (d,) = await backend.detect(SUBJECTS[:1])
    assert d.status is Status.ERROR
    assert "HTTP 500" in (d.error or "") and "after 2 attempts" in (d.error or "")


@pytest.mark.parametrize(("on_error", "decision"), [("closed", Action.BLOCK),
                                                    ("open", Action.ALLOW)])
def test_policy_fail_mode_resolves_the_error(llama_server, on_error, decision):
    parser = argparse.ArgumentParser()
    add_backend_arguments(parser)
    args = parser.parse_args(["--backend", "qwen3guard", "--backend-url", llama_server,
                              "--backend-model", MODEL_ALIAS, "--backend-timeout", "60"])
    policy = Policy.from_yaml(f"version: 1\nprompt:\n  on_error: {on_error}\n")
    verdict = Guard(policy, detector=detector_from_args(args)).check(PROMPT)
    assert verdict.status is Status.ERROR
    assert verdict.decision is decision
    assert verdict.detector == "qwen3guard"
    assert f"fail-{on_error}" in verdict.reason


def test_batches_run_concurrently_against_the_server(llama_server):
    backend = detectors.load("llama-guard-3", base_url=llama_server, model=MODEL_ALIAS,
                             timeout=60, concurrency=3)
    out = backend.detect_sync([Subject(f"Question {i}: how do vaccines work?")
                               for i in range(3)])
    assert len(out) == 3 and all(_valid(d) for d in out)
