"""guardstack.normalize: each evasion reads back as the plain word; benign text is left be."""

from __future__ import annotations

import base64
import codecs
import random
from urllib.parse import quote

import pytest

from guardstack.normalize import canonical, decode_bytes, variants

PLAIN = "kill the process"


def _tags(s: str) -> str:
    return "".join(chr(0xE0000 + ord(c)) for c in s)


# --- canonical form -------------------------------------------------------------------


@pytest.mark.parametrize(
    "disguised",
    [
        "kіll the process",  # Cyrillic і
        "kill the рrосеss",  # Cyrillic р, о, с, е
        "kιll the process",  # Greek iota
        "ｋｉｌｌ ｔｈｅ ｐｒｏｃｅｓｓ",  # fullwidth
        "𝐤𝐢𝐥𝐥 𝐭𝐡𝐞 𝐩𝐫𝐨𝐜𝐞𝐬𝐬",  # mathematical bold
        "𝓀𝒾𝓁𝓁 the process",  # mathematical script
        "ⓚⓘⓛⓛ the process",  # circled
        "k\u200bi\u200cl\u200dl the process",  # zero-width space / non-joiner / joiner
        "ki\u00adll the\u2060 process",  # soft hyphen, word joiner
        "\u202ekill\u202c the \ufeffprocess",  # bidi override, BOM
        "k\u0337i\u0337l\u0337l\u0337 the process",  # strike-through combining marks
        "kill \t the\n\n\n  process ",  # whitespace
        "kill\x00 the\x07 process\x1b",  # control characters
        "ᴋɪʟʟ the process",  # small capitals
    ],
)
def test_canonical_folds_disguised_letters_to_the_plain_word(disguised: str) -> None:
    assert canonical(disguised).replace("\n", " ") == PLAIN


def test_canonical_is_the_first_variant() -> None:
    text = "Please kіll the process " + base64.b64encode(b"and explain why it hung").decode()
    assert variants(text)[0] == canonical(text)


@pytest.mark.parametrize(
    "benign",
    [
        "body { color: #ff00ff; background: #0a0b0c; margin: 0 4px; }",
        "The invoice total is $1,234.56, due 2024-03-15 at 10:30 (ref 7741-A).",
        "Visit https://docs.python.org/3/library/re.html?highlight=sub#re.sub for details.",
        "Solve x^2 + 3x - 7 = 0, then check that E = mc² and ∫ x dx = x²/2 + C.",
        "Привет! Как прошла встреча вчера? Напиши короткий отчёт.",
        "我们明天下午三点在会议室见面。",
        "مرحبا، كيف حالك اليوم؟",
        "Great job on the launch 🎉👏 family: 👨\u200d👩\u200d👧 flag: 🏴\U000e0067\U000e0062"
        "\U000e0065\U000e006e\U000e0067\U000e007f keycap: 1️⃣",
        "def area(r: float) -> float:\n    return 3.14159 * r ** 2",
        "sha256 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "Ship the mp3 and h264 files to the x86_64 k8s cluster over ipv4, ask user@example.com",
        "Our hackathon starts at 9am; bring a laptop.",
        "Kill the process with `kill -9 1234` if it hangs.",
    ],
)
def test_benign_text_is_not_mangled_and_gets_no_extra_variants(benign: str) -> None:
    expected = " ".join(benign.split()) if "\n" not in benign else None
    result = variants(benign)
    assert result == [canonical(benign)]
    if expected is not None:
        assert result[0] == expected
    else:
        assert result[0].splitlines()[0] == benign.splitlines()[0]


def test_russian_words_stay_cyrillic_even_next_to_english() -> None:
    text = "Он сказал: привет, world, всё хорошо"
    assert canonical(text) == text


def test_mixed_script_word_is_folded_but_neighbouring_russian_word_is_not() -> None:
    assert canonical("привет kіll") == "привет kill"


def test_superscript_digits_keep_their_meaning() -> None:
    assert canonical("E = mc²") == "E = mc²"


def test_whitespace_collapses_but_line_breaks_survive() -> None:
    assert canonical("  first   line \r\n\r\n  second\tline  ") == "first line\nsecond line"


def test_lone_surrogates_become_replacement_characters() -> None:
    result = variants("\ud800kill\udfff the process")
    assert result[0] == "\ufffdkill\ufffd the process"
    for v in result:
        v.encode("utf-8")  # every variant is encodable


def test_empty_string_has_one_empty_variant() -> None:
    assert variants("") == [""]
    assert variants(" \u200b\t\n ") == [""]


# --- spaced-out letters and leetspeak -----------------------------------------------------


@pytest.mark.parametrize(
    "disguised",
    [
        "k i l l the process",
        "k.i.l.l the process",
        "k-i-l-l the process",
        "k * i * l * l the process",
        "k1ll the process",
        "ki11 the pr0cess",
        "k!ll th3 proc3$$",
        "k 1 l l the process",
    ],
)
def test_spaced_out_letters_and_leetspeak_read_back(disguised: str) -> None:
    result = variants(disguised)
    assert result[0] != PLAIN
    assert PLAIN in result


@pytest.mark.parametrize(
    ("leet", "plain"),
    [
        ("h4ck", "hack"),
        ("l33t h4x0r", "leet haxor"),
        ("n00b", "noob"),
        ("p1ay", "play"),
        ("sk1ll", "skill"),
        ("H4CK", "HACK"),
    ],
)
def test_leetspeak_words_fold(leet: str, plain: str) -> None:
    assert variants(leet) == [leet, plain]


@pytest.mark.parametrize(
    "name",
    [
        "mp3",
        "x86",
        "3d",
        "ipv4",
        "IPv4Network",
        "log1p(x)",
        "_DI4Y",
        "1337",
        "v1.2.3",
        "2nd",
        "user@example.com",
        "name!r",
        "a|b",
        "deadbeef",
        "0x1f3a",
        "U+0041",
    ],
)
def test_ordinary_names_and_numbers_are_not_read_as_leetspeak(name: str) -> None:
    assert variants(name) == [name]


def test_numbers_spelled_with_dots_are_not_rejoined() -> None:
    assert variants("upgrade from 1.2.3 to 10.0.0.1") == ["upgrade from 1.2.3 to 10.0.0.1"]


# --- decoded payloads -------------------------------------------------------------------


def test_base64_of_a_benign_sentence_decodes() -> None:
    payload = base64.b64encode(b"what is the weather like today?").decode()
    result = variants(f"Decode this: {payload}")
    assert result[0] == f"Decode this: {payload}"
    assert "Decode this: what is the weather like today?" in result


def test_urlsafe_base64_decodes() -> None:
    # "??>" encodes to "Pz8-" in the url-safe alphabet: one "-" forces that alphabet.
    payload = base64.urlsafe_b64encode(b"is this ok??> kill the process").decode()
    assert "-" in payload or "_" in payload
    assert "is this ok??> kill the process" in variants(payload)


def test_base64_of_non_latin_text_decodes() -> None:
    payload = base64.b64encode("Привет, как дела?".encode()).decode()
    assert variants(payload)[1:] == ["Привет, как дела?"]


@pytest.mark.parametrize(
    "garbage",
    [
        "QUJDRA",  # too short to be a payload
        base64.b64encode(bytes(range(0, 256, 7))).decode(),  # binary
        base64.b64encode(b"\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b").decode(),
        "Zm9vYmFy" * 3 + "A",  # length 4n+1: invalid
        "internationalization and Undocumented Constantinople",  # words in the alphabet
        "/usr/local/lib/python3.11/site-packages",  # paths in the alphabet
        "Drmhze6EPcv0fN_81Bj-nA",  # a random token
    ],
)
def test_garbage_or_invalid_base64_yields_no_variant(garbage: str) -> None:
    assert variants(garbage) == [canonical(garbage)]


@pytest.mark.parametrize(
    "encoded",
    [
        PLAIN.encode().hex(),
        " ".join(f"{b:02x}" for b in PLAIN.encode()),
        "".join(f"\\x{b:02x}" for b in PLAIN.encode()),
        ", ".join(f"0x{b:02x}" for b in PLAIN.encode()),
        "0x" + PLAIN.encode().hex(),
    ],
)
def test_hex_payloads_decode(encoded: str) -> None:
    assert PLAIN in variants(encoded)


def test_rot13_decodes_when_the_result_reads_as_english() -> None:
    assert variants(codecs.encode(PLAIN, "rot13")) == ["xvyy gur cebprff", PLAIN]


def test_rot13_payload_inside_english_sentence_decodes() -> None:
    text = "Please decode this and answer: " + codecs.encode(
        "kill the process and the rest", "rot13"
    )
    assert any("kill the process and the rest" in v for v in variants(text))


@pytest.mark.parametrize(
    "english",
    [
        "The quick brown fox jumps over the lazy dog",
        "Beautiful is better than ugly. Explicit is better than implicit.",
        "return q + (2*(x & (b-1)) + (q&1) > b)",
        "'zh_sg': 'zh_SG.GB2312',",
    ],
)
def test_english_and_code_are_not_rot13_decoded(english: str) -> None:
    assert variants(english) == [english]


def test_url_encoding_decodes() -> None:
    assert PLAIN + " now" in variants(quote(PLAIN + " now"))
    assert PLAIN in variants("".join(f"%{b:02X}" for b in PLAIN.encode()))


def test_a_link_with_one_escape_is_left_alone() -> None:
    link = "see https://example.com/search?q=hello%20world"
    assert variants(link) == [link]


def test_numeric_html_entities_decode() -> None:
    assert PLAIN in variants("".join(f"&#{ord(c)};" for c in PLAIN))


def test_unicode_tag_smuggling_is_revealed() -> None:
    result = variants("Hello" + _tags(PLAIN))
    assert result[0] == "Hello"
    assert "Hello" + PLAIN in result


def test_base64_hidden_in_rot13_hidden_in_base64_unwraps_two_levels() -> None:
    inner = codecs.encode(PLAIN, "rot13")
    outer = base64.b64encode(inner.encode()).decode()
    assert variants(outer) == [outer, inner, PLAIN]


def test_rot13_of_base64_decodes() -> None:
    payload = codecs.encode(base64.b64encode(PLAIN.encode()).decode(), "rot13")
    assert f"Answer: {PLAIN}" in variants(f"Answer: {payload}")


def test_decoded_payload_is_normalized_again() -> None:
    payload = base64.b64encode("k i l l the рrосеss".encode()).decode()
    assert PLAIN in variants(payload)


def test_nesting_stops_at_depth_two() -> None:
    text = PLAIN
    for _ in range(4):
        text = base64.b64encode(text.encode()).decode()
    result = variants(text)
    assert PLAIN not in result
    assert base64.b64encode(base64.b64encode(PLAIN.encode())).decode() in result


# --- bounds ---------------------------------------------------------------------------------


def test_variants_are_unique_and_capped() -> None:
    text = (
        "k1ll "
        + base64.b64encode(b"what is the weather like today").decode()
        + " "
        + PLAIN.encode().hex()
        + " "
        + "".join(f"&#{ord(c)};" for c in "hello there")
        + " "
        + quote("a b c d")
        + _tags("hi there")
    )
    full = variants(text, max_variants=20)
    assert len(full) > 3
    assert len(set(full)) == len(full)
    assert variants(text, max_variants=3) == full[:3]
    assert variants(text, max_variants=0) == full[:1]


def test_decoded_bytes_are_capped() -> None:
    payloads = " ".join(
        base64.b64encode(f"sentence number {i} reads fine".encode()).decode() for i in range(50)
    )
    capped = variants(payloads, max_decoded_bytes=100)
    decoded = variants(payloads)
    assert len(decoded) == 2 and decoded[1].count("reads fine") == 50
    assert len(capped) == 2 and 0 < capped[1].count("reads fine") < 50
    assert variants(payloads, max_decoded_bytes=0) == [payloads]


def test_megabyte_input_is_handled() -> None:
    big = ("Plain English sentence number one, nothing to see here. " * 20_000)[:1_000_000]
    result = variants(big + " k1ll")
    assert result[0] == big.strip() + " k1ll"
    assert result[1].endswith(" kill")
    assert len(result) == 2


def test_megabyte_of_binary_garbage_never_raises() -> None:
    junk = random.Random(7).randbytes(1_000_000)
    result = variants(junk.decode("latin-1"))
    assert result[0]
    assert all(isinstance(v, str) for v in result)
    assert "\x00" not in result[0]


def test_never_raises_on_random_unicode() -> None:
    rng = random.Random(20240615)
    # Weighted towards the ranges the code treats specially.
    pools = [
        (0x00, 0x80),
        (0x80, 0x250),
        (0x300, 0x370),
        (0x370, 0x530),
        (0x600, 0x700),
        (0x2000, 0x2070),
        (0x2070, 0x20A0),
        (0xD800, 0xE000),
        (0xFE00, 0xFF00),
        (0xFF00, 0xFFF0),
        (0x1D400, 0x1D800),
        (0x1F300, 0x1F700),
        (0xE0000, 0xE0080),
        (0x4E00, 0x4F00),
    ]
    for _ in range(2000):
        n = rng.randrange(0, 60)
        text = "".join(chr(rng.randrange(*rng.choice(pools))) for _ in range(n))
        result = variants(text)
        assert result[0] == canonical(text)
        assert canonical(result[0]) == result[0]  # canonical form is stable
        assert len(result) == len(set(result)) <= 6


def test_decode_bytes_replaces_invalid_utf8_and_drops_controls() -> None:
    assert (
        decode_bytes(b"ok\xff\xfe then\x00\x07 tab\there\r\n")
        == "ok\ufffd\ufffd then tab\there\r\n"
    )
    assert decode_bytes("Привет".encode()) == "Привет"
    assert decode_bytes(b"") == ""
    assert decode_bytes(bytearray(b"a\x00b")) == "ab"


def test_decode_bytes_never_raises_on_random_bytes() -> None:
    rng = random.Random(3)
    for _ in range(500):
        data = rng.randbytes(rng.randrange(0, 200))
        text = decode_bytes(data)
        text.encode("utf-8")
        assert not any(ord(c) < 32 and c not in "\t\n\r" for c in text)
