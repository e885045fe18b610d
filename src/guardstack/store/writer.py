"""The one writer for the traffic log: :class:`EventWriter`.

The gateway submits :class:`ExchangeEvent` objects to a bounded asyncio
queue; a worker task takes them in batches and writes each batch with
``executemany`` in a single dedicated thread, so the event loop never waits
on the database. When the database is unreachable, batches go to the
fsync'd :class:`Spool` instead, the writer keeps accepting, and the spool is
replayed in order (with backoff between attempts) once the database answers
again. Inserts ignore rows whose key already exists, so replaying a batch
that did commit before the connection died never duplicates it.

Nothing accepted is dropped: a full queue makes :meth:`EventWriter.submit`
wait (back-pressure), :meth:`EventWriter.close` drains the queue, and
events the database rejects as invalid go to ``<spool>.rejected.jsonl``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from guardstack.store.engine import Store, upgrade
from guardstack.store.errors import display_url, is_transient
from guardstack.store.events import ExchangeEvent
from guardstack.store.redact import redact_event
from guardstack.store.schema import exchanges, messages
from guardstack.store.spool import Spool

log = logging.getLogger("guardstack.store.writer")


def _clean(value: Any) -> Any:
    # PostgreSQL rejects NUL in text and jsonb; SQLite would keep it. Replace
    # it everywhere so both backends store the same thing. A lone UTF-16
    # surrogate (a "\ud800" escape some caller let through) cannot be encoded
    # for either: it becomes U+FFFD too, instead of failing the batch.
    if isinstance(value, str):
        value = value.replace("\x00", "\ufffd") if "\x00" in value else value
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            value = value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
        return value
    if isinstance(value, dict):
        return {_clean(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def exchange_row(event: ExchangeEvent) -> dict[str, Any]:
    return {
        "id": event.id,
        "ts_start": event.ts_start,
        "ts_end": event.ts_end,
        "user_id": _clean(event.user),
        "tenant_id": _clean(event.tenant),
        "api_key_id": event.api_key_id,
        "conversation_id": _clean(event.conversation_id),
        "model": _clean(event.model),
        "endpoint": _clean(event.endpoint),
        "stream": event.stream,
        "http_status": event.http_status,
        "finish_reason": _clean(event.finish_reason),
        "error": _clean(event.error),
        "classifier_ms": event.classifier_ms,
        "upstream_ms": event.upstream_ms,
        "ttft_ms": event.ttft_ms,
        "total_ms": event.total_ms,
        "prompt_tokens": event.prompt_tokens,
        "completion_tokens": event.completion_tokens,
        "prompt_decision": event.prompt_decision,
        "response_decision": event.response_decision,
        "halted": event.halted,
        "redacted": event.redacted,
        "extra": _clean(event.extra) or None,
    }


def message_rows(event: ExchangeEvent) -> list[dict[str, Any]]:
    rows = []
    for idx, msg in enumerate(event.messages):
        blob = msg.embedding_bytes
        rows.append(
            {
                "exchange_id": event.id,
                "idx": idx,
                "role": _clean(msg.role),
                "content": _clean(msg.content),
                # An assistant message without its own time happened at the end.
                "ts": msg.ts
                or (event.ts_end if msg.role == "assistant" and event.ts_end else event.ts_start),
                "user_id": _clean(event.user),
                "tenant_id": _clean(event.tenant),
                "conversation_id": _clean(event.conversation_id),
                "decision": msg.decision,
                "scores": msg.scores or None,
                "categories": _clean(msg.categories) or None,
                "detector": _clean(msg.detector),
                "status": msg.status,
                "latency_ms": msg.latency_ms,
                "embedding": blob,
                "embedding_dtype": msg.embedding_dtype if blob is not None else None,
                "embedding_dim": (
                    len(blob) // (4 if msg.embedding_dtype == "f32" else 2)
                    if blob is not None
                    else None
                ),
            }
        )
    return rows


def _insert_ignoring_duplicates(table: sa.Table, dialect: str) -> sa.Insert:
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table).on_conflict_do_nothing()
    if dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert(table).on_conflict_do_nothing()
    raise ValueError(f"unsupported dialect {dialect}")


def default_spool_path(store: Store) -> Path:
    """``<db file>.spool.jsonl`` next to a SQLite file, else ``./guardstack-spool.jsonl``."""
    url = make_url(store.url)
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        return Path(f"{url.database}.spool.jsonl")
    return Path("guardstack-spool.jsonl")


class _Sink:
    """The synchronous half: runs only in the writer's single thread, so the
    database, the spool and this object's state are touched by one thread."""

    def __init__(
        self,
        store: Store,
        spool: Spool,
        *,
        batch_size: int,
        redact: bool,
        migrate: bool,
        retry_min: float,
        retry_max: float,
    ) -> None:
        self.store = store
        self.spool = spool
        self.batch_size = batch_size
        self.redact = redact
        self.need_migrate = migrate
        self.retry_min = retry_min
        self.retry_max = retry_max
        self.delay = retry_min
        self.next_retry = 0.0
        self.down = False
        self.spooled = 0
        self.spooled_total = 0
        self.written = 0
        self.rejected = 0
        self.ins_exchanges = _insert_ignoring_duplicates(exchanges, store.dialect)
        self.ins_messages = _insert_ignoring_duplicates(messages, store.dialect)

    # -- lifecycle ---------------------------------------------------------
    def open(self) -> None:
        self.spool.lock()
        self.spooled = self.spool.count()
        if self.spooled:
            log.warning("found %d spooled events in %s; replaying", self.spooled, self.spool.path)
        self.try_db()

    def close(self) -> None:
        self.spool.unlock()

    def retry_in(self) -> float | None:
        """Seconds until the next replay attempt, None when nothing is spooled."""
        if not self.spooled:
            return None
        return max(0.0, self.next_retry - time.monotonic())

    # -- the write path ----------------------------------------------------
    def write(self, events: Sequence[ExchangeEvent]) -> None:
        if self.redact:
            events = [redact_event(e) for e in events]
        # Anything already spooled goes first, so the database sees events
        # in the order they were accepted.
        if (self.spooled or self.need_migrate) and (
            time.monotonic() < self.next_retry or not self.try_db()
        ):
            self.to_spool(events)
            return
        try:
            self.insert(events)
        except Exception as exc:
            if not is_transient(exc):
                raise
            self.outage(exc)
            self.to_spool(events)
            return
        self.recovered()

    def retry(self) -> None:
        """Replay the spool if the backoff says it is time."""
        if self.spooled and time.monotonic() >= self.next_retry:
            self.try_db()

    def try_db(self) -> bool:
        """Migrate if still needed and replay the spool; False if the database is down."""
        try:
            if self.need_migrate:
                upgrade(self.store.engine)
                self.need_migrate = False
            if self.spooled:
                self.replay()
        except Exception as exc:
            if not is_transient(exc):
                raise
            self.outage(exc)
            return False
        self.recovered()
        return True

    def replay(self) -> None:
        replayed = 0
        for batch in self.spool.batches(self.batch_size):
            events = []
            for record in batch:
                try:
                    events.append(ExchangeEvent.from_dict(record))
                except (KeyError, TypeError, ValueError) as exc:
                    self.spool.reject(record, f"unreadable spooled event: {exc!r}")
                    self.rejected += 1
            self.insert(events)
            replayed += len(events)
        # Only now, with every line committed, may the spool go.
        self.spool.clear()
        log.info("replayed %d spooled events into %s", replayed, display_url(self.store.url))
        self.spooled = 0

    def insert(self, events: Sequence[ExchangeEvent]) -> None:
        """Commit ``events`` in one transaction; on a data error, isolate the
        bad events (to the rejected file) and commit the rest. Transient
        errors propagate."""
        if not events:
            return
        try:
            self._commit(events)
        except Exception as exc:
            if is_transient(exc):
                raise
            if len(events) == 1:
                self.spool.reject(events[0].to_dict(), f"{type(exc).__name__}: {exc}")
                self.rejected += 1
                return
            for event in events:
                self.insert([event])

    def _commit(self, events: Sequence[ExchangeEvent]) -> None:
        ex_rows = [exchange_row(e) for e in events]
        msg_rows = [row for e in events for row in message_rows(e)]
        with self.store.engine.begin() as conn:
            conn.execute(self.ins_exchanges, ex_rows)
            if msg_rows:
                conn.execute(self.ins_messages, msg_rows)
        self.written += len(events)

    # -- outage bookkeeping ------------------------------------------------
    def to_spool(self, events: Sequence[ExchangeEvent]) -> None:
        self.spool.append([e.to_dict() for e in events])
        self.spooled += len(events)
        self.spooled_total += len(events)

    def outage(self, exc: BaseException) -> None:
        if not self.down:
            log.warning(
                "database %s unreachable (%s); spooling events to %s",
                display_url(self.store.url),
                str(getattr(exc, "orig", None) or exc).strip().splitlines()[0:1],
                self.spool.path,
            )
            self.delay = self.retry_min
        else:
            self.delay = min(self.delay * 2, self.retry_max)
        self.down = True
        self.next_retry = time.monotonic() + self.delay

    def recovered(self) -> None:
        if self.down:
            log.warning("database %s reachable again", display_url(self.store.url))
        self.down = False
        self.delay = self.retry_min


class _Cut:
    """Queue marker: write what has been gathered now (flush/close)."""


_CUT = _Cut()


class EventWriter:
    """Batched, spooling writer of :class:`ExchangeEvent` objects.

    ``url_or_store``: a database URL, a :class:`Store`, or None for
    ``$GUARDSTACK_DB`` / ``sqlite:///guardstack.db``. The writer migrates the
    schema on start unless ``migrate=False``. ``spool_path`` defaults to
    ``<sqlite file>.spool.jsonl`` or ``./guardstack-spool.jsonl``; give each
    process its own (a second writer on the same spool fails at start).
    ``redact=True`` applies :func:`~guardstack.store.redact.redact_event`.
    """

    def __init__(
        self,
        url_or_store: str | Store | None = None,
        *,
        max_queue: int = 10_000,
        batch_size: int = 500,
        flush_interval: float = 0.2,
        spool_path: str | Path | None = None,
        redact: bool = False,
        migrate: bool = True,
        retry_min: float = 0.5,
        retry_max: float = 30.0,
    ) -> None:
        if max_queue < 1 or batch_size < 1:
            raise ValueError("max_queue and batch_size must be at least 1")
        if flush_interval < 0:
            raise ValueError("flush_interval must be >= 0")
        self._owns_store = not isinstance(url_or_store, Store)
        self.store = url_or_store if isinstance(url_or_store, Store) else Store(url_or_store)
        self.spool = Spool(spool_path if spool_path is not None else default_spool_path(self.store))
        self._batch_size = batch_size
        self._flush_interval = flush_interval
        self._retry_min = retry_min
        self._retry_max = retry_max
        self._queue: asyncio.Queue[ExchangeEvent | _Cut] = asyncio.Queue(maxsize=max_queue)
        self._sink = _Sink(
            self.store,
            self.spool,
            batch_size=batch_size,
            redact=redact,
            migrate=migrate,
            retry_min=retry_min,
            retry_max=retry_max,
        )
        self._executor: ThreadPoolExecutor | None = None
        self._worker: asyncio.Task[None] | None = None
        self._closed = False

    # -- metrics -----------------------------------------------------------
    @property
    def queue_depth(self) -> int:
        """Events accepted and not yet handed to the database thread."""
        return self._queue.qsize()

    @property
    def spool_depth(self) -> int:
        """Events waiting in the spool for the database to come back."""
        return self._sink.spooled

    @property
    def spooled_total(self) -> int:
        """Events this writer has ever had to spool (an outage counter)."""
        return self._sink.spooled_total

    @property
    def written(self) -> int:
        """Events committed to the database by this writer (replays included)."""
        return self._sink.written

    @property
    def rejected(self) -> int:
        """Events the database refused as invalid (kept in the rejected file)."""
        return self._sink.rejected

    @property
    def database_down(self) -> bool:
        return self._sink.down

    # -- lifecycle ---------------------------------------------------------
    async def start(self) -> None:
        """Lock the spool, migrate, replay any spool left from a previous run,
        and start the worker. A database that is down now is not an error:
        events are spooled until it answers."""
        if self._worker is not None:
            return
        if self._closed:
            raise RuntimeError("EventWriter is closed")
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="guardstack-store")
        try:
            await self._in_thread(self._sink.open)
        except BaseException:
            self._executor.shutdown(wait=True)
            self._executor = None
            raise
        self._worker = asyncio.create_task(self._run(), name="guardstack-store-writer")

    async def submit(self, event: ExchangeEvent) -> None:
        """Queue ``event``; waits while the queue is full (back-pressure)."""
        self._check_open(event)
        await self._queue.put(event)

    def submit_nowait(self, event: ExchangeEvent) -> None:
        """Queue ``event`` or raise :class:`asyncio.QueueFull` (caller decides)."""
        self._check_open(event)
        self._queue.put_nowait(event)

    async def flush(self) -> None:
        """Return once every event submitted so far is committed or spooled."""
        if self._worker is None:
            return
        await self._queue.put(_CUT)
        await self._queue.join()

    async def close(self) -> None:
        """Write everything queued (to the database, or the spool if it is
        down), make one last replay attempt, and release the spool."""
        if self._closed:
            return
        self._closed = True
        if self._worker is not None:
            await self._queue.put(_CUT)
            await self._queue.join()
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
            self._worker = None
            if self._sink.spooled:
                await self._in_thread(self._sink.try_db)
            await self._in_thread(self._sink.close)
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None
        if self._owns_store:
            self.store.dispose()

    async def __aenter__(self) -> EventWriter:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- internals ---------------------------------------------------------
    def _check_open(self, event: ExchangeEvent) -> None:
        if self._closed:
            raise RuntimeError("EventWriter is closed")
        if self._worker is None:
            raise RuntimeError("EventWriter not started: await writer.start() first")
        if not isinstance(event, ExchangeEvent):
            raise TypeError(f"expected ExchangeEvent, got {type(event).__name__}")

    async def _in_thread(self, fn: Callable[..., Any], *args: Any) -> Any:
        assert self._executor is not None
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            wait = self._sink.retry_in()
            try:
                first = await asyncio.wait_for(self._queue.get(), wait)
            except TimeoutError:
                await self._guarded(self._sink.retry)
                continue
            batch: list[ExchangeEvent] = []
            taken = 1
            item: ExchangeEvent | _Cut = first
            deadline = loop.time() + self._flush_interval
            while True:
                if isinstance(item, _Cut):
                    break
                batch.append(item)
                if len(batch) >= self._batch_size:
                    break
                if self._queue.empty():
                    remaining = deadline - loop.time()
                    if remaining <= 0:
                        break
                    try:
                        item = await asyncio.wait_for(self._queue.get(), remaining)
                    except TimeoutError:
                        break
                else:
                    item = self._queue.get_nowait()
                taken += 1
            try:
                if batch:
                    await self._guarded(self._sink.write, batch)
            finally:
                for _ in range(taken):
                    self._queue.task_done()

    async def _guarded(self, fn: Callable[..., None], *args: Any) -> None:
        """Run ``fn`` in the writer thread until it succeeds. It fails only
        when even the spool cannot be written (disk full): then keep the
        batch in memory and retry, which back-pressures the gateway rather
        than losing events."""
        delay = self._retry_min
        while True:
            try:
                await self._in_thread(fn, *args)
                return
            except Exception:
                log.exception("event store write failed; retrying in %.1fs", delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._retry_max)
