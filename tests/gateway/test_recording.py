"""Every exchange reaches the real event store (SQLite and PostgreSQL),
blocked, streamed, halted or abandoned by its client, with verdicts and
embeddings."""

from __future__ import annotations

import httpx
import openai
import pytest
import sqlalchemy as sa
from tests.fixtures.llama_server import MODEL_ALIAS
from tests.gateway.serving import serve_app
from tests.gateway.standins import marker_guard

from guardstack.gateway.app import create_app
from guardstack.gateway.settings import GatewaySettings
from guardstack.gateway.store_adapter import StoreRecorder
from guardstack.store import EventWriter, Store
from guardstack.store.schema import exchanges, messages

STORY = [{"role": "user", "content": "Write a story about a cat."}]


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path):
    if request.param == "postgresql":
        return request.getfixturevalue("pg_url")
    return f"sqlite:///{tmp_path / 'events.db'}"


def test_every_exchange_is_stored(llama_server, tmp_path, store_url):
    url = store_url
    writer = EventWriter(url, spool_path=tmp_path / "spool.jsonl")
    app = create_app(GatewaySettings(upstream=llama_server, open=True, rate_limit=0,
                                     hold_back=4, check_every=4),
                     guard=marker_guard("BLOCKME"), recorder=StoreRecorder(writer))
    with (serve_app(app) as gw,
          openai.OpenAI(base_url=gw + "/v1", api_key="k", max_retries=0) as c):
        c.chat.completions.create(model=MODEL_ALIAS, messages=STORY, max_tokens=16,
                                  user="u1", extra_headers={"x-conversation-id": "conv-1"})
        for _ in c.chat.completions.create(model=MODEL_ALIAS, messages=STORY, max_tokens=16,
                                           stream=True):
            pass
        r = httpx.post(gw + "/v1/chat/completions", json={
            "model": MODEL_ALIAS, "messages": [{"role": "user", "content": "BLOCKME"}]})
        assert r.status_code == 400
        with httpx.stream("POST", gw + "/v1/chat/completions", json={
                "model": MODEL_ALIAS, "messages": STORY, "stream": True, "max_tokens": 400},
                timeout=30) as s:
            next(s.iter_lines())  # then hang up
        httpx.post(gw + "/v1/chat/completions", content=b"{bad json")
    # Leaving serve_app ran the app's shutdown, which closed (flushed) the writer.
    store = Store(url)
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(exchanges).order_by(exchanges.c.ts_start)).mappings().all()
        msgs = conn.execute(sa.select(messages)).mappings().all()
    store.dispose()
    assert len(rows) == 5
    first = rows[0]
    assert (first["user_id"], first["conversation_id"], first["http_status"]) == \
        ("u1", "conv-1", 200)
    assert first["prompt_decision"] == "allow" and first["model"] == MODEL_ALIAS
    assert rows[1]["stream"] and rows[1]["ttft_ms"] > 0
    assert rows[2]["http_status"] == 400 and rows[2]["prompt_decision"] == "block"
    assert rows[3]["extra"]["client_disconnected"] is True
    assert rows[4]["http_status"] == 400 and "JSON" in rows[4]["error"]
    by_exchange = {m["exchange_id"] for m in msgs}
    assert {rows[i]["id"] for i in range(4)} <= by_exchange
    judged = [m for m in msgs if m["role"] == "user" and m["exchange_id"] == first["id"]]
    assert judged[0]["embedding"] is not None and judged[0]["decision"] == "allow"
    assistant = [m for m in msgs if m["role"] == "assistant" and m["exchange_id"] == first["id"]]
    assert assistant[0]["content"]
