import hashlib

import pytest
import sqlalchemy as sa

from guardstack.store import KeyStore, Store, StoreError
from guardstack.store.schema import api_keys


def test_add_lookup_revoke(store):
    keys = KeyStore(store, cache_ttl=60)
    plaintext, info = keys.create("alice", tenant="acme", name="laptop")
    assert plaintext.startswith("gs-") and len(plaintext) > 40
    assert plaintext.startswith(info.prefix)

    found = keys.lookup(plaintext)
    assert found is not None
    assert (found.id, found.user, found.tenant, found.name) == (info.id, "alice", "acme", "laptop")
    assert keys.lookup(plaintext + "x") is None
    assert keys.lookup("") is None

    keys.revoke(info.id)
    # Revocation applies at once in this process, despite the 60 s cache.
    assert keys.lookup(plaintext) is None
    assert keys.get(info.id).revoked
    assert [k.id for k in keys.list_keys(include_revoked=False)] == []
    assert [k.id for k in keys.list_keys(user="alice")] == [info.id]


def test_only_the_hash_is_stored(store):
    keys = KeyStore(store)
    plaintext, _ = keys.create("bob")
    with store.engine.connect() as conn:
        row = conn.execute(sa.select(api_keys)).mappings().one()
    assert plaintext not in {str(v) for v in row.values()}
    assert row["key_hash"] == hashlib.sha256(plaintext.encode()).hexdigest()


async def test_alookup_uses_the_same_answers(store):
    keys = KeyStore(store)
    plaintext, info = keys.create("carol")
    assert (await keys.alookup(plaintext)).id == info.id
    assert await keys.alookup("gs-nope") is None


def test_revoking_an_unknown_key_is_a_clear_error(store):
    with pytest.raises(StoreError, match="no API key with id 'nope'"):
        KeyStore(store).revoke("nope")


def test_revoke_in_another_process_applies_after_the_cache_ttl(store):
    gateway = KeyStore(store, cache_ttl=0)
    admin = KeyStore(store)
    plaintext, info = admin.create("dave")
    assert gateway.lookup(plaintext) is not None
    admin.revoke(info.id)
    assert gateway.lookup(plaintext) is None


def test_a_key_says_whether_it_names_end_users(store):
    keys = KeyStore(store, cache_ttl=0)
    platform, _ = keys.create("webui", end_users=True)
    person, _ = keys.create("alice")
    assert keys.lookup(platform).end_users is True
    assert keys.lookup(person).end_users is False
    assert [k.end_users for k in keys.list_keys()] == [True, False]


def test_keys_issued_before_0004_keep_working_as_ordinary_keys(db_url):
    """A database at revision 0003 with a key in it, upgraded: the key still
    authenticates, as a key that names no end users."""
    from alembic import command

    from guardstack.store.engine import _alembic_config

    store = Store(db_url)
    cfg = _alembic_config()
    with store.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0003")
        conn.execute(sa.text(
            "INSERT INTO api_keys (id, key_hash, prefix, user_id, created_at) "
            "VALUES ('k1', :h, 'gs-old', 'olga', CURRENT_TIMESTAMP)"),
            {"h": hashlib.sha256(b"gs-old-key").hexdigest()})
    assert store.current_revision() == "0003"
    store.migrate()
    found = KeyStore(store, cache_ttl=0).lookup("gs-old-key")
    assert found is not None and found.user == "olga" and found.end_users is False
    store.dispose()


def test_a_key_carries_its_own_rate_limit_which_can_change_and_clear(store):
    keys = KeyStore(store, cache_ttl=0)
    batch, info = keys.create("batch-job", rate_limit=50.0, rate_burst=200)
    plain, _ = keys.create("alice")
    assert (info.rate_limit, info.rate_burst) == (50.0, 200)
    found = keys.lookup(batch)
    assert (found.rate_limit, found.rate_burst) == (50.0, 200)
    assert (keys.lookup(plain).rate_limit, keys.lookup(plain).rate_burst) == (None, None)
    changed = keys.set_limits(info.id, rate_limit=0.5, rate_burst=None, actor="ops")
    assert (changed.rate_limit, changed.rate_burst) == (0.5, None)
    assert keys.lookup(batch).rate_limit == 0.5
    assert keys.set_limits(info.id, rate_limit=None, rate_burst=None).rate_limit is None
    with pytest.raises(ValueError, match="rate limit"):
        keys.create("x", rate_limit=-1)
    with pytest.raises(ValueError, match="burst"):
        keys.set_limits(info.id, rate_limit=1, rate_burst=0)
    with pytest.raises(StoreError, match="no API key"):
        keys.set_limits("nope", rate_limit=1, rate_burst=None)
    with store.engine.connect() as conn:
        actions = [r.action for r in conn.execute(sa.text(
            "SELECT action FROM audit_log ORDER BY id"))]
    assert actions.count("key.limits") == 2
