"""The injection check of tool results (:mod:`guardstack.injection`) as
verdicts under a policy's ``tool_output`` rule: which results of a
conversation it reads, and what it decides. Shared by the gateway and the
LiteLLM guardrail."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

from guardstack import injection
from guardstack.classifiers.base import Message
from guardstack.policy import Rule
from guardstack.verdict import Action, Verdict

#: The detector name on the verdicts.
DETECTOR = "injection-rules"
TOOL_ROLES = ("tool", "function")
#: Texts longer than this (in all) are read in a worker thread: a megabyte
#: takes about half a second, which would hold the gateway's event loop.
INLINE_CHARS = 16_384


def since_last_user(messages: Sequence[Message]) -> list[str]:
    """The tool results after the last user message: what the model is about
    to read for the first time (earlier ones were read on their own turn)."""
    last_user = max((i for i, m in enumerate(messages) if m.role == "user"), default=-1)
    return [m.content for m in messages[last_user + 1:] if m.role in TOOL_ROLES and m.content]


def verdicts(texts: Sequence[str], rule: Rule, *, other_languages: bool = False
             ) -> list[Verdict]:
    """One verdict per text under ``rule`` (its action where a finding scores
    at least its threshold, else allow). Call only with ``rule.action`` not
    allow: the rules then cost about 0.2 ms per KB. ``other_languages``: the
    policy's ``tool_output.other_languages``."""
    out = []
    for text in texts:
        start = time.perf_counter()
        finding = injection.scan(text, other_languages=other_languages)
        crossed = finding is not None and finding.score >= rule.threshold
        out.append(Verdict(
            decision=rule.action if crossed else Action.ALLOW, role="tool",
            scores={"jailbreak": finding.score if finding else 0.0},
            categories=("jailbreak",) if crossed else (), detector=DETECTOR,
            latency_ms=(time.perf_counter() - start) * 1000,
            reason=f"{finding.family}: '{finding.excerpt}'" if finding else ""))
    return out


async def averdicts(texts: Sequence[str], rule: Rule, *, other_languages: bool = False
                    ) -> list[Verdict]:
    """:func:`verdicts` from async code: inline for short texts, in a thread
    for long ones."""
    if sum(map(len, texts)) <= INLINE_CHARS:
        return verdicts(texts, rule, other_languages=other_languages)
    return await asyncio.to_thread(verdicts, texts, rule, other_languages=other_languages)


def planted_targets(found: Sequence[Verdict], user_texts: Sequence[str]) -> frozenset[str]:
    """Where the findings among ``found`` point (links' hosts, e-mail
    addresses, domains: :func:`guardstack.injection.targets`), less what the
    user's own messages name: an answer may repeat what the user asked about."""
    planted = frozenset().union(*(injection.targets(v.reason) for v in found
                                  if v.decision is not Action.ALLOW))
    if not planted:
        return planted
    return planted - injection.targets("\n".join(user_texts))


def repeated(answer: str, planted: frozenset[str]) -> list[str]:
    """The planted targets ``answer`` repeats."""
    if not planted:
        return []
    text = answer.lower()
    return sorted(t for t in planted if t in text)


def followed(hits: Sequence[str], action: Action) -> Verdict | None:
    """A verdict under ``tool_output.followed`` for an answer that repeats
    ``hits`` (:func:`repeated`): the injection worked. None for no hits, or
    a policy that does not check."""
    if action is Action.ALLOW or not hits:
        return None
    return Verdict(decision=action, role="response", scores={"jailbreak": injection.SCORE},
                   categories=("jailbreak",), detector=DETECTOR,
                   reason=f"the answer repeats {', '.join(hits)} from instructions planted in "
                          "a tool result")


def reporting(rule: Rule) -> Rule:
    """The rule a report of findings uses (``/v1/moderations`` with role
    ``tool``, ``guardstack check --role tool``): the policy's, or ``flag``
    where the policy leaves the gateway's own check off."""
    return Rule(rule.threshold, Action.FLAG) if rule.action is Action.ALLOW else rule
