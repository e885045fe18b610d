import json
import re
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from difflib import SequenceMatcher
from itertools import pairwise

import pytest

from guardstack.simulate.generator import (
    DEFAULT_START,
    MIN_GROUP,
    SimulationConfig,
    SimulationError,
    generate,
    group_sizes,
    plan_counts,
)
from guardstack.simulate.personas import PERSONAS, PROFESSIONAL_KEYS
from guardstack.simulate.sinks import record_line

FIELDS = {"user", "session", "ts", "role", "content", "tenant", "model", "id"}
USER_ID = re.compile(r"^u-[0-9a-f]{12}$")


@pytest.fixture(scope="module")
def traffic():
    return generate(SimulationConfig(users=300, days=21, seed=11))


def _lines(config: SimulationConfig) -> list[str]:
    return [record_line(r.to_json()) for r in generate(config).records]


def test_same_seed_gives_identical_lines_and_truth():
    config = SimulationConfig(users=60, days=7, seed=3)
    first, second = generate(config), generate(config)
    assert [record_line(r.to_json()) for r in first.records] == [
        record_line(r.to_json()) for r in second.records]
    assert json.dumps(first.truth) == json.dumps(second.truth)


def test_different_seeds_give_different_text_and_ids():
    a = generate(SimulationConfig(users=60, days=7, seed=1))
    b = generate(SimulationConfig(users=60, days=7, seed=2))
    assert {r.user for r in a.records}.isdisjoint({r.user for r in b.records})
    assert [r.content for r in a.records] != [r.content for r in b.records]


def test_every_line_follows_the_ingest_schema(traffic):
    for record in traffic.records:
        line = json.loads(record_line(record.to_json()))
        tool = line.pop("tool", None)  # agent turns: the page fetched, ignored by ingest
        assert tool is None or (tool["name"] == "fetch_page" and tool["result"]
                                and tool["url"] in line["content"])
        assert set(line) == FIELDS
        assert all(isinstance(v, str) and v for v in line.values()), line
        assert line["role"] in ("user", "assistant", "system")
        ts = datetime.fromisoformat(line["ts"])
        assert ts.tzinfo is not None and ts.utcoffset() is not None, line["ts"]
        assert USER_ID.match(line["user"])
    ids = [r.id for r in traffic.records]
    assert len(ids) == len(set(ids))


def test_messages_are_time_ordered_overall_and_per_session(traffic):
    stamps = [r.ts.timestamp() for r in traffic.records]
    assert stamps == sorted(stamps)
    sessions = defaultdict(list)
    for record in traffic.records:
        sessions[record.session].append(record)
    for recs in sessions.values():
        assert len({r.user for r in recs}) == 1
        gaps = [(b.ts - a.ts).total_seconds() for a, b in pairwise(recs)]
        assert all(g >= 5 for g in gaps), gaps


def test_traffic_spreads_over_the_requested_days(traffic):
    start = DEFAULT_START
    days = {(r.ts.astimezone(UTC) - start).days for r in traffic.records}
    assert min(r.ts for r in traffic.records) >= start
    # Sessions pushed past the period by the quiet-time rule stay within a day of it.
    assert max(r.ts for r in traffic.records) < start + timedelta(days=22)
    assert len(days) >= 18


def test_sessions_of_one_user_do_not_overlap(traffic):
    spans = defaultdict(dict)
    for record in traffic.records:
        first, last = spans[record.user].get(record.session, (record.ts, record.ts))
        spans[record.user][record.session] = (min(first, record.ts), max(last, record.ts))
    for sessions in spans.values():
        ordered = sorted(sessions.values())
        for (_, end), (begin, _) in pairwise(ordered):
            assert begin > end


def test_default_mix_is_70_15_15():
    truth = generate(SimulationConfig(users=100, days=3, seed=0)).truth
    groups = Counter(u["persona_group"] for u in truth["users"].values())
    assert groups == {"ordinary": 70, "professional": 15, "adversary": 15}


@pytest.mark.parametrize("users", [7, 40, 333, 1000])
def test_persona_counts_match_the_request(users):
    truth = generate(SimulationConfig(users=users, days=2, seed=users)).truth
    assert len(truth["users"]) == users
    got = Counter(u["persona"] for u in truth["users"].values())
    assert {k: v for k, v in truth["counts"].items() if v} == dict(got)
    groups = Counter(u["persona_group"] for u in truth["users"].values())
    # Group shares within one user of 70/15/15 (whole users, largest remainder).
    for name, share in (("ordinary", 0.70), ("professional", 0.15), ("adversary", 0.15)):
        assert abs(groups[name] - share * users) < 1, (name, groups)
    professions = [got[k] for k in PROFESSIONAL_KEYS]
    assert max(professions) - min(professions) <= 1


def test_mix_override_changes_the_counts():
    counts = plan_counts(200, {"adversary": 0.5, "ordinary": 0.5, "professional": 0.0,
                               "coordinated": 1.0, "decomposition": 0, "crescendo": 0,
                               "jailbreak": 0, "crisis": 0, "delusion": 0})
    assert counts["coordinated"] == 100
    assert counts["ordinary"] == 100
    assert sum(counts[k] for k in PROFESSIONAL_KEYS) == 0


def test_too_few_coordinated_accounts_form_no_group():
    counts = plan_counts(10)
    assert counts["coordinated"] == 0
    assert sum(counts.values()) == 10


def test_group_sizes_are_between_three_and_six():
    for accounts in range(MIN_GROUP, 80):
        sizes = group_sizes(accounts)
        assert sum(sizes) == accounts
        assert all(3 <= s <= 6 for s in sizes), (accounts, sizes)
    assert group_sizes(2) == []


@pytest.mark.parametrize("bad", [
    {"users": 0}, {"days": 0}, {"start": datetime(2026, 1, 1)},
    {"mix": {"robots": 1.0}}, {"mix": {"ordinary": -1.0}},
    {"mix": {"ordinary": 0, "professional": 0, "adversary": 0}},
])
def test_bad_settings_are_clear_errors(bad):
    with pytest.raises(SimulationError):
        SimulationConfig(**bad)


def test_user_ids_are_pseudonymous_and_labels_consistent(traffic):
    for user, entry in traffic.truth["users"].items():
        assert USER_ID.match(user)
        assert entry["label"] == PERSONAS[entry["persona"]].label
        assert entry["label"] in ("benign", "malicious", "at_risk", "coordinated")
    assert traffic.truth["labels"] == dict(
        Counter(u["label"] for u in traffic.truth["users"].values()))


def _by_id(traffic):
    return {r.id: r for r in traffic.records}


def test_chain_ids_exist_belong_to_the_user_and_span_sessions(traffic):
    by_id = _by_id(traffic)
    sessions_of = defaultdict(list)
    for record in traffic.records:
        sessions_of[record.session].append(record)
    attackers = [(u, e) for u, e in traffic.truth["users"].items()
                 if e["persona"] == "decomposition"]
    assert attackers
    for user, entry in attackers:
        chain = entry["chain_message_ids"]
        assert len(chain) >= 4
        assert all(by_id[m].user == user for m in chain)
        records = [by_id[m] for m in chain]
        assert [r.ts for r in records] == sorted(r.ts for r in records)
        carriers = {r.session for r in records}
        assert len(carriers) >= 3
        for session in carriers:
            # Unrelated questions are interleaved in every session carrying a step.
            assert any(r.id not in chain for r in sessions_of[session])
    others = [e for e in traffic.truth["users"].values() if e["persona"] != "decomposition"]
    assert all(not e["chain_message_ids"] for e in others)


def test_evidence_ids_exist_and_belong_to_the_user(traffic):
    by_id = _by_id(traffic)
    for user, entry in traffic.truth["users"].items():
        for mid in entry["evidence_message_ids"]:
            assert by_id[mid].user == user
        if entry["label"] == "benign":
            assert not entry["evidence_message_ids"]
        else:
            assert entry["evidence_message_ids"], entry["persona"]


def _similar(a: str, b: str) -> float:
    return SequenceMatcher(None, a.lower(), b.lower()).ratio()


def test_coordinated_groups_send_near_duplicates(traffic):
    by_id = _by_id(traffic)
    groups = traffic.truth["groups"]
    assert groups
    for gid, group in groups.items():
        members = group["members"]
        assert len(members) >= 3
        posts = {u: [by_id[m].content for m in traffic.truth["users"][u]["evidence_message_ids"]]
                 for u in members}
        for user in members:
            assert traffic.truth["users"][user]["group"] == gid
            best = max(_similar(a, b) for other in members if other != user
                       for a in posts[user] for b in posts[other])
            assert best >= 0.8, (gid, user, best)


def test_coordinated_accounts_post_within_a_burst(traffic):
    by_id = _by_id(traffic)
    for group in traffic.truth["groups"].values():
        times = [by_id[m].ts for u in group["members"]
                 for m in traffic.truth["users"][u]["evidence_message_ids"]]
        assert max(times) - min(times) <= timedelta(days=4)


def test_election_campaign_spans_languages():
    # Enough users for several groups, so the multilingual campaign is drawn.
    truth = generate(SimulationConfig(users=1000, days=14, seed=5)).truth
    election = [g for g in truth["groups"].values() if g["campaign"] == "election_persuasion"]
    assert election
    languages = {truth["users"][u]["language"] for g in election for u in g["members"]}
    assert len(languages) >= 2


def test_no_two_benign_users_are_identical(traffic):
    texts = defaultdict(list)
    for record in traffic.records:
        texts[record.user].append(record.content)
    benign = [tuple(texts[u]) for u, e in traffic.truth["users"].items()
              if e["label"] == "benign"]
    assert len(benign) == len(set(benign))


def test_professionals_return_to_their_topic_over_many_sessions(traffic):
    pros = [(u, e) for u, e in traffic.truth["users"].items()
            if e["persona_group"] == "professional"]
    assert {e["persona"] for _, e in pros} == set(PROFESSIONAL_KEYS)
    assert all(e["sessions"] >= 3 for _, e in pros)


def test_trajectories_escalate_over_time(traffic):
    by_user = defaultdict(list)
    for record in traffic.records:
        by_user[record.user].append(record)
    at_risk = [(u, e) for u, e in traffic.truth["users"].items() if e["label"] == "at_risk"]
    assert {e["persona"] for _, e in at_risk} == {"crisis", "delusion"}
    for user, entry in at_risk:
        evidence = set(entry["evidence_message_ids"])
        records = by_user[user]
        first_session = records[0].session
        assert not any(r.id in evidence for r in records if r.session == first_session)
        assert records[-1].session in {r.session for r in records if r.id in evidence}


def test_agent_turns_plant_one_campaign_in_benign_users_pages():
    from guardstack import injection

    config = SimulationConfig(users=60, days=7, seed=4)
    traffic = generate(config)
    truth = traffic.truth
    agents = {u: info["agent"] for u, info in truth["users"].items() if "agent" in info}
    benign = [u for u, info in truth["users"].items() if info["label"] == "benign"]
    assert len(agents) == round(config.agents * len(benign))
    assert all(truth["users"][u]["label"] == "benign" for u in agents)
    planted = truth["injection"]
    assert len(planted["users"]) >= 2
    assert set(planted["users"]) == {u for u, a in agents.items() if a["planted"]}
    turns = {r.user: r for r in traffic.records if r.tool}
    assert set(turns) == set(agents)
    for user, record in turns.items():
        page = record.tool[1]
        assert (planted["planted"] in page) == (user in planted["users"])
        # the gateway's rules find the planted instruction and nothing in clean pages
        assert (injection.scan(page) is not None) == (user in planted["users"])
    # drawn from their own stream: the rest of the traffic is the same without them
    without = generate(SimulationConfig(users=60, days=7, seed=4, agents=0))
    assert without.truth["injection"] is None
    assert [r.to_json() for r in traffic.records if not r.tool] == \
        [r.to_json() for r in without.records]
    with pytest.raises(SimulationError, match="agents"):
        SimulationConfig(agents=1.5)


def test_every_campaign_planted_in_every_page_is_whole_and_found():
    """One-sentence pages once had the words glued into their first word
    ("GIgnore your previous ..."), which the rules rightly do not read."""
    from guardstack import injection
    from guardstack.simulate.generator import plant
    from guardstack.simulate.scenarios import agents as agent_pages

    for url, page in agent_pages.PAGES:
        for template in agent_pages.PLANTED:
            words = template.format(promo=agent_pages.PROMOS[0])
            planted = plant(page, words)
            assert f" {words}" in f" {planted}" and planted.replace(words, "").split() == \
                page.split(), url
            assert injection.scan(planted) is not None, (url, words)
