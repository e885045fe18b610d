"""Render time of every dashboard page on a large store, against the target
(<= 200 ms per page with 1,000,000 messages; a usable queue with 10,000 open
cases).

    nice -n 15 .venv/bin/python benchmarks/bench_dashboard.py \\
        [--db URL] [--messages 1000000] [--cases 10000] \\
        [--repeats 15] [--json]

Builds the store once (SQLite by default, in runs/bench_dashboard.db, or
PostgreSQL by URL; schema by the real migrations, rows bulk inserted with
executemany or COPY: the classifier is not what is measured) and reuses it
while it holds at least ``--messages`` messages. Traffic: 20,000
users over 30 days, a user and an assistant message per exchange, 10 %
blocked and 4 % flagged with categories; ``--cases`` open cases with
evidence; a topic map of 40 clusters. Pages are rendered in process through
the full app (routing, session lookup, queries, templates) with Starlette's
TestClient, logged in as an admin; the median and the slowest of
``--repeats`` renders are printed per page, plus the first (cold) render.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import sqlite3
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TARGET_MS = 200.0
USERS = 20_000
DAYS = 30
CATEGORIES = ("cyber", "violent_crime", "hate", "self_harm", "weapons", "privacy")
WORDS = ("soup recipe", "python error", "tax form", "garden pests", "train times",
         "history essay", "bike repair", "network scan", "poem about rain", "budget sheet")
PASSWORD = "bench-password-123"


def _ts(dt: datetime) -> str:
    # How SQLAlchemy stores DateTime on SQLite (naive UTC): schema.UTCDateTime.
    return dt.astimezone(UTC).replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")


EXCHANGE_COLS = ("id", "ts_start", "user_id", "tenant_id", "conversation_id", "model",
                 "endpoint", "stream", "http_status", "prompt_decision", "halted", "redacted")
MESSAGE_COLS = ("id", "exchange_id", "idx", "role", "content", "ts", "user_id", "tenant_id",
                "conversation_id", "decision", "scores", "categories", "detector", "status")
CASE_COLS = ("id", "kind", "label", "category", "severity", "score", "subject", "user_ids",
             "evidence", "status", "first_seen", "updated_at")
FINDING_COLS = ("id", "user_id", "pseudonym", "label", "category", "score", "case_id",
                "evidence", "updated_at")
TOPIC_COLS = ("run_id", "id", "label", "terms", "users", "messages", "flag_rate",
              "flag_rate_earlier", "flag_rate_recent", "rising", "examples", "min_users",
              "created_at")


class SqliteSink:
    def __init__(self, path: Path) -> None:
        self.conn = sqlite3.connect(path)
        self.conn.execute("PRAGMA synchronous=OFF")
        # Index pages stay in memory while a million rows go in.
        self.conn.execute("PRAGMA cache_size=-400000")

    def put(self, table: str, cols: tuple[str, ...], rows: list[tuple]) -> None:
        self.conn.executemany(f"INSERT INTO {table} ({', '.join(cols)}) VALUES "
                              f"({', '.join('?' * len(cols))})", rows)
        self.conn.commit()

    def finish(self) -> None:
        self.conn.execute("ANALYZE")
        self.conn.commit()
        self.conn.close()


class PostgresSink:
    """COPY, the fast path into PostgreSQL."""

    def __init__(self, url: str) -> None:
        import psycopg

        self.conn = psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"))
        # Rebuilt from scratch: whatever an earlier, smaller build left goes.
        self.conn.execute("TRUNCATE exchanges, messages, cases, findings, topic_clusters, "
                          "traffic_rollup, rollup_state, audit_log, dashboard_sessions CASCADE")
        self.conn.commit()

    def put(self, table: str, cols: tuple[str, ...], rows: list[tuple]) -> None:
        with self.conn.cursor() as cur, \
                cur.copy(f"COPY {table} ({', '.join(cols)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row([v + "+00" if isinstance(v, str) and _is_ts(v) else v
                                for v in row])
        self.conn.commit()

    def finish(self) -> None:
        with self.conn.cursor() as cur:
            cur.execute("SELECT setval(pg_get_serial_sequence('messages', 'id'), "
                        "(SELECT max(id) FROM messages))")
            cur.execute("ANALYZE")
        self.conn.commit()
        self.conn.close()


def _is_ts(value: str) -> bool:
    return len(value) == 26 and value[4] == "-" and value[10] == " " and value[19] == "."


def build(url: str, n_messages: int, n_cases: int) -> None:
    from guardstack.store import Store

    store = Store(url)
    if store.dialect == "sqlite":
        path = Path(store.engine.url.database or "")
        store.dispose()
        if path.exists():
            path.unlink()
        store = Store(url)
    store.migrate()
    sink: SqliteSink | PostgresSink = (PostgresSink(store.url) if store.dialect == "postgresql"
                                       else SqliteSink(Path(store.engine.url.database or "")))
    store.dispose()
    rnd = random.Random(7)
    start = datetime(2026, 3, 1, tzinfo=UTC)
    users = [f"u-{i:06d}" for i in range(USERS)]
    exchanges: list[tuple] = []
    messages: list[tuple] = []
    mid = 0
    flagged_ids: dict[str, list[int]] = {}
    t0 = time.perf_counter()

    def flush() -> None:
        sink.put("exchanges", EXCHANGE_COLS, exchanges)
        sink.put("messages", MESSAGE_COLS, messages)
        exchanges.clear()
        messages.clear()

    # In time order, as a gateway writes them (and the time indexes fill
    # at their end, which keeps the build quick).
    offsets = sorted(rnd.uniform(0, DAYS * 86400) for _ in range(n_messages // 2))
    for e, offset in enumerate(offsets):
        user = users[rnd.randrange(USERS)]
        ts = start + timedelta(seconds=offset)
        r = rnd.random()
        decision = "block" if r < 0.10 else "flag" if r < 0.14 else "allow"
        cat = rnd.choice(CATEGORIES)
        harm = rnd.uniform(0.7, 0.99) if decision != "allow" else rnd.uniform(0, 0.3)
        scores = json.dumps({"harm": round(harm, 3), cat: round(harm, 3)})
        cats = json.dumps([cat] if decision != "allow" else [])
        conv = f"s-{user}-{ts:%m%d}"
        ex = f"ex-{e:08d}"
        topic = rnd.choice(WORDS)
        exchanges.append((ex, _ts(ts), user, "public", conv, "bench", "chat.completions",
                          False, 200, decision, False, False))
        mid += 1
        messages.append((mid, ex, 0, "user", f"Question {e} about {topic}, please help.",
                         _ts(ts), user, "public", conv, decision, scores, cats, "fast", "ok"))
        if decision != "allow":
            flagged_ids.setdefault(user, []).append(mid)
        mid += 1
        messages.append((mid, ex, 1, "assistant", f"An answer about {topic} ({e}).",
                         _ts(ts + timedelta(seconds=2)), user, "public", conv, "allow",
                         json.dumps({"harm": 0.01}), "[]", "fast", "ok"))
        if len(exchanges) >= 50_000:
            flush()
            print(f"  {mid:,} messages ({time.perf_counter() - t0:.0f} s)", file=sys.stderr)
    flush()
    now = _ts(datetime(2026, 3, 31, tzinfo=UTC))
    severities = ("low", "medium", "high", "critical")
    case_rows, finding_rows = [], []
    candidates = [u for u, ids in flagged_ids.items() if ids]
    for i in range(n_cases):
        user = candidates[i % len(candidates)]
        ev = [{"message_id": m, "why": "harm above floor 0.7", "harm": 0.9,
               "category": "cyber"} for m in flagged_ids[user][:6]]
        score = round(rnd.uniform(0.5, 0.99), 4)
        cid = f"case-{i:024d}"
        case_rows.append((cid, "abuse", "malicious", "cyber", rnd.choice(severities), score,
                          f"p-{i:016x}", json.dumps([user]), json.dumps(ev), "open", now, now))
        finding_rows.append((f"f-{i}", user, f"p-{i:016x}", "malicious", "cyber", score, cid,
                             json.dumps(ev), now))
    sink.put("cases", CASE_COLS, case_rows)
    sink.put("findings", FINDING_COLS, finding_rows)
    sink.put("topic_clusters", TOPIC_COLS,
             [("run-bench", f"topic-{i}", f"topic {i}", "[]", 50 + i * 10, 2000 + i * 100, 0.1,
               0.05, 0.05 + i / 100, i % 7 == 0, "[]", 5, now) for i in range(40)])
    sink.finish()
    print(f"built {display(url)} in {time.perf_counter() - t0:.0f} s", file=sys.stderr)


def display(url: str) -> str:
    from guardstack.store.errors import display_url

    return display_url(url)


def count_messages(url: str) -> int:
    import sqlalchemy as sa

    from guardstack.store import Store

    store = Store(url)
    try:
        with store.engine.connect() as conn:
            return int(conn.execute(sa.text("SELECT max(id) FROM messages")).scalar() or 0)
    except sa.exc.SQLAlchemyError:
        return 0
    finally:
        store.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", default=f"sqlite:///{REPO / 'runs' / 'bench_dashboard.db'}",
                        help="database URL (SQLite file or postgresql://...); rebuilt unless "
                        "it already holds --messages messages")
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    (REPO / "runs").mkdir(exist_ok=True)
    if count_messages(args.db) < args.messages:
        build(args.db, args.messages, args.cases)

    from starlette.testclient import TestClient

    from guardstack.dashboard.app import standalone_app
    from guardstack.dashboard.staff import Staff
    from guardstack.store import Store

    store = Store(args.db)
    store.require_current()
    if Staff(store).get("bench") is None:
        Staff(store).add("bench", "admin", PASSWORD, actor="bench")
    client = TestClient(standalone_app(store), follow_redirects=False)
    token = re.search(r'name="login_token" value="([^"]+)"',
                      client.get("/ui/login").text).group(1)  # type: ignore[union-attr]
    assert client.post("/ui/login", data={"login_token": token, "name": "bench",
                                          "password": PASSWORD}).status_code == 303
    import sqlalchemy as sa

    from guardstack.store.schema import cases

    with store.engine.connect() as conn:
        user = conn.execute(sa.select(cases.c.user_ids).order_by(cases.c.id).limit(1)
                            ).scalar_one()[0]
    pages = {
        "overview": "/ui/",
        "queue (page 1)": "/ui/queue",
        "queue (last page)": f"/ui/queue?page={args.cases // 50}",
        "case": "/ui/cases/case-" + "0" * 24,
        "user": f"/ui/users/{user}",
        "topics": "/ui/topics",
        "search (user)": f"/ui/search?user={user}",
        "search (text)": "/ui/search?q=bike+repair&decision=block",
        # The worst case: a substring no message holds scans the whole window.
        "search (no match)": "/ui/search?q=zebra+crossing",
        "audit": "/ui/audit",
    }
    results = {}
    for name, path in pages.items():
        t = time.perf_counter()
        r = client.get(path)
        cold = (time.perf_counter() - t) * 1000
        assert r.status_code == 200, (name, r.status_code, r.text[:300])
        times = []
        for _ in range(args.repeats):
            t = time.perf_counter()
            client.get(path)
            times.append((time.perf_counter() - t) * 1000)
        results[name] = {"cold_ms": round(cold, 1),
                         "median_ms": round(statistics.median(times), 1),
                         "max_ms": round(max(times), 1),
                         "ok": statistics.median(times) <= TARGET_MS}
    client.close()
    dialect = store.dialect
    store.dispose()
    meta = {"messages": count_messages(args.db), "database": dialect, "open_cases": args.cases,
            "load_avg": [round(x, 2) for x in os.getloadavg()], "target_ms": TARGET_MS}
    if args.json:
        print(json.dumps({"meta": meta, "pages": results}))
        return 0
    print(f"dashboard render time, {meta['messages']:,} messages, {args.cases:,} open cases, "
          f"{dialect}, load average {meta['load_avg']}")
    print(f"{'page':20s} {'median ms':>10s} {'max ms':>8s} {'cold ms':>8s}  target <= 200 ms")
    for name, r in results.items():
        print(f"{name:20s} {r['median_ms']:10.1f} {r['max_ms']:8.1f} {r['cold_ms']:8.1f}  "
              f"{'ok' if r['ok'] else 'MISSED'}")
    return 0 if all(r["ok"] for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
