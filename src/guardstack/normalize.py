"""Evasion-resistant text normalization, applied before a detector scores text.

Attackers dodge keyword-ish classifiers with look-alike letters, invisible characters,
spaced-out letters, leetspeak and encoded payloads. :func:`variants` returns the canonical
text first and then, only when they exist, the de-obfuscated and decoded readings of it;
a detector scores every variant and keeps the worst score.

Everything here is stdlib, never raises on any ``str`` and stays linear in the input size.
"""

from __future__ import annotations

import base64
import binascii
import html
import math
import re
import unicodedata
from collections.abc import Callable
from urllib.parse import unquote

__all__ = ["canonical", "decode_bytes", "variants"]

# Nested payloads (base64 inside rot13, say) are followed this many decodings deep.
_MAX_DEPTH = 2
# The rot13 decision reads at most this much text: enough to judge the language.
_ROT13_SAMPLE = 20_000

# --- canonical form -----------------------------------------------------------------

# Invisible format characters with no meaning in running text, removed outright.
# ZWJ / ZWNJ (U+200D / U+200C) are handled apart: emoji sequences and Arabic/Indic
# scripts need them. Tag characters (U+E0000 block) are handled apart too.
_INVISIBLE = (
    "\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180e\u200b\u200e\u200f"
    "\u202a\u202b\u202c\u202d\u202e\u2060\u2061\u2062\u2063\u2064"
    "\u2066\u2067\u2068\u2069\u206a\u206b\u206c\u206d\u206e\u206f"
    "\u3164\ufeff\uffa0\ufff9\ufffa\ufffb"
)
_CONTROL_TABLE: dict[int, str | None] = {ord(c): None for c in _INVISIBLE}
for _cp in [*range(0x00, 0x20), 0x7F, *range(0x80, 0xA0)]:
    _CONTROL_TABLE[_cp] = None
# Whitespace controls survive as whitespace, to be collapsed below.
_CONTROL_TABLE.update(
    {
        0x09: " ",
        0x0A: "\n",
        0x0B: " ",
        0x0C: " ",
        0x0D: "\n",
        0x85: "\n",
        0x2028: "\n",
        0x2029: "\n",
    }
)
_ASCII_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")

_SURROGATE = re.compile(r"[\ud800-\udfff]")
_JOINER = re.compile(r"[\u200c\u200d]+")
_TAG_RUN = re.compile(r"[\U000e0000-\U000e007f]+")
_BLACK_FLAG = "\U0001f3f4"  # emoji tag sequences (the flags of England, Scotland...)

# Combining marks left on an ASCII letter after NFKC composed what it could: no real
# language needs them there ("é" is one precomposed code point), Zalgo text does.
_MARKS_ON_LATIN = re.compile(
    r"(?<=[A-Za-z])[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]+"
)
_SCRIPT_DIGITS = re.compile("([\u00b2\u00b3\u00b9\u2070\u2074-\u207e\u2080-\u208e]+)")
_SPACES = re.compile(r"[^\S\n]{2,}|[^\S \n]")
_NEWLINES = re.compile(r" ?\n\s*")

# Look-alikes of Latin letters from other scripts. NFKC already folds fullwidth forms,
# mathematical alphanumerics, circled and superscript letters; these it leaves alone.
# fmt: off
_STRONG_CONFUSABLES = {
    # Cyrillic
    "а": "a", "е": "e", "о": "o", "р": "p", "с": "c", "у": "y", "х": "x", "і": "i",
    "ј": "j", "ѕ": "s", "һ": "h", "ԁ": "d", "ԛ": "q", "ԝ": "w", "ӏ": "l", "ү": "y",
    "А": "A", "В": "B", "Е": "E", "К": "K", "М": "M", "Н": "H", "О": "O", "Р": "P",
    "С": "C", "Т": "T", "Х": "X", "У": "Y", "І": "I", "Ј": "J", "Ѕ": "S", "Ү": "Y",
    "Ӏ": "I", "Ԁ": "D", "Ԛ": "Q", "Ԝ": "W", "Һ": "H",
    # Greek
    "α": "a", "ο": "o", "ρ": "p", "ν": "v", "ι": "i", "κ": "k", "τ": "t", "υ": "u",
    "χ": "x", "ε": "e", "γ": "y", "ω": "w", "η": "n",
    "Α": "A", "Β": "B", "Ε": "E", "Ζ": "Z", "Η": "H", "Ι": "I", "Κ": "K", "Μ": "M",
    "Ν": "N", "Ο": "O", "Ρ": "P", "Τ": "T", "Υ": "Y", "Χ": "X",
    # Armenian
    "օ": "o", "ս": "u", "ց": "g", "հ": "h", "ո": "n",
    # Latin letters outside ASCII that pass for ASCII ones (small capitals, IPA)
    "ı": "i", "ȷ": "j", "ɑ": "a", "ɡ": "g", "ɩ": "i", "ʀ": "r", "ᴀ": "a", "ʙ": "b",
    "ᴄ": "c", "ᴅ": "d", "ᴇ": "e", "ɢ": "g", "ʜ": "h", "ɪ": "i", "ᴊ": "j", "ᴋ": "k",
    "ʟ": "l", "ᴍ": "m", "ɴ": "n", "ᴏ": "o", "ᴘ": "p", "ꜱ": "s", "ᴛ": "t", "ᴜ": "u",
    "ᴠ": "v", "ᴡ": "w", "ʏ": "y", "ᴢ": "z",
}
# Cyrillic letters that only pass for Latin inside an otherwise Latin word ("кill").
_WEAK_CONFUSABLES = {"к": "k", "м": "m", "т": "t", "н": "h", "в": "b", "п": "n", "г": "r"}
# fmt: on
_ALL_CONFUSABLES = {**_STRONG_CONFUSABLES, **_WEAK_CONFUSABLES}
_STRONG_TABLE = str.maketrans(_STRONG_CONFUSABLES)
_ALL_TABLE = str.maketrans(_ALL_CONFUSABLES)
_CONFUSABLE_CLASS = "".join(sorted(_ALL_CONFUSABLES))
# Anchored at word starts so each word is scanned once (linear on 1 MB inputs).
_WORD_WITH_CONFUSABLE = re.compile(rf"(?<![^\W\d_])[^\W\d_]*?[{_CONFUSABLE_CLASS}][^\W\d_]*")
_ASCII_LETTER = re.compile(r"[A-Za-z]")
_NON_ASCII_LETTER = re.compile(r"[^\W\d_\x00-\x7f]")


def _fold_homoglyphs(text: str) -> str:
    # Whole words in another script stay as they are (Russian stays Russian); a word
    # mixing Latin with look-alikes is the evasion signal. In a mostly-Latin text a
    # word made only of strong look-alikes ("аре" for "ape") is folded as well.
    if not _ASCII_LETTER.search(text):
        return text  # nothing Latin to pass for: Russian, Greek, ... text stays as it is
    mostly_latin = len(_ASCII_LETTER.findall(text)) > len(_NON_ASCII_LETTER.findall(text))

    def fold(match: re.Match[str]) -> str:
        word = match.group()
        latin = sum(1 for c in word if c.isascii())
        looks = sum(1 for c in word if c in _ALL_CONFUSABLES)
        if latin + looks < 0.75 * len(word):
            return word
        if latin:
            return word.translate(_ALL_TABLE)
        strong = sum(1 for c in word if c in _STRONG_CONFUSABLES)
        if mostly_latin and strong == len(word):
            return word.translate(_STRONG_TABLE)
        return word

    return _WORD_WITH_CONFUSABLE.sub(fold, text)


def _drop_joiners(match: re.Match[str]) -> str:
    # ZWJ/ZWNJ between two non-Latin characters carry meaning (emoji sequences,
    # Persian, Indic scripts); next to Latin or look-alike letters they only split words.
    string, start, end = match.string, match.start(), match.end()
    before = string[start - 1] if start else " "
    after = string[end] if end < len(string) else " "
    for c in (before, after):
        if ord(c) < 0x600 or c in _ALL_CONFUSABLES:
            return ""
    return match.group()


def _drop_tags(match: re.Match[str]) -> str:
    start = match.start()
    if start and match.string[start - 1] == _BLACK_FLAG and match.group()[-1] == "\U000e007f":
        return match.group()
    return ""


def _collapse(text: str) -> str:
    text = _SPACES.sub(" ", text)
    if "\n" in text:
        text = _NEWLINES.sub("\n", text)
    return text.strip()


def _nfkc(text: str) -> str:
    if _SCRIPT_DIGITS.search(text):
        # NFKC would turn "mc²" into "mc2"; superscript digits keep their meaning.
        parts = _SCRIPT_DIGITS.split(text)
        return "".join(
            p if i % 2 else unicodedata.normalize("NFKC", p) for i, p in enumerate(parts)
        )
    return unicodedata.normalize("NFKC", text)


def _canonical(text: str) -> str:
    if text.isascii():
        # Fast path: ASCII text has no homoglyphs, invisibles or compatibility forms.
        if _ASCII_CONTROL.search(text):
            text = text.translate(_CONTROL_TABLE)
        return _collapse(text)
    if _SURROGATE.search(text):
        text = _SURROGATE.sub("\ufffd", text)
    if _TAG_RUN.search(text):
        text = _TAG_RUN.sub(_drop_tags, text)
    text = text.translate(_CONTROL_TABLE)
    text = _nfkc(text)
    # Each removal can expose more: a dropped mark leaves a joiner next to a Latin
    # letter, a dropped joiner joins two words, a folded look-alike is an ASCII letter
    # whose marks must go. Repeat to the fixed point (one round for ordinary text).
    for _ in range(4):
        before = text
        if "\u200c" in text or "\u200d" in text:
            text = _JOINER.sub(_drop_joiners, text)
        text = _fold_homoglyphs(_MARKS_ON_LATIN.sub("", text))
        if text == before:
            break
        text = _nfkc(text)  # removals can leave marks out of canonical order
    return _collapse(text)


# --- spaced-out letters and leetspeak -------------------------------------------------

_UNIT = r"[A-Za-z0-9@$]"
# Single characters joined by one repeated separator: "k i l l", "k.i.l.l", "k - i - l".
# "/" and ":" are left out: paths ("b/d/f") and option strings ("n:u:s") use them.
_SPACED = re.compile(
    rf"(?<![A-Za-z0-9@$]){_UNIT}(?P<sep> |[.\-_*|~·•]{{1,2}}| [.\-*|~·•] )"
    rf"(?:{_UNIT}(?P=sep))+{_UNIT}(?![A-Za-z0-9@$])"
)
# "|" is left out: in code it joins names ("a|b", "O_RDWR|O_CREAT") far more often.
_LEET = {"0": "o", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s", "!": "i", "1": "i"}
_LEET_HINT = re.compile(r"[A-Za-z][013457@$!]|[013457@$!][A-Za-z]")
# URLs, e-mail addresses and hex-looking words are passed over untouched, and so are
# tokens glued to "_", ".", "/", "(" (identifiers such as "_DI4Y", "log1p(", "x-sv4crc").
_LEET_SCAN = re.compile(
    r"(?P<skip>[A-Za-z0-9+/=]{16,}|\w+://\S+|\S+@\S+\.\w+|\\[uUx][0-9A-Fa-f]+|0x[0-9A-Fa-f]+"
    r"|#[0-9A-Fa-f]{3,8}\b|\b[0-9A-Fa-f]{4,}\b"
    r"|\b[0-9A-Fa-f]+(?:-[0-9A-Fa-f]+){2,}\b)"
    r"|(?<![\w./\\@$!-])(?P<tok>[A-Za-z0-9@$!]*[A-Za-z][A-Za-z0-9@$!]*)(?![\w(/@$!])"
)
_GROUPS = re.compile(r"[A-Za-z]+|[^A-Za-z]+")
_VOWELS = frozenset("aeiouAEIOU")
_LEET_MAX_TOKEN = 20


def _fold_leet_token(token: str) -> str:
    if token.isalpha():
        return token
    parts = _GROUPS.findall(token)
    if len(parts) < 2:
        return token
    out = list(parts)
    folded_inside = False
    for i in range(1, len(parts) - 1):
        part, following = parts[i], parts[i + 1]
        if part[0].isalpha() or not all(c in _LEET for c in part):
            continue
        # "IPv4Network" is a CamelCase name; "{name!r}" is a format conversion.
        if following[0].isupper() and not token.isupper():
            continue
        if part[0] == "!" and len(following) < 2:
            continue
        out[i] = _leet_group(part, following)
        folded_inside = True
    # A digit only at an edge ("mp3", "3d", "x86") is an ordinary name: folded only
    # when the same token already shows leetspeak inside ("h4ck3r") or when folding
    # makes a common English word ("th3" -> "the").
    edged = list(out)
    for i in (0, len(parts) - 1):
        part = parts[i]
        if not part[0].isalpha() and all(c in "013457@$" for c in part):
            following = parts[i + 1] if i + 1 < len(parts) else ""
            edged[i] = _leet_group(part, following)
    if folded_inside or "".join(edged).lower() in _ENGLISH:
        out = edged
    elif (
        set(parts[-1]) == {"1"}
        and len(parts[-1]) > 1
        and len(parts[-2]) > 1
        and parts[-2][-1] in _VOWELS
    ):
        out[-1] = "l" * len(parts[-1])  # "ki11", "we11"; but "X11" and "F11" are names
    result = "".join(out)
    letters = [c for c in token if c.isalpha()]
    if letters and all(c.isupper() for c in letters):
        result = result.upper()
    return result


def _leet_group(group: str, following: str) -> str:
    if set(group) == {"1"} and len(group) > 1:
        return "l" * len(group)  # "ki11" -> "kill"
    chars = []
    for j, c in enumerate(group):
        if c == "1":
            nxt = group[j + 1] if j + 1 < len(group) else following[:1]
            chars.append("l" if nxt in _VOWELS else "i")  # "p1ay" -> play, "k1ll" -> kill
        else:
            chars.append(_LEET[c])
    return "".join(chars)


def _leet_sub(match: re.Match[str]) -> str:
    token = match.group()
    # Long unbroken runs are identifiers, hashes or base64, not words in disguise.
    if match.group("skip") is not None or len(token) > _LEET_MAX_TOKEN:
        return token
    return _fold_leet_token(token)


def _rejoin(match: re.Match[str]) -> str:
    units = match.group()[:: len(match.group("sep")) + 1]
    letters = sum(1 for c in units if c.isalpha())
    # "1.2.3" and "10 0 1" are numbers, not a word spelled out.
    if letters < 2 or letters * 2 < len(units):
        return match.group()
    return units


def _deobfuscate(text: str) -> str:
    if _SPACED.search(text):
        text = _SPACED.sub(_rejoin, text)
    if _LEET_HINT.search(text):
        text = _fold_leet(text)
    return text


def _fold_leet(text: str) -> str:
    # Only the space-delimited chunks around a letter/leet-character contact are
    # rescanned; canonical text has no whitespace but " " and "\n".
    out: list[str] = []
    done = 0
    for m in _LEET_HINT.finditer(text):
        if m.start() < done:
            continue
        start = max(text.rfind(" ", done, m.start()), text.rfind("\n", done, m.start())) + 1
        start = max(start, done)
        ends = [e for e in (text.find(" ", m.end()), text.find("\n", m.end())) if e >= 0]
        end = min(ends) if ends else len(text)
        out.append(text[done:start])
        out.append(_LEET_SCAN.sub(_leet_sub, text[start:end]))
        done = end
    out.append(text[done:])
    return "".join(out)


# --- decoded payloads -------------------------------------------------------------------


class _Budget:
    """Bytes of payload still allowed to be decoded for one call of :func:`variants`."""

    __slots__ = ("left",)

    def __init__(self, left: int) -> None:
        self.left = left

    def take(self, n: int) -> bool:
        if n > self.left:
            return False
        self.left -= n
        return True


def _looks_like_text(s: str) -> bool:
    stripped = s.strip()
    if len(stripped) < 3:
        return False
    printable = sum(1 for c in s if c.isprintable() or c in "\t\n\r")
    if printable < 0.95 * len(s):
        return False
    visible = [c for c in stripped if not c.isspace()]
    letters = [c for c in visible if c.isalpha()]
    if len(letters) < 0.5 * len(visible):
        return False
    # Random bytes that happen to be valid UTF-8 scatter over scripts ("Rwhr鞞ם");
    # real text sticks to Latin plus at most one other script.
    scripts = {_script(c) for c in letters if not c.isascii()}
    scripts.discard("LATIN")
    return len(scripts) <= 1


def _script(c: str) -> str:
    word = unicodedata.name(c, "UNKNOWN").split(" ", 1)[0]
    return "CJK" if word in ("HIRAGANA", "KATAKANA") else word


def _bytes_to_text(data: bytes) -> str | None:
    try:
        s = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return s if _looks_like_text(s) else None


_B64_RUN = re.compile(r"(?<![A-Za-z0-9+/\-_=])[A-Za-z0-9+/\-_]{12,}={0,2}(?![A-Za-z0-9+/\-_=])")
_B64_SHAPE = re.compile(r"[0-9+/\-_A-Z]")
_URLSAFE_TO_STD = str.maketrans("-_", "+/")
_ROT13 = str.maketrans(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
    "NOPQRSTUVWXYZABCDEFGHIJKLMnopqrstuvwxyzabcdefghijklm",
)


def _b64_text(run: str) -> str | None:
    body = run.rstrip("=")
    if len(body) % 4 == 1:
        return None
    if "-" in body or "_" in body:
        if "+" in body or "/" in body:
            return None
        body = body.translate(_URLSAFE_TO_STD)
    try:
        data = base64.b64decode(body + "=" * (-len(body) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None
    return _bytes_to_text(data)


def _decode_base64(text: str, budget: _Budget) -> str | None:
    def sub(match: re.Match[str]) -> str:
        run = match.group()
        # A plain word ("Undocumented", "internationalization") is no payload: real
        # base64 of text mixes in digits, "+/" or capitals past the first letter.
        if not _B64_SHAPE.search(run, 1) or not budget.take(len(run)):
            return run
        decoded = _b64_text(run)
        if decoded is None:
            # base64 hidden under rot13 (letters rotated, digits and +/ untouched)
            decoded = _b64_text(run.translate(_ROT13))
        return run if decoded is None else decoded

    if not _B64_RUN.search(text):
        return None
    return _B64_RUN.sub(sub, text)


_HEX_RUN = re.compile(
    r"(?:\\x[0-9A-Fa-f]{2}){3,}"  # \x6b\x69\x6c\x6c
    r"|(?:0x[0-9A-Fa-f]{2}[ ,]{1,2}){3,}0x[0-9A-Fa-f]{2}\b"  # 0x6b 0x69 0x6c 0x6c
    r"|\b[0-9A-Fa-f]{2}(?P<sep>[ :,\-])(?:[0-9A-Fa-f]{2}(?P=sep)){4,}[0-9A-Fa-f]{2}\b"  # 6b 69 6c
    r"|\b(?:0x)?(?:[0-9A-Fa-f]{2}){8,}\b"  # 6b696c6c20746865
)
_HEX_DIGITS = re.compile(r"[0-9A-Fa-f]{2}")


def _decode_hex(text: str, budget: _Budget) -> str | None:
    # Every hex-encoded printable ASCII byte has a decimal digit (0x20-0x7e), so a
    # payload of three bytes or more shows at least three digits: a cheap gate.
    if sum(text.count(d) for d in "0123456789") < 3:
        return None

    def sub(match: re.Match[str]) -> str:
        run = match.group()
        if not budget.take(len(run)):
            return run
        if run.startswith("0x") and " " not in run and "," not in run:
            run = run[2:]
        pairs = _HEX_DIGITS.findall(run.replace("0x", " ").replace("\\x", " "))
        # Spaced pairs of plain decimal digits ("20 21 22 23 24 25") are number lists.
        if match.group("sep") is not None and not any(c.isalpha() for c in run):
            return match.group()
        decoded = _bytes_to_text(bytes.fromhex("".join(pairs)))
        return match.group() if decoded is None else decoded

    if not _HEX_RUN.search(text):
        return None
    return _HEX_RUN.sub(sub, text)


_PERCENT = re.compile(r"%[0-9A-Fa-f]{2}")
_NUMERIC_ENTITY = re.compile(r"&#(?:[xX][0-9A-Fa-f]{1,6}|\d{1,7});")


def _decode_url(text: str, budget: _Budget) -> str | None:
    # A handful of %20 in a link is ordinary; three or more escapes is worth a reading.
    if "%" not in text or len(_PERCENT.findall(text)) < 3 or not budget.take(len(text)):
        return None
    decoded = unquote(text, errors="replace")
    return decoded if _looks_like_text(decoded) else None


def _decode_entities(text: str, budget: _Budget) -> str | None:
    if "&#" not in text or len(_NUMERIC_ENTITY.findall(text)) < 3:
        return None
    if not budget.take(len(text)):
        return None
    return html.unescape(text)


def _decode_tags(original: str, budget: _Budget) -> str | None:
    # "ASCII smuggling": text spelled in invisible Unicode tag characters.
    smuggled = False

    def sub(match: re.Match[str]) -> str:
        nonlocal smuggled
        run = match.group()
        if _drop_tags(match) or len(run) < 3 or not budget.take(len(run)):
            return run  # an emoji tag sequence, or too short to spell anything
        smuggled = True
        return "".join(chr(ord(c) - 0xE0000) if 0xE0020 <= ord(c) < 0xE007F else "" for c in run)

    if original.isascii() or not _TAG_RUN.search(original):
        return None
    revealed = _TAG_RUN.sub(sub, original)
    return revealed if smuggled else None


# Common English words: the rot13 check asks whether rotating the letters makes more of
# them appear. Rot13 pairs that are both English ("be" <-> "or") cancel out.
_ENGLISH_WORDS = """
    the be to of and a in that have i it for not on with he as you do at this but his
    by from they we say her she or an will my one all would there their what so up out if
    about who get which go me when make can like time no just him know take people into
    year your good some could them see other than then now look only come its over think
    also back after use two how our work first well way even new want because any these
    give day most us is are was were has had been did does please tell write explain help
    where why should here more very much many need find want show step steps using make
    process file system data code question answer story friend money home"""
_ENGLISH = frozenset(_ENGLISH_WORDS.split())
_ROTATED_ENGLISH = frozenset(w.translate(_ROT13) for w in _ENGLISH) - _ENGLISH
_WORD = re.compile(r"[A-Za-z]+")
# Log relative frequency of each letter in English text, a..z.
# fmt: off
_LETTER_FREQ = (
    8.2, 1.5, 2.8, 4.3, 12.7, 2.2, 2.0, 6.1, 7.0, 0.15, 0.77, 4.0, 2.4,
    6.7, 7.5, 1.9, 0.095, 6.0, 6.3, 9.1, 2.8, 0.98, 2.4, 0.15, 2.0, 0.074,
)
# fmt: on


def _english_letter_score(counts: list[int]) -> float:
    total = sum(counts)
    if not total:
        return 0.0
    return sum(n * math.log(f) for n, f in zip(counts, _LETTER_FREQ, strict=True)) / total


def _decode_rot13(text: str, budget: _Budget) -> str | None:
    # Words that become common English only once rotated ("gur" -> "the"); English
    # words around the payload ("please decode this") count neither way.
    words = _WORD.findall(text[:_ROT13_SAMPLE].lower())
    flipped = _ROTATED_ENGLISH.intersection(words)
    if not flipped:
        return None
    rest = "".join(w for w in words if w not in _ENGLISH)
    counts = [rest.count(c) for c in "abcdefghijklmnopqrstuvwxyz"]
    letters = sum(counts)
    # Ordinary English scores about 1.6; rot13 of English about 0.8.
    rotated = _english_letter_score(counts[13:] + counts[:13])
    gain = rotated - _english_letter_score(counts)
    # More English words after rotating, or (for short texts without function words)
    # clearly more English-like letters.
    enough_words = len(flipped) >= 2 and len(flipped) * 10 >= len(words)
    if not ((enough_words and gain > 0) or (letters >= 12 and gain > 0.7 and rotated >= 1.45)):
        return None
    if not budget.take(len(text)):
        return None
    return text.translate(_ROT13)


_Decoder = Callable[[str, _Budget], "str | None"]
_DECODERS: tuple[_Decoder, ...] = (
    _decode_base64,
    _decode_hex,
    _decode_url,
    _decode_entities,
    _decode_rot13,
)


# --- public API -----------------------------------------------------------------------


def _collect(text: str, depth: int, out: list[str], budget: _Budget) -> None:
    canon = _canonical(text)
    out.append(canon)
    deob = _deobfuscate(canon)
    if deob != canon:
        out.append(deob)
    if depth >= _MAX_DEPTH:
        return
    decoded: list[str] = []
    tags = _decode_tags(text, budget)
    if tags is not None:
        decoded.append(tags)
    for decode in _DECODERS:
        result = decode(canon, budget)
        if result is not None and result != canon:
            decoded.append(result)
    for d in decoded:
        _collect(d, depth + 1, out, budget)


def variants(text: str, *, max_variants: int = 6, max_decoded_bytes: int = 64_000) -> list[str]:
    """Readings of ``text`` a detector should score; the first is :func:`canonical`.

    The rest, present only when they differ: spaced-out letters rejoined and leetspeak
    folded; base64, hex, %-escapes, numeric HTML entities, Unicode tag characters and
    rot13 decoded (each decoded text normalized again, nested payloads followed two
    levels deep). Deduplicated, in that order, at most ``max_variants`` strings, and
    at most ``max_decoded_bytes`` of payload decoded.
    """
    if not isinstance(text, str):
        text = decode_bytes(text) if isinstance(text, bytes | bytearray) else str(text)
    found: list[str] = []
    _collect(text, 0, found, _Budget(max(0, max_decoded_bytes)))
    result: list[str] = []
    seen: set[str] = set()
    # Extra variants may together be a few times the input, never unbounded.
    size_left = 4 * len(found[0]) + max(0, max_decoded_bytes)
    for v in found:
        if len(result) >= max(1, max_variants):
            break
        if v in seen or (result and not v):
            continue
        if result:
            if len(v) > size_left:
                continue
            size_left -= len(v)
        seen.add(v)
        result.append(v)
    return result


def canonical(text: str) -> str:
    """NFKC, invisibles and controls removed, look-alike letters folded, spaces collapsed."""
    if not isinstance(text, str):
        text = decode_bytes(text) if isinstance(text, bytes | bytearray) else str(text)
    return _canonical(text)


_C0_EXCEPT_WHITESPACE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def decode_bytes(data: bytes) -> str:
    """Bytes to text without raising: bad UTF-8 becomes U+FFFD, C0 controls but
    tab, newline and carriage return are dropped."""
    if isinstance(data, str):
        text = data
    else:
        try:
            text = bytes(data).decode("utf-8", errors="replace")
        except TypeError:
            text = ""
    return _C0_EXCEPT_WHITESPACE.sub("", text)
