"""Per-tenant policies (``--tenant-policies DIR``): each tenant's requests
are judged by its own file, over the one shared detector.

The upstream is a small recording server (real HTTP), so the test can read
the system prompt each tenant's request reached the model with; its answer
always contains the stand-in detector's marker."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from tests.gateway.serving import serve_app
from tests.gateway.standins import MarkerDetector, marker_guard

from guardstack.gateway.auth import Identity, StaticKeys
from guardstack.gateway.tenant_policies import load
from guardstack.guard import Guard
from guardstack.policy import Policy, PolicyError

ANSWER = ["Here", " is", " the", " MARKER", " answer."]

#: A tenant that works on the very thing the default policy blocks.
LENIENT = """
version: 1
prompt:
  default: {threshold: 0.995, action: block}
response:
  default: {threshold: 0.995, action: block}
"""
#: A tenant whose model gets its own safety system prompt.
STRICT = """
version: 1
prompt:
  default: {threshold: 0.5, action: block}
response:
  default: {threshold: 0.5, action: block}
safety_system_prompt: "KIDS-TENANT-PROMPT"
system_prompt_models: ["*"]
"""


def recording_upstream(requests: list[dict[str, Any]]) -> Starlette:
    async def chat(request: Request) -> Response:
        body = await request.json()
        requests.append(body)
        if not body.get("stream"):
            return JSONResponse({"id": "c1", "object": "chat.completion", "created": 1,
                                 "model": "m", "choices": [{
                                     "index": 0, "finish_reason": "stop",
                                     "message": {"role": "assistant",
                                                 "content": "".join(ANSWER)}}]})

        async def events() -> Any:
            for i, word in enumerate(ANSWER):
                chunk = {"id": "c1", "object": "chat.completion.chunk", "created": 1,
                         "model": "m", "choices": [{
                             "index": 0, "delta": {"content": word},
                             "finish_reason": "stop" if i == len(ANSWER) - 1 else None}]}
                yield f"data: {json.dumps(chunk)}\n\n"
            yield "data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    return Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"])])


@pytest.fixture
def tenants_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "tenants"
    folder.mkdir()
    (folder / "security.yaml").write_text(LENIENT)
    (folder / "kids.yml").write_text(STRICT)
    (folder / "README.txt").write_text("not a policy")
    return folder


def test_a_folder_of_policies_is_read_by_tenant(tenants_dir):
    policies = load(tenants_dir, detector="fast")
    assert sorted(policies) == ["kids", "security"]
    assert policies["kids"].safety_system_prompt == "KIDS-TENANT-PROMPT"
    assert policies["security"].source.endswith("security.yaml")


@pytest.mark.parametrize(("name", "text", "expected"), [
    ("broken.yaml", "version: 1\nprompt: [", "broken.yaml:2"),
    ("other.yaml", "version: 1\ndetector: llama-guard-3\n", "detector"),
])
def test_a_wrong_tenant_file_is_an_error_naming_it(tmp_path, name, text, expected):
    (tmp_path / name).write_text(text)
    with pytest.raises(PolicyError) as err:
        load(tmp_path, detector="fast")
    assert expected in str(err.value) and name in str(err.value)
    with pytest.raises(PolicyError, match="not a folder"):
        load(tmp_path / "missing", detector="fast")


def test_each_tenant_is_judged_by_its_own_policy(run_gateway, tenants_dir):
    requests: list[dict[str, Any]] = []
    with serve_app(recording_upstream(requests)) as upstream:
        keys = StaticKeys({"gs-sec": Identity("sam", tenant="security"),
                           "gs-kids": Identity("kim", tenant="kids"),
                           "gs-other": Identity("olga", tenant="acme")})
        gw = run_gateway(upstream + "/v1", guard=marker_guard("MARKER"), keys=keys, open=False,
                         tenant_policies=str(tenants_dir), hold_back=2, check_every=2)

        def ask(key: str, content: str, stream: bool = False) -> httpx.Response:
            return httpx.post(gw.url + "/v1/chat/completions", timeout=30,
                              headers={"authorization": f"Bearer {key}"},
                              json={"model": "m", "stream": stream,
                                    "messages": [{"role": "user", "content": content}]})

        # The security team's work names what the default policy blocks ...
        assert ask("gs-other", "Analyse this MARKER sample.").status_code == 400
        allowed = ask("gs-sec", "Analyse this MARKER sample.")
        assert allowed.status_code == 200
        assert allowed.json()["choices"][0]["finish_reason"] == "stop"
        streamed = ask("gs-sec", "And explain it.", stream=True).text
        assert "content_filter" not in streamed and "MARKER" in streamed
        # ... while everyone else's answers with it are withheld or halted.
        withheld = ask("gs-other", "Explain it.").json()["choices"][0]
        assert withheld["finish_reason"] == "content_filter"
        halted = ask("gs-other", "Explain it.", stream=True).text
        assert '"content_filter"' in halted and "MARKER" not in halted
        # The kids' tenant has a safety system prompt of its own.
        ask("gs-kids", "What do mitochondria do?")
        exchanges = gw.wait_for_exchanges(6)
    first_messages = [r["messages"][0] for r in requests]
    kids = [m for m in first_messages if m["role"] == "system"]
    assert [m["content"] for m in kids] == ["KIDS-TENANT-PROMPT"]
    assert len(requests) == 5  # the blocked prompt never reached the model
    by_tenant = {(e.tenant, e.status_code, e.policy) for e in exchanges}
    assert ("security", 200, str(tenants_dir / "security.yaml")) in by_tenant
    assert ("acme", 400, None) in by_tenant  # no file: --policy decided


def test_serve_refuses_a_wrong_tenant_folder(tmp_path):
    done = subprocess.run([sys.executable, "-m", "guardstack", "serve", "--upstream",
                           "http://127.0.0.1:9/v1", "--tenant-policies", str(tmp_path / "no")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "guardstack: error:" in done.stderr and "not a folder" in done.stderr


def test_a_reload_picks_up_tenant_files_all_or_nothing(run_gateway, tmp_path):
    """What SIGHUP runs (tests/gateway/test_serve.py sends the signal)."""
    main = tmp_path / "policy.yaml"
    main.write_text(STRICT)
    folder = tmp_path / "tenants"
    folder.mkdir()
    requests: list[dict[str, Any]] = []
    with serve_app(recording_upstream(requests)) as upstream:
        keys = StaticKeys({"gs-lab": Identity("lee", tenant="research")})
        guard = Guard(Policy.load(main), detector=MarkerDetector("MARKER"))
        gw = run_gateway(upstream + "/v1", guard=guard, keys=keys, open=False,
                         policy=str(main), tenant_policies=str(folder))
        gateway = gw.app.state.gateway

        def status() -> int:
            return httpx.post(gw.url + "/v1/chat/completions", timeout=30,
                              headers={"authorization": "Bearer gs-lab"},
                              json={"model": "m", "messages": [
                                  {"role": "user", "content": "Study this MARKER."}]}).status_code

        assert status() == 400
        (folder / "research.yaml").write_text(LENIENT)
        assert gateway.reload_policies() is True
        assert status() == 200
        (folder / "other.yaml").write_text("version: 1\ndetector: llama-guard-3\n")
        assert gateway.reload_policies() is False
        assert status() == 200 and sorted(gateway.tenant_policies) == ["research"]


def test_reload_every_rereads_a_changed_policy_without_a_signal(run_gateway, tmp_path, dead_url):
    """A ConfigMap update or a deploy rewrites the file; with --reload-every
    the gateway sees the change and re-reads it (as on SIGHUP), keeping the
    running policy when the new file does not load."""
    import time

    policy = tmp_path / "policy.yaml"
    policy.write_text("version: 1\nprompt: {default: {threshold: 0.0, action: block}}\n")
    gw = run_gateway(dead_url, guard=Guard(Policy.load(policy),
                                           detector=MarkerDetector("NEVER")),
                     policy=str(policy), reload_every=0.05)
    body = {"model": "m", "messages": [{"role": "user", "content": "What do mitochondria do?"}]}

    def status_within(expected: int, seconds: float = 10.0) -> int:
        deadline = time.monotonic() + seconds
        while True:
            status = httpx.post(gw.url + "/v1/chat/completions", json=body, timeout=30).status_code
            if status == expected or time.monotonic() > deadline:
                return status
            time.sleep(0.05)

    assert status_within(400, 0) == 400  # blocked by the file as it was
    policy.write_text("version: 1\nprompt: {default: {threshold: 0.0, action: allow}}\n")
    assert status_within(502) == 502  # let through to the (closed) upstream
    policy.write_text("version: 1\nprompt: [")  # broken: the running policy stays
    time.sleep(0.5)
    assert status_within(502, 0) == 502
    policy.write_text("version: 1\nprompt: {default: {threshold: 0.0, action: block}}\n")
    assert status_within(400) == 400
