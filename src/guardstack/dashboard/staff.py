"""Dashboard accounts (``dashboard_users``): people who review, not the
model's users. Roles: ``admin`` (everything, the audit log), ``reviewer``
(cases, histories, search, account actions), ``analyst`` (aggregates only).

Logins lock an account for ``LOCK_MINUTES`` after ``MAX_FAILURES`` wrong
passwords in a row; a correct password resets the count.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from guardstack.dashboard.passwords import DUMMY_HASH, hash_password, verify_password
from guardstack.store import audit
from guardstack.store.engine import Store
from guardstack.store.events import utcnow
from guardstack.store.schema import DASHBOARD_ROLES, dashboard_sessions, dashboard_users

MAX_FAILURES = 5
LOCK_MINUTES = 15
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")


@dataclass(frozen=True, slots=True)
class StaffMember:
    name: str
    role: str
    created_at: datetime
    last_login: datetime | None
    locked_until: datetime | None


class LoginFailed(Exception):
    """Wrong name or password, or a locked account (one message for all three)."""


def _member(row: sa.RowMapping) -> StaffMember:
    return StaffMember(row["name"], row["role"], row["created_at"], row["last_login"],
                       row["locked_until"])


def check_name(name: str) -> str:
    if not _NAME.match(name or ""):
        raise ValueError(f"invalid account name {name!r}: use 1-64 letters, digits and . _ @ -, "
                         "starting with a letter or digit")
    return name


def check_role(role: str) -> str:
    if role not in DASHBOARD_ROLES:
        raise ValueError(f"unknown role {role!r} (choose from {', '.join(DASHBOARD_ROLES)})")
    return role


class Staff:
    def __init__(self, store: Store) -> None:
        self.store = store

    def add(self, name: str, role: str, password: str, *, actor: str) -> StaffMember:
        check_name(name)
        check_role(role)
        hashed = hash_password(password)
        now = utcnow()
        with self.store.engine.begin() as conn:
            exists = conn.execute(sa.select(dashboard_users.c.name)
                                  .where(dashboard_users.c.name == name)).scalar()
            if exists is not None:
                raise ValueError(f"account {name!r} already exists")
            conn.execute(dashboard_users.insert().values(
                name=name, role=role, password_hash=hashed, created_at=now, failed_logins=0))
            audit.record(conn, actor=actor, action="dashboard.user_add",
                         detail={"name": name, "role": role})
        return StaffMember(name, role, now, None, None)

    def remove(self, name: str, *, actor: str) -> None:
        with self.store.engine.begin() as conn:
            gone = conn.execute(dashboard_users.delete()
                                .where(dashboard_users.c.name == name)).rowcount
            if not gone:
                raise ValueError(f"no dashboard account {name!r}")
            # Sessions go with the account (ON DELETE CASCADE needs SQLite's
            # foreign_keys pragma, which the store sets; this is belt and braces).
            conn.execute(dashboard_sessions.delete()
                         .where(dashboard_sessions.c.user_name == name))
            audit.record(conn, actor=actor, action="dashboard.user_remove",
                         detail={"name": name})

    def list(self) -> list[StaffMember]:
        with self.store.engine.connect() as conn:
            rows = conn.execute(sa.select(dashboard_users)
                                .order_by(dashboard_users.c.name)).mappings().all()
        return [_member(r) for r in rows]

    def get(self, name: str) -> StaffMember | None:
        with self.store.engine.connect() as conn:
            row = conn.execute(sa.select(dashboard_users)
                               .where(dashboard_users.c.name == name)).mappings().first()
        return _member(row) if row is not None else None

    def authenticate(self, name: str, password: str, *, client: str | None = None
                     ) -> StaffMember:
        """The account if ``password`` is right and it is not locked; else
        :class:`LoginFailed`. Every outcome is in the audit log."""
        now = utcnow()
        # Failures are committed before raising (raising inside the
        # transaction would roll the count and the audit entry back).
        failed = False
        with self.store.engine.begin() as conn:
            row = conn.execute(sa.select(dashboard_users)
                               .where(dashboard_users.c.name == name)).mappings().first()
            ok = verify_password(password, row["password_hash"] if row else DUMMY_HASH)
            detail = {"name": name[:64], "client": client}
            if row is None:
                audit.record(conn, actor="dashboard", action="dashboard.login_failed",
                             detail={**detail, "why": "unknown account"})
                failed = True
            elif (locked := row["locked_until"] is not None and row["locked_until"] > now) \
                    or not ok:
                failures = row["failed_logins"] + (0 if locked else 1)
                values: dict[str, object] = {"failed_logins": failures}
                if not locked and failures >= MAX_FAILURES:
                    values = {"failed_logins": 0,
                              "locked_until": now + timedelta(minutes=LOCK_MINUTES)}
                conn.execute(dashboard_users.update().where(dashboard_users.c.name == name)
                             .values(**values))
                audit.record(conn, actor="dashboard", action="dashboard.login_failed",
                             detail={**detail, "why": "locked" if locked else "password",
                                     "locked": "locked_until" in values or locked})
                failed = True
            else:
                conn.execute(dashboard_users.update().where(dashboard_users.c.name == name)
                             .values(failed_logins=0, locked_until=None, last_login=now))
                audit.record(conn, actor=name, action="dashboard.login", detail=detail)
        if failed or row is None:
            raise LoginFailed
        return StaffMember(row["name"], row["role"], row["created_at"], now, None)
