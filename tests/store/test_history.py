from datetime import UTC, datetime, timedelta

import pytest
from tests.store.factory import make_event

from guardstack.store import EventWriter
from guardstack.store.audit import entries
from guardstack.store.history import user_history

T0 = datetime(2026, 11, 1, tzinfo=UTC)


async def test_reading_history_returns_messages_and_leaves_an_audit_entry(store, tmp_path):
    writer = EventWriter(store, spool_path=tmp_path / "s.jsonl")
    await writer.start()
    for i in range(3):
        await writer.submit(make_event(i, user="alice", ts_start=T0 + timedelta(hours=i)))
    await writer.submit(make_event(9, user="bob", ts_start=T0))
    await writer.close()

    got = user_history(
        store, "alice", actor="reviewer:kim", reason="case 17", since=T0 + timedelta(hours=1)
    )
    assert [(m.role, m.ts) for m in got] == [
        ("user", T0 + timedelta(hours=1)),
        ("assistant", T0 + timedelta(hours=1)),
        ("user", T0 + timedelta(hours=2)),
        ("assistant", T0 + timedelta(hours=2)),
    ]
    assert got[0].content == "What is the capital of country 1?"
    [entry] = entries(store, subject_user="alice")
    assert (entry.actor, entry.action) == ("reviewer:kim", "history.read")
    assert entry.detail is not None and entry.detail["reason"] == "case 17"
    assert entry.detail["returned"] == 4
    assert entries(store, subject_user="bob") == []


def test_history_needs_a_reason(store):
    with pytest.raises(ValueError, match="reason"):
        user_history(store, "alice", actor="kim", reason=" ")
    assert entries(store) == []
