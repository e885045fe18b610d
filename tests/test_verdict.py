import json

from guardstack.verdict import Action, Status, Verdict


def test_verdict_round_trips_through_json():
    v = Verdict(decision=Action.FLAG, role="response", scores={"harm": 0.61, "cyber": 0.55},
                categories=("cyber",), detector="fast", status=Status.OK, latency_ms=3.25,
                reason="cyber 0.55>=0.5")
    data = json.loads(v.to_json())
    assert data["decision"] == "flag"
    assert data["status"] == "ok"
    assert Verdict.from_dict(data) == v


def test_actions_are_ordered_by_severity():
    assert Action.ALLOW.severity < Action.FLAG.severity < Action.BLOCK.severity
    assert Verdict(decision=Action.BLOCK).blocked
    assert Verdict(decision=Action.FLAG).flagged
    assert not Verdict(decision=Action.ALLOW).flagged
