import json
from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pytest
from tests.store.factory import make_event

from guardstack.store import ExchangeEvent, MessageRecord, decode_embedding, encode_embedding
from guardstack.verdict import Action, Status, Verdict


def test_event_round_trips_through_json():
    event = make_event(3, halted=True, extra={"upstream": "llama"})
    back = ExchangeEvent.from_dict(json.loads(json.dumps(event.to_dict())))
    assert back == event


def test_embedding_is_packed_little_endian_float32_and_float16():
    vec = [0.5, -1.25, 3.0]
    assert encode_embedding(vec) == np.array(vec, dtype="<f4").tobytes()
    assert len(encode_embedding(vec, "f16")) == 6
    assert decode_embedding(encode_embedding(vec, "f16"), "f16").tolist() == vec
    msg = MessageRecord(role="user", content="hi", embedding=np.array(vec), embedding_dtype="f16")
    assert isinstance(msg.embedding, bytes)
    assert msg.embedding_vector().tolist() == vec


def test_bad_embedding_is_rejected_at_construction():
    with pytest.raises(ValueError, match="NaN"):
        MessageRecord(role="user", content="x", embedding=[float("nan")])
    with pytest.raises(ValueError, match="dtype"):
        MessageRecord(role="user", content="x", embedding=[1.0], embedding_dtype="f64")
    with pytest.raises(ValueError, match="whole number"):
        MessageRecord(role="user", content="x", embedding=b"\x00\x00\x00")


def test_timestamps_become_utc():
    local = datetime(2026, 1, 1, 14, 0, tzinfo=timezone(timedelta(hours=2)))
    event = ExchangeEvent(ts_start=local, ts_end=datetime(2026, 1, 1, 12, 0, 1))
    assert event.ts_start == datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    assert event.ts_start.tzinfo is UTC
    assert event.ts_end is not None and event.ts_end.tzinfo is UTC


def test_judged_message_carries_the_verdict():
    verdict = Verdict(
        decision=Action.FLAG,
        role="prompt",
        scores={"harm": 0.7},
        categories=("weapons",),
        detector="fast",
        status=Status.OK,
        latency_ms=3.5,
    )
    msg = MessageRecord.judged("user", "text", verdict, embedding=[1.0, 0.0])
    assert (msg.decision, msg.status, msg.detector) == ("flag", "ok", "fast")
    assert msg.categories == ["weapons"] and msg.scores == {"harm": 0.7}


def test_invalid_fields_are_clear_errors():
    with pytest.raises(ValueError, match="id"):
        ExchangeEvent(id="x" * 65)
    with pytest.raises(ValueError, match="total_ms"):
        ExchangeEvent(total_ms=float("inf"))
    with pytest.raises(ValueError, match="newer"):
        ExchangeEvent.from_dict({"v": 99, "id": "a", "ts_start": "2026-01-01T00:00:00+00:00"})
