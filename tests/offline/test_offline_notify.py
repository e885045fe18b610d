"""``guardstack analyze --notify URL``: open cases at or above a severity are
POSTed once to a webhook (here a real HTTP receiver on loopback); a failed
delivery is left for the next run; only pseudonymous fields go out."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from tests.gateway.serving import serve_app

from guardstack.offline.notify import notify
from guardstack.store import Store
from guardstack.store.audit import entries
from guardstack.store.schema import cases

NOW = datetime(2026, 11, 27, 1, 0, tzinfo=UTC)
RAW_USER = "alice@example.org"


def receiver(posts: list[dict[str, Any]], fail_first: int = 0) -> Starlette:
    state = {"failures_left": fail_first}

    async def hook(request: Request) -> Response:
        if state["failures_left"] > 0:
            state["failures_left"] -= 1
            return JSONResponse({"error": "try later"}, status_code=500)
        posts.append(await request.json())
        return Response("ok")

    return Starlette(routes=[Route("/hook", hook, methods=["POST"])])


@pytest.fixture
def store(tmp_path):
    s = Store(f"sqlite:///{tmp_path / 'gs.db'}")
    s.migrate()
    rows = [("case-crit", "critical", 0.97, "open", [RAW_USER], True),
            ("case-high", "high", 0.86, "open", [RAW_USER, "bob"], False),
            ("case-low", "low", 0.55, "open", ["carol"], True),
            ("case-done", "critical", 0.99, "dismissed", ["dave"], True)]
    with s.engine.begin() as conn:
        for cid, severity, score, status, users, enforceable in rows:
            conn.execute(cases.insert().values(
                id=cid, kind="abuse", label="malicious", category="cyber", severity=severity,
                score=score, subject="p-" + cid, user_ids=users, evidence=[{"why": "x"}],
                status=status, first_seen=NOW, updated_at=NOW, enforceable=enforceable))
    yield s
    s.dispose()


def test_open_cases_are_sent_once_most_severe_first(store):
    posts: list[dict[str, Any]] = []
    with serve_app(receiver(posts)) as url:
        report = notify(store, url + "/hook", dashboard_url="https://llm.example.org/ui/")
        again = notify(store, url + "/hook")
    assert report.sent == ["case-crit", "case-high"] and report.error is None
    assert again.sent == [] and len(posts) == 2
    first, second = posts
    assert first["event"] == "case.opened" and first["case"]["severity"] == "critical"
    assert first["case"]["url"] == "https://llm.example.org/ui/cases/case-crit"
    assert first["text"].startswith("guardstack: critical abuse case (cyber, score 0.97)")
    assert second["case"]["accounts"] == 2 and "for review only" in second["text"]
    # Pseudonymous: no raw user id anywhere in what left.
    assert RAW_USER not in json.dumps(posts)
    [audit] = [e for e in entries(store) if e.action == "notify"]
    assert audit.detail == {"cases": ["case-crit", "case-high"], "host": url.split("//")[1]}
    # The reviewer's case page says when the team was told.
    from starlette.testclient import TestClient
    from tests.dashboard.conftest import PASSWORD, login

    from guardstack.dashboard.app import standalone_app
    from guardstack.dashboard.staff import Staff

    Staff(store).add("rita", "reviewer", PASSWORD, actor="test")
    with TestClient(standalone_app(store), follow_redirects=False) as client:
        assert login(client, "rita").status_code == 303
        assert 'id="case-notified"' in client.get("/ui/cases/case-crit").text
        assert 'id="case-notified"' not in client.get("/ui/cases/case-low").text


def test_a_failed_delivery_is_left_for_the_next_run(store):
    posts: list[dict[str, Any]] = []
    with serve_app(receiver(posts, fail_first=1)) as url:
        failed = notify(store, url + "/hook", min_severity="low")
        assert failed.sent == [] and failed.pending == 3 and "HTTP 500" in failed.error
        retried = notify(store, url + "/hook", min_severity="low")
    assert retried.sent == ["case-crit", "case-high", "case-low"]
    assert [p["case"]["id"] for p in posts] == retried.sent
    with store.engine.connect() as conn:
        sent = conn.execute(sa.select(cases.c.id).where(cases.c.notified_at.is_not(None))
                            ).scalars().all()
    assert sorted(sent) == ["case-crit", "case-high", "case-low"]


def test_a_webhook_that_is_not_there_loses_nothing(store, dead_url):
    report = notify(store, dead_url + "/hook", timeout=2)
    assert report.sent == [] and report.pending == 2 and "ConnectError" in report.error


def test_analyze_notifies_from_the_command_line(store, tmp_path):
    posts: list[dict[str, Any]] = []
    env = {**os.environ, "GS_TEST_HOOK": ""}
    with serve_app(receiver(posts)) as url:
        env["GS_TEST_HOOK"] = url + "/hook"
        proc = subprocess.run(
            [sys.executable, "-m", "guardstack", "analyze", "--db", store.url, "--json",
             "--quiet", "--notify", "os.environ/GS_TEST_HOOK", "--notify-severity", "critical"],
            capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["notified"] == {"sent": ["case-crit"], "pending": 0,
                                                   "error": None}
    assert [p["case"]["id"] for p in posts] == ["case-crit"]


def test_analyze_exits_1_when_a_delivery_failed(store, dead_url):
    proc = subprocess.run(
        [sys.executable, "-m", "guardstack", "analyze", "--db", store.url, "--quiet",
         "--notify", dead_url + "/hook"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1
    assert "2 case(s) left for the next run" in proc.stderr and "Traceback" not in proc.stderr
