"""Training data for the fast classifier: loading the normalized sets in
``../shared/data``, mapping their labels to guardstack's taxonomy, the
license filter, contrast sets, and deterministic held-out splits.

Split rule: a row's split comes from a hash of its *content key* (the
normalized judged text, or a group key such as a HarmBench behaviour or a
HateCheck template), not of ``(source, id)``. The same prompt appears in
several sources (AdvBench rows inside JailbreakBench, HarmBench inside
k_overrefusal); hashing content puts every copy in the same split, so no test
prompt is ever trained on under another source's name.
"""

from __future__ import annotations

import hashlib
import json
import random
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from guardstack.classifiers.base import Message
from guardstack.taxonomy import CATEGORY_IDS
from guardstack.training import contrast

LABELS: tuple[str, ...] = ("harm", *CATEGORY_IDS)
SPLIT_SEED = 20261125
SPLITS = ("train", "dev", "test")

#: Sets that may train shipped weights (README: permissive or attribution).
TRAINABLE = frozenset(
    {
        "harmbench",
        "advbench",
        "do_not_answer",
        "jailbreak_llms",
        "jailbreakbench",
        "strongreject",
        "dices",
        "mt_bench",
        "self_instruct",
        "coconot",
        "or_bench_hard",
        "k_overrefusal",
        "cyberseceval_frr",
        "orbench80k_multilingual",
        "gsm8k",
        "humaneval",
        "gpteacher",
        "arena_hard",
        "nq_open",
        "mt_bench_101",
        "hatecheck",
        "multilingual_hatecheck",
        "hatemoji",
        "toxigen_seeds",
        "davidson_hate_offensive",
        "convabuse",
        "reddit_cssrs_suicide",
    }
)
#: Non-commercial or unlicensed: evaluation only, never training.
EVAL_ONLY = frozenset(
    {
        "toxicchat_train",
        "alpaca_instructions",
        "bio_overrefusal",
        "cosafe",
        "oktest",
        "phtest",
        "orfuzz",
        "xstest_zh",
    }
)
#: k_overrefusal rows that are translations of unlicensed sets or of XSTest
#: (a held-out benchmark): never trained on.
_KOR_EXCLUDED_TYPES = frozenset(
    {
        "maliciousinstruct",
        "phtest",
        "oktest",
        "homonyms",
        "figurative_language",
        "safe_targets",
        "safe_contexts",
        "definitions",
        "real_group_nons_discr",
        "nons_group_real_discr",
        "historical_events",
        "privacy_public",
        "privacy_fictional",
    }
)

# Kinds decide weighting and which rows calibration treats as "benign but
# sensitive" (the over-refusal side of the operating point).
HARMFUL = "harmful"
SENSITIVE = "benign_sensitive"
GENERAL = "benign_general"
RESPONSE = "response"


@dataclass(frozen=True, slots=True)
class Example:
    source: str
    id: str
    text: str
    role: str = "prompt"
    context: tuple[Message, ...] = ()
    harm: int = 0
    #: Taxonomy ids this row is positive for; None = unsafe but category unknown.
    categories: tuple[str, ...] | None = ()
    kind: str = GENERAL
    lang: str = "en"
    weight: float = 1.0
    key: str = ""
    split: str = ""
    meta: dict[str, Any] = field(default_factory=dict, compare=False)

    def targets(self) -> tuple[list[float], list[float]]:
        """(targets, loss mask) over :data:`LABELS`."""
        y = [float(self.harm)] + [0.0] * len(CATEGORY_IDS)
        mask = [1.0] * len(LABELS)
        if self.harm and self.categories is None:
            mask = [1.0] + [0.0] * len(CATEGORY_IDS)
        for c in self.categories or ():
            y[LABELS.index(c)] = 1.0
        return y, mask


# ---------------------------------------------------------------- splitting


def content_key(text: str) -> str:
    t = unicodedata.normalize("NFKC", text).casefold()
    return " ".join(t.split())


def split_of(key: str, seed: int = SPLIT_SEED) -> str:
    h = int.from_bytes(hashlib.sha256(f"{seed}:{key}".encode()).digest()[:8], "big") % 100
    return "train" if h < 70 else "dev" if h < 85 else "test"


def _rank(key: str, seed: int) -> int:
    return int.from_bytes(hashlib.sha256(f"rank:{seed}:{key}".encode()).digest()[:8], "big")


# ---------------------------------------------------------------- label maps

_HARMBENCH: dict[str, tuple[str, ...]] = {
    "cybercrime_intrusion": ("cyber",),
    "illegal": ("nonviolent_crime",),
    "misinformation_disinformation": ("influence_ops",),
    "chemical_biological": ("cbrn",),
    "harassment_bullying": ("harassment",),
}
_STRONGREJECT: dict[str, tuple[str, ...]] = {
    "Non-violent crimes": ("nonviolent_crime",),
    "Violence": ("violent_crime",),
    "Disinformation and deception": ("influence_ops",),
    "Sexual content": ("sexual",),
}
_JBB: dict[str, tuple[str, ...]] = {
    "Privacy": ("privacy",),
    "Fraud/Deception": ("nonviolent_crime",),
    "Malware/Hacking": ("cyber",),
    "Sexual/Adult content": ("sexual",),
    "Economic harm": ("nonviolent_crime",),
    "Disinformation": ("influence_ops",),
}
_DNA: dict[str, tuple[str, ...]] = {"Human-Chatbot Interaction Harms": ("psychological_harm",)}
_COCONOT: dict[str, tuple[str, ...]] = {"privacy violations": ("privacy",)}
_KOR: dict[str, tuple[str, ...]] = {
    "harm_privacy_surveil": ("privacy",),
    "harm_financial": ("nonviolent_crime",),
    "harm_violence": ("violent_crime",),
    "harm_drugs": ("nonviolent_crime",),
    "harm_fraud_forgery": ("nonviolent_crime",),
    "harm_chem_bio": ("cbrn",),
    "harm_weapons": ("weapons",),
    "harm_illegal_goods": ("nonviolent_crime",),
    "harm_cyber": ("cyber",),
    "harm_misinfo": ("influence_ops",),
}
_CONVABUSE: dict[str, tuple[str, ...]] = {
    "sexual/harassment": ("sexual", "harassment"),
    "harassment": ("harassment",),
    "hate": ("hate",),
}


def map_categories(source: str, row: dict[str, Any]) -> tuple[str, ...] | None:
    """Taxonomy ids for an unsafe row; None when the source's category has no
    clean equivalent (then only "harm" is trained for that row)."""
    cats = row.get("categories") or []
    meta = row.get("meta") or {}
    tables: dict[str, dict[str, tuple[str, ...]]] = {
        "harmbench": _HARMBENCH,
        "strongreject": _STRONGREJECT,
        "jailbreakbench": _JBB,
        "do_not_answer": _DNA,
        "coconot": _COCONOT,
        "k_overrefusal": _KOR,
    }
    table = tables.get(source)
    if table is not None:
        keys = [meta.get("orig_type")] if source == "k_overrefusal" else cats
        for k in keys:
            if k in table:
                return table[k]
        return None
    if source in {"hatecheck", "multilingual_hatecheck", "hatemoji", "toxigen_seeds"}:
        return ("hate",)
    if source == "davidson_hate_offensive":
        return ("hate",) if "hate_speech" in cats else ("harassment",)
    if source == "convabuse":
        out: list[str] = []
        for t in meta.get("taxonomy") or []:
            out += [c for c in _CONVABUSE.get(t, ()) if c not in out]
        return tuple(out) or None
    if source == "reddit_cssrs_suicide":
        return ("self_harm",)
    if source == "jailbreak_llms":
        return ("jailbreak",)
    return None


# ---------------------------------------------------------------- loading


def read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8") as f:
        for line in f:
            if line.strip():
                yield json.loads(line)


def _rows(data_dir: Path, name: str) -> list[dict[str, Any]]:
    path = data_dir / name / f"{name}.jsonl"
    return list(read_jsonl(path)) if path.exists() else []


def _msgs(items: Iterable[dict[str, Any]]) -> tuple[Message, ...]:
    return tuple(Message(str(m.get("role", "user")), str(m.get("content", ""))) for m in items)


def _prompt_example(source: str, row: dict[str, Any], kind_if_safe: str) -> Example | None:
    text = row.get("text")
    context: tuple[Message, ...] = ()
    if text is None and row.get("turns"):
        # multi-turn user-only records: judge the last turn with earlier ones as context
        turns = [str(t) for t in row["turns"]]
        text = turns[-1]
        context = tuple(Message("user", t) for t in turns[:-1])
    if not text:
        return None
    if row.get("context") and isinstance(row["context"], list):
        context = _msgs(row["context"])
    elif row.get("context") and isinstance(row["context"], str):
        # HarmBench contextual behaviours: the document travels with the request
        text = f"{row['context']}\n\n{text}"
    unsafe = row.get("label") == "unsafe"
    meta = row.get("meta") or {}
    return Example(
        source=source,
        id=str(row["id"]),
        text=str(text),
        context=context,
        harm=int(unsafe),
        categories=map_categories(source, row) if unsafe else (),
        kind=HARMFUL if unsafe else kind_if_safe,
        lang=str(meta.get("lang") or "en"),
        key=content_key(str(row.get("text") or text)),
        meta={"split": row.get("split"), "categories": row.get("categories")},
    )


def _trainable_row(source: str, row: dict[str, Any]) -> bool:
    meta = row.get("meta") or {}
    if source == "harmbench" and "copyright" in (row.get("categories") or []):
        return False  # outside the taxonomy; teaching lyric requests as harm is over-refusal
    if source == "k_overrefusal" and meta.get("orig_type") in _KOR_EXCLUDED_TYPES:
        return False
    return not (source == "orbench80k_multilingual" and meta.get("lang") != "en")


_SENSITIVE_SOURCES = frozenset(
    {
        "or_bench_hard",
        "orbench80k_multilingual",
        "coconot",
        "cyberseceval_frr",
        "hatecheck",
        "multilingual_hatecheck",
        "hatemoji",
        "toxigen_seeds",
        "convabuse",
        "reddit_cssrs_suicide",
        "k_overrefusal",
        "davidson_hate_offensive",
        "phtest",
        "oktest",
        "orfuzz",
        "xstest_zh",
        "bio_overrefusal",
        "toxicchat_train",
    }
)


def load_source(data_dir: Path, source: str) -> list[Example]:
    """All prompt-level examples of one source, each with its split."""
    kind = SENSITIVE if source in _SENSITIVE_SOURCES else GENERAL
    out: list[Example] = []
    for row in _rows(data_dir, source):
        if row.get("response") is not None:
            continue  # response-level rows are built by load_responses
        ex = _prompt_example(source, row, kind)
        if ex is None:
            continue
        if source in {"hatecheck", "multilingual_hatecheck"} and row["meta"].get("templ_id"):
            # template siblings differ only in the target group: keep them together
            lang = row["meta"].get("lang", "en")
            ex = replace(ex, key=f"hatecheck:{lang}:{row['meta']['templ_id']}")
        if source == "jailbreakbench":
            ex = replace(ex, key=content_key(str(row.get("meta", {}).get("goal") or ex.text)))
        if source == "davidson_hate_offensive" and "offensive_language" in row["categories"]:
            ex = replace(ex, weight=0.5)  # crowd "offensive" labels are noisy
        out.append(replace(ex, split=split_of(ex.key)))
    return out


def load_responses(data_dir: Path) -> list[Example]:
    """Response-role examples: the judged text is a model answer, its context
    the prompt it answers."""
    out: list[Example] = []
    for row in _rows(data_dir, "jailbreakbench"):
        if row.get("response") is None:
            continue
        meta = row.get("meta") or {}
        unsafe = row["label"] == "unsafe"
        key = content_key(str(meta.get("goal") or row["text"]))
        out.append(
            Example(
                source="jailbreakbench_responses",
                id=str(row["id"]),
                text=str(row["response"]),
                role="response",
                context=(Message("user", str(row["text"])),),
                harm=int(unsafe),
                categories=map_categories("jailbreakbench", row) if unsafe else (),
                kind=RESPONSE,
                key=key,
                split=split_of(key),
            )
        )
        # the attack prompt itself is a harmful prompt
        out.append(
            Example(
                source="jailbreakbench_attacks",
                id=str(row["id"]),
                text=str(row["text"]),
                harm=1,
                categories=map_categories("jailbreakbench", row),
                kind=HARMFUL,
                key=key,
                split=split_of(key),
            )
        )
    for row in _rows(data_dir, "dices"):
        key = content_key(str(row["response"]) + " " + str(row["id"]))
        out.append(
            Example(
                source="dices",
                id=str(row["id"]),
                text=str(row["response"]),
                role="response",
                context=_msgs(row.get("context") or []),
                harm=int(row["label"] == "unsafe"),
                categories=None if row["label"] == "unsafe" else (),
                kind=RESPONSE,
                key=key,
                split=split_of(key),
            )
        )
    for row in _rows(data_dir, "mt_bench_101"):
        conv = _msgs(row.get("conversation") or [])
        last = max((i for i, m in enumerate(conv) if m.role == "assistant"), default=-1)
        if last < 1:
            continue
        key = f"mtb101:{row['id']}"
        out.append(
            Example(
                source="mt_bench_101",
                id=str(row["id"]),
                text=conv[last].content,
                role="response",
                context=conv[:last],
                kind=RESPONSE,
                key=key,
                split=split_of(key),
            )
        )
    for row in _rows(data_dir, "gpteacher"):
        resp = (row.get("meta") or {}).get("response")
        if resp:
            out.append(_answer_example("gpteacher_responses", row, str(resp)))
    for row in _rows(data_dir, "coconot"):
        chosen = (row.get("meta") or {}).get("chosen")
        if chosen and row["label"] == "safe":
            # a helpful answer to a sensitive-sounding benign question is safe
            out.append(_answer_example("coconot_responses", row, str(chosen)))
    return out


def _answer_example(source: str, row: dict[str, Any], answer: str) -> Example:
    """A benign answer judged as a response, its prompt as context; split by the prompt."""
    key = content_key(str(row["text"]))
    return Example(
        source=source,
        id=str(row["id"]),
        text=answer,
        role="response",
        context=(Message("user", str(row["text"])),),
        kind=RESPONSE,
        key=key,
        split=split_of(key),
    )


def refusal_examples(harmful: Iterable[Example], seed: int) -> list[Example]:
    """Refusals answering harmful prompts are safe responses. Each inherits
    its prompt's split so no test prompt leaks into training."""
    rng = random.Random(seed)
    out = []
    for ex in harmful:
        refusal = rng.choice(contrast.REFUSALS)
        out.append(
            Example(
                source="synthetic_refusals",
                id=f"refusal-{ex.source}-{ex.id}",
                text=refusal,
                role="response",
                context=(Message("user", ex.text),),
                kind=RESPONSE,
                key=ex.key,
                split=ex.split,
            )
        )
    return out


def contrast_examples(seed: int = SPLIT_SEED) -> list[Example]:
    out = []
    for source, kind, templates, per in (
        ("contrast_benign", SENSITIVE, contrast.BENIGN, 40),
        ("contrast_harmful", HARMFUL, contrast.HARMFUL, 30),
        ("contrast_everyday", GENERAL, contrast.EVERYDAY, 40),
    ):
        for i, (text, cat, base) in enumerate(contrast.expand(templates, per, seed)):
            key = content_key(base)
            out.append(
                Example(
                    source=source,
                    id=str(i),
                    text=text,
                    harm=int(cat is not None),
                    categories=(cat,) if cat else (),
                    kind=kind,
                    key=key,
                    split=split_of(key),
                )
            )
    return out


# ---------------------------------------------------------------- the mix

#: Cap on TRAIN rows per source (dev is capped at 30% of it): no set dominates.
TRAIN_CAPS: dict[str, int] = {
    "harmbench": 10_000,
    "advbench": 500,
    "do_not_answer": 700,
    "strongreject": 10_000,
    "jailbreakbench": 10_000,
    "jailbreakbench_attacks": 250,
    "coconot": 1_400,
    "k_overrefusal": 400,
    "hatecheck": 800,
    "multilingual_hatecheck": 500,
    "hatemoji": 600,
    "toxigen_seeds": 550,
    "davidson_hate_offensive": 450,
    "convabuse": 700,
    "reddit_cssrs_suicide": 400,
    "jailbreak_llms": 400,
    "or_bench_hard": 1_100,
    "orbench80k_multilingual": 450,
    "cyberseceval_frr": 600,
    "gsm8k": 300,
    "nq_open": 700,
    "gpteacher": 1_500,
    "arena_hard": 350,
    "humaneval": 120,
    "self_instruct": 400,
    "mt_bench": 120,
    "mt_bench_101": 900,
    "dices": 700,
    "jailbreakbench_responses": 600,
    "gpteacher_responses": 200,
    "coconot_responses": 250,
    "synthetic_refusals": 350,
    "contrast_benign": 10_000,
    "contrast_harmful": 10_000,
    "contrast_everyday": 10_000,
}
#: Weight by kind; contrast rows carry the intent signal so they count double.
KIND_WEIGHT = {HARMFUL: 1.0, SENSITIVE: 1.0, GENERAL: 1.0, RESPONSE: 1.0}
SOURCE_WEIGHT = {"contrast_benign": 2.0, "contrast_harmful": 2.0, "contrast_everyday": 2.0}
#: Safe rows that share words with harm (counter-speech quoting a slur, a
#: support post about suicide, a dark but harmless question). After one
#: epoch the model flagged most of them (HateCheck non-hateful 86%, C-SSRS
#: supportive 69% on dev), so they count more.
HARD_NEGATIVE_WEIGHT = {
    "hatecheck": 2.5,
    "multilingual_hatecheck": 2.0,
    "hatemoji": 2.0,
    "davidson_hate_offensive": 1.5,
    "toxigen_seeds": 1.5,
    "reddit_cssrs_suicide": 2.0,
    "k_overrefusal": 2.0,
    "arena_hard": 1.5,
}
#: Unsafe sources the model missed most after one epoch (StrongREJECT 70%,
#: Do-Not-Answer 83% recall on dev). Modest: at 2.0 / 1.5 the eval-only
#: over-refusal probes (OKTest, ORFuzz) got markedly worse.
HARD_POSITIVE_WEIGHT = {"strongreject": 1.5, "do_not_answer": 1.25, "k_overrefusal": 1.5}


def row_weight(e: Example) -> float:
    """Loss weight of one train row from its kind, source and label."""
    w = KIND_WEIGHT.get(e.kind, 1.0) * SOURCE_WEIGHT.get(e.source, 1.0)
    table = HARD_POSITIVE_WEIGHT if e.harm else HARD_NEGATIVE_WEIGHT
    return e.weight * w * table.get(e.source, 1.0)


@dataclass
class Mix:
    train: list[Example]
    dev: list[Example]
    #: full held-out test rows per source (uncapped), for export and eval
    test: dict[str, list[Example]]
    eval_only: dict[str, list[Example]]

    def summary(self) -> dict[str, Any]:
        return {
            "train": dict(Counter(e.source for e in self.train)),
            "dev": dict(Counter(e.source for e in self.dev)),
            "test": {k: len(v) for k, v in self.test.items()},
            "eval_only": {k: len(v) for k, v in self.eval_only.items()},
            "train_unsafe": sum(e.harm for e in self.train),
            "train_response": sum(e.role == "response" for e in self.train),
        }


def _cap(rows: list[Example], n: int, seed: int) -> list[Example]:
    if len(rows) <= n:
        return rows
    # per-row rank keeps the sample stable when other rows come and go;
    # id breaks ties between rows sharing a group key
    return sorted(rows, key=lambda e: _rank(f"{e.key}|{e.id}", seed))[:n]


def _dedupe(rows: list[Example]) -> list[Example]:
    seen: set[tuple[str, str, str]] = set()
    out = []
    for e in rows:
        k = (e.role, content_key(e.text), content_key(" ".join(m.content for m in e.context)))
        if k not in seen:
            seen.add(k)
            out.append(e)
    return out


def build_mix(
    data_dir: Path,
    seed: int = SPLIT_SEED,
    scale: float = 1.0,
    sources: Callable[[str], bool] | None = None,
) -> Mix:
    """Load, filter by license, split, cap and weigh everything.

    ``scale`` shrinks every train cap (the smoke test uses ~0.02)."""
    data_dir = Path(data_dir)
    by_source: dict[str, list[Example]] = {}
    for source in sorted(TRAINABLE | EVAL_ONLY):
        if sources is not None and not sources(source):
            continue
        rows = _rows(data_dir, source)
        if not rows:
            continue
        exs = load_source(data_dir, source)
        if source in TRAINABLE:
            keep_ids = {str(r["id"]) for r in rows if _trainable_row(source, r)}
            by_source[source] = [e for e in exs if e.id in keep_ids]
            dropped = [e for e in exs if e.id not in keep_ids]
            if dropped and source != "harmbench":
                by_source[f"{source}_evalonly"] = dropped
        else:
            by_source[source] = exs
    if sources is None or sources("responses"):
        for e in load_responses(data_dir):
            by_source.setdefault(e.source, []).append(e)
    if sources is None or sources("contrast"):
        for e in contrast_examples(seed):
            by_source.setdefault(e.source, []).append(e)
    harmful_train_pool = [
        e
        for s, exs in by_source.items()
        if s in {"harmbench", "advbench", "strongreject", "do_not_answer", "contrast_harmful"}
        for e in exs
    ]
    by_source["synthetic_refusals"] = refusal_examples(harmful_train_pool, seed)

    train: list[Example] = []
    dev: list[Example] = []
    test: dict[str, list[Example]] = {}
    eval_only: dict[str, list[Example]] = {}
    for source, exs in sorted(by_source.items()):
        if source in EVAL_ONLY or source.endswith("_evalonly"):
            eval_only[source] = exs
            continue
        cap = max(int(TRAIN_CAPS.get(source, 300) * scale), 1)
        tr = [e for e in exs if e.split == "train"]
        dv = [e for e in exs if e.split == "dev"]
        test[source] = [e for e in exs if e.split == "test"]
        train += [replace(e, weight=row_weight(e)) for e in _cap(tr, cap, seed)]
        dev += _cap(dv, max(int(cap * 0.3), 1), seed)
    # remove cross-source duplicates; splits are content-keyed so copies agree,
    # except where a source is grouped by another key (template, behaviour,
    # dialogue): a held-out prompt that is also a train prompt is dropped
    train = _dedupe(train)
    seen = {content_key(e.text) for e in train if e.role == "prompt"}

    def held_out(e: Example) -> bool:
        return e.role == "response" or content_key(e.text) not in seen

    dev = [e for e in _dedupe(dev) if held_out(e)]
    test = {s: [e for e in rows if held_out(e)] for s, rows in test.items()}
    rng = random.Random(seed)
    rng.shuffle(train)
    return Mix(train=train, dev=dev, test=test, eval_only=eval_only)


# ---------------------------------------------------------------- export


def to_record(e: Example) -> dict[str, Any]:
    """An example in ../shared/data's normalized schema."""
    rec: dict[str, Any] = {
        "id": e.id,
        "label": "unsafe" if e.harm else "safe",
        "categories": list(e.categories or ()),
        "source": e.source,
        "split": e.split or "test",
        "meta": {"lang": e.lang, "kind": e.kind, **{k: v for k, v in e.meta.items() if v}},
    }
    if e.role == "response":
        rec["response"] = e.text
        rec["label_target"] = "response"
        rec["context"] = [{"role": m.role, "content": m.content} for m in e.context]
        prompts = [m.content for m in e.context if m.role == "user"]
        rec["text"] = prompts[-1] if prompts else ""
    else:
        rec["text"] = e.text
        if e.context:
            rec["context"] = [{"role": m.role, "content": m.content} for m in e.context]
    return rec


def export_splits(mix: Mix, out_dir: Path) -> dict[str, int]:
    """Write held-out TEST rows per source, and the eval-only sets whole."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written: dict[str, int] = {}
    for name, rows, suffix in [
        *((s, r, "test") for s, r in mix.test.items()),
        *((s, r, "evalonly") for s, r in mix.eval_only.items()),
    ]:
        if not rows:
            continue
        path = out_dir / f"{name.removesuffix('_evalonly')}.{suffix}.jsonl"
        with path.open("w", encoding="utf-8") as f:
            for e in rows:
                f.write(json.dumps(to_record(e), ensure_ascii=False) + "\n")
        written[path.name] = len(rows)
    return written
