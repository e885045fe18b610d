"""Login sessions, kept in the store (``dashboard_sessions``).

The cookie holds a random token; the table holds its sha256, so reading the
table does not let anyone log in, and logging out (or removing the account)
ends the session at once. Each session has its own CSRF token, sent back in
every form and compared on every POST.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa

from guardstack.store.engine import Store
from guardstack.store.events import utcnow
from guardstack.store.schema import dashboard_sessions, dashboard_users

COOKIE = "guardstack_session"
#: A session lasts this long from login (a working day plus margin).
LIFETIME = timedelta(hours=12)


@dataclass(frozen=True, slots=True)
class Session:
    user: str
    role: str
    csrf: str


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class Sessions:
    def __init__(self, store: Store) -> None:
        self.store = store

    def create(self, user: str) -> tuple[str, Session]:
        """A new session for ``user``: (cookie token, session)."""
        token = secrets.token_urlsafe(32)
        csrf = secrets.token_urlsafe(32)
        now = utcnow()
        with self.store.engine.begin() as conn:
            # Expired sessions are dropped as new ones start: no cleanup job.
            conn.execute(dashboard_sessions.delete().where(dashboard_sessions.c.expires_at < now))
            role = conn.execute(sa.select(dashboard_users.c.role)
                                .where(dashboard_users.c.name == user)).scalar_one()
            conn.execute(dashboard_sessions.insert().values(
                id=_digest(token), user_name=user, csrf=csrf, created_at=now,
                expires_at=now + LIFETIME))
        return token, Session(user, role, csrf)

    def get(self, token: str | None) -> Session | None:
        """The live session for a cookie token (the role read fresh each time,
        so a changed or removed account takes effect on the next request)."""
        if not token or len(token) > 200:
            return None
        query = (sa.select(dashboard_sessions.c.user_name, dashboard_sessions.c.csrf,
                           dashboard_users.c.role)
                 .select_from(dashboard_sessions.join(
                     dashboard_users, dashboard_users.c.name == dashboard_sessions.c.user_name))
                 .where(dashboard_sessions.c.id == _digest(token),
                        dashboard_sessions.c.expires_at > utcnow()))
        with self.store.engine.connect() as conn:
            row = conn.execute(query).first()
        return Session(row.user_name, row.role, row.csrf) if row is not None else None

    def delete(self, token: str | None) -> None:
        if not token:
            return
        with self.store.engine.begin() as conn:
            conn.execute(dashboard_sessions.delete()
                         .where(dashboard_sessions.c.id == _digest(token)))
