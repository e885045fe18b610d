"""API keys, rate limits and account states, against the real event store
(SQLite in a temporary folder). The upstream is a closed loopback port: a
502 means the gateway admitted the request and tried to forward it."""

from __future__ import annotations

import asyncio
import time

import httpx
import openai
import pytest
from tests.fixtures.llama_server import free_port
from tests.gateway.standins import marker_guard

from guardstack.gateway.ratelimit import RateLimiter, SharedRateLimiter
from guardstack.gateway.store_adapter import StoreKeys, StoreStates
from guardstack.store import Accounts, KeyStore, Store
from guardstack.store.rate_buckets import RateBuckets

BODY = {"model": "m", "messages": [{"role": "user", "content": "Write a story about a cat."}]}


@pytest.fixture
def store(tmp_path):
    s = Store(f"sqlite:///{tmp_path / 'gs.db'}")
    s.migrate()
    yield s
    s.dispose()


@pytest.fixture
def keyed(run_gateway, store):
    keys = KeyStore(store, cache_ttl=0.01)
    accounts = Accounts(store, cache_ttl=0.01)

    def start(**settings):
        gw = run_gateway(f"http://127.0.0.1:{free_port()}/v1", guard=marker_guard("x"),
                         keys=StoreKeys(keys), states=StoreStates(accounts),
                         **{"open": False, "state_ttl": 0.05, **settings})
        return gw, keys, accounts

    return start


def post(gw, key: str | None = None) -> httpx.Response:
    headers = {"authorization": f"Bearer {key}"} if key else {}
    return httpx.post(gw.url + "/v1/chat/completions", json=BODY, headers=headers, timeout=30)


def test_missing_and_wrong_keys_are_401(keyed):
    gw, _, _ = keyed()
    r = post(gw)
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"
    assert "'x-api-key: <key>'" in r.json()["error"]["message"]  # Anthropic's clients' way
    assert post(gw, "gs-not-a-key").status_code == 401
    with (openai.OpenAI(base_url=gw.url + "/v1", api_key="gs-wrong", max_retries=0) as c,
          pytest.raises(openai.AuthenticationError)):
        c.chat.completions.create(**BODY)


@pytest.mark.parametrize("header", ["Basic dXNlcjpwdw==", "gs-key-without-its-scheme"])
def test_an_authorization_header_not_of_the_bearer_form_is_said_so(keyed, header):
    gw, _, _ = keyed()
    r = httpx.post(gw.url + "/v1/chat/completions", json=BODY,
                   headers={"authorization": header}, timeout=30)
    assert r.status_code == 401
    message = r.json()["error"]["message"]
    assert "not of the form 'Bearer <key>'" in message and header not in message


def test_valid_key_maps_to_user_and_tenant(keyed):
    gw, keys, _ = keyed()
    plaintext, info = keys.create("alice", tenant="acme")
    assert post(gw, plaintext).status_code == 502  # admitted; the upstream is down
    [ex] = gw.wait_for_exchanges(1)
    assert (ex.user, ex.tenant, ex.key_id) == ("alice", "acme", info.id)


def test_revoked_key_is_refused(keyed):
    gw, keys, _ = keyed()
    plaintext, info = keys.create("bob")
    keys.revoke(info.id)
    time.sleep(0.1)
    assert post(gw, plaintext).status_code == 401


def test_open_mode_attributes_to_openai_user(run_gateway):
    gw = run_gateway(f"http://127.0.0.1:{free_port()}/v1", guard=marker_guard("x"), open=True)
    httpx.post(gw.url + "/v1/chat/completions", json={**BODY, "user": "carol"})
    httpx.post(gw.url + "/v1/chat/completions", json=BODY)
    a, b = gw.wait_for_exchanges(2)
    assert (a.user, a.openai_user, b.user) == ("carol", "carol", "anonymous")
    # safety_identifier, OpenAI's successor to `user`, names the end user too
    httpx.post(gw.url + "/v1/chat/completions", json={**BODY, "safety_identifier": "dave"})
    httpx.post(gw.url + "/v1/responses", json={"model": "m", "input": "Hi",
                                               "safety_identifier": "erin"})
    *_, c, d = gw.wait_for_exchanges(4)
    assert (c.user, c.openai_user, d.user) == ("dave", "dave", "erin")
    r = httpx.post(gw.url + "/v1/chat/completions", json={**BODY, "safety_identifier": 3})
    assert r.status_code == 400 and r.json()["error"]["param"] == "safety_identifier"
    # Ollama's API has no user field: Open WebUI names its user in a header
    httpx.post(gw.url + "/api/chat", json={**BODY, "stream": False},
               headers={"X-OpenWebUI-User-Id": "frida"})
    *_, e = gw.wait_for_exchanges(6)
    assert (e.endpoint, e.user) == ("ollama.chat", "frida")


def test_a_platform_key_attributes_requests_to_the_end_users_it_names(keyed):
    """One key for Open WebUI or a company chatbot, many people behind it:
    the end user the request names (the body's field, or Open WebUI's
    header) is the user; an ordinary key's requests stay its own."""
    gw, keys, _ = keyed()
    platform, info = keys.create("webui", tenant="acme", end_users=True)
    person, _ = keys.create("alice")
    auth = {"authorization": f"Bearer {platform}"}
    for extra, headers in [({"user": "u42"}, {}), ({"safety_identifier": "u43"}, {}),
                           ({}, {"X-OpenWebUI-User-Id": "u44"}), ({}, {})]:
        assert httpx.post(gw.url + "/v1/chat/completions", json={**BODY, **extra},
                          headers={**auth, **headers}).status_code == 502
    httpx.post(gw.url + "/v1/chat/completions", json={**BODY, "user": "u42"},
               headers={"authorization": f"Bearer {person}"})
    exchanges = gw.wait_for_exchanges(5)
    assert [ex.user for ex in exchanges] == ["webui:u42", "webui:u43", "webui:u44", "webui",
                                             "alice"]
    assert all(ex.tenant == "acme" and ex.key_id == info.id for ex in exchanges[:4])
    assert exchanges[4].openai_user == "u42"  # recorded, but alice's key names no one else
    r = httpx.post(gw.url + "/v1/chat/completions", json={**BODY, "user": "u" * 300},
                   headers=auth)
    assert r.status_code == 400 and r.json()["error"]["param"] == "user"


def test_end_users_have_their_own_states_and_buckets_under_the_platforms(keyed):
    gw, keys, accounts = keyed(rate_limit=0.01, rate_burst=1)
    platform, _ = keys.create("webui", end_users=True)

    def as_end_user(name: str) -> int:
        return httpx.post(gw.url + "/v1/chat/completions", json={**BODY, "user": name},
                          headers={"authorization": f"Bearer {platform}"}).status_code

    accounts.set_state("webui:u1", "suspended", actor="test", reason="layer 3 finding")
    assert as_end_user("u1") == 403
    assert as_end_user("u2") == 502
    assert as_end_user("u2") == 429  # u2's own bucket is spent ...
    assert as_end_user("u3") == 502  # ... not u3's
    accounts.set_state("webui", "suspended", actor="test", reason="the platform itself")
    time.sleep(0.2)  # past the state cache TTL
    assert as_end_user("u4") == 403


def test_rate_limit_is_429_with_retry_after(keyed):
    # A slow refill (one request per 100 s) keeps the test independent of machine speed.
    gw, keys, _ = keyed(rate_limit=0.01, rate_burst=2)
    plaintext, _ = keys.create("dave")
    other, _ = keys.create("erin")
    assert [post(gw, plaintext).status_code for _ in range(2)] == [502, 502]
    r = post(gw, plaintext)
    assert r.status_code == 429 and 1 <= int(r.headers["retry-after"]) <= 100
    assert r.json()["error"]["type"] == "rate_limit_error"
    # the message says what the header says
    assert f"retry in {r.headers['retry-after']} s." in r.json()["error"]["message"]
    assert post(gw, other).status_code == 502  # buckets are per user
    assert "guardstack_rate_limited_total 1.0" in httpx.get(gw.url + "/metrics").text


def test_suspended_account_is_403(keyed):
    gw, keys, accounts = keyed()
    plaintext, _ = keys.create("frank")
    accounts.set_state("frank", "suspended", actor="test", reason="layer 3 finding")
    r = post(gw, plaintext)
    assert r.status_code == 403 and r.json()["error"]["code"] == "account_suspended"
    accounts.set_state("frank", "none", actor="test", reason="appeal granted")
    time.sleep(0.2)  # past the state cache TTL
    assert post(gw, plaintext).status_code == 502


def test_warn_is_allowed_and_recorded(keyed):
    gw, keys, accounts = keyed()
    plaintext, _ = keys.create("gina")
    accounts.set_state("gina", "warn", actor="test", reason="borderline traffic")
    assert post(gw, plaintext).status_code == 502
    [ex] = gw.wait_for_exchanges(1)
    assert ex.account_state == "warn"


def test_rate_limited_account_gets_the_stricter_limit(keyed):
    gw, keys, accounts = keyed(rate_limit=0.05, rate_burst=10, rate_limited_factor=0.1)
    plaintext, _ = keys.create("hank")
    accounts.set_state("hank", "rate_limited", actor="test", reason="abuse pattern")
    assert post(gw, plaintext).status_code == 502
    assert post(gw, plaintext).status_code == 429  # burst 10 * 0.1 = 1


def test_token_bucket_refills(monkeypatch):
    now = [1000.0]
    monkeypatch.setattr("guardstack.gateway.ratelimit.time.monotonic", lambda: now[0])
    limiter = RateLimiter(rate=2.0, burst=1)
    assert limiter.take("u") == 0
    assert limiter.take("u") == 0.5
    now[0] += 0.25
    assert limiter.take("u") == 0.25  # half a token refilled
    now[0] += 0.5
    assert limiter.take("u") == 0
    assert RateLimiter.retry_after(0.25) == "1"
    assert RateLimiter(rate=0, burst=1).take("u") == 0  # 0 turns limits off


def test_open_mode_rate_limits_each_openai_user(run_gateway):
    gw = run_gateway(f"http://127.0.0.1:{free_port()}/v1", guard=marker_guard("x"), open=True,
                     rate_limit=0.01, rate_burst=1)

    def as_user(user: str) -> int:
        return httpx.post(gw.url + "/v1/chat/completions", json={**BODY, "user": user}).status_code

    assert [as_user("ann"), as_user("ann"), as_user("ben")] == [502, 429, 502]


class _Outage:
    """The real account states behind a switch that makes the store unreachable
    (a fault the test cannot time with a real database)."""

    def __init__(self, states):
        self.states, self.down, self.calls = states, False, 0

    async def get_state(self, user):
        self.calls += 1
        if self.down:
            raise ConnectionError("connection refused\nsecond line of driver detail")
        return await self.states.get_state(user)


async def test_account_store_outage_serves_everyone_logs_once_and_recovers(store, caplog,
                                                                            monkeypatch):
    from guardstack.gateway import auth

    monkeypatch.setattr(auth, "STATE_RETRY_S", 0.5)
    accounts = Accounts(store, cache_ttl=0.0)
    accounts.set_state("mallory", "suspended", actor="t", reason="test")
    flaky = _Outage(StoreStates(accounts))
    a = auth.Authenticator(None, flaky, open_mode=True, ttl=0.0)
    assert await a.state("mallory") == "suspended"
    flaky.down = True
    with caplog.at_level("WARNING", logger=auth.log.name):
        for _ in range(20):
            assert await a.state("mallory") == "ok"  # fail-open while the store is down
    tries = flaky.calls
    assert tries == 2  # one failed try, then none until the retry interval has passed
    down = [r for r in caplog.records if "unavailable" in r.getMessage()]
    assert len(down) == 1 and "second line" not in down[0].getMessage()
    flaky.down = False
    time.sleep(0.6)  # the retry interval passes
    caplog.clear()
    with caplog.at_level("WARNING", logger=auth.log.name):
        assert await a.state("mallory") == "suspended"
    assert any("available again" in r.getMessage() for r in caplog.records)


def test_a_key_with_its_own_rate_limit_gets_it_and_others_the_gateways(keyed):
    gw, keys, _ = keyed(rate_limit=0.01, rate_burst=1)
    batch, info = keys.create("batch-job", rate_limit=0.01, rate_burst=3)
    unlimited, _ = keys.create("loadtest", rate_limit=0)
    person, _ = keys.create("ivy")
    assert [post(gw, batch).status_code for _ in range(4)] == [502, 502, 502, 429]
    assert [post(gw, unlimited).status_code for _ in range(5)] == [502] * 5
    assert [post(gw, person).status_code for _ in range(2)] == [502, 429]
    # Changed from the command line: the gateway sees it once its key cache expires.
    keys.set_limits(info.id, rate_limit=0, rate_burst=None)
    time.sleep(0.2)
    assert post(gw, batch).status_code == 502  # no limit now
    keys.set_limits(info.id, rate_limit=None, rate_burst=None)
    time.sleep(0.2)
    assert post(gw, batch).status_code == 429  # the gateway's limit, its bucket spent


def test_replicas_on_one_store_share_each_users_limit(run_gateway, store):
    # Two gateways on one store, as two replicas behind a load balancer: with
    # shared buckets a user gets the limit once, not once per replica.
    def replicas(n: int = 1, **settings):
        return [run_gateway(f"http://127.0.0.1:{free_port()}/v1", guard=marker_guard("x"),
                            open=True, rate_limit=0.01, rate_burst=2, **settings)
                for _ in range(n)]

    def as_user(gw, user: str) -> httpx.Response:
        return httpx.post(gw.url + "/v1/chat/completions", json={**BODY, "user": user},
                          timeout=30)

    a = replicas(rate_buckets=RateBuckets(store))[0]
    b = replicas(rate_buckets=RateBuckets(Store(store.url)))[0]  # its own pool, as a replica
    codes = [as_user(gw, "ann").status_code for gw in (a, b, a, b)]
    assert codes == [502, 502, 429, 429]
    r = as_user(b, "ann")
    assert r.status_code == 429 and 1 <= int(r.headers["retry-after"]) <= 100
    assert as_user(b, "ben").status_code == 502  # buckets are still per user
    # each process's own buckets: every replica allows the burst again
    c, d = replicas(2)
    assert [as_user(gw, "ann").status_code for gw in (c, d, c, d)] == [502] * 4


async def test_shared_limits_fall_back_to_the_process_while_the_store_is_down(
        pg_private_server, caplog):
    url = pg_private_server.create_database()
    store = Store(url)
    store.migrate()
    replica = Store(url)
    limiter = SharedRateLimiter(rate=0.01, burst=2, buckets=RateBuckets(store))
    other = SharedRateLimiter(rate=0.01, burst=2, buckets=RateBuckets(replica))
    assert [await limiter.admit("ann"), await other.admit("ann")] == [0.0, 0.0]
    assert await limiter.admit("ann") > 0  # shared: the other replica took the second
    try:
        await asyncio.to_thread(pg_private_server.stop)  # the real server goes away
        with caplog.at_level("WARNING", logger="guardstack.gateway"):
            # still limited, by this process's own bucket (burst 2, then refused)
            waits = [await limiter.admit("cat") for _ in range(3)]
            assert waits[:2] == [0.0, 0.0] and waits[2] > 0
        outage = [r for r in caplog.records if "shared rate limits unavailable" in r.message]
        assert len(outage) == 1  # logged once, not per request
    finally:
        await asyncio.to_thread(pg_private_server.start)
    limiter.outage.down_until = 0.0  # skip the retry pause: ask the store again now
    assert await limiter.admit("ann") > 0  # the shared bucket kept its state
    assert limiter.outage.down_since is None
    for held in (limiter, other):
        held.close()
    store.dispose()
    replica.dispose()
