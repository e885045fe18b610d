"""Denied topics: subjects a deployment keeps its model off, beside harm.

A bank's assistant must not recommend stocks, a school's tutor must not take
sides in an election, a retailer's bot must not diagnose a rash. None of that
is harm, so the classifier's categories do not cover it; AWS Bedrock
Guardrails calls these *denied topics* and NeMo Guardrails *topical rails*. A
policy names them under ``topics:`` with example requests, and the verdict
reports the topics a text is on (``Verdict.topics``; ``denied_topics`` in a
blocked request's ``content_filter_result``).

A topic is matched by meaning, not words: the text's embedding (the fast
classifier's, which every check computes anyway, so a topic costs one dot
product per example) against the topic's ``examples``, embedded once by the
same detector. That encoder was fine-tuned to judge harm, so everyday texts
crowd into one region of its space: embeddings are taken relative to the
mean of ``topic_reference.jsonl`` (240 everyday prompts from Arena-Hard,
Apache-2.0, and GPTeacher, MIT), embedded by the same detector, which
spreads them out. The text is on a topic when its nearest example is at
least ``threshold`` alike (cosine similarity of the centred vectors) and
nearer than any of the topic's ``allowed`` examples: the near misses the
deployment wants answered ("what is a bond?" beside "which bonds should I
buy?"). Of several topics that match, the nearest is reported
(docs/policy.md#denied-topics has the measurements).

A match gives the topic's ``action`` (``flag`` or ``block``) whatever the
classifier said, and its id and similarity in the reason; the event store
keeps ``topic:<id>`` among the message's categories, and the training export
leaves such exchanges out (a deployment's rule is not harm to teach).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources

import numpy as np

from guardstack.verdict import Action

ROLES = ("prompt", "response")
#: How the event store keeps a match among a message's categories: ``topic:<id>``.
TOPIC_PREFIX = "topic:"
#: Cosine similarity to the nearest example from which a text is on a topic;
#: chosen on benchmarks/topics_dev.jsonl (docs/policy.md#denied-topics).
DEFAULT_THRESHOLD = 0.65
#: Bounds that keep a policy's load time in seconds (each example is one
#: classifier call when the policy loads): topics per policy, examples (and
#: allowed examples) per topic, characters per example.
MAX_TOPICS = 50
MAX_EXAMPLES = 100
MAX_EXAMPLE_CHARS = 1000


class TopicError(RuntimeError):
    """The policy's topics cannot be judged with this detector."""


@dataclass(frozen=True, slots=True)
class Topic:
    id: str
    examples: tuple[str, ...]
    #: near misses the deployment wants answered: nearer to one, not on the topic
    allowed: tuple[str, ...] = ()
    #: what the topic covers, for people (and guard models that read a policy)
    description: str | None = None
    threshold: float = DEFAULT_THRESHOLD
    action: Action = Action.BLOCK
    roles: tuple[str, ...] = ROLES


@dataclass(frozen=True, slots=True)
class TopicHit:
    topic: Topic
    similarity: float

    def describe(self) -> str:
        return f"topic {self.topic.id} {self.similarity:.2f}>={self.topic.threshold:g}"


#: Embeds texts of a role, each on its own (``alone``) or in batches: one
#: vector (or None) per text.
Embed = Callable[[Sequence[str], str, bool], Sequence[Sequence[float] | None]]


@dataclass(frozen=True, slots=True)
class TopicVectors:
    """The topics' examples embedded, per role: ``(examples, allowed)``
    matrices of centred unit rows keyed by topic id, and the centre (the
    reference prompts' mean embedding) per role."""

    by_role: Mapping[str, Mapping[str, tuple[np.ndarray, np.ndarray]]] = field(
        default_factory=dict)
    centre: Mapping[str, np.ndarray] = field(default_factory=dict)

    def vector(self, role: str, embedding: Sequence[float]) -> np.ndarray:
        """A text's embedding as the examples are kept: centred, unit length."""
        c = self.centre.get(role)
        v = _unit(embedding)
        return _unit(v - c) if c is not None else v


def reference_texts() -> list[str]:
    """The everyday prompts whose mean embedding centres the topic space."""
    raw = resources.files("guardstack").joinpath("topic_reference.jsonl").read_text("utf-8")
    return [json.loads(line)["text"] for line in raw.splitlines() if line.strip()]


def embed(topics: Sequence[Topic], embed_texts: Embed, detector: str = "the detector"
          ) -> TopicVectors:
    """Embed every topic's examples as texts of each role the topic applies
    to (an answer is compared with examples read as answers), with the
    reference prompts for the centre. Raises :class:`TopicError` when the
    detector gives no embedding."""
    by_role: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]] = {}
    centres: dict[str, np.ndarray] = {}
    reference = reference_texts()
    for role in ROLES:
        mine = [t for t in topics if role in t.roles]
        if not mine:
            continue
        texts = list(dict.fromkeys(x for t in mine for x in (*t.examples, *t.allowed)))
        # examples alone, so their vectors do not depend on batch-mates (int8
        # scores do); the reference only gives a mean, batched
        examples = _units(embed_texts(texts, role, True), detector)
        centre = centres[role] = np.mean(_units(embed_texts(reference, role, False), detector),
                                         axis=0)
        index = {text: _unit(vec - centre) for text, vec in zip(texts, examples, strict=True)}
        by_role[role] = {
            t.id: (_matrix([index[x] for x in t.examples]), _matrix([index[x] for x in t.allowed]))
            for t in mine}
    return TopicVectors(by_role, centres)


def find(topics: Sequence[Topic], vectors: TopicVectors, role: str,
         embedding: Sequence[float] | None) -> list[TopicHit]:
    """The topic of ``role`` the text whose ``embedding`` is given is on: of
    the topics it matches, the nearest (an empty list when none)."""
    table = vectors.by_role.get(role)
    if not table or embedding is None:
        return []
    v = vectors.vector(role, embedding)
    best: TopicHit | None = None
    for t in topics:
        pair = table.get(t.id)
        if pair is None:
            continue
        examples, allowed = pair
        if examples.shape[1] != v.shape[0]:
            return []  # another detector's embedding: not comparable
        near = float(np.max(examples @ v))
        crossed = near >= t.threshold and (not len(allowed) or near > float(np.max(allowed @ v)))
        if crossed and (best is None or near > best.similarity):
            best = TopicHit(t, near)
    return [best] if best is not None else []


def applies(topics: Sequence[Topic], role: str) -> bool:
    return any(role in t.roles for t in topics)


def _unit(vec: Sequence[float] | np.ndarray) -> np.ndarray:
    a = np.asarray(vec, dtype=np.float64)
    n = float(np.linalg.norm(a))
    return a / n if n > 0 else a


def _units(vecs: Sequence[Sequence[float] | None], detector: str) -> list[np.ndarray]:
    if any(v is None for v in vecs):
        raise TopicError(f"policy topics need a detector that gives embeddings "
                         f"(fast, cascade); {detector} gave none")
    return [_unit(v) for v in vecs if v is not None]


def _matrix(rows: list[np.ndarray]) -> np.ndarray:
    return np.vstack(rows) if rows else np.empty((0, 0))
