"""The messages one analysis run reads: user requests in a time window, as
per-user arrays (:class:`UserHistory`), with their stored scores and
embeddings.

Only ``role = 'user'`` messages are analysed: layer 3 judges what people ask
for. Rows the gateway stored without scores or an embedding (a detector
error, an old row) are scored here and the result written back, so the next
run does not pay for them again.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import sqlalchemy as sa

from guardstack.offline.scoring import Scorer
from guardstack.store.engine import Store
from guardstack.store.events import decode_embedding, encode_embedding
from guardstack.store.schema import messages
from guardstack.taxonomy import CATEGORY_IDS

#: Score columns kept per message: "harm" then every taxonomy category.
LABELS: tuple[str, ...] = ("harm", *CATEGORY_IDS)
LABEL_INDEX = {name: i for i, name in enumerate(LABELS)}
#: Rows fetched per round trip.
FETCH = 5000


@dataclass
class UserHistory:
    """One user's requests, oldest first. ``scores`` is (n, len(LABELS));
    ``embeddings`` (n, d) unit vectors, zero rows where none is known."""

    user: str
    ids: np.ndarray  # int64 message ids
    sessions: list[str]
    ts: np.ndarray  # float64 POSIX seconds
    texts: list[str]
    scores: np.ndarray  # float32
    embeddings: np.ndarray  # float32

    def __len__(self) -> int:
        return len(self.ids)

    def tail(self, n: int) -> UserHistory:
        """The most recent ``n`` requests (bounds per-user work)."""
        if len(self) <= n:
            return self
        return UserHistory(self.user, self.ids[-n:], self.sessions[-n:], self.ts[-n:],
                           self.texts[-n:], self.scores[-n:], self.embeddings[-n:])


@dataclass
class Corpus:
    users: list[UserHistory]
    since: datetime | None
    until: datetime | None
    #: Reference time for decay: the end of the window, else the newest message.
    now: float
    messages: int
    rescored: int
    dim: int

    def __iter__(self) -> Iterator[UserHistory]:
        return iter(self.users)


def _scores_row(scores: dict[str, float] | None) -> np.ndarray:
    row = np.zeros(len(LABELS), dtype=np.float32)
    if scores:
        for name, value in scores.items():
            i = LABEL_INDEX.get(name)
            if i is not None:
                row[i] = float(value)
    return row


def load(
    store: Store,
    since: datetime | None = None,
    until: datetime | None = None,
    *,
    scorer: Scorer | None = None,
    progress: bool = False,
) -> Corpus:
    cols = [messages.c.id, messages.c.user_id, messages.c.conversation_id, messages.c.ts,
            messages.c.content, messages.c.scores, messages.c.embedding,
            messages.c.embedding_dtype, messages.c.status]
    query = sa.select(*cols).where(messages.c.role == "user", messages.c.user_id.is_not(None))
    if since is not None:
        query = query.where(messages.c.ts >= since)
    if until is not None:
        query = query.where(messages.c.ts < until)
    query = query.order_by(messages.c.user_id, messages.c.ts, messages.c.id)

    per_user: dict[str, list[tuple[int, str, float, str, np.ndarray, np.ndarray | None]]] = {}
    missing: list[tuple[str, int]] = []
    dim = 0
    with store.engine.connect() as conn:
        result = conn.execution_options(stream_results=True, yield_per=FETCH).execute(query)
        for row in result:
            emb = None
            if row.embedding is not None:
                emb = decode_embedding(row.embedding, row.embedding_dtype or "f32")
                dim = dim or len(emb)
            if emb is None or not row.scores:
                missing.append((row.user_id, len(per_user.get(row.user_id, ()))))
            per_user.setdefault(row.user_id, []).append(
                (row.id, row.conversation_id or "", row.ts.timestamp(), row.content,
                 _scores_row(row.scores), emb)
            )
    rescored = 0
    if missing:
        rescored = _score_missing(store, per_user, missing, scorer or Scorer(), progress)
        for rows in per_user.values():
            for r in rows:
                if r[5] is not None:
                    dim = dim or len(r[5])
                    break
            if dim:
                break
    users: list[UserHistory] = []
    newest = 0.0
    total = 0
    for user in sorted(per_user):
        rows = per_user[user]
        rows.sort(key=lambda r: (r[2], r[0]))  # time order even if stored out of order
        n = len(rows)
        total += n
        emb = np.zeros((n, dim), dtype=np.float32)
        for i, r in enumerate(rows):
            if r[5] is not None and len(r[5]) == dim:
                emb[i] = r[5]
        users.append(UserHistory(
            user=user,
            ids=np.fromiter((r[0] for r in rows), dtype=np.int64, count=n),
            sessions=[r[1] for r in rows],
            ts=np.fromiter((r[2] for r in rows), dtype=np.float64, count=n),
            texts=[r[3] for r in rows],
            scores=np.stack([r[4] for r in rows]) if n else np.zeros((0, len(LABELS))),
            embeddings=emb,
        ))
        newest = max(newest, float(users[-1].ts[-1]))
    now = until.timestamp() if until is not None else newest
    return Corpus(users, since, until, now, total, rescored, dim)


def _score_missing(store: Store, per_user: dict[str, list], missing: list[tuple[str, int]],
                   scorer: Scorer, progress: bool) -> int:
    if progress:
        print(f"scoring {len(missing)} stored message(s) without scores or embedding",
              file=sys.stderr)
    texts = [per_user[u][i][3] for u, i in missing]
    results = scorer.score(texts)
    updates = []
    for (user, i), res in zip(missing, results, strict=True):
        if not res.ok:
            continue
        mid, session, ts, content, _, _ = per_user[user][i]
        per_user[user][i] = (mid, session, ts, content, _scores_row(res.scores), res.embedding)
        blob = encode_embedding(res.embedding) if res.embedding is not None else None
        updates.append({"mid": mid, "scores": res.scores, "embedding": blob,
                        "embedding_dtype": "f32" if blob else None,
                        "embedding_dim": len(res.embedding) if res.embedding is not None
                        else None})
    if updates:
        stmt = (
            messages.update()
            .where(messages.c.id == sa.bindparam("mid"))
            .values(scores=sa.bindparam("scores"), embedding=sa.bindparam("embedding"),
                    embedding_dtype=sa.bindparam("embedding_dtype"),
                    embedding_dim=sa.bindparam("embedding_dim"))
        )
        with store.engine.begin() as conn:
            conn.execute(stmt, updates)
    return len(updates)
