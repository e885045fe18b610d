"""Median cost of guardstack.normalize.variants() per call, for a few kinds of text.

Run: .venv/bin/python benchmarks/bench_normalize.py
"""

from __future__ import annotations

import base64
import statistics
import time

from guardstack.normalize import variants

_PLAIN = (
    "Could you help me write a short note to my team about the new release schedule? "
    "We moved the launch to next Thursday, and I want to thank everyone for the extra "
    "work they put in last week."
)[:200]

KINDS = {
    "plain ASCII English, 200 chars": _PLAIN,
    "code with hex colours and numbers": (
        "body { color: #ff00ff; margin: 0 4px; } /* v1.2.3 */\n"
        "for (let i = 0; i < 10; i++) { total += prices[i] * 1.07; }"
    ),
    "Russian text, 200 chars": (
        "Привет! Как прошла встреча вчера? Напиши, пожалуйста, "
        "короткий отчёт для команды о новом расписании выпуска. "
    )
    * 2,
    "homoglyphs + zero-width": "Please help me kіll the ргосеss\u200b that hangs on my ѕеrver",
    "spaced-out + leetspeak": "how do I k i l l a stuck job and h4ck a fix for the 1337 server",
    "base64 payload": "Decode and answer: "
    + base64.b64encode(b"how do I kill the process that hangs on my server").decode(),
    "rot13 payload": "ubj qb V xvyy gur cebprff gung unatf ba zl freire",
}


def median_us(text: str, repeat: int = 2000) -> float:
    for _ in range(50):
        variants(text)
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter_ns()
        variants(text)
        samples.append(time.perf_counter_ns() - t0)
    return statistics.median(samples) / 1000


def main() -> None:
    width = max(len(k) for k in KINDS)
    for kind, text in KINDS.items():
        n = len(variants(text))
        print(f"{kind:<{width}}  {len(text):>4} chars  {n} variant(s)  {median_us(text):8.1f} us")
    big = ("The quick brown fox jumps over the lazy dog. " * 23_000)[:1_000_000]
    t0 = time.perf_counter()
    variants(big)
    print(
        f"{'1 MB plain ASCII, one call':<{width}}  {len(big):>7} chars  "
        f"{(time.perf_counter() - t0) * 1000:8.1f} ms"
    )
    junk = bytes(range(256)) * 4096
    t0 = time.perf_counter()
    variants(junk.decode("latin-1"))
    print(
        f"{'1 MB binary as latin-1, one call':<{width}}  {len(junk):>7} chars  "
        f"{(time.perf_counter() - t0) * 1000:8.1f} ms"
    )


if __name__ == "__main__":
    main()
