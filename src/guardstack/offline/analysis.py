"""One analysis run: load the window, run the per-user monitors on an
engine, the cross-user ones on the driver, and write cases back.

An interrupted run leaves its ``analysis_runs`` row ``running`` (or
``failed``) and nothing half-written: cases and findings are written in one
transaction at the end, and ids are deterministic, so the next run over the
same window simply does the work again and upserts the same rows.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from guardstack.offline import cases as cases_mod
from guardstack.offline import corpus as corpus_mod
from guardstack.offline import topic_store
from guardstack.offline.coordination import CoordGroup, find_groups
from guardstack.offline.enforcement import Enforced, enforce
from guardstack.offline.injections import PlantedGroup
from guardstack.offline.injections import find as find_planted
from guardstack.offline.peruser import UserResult
from guardstack.offline.pseudonym import Pseudonymizer
from guardstack.offline.scoring import Scorer
from guardstack.offline.settings import AnalysisSettings
from guardstack.offline.topics import Cluster, topic_map
from guardstack.store.engine import Store
from guardstack.store.events import utcnow
from guardstack.store.schema import analysis_runs

ENGINES = ("local", "ray")


@dataclass
class AnalysisResult:
    run_id: str
    engine: str
    messages: int
    users: int
    rescored: int
    results: list[UserResult] = field(default_factory=list)
    groups: list[CoordGroup] = field(default_factory=list)
    planted: list[PlantedGroup] = field(default_factory=list)
    clusters: list[Cluster] = field(default_factory=list)
    cases: list[cases_mod.Case] = field(default_factory=list)
    findings: list[cases_mod.Finding] = field(default_factory=list)
    enforced: list[Enforced] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return self.messages == 0

    def flagged_raw_users(self) -> dict[str, set[str]]:
        """Raw user id -> labels (for benchmarks and tests; never printed)."""
        out: dict[str, set[str]] = {}
        for f in self.findings:
            out.setdefault(f.user, set()).add(f.label)
        return out

    def baseline_raw_users(self) -> set[str]:
        """Users a per-message filter alone would flag."""
        return {r.user for r in self.results if r.baseline_flagged}

    def to_json(self) -> dict[str, Any]:
        return {
            "run": {
                "id": self.run_id,
                "engine": self.engine,
                "messages": self.messages,
                "users": self.users,
                "rescored": self.rescored,
                "enforced": [e.__dict__ for e in self.enforced],
            },
            "flagged_users": [f.as_dict() for f in self.findings],
            "cases": [c.as_dict() for c in self.cases],
            "clusters": [c.as_dict() for c in self.clusters],
        }


def _record(store: Store, run_id: str, **values: Any) -> None:
    with store.engine.begin() as conn:
        exists = conn.execute(
            sa.select(analysis_runs.c.id).where(analysis_runs.c.id == run_id)
        ).scalar()
        if exists is None:
            conn.execute(analysis_runs.insert().values(id=run_id, **values))
        else:
            conn.execute(analysis_runs.update().where(analysis_runs.c.id == run_id)
                         .values(**values))


def analyze(
    store: Store,
    since: datetime | None = None,
    until: datetime | None = None,
    *,
    engine: str = "local",
    settings: AnalysisSettings | None = None,
    scorer: Scorer | None = None,
    do_enforce: bool = False,
    write: bool = True,
    progress: Callable[[str, int], Callable[[int | None], None]] | None = None,
) -> AnalysisResult:
    if engine not in ENGINES:
        raise ValueError(f"--engine must be one of {', '.join(ENGINES)}, not {engine!r}")
    if since is not None and until is not None and since >= until:
        raise ValueError("--since must be before --until")
    settings = (settings or AnalysisSettings()).validated()
    scorer = scorer or Scorer()
    run_id = f"run-{uuid.uuid4().hex[:20]}"
    started = utcnow()
    corpus = corpus_mod.load(store, since, until, scorer=scorer, progress=progress is not None)
    result = AnalysisResult(run_id, engine, corpus.messages, len(corpus.users), corpus.rescored)
    if corpus.messages == 0:
        return result
    if write:
        _record(store, run_id, started_at=started, status="running", engine=engine,
                window_start=since, window_end=until, messages=corpus.messages,
                users=len(corpus.users))
    try:
        bar = progress("users", len(corpus.users)) if progress else None
        if engine == "ray":
            from guardstack.offline import engine_ray

            result.results = engine_ray.run(corpus.users, corpus.now, settings, bar)
        else:
            from guardstack.offline import engine_local

            result.results = engine_local.run(corpus.users, corpus.now, settings, scorer, bar)
        if bar:
            bar(None)
        result.groups = find_groups(corpus, settings)
        result.planted = find_planted(store, since, until,
                                      min_users=settings.injection_min_users)
        result.clusters = topic_map(corpus, settings)
        pseudo = Pseudonymizer.for_store(store)
        window = cases_mod.window_key(since, until)
        result.cases, result.findings = cases_mod.build(result.results, result.groups, pseudo,
                                                        window, result.planted)
        if write:
            cases_mod.write(store, result.cases, result.findings, run_id, since, until)
            # Persisted for the dashboard's topic map (k-anonymous, redacted).
            topic_store.write(store, run_id, result.clusters, settings.topic_k_anonymity)
            if do_enforce:
                result.enforced = enforce(store, result.cases, settings)
    except BaseException:
        if write:
            _record(store, run_id, status="failed", finished_at=utcnow())
        raise
    if write:
        _record(store, run_id, status="done", finished_at=utcnow(), detail={
            "cases": len(result.cases), "flagged_users": len(result.findings),
            "clusters": len(result.clusters), "enforced": len(result.enforced),
        })
    return result
