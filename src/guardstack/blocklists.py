"""Blocklists: terms and patterns a deployer bans outright, beside the classifier.

A classifier judges intent; some rules are not about intent at all: an
unreleased product's code name, a competitor a support bot must not discuss,
API keys that must never leave in an answer, personal data a prompt must not
carry to a hosted model. Azure AI Content Safety calls these *custom
blocklists* and reports them beside its categories; a policy names them under
``blocklists:`` and the verdict reports the lists that matched the same way
(``Verdict.blocklists``; ``custom_blocklists`` in a blocked request's
``content_filter_result``).

A list holds any of:

* ``terms``: words or phrases, matched case-insensitively as whole words
  (``falcon`` does not match ``falconry``), any run of white space between
  the words of a phrase;
* ``patterns``: regular expressions (Python's ``re``), case-insensitive
  unless the list says ``case_sensitive: true``;
* ``builtin``: ``credentials`` (well-known API key and token formats, private
  key blocks) or ``pii`` (e-mail addresses, phone numbers, card numbers that
  pass the Luhn check, IBANs that pass mod-97: :mod:`guardstack.pii`).

Terms and patterns are matched on the text as written and on its canonical
form (:func:`guardstack.normalize.canonical`: look-alike letters folded,
invisible characters removed), so ``falcon`` written with a Cyrillic ``а``
or a zero-width space inside still matches. A match gives the list's action
(``flag`` or ``block``) whatever the classifier said; the verdict's reason
names the list and what kind of entry matched, never the matched text (it
may be the secret itself).

A list with ``action: mask`` does not judge: it replaces what it finds with a
placeholder before the text goes on (Bedrock Guardrails' *anonymize*, the
masking of LiteLLM's Presidio guardrail): a prompt's personal data never
reaches the model server, an answer's never reaches the client. Built-in
finds become ``[EMAIL]``, ``[PHONE]``, ``[CARD]``, ``[IBAN]`` or
``[CREDENTIAL]``; a term or pattern becomes the list's ``replacement``
(default ``[ID]``, the list id in capitals). Masking reads the text as
written: a term disguised with look-alike letters is for a flag or block
list to catch.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from guardstack import normalize, pii
from guardstack.verdict import Action

ROLES = ("prompt", "response")
#: How the event store keeps a match among a message's categories: ``blocklist:<id>``.
BLOCKLIST_PREFIX = "blocklist:"

#: Well-known credential formats: each has a fixed prefix and a length, so an
#: ordinary word or number does not match. Case-sensitive. Each pattern runs
#: only on a text that holds one of its literal prefixes (``str`` search is
#: many times faster than a regular expression's scan).
CREDENTIAL_PATTERNS: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("private key", ("-----BEGIN ",),
     r"-----BEGIN (?:RSA |EC |DSA |OPENSSH |PGP |ENCRYPTED )?PRIVATE KEY(?: BLOCK)?-----"),
    ("AWS access key", ("AKIA", "ASIA", "ABIA", "ACCA"),
     r"\b(?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16}\b"),
    ("GitHub token", ("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"),
     r"\b(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{60,255})\b"),
    ("GitLab token", ("glpat-",), r"\bglpat-[A-Za-z0-9_-]{20,}"),
    ("Slack token", ("xoxa-", "xoxb-", "xoxp-", "xoxo-", "xoxs-", "xoxr-"),
     r"\bxox[abposr]-[A-Za-z0-9-]{10,}"),
    ("Slack webhook", ("hooks.slack.com/services/",),
     r"https://hooks\.slack\.com/services/T[A-Za-z0-9]+/B[A-Za-z0-9]+/[A-Za-z0-9]+"),
    ("OpenAI or Anthropic key", ("sk-",),
     r"\bsk-(?:proj-|svcacct-|admin-|ant-[a-z0-9]+-)?[A-Za-z0-9_-]{20,}"),
    ("Stripe key", ("sk_live_", "sk_test_", "rk_live_", "rk_test_"),
     r"\b[rs]k_(?:live|test)_[A-Za-z0-9]{16,}"),
    ("Google API key", ("AIza",), r"\bAIza[0-9A-Za-z_-]{35}"),
    ("Hugging Face token", ("hf_",), r"\bhf_[A-Za-z0-9]{34,}"),
    ("guardstack key", ("gs-",), r"\bgs-[A-Za-z0-9_-]{43}(?![A-Za-z0-9_-])"),
    ("JSON Web Token", ("eyJ",),
     r"\beyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}"),
)
_CREDENTIALS = tuple((name, needles, re.compile(pattern))
                     for name, needles, pattern in CREDENTIAL_PATTERNS)


#: What a masked credential becomes.
CREDENTIAL = "[CREDENTIAL]"


def _credential_spans(text: str) -> list[tuple[int, int, str]]:
    return [(m.start(), m.end(), CREDENTIAL) for _, needles, regex in _CREDENTIALS
            if any(n in text for n in needles) for m in regex.finditer(text)]


def _credentials(text: str) -> str | None:
    for name, needles, regex in _CREDENTIALS:
        if any(n in text for n in needles) and regex.search(text):
            return name
    return None


#: Every kind of personal data :mod:`guardstack.pii` knows has an ``@`` or a
#: run of seven or more digits (with separators); most texts have neither.
_PII_HINT = re.compile(r"\d[\d .()+-]{5,}\d")


#: The end of a text that may be the first part of a credential: one of the
#: formats' literal prefixes, then only characters a key is made of. A
#: stream that ends so is held until the next check says what follows.
_CREDENTIAL_START = re.compile(
    "(?:" + "|".join(re.escape(n) for _, needles, _ in CREDENTIAL_PATTERNS for n in needles)
    + r")[A-Za-z0-9_.+/=-]*\Z")
#: ...and an e-mail address being written (for the pii list).
_EMAIL_START = re.compile(r"[\w.+-]+@[\w.-]*\Z")
#: ...and, for a list that masks personal data, a number being written (a
#: phone, card or IBAN number is many tokens long).
_NUMBER_START = re.compile(r"(?:\+|\b[A-Z]{2}\d{2}|\d)[\d .()+-]*\Z")


def may_complete(blocklists: Sequence[Blocklist], role: str, text: str, *,
                 masking: bool = True) -> bool:
    """Whether ``text`` ends with what may be the start of a match of one of
    the lists that block or mask ``role`` (a credential's prefix and its first
    characters, an e-mail address half written; for a masking list, a number
    too), so a stream should hold it until more arrives. Terms and patterns
    are not read: a term's first words are harmless alone. ``masking``:
    whether the stream is masked at all (a caller that relays its own copies
    masks nothing, and has nothing to hold for masking lists)."""
    tail = text[-300:]
    for bl in blocklists:
        if role not in bl.roles or not ((bl.mask and masking) or bl.action is Action.BLOCK):
            continue
        if "credentials" in bl.builtin and _CREDENTIAL_START.search(tail):
            return True
        if "pii" in bl.builtin and (_EMAIL_START.search(tail)
                                    or (bl.mask and _NUMBER_START.search(tail))):
            return True
    return False


def _pii(text: str) -> str | None:
    if "@" not in text and _PII_HINT.search(text) is None:
        return None
    found = pii.kinds(text)
    return ", ".join(found) if found else None


#: name -> a check that returns what it found (a kind, never the text) or None.
BUILTIN: dict[str, Callable[[str], str | None]] = {
    "credentials": _credentials,
    "pii": _pii,
}
#: name -> where its finds are, with their placeholders (for ``action: mask``).
BUILTIN_SPANS: dict[str, Callable[[str], list[tuple[int, int, str]]]] = {
    "credentials": _credential_spans,
    "pii": lambda text: pii.spans(text) if "@" in text or _PII_HINT.search(text) else [],
}


#: ASCII text is its own canonical form but for its control characters and
#: white space (tabs become spaces, runs collapse): terms match any run of
#: white space anyway, a pattern may not.
_ASCII_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_ASCII_CONTROL_OR_SPACING = re.compile(r"[\x00-\x09\x0b-\x1f\x7f]|\s\s")


def _plain(text: str, *, spacing_matters: bool) -> bool:
    """Whether ``text`` is its own canonical form as far as a term
    (``spacing_matters=False``) or a pattern sees: ASCII text (most prompts)
    without what canonicalization changes."""
    odd = _ASCII_CONTROL_OR_SPACING if spacing_matters else _ASCII_CONTROL
    return text.isascii() and odd.search(text) is None


def canonical_form(text: str, *, spacing_matters: bool = True) -> str:
    """:func:`guardstack.normalize.canonical`, skipped where :func:`_plain`
    says it would change nothing a term or a pattern sees."""
    return text if _plain(text, spacing_matters=spacing_matters) else normalize.canonical(text)


#: A text as terms see it: words, and each other character but white space
#: on its own ("osprey-v2" is osprey, -, v2).
_TOKEN = re.compile(r"\w+|[^\w\s]")
#: Up to this many distinct first words, a plain substring test of each
#: rules most texts out before the text is split.
_SUBSTRING_FIRST = 32


class TermSet:
    """Terms matched as whole token sequences: a term's words must be whole
    words of the text (``falcon`` is not in ``falconry``), any white space
    between them. One pass to split the text, then a set lookup per word, so
    a list of ten thousand terms costs about what a list of ten does."""

    __slots__ = ("case_sensitive", "first", "lengths", "terms")

    def __init__(self, terms: Iterable[str], *, case_sensitive: bool = False) -> None:
        self.case_sensitive = case_sensitive
        self.terms: set[tuple[str, ...]] = set()
        for term in terms:
            tokens = tuple(self._tokens(term))
            if tokens:
                self.terms.add(tokens)
        self.first = {t[0] for t in self.terms}
        self.lengths = sorted({len(t) for t in self.terms})

    def _tokens(self, text: str) -> list[str]:
        return _TOKEN.findall(text if self.case_sensitive else text.casefold())

    def search(self, text: str) -> bool:
        folded = text if self.case_sensitive else text.casefold()
        first, terms = self.first, self.terms
        if len(first) <= _SUBSTRING_FIRST and not any(f in folded for f in first):
            return False  # no term's first word anywhere, not even inside a word
        tokens = _TOKEN.findall(folded)
        for i, token in enumerate(tokens):
            if token in first:
                for n in self.lengths:
                    if tuple(tokens[i:i + n]) in terms:
                        return True
        return False

    def spans(self, text: str) -> list[tuple[int, int]]:
        """Where the terms are in ``text`` as written, longest first where
        two start at one word, none overlapping."""
        found = [(m.start(), m.end(), m.group() if self.case_sensitive else m.group().casefold())
                 for m in _TOKEN.finditer(text)]
        words = [w for _, _, w in found]
        out: list[tuple[int, int]] = []
        i = 0
        while i < len(words):
            if words[i] in self.first:
                n = next((n for n in reversed(self.lengths)
                          if tuple(words[i:i + n]) in self.terms), 0)
                if n:
                    out.append((found[i][0], found[i + n - 1][1]))
                    i += n
                    continue
            i += 1
        return out


@dataclass(frozen=True, slots=True)
class Blocklist:
    id: str
    action: Action = Action.BLOCK
    roles: frozenset[str] = frozenset(ROLES)
    #: taxonomy category the match is reported under (None: the list alone)
    category: str | None = None
    terms: TermSet | None = None
    patterns: re.Pattern[str] | None = None
    builtin: tuple[str, ...] = ()
    #: ``action: mask``: finds are replaced, not judged (``action`` is then allow)
    mask: bool = False
    #: what a masked term or pattern becomes (None: ``[ID]``)
    replacement: str | None = None
    #: masked prompt values are numbered ([EMAIL_1]) and put back into the answer
    restore: bool = False

    @classmethod
    def build(cls, id: str, *, terms: Sequence[str] = (), patterns: Sequence[str] = (),
              builtin: Sequence[str] = (), roles: Iterable[str] = ROLES,
              action: Action | str = Action.BLOCK, category: str | None = None,
              case_sensitive: bool = False, replacement: str | None = None,
              restore: bool = False) -> Blocklist:
        """A list from its entries; ``re.error`` for a pattern that does not
        compile, ``ValueError`` for an unknown built-in, role or empty list.
        ``action``: flag, block or ``"mask"``."""
        roles = tuple(roles)
        unknown = [b for b in builtin if b not in BUILTIN]
        if unknown:
            raise ValueError(f"unknown built-in list {unknown[0]!r}; "
                             f"expected one of: {', '.join(BUILTIN)}")
        bad_roles = [r for r in roles if r not in ROLES]
        if bad_roles:
            raise ValueError(f"unknown role {bad_roles[0]!r}; expected prompt or response")
        terms = [t for t in terms if t.strip()]
        if not terms and not patterns and not builtin:
            raise ValueError("a blocklist needs terms, patterns or builtin")
        flags = 0 if case_sensitive else re.IGNORECASE
        compiled_patterns = None
        if patterns:
            for p in patterns:
                re.compile(p, flags)  # names the pattern that fails
            compiled_patterns = re.compile("|".join(f"(?:{p})" for p in patterns), flags)
        mask = action == "mask"
        if restore and not (mask and "prompt" in roles):
            raise ValueError("restore is for a list that masks prompts (action: mask)")
        return cls(id=id, action=Action.ALLOW if mask else Action(action),
                   roles=frozenset(roles), category=category,
                   terms=TermSet(terms, case_sensitive=case_sensitive) if terms else None,
                   patterns=compiled_patterns, builtin=tuple(builtin), mask=mask,
                   replacement=replacement, restore=restore)

    @property
    def placeholder(self) -> str:
        """What a masked term or pattern becomes."""
        return self.replacement if self.replacement is not None else f"[{self.id.upper()}]"

    def spans(self, text: str) -> list[tuple[int, int, str]]:
        """Where this list's entries are in ``text`` as written, with what
        each becomes when masked; may overlap."""
        out = []
        if self.terms is not None:
            out += [(a, b, self.placeholder) for a, b in self.terms.spans(text)]
        if self.patterns is not None:
            out += [(m.start(), m.end(), self.placeholder)
                    for m in self.patterns.finditer(text) if m.end() > m.start()]
        for name in self.builtin:
            out += BUILTIN_SPANS[name](text)
        return out

    def match(self, text: str, canonical: Callable[[], str] | None = None) -> str | None:
        """What in ``text`` matched (``term``, ``pattern`` or a built-in's
        finding such as ``AWS access key``), or None. ``canonical``: returns
        the text's canonical form, computed once for all of a policy's lists."""
        canonical = canonical or functools.cache(lambda: normalize.canonical(text))
        for kind, regex in (("term", self.terms), ("pattern", self.patterns)):
            if regex is None:
                continue
            if regex.search(text):
                return kind
            if not _plain(text, spacing_matters=kind == "pattern"):
                form = canonical()
                if form != text and regex.search(form):
                    return kind
        for name in self.builtin:
            found = BUILTIN[name](text)
            if found is not None:
                return found
        return None


@dataclass(frozen=True, slots=True)
class Hit:
    blocklist: Blocklist
    found: str  # what matched: term, pattern or a built-in's kind

    def describe(self) -> str:
        return f"blocklist {self.blocklist.id} ({self.found})"


def find(blocklists: Sequence[Blocklist], role: str, text: str | None) -> list[Hit]:
    """The lists among ``blocklists`` that apply to ``role`` and match
    ``text`` (masking lists aside: :func:`mask` applies them)."""
    if not text or not blocklists:
        return []
    hits = []
    canonical = functools.cache(lambda: normalize.canonical(text))
    for bl in blocklists:
        if role in bl.roles and not bl.mask:
            found = bl.match(text, canonical)
            if found is not None:
                hits.append(Hit(bl, found))
    return hits


@dataclass(frozen=True, slots=True)
class Masked:
    text: str
    #: list id -> how many finds of it were replaced
    counts: dict[str, int]


def mask_spans(blocklists: Sequence[Blocklist], role: str,
               text: str) -> list[tuple[int, int, str, str]]:
    """What the masking lists for ``role`` replace in ``text``:
    ``(start, end, placeholder, list id)`` in order, none overlapping (where
    two finds overlap, the one that starts first, then the longer, wins)."""
    found = sorted(((a, -b, p, bl.id) for bl in blocklists
                    if bl.mask and role in bl.roles for a, b, p in bl.spans(text)))
    out: list[tuple[int, int, str, str]] = []
    for start, neg_end, placeholder, list_id in found:
        if out and start < out[-1][1]:
            continue
        out.append((start, -neg_end, placeholder, list_id))
    return out


def masks(blocklists: Sequence[Blocklist], role: str) -> bool:
    """Whether any of ``blocklists`` masks texts of ``role``."""
    return any(bl.mask and role in bl.roles for bl in blocklists)


def counts(found: Iterable[tuple[int, int, str, str]]) -> dict[str, int]:
    """How many of :func:`mask_spans`' finds each list made."""
    out: dict[str, int] = {}
    for *_, list_id in found:
        out[list_id] = out.get(list_id, 0) + 1
    return out


def mask(blocklists: Sequence[Blocklist], role: str, text: str, *,
         number: Callable[[str, str], str] | None = None) -> Masked:
    """``text`` with what the masking lists for ``role`` find replaced.
    ``number(placeholder, value)``: the placeholder a ``restore`` list's find
    of a prompt gets instead (the gateway numbers them per request)."""
    found = mask_spans(blocklists, role, text) if text and masks(blocklists, role) else []
    restoring = {bl.id for bl in blocklists if bl.restore} \
        if number is not None and role == "prompt" else set()
    replaced = [(a, b, number(p, text[a:b]) if number is not None and list_id in restoring
                 else p) for a, b, p, list_id in found]
    return Masked(pii.replace_spans(text, replaced), counts(found))
