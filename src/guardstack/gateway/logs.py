"""The gateway's logs as a platform's log pipeline reads them.

``guardstack serve --log-format json`` writes every log record (the
gateway's, uvicorn's) as one JSON object per line on standard error, the
form Loki, Elasticsearch, Datadog and Cloud Logging parse without a
pattern, and replaces uvicorn's access line with one record per exchange on
the ``guardstack.access`` logger: its request id (the ``x-request-id`` the
client got, the store's exchange id), endpoint, status, decision, model,
tenant, key id, stream, halt, masking counts, jailbreak tactics and timings. Never the text of
a prompt or an answer, nor the user's id: those are in the store, behind the
dashboard's roles and audit log; the request id leads there.
"""

from __future__ import annotations

import copy
import json
import logging
from datetime import UTC, datetime
from typing import Any

from guardstack.gateway.recorder import Exchange

FORMATS = ("text", "json")
ACCESS = logging.getLogger("guardstack.access")
#: LogRecord attributes that are the record's own, not fields a caller added.
_STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime",
                                                              "color_message"}


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, the fields
    passed as ``extra``, and the traceback of an exception as text."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str, ensure_ascii=False)


def uvicorn_config(fmt: str, level: str) -> dict[str, Any]:
    """The ``log_config`` for ``uvicorn.Config``: ``text`` is uvicorn's own,
    with guardstack's loggers written the same way at ``level`` (start-up,
    reloads, an upstream or store that fails) and uvicorn's access line per
    request; ``json`` sends every logger through :class:`JsonFormatter`
    and leaves the per-request line to :func:`access`."""
    level = level.upper()
    if fmt == "text":
        from uvicorn.config import LOGGING_CONFIG

        config = copy.deepcopy(LOGGING_CONFIG)
        config["loggers"]["guardstack"] = {"handlers": ["default"], "level": level,
                                           "propagate": False}
        # uvicorn's access line is the per-request line here
        config["loggers"]["guardstack.access"] = {"level": "WARNING"}
        return config
    if fmt != "json":
        raise ValueError(f"log format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    handler = {"class": "logging.StreamHandler", "formatter": "json",
               "stream": "ext://sys.stderr"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": JsonFormatter}},
        "handlers": {"default": handler},
        "root": {"handlers": ["default"], "level": level},
        "loggers": {
            "uvicorn": {"level": level},
            "uvicorn.error": {"level": level},
            # One record per exchange from guardstack.access says more (serve also
            # turns uvicorn's access log off).
            "uvicorn.access": {"level": "WARNING"},
            "guardstack.access": {"level": "INFO"},
        },
    }


def access(exchange: Exchange) -> None:
    """Log one finished exchange on ``guardstack.access`` (a no-op unless a
    handler listens at INFO: ``--log-format json`` adds one)."""
    if not ACCESS.isEnabledFor(logging.INFO):
        return
    fields = {
        "request_id": exchange.id,
        "endpoint": exchange.endpoint,
        "status": exchange.status_code,
        "decision": exchange.decision,
        "model": exchange.model,
        "tenant": exchange.tenant,
        "key_id": exchange.key_id,
        "stream": exchange.stream,
        "halted": exchange.halted,
        "finish_reason": exchange.finish_reason,
        "masked": exchange.masked or None,
        "tactics": exchange.tactics or None,
        "classifier_ms": round(exchange.classifier_ms, 2),
        "upstream_ms": _ms(exchange.upstream_ms),
        "ttft_ms": _ms(exchange.ttft_ms),
        "total_ms": _ms(exchange.total_ms),
        "error": exchange.error,
    }
    ACCESS.info("%s %s %s", exchange.endpoint, exchange.status_code, exchange.decision,
                extra=fields)


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value, 2)
