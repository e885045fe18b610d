"""``guardstack ingest``: conversation logs from elsewhere into the event store.

One JSON object per line: ``{"user", "session", "ts", "role", "content"}``
plus optional ``tenant``, ``model``, ``id``. Each line becomes one exchange
(``endpoint = "ingest"``, ``conversation_id`` = the session) holding one
message, scored and embedded by the fast classifier, in the same
``exchanges``/``messages`` tables the gateway writes, so analysis reads one
store.

Nothing is half-loaded: the whole file is validated before anything is
written (``reject``, the default, loads nothing when a line is bad), and
every line has a deterministic exchange id (its ``id``, or a hash of its
fields), inserted with ``ON CONFLICT DO NOTHING``. A run interrupted between
batches is resumed by running the same command again: lines already in the
store are skipped without being scored again, and ``ingest_runs`` records
each file's progress.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from guardstack import argtypes
from guardstack.gateway import tool_results
from guardstack.offline.scoring import Scorer
from guardstack.store.engine import Store
from guardstack.store.events import MAX_ID_LEN, ExchangeEvent, MessageRecord, utcnow
from guardstack.store.schema import exchanges, ingest_runs
from guardstack.store.schema import messages as messages_table
from guardstack.store.writer import exchange_row, message_rows
from guardstack.verdict import Verdict

ROLES = ("user", "assistant", "system", "tool")
REQUIRED = ("user", "session", "ts", "role", "content")
#: Bad lines listed in full before the rest are only counted.
SHOW_ERRORS = 20
#: The longest message content loaded, in UTF-8 bytes: the gateway's default
#: body limit (--max-body-bytes). A longer one is a bad line rather than ten
#: seconds of scoring and a row no reviewer can read.
MAX_CONTENT_BYTES = 1_048_576


class IngestError(ValueError):
    """The file cannot be loaded as asked; the message is fit to print."""


@dataclass(frozen=True, slots=True)
class Line:
    number: int
    id: str
    user: str
    session: str
    ts: datetime
    role: str
    content: str
    tenant: str | None
    model: str | None


@dataclass
class Parsed:
    lines: list[Line] = field(default_factory=list)
    errors: list[tuple[int, str]] = field(default_factory=list)
    duplicates: int = 0
    out_of_order: int = 0
    total: int = 0


@dataclass
class IngestReport:
    source: str
    lines: int
    loaded: int
    already_present: int
    bad_lines: int
    duplicates: int
    out_of_order: int
    unscored: int
    errors: list[tuple[int, str]]

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "lines": self.lines,
            "loaded": self.loaded,
            "already_present": self.already_present,
            "bad_lines": self.bad_lines,
            "duplicates": self.duplicates,
            "out_of_order": self.out_of_order,
            "unscored": self.unscored,
            "errors": [{"line": n, "error": e} for n, e in self.errors[:SHOW_ERRORS]],
        }


def parse_ts(value: object, *, assume_utc: bool) -> datetime:
    if not isinstance(value, str) or not value.strip():
        raise ValueError("ts must be an ISO-8601 string")
    try:
        ts = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValueError(f"ts {value!r} is not ISO-8601 (e.g. 2026-03-02T09:53:32+00:00)") \
            from None
    if ts.tzinfo is None:
        if not assume_utc:
            raise ValueError(
                f"ts {value!r} has no time zone; add one (e.g. +00:00 or Z) "
                "or pass --assume-utc"
            )
        ts = ts.replace(tzinfo=UTC)
    try:
        return argtypes.in_years(ts, value.strip())
    except ValueError as exc:
        raise ValueError(f"ts {exc}") from None


def _line_id(obj: dict[str, Any], ts: datetime) -> str:
    given = obj.get("id")
    if given is not None:
        text = str(given)
        if 0 < len(text) <= MAX_ID_LEN:
            return text
        # Too long for the key column: keep it unique by hashing it.
        return "ing-" + hashlib.sha256(text.encode()).hexdigest()[:40]
    key = json.dumps(
        [obj["user"], obj["session"], ts.isoformat(), obj["role"], obj["content"]],
        ensure_ascii=False,
    )
    return "ing-" + hashlib.sha256(key.encode()).hexdigest()[:40]


def parse_line(number: int, raw: str, *, assume_utc: bool) -> Line:
    # the line's own end: a line cut short is reported where it ends, not as
    # "column 1" of the line after its newline
    raw = raw.rstrip("\r\n")
    try:
        obj = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(obj, dict):
        raise ValueError(f"expected a JSON object, got {type(obj).__name__}")
    missing = [k for k in REQUIRED if k not in obj or obj[k] is None]
    if missing:
        raise ValueError(f"missing field(s): {', '.join(missing)}")
    for key in ("user", "session", "content"):
        if not isinstance(obj[key], str):
            raise ValueError(f"{key} must be a string, got {type(obj[key]).__name__}")
    if not obj["user"].strip() or not obj["session"].strip():
        raise ValueError("user and session must not be empty")
    size = len(obj["content"].encode("utf-8", "surrogatepass"))
    if size > MAX_CONTENT_BYTES:
        raise ValueError(f"content is {size:,} bytes, over the limit of "
                         f"{MAX_CONTENT_BYTES:,}")
    role = obj["role"]
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r} (expected one of {', '.join(ROLES)})")
    ts = parse_ts(obj["ts"], assume_utc=assume_utc)
    for key in ("tenant", "model"):
        if obj.get(key) is not None and not isinstance(obj[key], str):
            raise ValueError(f"{key} must be a string")
    return Line(
        number=number,
        id=_line_id(obj, ts),
        user=obj["user"],
        session=obj["session"],
        ts=ts,
        role=role,
        content=obj["content"],
        tenant=obj.get("tenant"),
        model=obj.get("model"),
    )


def parse_file(path: Path, *, assume_utc: bool = False) -> tuple[Parsed, str]:
    """Every line parsed and checked; returns the result and the file's sha256."""
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise IngestError(f"cannot read {path}: {exc.strerror}") from None
    with handle:
        return parse_lines(handle, assume_utc=assume_utc)


def parse_lines(raw_lines: Iterable[bytes], *, assume_utc: bool = False) -> tuple[Parsed, str]:
    """Every line parsed and checked; returns the result and the lines' sha256."""
    parsed = Parsed()
    seen: dict[str, Line] = {}
    last_ts: dict[tuple[str, str], datetime] = {}
    digest = hashlib.sha256()
    for number, raw_bytes in enumerate(raw_lines, start=1):
        digest.update(raw_bytes)
        try:
            raw = raw_bytes.decode("utf-8")
        except UnicodeDecodeError as exc:
            parsed.total += 1
            parsed.errors.append((number, f"not UTF-8 text (byte {exc.start} of the line)"))
            continue
        if number == 1:
            raw = raw.removeprefix("\ufeff")  # a byte-order mark some editors write
        if not raw.strip():
            continue  # blank lines (a trailing newline) are not records
        parsed.total += 1
        try:
            line = parse_line(number, raw, assume_utc=assume_utc)
        except ValueError as exc:
            parsed.errors.append((number, str(exc)))
            continue
        first = seen.get(line.id)
        if first is not None:
            if _record(first) != _record(line):
                # one id, two messages: loading either would lose the other
                parsed.errors.append((number, f"id {line.id!r} is already line {first.number}'s, "
                                              "a different message"))
                continue
            parsed.duplicates += 1
            continue  # the same record twice: loaded once
        seen[line.id] = line
        key = (line.user, line.session)
        previous = last_ts.get(key)
        if previous is not None and line.ts < previous:
            parsed.out_of_order += 1
        last_ts[key] = line.ts if previous is None else max(previous, line.ts)
        parsed.lines.append(line)
    return parsed, digest.hexdigest()


def _record(line: Line) -> tuple[object, ...]:
    """What a line says, without where it is in the file."""
    return (line.user, line.session, line.ts, line.role, line.content, line.tenant, line.model)


def _existing_ids(store: Store, ids: list[str]) -> set[str]:
    found: set[str] = set()
    with store.engine.connect() as conn:
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            found.update(
                conn.execute(sa.select(exchanges.c.id).where(exchanges.c.id.in_(chunk))).scalars()
            )
    return found


def _insert(table: sa.Table, dialect: str) -> sa.Insert:
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table).on_conflict_do_nothing()
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(table).on_conflict_do_nothing()


def _event(line: Line, record: MessageRecord, source: str) -> ExchangeEvent:
    return ExchangeEvent(
        id=line.id,
        ts_start=line.ts,
        ts_end=line.ts,
        user=line.user,
        tenant=line.tenant,
        conversation_id=line.session,
        model=line.model,
        endpoint="ingest",
        prompt_decision=record.decision if line.role != "assistant" else None,
        response_decision=record.decision if line.role == "assistant" else None,
        extra={"source": source, "line": line.number},
        messages=[record],
    )


def _tool_findings(lines: list[Line], policy: Any) -> tuple[dict[str, Verdict],
                                                             dict[str, list[str]]]:
    """The injection check of every ``tool`` line (web pages, files an agent
    read), under the policy's ``tool_output`` rule, reported as ``flag``
    where the policy leaves the gateway's check off, as the gateway would
    have judged them; and, by tool line, the planted targets (links' hosts,
    addresses) that an assistant line of the same session repeated before
    the user spoke again: the injection worked (``tool_output.followed``)."""
    rule = tool_results.reporting(policy.tool_output)
    tools = [line for line in lines if line.role == "tool"]
    verdicts = dict(zip((line.id for line in tools),
                        tool_results.verdicts([line.content for line in tools], rule,
                                              other_languages=policy.tool_output_other_languages),
                        strict=True))
    followed: dict[str, list[str]] = {}
    sessions: dict[tuple[str, str], list[Line]] = {}
    for line in lines:
        sessions.setdefault((line.user, line.session), []).append(line)
    for session in sessions.values():
        users: list[str] = []
        turn: list[Line] = []  # the tool lines read since the user last spoke
        for line in sorted(session, key=lambda x: (x.ts, x.number)):
            if line.role == "user":
                users.append(line.content)
                turn = []
            elif line.role == "tool":
                turn.append(line)
            elif line.role == "assistant" and turn:
                for tool in turn:
                    planted = tool_results.planted_targets([verdicts[tool.id]], users)
                    hits = tool_results.repeated(line.content, planted)
                    if hits:
                        followed[tool.id] = sorted({*followed.get(tool.id, []), *hits})
    return verdicts, followed


def _tool_event(line: Line, verdict: Verdict, followed: list[str],
                source: str) -> ExchangeEvent:
    """A tool line as the gateway records a tool result: its verdict among
    the exchange's ``tool_output``, the text itself not stored (it is a
    page's, not the user's)."""
    extra: dict[str, Any] = {"source": source, "line": line.number, "role": "tool",
                             "decision": verdict.decision.value,
                             "tool_output": [verdict.to_dict()]}
    if followed:
        extra["tool_output_followed"] = followed
    return ExchangeEvent(id=line.id, ts_start=line.ts, ts_end=line.ts, user=line.user,
                         tenant=line.tenant, conversation_id=line.session, model=line.model,
                         endpoint="ingest", extra=extra, messages=[])


def _batches(items: list[Line], size: int) -> Iterator[list[Line]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def ingest(
    store: Store,
    path: Path,
    *,
    on_error: str = "reject",
    batch_size: int = 256,
    assume_utc: bool = False,
    scorer: Scorer | None = None,
    progress: bool = True,
    interrupt_after: int | None = None,
) -> IngestReport:
    """Load ``path`` into ``store``. Raises :class:`IngestError` for a rejected
    file (nothing written). ``interrupt_after`` (tests only) stops after that
    many batches, as a crash would."""
    _check_options(on_error, batch_size)
    parsed, sha = parse_file(path, assume_utc=assume_utc)
    return _load(store, parsed, sha, str(path), on_error=on_error, batch_size=batch_size,
                 scorer=scorer, progress=progress, interrupt_after=interrupt_after)


def ingest_lines(store: Store, lines: Iterable[bytes], source: str, *,
                 on_error: str = "reject", batch_size: int = 256, assume_utc: bool = False,
                 scorer: Scorer | None = None, progress: bool = True) -> IngestReport:
    """Load JSONL lines made in this process (``guardstack simulate --db``)
    as :func:`ingest` loads a file; ``source`` names them in the store."""
    _check_options(on_error, batch_size)
    parsed, sha = parse_lines(lines, assume_utc=assume_utc)
    return _load(store, parsed, sha, source, on_error=on_error, batch_size=batch_size,
                 scorer=scorer, progress=progress)


def _check_options(on_error: str, batch_size: int) -> None:
    if on_error not in ("reject", "skip"):
        raise IngestError(f"--on-error must be reject or skip, not {on_error!r}")
    if batch_size < 1:
        raise IngestError("--batch-size must be at least 1")


def _load(store: Store, parsed: Parsed, sha: str, source: str, *, on_error: str,
          batch_size: int, scorer: Scorer | None, progress: bool,
          interrupt_after: int | None = None) -> IngestReport:
    if parsed.errors and on_error == "reject":
        shown = "\n".join(f"  line {n}: {e}" for n, e in parsed.errors[:SHOW_ERRORS])
        more = len(parsed.errors) - SHOW_ERRORS
        tail = f"\n  ... and {more} more" if more > 0 else ""
        raise IngestError(
            f"{source}: {len(parsed.errors)} bad line(s) of {parsed.total}; nothing loaded "
            f"(--on-error skip loads the good lines):\n{shown}{tail}"
        )
    present = _existing_ids(store, [line.id for line in parsed.lines])
    todo = [line for line in parsed.lines if line.id not in present]
    run_id = "ingest-" + sha[:40]
    _record_run(store, run_id, source, sha, parsed, status="running", loaded=0,
                already=len(present))
    scorer = scorer or Scorer()
    guard: Any = scorer.guard
    detector_name = getattr(guard.detector, "name", "fast")
    topic_vectors = guard.checked_topic_vectors()
    tool_verdicts, followed = _tool_findings(parsed.lines, guard.policy)
    ins_ex = _insert(exchanges, store.dialect)
    ins_msg = _insert(messages_table, store.dialect)
    loaded = unscored = 0
    bar = _progress(len(todo), enabled=progress)
    try:
        for number, batch in enumerate(_batches(todo, batch_size)):
            if interrupt_after is not None and number >= interrupt_after:
                raise KeyboardInterrupt
            said = [line for line in batch if line.role != "tool"]
            scored = scorer.score([line.content for line in said], [line.role for line in said])
            events = [_tool_event(line, tool_verdicts[line.id], followed.get(line.id, []),
                                  source) for line in batch if line.role == "tool"]
            for line, result in zip(said, scored, strict=True):
                role = "response" if line.role == "assistant" else "prompt"
                verdict: Verdict = guard.policy.decide(role, result.detection, detector_name,
                                                       text=line.content,
                                                       topic_vectors=topic_vectors)
                unscored += not result.ok
                record = MessageRecord.judged(
                    line.role, line.content, verdict, embedding=result.embedding, ts=line.ts
                )
                events.append(_event(line, record, source))
            rows = [row for e in events for row in message_rows(e)]
            with store.engine.begin() as conn:
                conn.execute(ins_ex, [exchange_row(e) for e in events])
                if rows:  # a batch of tool lines only has none
                    conn.execute(ins_msg, rows)
            loaded += len(batch)
            bar(len(batch))
    finally:
        bar(None)
        done = loaded == len(todo)
        _record_run(store, run_id, source, sha, parsed, status="done" if done else "interrupted",
                    loaded=loaded, already=len(present))
    return IngestReport(
        source=source,
        lines=parsed.total,
        loaded=loaded,
        already_present=len(present),
        bad_lines=len(parsed.errors),
        duplicates=parsed.duplicates,
        out_of_order=parsed.out_of_order,
        unscored=unscored,
        errors=parsed.errors,
    )


def _record_run(store: Store, run_id: str, source: str, sha: str, parsed: Parsed, *,
                status: str, loaded: int, already: int) -> None:
    values = {
        "source": source,
        "sha256": sha,
        "status": status,
        "lines": parsed.total,
        "loaded": loaded,
        "already_present": already,
        "bad_lines": len(parsed.errors),
        "detail": {"duplicates": parsed.duplicates, "out_of_order": parsed.out_of_order},
    }
    now = utcnow()
    with store.engine.begin() as conn:
        exists = conn.execute(
            sa.select(ingest_runs.c.id).where(ingest_runs.c.id == run_id)
        ).scalar()
        if exists is None:
            conn.execute(ingest_runs.insert().values(id=run_id, started_at=now, **values))
        else:
            if status == "running":
                values["started_at"] = now
            else:
                values["finished_at"] = now
            conn.execute(ingest_runs.update().where(ingest_runs.c.id == run_id).values(**values))


def unfinished_runs(store: Store) -> list[dict[str, Any]]:
    """Loads that did not finish (``interrupted``, or ``running``: still
    going, or killed before it could say so): analysis over the store sees
    only part of those files. Oldest first."""
    with store.engine.connect() as conn:
        rows = conn.execute(
            sa.select(ingest_runs.c.source, ingest_runs.c.status, ingest_runs.c.started_at,
                      ingest_runs.c.lines, ingest_runs.c.loaded,
                      ingest_runs.c.already_present)
            .where(ingest_runs.c.status.in_(("running", "interrupted")))
            .order_by(ingest_runs.c.started_at)
        ).mappings().all()
    return [{"source": r["source"], "status": r["status"],
             "started_at": r["started_at"].isoformat() if r["started_at"] else None,
             "lines": r["lines"], "stored": r["loaded"] + r["already_present"]} for r in rows]


def _progress(total: int, *, enabled: bool) -> Callable[[int | None], None]:
    """A tqdm bar on stderr; call with a count to advance, None to close."""
    if not enabled or total == 0:
        return lambda n: None
    from tqdm import tqdm

    bar = tqdm(total=total, unit="msg", file=sys.stderr, desc="scoring", leave=False)

    def step(n: int | None) -> None:
        if n is None:
            bar.close()
        else:
            bar.update(n)

    return step
