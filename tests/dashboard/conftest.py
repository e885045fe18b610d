"""Dashboard fixtures.

* ``seeded``: a store written directly (no classifier), holding hostile text
  (XSS payloads) in prompts, responses, user ids and a cluster label, plus
  one account per role. Fast; parametrised over SQLite and PostgreSQL where a
  test asks for ``seeded_any``.
* ``filled_db``: a store filled by the real commands, ``guardstack simulate``
  then ``guardstack ingest`` and ``guardstack analyze`` (once per session;
  tests get a private copy).
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from starlette.testclient import TestClient
from tests.fixtures.postgres import pg_server, pg_url  # noqa: F401

from guardstack.dashboard.app import standalone_app
from guardstack.dashboard.staff import Staff
from guardstack.store import Store
from guardstack.store.schema import cases, exchanges, findings, messages, topic_clusters

#: Markup that would run if any page wrote stored text without escaping.
XSS = '<script>alert("xss")</script><img src=x onerror=alert(1)>'
XSS_USER = 'u-"><svg onload=alert(2)>'
PASSWORD = "correct-horse-battery"
ROLES = ("admin", "reviewer", "analyst")
CASE_ID = "case-xss0000000000000000000001"
SECOND_CASE = "case-benign00000000000000000002"


@dataclass
class Seeded:
    store: Store
    url: str
    case_id: str
    second_case: str
    user: str
    other_user: str
    message_ids: list[int]


def seed(store: Store) -> Seeded:
    now = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
    with store.engine.begin() as conn:
        ids: list[int] = []
        for n, (user, prompt, answer, decision) in enumerate([
            (XSS_USER, f"How do I make {XSS} at home?", f"Sure: {XSS}", "block"),
            (XSS_USER, "Follow-up. No disclaimers. " + XSS, "I can't help with that.", "flag"),
            ("u-benign", "What do mitochondria do in a cell?", "They make ATP.", "allow"),
        ]):
            ex = f"ex-{n}"
            ts = now - timedelta(hours=3 - n)
            conn.execute(exchanges.insert().values(
                id=ex, ts_start=ts, user_id=user, conversation_id=f"conv-{user}", stream=False,
                halted=False, redacted=False, prompt_decision=decision))
            for idx, (role, text) in enumerate((("user", prompt), ("assistant", answer))):
                mid = conn.execute(messages.insert().values(
                    exchange_id=ex, idx=idx, role=role, content=text, ts=ts, user_id=user,
                    conversation_id=f"conv-{user}", decision=decision if role == "user"
                    else "allow", scores={"harm": 0.9 if decision != "allow" else 0.01,
                                          "cyber": 0.8}, categories=["cyber"]
                    if decision != "allow" else []).returning(messages.c.id)).scalar_one()
                ids.append(mid)
        evidence = [{"message_id": ids[0], "ts": now.isoformat(), "harm": 0.9,
                     "category": "cyber", "category_score": 0.8,
                     "why": "step of a topic group of 2 requests judged together " + XSS},
                    {"message_id": ids[2], "why": "harm above floor " + XSS, "harm": 0.85}]
        for cid, user, severity, score, ev in (
                (CASE_ID, XSS_USER, "critical", 0.97, evidence),
                (SECOND_CASE, "u-benign", "low", 0.55,
                 [{"message_id": ids[4], "why": "harm above floor", "harm": 0.6}])):
            conn.execute(cases.insert().values(
                id=cid, kind="abuse", label="malicious", category="cyber", severity=severity,
                score=score, subject="p-" + cid[-16:], user_ids=[user], evidence=ev,
                status="open", first_seen=now, updated_at=now))
            conn.execute(findings.insert().values(
                id="f-" + cid, user_id=user, pseudonym="p-" + cid[-16:], label="malicious",
                category="cyber", score=score, case_id=cid, evidence=ev, updated_at=now))
        for cid, label, users in (("topic-big", "recipes " + XSS, 12),
                                  ("topic-small", "SMALLCLUSTER secret", 3)):
            conn.execute(topic_clusters.insert().values(
                run_id="run-1", id=cid, label=label, terms=[label], users=users, messages=40,
                flag_rate=0.25, flag_rate_earlier=0.1, flag_rate_recent=0.4, rising=True,
                examples=["example " + XSS], min_users=2, created_at=now))
    staff = Staff(store)
    for role in ROLES:
        staff.add(role, role, PASSWORD, actor="test")
    return Seeded(store, store.url, CASE_ID, SECOND_CASE, XSS_USER, "u-benign", ids)


@pytest.fixture
def seeded(tmp_path: Path) -> Iterator[Seeded]:
    store = Store(f"sqlite:///{tmp_path / 'seeded.db'}")
    store.migrate()
    yield seed(store)
    store.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def seeded_any(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Seeded]:
    url = (f"sqlite:///{tmp_path / 'seeded.db'}" if request.param == "sqlite"
           else request.getfixturevalue("pg_url"))
    store = Store(url)
    store.migrate()
    yield seed(store)
    store.dispose()


def login(client: TestClient, name: str, password: str = PASSWORD, *, next_url: str = ""
          ) -> object:
    page = client.get("/ui/login")
    token = re.search(r'name="login_token" value="([^"]+)"', page.text)
    assert token, page.text
    return client.post("/ui/login", data={"login_token": token.group(1), "name": name,
                                          "password": password, "next": next_url},
                       follow_redirects=False)


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "no CSRF field on the page"
    return found.group(1)


@pytest.fixture
def client_for(seeded: Seeded) -> Iterator[object]:
    """``client_for(role)`` -> a TestClient logged in with that role."""
    clients: list[TestClient] = []

    def make(role: str | None) -> TestClient:
        c = TestClient(standalone_app(seeded.store), follow_redirects=False)
        clients.append(c)
        if role is not None:
            assert login(c, role).status_code == 303  # type: ignore[attr-defined]
        return c

    yield make
    for c in clients:
        c.close()


def audit_actions(store: Store) -> list[tuple[str, str]]:
    from guardstack.store.schema import audit_log

    with store.engine.connect() as conn:
        return [(a, b) for a, b in conn.execute(
            sa.select(audit_log.c.actor, audit_log.c.action).order_by(audit_log.c.id))]


# -- a store filled by the real commands ------------------------------------------------

SIMULATE = ["--users", "40", "--days", "7", "--seed", "5", "--mix", "adversary=0.4"]


@pytest.fixture(scope="session")
def filled_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``guardstack simulate``, ``ingest`` and ``analyze`` into a SQLite file."""
    from guardstack.cli import main

    root = tmp_path_factory.mktemp("filled")
    traffic, db = root / "traffic.jsonl", root / "filled.db"
    url = f"sqlite:///{db}"
    assert main(["simulate", *SIMULATE, "--out", str(traffic)]) == 0
    assert main(["ingest", str(traffic), "--db", url, "--quiet"]) == 0
    assert main(["analyze", "--db", url, "--quiet"]) == 0
    return db


@pytest.fixture
def filled_copy(filled_db: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "store.db"
    shutil.copy(filled_db, copy)
    return copy
