"""Personal data in text: e-mail addresses, phone numbers (international
``+..`` forms and grouped national forms such as ``(555) 123-4567`` or
``020 7946 0958``), payment card numbers (13-19 digits passing the Luhn
check) and IBANs (passing the mod-97 check). The checksums keep order
numbers, dates and other digit runs intact. Unformatted digit runs without
``+`` are not taken for phone numbers: too many are something else.

Used by the store's optional redaction (:mod:`guardstack.store.redact`),
the training export, and the policy's built-in ``pii`` blocklist
(:mod:`guardstack.blocklists`).
"""

from __future__ import annotations

import re
from collections import Counter

EMAIL = "[EMAIL]"
PHONE = "[PHONE]"
CARD = "[CARD]"
IBAN = "[IBAN]"

_EMAIL_RE = re.compile(r"(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)*\.[A-Za-z]{2,}\b")
# Contiguous, or grouped as printed on cards (4-4-4-4[-3], Amex 4-6-5).
_CARD_RE = re.compile(
    r"(?<![\d-])(?:\d{13,19}|\d{4}(?:[ -]\d{4}){2,3}(?:[ -]\d{1,4})?|\d{4}[ -]\d{6}[ -]\d{4,5})"
    r"(?![\d-])"
)
_IBAN_RE = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b")
_PHONE_RE = re.compile(
    # Not part of a longer digit-group run (a card that failed Luhn, an id).
    r"(?<![\w+])(?<!\d[ .-])(?:"
    # +CC then 2-5 groups of digits, optionally one in parentheses
    r"\+\d{1,3}(?:[ .-]?\(?\d{1,5}\)?){2,5}"
    r"|"
    # national: (555) 123-4567, 555-123-4567, 020 7946 0958, 555.123.4567
    r"(?:\(\d{2,5}\) ?|\d{2,5}[ .-])\d{3,4}[ .-]?\d{3,4}"
    r")(?!\w|[ .-]\d)"
)


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def iban_ok(iban: str) -> bool:
    s = iban.replace(" ", "")
    if not 15 <= len(s) <= 34:
        return False
    rearranged = s[4:] + s[:4]
    number = "".join(str(int(ch, 36)) for ch in rearranged)
    return int(number) % 97 == 1


def redact_text(text: str) -> tuple[str, Counter[str]]:
    """Return ``text`` with PII replaced, and how many of each kind were replaced."""
    found: Counter[str] = Counter()

    def email(m: re.Match[str]) -> str:
        found[EMAIL] += 1
        return EMAIL

    def iban(m: re.Match[str]) -> str:
        if iban_ok(m.group()):
            found[IBAN] += 1
            return IBAN
        return m.group()

    def card(m: re.Match[str]) -> str:
        digits = re.sub(r"[ -]", "", m.group())
        if 13 <= len(digits) <= 19 and luhn_ok(digits):
            found[CARD] += 1
            return CARD
        return m.group()

    def phone(m: re.Match[str]) -> str:
        digits = re.sub(r"\D", "", m.group())
        if 7 <= len(digits) <= 15:
            found[PHONE] += 1
            return PHONE
        return m.group()

    # Order matters: checksummed kinds first so a card number is not
    # mistaken for a phone number.
    text = _EMAIL_RE.sub(email, text)
    text = _IBAN_RE.sub(iban, text)
    text = _CARD_RE.sub(card, text)
    text = _PHONE_RE.sub(phone, text)
    return text, found


_KIND_NAMES = {EMAIL: "email", PHONE: "phone", CARD: "card", IBAN: "iban"}


def kinds(text: str) -> list[str]:
    """The kinds of personal data in ``text`` (``email``, ``phone``, ``card``,
    ``iban``), sorted; empty when there is none."""
    return sorted(_KIND_NAMES[k] for k in redact_text(text)[1])
