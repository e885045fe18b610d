"""What the gateway records about each exchange, and the small seam through
which it hands records to the event store.

The gateway never writes to a database itself: :class:`Recorder.record`
hands an :class:`Exchange` to the store's single batched writer (or to
memory in tests). ``record`` is awaited under a shield so a client that
disconnects mid-stream cannot cancel the record of its own exchange.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from guardstack.verdict import Action, Status, Verdict, most_severe


@dataclass(slots=True)
class Exchange:
    endpoint: str
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    started_at: float = field(default_factory=time.time)
    finished_at: float | None = None
    model: str | None = None
    stream: bool = False
    user: str | None = None            # from the API key (or the OpenAI user field when --open)
    tenant: str | None = None
    key_id: str | None = None
    openai_user: str | None = None     # the end user the request names (user field or header)
    conversation_id: str | None = None
    account_state: str | None = None
    request: dict[str, Any] | None = None   # the body as received
    prompt_text: str | None = None          # the text the input check judged
    #: which earlier user message (index in the conversation) blocked the request
    history_message: int | None = None
    #: an earlier user message was flagged or blocked (prompt.judge_history)
    history_flagged: bool = False
    #: earlier user messages kept from the model (prompt.judge_history: withhold)
    history_withheld: list[int] = field(default_factory=list)
    #: of those, the ones this gateway judged for the first time: (text, verdict,
    #: embedding), stored as the user's messages so layer 3 reads what they asked
    withheld_messages: list[tuple[str, Verdict, Sequence[float] | None]] = field(
        default_factory=list)
    prompt_verdicts: list[Verdict] = field(default_factory=list)
    prompt_embeddings: list[Sequence[float] | None] = field(default_factory=list)
    response_text: str | None = None        # the assembled completion (or stream)
    response_verdicts: list[Verdict] = field(default_factory=list)
    response_embedding: Sequence[float] | None = None
    tool_verdicts: list[Verdict] = field(default_factory=list)  # injection check of tool results
    #: where the findings' planted words point, less what the user named
    planted: frozenset[str] = frozenset()
    #: planted targets the answer repeated (tool_output.followed)
    followed: list[str] = field(default_factory=list)
    decision: str = "allow"             # the most severe decision taken on this exchange
    status_code: int | None = None
    finish_reason: str | None = None
    error: str | None = None            # what went wrong, if anything (never sent as a traceback)
    halted: bool = False                # the output check ended the stream
    tokens_streamed: int = 0            # tokens (chunks with content) that reached the client
    unsafe_tokens_released: int = 0     # of a halted stream: released before the halting check
    client_disconnected: bool = False
    system_prompt_added: bool = False
    policy: str | None = None           # a tenant's policy file, when one decided (else --policy)
    #: finds the policy's masking blocklists replaced: role -> list id -> count
    masked: dict[str, dict[str, int]] = field(default_factory=dict)
    #: jailbreak tactics the judged prompt used (:data:`guardstack.framing.ADVERSARIAL`)
    tactics: list[str] = field(default_factory=list)
    #: numbered placeholders of ``restore`` lists -> the values they stand for
    #: (kept in memory for the answer, never recorded)
    restore: dict[str, str] = field(default_factory=dict)
    classifier_ms: float = 0.0
    #: the exchange's OpenTelemetry span while it runs (``--otlp-traces-endpoint``)
    trace: Any = None
    upstream_ms: float | None = None    # to upstream response headers
    ttft_ms: float | None = None        # gateway start to first content byte sent to the client
    total_ms: float | None = None

    @property
    def prompt_clean(self) -> bool:
        """The prompt check ran and found nothing: every prompt verdict allows
        with status ok, no earlier user message was flagged (prompt.judge_history),
        no tool result read as an injection, and layer 3 has
        not warned or limited the account. The response check then asks more
        of an answer before it halts it (``response.clean_prompt_threshold``)."""
        return (bool(self.prompt_verdicts) and not self.history_flagged
                and all(v.decision is Action.ALLOW and v.status is Status.OK
                        for v in self.prompt_verdicts)
                and all(v.decision is Action.ALLOW for v in self.tool_verdicts)
                and self.account_state in (None, "ok", "none"))

    def count_masked(self, role: str, counts: dict[str, int]) -> None:
        for list_id, n in counts.items():
            by_list = self.masked.setdefault(role, {})
            by_list[list_id] = by_list.get(list_id, 0) + n

    def numbered(self, placeholder: str, value: str) -> str:
        """The numbered form of ``placeholder`` for ``value`` in this exchange
        (``[EMAIL]`` -> ``[EMAIL_1]``; the same value, the same number)."""
        for key, known in self.restore.items():
            if known == value and _base(key) == placeholder:
                return key
        n = 1 + sum(1 for key in self.restore if _base(key) == placeholder)
        key = f"{placeholder[:-1]}_{n}]" if placeholder.endswith("]") else f"{placeholder}_{n}"
        self.restore[key] = value
        return key

    def finish(self) -> None:
        self.finished_at = time.time()
        self.total_ms = (self.finished_at - self.started_at) * 1000
        worst = most_severe([*self.prompt_verdicts, *self.response_verdicts,
                             *self.tool_verdicts])
        if worst is not None and worst.decision.severity > Action(self.decision).severity:
            self.decision = worst.decision.value


class Recorder(Protocol):
    async def start(self) -> None: ...

    async def record(self, exchange: Exchange) -> None: ...

    @property
    def queue_depth(self) -> int: ...

    async def close(self) -> None: ...


class MemoryRecorder:
    """Keeps exchanges in a list: for tests and for running without a store."""

    def __init__(self) -> None:
        self.exchanges: list[Exchange] = []

    async def start(self) -> None:
        return None

    async def record(self, exchange: Exchange) -> None:
        self.exchanges.append(exchange)

    @property
    def queue_depth(self) -> int:
        return 0

    async def close(self) -> None:
        return None


def _base(numbered: str) -> str:
    """``[EMAIL_2]`` -> ``[EMAIL]`` (the inverse of :meth:`Exchange.numbered`)."""
    if numbered.endswith("]"):
        return numbered[:numbered.rindex("_")] + "]"
    return numbered[:numbered.rindex("_")]
