import hashlib

import pytest
import sqlalchemy as sa

from guardstack.store import KeyStore, StoreError
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
