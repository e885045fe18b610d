"""The one result type every layer speaks: a :class:`Verdict`."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Action(StrEnum):
    """What to do with the judged text; ordered from least to most severe."""

    ALLOW = "allow"
    FLAG = "flag"
    BLOCK = "block"

    @property
    def severity(self) -> int:
        return _SEVERITY[self]


_SEVERITY = {Action.ALLOW: 0, Action.FLAG: 1, Action.BLOCK: 2}


class Status(StrEnum):
    """Whether the detector actually judged the text.

    ``error`` and ``skipped`` verdicts carry the decision the policy's
    fail-open / fail-closed setting gave them, so callers never guess.
    """

    OK = "ok"
    ERROR = "error"
    SKIPPED = "skipped"


@dataclass(frozen=True, slots=True)
class Verdict:
    decision: Action
    role: str = "prompt"
    scores: Mapping[str, float] = field(default_factory=dict)
    categories: tuple[str, ...] = ()
    detector: str = ""
    status: Status = Status.OK
    latency_ms: float = 0.0
    reason: str = ""
    #: ids of the policy's blocklists that matched the text (see guardstack.blocklists)
    blocklists: tuple[str, ...] = ()
    #: ids of the policy's denied topics the text is on (see guardstack.topics)
    topics: tuple[str, ...] = ()
    #: the policy's monitor mode made this a flag: its rules would have blocked
    monitored: bool = False

    @property
    def blocked(self) -> bool:
        return self.decision is Action.BLOCK

    @property
    def flagged(self) -> bool:
        """True when the decision is flag or block."""
        return self.decision is not Action.ALLOW

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "decision": self.decision.value,
            "role": self.role,
            "scores": {k: round(float(v), 6) for k, v in self.scores.items()},
            "categories": list(self.categories),
            "detector": self.detector,
            "status": self.status.value,
            "latency_ms": round(self.latency_ms, 3),
            "reason": self.reason,
        }
        if self.blocklists:
            out["blocklists"] = list(self.blocklists)
        if self.topics:
            out["topics"] = list(self.topics)
        if self.monitored:
            out["monitored"] = True
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Verdict:
        return cls(
            decision=Action(data["decision"]),
            role=data.get("role", "prompt"),
            scores=dict(data.get("scores", {})),
            categories=tuple(data.get("categories", ())),
            detector=data.get("detector", ""),
            status=Status(data.get("status", "ok")),
            latency_ms=float(data.get("latency_ms", 0.0)),
            reason=data.get("reason", ""),
            blocklists=tuple(data.get("blocklists", ())),
            topics=tuple(data.get("topics", ())),
            monitored=bool(data.get("monitored", False)),
        )


def most_severe(verdicts: Sequence[Verdict]) -> Verdict | None:
    """The most severe verdict (block over flag over allow); among equals the
    last, which saw the most text (a stream's later checks). None if none."""
    if not verdicts:
        return None
    return max(reversed(verdicts), key=lambda v: v.decision.severity)
