"""The streamed output check: judges a completion while it streams and halts
it on ``block``.

Upstream chunks go into a hold-back queue. Text is judged at each sentence
end and at least every ``check_every`` tokens, over the latest
``window_tokens`` tokens with the conversation as context. A chunk leaves the
queue when a check passes it, or, unchecked, when more than ``hold_back``
tokens wait: with ``hold_back >= check_every`` no unchecked token reaches the
client; with ``hold_back=0`` every token goes out at once and a halt can come
after up to ``check_every`` unsafe tokens were shown. A "token" is one
upstream chunk with text (servers stream one token per chunk).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import AsyncGenerator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from guardstack import blocklists
from guardstack.classifiers.base import Message, Subject
from guardstack.gateway import masking, output_text, tool_results
from guardstack.gateway.judge import Judge, Judgement
from guardstack.gateway.recorder import Exchange
from guardstack.policy import Policy
from guardstack.verdict import Action

#: What ``Gateway._relay`` yields: checked chunks, then how the stream ended.
Relayed = Literal["chunk", "halt", "error", "done"]
#: Writes the checked stream (``Gateway._relay``'s items) in a wire format.
Encoder = Callable[[AsyncGenerator[tuple[Relayed, dict[str, Any]], None]],
                   AsyncGenerator[bytes, None]]
Kind = Literal["chat", "completion"]
_SENTENCE_END = (".", "!", "?", "\n", "。", "！", "？")
#: Fewer tokens than this since the last check do not earn a check at a
#: sentence end ("1." in a list is not worth a classifier call).
_MIN_SENTENCE_TOKENS = 4


@dataclass(slots=True)
class _Pending:
    chunk: dict[str, Any]
    tokens: int
    checked: bool = False  # passed a check, held on (the start of a planted link)


@dataclass(slots=True)
class _Choice:
    tokens: list[str] = field(default_factory=list)
    unchecked: int = 0
    finished: bool = False
    channel: str | None = None   # reasoning, content or tool: the last one seen


def chunk_channels(choice: Any, kind: Kind) -> list[tuple[str, str]]:
    """``(channel, text)`` of one streamed choice: a chat delta's reasoning,
    content and tool arguments (:mod:`output_text`), or a completion's text."""
    if not isinstance(choice, dict):
        return []
    if kind == "chat":
        return output_text.channels(choice.get("delta"))
    text = choice.get("text")
    return [("content", text)] if isinstance(text, str) and text else []


class StreamCheck:
    def __init__(self, judge: Judge, context: Sequence[Message], exchange: Exchange, *,
                 kind: Kind = "chat", hold_back: int = 16, check_every: int = 16,
                 window_tokens: int = 256, policy: Policy | None = None,
                 prompt_clean: bool = False, rewrite: bool = True) -> None:
        self.judge = judge
        self.policy = policy  # the request's (a tenant's); None: the judge's own
        self.prompt_clean = prompt_clean  # the prompt check passed it: see Policy.decide
        # The caller sends the chunks it is given back (the gateway): the policy's
        # masking lists may rewrite them. False: a caller that relays its own copies.
        self.rewrite = rewrite
        self.context = tuple(context)
        self.exchange = exchange
        self.kind = kind
        self.hold_back = hold_back
        self.check_every = check_every
        # Narrower than the check interval, some tokens would never be judged.
        self.window_tokens = max(window_tokens, check_every)
        self.queue: deque[_Pending] = deque()
        self.choices: dict[int, _Choice] = {}
        self.halted = False
        self.released_unchecked = 0   # unchecked tokens sent since the last passing check
        self.last_chunk: dict[str, Any] = {}
        self.judgements: list[Judgement] = []
        #: the text passed its last check but ends with the start of something a
        #: block rule may yet match (a planted link, a credential): held until the next
        self.holding = False

    def _text(self, choice: dict[str, Any], state: _Choice) -> str:
        """The chunk's text over every channel, with a blank line where the
        model moves from one channel to another, so the judged window reads
        as the client shows it."""
        text, state.channel = output_text.join_streamed(chunk_channels(choice, self.kind),
                                                        state.channel)
        return text

    async def feed(self, chunk: dict[str, Any]) -> list[dict[str, Any]]:
        """Take one upstream chunk; return the chunks to send the client now."""
        self.last_chunk = chunk
        tokens = 0
        due = False
        raw_choices = chunk.get("choices")
        for raw in raw_choices if isinstance(raw_choices, list) else ():
            if not isinstance(raw, dict):
                continue
            index = raw.get("index", 0)
            state = self.choices.setdefault(index if isinstance(index, int) else 0, _Choice())
            text = self._text(raw, state)
            if text:
                state.tokens.append(text)
                state.unchecked += 1
                tokens += 1
                if state.unchecked >= self.check_every or (
                        text.rstrip(" \t\"')]*").endswith(_SENTENCE_END)
                        and state.unchecked >= _MIN_SENTENCE_TOKENS):
                    due = True
            if raw.get("finish_reason") is not None:
                state.finished = True
                # The last words must be judged before the finish reaches the client.
                due = due or state.unchecked > 0
        self.queue.append(_Pending(chunk, tokens))
        if due:
            return await self._check()
        return self._release_over_hold_back()

    async def finish(self) -> list[dict[str, Any]]:
        """The upstream ended: judge what is left, release it or halt."""
        if any(c.unchecked for c in self.choices.values()):
            return await self._check(final=True)
        return self._drain()

    def _release_over_hold_back(self) -> list[dict[str, Any]]:
        if self.holding:
            return []  # until the next check says whether the match completes
        out = []
        # Chunks a check passed and held on (the last word, for masking) do not
        # count against hold_back: it bounds the unchecked text released.
        while self.queue and sum(p.tokens for p in self.queue
                                 if not p.checked) > self.hold_back:
            p = self.queue.popleft()
            self.released_unchecked += 0 if p.checked else p.tokens
            out.append(p.chunk)
        return self._masked(out)

    def _drain(self, final: bool = True) -> list[dict[str, Any]]:
        """Release the queue. Before the stream's end (not ``final``), a
        policy that masks answers keeps back the word the text ends with, so
        a half-written e-mail address or key goes out whole, and masked."""
        keep = 0 if final or not self.masking else self._last_word()
        out = [self.queue.popleft().chunk for _ in range(len(self.queue) - keep)]
        for p in self.queue:
            p.checked = True
        return self._masked(out)

    def _last_word(self) -> int:
        """How many chunks at the end of the queue hold the word the text
        ends with (all of them when none has white space), or a placeholder
        still open with a space in it ("[Email 1" of "[Email 1]")."""
        texts = ["".join(t for raw in pending.chunk.get("choices") or ()
                         for _, t in chunk_channels(raw, self.kind))
                 for pending in self.queue]
        word = len(texts)
        for back, text in enumerate(reversed(texts)):
            if text and text[-1].isspace():
                word = back
                break
            if any(c.isspace() for c in text):
                word = back + 1
                break
        tail = "".join(texts[-8:])
        start = masking.open_placeholder(tail, self.exchange)
        if start is None:
            return word
        # the chunks from the one the bracket is in to the end
        held, length = 0, len(tail)
        for text in reversed(texts[-8:]):
            held += 1
            length -= len(text)
            if length <= start:
                break
        return max(word, held)

    @property
    def masking(self) -> bool:
        """Whether the released chunks are masked (:mod:`masking`)."""
        return self.rewrite and masking.rewrites_answers(self.active_policy, self.exchange)

    def _masked(self, released: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Chunks on their way to the client, with the policy's masking lists applied."""
        if self.masking:
            masking.chunks(self.active_policy, released, self.kind, self.exchange)
        return released

    async def _check(self, final: bool = False) -> list[dict[str, Any]]:
        indexes = [i for i, c in self.choices.items() if c.unchecked]
        subjects = [Subject("".join(self.choices[i].tokens[-self.window_tokens:]),
                            role="response", context=self.context) for i in indexes]
        start = time.perf_counter()
        judgements = await self.judge.judge(subjects, self.policy,
                                            prompt_clean=self.prompt_clean)
        self.exchange.classifier_ms += (time.perf_counter() - start) * 1000
        judgements = judgements + self._followed(indexes)
        self.judgements.extend(judgements)
        if any(j.verdict.decision is Action.BLOCK for j in judgements):
            self.halted = True
            self.exchange.halted = True
            self.exchange.unsafe_tokens_released = self.released_unchecked
            self.queue.clear()  # held-back text never reaches the client
            return []
        for i in indexes:
            self.choices[i].unchecked = 0
        self.released_unchecked = 0
        # Under monitor mode nothing would be halted or masked: nothing to hold for.
        self.holding = not final and self.active_policy.mode != "monitor" and (
            self._starting_target(indexes) or self._starting_listed(indexes))
        if self.holding:
            # The text passed, but it ends with the start of a planted link or of a
            # credential: hold it until the next check says whether the rest follows.
            for p in self.queue:
                p.checked = True
            return []
        return self._drain(final)

    @property
    def active_policy(self) -> Policy:
        """The request's policy (a tenant's), else the judge's own."""
        return self.policy or self.judge.policy

    @property
    def followed(self) -> Action:
        """The policy's ``tool_output.followed``: what repeating ``exchange.planted`` gets."""
        return self.active_policy.tool_output_followed

    def _starting_target(self, indexes: list[int]) -> bool:
        """Whether a choice's text ends with the first four or more characters
        of a planted target it would be blocked for repeating."""
        if self.followed is not Action.BLOCK or not self.exchange.planted:
            return False
        for i in indexes:
            tail = "".join(self.choices[i].tokens[-8:]).lower()
            if any(tail.endswith(t[:k]) for t in self.exchange.planted
                   for k in range(4, len(t))):
                return True
        return False

    def _starting_listed(self, indexes: list[int]) -> bool:
        """Whether a choice's text ends with what may become a match of a
        blocklist that blocks or masks answers (a credential's prefix and
        first characters, an address or number half written): releasing it
        would show part of it before the check that halts on, or masks, the
        whole."""
        lists = self.active_policy.blocklists
        if not lists:
            return False
        masked = self.masking
        return any(blocklists.may_complete(lists, "response",
                                           "".join(self.choices[i].tokens[-128:]),
                                           masking=masked)
                   for i in indexes)

    def _followed(self, indexes: list[int]) -> list[Judgement]:
        """A verdict for each choice that now repeats a target of the planted
        instructions its tool results carried (once per new target)."""
        out: list[Judgement] = []
        if self.followed is Action.ALLOW or not self.exchange.planted:
            return out
        for i in indexes:
            hits = tool_results.repeated("".join(self.choices[i].tokens), self.exchange.planted)
            if set(hits) - set(self.exchange.followed):
                verdict = tool_results.followed(hits, self.followed)
                if verdict is not None:
                    verdict = self.active_policy.monitored(verdict)
                    self.exchange.followed = sorted({*self.exchange.followed, *hits})
                    out.append(Judgement(verdict))
                    if self.judge.metrics is not None:
                        self.judge.metrics.observe_verdict(verdict)
        return out

    def halt_chunk(self) -> dict[str, Any]:
        """The chunk that ends a halted stream, shaped like the upstream's own."""
        base = self.last_chunk
        indexes = sorted(self.choices) or [0]
        choices: list[dict[str, Any]]
        if self.kind == "chat":
            choices = [{"index": i, "delta": {}, "logprobs": None,
                        "finish_reason": "content_filter"} for i in indexes]
            obj = "chat.completion.chunk"
        else:
            choices = [{"index": i, "text": "", "logprobs": None,
                        "finish_reason": "content_filter"} for i in indexes]
            obj = "text_completion"
        return {"id": base.get("id", f"guardstack-{self.exchange.id}"), "object": obj,
                "created": base.get("created", int(time.time())),
                "model": base.get("model", self.exchange.model or ""), "choices": choices}

    def response_text(self) -> str:
        if not self.choices:
            return ""
        if len(self.choices) == 1:
            return "".join(next(iter(self.choices.values())).tokens)
        return "\n\n".join(f"[choice {i}]\n" + "".join(c.tokens)
                           for i, c in sorted(self.choices.items()))
