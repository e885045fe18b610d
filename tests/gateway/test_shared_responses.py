"""``serve --shared-responses``: a Responses API answer one gateway replica
made is continued with ``previous_response_id`` on another, as behind a load
balancer. Replicas are real gateways on one real store (SQLite, PostgreSQL),
driven by the official ``openai`` client; the upstreams are a scripted
stream and a small real model server that records what reached it."""

from __future__ import annotations

import asyncio
import contextlib
import time

import openai
import pytest
import sqlalchemy as sa
from tests.gateway.scripted import chat_chunk, sse_reply, upstream
from tests.gateway.serving import serve_app
from tests.gateway.standins import MarkerDetector, listing_upstream, policy_yaml

from guardstack.gateway.auth import Identity, StaticKeys
from guardstack.gateway.outage import Pruning
from guardstack.gateway.stored_responses import SharedStoredResponses, Stored
from guardstack.guard import Guard
from guardstack.store import Store
from guardstack.store.schema import stored_responses
from guardstack.store.stored_responses import SharedResponses

KEYS = StaticKeys({"gs-ada": Identity("ada"), "gs-bob": Identity("bob")})
STREAMED = sse_reply(chat_chunk({"role": "assistant", "content": "Nice to meet"})
                     + chat_chunk({"content": " you, Ada."}) + chat_chunk({}, "stop")
                     + b"data: [DONE]\n\n")


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'gs.db'}"
    else:
        url = request.getfixturevalue("pg_url")
    with Store(url) as store:
        store.migrate()
    return url


@pytest.fixture
def replicas(run_gateway, db_url):
    """``replica(upstream_url, shared=True, **settings)`` → (gateway, its
    detector), each with a store handle of its own, as a replica has."""
    stores: list[Store] = []

    def replica(upstream_url: str, *, shared: bool = True, ttl: float = 3600.0, **settings):
        detector = MarkerDetector("MARKER-NEVER-SEEN")
        answers = None
        if shared:
            stores.append(Store(db_url))
            answers = SharedResponses(stores[-1], ttl)
        gw = run_gateway(upstream_url, guard=Guard(policy_yaml(), detector=detector),
                         keys=KEYS, open=False, shared_responses=answers,
                         stored_responses_ttl=ttl, **settings)
        return gw, detector

    yield replica
    for store in stores:
        store.dispose()


@pytest.fixture
def recording_upstream():
    requests: list[dict] = []
    with serve_app(listing_upstream(requests)) as url:
        yield url + "/v1", requests


def as_user(gw, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.url + "/v1", api_key=key, max_retries=0)


def test_a_response_made_on_one_replica_is_continued_on_another(
        replicas, scripted, recording_upstream):
    b_url, forwarded = recording_upstream
    a, _ = replicas(upstream(scripted, STREAMED).url)
    b, b_detector = replicas(b_url)
    with as_user(a, "gs-ada") as ada_a, as_user(b, "gs-ada") as ada_b:
        events = list(ada_a.responses.create(model="m", input="My name is Ada.", stream=True))
        first = events[-1].response  # streamed: written before this last event arrived
        assert first.status == "completed" and first.output_text == "Nice to meet you, Ada."
        second = ada_b.responses.create(model="m", input="What is my name?",
                                        previous_response_id=first.id)
        # the other replica sent the whole conversation upstream, and judged it
        assert [(m["role"], m["content"]) for m in forwarded[-1]["messages"]] == [
            ("user", "My name is Ada."), ("assistant", "Nice to meet you, Ada."),
            ("user", "What is my name?")]
        [prompt] = [c for c in b_detector.calls if c.role == "prompt"]
        assert [m.content for m in prompt.context] == ["My name is Ada.",
                                                       "Nice to meet you, Ada."]
        # and back: the first replica continues the second's answer
        third = list(ada_a.responses.create(model="m", input="Thanks.", stream=True,
                                            previous_response_id=second.id))[-1].response
        assert third.status == "completed" and third.id not in (first.id, second.id)
    # the chain is one conversation in each replica's record
    chain = [*a.wait_for_exchanges(2), *b.wait_for_exchanges(1)]
    assert {ex.conversation_id for ex in chain} == {first.id}
    with as_user(b, "gs-bob") as bob, pytest.raises(openai.NotFoundError) as err:
        bob.responses.create(model="m", input="Go on.", previous_response_id=first.id)
    assert err.value.code == "previous_response_not_found"  # another user's: not found


def test_without_sharing_another_replica_does_not_know_the_response(
        replicas, recording_upstream):
    url, _ = recording_upstream
    a, _ = replicas(url, shared=False)
    b, _ = replicas(url, shared=False)
    shared, _ = replicas(url)
    with as_user(a, "gs-ada") as ada_a, as_user(b, "gs-ada") as ada_b, \
            as_user(shared, "gs-ada") as ada_shared:
        first = ada_a.responses.create(model="m", input="Hello.")
        assert ada_a.responses.create(model="m", input="Again.", previous_response_id=first.id)
        for other in (ada_b, ada_shared):  # made where nothing was shared
            with pytest.raises(openai.NotFoundError):
                other.responses.create(model="m", input="Again.", previous_response_id=first.id)
        unstored = ada_shared.responses.create(model="m", input="Forget me.", store=False)
        with pytest.raises(openai.NotFoundError):
            ada_a.responses.create(model="m", input="Go on.", previous_response_id=unstored.id)


def test_a_response_past_its_time_to_live_is_forgotten_everywhere(replicas, recording_upstream):
    url, _ = recording_upstream
    a, _ = replicas(url, ttl=1.0)
    b, _ = replicas(url, ttl=1.0)
    with as_user(a, "gs-ada") as ada_a, as_user(b, "gs-ada") as ada_b:
        first = ada_a.responses.create(model="m", input="Hello.")
        kept = ada_b.responses.create(model="m", input="Again.", previous_response_id=first.id)
        time.sleep(1.2)
        for client, rid in ((ada_a, first.id), (ada_b, first.id), (ada_b, kept.id)):
            with pytest.raises(openai.NotFoundError):
                client.responses.create(model="m", input="Go on.", previous_response_id=rid)


async def test_while_the_store_is_down_each_process_continues_its_own(
        pg_private_server, caplog):
    url = pg_private_server.create_database()
    stores = [Store(url), Store(url)]
    stores[0].migrate()
    mine = SharedStoredResponses(10, SharedResponses(stores[0], ttl=3600))
    theirs = SharedStoredResponses(10, SharedResponses(stores[1], ttl=3600))
    turn = [{"role": "user", "content": "Hello."}, {"role": "assistant", "content": "Hi."}]
    await mine.remember("resp_1", Stored("ada", turn, "resp_1"))
    assert await theirs.recall("resp_1", "ada") == Stored("ada", turn, "resp_1")
    try:
        await asyncio.to_thread(pg_private_server.stop)  # the real server goes away
        with caplog.at_level("WARNING", logger="guardstack.gateway"):
            await mine.remember("resp_2", Stored("ada", turn, "resp_2"))  # no error
            assert await mine.recall("resp_2", "ada") is not None      # its own memory
            assert await theirs.recall("resp_2", "ada") is None         # never reached it
            assert await theirs.recall("resp_3", "ada") is None
        outage = [r for r in caplog.records if "shared stored responses unavailable" in r.message]
        assert len(outage) == 2  # once per process, not per request
    finally:
        await asyncio.to_thread(pg_private_server.start)
    for held in (mine, theirs):
        held.outage.down_until = 0.0  # skip the retry pause: ask the store again now
    await mine.remember("resp_4", Stored("ada", turn, "resp_4"))
    assert await theirs.recall("resp_4", "ada") is not None
    assert mine.outage.down_since is None and theirs.outage.down_since is None
    for held in (mine, theirs):
        held.close()
    for store in stores:
        with contextlib.suppress(Exception):
            store.dispose()


async def test_expired_answers_are_deleted_as_answers_are_written(db_url):
    with Store(db_url) as store:
        shared = SharedResponses(store, ttl=60)
        shared.put("resp_old", "ada", "resp_old", [], now=time.time() - 120)
        stored = SharedStoredResponses(10, shared)
        stored.pruning.next_at = 0.0  # the minute between deletions has passed
        await stored.remember("resp_new", Stored("ada", [], "resp_new"))
        with store.engine.connect() as conn:
            ids = conn.execute(sa.select(stored_responses.c.id)).scalars().all()
        assert ids == ["resp_new"]
        stored.close()


async def test_a_failed_prune_is_logged_and_waits_its_turn(caplog):
    # A prune that fails while writes succeed is not something a real store
    # does on demand: a stand-in raises.
    calls: list[int] = []

    def broken() -> None:
        calls.append(1)
        raise RuntimeError("disk full")

    pruning = Pruning("expired stored responses", 60.0)
    pruning.next_at = 0.0
    with caplog.at_level("WARNING", logger="guardstack.gateway"):
        await pruning.maybe(broken)  # logged, not raised
        await pruning.maybe(broken)  # not due for another minute
    assert calls == [1]
    assert "could not delete expired stored responses: RuntimeError: disk full" in caplog.text
