"""docs/gateway.md shows the settings table generated from the code, and
every endpoint and metric the gateway has."""

from pathlib import Path

from guardstack.gateway.app import _ENDPOINTS
from guardstack.gateway.metrics import Metrics
from guardstack.gateway.settings import settings_markdown

DOC = (Path(__file__).resolve().parents[2] / "docs" / "gateway.md").read_text(encoding="utf-8")


def test_settings_table_is_current():
    assert settings_markdown() in DOC, "update the settings table in docs/gateway.md"


def test_every_endpoint_is_documented():
    for path in _ENDPOINTS:
        assert f" {path}`" in DOC, path


def test_every_metric_is_documented():
    names = {m.name for m in Metrics().registry.collect()}
    for name in names:
        base = name.removesuffix("_total")
        assert f"`{base}" in DOC, name


def test_the_kubernetes_example_is_a_valid_serve_command(monkeypatch):
    """docs/deploy.md's Deployment: the YAML parses, and its args are a
    `guardstack serve` command line the gateway accepts."""
    import yaml

    from guardstack.cli import build_parser
    from guardstack.gateway.commands import settings_from_args
    from guardstack.policy import Policy

    deploy = (Path(__file__).resolve().parents[2] / "docs" / "deploy.md").read_text("utf-8")
    section = deploy.split("## Kubernetes", 1)[1].split("\n## ", 1)[0]
    config_map, deployment = yaml.safe_load_all(section.split("```yaml\n", 1)[1].split("```")[0])
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    monkeypatch.setenv("VLLM_API_KEY", "k")
    settings = settings_from_args(build_parser().parse_args(container["args"]))
    assert settings.reload_every == 10 and settings.upstream_api_key == "k"
    assert container["readinessProbe"]["httpGet"]["path"] in DOC
    assert Policy.from_yaml(config_map["data"]["policy.yaml"]).mode == "monitor"
