import asyncio
import json
import threading
import time
from datetime import UTC

import pytest
import sqlalchemy as sa
from sqlalchemy import event as sa_event
from sqlalchemy import exc as sa_exc
from tests.store.factory import count, ids_in_db, make_event

from guardstack.store import EventWriter, Store, StoreError, decode_embedding
from guardstack.store.schema import exchanges, messages
from guardstack.store.spool import Spool


async def wait_until(cond, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


def writer_for(store: Store, tmp_path, **kw) -> EventWriter:
    kw.setdefault("spool_path", tmp_path / "spool.jsonl")
    kw.setdefault("retry_min", 0.05)
    kw.setdefault("retry_max", 0.2)
    return EventWriter(store, **kw)


async def test_writer_records_exchange_messages_and_embeddings(store, tmp_path):
    writer = writer_for(store, tmp_path)
    await writer.start()
    events = [make_event(i, user=f"u{i % 2}", total_ms=12.5, halted=i == 2) for i in range(3)]
    for e in events:
        await writer.submit(e)
    await writer.close()

    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(exchanges).order_by(exchanges.c.id)).mappings().all()
        msgs = (
            conn.execute(
                sa.select(messages)
                .where(messages.c.exchange_id == events[1].id)
                .order_by(messages.c.idx)
            )
            .mappings()
            .all()
        )
    assert {r["id"] for r in rows} == {e.id for e in events}
    by_id = {r["id"]: r for r in rows}
    assert by_id[events[2].id]["halted"] is True and by_id[events[0].id]["halted"] is False
    assert by_id[events[1].id]["user_id"] == "u1" and by_id[events[1].id]["total_ms"] == 12.5
    assert by_id[events[1].id]["ts_start"] == events[1].ts_start
    assert by_id[events[1].id]["ts_start"].tzinfo == UTC
    assert [m["role"] for m in msgs] == ["user", "assistant"]
    user_msg = msgs[0]
    assert user_msg["content"] == events[1].messages[0].content
    assert user_msg["user_id"] == "u1" and user_msg["conversation_id"] == "conv-u1"
    assert user_msg["scores"] == {"harm": 0.01}
    assert user_msg["embedding_dim"] == 3
    vec = decode_embedding(user_msg["embedding"], user_msg["embedding_dtype"])
    assert vec.tolist() == pytest.approx([0.1, 0.2, -0.3])
    assert msgs[1]["embedding"] is None
    assert writer.written == 3 and writer.spooled_total == 0


async def test_close_flushes_everything_queued(store, tmp_path):
    # A long flush interval and a huge batch: nothing would be written for a
    # minute unless close() cuts the wait short and drains the queue.
    writer = writer_for(store, tmp_path, flush_interval=60, batch_size=100_000)
    await writer.start()
    for i in range(250):
        await writer.submit(make_event(i))
    t0 = time.monotonic()
    await writer.close()
    assert time.monotonic() - t0 < 30
    assert count(store) == 250
    assert count(store, messages) == 500


async def test_flush_returns_once_submitted_events_are_stored(store, tmp_path):
    writer = writer_for(store, tmp_path, flush_interval=60)
    await writer.start()
    for i in range(7):
        await writer.submit(make_event(i))
    await writer.flush()
    assert count(store) == 7
    await writer.close()


async def test_full_queue_makes_submit_wait_and_drops_nothing(store, tmp_path):
    gate = threading.Event()

    def hold_inserts(conn, cursor, statement, params, context, executemany):
        if statement.lstrip().upper().startswith("INSERT INTO EXCHANGES"):
            gate.wait(30)

    sa_event.listen(store.engine, "before_cursor_execute", hold_inserts)
    try:
        writer = writer_for(store, tmp_path, max_queue=3, batch_size=1, flush_interval=0)
        await writer.start()
        submitted = []
        # One batch is held in the database thread, three fill the queue...
        for i in range(4):
            e = make_event(i)
            submitted.append(e.id)
            await asyncio.wait_for(writer.submit(e), 5)
        await wait_until(lambda: writer.queue_depth == 3)
        # ...so the next submit must wait rather than drop or raise.
        extra = make_event(99)
        submitted.append(extra.id)
        pending = asyncio.create_task(writer.submit(extra))
        done, _ = await asyncio.wait({pending}, timeout=0.5)
        assert not done, "submit returned while the queue was full"
        assert writer.queue_depth == 3
        gate.set()
        await asyncio.wait_for(pending, 10)
        await writer.close()
    finally:
        gate.set()
        sa_event.remove(store.engine, "before_cursor_execute", hold_inserts)
    assert sorted(ids_in_db(store)) == sorted(submitted)


async def test_spooled_events_are_replayed_on_start(store, tmp_path):
    spool = Spool(tmp_path / "spool.jsonl")
    events = [make_event(i) for i in range(5)]
    spool.append([e.to_dict() for e in events])
    writer = writer_for(store, tmp_path)
    await writer.start()
    assert sorted(ids_in_db(store)) == sorted(e.id for e in events)
    assert not spool.path.exists()
    await writer.close()


async def test_replay_after_a_commit_that_was_not_acknowledged_adds_no_duplicates(store, tmp_path):
    # The connection can die after COMMIT reached the server but before the
    # writer heard back; the batch is then both in the DB and in the spool.
    committed = [make_event(i) for i in range(4)]
    writer = writer_for(store, tmp_path)
    await writer.start()
    for e in committed:
        await writer.submit(e)
    await writer.close()
    fresh = [make_event(10 + i) for i in range(3)]
    Spool(tmp_path / "spool.jsonl").append([e.to_dict() for e in committed + fresh])

    writer = writer_for(store, tmp_path)
    await writer.start()
    await writer.close()
    assert sorted(ids_in_db(store)) == sorted(e.id for e in committed + fresh)
    assert count(store, messages) == 2 * 7
    # Duplicates are ignored as already stored, not treated as bad data.
    assert writer.rejected == 0
    assert not (tmp_path / "spool.jsonl.rejected.jsonl").exists()


async def test_sqlite_outage_spools_then_replays_everything_once(tmp_path):
    # SQLite cannot be made unreachable on demand; fail its INSERTs the way a
    # lost connection does (OperationalError) for a while.
    store = Store(f"sqlite:///{tmp_path / 'g.db'}")
    store.migrate()
    down = threading.Event()

    def outage(conn, cursor, statement, params, context, executemany):
        if down.is_set() and statement.lstrip().upper().startswith("INSERT"):
            raise sa_exc.OperationalError(statement, params, Exception("disk I/O error"))

    sa_event.listen(store.engine, "before_cursor_execute", outage)
    writer = writer_for(store, tmp_path, batch_size=7, flush_interval=0.01)
    await writer.start()
    submitted = []

    async def send(n):
        for _ in range(n):
            e = make_event(len(submitted))
            submitted.append(e.id)
            await writer.submit(e)

    await send(10)
    await writer.flush()
    down.set()
    await send(40)
    await writer.flush()
    assert writer.database_down
    assert writer.spool_depth == 40
    assert count(store) == 10
    spool_lines = (tmp_path / "spool.jsonl").read_text().splitlines()
    assert [json.loads(line)["id"] for line in spool_lines] == submitted[10:]
    down.clear()
    await send(15)
    await wait_until(lambda: writer.spool_depth == 0)
    await writer.close()
    assert sorted(ids_in_db(store)) == sorted(submitted)
    assert len(submitted) == 65
    assert writer.rejected == 0
    assert not (tmp_path / "spool.jsonl").exists()
    store.dispose()


async def test_postgres_server_stopped_mid_writes_loses_and_duplicates_nothing(
    pg_private_server, tmp_path
):
    url = pg_private_server.create_database()
    store = Store(url)
    writer = writer_for(store, tmp_path, batch_size=20, flush_interval=0.01)
    await writer.start()
    submitted: list[str] = []
    stop_sending = asyncio.Event()

    async def traffic():
        while not stop_sending.is_set():
            e = make_event(len(submitted))
            submitted.append(e.id)
            await writer.submit(e)
            await asyncio.sleep(0.002)

    sender = asyncio.create_task(traffic())
    try:
        await wait_until(lambda: writer.written >= 100)
        await asyncio.to_thread(pg_private_server.stop)  # the real server goes away
        n_at_stop = len(submitted)
        await wait_until(lambda: len(submitted) > n_at_stop + 200)
        assert writer.spooled_total > 0, "the writer never noticed the outage"
        await asyncio.to_thread(pg_private_server.start)
        await wait_until(lambda: writer.spool_depth == 0 and not writer.database_down, 30)
        await asyncio.sleep(0.2)
    finally:
        stop_sending.set()
        await sender
        await writer.close()
    check = Store(url)
    try:
        with check.engine.connect() as conn:
            ids = list(conn.execute(sa.select(exchanges.c.id)).scalars())
            n_msgs = conn.execute(sa.select(sa.func.count()).select_from(messages)).scalar_one()
        assert len(ids) == len(set(ids)) == len(submitted)
        assert set(ids) == set(submitted)
        assert n_msgs == 2 * len(submitted)
        assert writer.rejected == 0
    finally:
        check.dispose()
        store.dispose()
        pg_private_server.drop_database(url)


async def test_writer_redacts_when_asked(store, tmp_path):
    writer = writer_for(store, tmp_path, redact=True)
    await writer.start()
    e = make_event(1, text="Reach me at jane.doe@example.com or +44 20 7946 0958 please")
    await writer.submit(e)
    await writer.close()
    with store.engine.connect() as conn:
        content = conn.execute(
            sa.select(messages.c.content).where(messages.c.idx == 0)
        ).scalar_one()
        redacted = conn.execute(sa.select(exchanges.c.redacted)).scalar_one()
    assert content == "Reach me at [EMAIL] or [PHONE] please"
    assert redacted is True


async def test_nul_characters_do_not_break_postgres(store, tmp_path):
    writer = writer_for(store, tmp_path)
    await writer.start()
    await writer.submit(make_event(1, text="a\x00b"))
    await writer.close()
    with store.engine.connect() as conn:
        content = conn.execute(
            sa.select(messages.c.content).where(messages.c.idx == 0)
        ).scalar_one()
    assert content == "a\ufffdb"
    assert writer.rejected == 0


async def test_a_lone_surrogate_is_stored_as_a_replacement_character(store, tmp_path):
    # No encoder takes "\ud800": it used to fail the insert, then the rejected
    # file's own write, and the writer retried that batch forever.
    writer = writer_for(store, tmp_path)
    await writer.start()
    await writer.submit(make_event(1, text="a\ud800b \U0001f600"))
    await writer.submit(make_event(2))
    await writer.close()
    with store.engine.connect() as conn:
        content = conn.execute(
            sa.select(messages.c.content).where(messages.c.idx == 0).order_by(messages.c.id)
        ).scalars().all()
    assert "a\ufffdb \U0001f600" in content
    assert len(ids_in_db(store)) == 2 and writer.rejected == 0


def test_the_spool_and_the_rejected_file_take_any_string(tmp_path):
    from guardstack.store.spool import Spool
    spool = Spool(tmp_path / "spool.jsonl")
    record = {"id": "e1", "text": "a\ud800b"}
    spool.append([record])
    assert [r for batch in spool.batches(10) for r in batch] == [record]
    spool.reject(record, "refused")
    kept = json.loads((tmp_path / "spool.jsonl.rejected.jsonl").read_bytes())
    assert kept["event"] == record


async def test_event_the_database_refuses_is_kept_aside_not_lost(store, tmp_path):
    writer = writer_for(store, tmp_path)
    await writer.start()
    good = [make_event(i) for i in range(3)]
    bad = make_event(9, prompt_tokens=2**70)  # fits no INTEGER column, in either database
    for e in (good[0], bad, good[1], good[2]):
        await writer.submit(e)
    await writer.close()
    assert sorted(ids_in_db(store)) == sorted(e.id for e in good)
    assert writer.rejected == 1
    rejected = [
        json.loads(x) for x in (tmp_path / "spool.jsonl.rejected.jsonl").read_text().splitlines()
    ]
    assert [r["event"]["id"] for r in rejected] == [bad.id]
    assert not (tmp_path / "spool.jsonl").exists()


async def test_second_writer_on_the_same_spool_is_refused(store, tmp_path):
    first = writer_for(store, tmp_path)
    await first.start()
    second = writer_for(store, tmp_path)
    with pytest.raises(StoreError, match="in use by another process"):
        await second.start()
    await first.close()


async def test_submit_outside_start_and_close_is_an_error(store, tmp_path):
    writer = writer_for(store, tmp_path)
    with pytest.raises(RuntimeError, match="start"):
        await writer.submit(make_event())
    await writer.start()
    await writer.close()
    with pytest.raises(RuntimeError, match="closed"):
        await writer.submit(make_event())


async def test_writer_starts_while_database_is_down_and_catches_up(pg_private_server, tmp_path):
    url = pg_private_server.create_database()
    await asyncio.to_thread(pg_private_server.stop)
    try:
        writer = EventWriter(url, spool_path=tmp_path / "s.jsonl", retry_min=0.05, retry_max=0.2)
        await writer.start()  # must not fail: the gateway keeps serving
        events = [make_event(i) for i in range(5)]
        for e in events:
            await writer.submit(e)
        await writer.flush()
        assert writer.spool_depth == 5
    finally:
        await asyncio.to_thread(pg_private_server.start)
    await wait_until(lambda: writer.spool_depth == 0, 30)
    await writer.close()
    check = Store(url)
    assert sorted(ids_in_db(check)) == sorted(e.id for e in events)
    check.dispose()
    pg_private_server.drop_database(url)


async def test_database_back_before_the_first_event_gets_its_schema_first(
    pg_private_server, tmp_path
):
    # Started during an outage on an empty database: the schema must be
    # created before the first insert, or every event would be refused.
    url = pg_private_server.create_database()
    await asyncio.to_thread(pg_private_server.stop)
    try:
        writer = EventWriter(url, spool_path=tmp_path / "s.jsonl", retry_min=0.01)
        await writer.start()
    finally:
        await asyncio.to_thread(pg_private_server.start)
    await asyncio.sleep(0.05)
    events = [make_event(i) for i in range(3)]
    for e in events:
        await writer.submit(e)
    await writer.close()
    assert writer.rejected == 0
    check = Store(url)
    assert sorted(ids_in_db(check)) == sorted(e.id for e in events)
    check.dispose()
    pg_private_server.drop_database(url)
