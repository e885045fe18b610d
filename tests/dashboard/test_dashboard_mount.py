"""The dashboard mounted in the gateway at /ui: both answer on one port."""

from __future__ import annotations

from starlette.testclient import TestClient
from tests.dashboard.conftest import login
from tests.gateway.standins import marker_guard

from guardstack.dashboard.app import create_dashboard
from guardstack.gateway.app import create_app
from guardstack.gateway.recorder import MemoryRecorder
from guardstack.gateway.settings import GatewaySettings


def test_gateway_mounts_the_dashboard_at_ui(seeded):
    app = create_app(GatewaySettings(upstream="http://127.0.0.1:9/v1", open=True),
                     guard=marker_guard("BAD"), recorder=MemoryRecorder(),
                     dashboard=create_dashboard(seeded.store))
    with TestClient(app, follow_redirects=False) as c:
        r = c.get("/ui")
        assert r.status_code in (307, 308) and r.headers["location"].endswith("/ui/")
        assert c.get("/ui/queue").headers["location"].startswith("/ui/login")
        assert login(c, "reviewer", next_url="/ui/queue").headers["location"] == "/ui/queue"
        page = c.get("/ui/queue")
        assert page.status_code == 200 and seeded.case_id in page.text
        assert 'href="/ui/cases/' in page.text
        # The gateway's own endpoints are untouched.
        assert c.get("/healthz").json() == {"status": "ok"}
        r = c.post("/v1/moderations", json={"input": "hello"})
        assert r.status_code == 200 and r.json()["results"][0]["flagged"] is False
        assert c.get("/nope").status_code == 404


def test_gateway_without_a_dashboard_has_no_ui():
    app = create_app(GatewaySettings(upstream="http://127.0.0.1:9/v1", open=True),
                     guard=marker_guard("BAD"), recorder=MemoryRecorder())
    with TestClient(app) as c:
        assert c.get("/ui/login").status_code == 404
