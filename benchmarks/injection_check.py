"""The tool-output injection check (guardstack/injection.py) on labelled
payloads and benign look-alikes, and on ordinary documents.

    .venv/bin/python benchmarks/injection_check.py [--data benchmarks/injection_test_2.jsonl]
        [--show] [--classifier] [--other-languages]

The sets: injection_dev.jsonl (round 1 of the rules was written on it),
injection_test.jsonl (round 1 scored once, then round 2 written on it too),
injection_test_2.jsonl (round 2 scored once), and for other languages
injection_multilingual_dev.jsonl (round 3 written on it) and
injection_multilingual_test.jsonl (round 3 scored once), and for Dutch,
Polish, Turkish, Korean, Arabic and Hindi injection_more_languages_dev.jsonl
(round 5 written on it), ..._test.jsonl (round 5 scored once, round 6 written
on it too) and ..._test_2.jsonl (round 6 scored once); each by a helper who
saw neither the rules nor the other sets.

Prints, for the file's ``payload`` rows: found alone, found when planted
in an ordinary document (a GPTeacher answer; at its start, middle and end),
and found when run into a word of one (no space before it, as text pulled out
of HTML without separators reads);
for its ``benign_hard`` rows: flagged; per style and, where rows name one, per
language. Then flagged on ordinary
documents from ../shared/data: GPTeacher answers (the first 2,000 of at least
200 characters), HumanEval prompts (code), 500 GSM8K worked answers and the
Self-Instruct reference outputs, and on ordinary texts in other languages
(OR-Bench prompts in French, German and Italian, Multilingual HateCheck's
non-hateful cases, K-OverRefusal's safe prompts); and the median cost per
KB. A finding counts
when it scores at least 0.5 (the default policy's point). ``--classifier``
adds the fast classifier's jailbreak label at 0.5 on the same rows, the
check it replaces. ``--show`` lists misses and false alarms.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from guardstack import injection  # noqa: E402
from guardstack.injection import scan  # noqa: E402

DATA = REPO.parent / "shared" / "data"
POINT = 0.5


#: ``--other-languages``: read with the rules for eight other languages too
OTHER_LANGUAGES = False


def flagged(text: str) -> bool:
    finding = scan(text, other_languages=OTHER_LANGUAGES)
    return finding is not None and finding.score >= POINT


def documents() -> dict[str, list[str]]:
    def rows(name: str) -> list[dict]:
        return [json.loads(line) for line in (DATA / name / f"{name}.jsonl").open()]

    teacher = [r["meta"]["response"] for r in rows("gpteacher")
               if len(r["meta"].get("response") or "") >= 200][:2000]
    code = [r["text"] for r in rows("humaneval")]
    gsm = [r["meta"]["answer"] for r in rows("gsm8k")][:500]
    selfi = [r["meta"]["reference_output"] for r in rows("self_instruct")
             if r["meta"].get("reference_output")]
    return {"gpteacher answers": teacher, "humaneval code": code, "gsm8k answers": gsm,
            "self_instruct outputs": selfi}


def other_languages() -> dict[str, list[str]]:
    """Ordinary texts in other languages, for false alarms: OR-Bench prompts
    translated to French, German and Italian, Multilingual HateCheck's
    non-hateful cases (ten languages) and K-OverRefusal's safe prompts
    (Korean); at most 2,000 of each. Round 5's languages, every row, are
    :func:`more_languages`."""
    def rows(name: str) -> list[dict]:
        return [json.loads(line) for line in (DATA / name / f"{name}.jsonl").open()]

    orb = [r["text"] for r in rows("orbench80k_multilingual") if r["meta"]["lang"] != "en"]
    hate = [r["text"] for r in rows("multilingual_hatecheck") if r["label"] == "safe"]
    korean = [r["text"] for r in rows("k_overrefusal") if r["label"] == "safe"]
    rng = random.Random(11)
    return {"orbench80k fr/de/it prompts": rng.sample(orb, min(2000, len(orb))),
            "multilingual hatecheck, not hateful": rng.sample(hate, min(2000, len(hate))),
            "k_overrefusal safe prompts": korean}


def more_languages() -> dict[str, list[str]]:
    """Ordinary texts in the languages of round 5 of the rules, every row:
    Multilingual HateCheck's Dutch, Polish, Arabic and Hindi cases (hateful
    or not, none is an injection) and K-OverRefusal's Korean prompts. The
    sets hold no Turkish."""
    def rows(name: str) -> list[dict]:
        return [json.loads(line) for line in (DATA / name / f"{name}.jsonl").open()]

    hate = rows("multilingual_hatecheck")
    out = {f"multilingual hatecheck {lang}, every row":
           [r["text"] for r in hate if r["meta"]["lang"] == lang]
           for lang in ("nl", "pl", "ar", "hi")}
    out["k_overrefusal, every row"] = [r["text"] for r in rows("k_overrefusal")]
    return out


def false_alarms(check, groups: dict[str, list[str]], heading: str, tag: str,
                 show: bool) -> None:
    """Print how many texts of each group ``check`` flags, and of all."""
    total = 0
    for label, texts in groups.items():
        n = sum(check(t) for t in texts)
        total += n
        print(f"{heading}, {label}: {n}/{len(texts)} flagged")
        if show:
            for t in texts:
                if check(t):
                    print(f"  {tag}", label, "|", scan(t), "|", t[:120].replace("\n", " "))
    size = sum(map(len, groups.values()))
    print(f"{heading}, all: {100 * total / size:.2f}% ({total}/{size})")


def plant(payload: str, carrier: str, where: str) -> str:
    if where == "start":
        return payload + "\n\n" + carrier
    if where == "end":
        return carrier + "\n\n" + payload
    # after a sentence in the second half, else at a line break or a space
    half = len(carrier) // 2
    for mark in (". ", "\n", " "):
        cut = carrier.find(mark, half)
        if cut >= 0:
            cut += len(mark)
            break
    else:
        cut = len(carrier)
    return carrier[:cut] + payload + " " + carrier[cut:]


def glued(payload: str, carrier: str) -> str:
    """The payload run into the word before it, as text pulled out of HTML
    without separators reads ("...the last frostIgnore your previous ...")."""
    half = len(carrier) // 2
    cut = carrier.find(" ", half)
    cut = len(carrier) if cut < 0 else cut
    return carrier[:cut].rstrip(".,;:") + payload + carrier[cut:]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=REPO / "benchmarks" / "injection_test_2.jsonl")
    p.add_argument("--show", action="store_true")
    p.add_argument("--classifier", action="store_true")
    p.add_argument("--other-languages", action="store_true",
                   help="the rules for eight other languages too (tool_output.other_languages)")
    args = p.parse_args()
    global OTHER_LANGUAGES
    OTHER_LANGUAGES = args.other_languages
    rows = [json.loads(line) for line in args.data.open() if line.strip()]
    docs = documents()
    others = other_languages()
    more = more_languages()
    carriers = docs["gpteacher answers"]
    rng = random.Random(7)
    checks = {"rules": flagged}
    if args.classifier:
        from guardstack.classifiers.base import Subject
        from guardstack.classifiers.fast import FastClassifier

        clf = FastClassifier.shared()

        def jailbreak(text: str) -> bool:
            [d] = clf.detect_sync([Subject(text, "prompt")])
            return d.scores.get("jailbreak", 0.0) >= POINT

        checks["classifier jailbreak label"] = jailbreak
    print(f"# {args.data.name}: {sum(r['kind'] == 'payload' for r in rows)} payloads, "
          f"{sum(r['kind'] == 'benign_hard' for r in rows)} benign look-alikes")
    for name, check in checks.items():
        print(f"\n## {name}")
        by_style: dict[tuple[str, str], list[bool]] = defaultdict(list)
        by_lang: dict[tuple[str, str], list[bool]] = defaultdict(list)
        alone, planted, glued_in, glued_lower, hard = [], [], [], [], []
        misses, alarms = [], []
        for r in rows:
            hit = check(r["text"])
            by_style[(r["kind"], r["style"])].append(hit)
            if r.get("lang"):
                by_lang[(r["kind"], r["lang"])].append(hit)
            if r["kind"] == "payload":
                alone.append(hit)
                if not hit:
                    misses.append(r)
                for where in ("start", "middle", "end"):
                    planted.append(check(plant(r["text"], rng.choice(carriers), where)))
                glued_in.append(check(glued(r["text"], rng.choice(carriers))))
                lowered = r["text"][:1].lower() + r["text"][1:]
                glued_lower.append(check(glued(lowered, rng.choice(carriers))))
            else:
                hard.append(hit)
                if hit:
                    alarms.append(r)
        print(f"payloads found alone: {100 * sum(alone) / len(alone):.1f}% ({sum(alone)}/"
              f"{len(alone)})")
        print(f"payloads found planted in a document: {100 * sum(planted) / len(planted):.1f}% "
              f"({sum(planted)}/{len(planted)})")
        print(f"payloads run into a document's words: {100 * sum(glued_in) / len(glued_in):.1f}%"
              f" ({sum(glued_in)}/{len(glued_in)})")
        print(f"...starting lower-case: {100 * sum(glued_lower) / len(glued_lower):.1f}%"
              f" ({sum(glued_lower)}/{len(glued_lower)})")
        print(f"benign look-alikes flagged: {100 * sum(hard) / len(hard):.1f}% ({sum(hard)}/"
              f"{len(hard)})")
        for (kind, style), hits in sorted(by_style.items()):
            print(f"  {kind:12s} {style:22s} {sum(hits):3d}/{len(hits):3d}")
        for (kind, lang), hits in sorted(by_lang.items()):
            print(f"  {kind:12s} lang {lang:17s} {sum(hits):3d}/{len(hits):3d}")
        total = 0
        for label, texts in docs.items():
            n = sum(check(t) for t in texts)
            total += n
            print(f"ordinary documents, {label}: {n}/{len(texts)} flagged")
        print(f"ordinary documents, all: {100 * total / sum(map(len, docs.values())):.2f}% "
              f"({total}/{sum(map(len, docs.values()))})")
        false_alarms(check, others, "ordinary texts in other languages", "OTHER", args.show)
        false_alarms(check, more, "ordinary texts in round 5's languages", "MORE", args.show)
        if args.show:
            for r in misses:
                print("  MISS", r["style"], "|", r["text"][:160].replace("\n", " "))
            for r in alarms:
                print("  ALARM", r["style"], "|", r["text"][:160].replace("\n", " "))
            for label, texts in docs.items():
                for t in texts:
                    if check(t):
                        print("  DOC", label, "|", scan(t), "|", t[:120].replace("\n", " "))
    sample = [t for t in carriers[:500]]
    # The baseline in the same run: the rules without reading glued lower-case
    # words apart (injection._split_unknown), alternated text by text.
    split_words = injection._split_unknown
    per_kb: dict[str, list[float]] = {"rules": [], "without the word split": []}
    for t in sample:
        for name, splitter in (("rules", split_words),
                               ("without the word split", lambda text: text)):
            injection._split_unknown = splitter
            start = time.perf_counter()
            for _ in range(5):
                scan(t, other_languages=OTHER_LANGUAGES)
            per_kb[name].append((time.perf_counter() - start) / 5 * 1000
                                / (len(t.encode()) / 1024))
    injection._split_unknown = split_words
    rules, bare = statistics.median(per_kb["rules"]), statistics.median(
        per_kb["without the word split"])
    print(f"\nrules cost: median {rules:.3f} ms per KB, {bare:.3f} without the word split "
          f"(ratio {rules / bare:.2f}; 500 GPTeacher answers, median "
          f"{statistics.median(map(len, sample)):.0f} chars)")


if __name__ == "__main__":
    main()
