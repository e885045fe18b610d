from datetime import UTC, datetime, timedelta

import pytest
from tests.store.factory import count, ids_in_db, make_event

from guardstack.store import EventWriter, parse_age, purge
from guardstack.store.audit import entries
from guardstack.store.schema import messages

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def test_parse_age():
    assert parse_age("30d") == timedelta(days=30)
    assert parse_age("2w") == timedelta(days=14)
    assert parse_age("12h") == timedelta(hours=12)
    assert parse_age("7") == timedelta(days=7)
    for bad in ("", "30x", "-1d", "0d", "soon"):
        with pytest.raises(ValueError):
            parse_age(bad)


async def test_purge_deletes_only_older_traffic_and_is_audited(store, tmp_path):
    old = [make_event(i, ts_start=NOW - timedelta(days=40 + i)) for i in range(3)]
    new = [make_event(10 + i, ts_start=NOW - timedelta(days=29 - i)) for i in range(2)]
    writer = EventWriter(store, spool_path=tmp_path / "s.jsonl")
    await writer.start()
    for e in old + new:
        await writer.submit(e)
    await writer.close()

    assert purge(store, timedelta(days=30), now=NOW, dry_run=True) == (3, 6, 0)
    assert count(store) == 5
    assert purge(store, timedelta(days=30), now=NOW, chunk=2, actor="ops") == (3, 6, 0)
    assert sorted(ids_in_db(store)) == sorted(e.id for e in new)
    assert count(store, messages) == 4
    [entry] = entries(store)
    assert entry.action == "purge" and entry.actor == "ops"
    assert entry.detail is not None and entry.detail["exchanges"] == 3
