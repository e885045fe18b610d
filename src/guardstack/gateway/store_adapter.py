"""Wiring the gateway to :mod:`guardstack.store`: exchanges become
:class:`~guardstack.store.ExchangeEvent` objects for the single batched
writer, and API keys and account states are read from the store."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from guardstack.gateway.auth import Identity
from guardstack.gateway.recorder import Exchange
from guardstack.store import Accounts, EventWriter, ExchangeEvent, KeyStore, MessageRecord, Store
from guardstack.verdict import most_severe

#: Request fields kept in the event's ``extra`` (the messages are stored as
#: messages; the rest of a body can be large and says little).
_PARAMS = ("temperature", "top_p", "max_tokens", "max_completion_tokens", "max_output_tokens",
           "n", "seed", "stop", "stop_sequences", "top_k", "stream_options", "tools", "tool_choice",
           "response_format")


def to_event(ex: Exchange) -> ExchangeEvent:
    messages: list[MessageRecord] = []
    start = datetime.fromtimestamp(ex.started_at, UTC)
    end = datetime.fromtimestamp(ex.finished_at, UTC) if ex.finished_at else None
    for text, verdict, emb in ex.withheld_messages:  # earlier turns, so stored first
        messages.append(MessageRecord.judged("user", text, verdict, embedding=emb, ts=start))
    if ex.prompt_text is not None:
        if ex.prompt_verdicts:
            for verdict, emb in zip(ex.prompt_verdicts, ex.prompt_embeddings or
                                    [None] * len(ex.prompt_verdicts), strict=False):
                messages.append(MessageRecord.judged("user", ex.prompt_text, verdict,
                                                     embedding=emb, ts=start))
                break  # one prompt text; several verdicts only for multi-prompt completions
        else:
            messages.append(MessageRecord(role="user", content=ex.prompt_text, ts=start))
    if ex.response_text is not None:
        worst = most_severe(ex.response_verdicts)
        if worst is not None:
            messages.append(MessageRecord.judged("assistant", ex.response_text, worst,
                                                 embedding=ex.response_embedding, ts=end))
        else:
            messages.append(MessageRecord(role="assistant", content=ex.response_text, ts=end))
    request = ex.request or {}
    extra: dict[str, Any] = {
        "openai_user": ex.openai_user,
        "account_state": ex.account_state,
        "decision": ex.decision,
        "tokens_streamed": ex.tokens_streamed,
        "unsafe_tokens_released": ex.unsafe_tokens_released,
        "client_disconnected": ex.client_disconnected,
        "system_prompt_added": ex.system_prompt_added,
        "policy": ex.policy,
        # Kept apart from the prompt's verdicts: a document's injection is not the user's doing.
        "tool_output": [v.to_dict() for v in ex.tool_verdicts],
        # Where those findings pointed that the answer repeated: the injection worked.
        "tool_output_followed": list(ex.followed),
        "params": {k: request[k] for k in _PARAMS if k in request},
        # How many finds the policy's masking lists replaced (never what they were).
        "masked": ex.masked,
        # Jailbreak tactics the prompt used, whatever its verdict.
        "tactics": ex.tactics,
    }
    if ex.history_message is not None:
        # The prompt recorded is that earlier message, not the request's last one.
        extra["history_message"] = ex.history_message
    if ex.history_withheld:
        # Earlier user messages the model was not sent (prompt.judge_history: withhold).
        extra["history_withheld"] = ex.history_withheld
    prompt = most_severe(ex.prompt_verdicts)
    response = most_severe(ex.response_verdicts)
    return ExchangeEvent(
        id=ex.id, ts_start=start, ts_end=end, user=ex.user, tenant=ex.tenant,
        api_key_id=ex.key_id, conversation_id=ex.conversation_id, model=ex.model,
        endpoint=ex.endpoint, stream=ex.stream, http_status=ex.status_code,
        finish_reason=ex.finish_reason, error=ex.error, classifier_ms=ex.classifier_ms,
        upstream_ms=ex.upstream_ms, ttft_ms=ex.ttft_ms, total_ms=ex.total_ms,
        completion_tokens=ex.tokens_streamed if ex.stream else None,
        prompt_decision=prompt.decision.value if prompt else None,
        response_decision=response.decision.value if response else None,
        halted=ex.halted, extra=extra, messages=messages,
    )


class StoreRecorder:
    def __init__(self, writer: EventWriter) -> None:
        self.writer = writer

    async def start(self) -> None:
        await self.writer.start()

    async def record(self, exchange: Exchange) -> None:
        await self.writer.submit(to_event(exchange))

    @property
    def queue_depth(self) -> int:
        return self.writer.queue_depth

    async def close(self) -> None:
        await self.writer.close()


class StoreKeys:
    def __init__(self, keys: KeyStore) -> None:
        self.keys = keys

    async def lookup(self, key: str) -> Identity | None:
        info = await self.keys.alookup(key)
        if info is None or info.revoked:
            return None
        return Identity(user=info.user, tenant=info.tenant, key_id=info.id,
                        end_users=info.end_users, rate_limit=info.rate_limit,
                        rate_burst=info.rate_burst)


class StoreStates:
    def __init__(self, accounts: Accounts) -> None:
        self.accounts = accounts

    async def get_state(self, user: str) -> str | None:
        return (await self.accounts.aget_state(user)).value


def open_store(url: str | None, *, redact: bool = False, ttl: float = 5.0,
               spool: str | None = None) -> tuple[StoreRecorder, StoreKeys, StoreStates]:
    store = Store(url)
    return (StoreRecorder(EventWriter(store, redact=redact, spool_path=spool)),
            StoreKeys(KeyStore(store, cache_ttl=ttl)),
            StoreStates(Accounts(store, cache_ttl=ttl)))
