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
