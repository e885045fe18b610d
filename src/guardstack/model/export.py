"""``export-training``: what layers 2 and 3 learned, as fine-tuning data.

Sources in the event store:

* prompts the gateway blocked -> SFT: prompt -> safe refusal;
* answers the gateway halted (or blocked) -> SFT refusal, and a preference
  pair: chosen refusal, rejected the model's own harmful answer;
* reviewer-confirmed layer-3 cases (table ``cases``, status ``confirmed``;
  absent before migration 0002, then skipped) -> their evidence messages
  were harmful: SFT refusal, and where the model answered, a pair against
  that answer. Wellbeing cases get a supportive completion, not a bare no;
* reviewer-dismissed layer-3 cases (status ``dismissed``) -> their evidence
  messages were judged benign: never taught as refusals (even if the gateway
  blocked them), and where the model answered, SFT on that answer and a pair
  against a refusal;
* benign-but-sensitive prompts correctly allowed (a category score at or
  above ``sensitive_score`` yet allowed, answered, not refused, in no
  confirmed case) -> SFT: prompt -> the model's helpful answer, and a pair:
  chosen that answer, rejected a refusal, so tuning does not teach
  over-refusal.

Exchanges a policy blocklist matched (stored category ``blocklist:<id>``)
or on a denied topic (``topic:<id>``) are left out: a list or a topic is the
deployment's own rule (a code name, a key format, personal data, investment
advice), not harm a model should learn to refuse.

Output is TRL's conversational format: ``{"messages": [...]}`` for SFT and
``{"prompt": [...], "chosen": [...], "rejected": [...]}`` for preferences.
``review_labels.jsonl`` holds every reviewed prompt in guardstack's eval
schema (``label`` unsafe for confirmed, safe for dismissed), for
``guardstack eval`` to measure an operating point against reviewers.
Examples are deduplicated on the normalised prompt, split by user (no user
in both train and test) and redacted (e-mail, phone, card, IBAN).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from guardstack.blocklists import BLOCKLIST_PREFIX
from guardstack.model import refusal
from guardstack.topics import TOPIC_PREFIX

#: The refusal taught for harmful requests: short, no lecture.
REFUSAL = "I can't help with that."
#: What a wellbeing case teaches instead of a bare refusal.
SUPPORTIVE = ("I'm really sorry you're going through this. I can't help with that, but you "
              "don't have to face it alone: please reach out to someone you trust or a crisis "
              "line (in the US, call or text 988; elsewhere, your local emergency number).")
SUPPORT_CATEGORIES = frozenset({"self_harm", "psychological_harm"})
#: Scores that are not harm categories.
_NOT_HARM = frozenset({"jailbreak"})


class ExportError(Exception):
    pass


@dataclass(slots=True)
class Exchange:
    id: str
    user: str
    prompt: str = ""
    prompt_decision: str | None = None
    prompt_scores: dict[str, float] = field(default_factory=dict)
    prompt_categories: list[str] = field(default_factory=list)
    prompt_message_id: int | None = None
    response: str = ""
    response_decision: str | None = None
    response_categories: list[str] = field(default_factory=list)
    halted: bool = False
    http_status: int | None = None


@dataclass(slots=True)
class Example:
    # blocked_prompt | halted_response | confirmed_case | dismissed_case | benign_allowed
    kind: str
    user: str
    prompt: str
    completion: str
    rejected: str | None = None


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().casefold()


def _safe_answer(categories: list[str]) -> str:
    return SUPPORTIVE if SUPPORT_CATEGORIES & set(categories) else REFUSAL


def read_exchanges(store: Any) -> Iterator[Exchange]:
    import sqlalchemy as sa

    from guardstack.store.schema import exchanges as ex
    from guardstack.store.schema import messages as msg

    query = (sa.select(ex.c.id, ex.c.user_id, ex.c.prompt_decision, ex.c.response_decision,
                       ex.c.halted, ex.c.http_status, msg.c.id.label("mid"), msg.c.role,
                       msg.c.content, msg.c.decision, msg.c.scores, msg.c.categories)
             .select_from(ex.join(msg, msg.c.exchange_id == ex.c.id))
             .order_by(ex.c.ts_start, ex.c.id, msg.c.idx))
    current: Exchange | None = None
    with store.engine.connect() as conn:
        for row in conn.execute(query):
            if current is None or current.id != row.id:
                if current is not None:
                    yield current
                current = Exchange(row.id, row.user_id or "anonymous",
                                   prompt_decision=row.prompt_decision,
                                   response_decision=row.response_decision,
                                   halted=bool(row.halted), http_status=row.http_status)
            if row.role == "user":
                # The last user message is the one the gateway judged.
                current.prompt, current.prompt_message_id = row.content or "", row.mid
                current.prompt_scores = dict(row.scores or {})
                current.prompt_categories = list(row.categories or [])
                current.prompt_decision = row.decision or current.prompt_decision
            elif row.role == "assistant":
                current.response = row.content or ""
                current.response_decision = row.decision or current.response_decision
                current.response_categories = list(row.categories or [])
    if current is not None:
        yield current


def reviewed_messages(store: Any, status: str) -> dict[int, str]:
    """message id -> case kind, for cases reviewers set to ``status``
    (empty before layer 3's migration)."""
    import sqlalchemy as sa

    if not sa.inspect(store.engine).has_table("cases"):
        return {}
    from guardstack.store.schema import cases

    out: dict[int, str] = {}
    with store.engine.connect() as conn:
        for kind, evidence in conn.execute(
                sa.select(cases.c.kind, cases.c.evidence).where(cases.c.status == status)):
            for item in evidence or ():
                if isinstance(item, dict) and isinstance(item.get("message_id"), int):
                    out[item["message_id"]] = kind
    return out


def confirmed_messages(store: Any) -> dict[int, str]:
    """message id -> case kind, for reviewer-confirmed cases."""
    return reviewed_messages(store, "confirmed")


def _answered(e: Exchange) -> bool:
    return bool(e.response.strip()) and not refusal.is_refusal(e.response)


def examples(exchanges: Iterator[Exchange], confirmed: dict[int, str],
             sensitive_score: float,
             dismissed: dict[int, str] | None = None) -> Iterator[Example]:
    dismissed = dismissed or {}
    for e in exchanges:
        if not e.prompt.strip() or _blocklisted(e):
            continue
        mid = e.prompt_message_id
        case = confirmed.get(mid) if mid is not None else None
        if case is None and mid is not None and mid in dismissed:
            # A reviewer judged it benign: teaching a refusal here would train
            # in the false positive the reviewer just removed.
            if (e.prompt_decision != "block" and not e.halted
                    and e.response_decision != "block" and _answered(e)):
                yield Example("dismissed_case", e.user, e.prompt, e.response, REFUSAL)
            continue
        if e.prompt_decision == "block":
            yield Example("blocked_prompt", e.user, e.prompt, _safe_answer(e.prompt_categories))
        elif e.halted or e.response_decision == "block":
            yield Example("halted_response", e.user, e.prompt,
                          _safe_answer(e.prompt_categories),
                          e.response if e.response.strip() else None)
        elif case is not None:
            cats = ["self_harm"] if case == "wellbeing" else e.prompt_categories
            yield Example("confirmed_case", e.user, e.prompt, _safe_answer(cats),
                          e.response if _answered(e) else None)
        elif (e.prompt_decision == "allow" and e.response_decision in ("allow", None)
              and (e.http_status in (None, 200)) and _answered(e)
              and max((v for k, v in e.prompt_scores.items() if k not in _NOT_HARM),
                      default=0.0) >= sensitive_score):
            yield Example("benign_allowed", e.user, e.prompt, e.response, REFUSAL)


_RULES = (BLOCKLIST_PREFIX, TOPIC_PREFIX)


def _blocklisted(e: Exchange) -> bool:
    """A blocklist or a denied topic matched: the deployment's rule, not harm."""
    return any(c.startswith(_RULES) for c in (*e.prompt_categories, *e.response_categories))


def review_labels(exchanges: list[Exchange], confirmed: dict[int, str],
                  dismissed: dict[int, str]) -> list[dict[str, Any]]:
    """Reviewed prompts as eval rows: confirmed -> unsafe, dismissed -> safe.
    ``guardstack eval review_labels.jsonl`` then says how a policy's
    operating point agrees with the reviewers (dismissals are its false
    positives). Redacted like the rest; no user ids."""
    out: list[dict[str, Any]] = []
    for e in exchanges:
        mid = e.prompt_message_id
        if mid is None or not e.prompt.strip() or (mid not in confirmed and mid not in dismissed):
            continue
        unsafe = mid in confirmed
        kind = confirmed[mid] if unsafe else dismissed[mid]
        out.append({"id": f"review-{mid}", "text": _redact(e.prompt),
                    "label": "unsafe" if unsafe else "safe",
                    "categories": [c for c in e.prompt_categories if c not in _NOT_HARM
                                   and not c.startswith(_RULES)]
                    if unsafe else [],
                    "source": "review", "meta": {"case_kind": kind}})
    return out


def in_test(user: str, share: float, seed: int) -> bool:
    digest = hashlib.sha256(f"{seed}:{user}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < share


def _redact(text: str) -> str:
    from guardstack.pii import redact_text

    return redact_text(text)[0]


def _conv(role: str, text: str) -> list[dict[str, str]]:
    return [{"role": role, "content": text}]


def export(db: str, out: Path, *, test_share: float = 0.2, seed: int = 0,
           sensitive_score: float = 0.2) -> dict[str, Any]:
    from guardstack.store import Store
    from guardstack.store.engine import require_existing
    from guardstack.store.errors import StoreError

    try:
        require_existing(db)
        store = Store(db)
        store.check()
        confirmed = confirmed_messages(store)
        dismissed = reviewed_messages(store, "dismissed")
        exchanges = list(read_exchanges(store))
        rows = list(examples(iter(exchanges), confirmed, sensitive_score, dismissed))
        labels = review_labels(exchanges, confirmed, dismissed)
        store.dispose()
    except StoreError as exc:
        raise ExportError(str(exc)) from None
    except Exception as exc:  # an unmigrated or foreign database
        import sqlalchemy as sa

        if isinstance(exc, sa.exc.SQLAlchemyError):
            raise ExportError(f"cannot read the event store {db}: "
                              f"{str(exc).splitlines()[0]} (run `guardstack db upgrade`?)") \
                from None
        raise
    seen: set[str] = set()
    files: dict[str, list[dict[str, Any]]] = {
        n: [] for n in ("sft_train.jsonl", "sft_test.jsonl", "prefs_train.jsonl",
                        "prefs_test.jsonl")}
    kinds: dict[str, int] = {}
    duplicates = 0
    users: dict[str, set[str]] = {"train": set(), "test": set()}
    for ex in rows:
        key = _norm(ex.prompt)
        if key in seen:
            duplicates += 1
            continue
        seen.add(key)
        split = "test" if in_test(ex.user, test_share, seed) else "train"
        users[split].add(ex.user)
        kinds[ex.kind] = kinds.get(ex.kind, 0) + 1
        prompt, completion = _redact(ex.prompt), _redact(ex.completion)
        files[f"sft_{split}.jsonl"].append(
            {"messages": _conv("user", prompt) + _conv("assistant", completion)})
        if ex.rejected is not None:
            files[f"prefs_{split}.jsonl"].append(
                {"prompt": _conv("user", prompt), "chosen": _conv("assistant", completion),
                 "rejected": _conv("assistant", _redact(ex.rejected))})
    try:
        out.mkdir(parents=True, exist_ok=True)
        files["review_labels.jsonl"] = labels
        for name, items in files.items():
            with (out / name).open("w", encoding="utf-8") as f:
                for item in items:
                    f.write(json.dumps(item, ensure_ascii=False) + "\n")
        manifest = {"files": {n: len(v) for n, v in files.items()}, "kinds": kinds,
                    "duplicates_dropped": duplicates,
                    "users": {k: len(v) for k, v in users.items()},
                    "test_share": test_share, "seed": seed, "sensitive_score": sensitive_score,
                    "redacted": True}
        (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n",
                                           encoding="utf-8")
    except OSError as exc:
        raise ExportError(f"cannot write to {out}: {exc}") from None
    return manifest
