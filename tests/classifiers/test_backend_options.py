import argparse

import pytest

from guardstack.classifiers.backend_options import (
    BACKENDS,
    add_backend_arguments,
    detector_from_args,
)
from guardstack.classifiers.cascade import Cascade
from guardstack.classifiers.granite_guardian import GraniteGuardian
from guardstack.classifiers.llama_guard import LlamaGuard3
from guardstack.classifiers.qwen3guard import Qwen3Guard
from guardstack.cli import CommandError
from guardstack.detectors import available


def parse(*argv):
    p = argparse.ArgumentParser()
    add_backend_arguments(p)
    return p.parse_args(argv)


def test_no_backend_means_the_policy_detector():
    assert detector_from_args(parse()) is None


def test_every_backend_is_registered():
    assert set(BACKENDS) <= set(available())


def test_backend_with_url_model_key_and_options(monkeypatch):
    monkeypatch.delenv("GUARDSTACK_BACKEND_URL", raising=False)
    monkeypatch.setenv("QWEN_KEY", "k")
    d = detector_from_args(parse("--backend", "qwen3guard", "--backend-url", "http://gpu:9000",
                                 "--backend-model", "Qwen/Qwen3Guard-Gen-8B",
                                 "--backend-api-key", "os.environ/QWEN_KEY",
                                 "--backend-timeout", "3", "--backend-retries", "0",
                                 "--backend-option", "controversial=loose"))
    assert isinstance(d, Qwen3Guard)
    assert d.client.base_url == "http://gpu:9000/v1"
    assert d.client.model == "Qwen/Qwen3Guard-Gen-8B"
    assert d.client.timeout == 3.0 and d.client.max_retries == 0
    assert d.controversial == "loose"
    assert d.client._api_key_ref == "os.environ/QWEN_KEY"  # resolved at request time


def test_default_model_and_url_from_the_environment(monkeypatch):
    monkeypatch.setenv("GUARDSTACK_BACKEND_URL", "http://guard-host:8000")
    monkeypatch.delenv("GUARDSTACK_BACKEND_MODEL", raising=False)
    d = detector_from_args(parse("--backend", "granite-guardian", "--backend-option",
                                 "risks=harm,jailbreak"))
    assert isinstance(d, GraniteGuardian)
    assert d.client.base_url == "http://guard-host:8000/v1"
    assert d.client.model == "ibm-granite/granite-guardian-3.0-2b"
    assert d.risks == ["harm", "jailbreak"]


def test_a_policy_naming_only_the_detector_finds_the_server_in_the_environment(monkeypatch):
    from guardstack import detectors

    monkeypatch.setenv("GUARDSTACK_BACKEND_URL", "http://guard-host:8000")
    monkeypatch.setenv("GUARDSTACK_BACKEND_MODEL", "my-llama-guard")
    d = detectors.load("llama-guard-3")
    assert (d.client.base_url, d.client.model) == ("http://guard-host:8000/v1", "my-llama-guard")


def test_cascade_builds_its_guard_from_the_backend_options():
    d = detector_from_args(parse("--backend", "cascade", "--cascade-guard", "llama-guard-3",
                                 "--backend-url", "http://gpu:8000", "--cascade-band", "0.1,0.9",
                                 "--cascade-band-for", "cyber=0.3,0.7",
                                 "--backend-option", "on_guard_error=fast"))
    assert isinstance(d, Cascade)
    assert isinstance(d.guard, LlamaGuard3) and d.guard.client.base_url == "http://gpu:8000/v1"
    assert d.bands == {"harm": (0.1, 0.9), "cyber": (0.3, 0.7)}
    assert d.on_guard_error == "fast"


@pytest.mark.parametrize("argv", [
    ("--backend", "qwen3guard", "--backend-option", "controversial=maybe"),
    ("--backend", "shieldgemma", "--backend-option", "no_such_setting=1"),
    ("--backend", "llama-guard-3", "--backend-url", "gpu:8000"),
])
def test_bad_settings_are_one_line_command_errors(argv):
    with pytest.raises(CommandError, match="--backend"):
        detector_from_args(parse(*argv))


@pytest.mark.parametrize("argv", [
    ("--backend", "nope"), ("--backend-timeout", "-1"), ("--cascade-band", "0.9,0.1"),
    ("--backend-option", "novalue"), ("--cascade-band-for", "cyber"),
])
def test_bad_arguments_are_rejected_by_the_parser(argv, capsys):
    with pytest.raises(SystemExit):
        parse(*argv)


def test_an_unset_key_variable_or_an_unknown_option_is_a_one_line_error(monkeypatch):
    # as serve and model-eval: found at start, not as an error verdict per text
    monkeypatch.delenv("NOPE_NOT_SET", raising=False)
    with pytest.raises(CommandError, match=r"NOPE_NOT_SET .* is not set"):
        detector_from_args(parse("--backend", "llama-guard-3",
                                 "--backend-api-key", "os.environ/NOPE_NOT_SET"))
    with pytest.raises(CommandError, match="no option 'foo'") as err:
        detector_from_args(parse("--backend", "llama-guard-3", "--backend-option", "foo=bar"))
    assert "__init__" not in str(err.value)
