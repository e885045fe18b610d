"""``POST /v1/moderations`` in OpenAI's schema. OpenAI's category names are
projected from ours (taxonomy.openai_scores); our own finer categories, the
decision and the check's status ride along under the ``guardstack`` key."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from guardstack import taxonomy
from guardstack.gateway.judge import Judgement
from guardstack.verdict import Verdict


def result(j: Judgement) -> dict[str, Any]:
    return verdict_result(j.verdict)


def verdict_result(v: Verdict) -> dict[str, Any]:
    """One verdict in OpenAI's moderation-result shape (also the Responses
    API's ``moderation.input`` and ``moderation.output``)."""
    crossed_openai = {name for cat in v.categories if cat in taxonomy.BY_ID
                      for name in taxonomy.BY_ID[cat].openai}
    scores = taxonomy.openai_scores(dict(v.scores))
    return {
        "flagged": v.flagged,
        "categories": {name: name in crossed_openai for name in taxonomy.OPENAI_CATEGORIES},
        "category_scores": {name: round(s, 6) for name, s in scores.items()},
        "category_applied_input_types": {name: ["text"] for name in taxonomy.OPENAI_CATEGORIES},
        "guardstack": {
            "decision": v.decision.value,
            "status": v.status.value,
            "categories": list(v.categories),
            "category_scores": {k: round(float(s), 6) for k, s in v.scores.items()},
            "reason": v.reason,
            "detector": v.detector,
            "blocklists": list(v.blocklists),
            "topics": list(v.topics),
            "monitored": v.monitored,
        },
    }


def response(judgements: Sequence[Judgement], model: str) -> dict[str, Any]:
    return {"id": f"modr-{uuid.uuid4().hex}", "model": model,
            "results": [result(j) for j in judgements]}
