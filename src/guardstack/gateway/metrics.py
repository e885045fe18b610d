"""Prometheus metrics. Each app gets its own registry so several gateways
(tests, benchmarks) can live in one process."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from guardstack.verdict import Verdict

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("guardstack_requests_total", "Requests answered by the gateway.",
                                ["endpoint", "status"], registry=r)
        self.decisions = Counter("guardstack_decisions_total",
                                 "Guard decisions, by role, decision and category "
                                 "('none' when no category crossed).",
                                 ["role", "decision", "category"], registry=r)
        self.classifier_errors = Counter("guardstack_classifier_errors_total",
                                         "Checks that failed and were resolved by fail mode.",
                                         ["role", "decision"], registry=r)
        self.classifier_seconds = Histogram("guardstack_classifier_seconds",
                                            "Time spent in the classifier per check.", ["role"],
                                            buckets=_LATENCY_BUCKETS, registry=r)
        self.classifier_batch = Histogram("guardstack_classifier_batch_size",
                                          "Subjects scored per classifier call (concurrent "
                                          "checks share calls).",
                                          buckets=(1, 2, 4, 8, 16, 32, 64, 128), registry=r)
        self.upstream_seconds = Histogram("guardstack_upstream_seconds",
                                          "Upstream time to response headers.", ["endpoint"],
                                          buckets=_LATENCY_BUCKETS, registry=r)
        self.would_block = Counter("guardstack_would_block_total",
                                   "Checks the policy's monitor mode flagged where its rules "
                                   "would have blocked.", ["role"], registry=r)
        self.masked = Counter("guardstack_masked_total",
                              "Finds of the policy's masking blocklists replaced by a "
                              "placeholder, by role and list.", ["role", "blocklist"], registry=r)
        self.tactics = Counter("guardstack_jailbreak_tactics_total",
                               "Prompts that used a jailbreak tactic (refusal suppression, "
                               "prefix injection, an unrestricted persona, a claim that the "
                               "rules are off, decode-and-answer), whatever their verdict.",
                               ["tactic"], registry=r)
        self.halts = Counter("guardstack_stream_halts_total",
                             "Streams the output check ended with finish_reason=content_filter.",
                             registry=r)
        self.leaked_tokens = Counter("guardstack_unsafe_tokens_released_total",
                                     "Tokens of a halted stream that reached the client before "
                                     "the check that halted it (bounded by hold_back).",
                                     registry=r)
        self.rate_limited = Counter("guardstack_rate_limited_total",
                                    "Requests refused with 429.", registry=r)
        self.queue_depth = Gauge("guardstack_event_queue_depth",
                                 "Events waiting in the event writer's queue.", registry=r)

    def observe_verdict(self, v: Verdict) -> None:
        for cat in v.categories or ("none",):
            self.decisions.labels(role=v.role, decision=v.decision.value, category=cat).inc()
        if v.status.value != "ok":
            self.classifier_errors.labels(role=v.role, decision=v.decision.value).inc()
        if v.monitored:
            self.would_block.labels(role=v.role).inc()

    def observe_masked(self, masked: dict[str, dict[str, int]]) -> None:
        for role, by_list in masked.items():
            for list_id, n in by_list.items():
                self.masked.labels(role=role, blocklist=list_id).inc(n)

    def observe_tactics(self, tactics: list[str]) -> None:
        for tactic in tactics:
            self.tactics.labels(tactic=tactic).inc()

    def track_queue_depth(self, read: Callable[[], int]) -> None:
        self.queue_depth.set_function(lambda: float(read()))

    def render(self) -> bytes:
        return generate_latest(self.registry)
