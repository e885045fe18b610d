"""End to end, as a reviewer works: real headless Chromium (Debian's
``chromium`` driven by Playwright) against ``guardstack serve`` (the gateway
with the dashboard mounted at /ui) over a store filled by ``guardstack
simulate``, ``ingest`` and ``analyze``.

Log in, open the highest case, read its evidence, dismiss it, see the queue
and the audit log change, confirm the next case and suspend its account, and
then the gateway refuses that user's next request. Screenshots go to
``$GUARDSTACK_SCREENSHOTS`` or the test's tmp dir.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from tests.fixtures.llama_server import free_port
from tests.fixtures.processes import stop, wait_for_http

from guardstack.store import KeyStore, Store
from guardstack.store.schema import cases, messages

pytestmark = pytest.mark.slow
REVIEWER, ADMIN, PASSWORD = "rita", "ada", "a-long-enough-password"


def find_chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.fail("Chromium is not installed: the dashboard's end-to-end test needs it. "
                    "Install Debian's package (`apt-get install -y chromium`; .ci/run does).",
                    pytrace=False)
    try:
        import playwright.sync_api  # noqa: F401
    except ModuleNotFoundError:
        pytest.fail("Playwright is not installed: `pip install -e .[test]` (the pip wheel "
                    "only; the browser is the system's chromium).", pytrace=False)
    return path


@pytest.fixture
def chromium() -> str:
    """Checked before the gateway starts: a missing browser fails at once."""
    return find_chromium()


def test_a_missing_chromium_fails_rather_than_skips(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(pytest.fail.Exception, match="Chromium is not installed"):
        find_chromium()


def _guardstack(*args: str, stdin: str | None = None) -> str:
    proc = subprocess.run([sys.executable, "-m", "guardstack", *args], input=stdin,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.fixture
def gateway(filled_copy: Path, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """``guardstack serve`` over the filled store: (base URL, database URL)."""
    url = f"sqlite:///{filled_copy}"
    _guardstack("users", "add", REVIEWER, "--role", "reviewer", "--db", url,
                stdin=PASSWORD + "\n")
    _guardstack("users", "add", ADMIN, "--role", "admin", "--db", url, stdin=PASSWORD + "\n")
    port = free_port()
    log = (tmp_path / "serve.log").open("w")
    # No model server is needed: the checks here are the account state and
    # /v1/moderations, which the gateway answers itself.
    proc = subprocess.Popen(
        [sys.executable, "-m", "guardstack", "serve", "--upstream",
         f"http://127.0.0.1:{free_port()}/v1", "--port", str(port), "--db", url,
         "--state-ttl", "0.2", "--log-level", "warning"],
        stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(base + "/healthz", proc, what="guardstack serve", timeout=120,
                      output=lambda: (tmp_path / "serve.log").read_text())
        yield base, url
    finally:
        stop(proc, timeout=30)
        log.close()


def _moderate(base: str, key: str) -> httpx.Response:
    return httpx.post(base + "/v1/moderations", json={"input": "What is a good soup?"},
                      headers={"authorization": f"Bearer {key}"}, timeout=30)


def test_reviewer_decides_cases_in_a_real_browser(chromium, gateway, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    base, db = gateway
    shots = Path(os.environ.get("GUARDSTACK_SCREENSHOTS") or tmp_path / "screenshots")
    shots.mkdir(parents=True, exist_ok=True)
    store = Store(db)
    with store.engine.connect() as conn:
        open_cases = conn.execute(sa.select(sa.func.count()).select_from(cases)
                                  .where(cases.c.status == "open")).scalar_one()
    assert open_cases >= 2, "the simulated traffic should open at least two cases"

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium,
                                     args=["--no-sandbox", "--disable-dev-shm-usage"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))

        # Log in (any page sends you to the login form first).
        page.goto(base + "/ui/queue")
        expect(page).to_have_url(re.compile(r"/ui/login\?next="))
        page.fill("input[name=name]", REVIEWER)
        page.fill("input[name=password]", PASSWORD)
        page.click("#login-form button[type=submit]")
        expect(page.locator("#queue-summary")).to_contain_text(f"{open_cases} open case")
        page.screenshot(path=str(shots / "01-queue.png"), full_page=True)

        # The overview draws its charts with the locally served Chart.js.
        page.goto(base + "/ui/")
        expect(page.locator("h1")).to_have_text("Overview")
        assert page.evaluate("typeof Chart") == "function"
        assert page.evaluate("Chart.getChart(document.getElementById('chart-traffic'))"
                             " !== undefined")
        page.screenshot(path=str(shots / "02-overview.png"), full_page=True)

        # Open the highest case and read its evidence.
        page.goto(base + "/ui/queue")
        first = page.locator("a.case-link").first
        first_id = first.inner_text()
        first.click()
        expect(page.locator("#case-id")).to_have_text(first_id)
        evidence = page.locator("li.msg.evidence")
        assert evidence.count() >= 1
        shown = evidence.first.locator(".content").inner_text()
        message_id = int(evidence.first.get_attribute("id").removeprefix("msg-"))
        with store.engine.connect() as conn:
            stored = conn.execute(sa.select(messages.c.content)
                                  .where(messages.c.id == message_id)).scalar_one()
        assert shown.strip() == stored.strip()
        assert page.locator("#case-why li").count() >= 1
        page.screenshot(path=str(shots / "03-case.png"), full_page=True)

        # Dismiss it; the queue loses it.
        page.fill("#decide-form textarea[name=note]", "benign on reading the context")
        page.click("#dismiss")
        expect(page.locator("#case-status")).to_have_text("dismissed")
        page.goto(base + "/ui/queue")
        expect(page.locator("#queue-summary")).to_contain_text(f"{open_cases - 1} open case")
        assert first_id not in page.locator("#queue").inner_text()

        # Confirm the next one and suspend its account.
        second = page.locator("a.case-link").first
        second_id = second.inner_text()
        with store.engine.connect() as conn:
            users = conn.execute(sa.select(cases.c.user_ids)
                                 .where(cases.c.id == second_id)).scalar_one()
        keys = KeyStore(store)
        user_keys = [keys.create(u, actor="test")[0] for u in users]
        assert all(_moderate(base, k).status_code == 200 for k in user_keys)
        second.click()
        page.fill("#decide-form textarea[name=note]", "confirmed: clear harmful intent")
        page.click("#confirm")
        expect(page.locator("#case-status")).to_have_text("confirmed")
        page.select_option("#account-state", "suspended")
        page.fill("#account-reason", "confirmed abuse case")
        page.click("#set-state")
        expect(page.locator("#case-users td.state").first).to_have_text("suspended")
        page.screenshot(path=str(shots / "04-confirmed.png"), full_page=True)

        # The user's timeline: sessions charted, history shown (and audited).
        page.locator("#case-users a").first.click()
        expect(page.locator("#user-state")).to_have_text("suspended")
        assert page.locator("#user-messages li").count() >= 1
        assert page.evaluate("Chart.getChart(document.getElementById('chart-timeline'))"
                             " !== undefined")
        page.screenshot(path=str(shots / "05-user.png"), full_page=True)

        # A reviewer has no audit log; the admin sees both decisions in it.
        page.click("#logout")
        expect(page).to_have_url(re.compile(r"/ui/login"))
        page.fill("input[name=name]", ADMIN)
        page.fill("input[name=password]", PASSWORD)
        page.click("#login-form button[type=submit]")
        page.goto(base + "/ui/audit?actor=" + REVIEWER)
        audit_text = page.locator("#audit").inner_text()
        for action in ("case.dismiss", "case.confirm", "case.view", "history.read",
                       "dashboard.login"):
            assert action in audit_text, action
        assert first_id in audit_text and second_id in audit_text
        page.screenshot(path=str(shots / "06-audit.png"), full_page=True)
        browser.close()
    assert errors == [], errors

    # The gateway refuses the suspended user's next request.
    time.sleep(0.5)  # past --state-ttl
    for key in user_keys:
        r = _moderate(base, key)
        assert r.status_code == 403, r.text
        assert r.json()["error"]["code"] == "account_suspended"
    store.dispose()
    assert (shots / "06-audit.png").stat().st_size > 0
