"""The dashboard's Starlette app: routes, login, roles, CSRF, templates.

Mounted at ``/ui`` (``guardstack serve`` mounts it in the gateway,
``guardstack dashboard`` serves it alone); every link is built from the
mount point, so it works under any prefix. Database work runs in a thread
(the store is synchronous), so a slow query never stalls the gateway's
event loop.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from guardstack.dashboard import decisions, queries, roles
from guardstack.dashboard.security import LoginLimiter, SecurityHeaders, same_token
from guardstack.dashboard.sessions import COOKIE, LIFETIME, Session, Sessions
from guardstack.dashboard.staff import LoginFailed, Staff
from guardstack.store.engine import Store
from guardstack.store.errors import StoreError

HERE = Path(__file__).parent
LOGIN_COOKIE = "guardstack_login"
Page = Callable[[Request, Session, FormData | None], Response]


def _when(value: Any) -> str:
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S UTC")
    return "" if value is None else str(value)


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        # Every template, whatever its name: stored text is untrusted.
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["when"] = _when
    env.filters["pct"] = lambda v: f"{100 * float(v or 0):.1f}%"
    env.filters["score"] = lambda v: f"{float(v or 0):.2f}"
    env.filters["q"] = lambda v: quote(str(v), safe="")
    return env


class Dashboard:
    def __init__(self, store: Store, *, secure_cookies: bool = False, k_anonymity: int = 5,
                 login_limiter: LoginLimiter | None = None) -> None:
        self.store = store
        self.staff = Staff(store)
        self.sessions = Sessions(store)
        self.secure = secure_cookies
        self.k_anonymity = k_anonymity
        self.limiter = login_limiter or LoginLimiter()
        self.env = _environment()

    # -- rendering -------------------------------------------------------------------

    def render(self, request: Request, template: str, session: Session | None = None,
               status: int = 200, **context: Any) -> HTMLResponse:
        base = request.scope.get("root_path", "")
        html = self.env.get_template(template).render(
            base=base, session=session, csrf=session.csrf if session else "",
            request_path=request.url.path,
            can=(lambda p: session is not None and roles.allows(session.role, p)),
            **context)
        return HTMLResponse(html, status_code=status)

    def error(self, request: Request, session: Session | None, status: int,
              message: str) -> HTMLResponse:
        return self.render(request, "error.html", session, status=status, status_code=status,
                           message=message)

    def redirect(self, request: Request, path: str) -> RedirectResponse:
        return RedirectResponse(request.scope.get("root_path", "") + path, status_code=303)

    # -- access control --------------------------------------------------------------

    def page(self, permission: str, fn: Page) -> Callable[[Request], Awaitable[Response]]:
        """Wrap a page: a live session, the role's permission, and on POST a
        form whose CSRF token matches the session's."""

        async def endpoint(request: Request) -> Response:
            session = await run_in_threadpool(self.sessions.get, request.cookies.get(COOKIE))
            if session is None:
                if request.method != "GET":
                    return self.error(request, None, 403, "Your session has ended: log in "
                                                          "again.")
                target = request.url.path
                if request.url.query:
                    target += "?" + request.url.query
                return self.redirect(request, "/login?next=" + quote(target, safe=""))
            if not roles.allows(session.role, permission):
                return self.error(request, session, 403,
                                  f"The {session.role} role cannot open this page.")
            form = None
            if request.method == "POST":
                form = await request.form()
                if not same_token(form.get("csrf"), session.csrf):
                    return self.error(request, session, 403,
                                      "Missing or wrong CSRF token: reload the page and "
                                      "try again.")
            try:
                return await run_in_threadpool(fn, request, session, form)
            except (decisions.DecisionError, StoreError, ValueError) as exc:
                return self.error(request, session, 400, str(exc))

        return endpoint

    # -- login -----------------------------------------------------------------------

    def _next(self, request: Request, value: Any) -> str:
        base = request.scope.get("root_path", "")
        # Only a path inside the dashboard: never another site (open redirect).
        if isinstance(value, str) and value.startswith(base + "/") and \
                not value.startswith("//") and "\\" not in value and ":" not in value:
            return value
        return base + "/"

    async def login(self, request: Request) -> Response:
        if request.method == "GET":
            token = secrets.token_urlsafe(24)
            page = self.render(request, "login.html", None, login_token=token,
                               next=request.query_params.get("next", ""), message="")
            page.set_cookie(LOGIN_COOKIE, token, max_age=3600, httponly=True,
                                samesite="lax", secure=self.secure,
                                path=request.scope.get("root_path", "") or "/")
            return page
        form = await request.form()
        client = request.client.host if request.client else "unknown"
        token = request.cookies.get(LOGIN_COOKIE, "")
        if not token or not same_token(form.get("login_token"), token):
            return self.error(request, None, 403, "Missing or wrong login token: reload the "
                                                  "login page and try again.")
        next_url = self._next(request, form.get("next"))

        def again(message: str, status: int) -> Response:
            return self.render(request, "login.html", None, status=status, login_token=token,
                               next=next_url, message=message)

        if not self.limiter.allow(client):
            return again("Too many login attempts from this address; wait a few minutes.", 429)
        name, password = str(form.get("name", "")), str(form.get("password", ""))
        try:
            member = await run_in_threadpool(self.staff.authenticate, name[:64], password,
                                             client=client)
        except LoginFailed:
            return again("Wrong name or password, or the account is locked.", 401)
        cookie, _session = await run_in_threadpool(self.sessions.create, member.name)
        response = RedirectResponse(next_url, status_code=303)
        response.set_cookie(COOKIE, cookie, max_age=int(LIFETIME.total_seconds()),
                            httponly=True, samesite="lax", secure=self.secure,
                            path=request.scope.get("root_path", "") or "/")
        response.delete_cookie(LOGIN_COOKIE, path=request.scope.get("root_path", "") or "/")
        return response

    def logout(self, request: Request, session: Session, form: FormData | None) -> Response:
        self.sessions.delete(request.cookies.get(COOKIE))
        response = self.redirect(request, "/login")
        response.delete_cookie(COOKIE, path=request.scope.get("root_path", "") or "/")
        return response

    # -- pages -----------------------------------------------------------------------

    def overview(self, request: Request, session: Session, form: FormData | None) -> Response:
        days = _int(request.query_params.get("days"), 14, 1, 90)
        data = queries.overview(self.store, days, self.k_anonymity)
        return self.render(request, "overview.html", session, data=data, days=days,
                           chart=data.chart_data())

    def queue(self, request: Request, session: Session, form: FormData | None) -> Response:
        status = request.query_params.get("status", "open")
        kind = request.query_params.get("kind") or None
        page = queries.queue(self.store, status=status, kind=kind,
                             page=_int(request.query_params.get("page"), 1, 1, 10**9))
        return self.render(request, "queue.html", session, q=page)

    def case(self, request: Request, session: Session, form: FormData | None) -> Response:
        case_id = request.path_params["case_id"]
        view = queries.case_view(self.store, case_id, actor=session.user)
        if view is None:
            return self.error(request, session, 404, f"No case {case_id}.")
        return self.render(request, "case.html", session, v=view,
                           actions=decisions.CASE_ACTIONS, states=decisions.SETTABLE_STATES)

    def decide(self, request: Request, session: Session, form: FormData | None) -> Response:
        assert form is not None
        case_id = request.path_params["case_id"]
        decisions.decide(self.store, case_id, str(form.get("action", "")),
                         reviewer=session.user, note=str(form.get("note", "")))
        return self.redirect(request, f"/cases/{quote(case_id, safe='')}")

    def case_account(self, request: Request, session: Session,
                     form: FormData | None) -> Response:
        assert form is not None
        case_id = request.path_params["case_id"]
        users = queries.case_users(self.store, case_id)
        if users is None:
            return self.error(request, session, 404, f"No case {case_id}.")
        decisions.set_account_state(self.store, users,
                                    str(form.get("state", "")), reviewer=session.user,
                                    reason=str(form.get("reason", "")), case_id=case_id)
        return self.redirect(request, f"/cases/{quote(case_id, safe='')}")

    def user(self, request: Request, session: Session, form: FormData | None) -> Response:
        key = request.path_params["user"]
        resolved = queries.resolve_user(self.store, key)
        if resolved is None:
            return self.error(request, session, 404, "No such user in the store.")
        raw, pseudonym = resolved
        reason = request.query_params.get("reason") or "dashboard user view"
        view = queries.user_view(self.store, raw, pseudonym, actor=session.user,
                                 reason=reason[:200])
        timeline = [{"x": s["start"].timestamp() * 1000, "y": round(s["max_score"], 4),
                     "n": s["messages"]} for s in view.sessions]
        return self.render(request, "user.html", session, v=view, timeline=timeline,
                           states=decisions.SETTABLE_STATES)

    def user_account(self, request: Request, session: Session,
                     form: FormData | None) -> Response:
        assert form is not None
        key = request.path_params["user"]
        resolved = queries.resolve_user(self.store, key)
        if resolved is None:
            return self.error(request, session, 404, "No such user in the store.")
        decisions.set_account_state(self.store, [resolved[0]], str(form.get("state", "")),
                                    reviewer=session.user, reason=str(form.get("reason", "")))
        return self.redirect(request, f"/users/{quote(key, safe='')}")

    def reverse(self, request: Request, session: Session, form: FormData | None) -> Response:
        assert form is not None
        decisions.reverse_action(self.store, int(request.path_params["action_id"]),
                                 reviewer=session.user, reason=str(form.get("reason", "")))
        back = self._next(request, form.get("next"))
        return RedirectResponse(back, status_code=303)

    def topics(self, request: Request, session: Session, form: FormData | None) -> Response:
        clusters, run = queries.topics(self.store, self.k_anonymity)
        return self.render(request, "topics.html", session, clusters=clusters, run=run,
                           k=self.k_anonymity)

    def search(self, request: Request, session: Session, form: FormData | None) -> Response:
        p = request.query_params
        text, user, decision = p.get("q", "")[:200], p.get("user", "")[:200], \
            p.get("decision", "")
        exchange = p.get("request", "").strip()[:64]
        if decision not in ("", "allow", "flag", "block"):
            raise ValueError(f"unknown decision {decision!r}")
        days = _int(p.get("days"), 7, 1, 90)
        result = None
        if text or user or decision or exchange:
            result = queries.search(self.store, actor=session.user, text=text, user=user,
                                    decision=decision, days=days, exchange=exchange)
        return self.render(request, "search.html", session, result=result, text=text,
                           user=user, decision=decision, days=days, exchange=exchange)

    def audit(self, request: Request, session: Session, form: FormData | None) -> Response:
        p = request.query_params
        page = _int(p.get("page"), 1, 1, 10**9)
        rows, more = queries.audit_page(self.store, page=page, actor=p.get("actor", ""),
                                        action=p.get("action", ""))
        return self.render(request, "audit.html", session, rows=rows, page=page, more=more,
                           actor=p.get("actor", ""), action=p.get("action", ""))


def _int(value: str | None, default: int, low: int, high: int) -> int:
    try:
        return min(max(int(value), low), high) if value else default
    except ValueError:
        return default


def create_dashboard(store: Store | str | None = None, *, secure_cookies: bool = False,
                     k_anonymity: int = 5, login_limiter: LoginLimiter | None = None
                     ) -> Starlette:
    """The dashboard as an ASGI app, to mount at ``/ui`` (or anywhere)."""
    store = store if isinstance(store, Store) else Store(store)
    d = Dashboard(store, secure_cookies=secure_cookies, k_anonymity=k_anonymity,
                  login_limiter=login_limiter)
    page = d.page
    app = Starlette(routes=[
        Route("/", page(roles.AGGREGATES, d.overview), methods=["GET"]),
        Route("/login", d.login, methods=["GET", "POST"]),
        Route("/logout", page(roles.AGGREGATES, d.logout), methods=["POST"]),
        Route("/queue", page(roles.CASES, d.queue), methods=["GET"]),
        Route("/cases/{case_id}", page(roles.CASES, d.case), methods=["GET"]),
        Route("/cases/{case_id}/decide", page(roles.CASES, d.decide), methods=["POST"]),
        Route("/cases/{case_id}/account", page(roles.HISTORY, d.case_account),
              methods=["POST"]),
        Route("/users/{user:path}/account", page(roles.HISTORY, d.user_account),
              methods=["POST"]),
        Route("/users/{user:path}", page(roles.HISTORY, d.user), methods=["GET"]),
        Route("/actions/{action_id:int}/reverse", page(roles.HISTORY, d.reverse),
              methods=["POST"]),
        Route("/topics", page(roles.AGGREGATES, d.topics), methods=["GET"]),
        Route("/search", page(roles.SEARCH, d.search), methods=["GET"]),
        Route("/audit", page(roles.AUDIT, d.audit), methods=["GET"]),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ])
    app.state.dashboard = d
    app.add_middleware(SecurityHeaders)
    return app


def standalone_app(store: Store | str | None = None, **options: Any) -> Starlette:
    """The dashboard alone, at ``/ui`` (``/`` redirects there)."""

    async def home(request: Request) -> Response:
        return RedirectResponse("/ui/", status_code=307)

    return Starlette(routes=[Route("/", home), Mount("/ui", app=create_dashboard(store,
                                                                                **options))])
