"""guardstack analyze end to end on simulated traffic scored by the real classifier."""

from __future__ import annotations

import json
import re

import pytest
import sqlalchemy as sa

from guardstack.offline.analysis import analyze
from guardstack.offline.quality import evaluate
from guardstack.offline.settings import SETTINGS, AnalysisSettings
from guardstack.store import Accounts
from guardstack.store.schema import CASE_KINDS, analysis_runs, cases, findings, messages


def _count(store, table) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


def test_empty_store_has_nothing_to_analyze(tmp_path, cli, capsys):
    from guardstack.store import Store

    db = f"sqlite:///{tmp_path / 'new.db'}"
    Store(db).migrate()  # the schema, no traffic yet
    assert cli(["analyze", "--db", db, "--quiet"]) == 0
    assert "nothing to analyze" in capsys.readouterr().err


def test_a_mistyped_store_is_an_error_and_is_not_created(tmp_path, cli, capsys):
    # "nothing to analyze" on a typo would read as "no abuse found"
    typo = tmp_path / "typo.db"
    assert cli(["analyze", "--db", f"sqlite:///{typo}", "--quiet"]) == 2
    assert "nothing was stored there" in capsys.readouterr().err
    assert not typo.exists()


def test_a_database_without_the_schema_is_an_error_and_gets_none(tmp_path, cli, capsys):
    other = tmp_path / "other.db"
    other.touch()  # a file that exists, with nothing of guardstack's in it
    assert cli(["analyze", "--db", f"sqlite:///{other}", "--quiet"]) == 2
    assert f"database sqlite:///{other} has no guardstack schema" in capsys.readouterr().err
    assert sa.inspect(sa.create_engine(f"sqlite:///{other}")).get_table_names() == []


def test_json_output_schema(loaded_store, cli, capsys, traffic):
    assert cli(["analyze", "--db", loaded_store.url, "--json", "--quiet"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) >= {"flagged_users", "cases", "clusters"}
    raw_ids = set(traffic.truth["users"])
    for f in out["flagged_users"]:
        assert set(f) >= {"user", "label", "category", "score", "evidence"}
        assert f["label"] in ("malicious", "at_risk", "coordinated")
        assert f["user"].startswith("p-") and f["user"] not in raw_ids
        assert 0.0 <= f["score"] <= 1.0
    for c in out["cases"]:
        assert set(c) >= {"id", "kind", "label", "category", "severity", "score", "status",
                          "evidence", "users"}
        assert c["kind"] in CASE_KINDS
        assert c["status"] in ("open", "confirmed", "dismissed", "escalated")
        assert not set(c["users"]) & raw_ids
    for cl in out["clusters"]:
        assert set(cl) >= {"id", "label", "terms", "users", "messages", "flag_rate", "rising",
                           "examples"}
        assert cl["users"] >= AnalysisSettings().topic_k_anonymity
    # No raw user id and no message text anywhere in the output.
    text = json.dumps(out)
    assert not any(u in text for u in raw_ids)


def test_rerun_over_the_same_window_does_not_duplicate(loaded_store):
    first = analyze(loaded_store)
    n_cases, n_findings = _count(loaded_store, cases), _count(loaded_store, findings)
    assert n_cases == len(first.cases) and n_findings == len(first.findings)
    if first.cases:
        with loaded_store.engine.begin() as conn:
            conn.execute(cases.update().where(cases.c.id == first.cases[0].id)
                         .values(status="confirmed", reviewer="kim"))
    second = analyze(loaded_store)
    assert [c.id for c in second.cases] == [c.id for c in first.cases]
    assert (_count(loaded_store, cases), _count(loaded_store, findings)) == (n_cases, n_findings)
    if first.cases:
        # A reviewer's decision survives the re-run.
        assert second.cases[0].status == "confirmed"
    with loaded_store.engine.connect() as conn:
        statuses = conn.execute(sa.select(analysis_runs.c.status)).scalars().all()
    assert statuses == ["done", "done"]


def test_missing_scores_are_computed_and_stored(loaded_store):
    with loaded_store.engine.begin() as conn:
        conn.execute(messages.update().where(messages.c.id <= 5)
                     .values(scores=None, embedding=None, embedding_dtype=None))
    result = analyze(loaded_store, write=False)
    assert result.rescored == 5
    with loaded_store.engine.connect() as conn:
        missing = conn.execute(sa.select(sa.func.count()).where(
            messages.c.embedding.is_(None))).scalar_one()
    assert missing == 0


def test_window_limits_what_is_read(loaded_store, traffic):
    first = min(r.ts for r in traffic.records)
    from datetime import timedelta

    result = analyze(loaded_store, since=first, until=first + timedelta(days=1), write=False)
    assert 0 < result.messages < len(traffic.records)


def test_analysis_beats_the_per_message_filter(loaded_store, traffic):
    # Structure, not numbers: analysis must separate the target users from the
    # benign ones better than flagging anyone with one high-scoring message.
    result = analyze(loaded_store, write=False)
    ours = evaluate(set(result.flagged_raw_users()), traffic.truth)
    base = evaluate(result.baseline_raw_users(), traffic.truth)

    def merit(m: dict) -> float:
        recall = (m["decomposition_recall"] + m["coordinated_recall"]) / 2
        return recall - m["benign_fpr"]

    assert ours["coordinated_users"] >= 3 and ours["decomposition_users"] >= 1
    assert merit(ours) > merit(base)


def test_enforce_sets_reversible_states_once(loaded_store, cli):
    settings = ["--set", "enforce_severity=low", "--set", "enforce_state=warn"]
    assert cli(["analyze", "--db", loaded_store.url, "--quiet", "--enforce", *settings]) == 0
    with loaded_store.engine.connect() as conn:
        acted = conn.execute(sa.select(cases.c.id, cases.c.kind, cases.c.user_ids,
                                       cases.c.enforcement_action_id)).all()
    accounts = Accounts(loaded_store, cache_ttl=0)
    enforced = [row for row in acted if row.enforcement_action_id is not None]
    assert all(row.kind != "wellbeing" for row in enforced)
    for row in enforced:
        action = next(a for a in accounts.history(row.user_ids[-1])
                      if a.id == row.enforcement_action_id)
        assert action.actor == "analyze" and action.reason == row.id
    before = sum(len(accounts.history(u)) for row in acted for u in row.user_ids)
    assert cli(["analyze", "--db", loaded_store.url, "--quiet", "--enforce", *settings]) == 0
    after = sum(len(accounts.history(u)) for row in acted for u in row.user_ids)
    assert after == before  # the second run acts on nothing new
    if enforced:
        row = enforced[0]
        accounts.reverse(row.enforcement_action_id, "kim", "appeal upheld")
        assert accounts.get_state(row.user_ids[-1]).value == "none"


def test_a_chain_alone_is_for_review_and_never_enforced(loaded_store):
    """The decomposition monitor flags more professionals than attackers on the
    development seeds: a case resting on a chain of requests, each harmless on
    its own, goes to a reviewer and is never enforced, at any severity floor."""
    # chain_threshold 0.8: the fixture's one chain-only user scores between 0.90 and
    # the default 0.92, so its case came and went with small score shifts (a clean
    # run on 2026-11-27 lost it; the ingest path's code was ruled out, the cause was
    # not found). This test is about what enforcement does with such a case.
    result = analyze(loaded_store, settings=AnalysisSettings(enforce_severity="low",
                                                             enforce_state="warn",
                                                             chain_threshold=0.8),
                     do_enforce=True)
    abuse = [c for c in result.cases if c.kind == "abuse"]
    chain_only = [c for c in abuse if not c.enforceable]
    assert chain_only, "the fixture's traffic holds a chain-only case; nothing to test"
    enforced = {e.case_id for e in result.enforced}
    assert not enforced & {c.id for c in chain_only}
    assert enforced & {c.id for c in abuse if c.enforceable}  # the others still are
    for c in chain_only:  # its evidence: steps of a group judged together, no more
        assert c.as_dict()["enforceable"] is False
        assert all(e["why"].startswith("step of a ") for e in c.evidence)
    for c in abuse:
        if c.enforceable:  # its user's own requests crossed the risk floor
            assert any(e["why"].startswith("harm above floor") for e in c.evidence)
    # stored with the case, and the reviewer's page says so
    with loaded_store.engine.connect() as conn:
        stored = dict(conn.execute(sa.select(cases.c.id, cases.c.enforceable)).all())
    assert all(stored[c.id] is c.enforceable for c in result.cases)
    from starlette.testclient import TestClient
    from tests.dashboard.conftest import PASSWORD, login

    from guardstack.dashboard.app import standalone_app
    from guardstack.dashboard.staff import Staff

    Staff(loaded_store).add("rita", "reviewer", PASSWORD, actor="test")
    with TestClient(standalone_app(loaded_store), follow_redirects=False) as client:
        assert login(client, "rita").status_code == 303
        for c in abuse:
            page = client.get(f"/ui/cases/{c.id}").text
            assert ('id="case-review-only"' in page) is not c.enforceable


def test_bad_settings_and_windows_are_clear_errors(loaded_store, cli, capsys):
    assert cli(["analyze", "--db", loaded_store.url, "--set", "nope=1"]) == 2
    assert "unknown setting" in capsys.readouterr().err
    assert cli(["analyze", "--db", loaded_store.url, "--set", "risk_floor=abc"]) == 2
    assert "is not a float" in capsys.readouterr().err
    assert cli(["analyze", "--db", loaded_store.url, "--since", "2026-03-05T00:00:00Z",
                "--until", "2026-03-01T00:00:00Z"]) == 2
    assert "--since must be before --until" in capsys.readouterr().err
    for window in (["--until", "9999-12-31T23:59:59-05:00"], ["--since", "999999999d"],
                   ["--since", "0001-01-01T00:00:00+05:00"]):
        with pytest.raises(SystemExit) as exit_:  # an argparse usage error
            cli(["analyze", "--db", loaded_store.url, *window])
        assert exit_.value.code == 2
        err = capsys.readouterr().err
        assert "Traceback" not in err and window[1] in err


def test_interrupted_analysis_restarts_cleanly(loaded_store, monkeypatch):
    from guardstack.offline import analysis

    def boom(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(analysis, "find_groups", boom)
    with pytest.raises(KeyboardInterrupt):
        analyze(loaded_store)
    assert _count(loaded_store, cases) == 0  # nothing half-written
    monkeypatch.undo()
    result = analyze(loaded_store)
    assert _count(loaded_store, cases) == len(result.cases)
    with loaded_store.engine.connect() as conn:
        statuses = sorted(conn.execute(sa.select(analysis_runs.c.status)).scalars().all())
    assert statuses == ["done", "failed"]


def test_every_setting_is_a_field_and_documented():
    from pathlib import Path

    fields = set(AnalysisSettings.__dataclass_fields__)
    assert fields == set(SETTINGS)
    for name, (default, _) in SETTINGS.items():
        assert getattr(AnalysisSettings(), name) == default
    doc = (Path(__file__).resolve().parents[2] / "docs" / "offline.md").read_text()
    missing = [name for name in SETTINGS if f"`{name}`" not in doc]
    assert missing == []


def test_pseudonyms_resolve_only_through_an_audited_lookup(loaded_store):
    from guardstack.offline.pseudonym import resolve
    from guardstack.store.audit import entries

    result = analyze(loaded_store)
    finding = result.findings[0]
    assert resolve(loaded_store, finding.pseudonym, actor="kim", reason="case review") \
        == finding.user
    (entry,) = entries(loaded_store, subject_user=finding.user)
    assert (entry.actor, entry.action) == ("kim", "pseudonym.resolve")
    assert entry.detail["reason"] == "case review"
    assert resolve(loaded_store, "p-0000000000000000", actor="kim", reason="x") is None


@pytest.mark.parametrize("naive", ["2026-03-05", "2026-03-05T10:30"])
def test_a_time_without_a_zone_is_refused_with_a_hint_that_parses(naive):
    import argparse
    import re

    from guardstack.offline.commands import parse_when

    with pytest.raises(argparse.ArgumentTypeError) as err:
        parse_when(naive)
    [hint] = re.findall(r"e\.g\. (\S+)$", str(err.value))
    assert parse_when(hint).isoformat().startswith(naive[:10])  # the hint itself is accepted


def test_accounts_take_the_pseudonym_analyze_prints_and_audit_the_lookup(loaded_store, cli,
                                                                         capsys):
    from guardstack.store.schema import audit_log, findings

    settings = ["--set", "enforce_severity=low", "--set", "enforce_state=warn"]
    assert cli(["analyze", "--db", loaded_store.url, "--quiet", "--enforce", *settings]) == 0
    out = capsys.readouterr()
    [pseudonym, *_] = re.findall(r"enforced: (p-[0-9a-f]{16})", out.out + out.err) or [None]
    if pseudonym is None:  # nothing enforced on this traffic: any flagged user will do
        with loaded_store.engine.connect() as conn:
            pseudonym = conn.execute(sa.select(findings.c.pseudonym).limit(1)).scalar_one()
    with loaded_store.engine.connect() as conn:
        user = conn.execute(sa.select(findings.c.user_id)
                            .where(findings.c.pseudonym == pseudonym).limit(1)).scalar_one()
    from guardstack.cli import main

    assert main(["accounts", "show", pseudonym, "--db", loaded_store.url,
                 "--actor", "kim"]) == 0
    shown = capsys.readouterr()
    assert shown.out.startswith(f"{user}: ") and f"{pseudonym} is user {user}" in shown.err
    with loaded_store.engine.connect() as conn:
        entry = conn.execute(sa.select(audit_log.c.actor, audit_log.c.subject_user)
                             .where(audit_log.c.action == "pseudonym.resolve")
                             .order_by(audit_log.c.id.desc()).limit(1)).one()
    assert tuple(entry) == ("kim", user)


@pytest.mark.parametrize("k", ["0", "1"])
def test_topic_clusters_cannot_be_set_to_show_a_single_user(k):
    with pytest.raises(ValueError, match="topic_k_anonymity must be at least 2"):
        AnalysisSettings().with_overrides([f"topic_k_anonymity={k}"])
    assert AnalysisSettings().with_overrides(["topic_k_anonymity=2"]).topic_k_anonymity == 2
