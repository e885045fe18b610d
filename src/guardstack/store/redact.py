"""Optional PII redaction of stored message text.

Off by default (offline analysis is better with the real text); turn it on
with ``EventWriter(..., redact=True)`` where the law or the deployment asks
for it. It runs in the writer's thread, off the request path, before the
event reaches the database or the spool. What counts as personal data, and
how it is replaced, is :mod:`guardstack.pii`.
"""

from __future__ import annotations

from dataclasses import replace

from guardstack.pii import iban_ok, luhn_ok, redact_text
from guardstack.store.events import ExchangeEvent

__all__ = ["iban_ok", "luhn_ok", "redact_event", "redact_text"]


def redact_event(event: ExchangeEvent) -> ExchangeEvent:
    """A copy of ``event`` with message contents and the error text redacted.

    Embeddings are kept: they were computed from the original text and are
    what offline analysis needs; they do not let the text be read back.
    """
    messages = []
    for msg in event.messages:
        text, found = redact_text(msg.content)
        messages.append(replace(msg, content=text) if found else msg)
    error = redact_text(event.error)[0] if event.error else event.error
    # redacted=True records that redaction ran, whether or not it found anything.
    return replace(event, messages=messages, error=error, redacted=True)
