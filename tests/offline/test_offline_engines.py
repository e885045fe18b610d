"""The Ray engine gives the same findings as the local engine."""

from __future__ import annotations

import pytest

from guardstack.offline.analysis import analyze

ray = pytest.importorskip("ray", reason="--engine ray needs ray[data] (see docs/offline.md)")


def _findings(result) -> list[tuple]:
    return sorted((f.user, f.label, f.category, round(f.score, 4), f.case_id,
                   tuple(e.get("message_id") for e in f.evidence)) for f in result.findings)


def test_ray_and_local_engines_agree(loaded_store):
    local = analyze(loaded_store, engine="local", write=False)
    distributed = analyze(loaded_store, engine="ray", write=False)
    assert local.findings, "the test data should produce findings"
    assert _findings(distributed) == _findings(local)
    assert [c.as_dict() for c in distributed.cases] == [c.as_dict() for c in local.cases]
    assert [(r.user, r.risk, r.trajectory, r.chains) for r in distributed.results] == \
        [(r.user, r.risk, r.trajectory, r.chains) for r in local.results]
