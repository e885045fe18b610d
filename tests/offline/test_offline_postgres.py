"""The same ingest and analysis on a real PostgreSQL (JSONB, upserts)."""

from __future__ import annotations

import sqlalchemy as sa

from guardstack.offline.analysis import analyze
from guardstack.offline.ingest import ingest
from guardstack.store import Store
from guardstack.store.schema import cases, findings, messages


def test_ingest_and_analyze_twice_on_postgresql(pg_url, traffic_file, traffic):
    store = Store(pg_url)
    store.migrate()
    try:
        report = ingest(store, traffic_file, progress=False)
        pages = sum(1 for r in traffic.records if r.tool)  # agents' pages: checked, not stored
        assert report.loaded == len(traffic.records) + pages
        assert ingest(store, traffic_file, progress=False).loaded == 0
        first = analyze(store)
        second = analyze(store)
        assert [c.id for c in second.cases] == [c.id for c in first.cases]
        with store.engine.connect() as conn:
            n_cases = conn.execute(sa.select(sa.func.count()).select_from(cases)).scalar_one()
            n_find = conn.execute(sa.select(sa.func.count()).select_from(findings)).scalar_one()
            n_msg = conn.execute(sa.select(sa.func.count()).select_from(messages)).scalar_one()
        assert (n_cases, n_find) == (len(first.cases), len(first.findings))
        assert n_msg == len(traffic.records)
    finally:
        store.dispose()
