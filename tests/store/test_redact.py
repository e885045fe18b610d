import pytest
from tests.store.factory import make_event

from guardstack.store.redact import iban_ok, luhn_ok, redact_event, redact_text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("write to john.doe+news@example.co.uk today", "write to [EMAIL] today"),
        ("card 4111 1111 1111 1111 exp 12/29", "card [CARD] exp 12/29"),
        ("card 4111-1111-1111-1111.", "card [CARD]."),
        ("amex 3782 822463 10005", "amex [CARD]"),
        ("pay to GB82 WEST 1234 5698 7654 32 now", "pay to [IBAN] now"),
        ("DE89370400440532013000", "[IBAN]"),
        ("call (555) 123-4567", "call [PHONE]"),
        ("call +44 20 7946 0958 or 020 7946 0958", "call [PHONE] or [PHONE]"),
        ("call 555.123.4567!", "call [PHONE]!"),
    ],
)
def test_pii_is_replaced(text, expected):
    assert redact_text(text)[0] == expected


@pytest.mark.parametrize(
    "text",
    [
        "card 4111 1111 1111 1112 fails the Luhn check",
        "order 12345678901234 shipped on 2024-01-15",
        "pi is 3.14159265, version 1.2.3, ip 192.168.1.1, total 1,000,000",
        "GB82 WEST 1234 5698 7654 33 fails mod 97",
        "meet at 10:30 in room 42",
    ],
)
def test_look_alikes_are_kept(text):
    assert redact_text(text) == (text, {})


def test_checksums():
    assert luhn_ok("4111111111111111") and not luhn_ok("4111111111111112")
    assert iban_ok("GB82WEST12345698765432") and not iban_ok("GB82WEST12345698765433")


def test_redact_event_covers_messages_and_error_and_marks_it():
    event = make_event(1, text="mail me: a@b.io", error="upstream said a@b.io is invalid")
    out = redact_event(event)
    assert out.messages[0].content == "mail me: [EMAIL]"
    assert out.error == "upstream said [EMAIL] is invalid"
    assert out.redacted and not event.redacted
    assert out.messages[0].embedding == event.messages[0].embedding
