"""One settings table for offline analysis: ``(name, default, help)`` feeds the
CLI (``--set NAME=VALUE``), docs/offline.md and validation."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

#: name -> (default, help). The dataclass below mirrors it; a test keeps the
#: two and the docs in step.
SETTINGS: dict[str, tuple[Any, str]] = {
    "half_life_days": (7.0, "Half-life of a message's weight in per-user risk."),
    "risk_floor": (0.7, "Harm score a message must exceed to add to per-user risk."),
    "risk_threshold": (1.0, "Decayed sum of harm above the floor that flags a user."),
    "risk_min_messages": (2, "Messages above the floor a user needs before risk can flag "
                             "(one odd question never does)."),
    "attempt_score": (0.9, "Harm score of a request that, wrapped in a jailbreak tactic, "
                           "counts as a jailbreak attempt (the default policy's block "
                           "point)."),
    "attempts_min": (2, "Distinct jailbreak attempts that flag a user; 0 turns it off."),
    "topic_similarity": (0.55, "Cosine similarity for a request to join a topic group "
                               "(decomposition grouping)."),
    "chain_window_days": (21.0, "Longest time span of one decomposition group."),
    "chain_min_messages": (3, "Requests a group needs before its cumulative intent is judged."),
    "elevated_score": (0.15, "Harm score that puts a request on the user's sensitive "
                             "thread (judged as a whole even across topics)."),
    "chain_threshold": (0.92, "Cumulative harm score of a group that flags a chain."),
    "chain_uplift": (0.05, "How much the group's cumulative score must exceed its "
                          "highest single message (the whole is worse than the parts)."),
    "chain_max_groups": (20, "Groups judged per user (highest-scoring first); bounds work."),
    "max_messages_per_user": (2000, "Most recent requests per user the per-user monitors "
                                    "read (risk uses all); bounds time and memory."),
    "crisis_threshold": (0.6, "Crisis score (max of self_harm, psychological_harm) of a "
                              "session that counts as a crisis signal."),
    "crisis_min_sessions": (2, "Sessions with crisis signals needed for the wellbeing queue."),
    "crisis_language": (0.8, "Crisis score of a request that states suicidal ideation in the "
                             "first person, in the words of the C-SSRS screener or PHQ-9 item "
                             "9 (the classifier scores such statements near zero); 0 turns "
                             "it off."),
    "coord_min_users": (3, "Distinct accounts a coordinated group needs."),
    "coord_min_chars": (60, "Shortest request considered for coordination (excludes "
                            "'hello', 'thanks')."),
    "coord_min_messages": (2, "Near-duplicate requests each account must send to count "
                              "as a member of a group."),
    "coord_jaccard": (0.6, "Estimated Jaccard similarity of character 5-gram shingles "
                           "for two requests to be near-duplicates."),
    "coord_cosine": (0.9, "Embedding cosine for two requests to be near-duplicates "
                          "(catches translations)."),
    "coord_window_days": (7.0, "Near-duplicates from two accounts link them only when sent "
                               "within this many days of each other."),
    "coord_burst_days": (4.0, "The bulk (10th-90th percentile of times) of a group's "
                              "near-duplicates must fall within this many days."),
    "coord_max_share": (0.2, "A template sent by more than this share of active users is "
                             "ordinary traffic, not a campaign."),
    "injection_min_users": (2, "Distinct accounts whose agents read the same planted "
                               "instructions in tool results (the gateway's tool-result "
                               "check) before an injection case opens."),
    "topic_k_anonymity": (5, "Topic clusters with fewer distinct users are not shown "
                             "(at least 2)."),
    "topic_clusters": (0, "Number of topic clusters (0: about sqrt(messages / 2), at most 60)."),
    "topic_rising_ratio": (1.5, "Recent flag rate / earlier flag rate that marks a cluster "
                                "as rising."),
    "flag_score": (0.5, "Harm score that counts a message as flagged (topic flag rates, "
                        "the per-message baseline)."),
    "enforce_severity": ("high", "Lowest case severity --enforce acts on "
                                 "(low, medium, high, critical)."),
    "enforce_state": ("rate_limited", "Account state --enforce sets (warn, rate_limited, "
                                      "suspended)."),
}


@dataclass(frozen=True)
class AnalysisSettings:
    half_life_days: float = 7.0
    risk_floor: float = 0.7
    risk_threshold: float = 1.0
    risk_min_messages: int = 2
    attempt_score: float = 0.9
    attempts_min: int = 2
    topic_similarity: float = 0.55
    chain_window_days: float = 21.0
    chain_min_messages: int = 3
    elevated_score: float = 0.15
    chain_threshold: float = 0.92
    chain_uplift: float = 0.05
    chain_max_groups: int = 20
    max_messages_per_user: int = 2000
    crisis_threshold: float = 0.6
    crisis_min_sessions: int = 2
    crisis_language: float = 0.8
    coord_min_users: int = 3
    coord_min_chars: int = 60
    coord_min_messages: int = 2
    coord_jaccard: float = 0.6
    coord_cosine: float = 0.9
    coord_window_days: float = 7.0
    coord_burst_days: float = 4.0
    coord_max_share: float = 0.2
    injection_min_users: int = 2
    topic_k_anonymity: int = 5
    topic_clusters: int = 0
    topic_rising_ratio: float = 1.5
    flag_score: float = 0.5
    enforce_severity: str = "high"
    enforce_state: str = "rate_limited"

    def with_overrides(self, pairs: list[str]) -> AnalysisSettings:
        """``["risk_threshold=2", ...]`` applied on top; ValueError names the bad one."""
        types = {f.name: f.type for f in fields(self)}
        changes: dict[str, Any] = {}
        for pair in pairs:
            name, sep, text = pair.partition("=")
            name = name.strip().replace("-", "_")
            if not sep or name not in types:
                raise ValueError(
                    f"unknown setting {pair!r}: use NAME=VALUE with NAME one of "
                    + ", ".join(sorted(types))
                )
            kind = SETTINGS[name][0]
            try:
                value: Any = type(kind)(text)
            except ValueError:
                raise ValueError(f"setting {name}: {text!r} is not a {type(kind).__name__}") \
                    from None
            changes[name] = value
        return replace(self, **changes).validated()

    def validated(self) -> AnalysisSettings:
        from guardstack.store.accounts import parse_state

        if self.enforce_severity not in SEVERITIES:
            raise ValueError(f"enforce_severity must be one of {', '.join(SEVERITIES)}")
        parse_state(self.enforce_state)
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, int | float) and value < 0:
                raise ValueError(f"setting {f.name} must be >= 0, got {value}")
        if self.attempt_score > 1:
            raise ValueError(f"attempt_score is a score in [0, 1], got {self.attempt_score}")
        if self.crisis_language > 1:
            raise ValueError(f"crisis_language is a score in [0, 1], got {self.crisis_language}")
        if self.coord_min_users < 2:
            raise ValueError("coord_min_users must be at least 2")
        if self.injection_min_users < 1:
            raise ValueError("injection_min_users must be at least 1")
        if self.topic_k_anonymity < 2:
            # a cluster of one user is that user's own messages (docs/privacy.md)
            raise ValueError("topic_k_anonymity must be at least 2")
        return self


SEVERITIES = ("low", "medium", "high", "critical")
