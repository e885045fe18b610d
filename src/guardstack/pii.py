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
from collections.abc import Callable, Sequence

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


#: Where a found span is blanked while the next kinds are searched: neither a
#: word character, a digit, white space nor a separator, so no later pattern
#: matches across it (as none would across the placeholder that replaces it).
_BLANK = "\x00"


def _card(m: re.Match[str]) -> bool:
    digits = re.sub(r"[ -]", "", m.group())
    return 13 <= len(digits) <= 19 and luhn_ok(digits)


def _phone(m: re.Match[str]) -> bool:
    return 7 <= len(re.sub(r"\D", "", m.group())) <= 15


# Order matters: checksummed kinds first so a card number is not mistaken for
# a phone number.
_KINDS: tuple[tuple[str, re.Pattern[str], Callable[[re.Match[str]], bool]], ...] = (
    (EMAIL, _EMAIL_RE, lambda m: True),
    (IBAN, _IBAN_RE, lambda m: iban_ok(m.group())),
    (CARD, _CARD_RE, _card),
    (PHONE, _PHONE_RE, _phone),
)


def spans(text: str) -> list[tuple[int, int, str]]:
    """Where ``text`` holds personal data: ``(start, end, placeholder)`` in
    order, none overlapping (``placeholder`` is ``[EMAIL]``, ``[PHONE]``,
    ``[CARD]`` or ``[IBAN]``)."""
    found: list[tuple[int, int, str]] = []
    searched = text
    for placeholder, regex, valid in _KINDS:
        new = [(m.start(), m.end(), placeholder) for m in regex.finditer(searched) if valid(m)]
        if new:  # one pass, not a copy of the text per find
            searched = replace_spans(searched, [(a, b, _BLANK * (b - a)) for a, b, _ in new])
        found.extend(new)
    return sorted(found)


def replace_spans(text: str, found: Sequence[tuple[int, int, str]]) -> str:
    """``text`` with each ``(start, end, replacement)`` of ``found`` (in
    order, not overlapping) replaced."""
    parts, last = [], 0
    for start, end, replacement in found:
        parts += [text[last:start], replacement]
        last = end
    parts.append(text[last:])
    return "".join(parts)


def redact_text(text: str) -> tuple[str, Counter[str]]:
    """Return ``text`` with PII replaced, and how many of each kind were replaced."""
    found = spans(text)
    return replace_spans(text, found), Counter(p for _, _, p in found)


_KIND_NAMES = {EMAIL: "email", PHONE: "phone", CARD: "card", IBAN: "iban"}


def kinds(text: str) -> list[str]:
    """The kinds of personal data in ``text`` (``email``, ``phone``, ``card``,
    ``iban``), sorted; empty when there is none."""
    return sorted(_KIND_NAMES[k] for k in redact_text(text)[1])
