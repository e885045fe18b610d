"""Responses API answers kept in the store (``serve --shared-responses``), on
SQLite and a real PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from guardstack.store import Store, purge
from guardstack.store.audit import entries
from guardstack.store.schema import stored_responses
from guardstack.store.stored_responses import SharedResponses, owner_key

CONVERSATION = [
    # a lone surrogate, as json.loads makes of a client's "\\ud800"
    {"role": "user", "content": "Plan a trip to Kraków — and Zürich? 😀 \ud800"},
    {"role": "assistant", "content": "Day one: the old town.",
     "tool_calls": [{"id": "c1", "type": "function",
                     "function": {"name": "weather", "arguments": "{}"}}]},
]


def test_an_answer_reads_back_for_its_owner_only(store):
    answers = SharedResponses(store, ttl=3600)
    answers.put("resp_1", "ada", "resp_1", CONVERSATION, now=1000.0)
    answers.put("resp_anon", None, "chain-7", CONVERSATION[:1], now=1000.0)
    assert answers.get("resp_1", "ada", now=1001.0) == ("resp_1", CONVERSATION, 1000.0)
    assert answers.get("resp_1", "bob", now=1001.0) is None
    assert answers.get("resp_1", None, now=1001.0) is None
    assert answers.get("resp_anon", None, now=1001.0) == ("chain-7", CONVERSATION[:1], 1000.0)
    assert answers.get("resp_anon", "ada", now=1001.0) is None
    assert answers.get("resp_none", "ada", now=1001.0) is None
    answers.close()


def test_the_owner_is_stored_as_a_hash_and_an_id_keeps_its_first_answer(store):
    answers = SharedResponses(store, ttl=3600)
    answers.put("resp_1", "ada@example.org", "resp_1", CONVERSATION, now=1000.0)
    answers.put("resp_1", "ada@example.org", "other", [], now=1001.0)
    with store.engine.connect() as conn:
        [row] = conn.execute(sa.select(stored_responses)).all()
    assert row.owner == owner_key("ada@example.org") != "ada@example.org"
    assert "ada@example.org" not in row.messages
    assert answers.get("resp_1", "ada@example.org", now=1002.0) == ("resp_1", CONVERSATION,
                                                                   1000.0)
    answers.close()


def test_answers_past_their_time_to_live_are_not_returned_and_are_pruned(store):
    answers = SharedResponses(store, ttl=60)
    answers.put("resp_old", "ada", "resp_old", CONVERSATION, now=1000.0)
    answers.put("resp_new", "ada", "resp_new", CONVERSATION, now=1050.0)
    assert answers.get("resp_old", "ada", now=1060.0) is not None  # exactly 60 s: still kept
    assert answers.get("resp_old", "ada", now=1061.0) is None
    assert answers.prune(now=1061.0) == 1
    assert answers.get("resp_new", "ada", now=1061.0) is not None
    with store.engine.connect() as conn:
        assert conn.execute(sa.select(stored_responses.c.id)).scalars().all() == ["resp_new"]
    answers.close()


def test_a_second_process_reads_what_the_first_stored(store):
    other = Store(store.url)  # its own engine, as another replica
    mine, theirs = SharedResponses(store, ttl=3600), SharedResponses(other, ttl=3600)
    mine.put("resp_1", "ada", "resp_1", CONVERSATION)
    found = theirs.get("resp_1", "ada")
    assert found is not None and found[1] == CONVERSATION
    mine.close()
    theirs.close()
    other.dispose()


def test_purge_deletes_stored_answers_with_the_traffic_of_their_age(store):
    now = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    answers = SharedResponses(store, ttl=365 * 86400)
    for n, days in enumerate((40, 35, 10)):
        answers.put(f"resp_{n}", "ada", f"resp_{n}", CONVERSATION,
                    now=(now - timedelta(days=days)).timestamp())
    assert purge(store, timedelta(days=30), now=now, dry_run=True).stored_responses == 2
    gone = purge(store, timedelta(days=30), now=now, actor="ops")
    assert gone.stored_responses == 2 and (gone.exchanges, gone.messages) == (0, 0)
    with store.engine.connect() as conn:
        assert conn.execute(sa.select(stored_responses.c.id)).scalars().all() == ["resp_2"]
    [entry] = entries(store)
    assert entry.detail is not None and entry.detail["stored_responses"] == 2
    answers.close()
