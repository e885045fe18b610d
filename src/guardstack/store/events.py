"""What the gateway hands the store: one :class:`ExchangeEvent` per request.

An event is plain data, JSON-serialisable (:meth:`ExchangeEvent.to_dict`)
so it can wait in the spool file while the database is down. Build it on
the request path (cheap), submit it to the :class:`~guardstack.store.EventWriter`,
and forget it.
"""

from __future__ import annotations

import base64
import math
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from guardstack.blocklists import BLOCKLIST_PREFIX
from guardstack.topics import TOPIC_PREFIX
from guardstack.verdict import Verdict

#: Spool/JSON format version, bumped when a field changes meaning.
FORMAT_VERSION = 1
#: Stored embedding encodings: little-endian float32 or float16.
EMBEDDING_DTYPES: dict[str, np.dtype[np.floating]] = {
    "f32": np.dtype("<f4"),
    "f16": np.dtype("<f2"),
}
#: Stored among a message's categories when monitor mode flagged what would have been a block.
WOULD_BLOCK = "monitor:would_block"
#: Width of the role/decision/status columns.
SHORT_FIELD_LEN = 16
MAX_ID_LEN = 64


def utcnow() -> datetime:
    return datetime.now(UTC)


def _utc(value: datetime | str | None) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def encode_embedding(vector: Sequence[float] | np.ndarray, dtype: str = "f32") -> bytes:
    """Pack a vector as little-endian float32 (``f32``) or float16 (``f16``)."""
    if dtype not in EMBEDDING_DTYPES:
        raise ValueError(
            f"embedding dtype must be one of {sorted(EMBEDDING_DTYPES)}, not {dtype!r}"
        )
    arr = np.asarray(vector, dtype=np.float64).ravel()
    if not np.all(np.isfinite(arr)):
        raise ValueError("embedding contains NaN or infinity")
    return arr.astype(EMBEDDING_DTYPES[dtype]).tobytes()


def decode_embedding(blob: bytes, dtype: str = "f32") -> np.ndarray:
    """The stored bytes back as a float32 numpy vector."""
    if dtype not in EMBEDDING_DTYPES:
        raise ValueError(
            f"embedding dtype must be one of {sorted(EMBEDDING_DTYPES)}, not {dtype!r}"
        )
    return np.frombuffer(blob, dtype=EMBEDDING_DTYPES[dtype]).astype(np.float32)


@dataclass(slots=True)
class MessageRecord:
    """One message of an exchange: a request message or the (assembled) response.

    ``decision``/``scores``/``categories``/``detector``/``status`` are the
    guard's verdict on it (None when it was not judged). ``embedding`` may be
    given as a float sequence / numpy array; it is stored packed as bytes.
    """

    role: str
    content: str
    ts: datetime | None = None
    decision: str | None = None
    scores: dict[str, float] = field(default_factory=dict)
    categories: list[str] = field(default_factory=list)
    detector: str | None = None
    status: str | None = None
    latency_ms: float | None = None
    embedding: bytes | Sequence[float] | np.ndarray | None = field(default=None, repr=False)
    embedding_dtype: str = "f32"

    def __post_init__(self) -> None:
        if not isinstance(self.content, str):
            raise TypeError(f"message content must be str, not {type(self.content).__name__}")
        self.ts = _utc(self.ts)
        for name in ("role", "decision", "status"):
            value = getattr(self, name)
            if value is not None and len(str(value)) > SHORT_FIELD_LEN:
                raise ValueError(f"message {name} is longer than {SHORT_FIELD_LEN} characters")
        if self.decision is not None:
            self.decision = str(self.decision)
        if self.status is not None:
            self.status = str(self.status)
        self.scores = {str(k): float(v) for k, v in dict(self.scores).items()}
        self.categories = [str(c) for c in self.categories]
        if self.embedding_dtype not in EMBEDDING_DTYPES:
            raise ValueError(
                f"embedding_dtype must be one of {sorted(EMBEDDING_DTYPES)}, "
                f"not {self.embedding_dtype!r}"
            )
        if self.embedding is not None and not isinstance(self.embedding, bytes):
            self.embedding = encode_embedding(self.embedding, self.embedding_dtype)
        if isinstance(self.embedding, bytes):
            size = EMBEDDING_DTYPES[self.embedding_dtype].itemsize
            if len(self.embedding) % size:
                raise ValueError(
                    f"embedding is {len(self.embedding)} bytes, not a whole number "
                    f"of {self.embedding_dtype} values"
                )

    @classmethod
    def judged(
        cls,
        role: str,
        content: str,
        verdict: Verdict,
        *,
        embedding: bytes | Sequence[float] | np.ndarray | None = None,
        embedding_dtype: str = "f32",
        ts: datetime | None = None,
    ) -> MessageRecord:
        """A message together with the guard's :class:`Verdict` on it. The
        policy's blocklists that matched are kept among the categories as
        ``blocklist:<id>``, its denied topics as ``topic:<id>`` (the dashboard
        counts them; the training export leaves such prompts out), and a flag
        the policy's monitor mode made of a block as ``monitor:would_block``."""
        return cls(
            role=role,
            content=content,
            ts=ts,
            decision=verdict.decision.value,
            scores=dict(verdict.scores),
            categories=[*verdict.categories,
                        *(f"{BLOCKLIST_PREFIX}{b}" for b in verdict.blocklists),
                        *(f"{TOPIC_PREFIX}{t}" for t in verdict.topics),
                        *((WOULD_BLOCK,) if verdict.monitored else ())],
            detector=verdict.detector or None,
            status=verdict.status.value,
            latency_ms=verdict.latency_ms,
            embedding=embedding,
            embedding_dtype=embedding_dtype,
        )

    @property
    def embedding_bytes(self) -> bytes | None:
        # __post_init__ packed it; this narrows the type for readers.
        return self.embedding if isinstance(self.embedding, bytes) else None

    def embedding_vector(self) -> np.ndarray | None:
        blob = self.embedding_bytes
        return None if blob is None else decode_embedding(blob, self.embedding_dtype)

    def to_dict(self) -> dict[str, Any]:
        blob = self.embedding_bytes
        return {
            "role": self.role,
            "content": self.content,
            "ts": self.ts.isoformat() if self.ts else None,
            "decision": self.decision,
            "scores": self.scores,
            "categories": self.categories,
            "detector": self.detector,
            "status": self.status,
            "latency_ms": self.latency_ms,
            "embedding": base64.b64encode(blob).decode("ascii") if blob is not None else None,
            "embedding_dtype": self.embedding_dtype,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MessageRecord:
        emb = data.get("embedding")
        return cls(
            role=data["role"],
            content=data["content"],
            ts=_utc(data.get("ts")),
            decision=data.get("decision"),
            scores=dict(data.get("scores") or {}),
            categories=list(data.get("categories") or []),
            detector=data.get("detector"),
            status=data.get("status"),
            latency_ms=data.get("latency_ms"),
            embedding=base64.b64decode(emb) if emb is not None else None,
            embedding_dtype=data.get("embedding_dtype") or "f32",
        )


def _opt_float(value: float | None, name: str) -> float | None:
    if value is None:
        return None
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, not {value}")
    return value


@dataclass(slots=True)
class ExchangeEvent:
    """One gateway request/response exchange, as recorded in ``exchanges``.

    ``id`` defaults to a fresh uuid4; use the gateway's request id so logs
    and the store agree. Record in ``messages`` the messages this exchange
    judged or produced (typically the new user message and the response),
    not the whole replayed history of a chat: the conversation is
    reconstructed from ``conversation_id`` and timestamps.
    """

    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    ts_start: datetime = field(default_factory=utcnow)
    ts_end: datetime | None = None
    user: str | None = None
    tenant: str | None = None
    api_key_id: str | None = None
    conversation_id: str | None = None
    model: str | None = None
    endpoint: str | None = None
    stream: bool = False
    http_status: int | None = None
    finish_reason: str | None = None
    error: str | None = None
    classifier_ms: float | None = None
    upstream_ms: float | None = None
    ttft_ms: float | None = None
    total_ms: float | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    prompt_decision: str | None = None
    response_decision: str | None = None
    halted: bool = False
    redacted: bool = False
    extra: dict[str, Any] = field(default_factory=dict)
    messages: list[MessageRecord] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.id = str(self.id)
        if not self.id or len(self.id) > MAX_ID_LEN:
            raise ValueError(f"event id must be 1-{MAX_ID_LEN} characters, got {len(self.id)}")
        start = _utc(self.ts_start)
        if start is None:
            raise ValueError("ts_start is required")
        self.ts_start = start
        self.ts_end = _utc(self.ts_end)
        for name in ("prompt_decision", "response_decision"):
            value = getattr(self, name)
            if value is not None:
                if len(str(value)) > SHORT_FIELD_LEN:
                    raise ValueError(f"{name} is longer than {SHORT_FIELD_LEN} characters")
                setattr(self, name, str(value))
        for name in ("classifier_ms", "upstream_ms", "ttft_ms", "total_ms"):
            setattr(self, name, _opt_float(getattr(self, name), name))
        self.stream = bool(self.stream)
        self.halted = bool(self.halted)
        self.messages = [
            m if isinstance(m, MessageRecord) else MessageRecord.from_dict(m) for m in self.messages
        ]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (the spool's line format)."""
        return {
            "v": FORMAT_VERSION,
            "id": self.id,
            "ts_start": self.ts_start.isoformat(),
            "ts_end": self.ts_end.isoformat() if self.ts_end else None,
            "user": self.user,
            "tenant": self.tenant,
            "api_key_id": self.api_key_id,
            "conversation_id": self.conversation_id,
            "model": self.model,
            "endpoint": self.endpoint,
            "stream": self.stream,
            "http_status": self.http_status,
            "finish_reason": self.finish_reason,
            "error": self.error,
            "classifier_ms": self.classifier_ms,
            "upstream_ms": self.upstream_ms,
            "ttft_ms": self.ttft_ms,
            "total_ms": self.total_ms,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "prompt_decision": self.prompt_decision,
            "response_decision": self.response_decision,
            "halted": self.halted,
            "redacted": self.redacted,
            "extra": self.extra,
            "messages": [m.to_dict() for m in self.messages],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ExchangeEvent:
        version = data.get("v", FORMAT_VERSION)
        if version > FORMAT_VERSION:
            raise ValueError(f"event format v{version} is newer than this guardstack (v1)")
        return cls(
            id=data["id"],
            ts_start=_utc(data["ts_start"]) or utcnow(),
            ts_end=_utc(data.get("ts_end")),
            user=data.get("user"),
            tenant=data.get("tenant"),
            api_key_id=data.get("api_key_id"),
            conversation_id=data.get("conversation_id"),
            model=data.get("model"),
            endpoint=data.get("endpoint"),
            stream=bool(data.get("stream", False)),
            http_status=data.get("http_status"),
            finish_reason=data.get("finish_reason"),
            error=data.get("error"),
            classifier_ms=data.get("classifier_ms"),
            upstream_ms=data.get("upstream_ms"),
            ttft_ms=data.get("ttft_ms"),
            total_ms=data.get("total_ms"),
            prompt_tokens=data.get("prompt_tokens"),
            completion_tokens=data.get("completion_tokens"),
            prompt_decision=data.get("prompt_decision"),
            response_decision=data.get("response_decision"),
            halted=bool(data.get("halted", False)),
            redacted=bool(data.get("redacted", False)),
            extra=dict(data.get("extra") or {}),
            messages=[MessageRecord.from_dict(m) for m in data.get("messages", [])],
        )
