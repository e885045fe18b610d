"""Every page over hostile stored text, on SQLite and PostgreSQL: it renders,
it shows what it should, and the text comes out escaped."""

from __future__ import annotations

from urllib.parse import quote

import sqlalchemy as sa
from starlette.testclient import TestClient
from tests.dashboard.conftest import XSS_USER, csrf_of, login

from guardstack.dashboard.app import standalone_app
from guardstack.model.export import confirmed_messages
from guardstack.store import Store
from guardstack.store.schema import cases

RAW_MARKUP = ("<script>alert", "<img src=x", "<svg onload", "onerror=alert(1)>")


def _assert_escaped(html: str, where: str) -> None:
    for raw in RAW_MARKUP:
        assert raw not in html, f"unescaped {raw!r} on {where}"


def test_every_page_renders_stored_text_escaped(seeded_any):
    s = seeded_any
    with TestClient(standalone_app(s.store), follow_redirects=False) as c:
        assert login(c, "admin").status_code == 303
        pages = {
            "overview": "/ui/",
            "queue": "/ui/queue",
            "case": f"/ui/cases/{s.case_id}",
            "user": f"/ui/users/{quote(s.user, safe='')}",
            "topics": "/ui/topics",
            "search": "/ui/search?q=" + quote("Follow-up"),
            "search by user": "/ui/search?user=" + quote(s.user, safe=""),
        }
        html = {}
        for name, path in pages.items():
            r = c.get(path)
            assert r.status_code == 200, (name, r.text[:500])
            _assert_escaped(r.text, name)
            html[name] = r.text
        # The text is there, escaped, where a reviewer needs it.
        escaped = "&lt;script&gt;alert(&#34;xss&#34;)&lt;/script&gt;"
        for name in ("case", "user", "search", "search by user", "topics"):
            assert escaped in html[name], name
        assert "&lt;svg onload=alert(2)&gt;" in html["case"]  # the user id
        assert "&lt;svg onload=alert(2)&gt;" in html["user"]
        assert "recipes &lt;script&gt;" in html["topics"]  # the cluster label
        assert "example &lt;script&gt;" in html["topics"]  # its examples (not analysts)
        assert "recipes &lt;script&gt;" in html["overview"]
        # Evidence is highlighted, the decomposition step marked, and the one
        # request wrapped in a jailbreak tactic named as such.
        assert "decomposition step" in html["case"]
        assert html["case"].count("jailbreak tactics: refusal suppression") == 1
        assert html["queue"].index(s.case_id) < html["queue"].index(s.second_case)
        # Audit log, which now holds the user id and search text.
        r = c.get("/ui/audit")
        assert r.status_code == 200
        _assert_escaped(r.text, "audit")
        assert "history.read" in r.text and "case.view" in r.text and "search" in r.text


def test_below_minimum_clusters_are_never_shown(seeded):
    with TestClient(standalone_app(seeded.store), follow_redirects=False) as c:
        login(c, "analyst")
        for path in ("/ui/topics", "/ui/"):
            r = c.get(path)
            assert "recipes" in r.text
            assert "SMALLCLUSTER" not in r.text, path
        # Example requests are text people wrote: not for the aggregate-only role.
        assert "example &lt;script&gt;" not in c.get("/ui/topics").text
    # A dashboard with a lower minimum still never goes below the one the
    # cluster was computed with... and one at 3 shows the 3-user cluster.
    with TestClient(standalone_app(seeded.store, k_anonymity=3), follow_redirects=False) as c:
        login(c, "analyst")
        assert "SMALLCLUSTER" in c.get("/ui/topics").text


def test_decisions_become_training_labels(seeded_any):
    s = seeded_any
    with TestClient(standalone_app(s.store), follow_redirects=False) as c:
        login(c, "reviewer")
        token = csrf_of(c.get(f"/ui/cases/{s.case_id}").text)
        assert confirmed_messages(s.store) == {}
        r = c.post(f"/ui/cases/{s.case_id}/decide",
                   data={"action": "confirm", "note": "harmful", "csrf": token})
        assert r.status_code == 303
        r = c.post(f"/ui/cases/{s.second_case}/decide",
                   data={"action": "dismiss", "note": "benign homework", "csrf": token})
        assert r.status_code == 303
        page = c.get(f"/ui/cases/{s.second_case}").text
        assert "dismissed" in page and "benign homework" in page
    # export-training reads exactly the confirmed case's evidence ...
    assert confirmed_messages(s.store) == {s.message_ids[0]: "abuse", s.message_ids[2]: "abuse"}
    # ... and the dismissal is kept, with who and why, as a negative label.
    with s.store.engine.connect() as conn:
        row = conn.execute(sa.select(cases.c.status, cases.c.reviewer, cases.c.note)
                           .where(cases.c.id == s.second_case)).one()
    assert tuple(row) == ("dismissed", "reviewer", "benign homework")


def test_queue_pages_through_many_cases(seeded):
    from datetime import UTC, datetime

    now = datetime(2026, 3, 10, tzinfo=UTC)
    rows = [{"id": f"case-bulk{i:08d}", "kind": "abuse", "label": "malicious",
             "category": "cyber", "severity": ("low", "medium", "high")[i % 3],
             "score": round(0.5 + (i % 50) / 100, 2), "subject": f"p-{i}", "user_ids": [f"u{i}"],
             "evidence": [], "status": "open", "first_seen": now, "updated_at": now}
            for i in range(1000)]
    with seeded.store.engine.begin() as conn:
        conn.execute(sa.insert(cases), rows)
    with TestClient(standalone_app(seeded.store), follow_redirects=False) as c:
        login(c, "reviewer")
        first = c.get("/ui/queue").text
        assert "1002 open cases" in first and "Page 1 of 21" in first
        assert first.index(seeded.case_id) < first.index("sev-high")  # critical first
        last = c.get("/ui/queue?page=21").text
        assert "Page 21 of 21" in last and "sev-low" in last and "sev-high" not in last
        assert "Page 21 of 21" in c.get("/ui/queue?page=999").text
        assert c.get("/ui/queue?status=bogus").status_code == 400


def test_user_ids_with_markup_round_trip_through_links(seeded):
    with TestClient(standalone_app(seeded.store), follow_redirects=False) as c:
        login(c, "reviewer")
        case = c.get(f"/ui/cases/{seeded.case_id}").text
        href = "/ui/users/" + quote(XSS_USER, safe="")
        assert f'href="{href}"' in case
        assert c.get(href).status_code == 200


def _chart(html: str) -> dict:
    import json
    import re

    found = re.search(r'<script type="application/json" id="overview-data">(.*?)</script>',
                      html, re.S)
    assert found
    return json.loads(found.group(1))


def test_overview_counts_are_kept_up_to_date_incrementally(seeded_any):
    from datetime import UTC, datetime

    from guardstack.dashboard import rollup
    from guardstack.store.schema import exchanges, messages

    s = seeded_any
    with TestClient(standalone_app(s.store), follow_redirects=False) as c:
        login(c, "analyst")
        chart = _chart(c.get("/ui/").text)
        day = chart["days"].index("2026-03-10")
        assert chart["traffic"]["user"]["block"][day] == 1
        assert chart["traffic"]["user"]["allow"][day] == 1
        assert chart["traffic"]["assistant"]["allow"][day] == 3
        assert chart["categories"]["cyber"][day] == 2  # one block, one flag
        # Traffic that arrives after a view is counted on the next one.
        ts = datetime(2026, 3, 10, 13, 0, tzinfo=UTC)
        with s.store.engine.begin() as conn:
            conn.execute(exchanges.insert().values(id="ex-new", ts_start=ts, user_id="u-new",
                                                   stream=False, halted=False, redacted=False))
            conn.execute(messages.insert().values(
                exchange_id="ex-new", idx=0, role="user", content="new", ts=ts,
                user_id="u-new", decision="block", categories=["hate"], scores={"harm": 1}))
        chart = _chart(c.get("/ui/").text)
        assert chart["traffic"]["user"]["block"][day] == 2
        assert chart["categories"]["hate"][day] == 1
        assert chart["categories"]["cyber"][day] == 2
        # Counting again from scratch gives the same numbers.
        rollup.refresh(s.store, rebuild=True)
        assert _chart(c.get("/ui/").text) == chart


def test_analyze_persists_a_k_anonymous_topic_map(filled_db):
    from guardstack.store.schema import topic_clusters

    store = Store(f"sqlite:///{filled_db}")
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(topic_clusters.c.users, topic_clusters.c.min_users)
                            ).all()
    store.dispose()
    assert rows, "analyze wrote no topic clusters"
    assert all(users >= min_users >= 5 for users, min_users in rows)



def test_search_finds_the_exchange_a_client_quotes_by_its_request_id(seeded):
    """The gateway's x-request-id is the stored exchange's id: a reviewer
    pastes it and sees that exchange's messages, however old, and the read
    is audited."""
    with TestClient(standalone_app(seeded.store), follow_redirects=False) as c:
        login(c, "admin")
        r = c.get("/ui/search?request=ex-2&days=1")
        assert r.status_code == 200
        assert "What do mitochondria do in a cell?" in r.text and "They make ATP." in r.text
        assert "Follow-up" not in r.text and "2 results" in r.text
        assert "0 results" in c.get("/ui/search?request=ex-none").text
        assert '"exchange": "ex-2"' in c.get("/ui/audit").text.replace("&#34;", '"')
