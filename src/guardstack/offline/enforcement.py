"""Acting on findings: account states from cases, off unless ``--enforce``.

A case at or above ``enforce_severity`` that is not dismissed puts its users in
``enforce_state`` through :meth:`guardstack.store.Accounts.set_state` with
actor ``analyze`` and the case id as the reason, so every action says where
it came from and ``guardstack accounts reverse ACTION_ID`` undoes it. A user
already in an equal or stricter state is left alone. Wellbeing cases never
restrict an account: a person in crisis needs help, not a suspension. Each
case acts once (``cases.enforcement_action_id``); re-runs do not repeat it.
Injection cases never restrict an account either: its agent was attacked.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from guardstack.offline.cases import Case
from guardstack.offline.settings import SEVERITIES, AnalysisSettings
from guardstack.store.accounts import Accounts, AccountState
from guardstack.store.engine import Store
from guardstack.store.schema import ACCOUNT_STATES
from guardstack.store.schema import cases as cases_table

ACTOR = "analyze"
#: Cases whose accounts are not the ones at fault: a person in crisis, and the
#: accounts whose agents read planted instructions.
NEVER_ENFORCED = frozenset({"wellbeing", "injection"})


@dataclass(frozen=True)
class Enforced:
    case_id: str
    user: str  # pseudonym
    state: str
    action_id: int


def enforce(store: Store, cases: list[Case], settings: AnalysisSettings) -> list[Enforced]:
    accounts = Accounts(store, cache_ttl=0)
    target = AccountState(settings.enforce_state)
    floor = SEVERITIES.index(settings.enforce_severity)
    done: list[Enforced] = []
    with store.engine.connect() as conn:
        acted = set(conn.execute(
            sa.select(cases_table.c.id).where(cases_table.c.enforcement_action_id.is_not(None))
        ).scalars())
    for case in cases:
        if (case.kind in NEVER_ENFORCED or not case.enforceable or case.status == "dismissed"
                or case.id in acted or SEVERITIES.index(case.severity) < floor):
            continue
        last: int | None = None
        for user, pseudonym in zip(case.users, case.pseudonyms, strict=True):
            current = accounts.get_state(user)
            if ACCOUNT_STATES.index(current.value) >= ACCOUNT_STATES.index(target.value):
                continue
            action = accounts.set_state(user, target, ACTOR, case.id)
            last = action.id
            done.append(Enforced(case.id, pseudonym, target.value, action.id))
        if last is not None:
            with store.engine.begin() as conn:
                conn.execute(cases_table.update().where(cases_table.c.id == case.id)
                             .values(enforcement_action_id=last))
    return done
