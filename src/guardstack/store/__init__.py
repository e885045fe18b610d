"""The event store: every gateway exchange, verdict and embedding, plus API
keys, account states and the audit log. SQLite embedded, PostgreSQL by URL.

Gateway use::

    store = Store(url)                       # sqlite:///guardstack.db, postgresql://...
    writer = EventWriter(store, spool_path=...)
    await writer.start()                     # migrates, replays a leftover spool
    await writer.submit(ExchangeEvent(...))  # off the request path; waits only when full
    await writer.close()                     # on shutdown: drains the queue
"""

from guardstack.store.accounts import AccountAction, Accounts, AccountState
from guardstack.store.engine import DEFAULT_URL, ENV_URL, Store, normalize_url
from guardstack.store.errors import StoreError
from guardstack.store.events import (
    ExchangeEvent,
    MessageRecord,
    decode_embedding,
    encode_embedding,
)
from guardstack.store.history import HistoryMessage, user_history
from guardstack.store.keys import KeyInfo, KeyStore
from guardstack.store.redact import redact_event, redact_text
from guardstack.store.retention import parse_age, purge
from guardstack.store.writer import EventWriter

__all__ = [
    "DEFAULT_URL",
    "ENV_URL",
    "AccountAction",
    "AccountState",
    "Accounts",
    "EventWriter",
    "ExchangeEvent",
    "HistoryMessage",
    "KeyInfo",
    "KeyStore",
    "MessageRecord",
    "Store",
    "StoreError",
    "decode_embedding",
    "encode_embedding",
    "normalize_url",
    "parse_age",
    "purge",
    "redact_event",
    "redact_text",
    "user_history",
]
