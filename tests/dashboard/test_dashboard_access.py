"""Who may see and do what: roles, sessions, CSRF, login hardening."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from starlette.testclient import TestClient
from tests.dashboard.conftest import PASSWORD, audit_actions, csrf_of, login

from guardstack.dashboard.app import standalone_app
from guardstack.dashboard.staff import MAX_FAILURES, Staff
from guardstack.store.accounts import Accounts


def _case_status(seeded, case_id):
    import sqlalchemy as sa

    from guardstack.store.schema import cases

    with seeded.store.engine.connect() as conn:
        return conn.execute(sa.select(cases.c.status).where(cases.c.id == case_id)).scalar()


def test_pages_need_a_login(client_for, seeded):
    c = client_for(None)
    for path in ("/ui/", "/ui/queue", f"/ui/cases/{seeded.case_id}", "/ui/topics",
                 "/ui/search", "/ui/audit", f"/ui/users/{quote(seeded.user, safe='')}"):
        r = c.get(path)
        assert r.status_code == 303, path
        assert r.headers["location"].startswith("/ui/login?next=")
    assert c.post(f"/ui/cases/{seeded.case_id}/decide",
                  data={"action": "confirm", "csrf": "x"}).status_code == 403
    assert _case_status(seeded, seeded.case_id) == "open"


def test_reviewer_cannot_reach_admin_pages(client_for):
    reviewer, admin = client_for("reviewer"), client_for("admin")
    r = reviewer.get("/ui/audit")
    assert r.status_code == 403
    assert "reviewer role cannot open this page" in r.text
    assert admin.get("/ui/audit").status_code == 200
    assert 'href="/ui/audit"' not in reviewer.get("/ui/").text
    assert 'href="/ui/audit"' in admin.get("/ui/").text


def test_analyst_sees_only_aggregates(client_for, seeded):
    analyst = client_for("analyst")
    for path in ("/ui/", "/ui/topics"):
        r = analyst.get(path)
        assert r.status_code == 200, path
        assert "mitochondria" not in r.text and "Follow-up" not in r.text
    for path in ("/ui/queue", f"/ui/cases/{seeded.case_id}",
                 f"/ui/users/{quote(seeded.user, safe='')}", "/ui/users/u-benign",
                 "/ui/search?q=mitochondria", "/ui/audit"):
        r = analyst.get(path)
        assert r.status_code == 403, path
        assert "mitochondria" not in r.text
    # Not even through a form post with a valid token.
    token = csrf_of(analyst.get("/ui/").text)
    r = analyst.post(f"/ui/cases/{seeded.case_id}/decide",
                     data={"action": "dismiss", "csrf": token})
    assert r.status_code == 403
    r = analyst.post("/ui/users/u-benign/account",
                     data={"state": "suspended", "reason": "x", "csrf": token})
    assert r.status_code == 403
    assert Accounts(seeded.store, cache_ttl=0).get_state("u-benign").value == "none"
    assert _case_status(seeded, seeded.case_id) == "open"
    # And no raw history was read on the analyst's behalf.
    assert ("analyst", "history.read") not in audit_actions(seeded.store)


@pytest.mark.parametrize("token", [None, "", "wrong-token"])
def test_post_without_the_right_csrf_token_is_refused(client_for, seeded, token):
    reviewer = client_for("reviewer")
    data = {"action": "confirm", "note": "looks bad"}
    if token is not None:
        data["csrf"] = token
    r = reviewer.post(f"/ui/cases/{seeded.case_id}/decide", data=data)
    assert r.status_code == 403
    assert "CSRF" in r.text
    assert _case_status(seeded, seeded.case_id) == "open"
    r = reviewer.post(f"/ui/cases/{seeded.case_id}/account",
                      data={"state": "suspended", "reason": "x", **(
                          {"csrf": token} if token is not None else {})})
    assert r.status_code == 403
    assert Accounts(seeded.store, cache_ttl=0).get_state(seeded.user).value == "none"
    assert reviewer.post("/ui/logout", data={"csrf": token or ""}).status_code == 403


def test_another_sessions_csrf_token_is_refused(client_for, seeded):
    mine, theirs = client_for("reviewer"), client_for("admin")
    token = csrf_of(theirs.get("/ui/").text)
    r = mine.post(f"/ui/cases/{seeded.case_id}/decide", data={"action": "confirm",
                                                              "csrf": token})
    assert r.status_code == 403
    assert _case_status(seeded, seeded.case_id) == "open"


def test_decisions_with_the_token_apply_and_are_audited(client_for, seeded):
    reviewer = client_for("reviewer")
    page = reviewer.get(f"/ui/cases/{seeded.case_id}")
    token = csrf_of(page.text)
    r = reviewer.post(f"/ui/cases/{seeded.case_id}/decide",
                      data={"action": "confirm", "note": "clear intent", "csrf": token})
    assert r.status_code == 303
    assert _case_status(seeded, seeded.case_id) == "confirmed"
    r = reviewer.post(f"/ui/cases/{seeded.case_id}/account",
                      data={"state": "suspended", "reason": "confirmed abuse", "csrf": token})
    assert r.status_code == 303
    accounts = Accounts(seeded.store, cache_ttl=0)
    assert accounts.get_state(seeded.user).value == "suspended"
    action = accounts.history(seeded.user)[-1]
    assert action.actor == "dashboard:reviewer"
    assert seeded.case_id in action.reason
    # Reverse it from the user page.
    r = reviewer.post(f"/ui/actions/{action.id}/reverse",
                      data={"reason": "appeal upheld", "csrf": token,
                            "next": "https://evil.example/"})
    assert r.status_code == 303
    assert r.headers["location"] == "/ui/"  # never off-site
    assert accounts.get_state(seeded.user).value == "none"
    actions = audit_actions(seeded.store)
    assert ("reviewer", "case.view") in actions
    assert ("reviewer", "case.confirm") in actions


def test_account_action_needs_a_reason_and_a_known_state(client_for, seeded):
    reviewer = client_for("reviewer")
    token = csrf_of(reviewer.get("/ui/").text)
    r = reviewer.post("/ui/users/u-benign/account", data={"state": "suspended", "reason": " ",
                                                         "csrf": token})
    assert r.status_code == 400 and "reason" in r.text
    r = reviewer.post("/ui/users/u-benign/account", data={"state": "banished", "reason": "x",
                                                         "csrf": token})
    assert r.status_code == 400 and "unknown account state" in r.text
    r = reviewer.post(f"/ui/cases/{seeded.case_id}/decide", data={"action": "delete",
                                                                  "csrf": token})
    assert r.status_code == 400
    assert reviewer.get("/ui/cases/case-nope").status_code == 404
    assert reviewer.get("/ui/users/nobody-at-all").status_code == 404
    assert Accounts(seeded.store, cache_ttl=0).get_state("u-benign").value == "none"


def test_reading_a_users_history_is_audited(client_for, seeded):
    reviewer = client_for("reviewer")
    r = reviewer.get("/ui/users/u-benign")
    assert r.status_code == 200
    assert "mitochondria" in r.text
    from guardstack.store.audit import entries

    reads = [e for e in entries(seeded.store, subject_user="u-benign")
             if e.action == "history.read"]
    assert len(reads) == 1 and reads[0].actor == "reviewer"
    # By pseudonym too (links from cases use it).
    assert reviewer.get(f"/ui/users/p-{seeded.second_case[-16:]}").status_code == 200
    assert len([e for e in entries(seeded.store, subject_user="u-benign")
                if e.action == "history.read"]) == 2


def test_session_cookie_flags(seeded):
    with TestClient(standalone_app(seeded.store), follow_redirects=False) as c:
        r = login(c, "reviewer")
        cookie = r.headers["set-cookie"].lower()
        assert "guardstack_session=" in cookie
        assert "httponly" in cookie and "samesite=lax" in cookie and "secure" not in cookie
    with TestClient(standalone_app(seeded.store, secure_cookies=True),
                    base_url="https://testserver", follow_redirects=False) as c:
        cookie = login(c, "reviewer").headers["set-cookie"].lower()
        assert "secure" in cookie and "httponly" in cookie


def test_security_headers(client_for):
    r = client_for("admin").get("/ui/")
    assert "script-src 'self'" in r.headers["content-security-policy"]
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["cache-control"] == "no-store"


def test_logout_ends_the_session(client_for):
    c = client_for("reviewer")
    token = csrf_of(c.get("/ui/").text)
    cookie = c.cookies.get("guardstack_session")
    assert c.post("/ui/logout", data={"csrf": token}).status_code == 303
    c.cookies.set("guardstack_session", cookie)  # a copy of the cookie is no use now
    assert c.get("/ui/queue").status_code == 303


def test_removed_account_loses_its_session(client_for, seeded):
    c = client_for("reviewer")
    assert c.get("/ui/queue").status_code == 200
    Staff(seeded.store).remove("reviewer", actor="test")
    assert c.get("/ui/queue").status_code == 303


def test_login_failures_lock_the_account(seeded):
    with TestClient(standalone_app(seeded.store), follow_redirects=False) as c:
        for _ in range(MAX_FAILURES):
            r = login(c, "reviewer", "wrong-password")
            assert r.status_code == 401
            assert "Wrong name or password" in r.text
        r = login(c, "reviewer", PASSWORD)
        assert r.status_code == 401  # locked, even with the right password
        # Unknown accounts get the same answer (no account enumeration).
        assert "Wrong name or password" in login(c, "nobody", PASSWORD).text
    actions = audit_actions(seeded.store)
    assert actions.count(("dashboard", "dashboard.login_failed")) == MAX_FAILURES + 2
    assert Staff(seeded.store).get("reviewer").locked_until is not None


def test_login_needs_its_token_and_is_rate_limited(seeded):
    from guardstack.dashboard.security import LoginLimiter

    app = standalone_app(seeded.store, login_limiter=LoginLimiter(attempts=3, window=60))
    with TestClient(app, follow_redirects=False) as c:
        r = c.post("/ui/login", data={"name": "admin", "password": PASSWORD})
        assert r.status_code == 403
        codes = [login(c, "admin", "nope-nope").status_code for _ in range(3)]
        assert codes == [401, 401, 401]
        assert login(c, "admin", PASSWORD).status_code == 429


def test_login_redirects_only_inside_the_dashboard(seeded):
    with TestClient(standalone_app(seeded.store), follow_redirects=False) as c:
        assert login(c, "admin", next_url="/ui/queue").headers["location"] == "/ui/queue"
    for evil in ("https://evil.example/", "//evil.example/ui/", "/elsewhere", "/ui/\\evil"):
        with TestClient(standalone_app(seeded.store), follow_redirects=False) as c:
            assert login(c, "admin", next_url=evil).headers["location"] == "/ui/"
