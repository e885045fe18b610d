"""The demo's report, built from the event store (what the gateway recorded
and what ``guardstack analyze`` wrote), the analysis output and the
simulator's ground truth; rendered as a short text for the terminal.

Texts in the report are the users' requests, cut to a short one-line
snippet; model answers are never quoted (a halted answer is the part a
reader should not see)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import sqlalchemy as sa

from guardstack.store import Store
from guardstack.store.schema import cases, exchanges, findings, messages

SNIPPET_CHARS = 72
EXAMPLES = 2
#: Labels layer 3 can give, in the order the report lists them.
LABELS = ("malicious", "coordinated", "at_risk")


def snippet(text: str, limit: int = SNIPPET_CHARS) -> str:
    """One line, at most ``limit`` characters, an ellipsis where it was cut."""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1].rstrip() + "…"


def build(store_url: str, *, analysis: dict[str, Any], truth: dict[str, Any],
          simulate: dict[str, Any]) -> dict[str, Any]:
    personas = {user: info["persona"] for user, info in truth.get("users", {}).items()}
    benign = {user for user, info in truth.get("users", {}).items() if info["label"] == "benign"}
    store = Store(store_url)
    try:
        with store.engine.connect() as conn:
            gateway = _gateway(conn, personas, benign)
            layer3 = _layer3(conn, analysis, truth, personas)
    finally:
        store.dispose()
    return {"traffic": {"users": simulate.get("users"), "labels": simulate.get("labels", {}),
                        "gateway": simulate.get("gateway", {})},
            "gateway": gateway, "layer3": layer3}


def _gateway(conn: sa.Connection, personas: dict[str, str], benign: set[str]
             ) -> dict[str, Any]:
    rows = conn.execute(sa.select(exchanges.c.id, exchanges.c.user_id, exchanges.c.stream,
                                  exchanges.c.prompt_decision, exchanges.c.response_decision,
                                  exchanges.c.halted, exchanges.c.extra)
                        .order_by(exchanges.c.ts_start)).mappings().all()
    judged = conn.execute(sa.select(messages.c.exchange_id, messages.c.role, messages.c.content,
                                    messages.c.categories, messages.c.scores)).mappings().all()
    by_exchange: dict[str, dict[str, Any]] = {}
    for m in judged:
        by_exchange.setdefault(m["exchange_id"], {})[m["role"]] = m
    decisions = Counter(r["prompt_decision"] or "none" for r in rows)
    blocked = [r for r in rows if r["prompt_decision"] == "block"]
    flagged = [r for r in rows if r["prompt_decision"] == "flag"]
    halted = [r for r in rows if r["halted"]]
    tool_verdicts = [v for r in rows for v in (r["extra"] or {}).get("tool_output") or ()
                     if isinstance(v, dict)]
    return {
        "exchanges": len(rows),
        "streamed": sum(1 for r in rows if r["stream"]),
        "prompt_decisions": dict(sorted(decisions.items())),
        "blocked": _summary(blocked, "user", by_exchange, personas, benign),
        # Let through to the model, answer still checked, recorded for layer 3.
        "flagged": _summary(flagged, "user", by_exchange, personas, benign),
        "halted": {**_summary(halted, "assistant", by_exchange, personas, benign),
                   "unsafe_tokens_released": sum(int((r["extra"] or {}).get(
                       "unsafe_tokens_released") or 0) for r in halted)},
        # Tool results agents read (the injection check), apart from prompts.
        "tool_results": {"read": len(tool_verdicts),
                         "injections": sum(1 for v in tool_verdicts
                                           if v.get("decision") in ("flag", "block")),
                         # answers that repeated where the planted words point
                         "followed": sum(1 for r in rows
                                         if (r["extra"] or {}).get("tool_output_followed"))},
    }


def _summary(rows: list[Any], role: str, by_exchange: dict[str, dict[str, Any]],
             personas: dict[str, str], benign: set[str]) -> dict[str, Any]:
    """Counts by category and by (simulated) persona, and a few examples: the
    request that was blocked or whose answer was halted, the categories that
    decided it and their highest score."""
    categories: Counter[str] = Counter()
    by_persona: Counter[str] = Counter()
    examples: list[dict[str, Any]] = []
    for row in rows:
        judged = by_exchange.get(row["id"], {})
        verdict = judged.get(role) or {}
        cats = list(verdict.get("categories") or []) or ["unknown"]
        categories.update(cats)
        persona = personas.get(row["user_id"] or "", "unknown")
        by_persona[persona] += 1
        request = judged.get("user")
        if request is not None and len(examples) < EXAMPLES \
                and persona not in {e["persona"] for e in examples}:
            scores = verdict.get("scores") or {}
            examples.append({"persona": persona, "categories": cats,
                             "score": round(max((float(scores.get(c, 0.0)) for c in cats),
                                                default=0.0), 2),
                             "request": snippet(request["content"])})
    return {"count": len(rows),
            # Requests of users the simulator made benign: over-refusal.
            "from_benign_users": sum(1 for r in rows if r["user_id"] in benign),
            "by_category": dict(categories.most_common()),
            "by_persona": dict(by_persona.most_common()), "examples": examples}


def _layer3(conn: sa.Connection, analysis: dict[str, Any], truth: dict[str, Any],
            personas: dict[str, str]) -> dict[str, Any]:
    raw_users = {row.id: list(row.user_ids or []) for row in
                 conn.execute(sa.select(cases.c.id, cases.c.user_ids))}
    listed = []
    for case in analysis.get("cases", []):
        users = raw_users.get(case["id"], [])
        evidence = case.get("evidence") or []
        message_ids = {mid for e in evidence
                       for mid in ([e["message_id"]] if "message_id" in e
                                   else e.get("message_ids", []))}
        listed.append({
            "id": case["id"], "kind": case["kind"], "label": case["label"],
            "category": case["category"], "severity": case["severity"],
            "score": case["score"], "subject": case["subject"], "accounts": len(users),
            "enforceable": case.get("enforceable", True),
            "evidence_messages": len(message_ids),
            "why": evidence[0].get("why", "") if evidence else "",
            # The simulator's ground truth for these accounts: the demo can
            # say who they really were; a deployment never knows.
            "personas": dict(Counter(personas.get(u, "unknown") for u in users)),
        })
    flagged: dict[str, set[str]] = {}
    for row in conn.execute(sa.select(findings.c.user_id, findings.c.label)):
        flagged.setdefault(row.label, set()).add(row.user_id)
    any_flag = set().union(*flagged.values()) if flagged else set()
    by_label: dict[str, set[str]] = {}
    for user, info in truth.get("users", {}).items():
        by_label.setdefault(info["label"], set()).add(user)
    recall = {label: {"flagged": len(by_label.get(label, set()) & flagged.get(label, set())),
                      "of": len(by_label.get(label, set()))} for label in LABELS}
    benign = by_label.get("benign", set())
    against: dict[str, Any] = {**recall, "benign_flagged": {"flagged": len(benign & any_flag),
                                                            "of": len(benign)}}
    planted = set((truth.get("injection") or {}).get("users") or ())
    if planted:
        # Accounts whose agents read the campaign's planted page: victims, found
        # by an injection case rather than flagged.
        reached = {u for c in analysis.get("cases", []) if c["kind"] == "injection"
                   for u in raw_users.get(c["id"], [])}
        against["attacked"] = {"flagged": len(planted & reached), "of": len(planted)}
    return {"run": analysis.get("run", {}).get("id"), "cases": listed, "against_truth": against}


def render(report: dict[str, Any]) -> str:
    out: list[str] = []
    traffic, gw, l3 = report["traffic"], report["gateway"], report["layer3"]
    labels = ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in traffic["labels"].items())
    sim = traffic.get("gateway") or {}
    out.append("guardstack demo report")
    out.append("======================")
    out.append(f"Traffic: {traffic['users']} simulated users ({labels}) sent {sim.get('sent', 0)} "
               f"requests; {gw['exchanges']} exchanges recorded ({gw['streamed']} streamed)"
               + (f"; {sim['errors']} errors" if sim.get("errors") else "") + ".")
    out.append("")
    out.append("Layer 2, each request on its own (the gateway):")
    decisions = ", ".join(f"{k} {n}" for k, n in gw["prompt_decisions"].items())
    out.append(f"  prompt decisions: {decisions}")
    _section(out, "blocked before the model", gw["blocked"])
    _section(out, "flagged, answered, answer checked", gw["flagged"], refused=False)
    _section(out, "halted mid-stream", gw["halted"],
             extra=f"; unsafe tokens shown before the halt: "
                   f"{gw['halted']['unsafe_tokens_released']}")
    tools = gw.get("tool_results") or {}
    if tools.get("read"):
        out.append(f"  tool results agents read: {tools['read']}, with planted instructions "
                   f"(indirect prompt injection, flagged): {tools['injections']}; answers that "
                   f"repeated where they point: {tools.get('followed', 0)}")
    out.append("")
    out.append("Layer 3, across users and sessions (guardstack analyze):")
    if not l3["cases"]:
        out.append("  no user flagged")
    for case in l3["cases"]:
        who = ", ".join(f"{p} x{n}" if n > 1 else p for p, n in case["personas"].items())
        accounts = f"{case['accounts']} accounts" if case["accounts"] > 1 else case["subject"]
        out.append(f"  {case['label']:<11} {case['category'] or '-':<17} {case['severity']:<8} "
                   f"score {case['score']:.2f}  {accounts}  (simulated as: {who})")
        review_only = ("; for review only: --enforce never acts on a chain alone"
                       if case["kind"] == "abuse" and not case["enforceable"] else "")
        out.append(f"      evidence: {case['evidence_messages']} messages; {case['why']}"
                   + review_only)
    truth = l3["against_truth"]
    parts = [f"{k.replace('_', ' ')} {v['flagged']}/{v['of']}" for k, v in truth.items()
             if k not in ("benign_flagged", "attacked")]
    if "attacked" in truth:
        a = truth["attacked"]
        parts.append(f"accounts whose agents read the planted page {a['flagged']}/{a['of']}")
    bf = truth["benign_flagged"]
    out.append(f"  against the simulator's ground truth: found {', '.join(parts)}; "
               f"benign users flagged {bf['flagged']}/{bf['of']}")
    return "\n".join(out)


def _section(out: list[str], title: str, part: dict[str, Any], extra: str = "",
             refused: bool = True) -> None:
    if not part["count"]:
        out.append(f"  {title}: none{extra if extra and part['count'] else ''}")
        return
    cats = ", ".join(f"{c} {n}" for c, n in part["by_category"].items())
    who = ", ".join(f"{p} {n}" for p, n in part["by_persona"].items())
    out.append(f"  {title}: {part['count']} (categories: {cats}){extra}")
    # A benign user's request that was refused is over-refusal; one that was
    # answered with a flag is not.
    benign = "from benign users (over-refusal)" if refused else "from benign users"
    out.append(f"    by simulated persona: {who}; {benign}: {part['from_benign_users']}")
    for e in part["examples"]:
        out.append(f"    e.g. [{e['persona']}, {'/'.join(e['categories'])} {e['score']:.2f}] "
                   f"\"{e['request']}\"")
