"""A policy's ``allowed_models``: a tenant's users may call only the models
its file names. Others get OpenAI's 404 ``model_not_found`` before anything
reaches the model server (a real HTTP server that records what reached it),
and the model lists show only the allowed ones."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from tests.gateway.serving import serve_app
from tests.gateway.standins import listing_upstream, marker_guard

from guardstack.gateway.auth import Identity, StaticKeys
from guardstack.policy import Policy, PolicyError


@pytest.fixture
def tenants(tmp_path: Path) -> Path:
    folder = tmp_path / "tenants"
    folder.mkdir()
    (folder / "kids.yaml").write_text('version: 1\nallowed_models: ["other-*"]\n')
    return folder


def test_a_tenant_reaches_only_its_models(run_gateway, tenants):
    requests: list[dict[str, Any]] = []
    with serve_app(listing_upstream(requests)) as upstream:
        keys = StaticKeys({"gs-kids": Identity("kim", tenant="kids"),
                           "gs-staff": Identity("sam", tenant="staff")})
        gw = run_gateway(upstream + "/v1", guard=marker_guard("MARKER"), keys=keys, open=False,
                         tenant_policies=str(tenants))
        kids = openai.OpenAI(base_url=gw.url + "/v1", api_key="gs-kids", max_retries=0)
        staff = openai.OpenAI(base_url=gw.url + "/v1", api_key="gs-staff", max_retries=0)
        hello = [{"role": "user", "content": "Say hello."}]
        with pytest.raises(openai.NotFoundError) as err:
            kids.chat.completions.create(model="smollm2-lookalike", messages=hello)
        assert err.value.body["code"] == "model_not_found" and requests == []
        assert kids.chat.completions.create(model="other-model", messages=hello).choices
        assert [m.id for m in kids.models.list()] == ["other-model"]
        listed = httpx.get(gw.url + "/v1/models", headers={"authorization": "Bearer gs-kids"})
        assert "smollm2-lookalike" not in listed.text  # nor in llama.cpp's own "models"
        with pytest.raises(openai.NotFoundError):
            kids.models.retrieve("smollm2-lookalike")
        # Ollama's API too: the tag list and a chat.
        tags = httpx.get(gw.url + "/api/tags", headers={"authorization": "Bearer gs-kids"})
        assert [m["name"] for m in tags.json()["models"]] == ["other-model"]
        denied = httpx.post(gw.url + "/api/chat", headers={"authorization": "Bearer gs-kids"},
                            json={"model": "smollm2-lookalike", "messages": hello})
        assert denied.status_code == 404
        # A request that names no model cannot be checked: a clear 400.
        unnamed = httpx.post(gw.url + "/v1/chat/completions",
                             headers={"authorization": "Bearer gs-kids"}, json={"messages": hello})
        assert unnamed.status_code == 400
        assert unnamed.json()["error"]["code"] == "missing_required_parameter"
        # Moderations name no upstream model: not refused for its name.
        moderated = httpx.post(gw.url + "/v1/moderations",
                               headers={"authorization": "Bearer gs-kids"},
                               json={"model": "omni-moderation-latest", "input": "hello"})
        assert moderated.status_code == 200
        # A tenant without a file of its own has the default policy: every model.
        assert staff.chat.completions.create(model="smollm2-lookalike", messages=hello).choices
        assert sorted(m.id for m in staff.models.list()) == ["other-model",
                                                             "smollm2-lookalike"]
        kids.close()
        staff.close()
    assert [r["model"] for r in requests] == ["other-model", "smollm2-lookalike"]


def test_allowed_models_are_case_sensitive_patterns():
    policy = Policy.from_yaml('version: 1\nallowed_models: ["llama-3.1-*", "qwen2.5"]\n')
    assert policy.allows_model("llama-3.1-8b") and policy.allows_model("qwen2.5")
    assert not policy.allows_model("LLAMA-3.1-8b") and not policy.allows_model("qwen2.5-72b")
    assert not policy.allows_model(None) and Policy.default().allows_model("anything")
    with pytest.raises(PolicyError) as err:
        Policy.from_yaml("version: 1\nallowed_models: llama\n", source="p.yaml")
    assert err.value.line == 2 and err.value.field == "allowed_models"
