"""Over-refusal on everyday traffic: the simulator's benign users (ordinary
people and professionals), every request judged as the gateway judges it,
with the session's earlier requests as context, under the default policy.

    .venv/bin/python benchmarks/simulated_benign.py [--users 400] [--days 14] [--seed 11]
        [--policy FILE]

Prints, per persona group and over all: the share of requests flagged (the
default policy's 0.5 point: answered, recorded) and blocked (its 0.9 point:
refused), the share of users with at least one block, the same figures for
the requests judged alone (no context) in the same run, and the blocked
requests. The simulator's texts were written by this project for layer 3's
tests (guardstack/simulate/scenarios) and were never training data for the
classifier, but they are not an independent benchmark either. The model's
answers are not part of the context here (no model runs): in the gateway a
follow-up also has the answer before it.
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from guardstack.classifiers.base import Message, Subject  # noqa: E402
from guardstack.guard import Guard  # noqa: E402
from guardstack.simulate import SimulationConfig, generate  # noqa: E402
from guardstack.verdict import Action  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--users", type=int, default=400)
    ap.add_argument("--days", type=int, default=14)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--show", type=int, default=25, help="blocked requests to print")
    ap.add_argument("--policy", default=None, help="a policy file (default: the shipped one)")
    args = ap.parse_args()
    traffic = generate(SimulationConfig(users=args.users, days=args.days, seed=args.seed,
                                        mix={"adversary": 0.0}, agents=0))
    users = traffic.truth["users"]
    history: dict[str, list[Message]] = defaultdict(list)
    in_context, alone, who = [], [], []
    for record in traffic.records:
        earlier = tuple(history[record.session])
        in_context.append(Subject(record.content, "prompt", earlier))
        alone.append(Subject(record.content, "prompt"))
        who.append(record.user)
        history[record.session].append(Message("user", record.content))
    guard = Guard(args.policy)
    verdicts = {"with context": guard.check_batch(in_context), "alone": guard.check_batch(alone)}
    print(f"{len(who)} requests from {len(users)} benign users (seed {args.seed}, "
          f"{args.days} days), {args.policy or 'default policy'}")
    print(f"{'group':14s} {'judged':13s} {'requests':>8s} {'flagged':>8s} {'blocked':>8s} "
          f"{'users blocked':>14s}")
    groups = [*sorted({info["persona_group"] for info in users.values()}), "all"]
    for group in groups:
        idx = [i for i, u in enumerate(who) if group == "all"
               or users[u]["persona_group"] == group]
        members = {who[i] for i in idx}
        for judged, vs in verdicts.items():
            flagged = sum(vs[i].decision is Action.FLAG for i in idx)
            blocked = [i for i in idx if vs[i].decision is Action.BLOCK]
            print(f"{group:14s} {judged:13s} {len(idx):8d} {flagged / len(idx):8.1%} "
                  f"{len(blocked) / len(idx):8.1%} "
                  f"{len({who[i] for i in blocked}) / len(members):14.1%}")
    shown = sorted({(round(v.scores.get("harm", 0.0), 3), users[who[i]]["persona"],
                     "/".join(v.categories), in_context[i].text)
                    for i, v in enumerate(verdicts["with context"])
                    if v.decision is Action.BLOCK}, reverse=True)
    print(f"\nblocked with context ({len(shown)} distinct):")
    for score, persona, cats, text in shown[: args.show]:
        print(f"  {score:.3f}  {persona:22s} {cats:14s} {' '.join(text.split())[:90]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
