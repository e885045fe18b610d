"""The gateway's JSON log lines (``guardstack serve --log-format json``) and
its per-exchange access record."""

from __future__ import annotations

import json
import logging

import pytest

from guardstack.gateway import logs
from guardstack.gateway.recorder import Exchange


def test_a_record_is_one_json_object_with_its_extra_fields_and_traceback():
    formatter = logs.JsonFormatter()
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        record = logging.getLogger("guardstack.gateway").makeRecord(
            "guardstack.gateway", logging.ERROR, __file__, 1, "failed on %s", ("x",),
            exc_info=__import__("sys").exc_info(), extra={"request_id": "abc", "n": 3})
    line = formatter.format(record)
    assert "\n" not in line  # one line, the traceback escaped inside it
    out = json.loads(line)
    assert out["level"] == "error" and out["logger"] == "guardstack.gateway"
    assert out["message"] == "failed on x" and out["request_id"] == "abc" and out["n"] == 3
    assert "RuntimeError: boom" in out["exception"] and out["ts"].endswith("+00:00")


def test_the_access_record_names_the_exchange_and_never_its_text(caplog):
    ex = Exchange("chat.completions", model="m", tenant="acme", key_id="k1")
    ex.prompt_text, ex.response_text, ex.user = "secret prompt", "secret answer", "alice"
    ex.status_code = 200
    ex.masked = {"prompt": {"contact": 1}}
    ex.tactics = ["refusal_suppression"]
    ex.finish()
    with caplog.at_level(logging.INFO, logger="guardstack.access"):
        logs.access(ex)
    [record] = caplog.records
    line = logs.JsonFormatter().format(record)
    out = json.loads(line)
    assert out["request_id"] == ex.id and out["status"] == 200 and out["tenant"] == "acme"
    assert out["masked"] == {"prompt": {"contact": 1}} and out["total_ms"] >= 0
    assert out["tactics"] == ["refusal_suppression"]
    assert "secret" not in line and "alice" not in line


def test_text_keeps_uvicorns_logging_and_an_unknown_format_is_refused():
    text = logs.uvicorn_config("text", "info")
    assert text["loggers"]["uvicorn.access"]["handlers"] == ["access"]  # uvicorn's own
    assert text["loggers"]["guardstack"] == {"handlers": ["default"], "level": "INFO",
                                             "propagate": False}
    config = logs.uvicorn_config("json", "warning")
    assert config is not None and config["root"]["level"] == "WARNING"
    with pytest.raises(ValueError, match="text, json"):
        logs.uvicorn_config("xml", "info")
