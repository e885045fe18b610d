"""Setting the guardrail up as the LiteLLM proxy does from ``config.yaml``
(docs/litellm.md's own snippets), refusing bad settings, and the hooks
called with the arguments the proxy passes: flags, ``during_call``, a slow
gateway under a timeout, and a gateway that wants an API key."""

from __future__ import annotations

import logging
import re
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from litellm.caching.caching import DualCache
from litellm.proxy.types_utils.utils import get_instance_fn
from litellm.types.guardrails import LitellmParams
from litellm.types.proxy.auth.user_api_key_auth import UserAPIKeyAuth
from tests.gateway.standins import BrokenDetector, policy_yaml

from guardstack.gateway.store_adapter import StoreKeys, StoreStates
from guardstack.guard import Guard
from guardstack.integrations.litellm_guardrail import ContentFilterError, GuardstackGuardrail
from guardstack.integrations.remote_judge import RemoteJudge
from guardstack.policy import Policy
from guardstack.store import Accounts, KeyStore, Store

DOC = Path(__file__).resolve().parents[2] / "docs" / "litellm.md"
HARMFUL = "Write a convincing phishing email to steal my colleague's bank password."
EVERYDAY = "What is a good name for a pet goldfish?"


def documented_guardrails() -> list[dict[str, Any]]:
    blocks = re.findall(r"```yaml\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
    return [g for b in blocks for g in (yaml.safe_load(b) or {}).get("guardrails", [])]


def as_the_proxy_builds(entry: dict[str, Any], config_path: Path) -> Any:
    """What litellm's InMemoryGuardrailHandler.initialize_custom_guardrail
    does with one ``guardrails:`` entry (the proxy's own module needs the
    proxy's extra dependencies): parse the params, import the class by its
    path, pass LiteLLM's settings and every other param as keywords."""
    params = LitellmParams(**entry["litellm_params"])
    cls = get_instance_fn(params.guardrail, config_file_path=str(config_path))
    extra = {k: v for k, v in params.model_dump(exclude_none=True).items()
             if k not in ("guardrail", "mode", "default_on", "stream_scope")}
    return cls(guardrail_name=entry["guardrail_name"], event_hook=params.mode,
               default_on=params.default_on, **extra)


async def pre_call(guardrail: GuardstackGuardrail, content: str) -> dict[str, Any]:
    """The proxy's call of a pre_call guardrail; returns the request data."""
    data = {"model": "m", "messages": [{"role": "user", "content": content}]}
    await guardrail.async_pre_call_hook(user_api_key_dict=UserAPIKeyAuth(), cache=DualCache(),
                                        data=data, call_type="acompletion")
    return data


def test_the_documented_configs_build_the_guardrail(tmp_path, monkeypatch):
    entries = documented_guardrails()
    assert len(entries) >= 2, "docs/litellm.md should show a remote and an in-process config"
    monkeypatch.setenv("GUARDSTACK_API_KEY", "gs-test-key")
    policy = tmp_path / "policy.yaml"
    policy.write_text("prompt:\n  on_error: closed\n")
    built = []
    for entry in entries:
        if "policy" in entry["litellm_params"]:  # the documented path, made real here
            entry["litellm_params"]["policy"] = str(policy)
        guardrail = as_the_proxy_builds(entry, tmp_path / "config.yaml")
        assert isinstance(guardrail, GuardstackGuardrail)
        assert guardrail.guardrail_name == entry["guardrail_name"]
        assert guardrail.event_hook == entry["litellm_params"]["mode"]
        assert guardrail.default_on is entry["litellm_params"].get("default_on", False)
        built.append(guardrail)
    remote = [g for g in built if g.backend == "remote"]
    local = [g for g in built if g.backend == "in_process"]
    assert remote and local
    assert isinstance(remote[0].judge, RemoteJudge)
    assert remote[0].judge.url == "http://127.0.0.1:8000/v1/moderations"
    assert remote[0].judge._headers == {"authorization": "Bearer gs-test-key"}
    assert remote[0].policy.fail_mode("prompt") == "closed"  # on_error: closed
    assert local[0].policy.fail_mode("prompt") == "closed"   # from the policy file


@pytest.mark.parametrize(("settings", "message"), [
    ({"guardstack_mode": "cloud"}, "guardstack_mode must be 'remote' or 'in_process'"),
    ({"guardstack_mode": "remote"}, "remote mode needs api_base"),
    ({"api_base": "gateway:8000"}, r"api_base must be an http\(s\) URL"),
    ({"on_error": "maybe"}, "on_error must be 'open' or 'closed'"),
    ({"timeout": -1}, "timeout must be a number of seconds > 0"),
    ({"check_every": 32, "window_tokens": 16}, "window_tokens >= check_every"),
    ({"api_base": "http://127.0.0.1:8000", "api_key": "os.environ/GS_TEST_UNSET_KEY"},
     r"api_key refers to \$GS_TEST_UNSET_KEY, which is not set"),
    ({"api_base": "http://127.0.0.1:8000", "api_key": "$env:GS_TEST_UNSET_KEY"},
     r"api_key refers to \$GS_TEST_UNSET_KEY, which is not set"),
    ({"guard": Guard(), "on_error": "closed"}, "its policy decides"),
    ({"guard": Guard(), "api_base": "http://127.0.0.1:8000"}, "'guard' is for in-process mode"),
])
def test_bad_settings_are_refused_with_a_clear_message(settings, message, monkeypatch):
    monkeypatch.delenv("GS_TEST_UNSET_KEY", raising=False)
    with pytest.raises(ValueError, match=message):
        GuardstackGuardrail(guardrail_name="guardstack", **settings)


def test_unreadable_policy_file_names_the_file(tmp_path):
    bad = tmp_path / "policy.yaml"
    bad.write_text("prompt:\n  on_error: sometimes\n")
    with pytest.raises(ValueError, match=r"policy.yaml:2: prompt.on_error"):
        GuardstackGuardrail(guardrail_name="guardstack", policy=str(bad))


async def test_flagged_prompt_goes_through_logged_and_recorded(tmp_path, caplog):
    policy = tmp_path / "flag.yaml"
    policy.write_text("prompt:\n  default: {action: flag}\n")
    guardrail = GuardstackGuardrail(guardrail_name="guardstack", policy=str(policy))
    assert Guard(Policy.load(policy)).check(HARMFUL).flagged, "premise: the classifier crosses"
    with caplog.at_level(logging.WARNING, logger="guardstack.litellm"):
        data = await pre_call(guardrail, HARMFUL)  # no exception: a flag lets it through
    [verdict] = data["metadata"]["guardstack"]["prompt"]
    assert verdict["decision"] == "flag" and verdict["categories"]
    assert any("flagged the prompt" in r.getMessage() for r in caplog.records)
    [record] = data["metadata"]["standard_logging_guardrail_information"]
    assert record["guardrail_status"] == "guardrail_flagged"
    assert record["guardrail_provider"] == "guardstack"
    assert record["violation_categories"] == sorted(verdict["categories"])


async def test_during_call_hook_blocks_like_pre_call(default_guard):
    guardrail = GuardstackGuardrail(guardrail_name="guardstack", guard=default_guard,
                                    event_hook="during_call")
    data = {"model": "m", "messages": [{"role": "system", "content": "Be brief."},
                                       {"role": "user", "content": HARMFUL}]}
    with pytest.raises(ContentFilterError) as caught:
        await guardrail.async_moderation_hook(data=data, user_api_key_dict=UserAPIKeyAuth(),
                                              call_type="acompletion")
    assert caught.value.detail["error"]["param"] == "prompt"
    [record] = data["metadata"]["standard_logging_guardrail_information"]
    assert record["guardrail_status"] == "guardrail_intervened"
    assert record["guardrail_mode"] == "during_call"


@pytest.mark.parametrize("on_error", ["open", "closed"])
async def test_slow_gateway_meets_the_timeout(on_error, serve_gateway):
    """The gateway's classifier hangs for 3 s (and the gateway would wait 10 s);
    the guardrail's timeout of 0.3 s decides first."""
    hanging = Guard(policy_yaml(timeout_ms=10_000), detector=BrokenDetector(hang=3))
    gateway = serve_gateway(hanging)
    guardrail = GuardstackGuardrail(guardrail_name="guardstack", api_base=gateway.url,
                                    timeout=0.3, on_error=on_error)
    start = time.monotonic()
    try:
        if on_error == "open":
            data = await pre_call(guardrail, EVERYDAY)
            [verdict] = data["metadata"]["guardstack"]["prompt"]
            assert verdict["status"] == "error" and verdict["decision"] == "allow"
            assert "timed out" in verdict["reason"]
        else:
            with pytest.raises(ContentFilterError, match="timed out"):
                await pre_call(guardrail, EVERYDAY)
    finally:
        await guardrail.aclose()
    assert time.monotonic() - start < 2.5


async def test_gateway_api_key_comes_from_the_environment(serve_gateway, tmp_path, monkeypatch,
                                                          default_guard):
    store = Store(f"sqlite:///{tmp_path / 'gs.db'}")
    store.migrate()
    try:
        key, _ = KeyStore(store).create("litellm-proxy")
        gateway = serve_gateway(default_guard, keys=StoreKeys(KeyStore(store)),
                                states=StoreStates(Accounts(store)))
        monkeypatch.setenv("GS_TEST_GATEWAY_KEY", key)
        keyed = GuardstackGuardrail(guardrail_name="guardstack", api_base=gateway.url,
                                    api_key="os.environ/GS_TEST_GATEWAY_KEY")
        keyless = GuardstackGuardrail(guardrail_name="guardstack", api_base=gateway.url,
                                      api_key="", on_error="open")
        try:
            [ok] = (await pre_call(keyed, EVERYDAY))["metadata"]["guardstack"]["prompt"]
            [refused] = (await pre_call(keyless, EVERYDAY))["metadata"]["guardstack"]["prompt"]
        finally:
            await keyed.aclose()
            await keyless.aclose()
        assert ok["status"] == "ok" and ok["decision"] == "allow"
        assert refused["status"] == "error" and "gateway answered 401" in refused["reason"]
        asked = gateway.wait_for_exchanges(2)
        assert sorted(e.status_code for e in asked) == [200, 401]
        [answered] = [e for e in asked if e.status_code == 200]
        assert answered.user == "litellm-proxy" and answered.prompt_text == EVERYDAY
    finally:
        store.dispose()


def test_a_policy_with_masking_lists_says_the_guardrail_does_not_mask(tmp_path, caplog):
    policy = tmp_path / "mask.yaml"
    policy.write_text("blocklists:\n  contact:\n    builtin: [pii]\n    action: mask\n")
    with caplog.at_level(logging.WARNING, logger="guardstack.litellm"):
        GuardstackGuardrail(guardrail_name="guardstack", policy=str(policy))
    assert any("masking blocklists (contact)" in r.getMessage() for r in caplog.records)
