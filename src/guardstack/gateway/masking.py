"""Masking: the policy's ``action: mask`` blocklists applied to what crosses
the gateway (:mod:`guardstack.blocklists`).

A prompt's user messages, and the earlier answers a conversation carries,
are masked before the body goes upstream, so the model server (and its logs)
never sees what the lists find (the texts of an embeddings request too, by
the prompt's lists); an answer's
content and reasoning are masked before the client sees them, whole answers
at once and streamed ones chunk by chunk as the output check releases them.
The stream check holds text that ends like the start of a credential, an
e-mail address or a number, so a find is released whole, and masked; a term
or pattern that a release splits is masked in neither half.

A list with ``restore: true`` numbers the values it masks in a prompt
(``[EMAIL_1]``, the same value the same number across the request's
messages) and keeps them on the exchange, in memory only; where the answer
repeats a placeholder, the client reads the value again (LiteLLM's
``output_parse_pii``). The stream keeps back the last word, so a placeholder
is never split. The store keeps the placeholders.

Counts go into ``Exchange.masked`` (role -> list id -> finds), which the
event store keeps and the gateway's metrics count; the matched text is
never recorded.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from typing import Any

from guardstack import blocklists, pii
from guardstack.content_parts import field_of, part_text
from guardstack.gateway import output_text
from guardstack.gateway.recorder import Exchange
from guardstack.policy import Policy

#: What a streamed or whole answer is masked in, beside ``content`` (the
#: reasoning a client shows too); tool-call arguments stay as the model wrote
#: them, since a tool needs the real values.
ANSWER_FIELDS = ("content", *output_text.REASONING_FIELDS)


def text(policy: Policy, role: str, value: str, exchange: Exchange, *,
         count: bool = True) -> str:
    """``value`` masked for ``role``; the finds counted on ``exchange`` (unless
    not ``count``: the same text masked again, for the record), and the values
    of ``restore`` lists numbered there."""
    masked = policy.mask(role, value, number=exchange.numbered)
    if count:
        exchange.count_masked(role, masked.counts)
    return masked.text


def recorded(policy: Policy, role: str, value: str | None, exchange: Exchange) -> str | None:
    """``value`` as the store keeps it: masked as what crossed the gateway
    was, when this exchange masked any of ``role``'s finds."""
    if value is None or not exchange.masked.get(role):
        return value
    return text(policy, role, value, exchange, count=False)


#: Whose messages a prompt's masking reads: the user's, and the earlier answers
#: a conversation carries back (a restored address in one must not reach the
#: model server on the next turn). The deployer's system prompt and tool
#: results, which an agent's next call may need verbatim, are left alone.
_MASKED_ROLES = ("user", "assistant")


def messages(policy: Policy, items: list[Any], exchange: Exchange) -> list[Any]:
    """Chat messages with the text of user messages and earlier answers
    masked (content as a string or as text parts); the same list when
    nothing changed."""
    if not policy.masks("prompt"):
        return items
    out = []
    for m in items:
        if isinstance(m, dict) and m.get("role") in _MASKED_ROLES:
            content = m.get("content")
            if isinstance(content, str):
                m = {**m, "content": text(policy, "prompt", content, exchange)}
            elif isinstance(content, list):
                m = {**m, "content": [
                    {**p, field_of(p): text(policy, "prompt", said, exchange)}
                    if isinstance(p, dict) and (said := part_text(p)) is not None else p
                    for p in content]}
        out.append(m)
    return out


def completion_prompts(policy: Policy, body: dict[str, Any], exchange: Exchange
                       ) -> dict[str, Any]:
    """A completions body with its ``prompt`` text (a string or a list of
    strings; token arrays as they are) masked."""
    prompt = body.get("prompt")
    if not policy.masks("prompt"):
        return body
    if isinstance(prompt, str):
        return {**body, "prompt": text(policy, "prompt", prompt, exchange)}
    if isinstance(prompt, list) and all(isinstance(p, str) for p in prompt):
        return {**body, "prompt": [text(policy, "prompt", p, exchange) for p in prompt]}
    return body


def embedding_input(policy: Policy, body: dict[str, Any], exchange: Exchange
                    ) -> dict[str, Any]:
    """An embeddings body with the text of its ``input`` (a string, or the
    strings of an array; token ids as they are) masked by the prompt's lists:
    what is indexed reaches the model server as a prompt would. Placeholders
    are never numbered, even for ``restore`` lists: an embedding has no text
    to give values back in, and a text must embed the same whatever else its
    request holds."""
    value = body.get("input")
    if not policy.masks("prompt"):
        return body

    def masked(one: str) -> str:
        done = policy.mask("prompt", one)
        exchange.count_masked("prompt", done.counts)
        return done.text

    if isinstance(value, str):
        return {**body, "input": masked(value)}
    if isinstance(value, list) and any(isinstance(v, str) for v in value):
        return {**body, "input": [masked(v) if isinstance(v, str) else v for v in value]}
    return body


def rewrites_answers(policy: Policy, exchange: Exchange) -> bool:
    """Whether answers are rewritten: masked, or given back restored values."""
    return policy.masks("response") or bool(exchange.restore)


def answer(policy: Policy, choice: Any, kind: str, exchange: Exchange) -> None:
    """Mask one choice of a whole (not streamed) completion in place, and put
    back the values its placeholders stand for."""
    if not rewrites_answers(policy, exchange) or not isinstance(choice, dict):
        return
    holder = choice.get("message") if kind == "chat" else choice
    if not isinstance(holder, dict):
        return
    for name in ANSWER_FIELDS if kind == "chat" else ("text",):
        if isinstance(holder.get(name), str):
            holder[name] = pii.replace_spans(holder[name], _answer_spans(
                policy, holder[name], exchange))


def answer_text(policy: Policy, value: str, exchange: Exchange) -> str:
    """One field of a whole answer, masked and its placeholders' values put
    back (for callers whose answers are not OpenAI dicts)."""
    if not rewrites_answers(policy, exchange):
        return value
    return pii.replace_spans(value, _answer_spans(policy, value, exchange))


def _answer_spans(policy: Policy, whole: str, exchange: Exchange
                  ) -> list[tuple[int, int, str]]:
    """What to replace in an answer: the response masking lists' finds, and
    this exchange's numbered placeholders by their values; counted."""
    found = blocklists.mask_spans(policy.blocklists, "response", whole) \
        if policy.masks("response") else []
    exchange.count_masked("response", blocklists.counts(found))
    spans = [(a, b, p) for a, b, p, _ in found]
    # Longest first: "<x>_10" is not "<x>_1" and a zero.
    for key in sorted(exchange.restore, key=len, reverse=True):
        spans += [(m.start(), m.end(), exchange.restore[key])
                  for m in _written(key).finditer(whole)
                  if not any(a < m.end() and m.start() < b for a, b, _ in spans)]
    spans.sort()
    return spans


@functools.lru_cache(maxsize=256)
def _written(key: str) -> re.Pattern[str]:
    """How a model may write the placeholder ``key`` back: as given, and for
    a bracketed one (``[EMAIL_1]``) in any case, with other brackets or none
    (``email_1``, ``<EMAIL_1>``), and in brackets with a space, a hyphen or
    nothing before its number (``[Email 1]``, ``(EMAIL-1)``); never inside a
    longer word (``EMAIL_10``)."""
    if not (key.startswith("[") and key.endswith("]")):
        return re.compile(re.escape(key))
    inner = re.escape(key[1:-1])
    forms = [rf"[\[<(]?{inner}[\]>)]?"]
    numbered = re.fullmatch(r"(.+)_(\d+)", key[1:-1])
    if numbered:
        label, number = re.escape(numbered[1]), numbered[2]
        forms.append(rf"[\[<(]{label}[ -]?{number}[\]>)]")
    return re.compile(rf"(?<![\w\[<(])(?:{'|'.join(forms)})(?![\w\]>)])", re.IGNORECASE)


#: A bracket opened at the text's end and a label after it, maybe a separator
#: and digits: a placeholder the model may still be writing ("[Email", "(EMAIL 1").
_OPEN_PLACEHOLDER = re.compile(r"[\[<(][A-Za-z][\w]{0,30}(?:[ -]\d{0,6})?$")


def open_placeholder(text: str, exchange: Exchange) -> int | None:
    """Where a placeholder of ``exchange``'s may be starting, unclosed, at the
    end of ``text`` (a stream holds it until it closes: "[Email" then " 1]"
    must go out together to be given its value); None if none."""
    if not exchange.restore:
        return None
    m = _OPEN_PLACEHOLDER.search(text[-40:])
    return None if m is None else len(text) - len(text[-40:]) + m.start()


def chunks(policy: Policy, released: Sequence[dict[str, Any]], kind: str,
           exchange: Exchange) -> None:
    """Mask a batch of streamed chunks in place, as one text per choice and
    field: a find that spans several chunks becomes its placeholder in the
    first and is removed from the others."""
    if not released or not rewrites_answers(policy, exchange):
        return
    # (choice index, field) -> the (holder, key) pieces of its text, in order
    pieces: dict[tuple[int, str], list[tuple[dict[str, Any], str]]] = {}
    for chunk in released:
        raw = chunk.get("choices")
        for choice in raw if isinstance(raw, list) else ():
            if not isinstance(choice, dict):
                continue
            index = choice.get("index", 0)
            holder = choice.get("delta") if kind == "chat" else choice
            fields = ANSWER_FIELDS if kind == "chat" else ("text",)
            if not isinstance(holder, dict):
                continue
            for name in fields:
                if isinstance(holder.get(name), str) and holder[name]:
                    pieces.setdefault((index if isinstance(index, int) else 0, name),
                                      []).append((holder, name))
    for parts in pieces.values():
        _mask_pieces(policy, parts, exchange)


def _mask_pieces(policy: Policy, parts: list[tuple[dict[str, Any], str]],
                 exchange: Exchange) -> None:
    whole = "".join(holder[key] for holder, key in parts)
    found = _answer_spans(policy, whole, exchange)
    if not found:
        return
    offset = 0
    for holder, key in parts:
        piece = holder[key]
        start, end = offset, offset + len(piece)
        offset = end
        # The finds that touch this piece, clipped to it; a find's placeholder
        # goes where the find starts.
        local = [(max(a, start) - start, min(b, end) - start, p if a >= start else "")
                 for a, b, p in found if a < end and b > start]
        if local:
            holder[key] = pii.replace_spans(piece, local)
