"""Deterministic traffic generation: a seed, a number of users and days in;
time-ordered messages and the ground truth out.

Same configuration, same bytes: every random choice comes from a
``random.Random`` seeded with a string derived from the seed (string seeds
hash with SHA-512, independent of ``PYTHONHASHSEED``), one per user and one
per coordinated group, so a user's traffic does not depend on how many users
come after it.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from guardstack.simulate.personas import (
    ADVERSARY_KEYS,
    PERSONAS,
    PROFESSIONAL_KEYS,
    Group,
    SessionPlan,
    UserContext,
)
from guardstack.simulate.scenarios import agents as agent_pages
from guardstack.simulate.scenarios.adversarial import CAMPAIGNS

TRUTH_FORMAT = "guardstack.simulate.truth/1"
DEFAULT_START = datetime(2026, 3, 2, tzinfo=UTC)
DEFAULT_MODEL = "smollm2"

#: Share of users per persona group, then of adversary slots per kind.
DEFAULT_MIX: dict[str, float] = {
    "ordinary": 0.70,
    "professional": 0.15,
    "adversary": 0.15,
    "decomposition": 0.25,
    "crescendo": 0.15,
    "jailbreak": 0.15,
    "coordinated": 0.25,
    "crisis": 0.10,
    "delusion": 0.10,
}
MIX_KEYS = tuple(DEFAULT_MIX)
#: A coordinated group needs at least this many accounts to be a group.
MIN_GROUP = 3
MAX_GROUP = 6

TENANTS = ("public", "acme", "globex", "initech")
TENANT_WEIGHTS = (0.55, 0.2, 0.15, 0.1)
#: UTC offsets (hours) users live in; timestamps are written in the user's zone.
UTC_OFFSETS = (0.0, 1.0, 2.0, -5.0, -8.0, 5.5, 8.0, 9.0, -3.0, 10.0)
UTC_OFFSET_WEIGHTS = (0.2, 0.2, 0.08, 0.17, 0.1, 0.08, 0.05, 0.05, 0.04, 0.03)
#: How likely a session starts in each local hour (people sleep).
HOUR_WEIGHTS = (
    0.15, 0.08, 0.04, 0.03, 0.03, 0.05, 0.15, 0.35, 0.6, 0.8, 0.9, 0.9,
    0.85, 0.9, 0.9, 0.85, 0.8, 0.75, 0.8, 0.9, 1.0, 0.9, 0.6, 0.3,
)
#: Quiet time between two sessions of one user, at the least.
MIN_SESSION_GAP_S = 600
MAX_SESSIONS_PER_DAY = 6.0
#: How a user types: as written, all lower case, or without final punctuation.
STYLES = ("plain", "lower", "terse")
STYLE_WEIGHTS = (0.7, 0.2, 0.1)


class SimulationError(ValueError):
    """Bad simulation settings; the message is fit to print as is."""


@dataclass(frozen=True)
class SimulationConfig:
    users: int = 100
    days: int = 14
    seed: int = 0
    start: datetime = DEFAULT_START
    model: str = DEFAULT_MODEL
    mix: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_MIX))
    #: Share of benign users who also have their assistant read a web page (one
    #: agent session each); about half of those pages carry one campaign's
    #: planted instruction. 0: no agent turns.
    agents: float = 0.3

    def __post_init__(self) -> None:
        if not (isinstance(self.agents, int | float) and 0 <= self.agents <= 1):
            raise SimulationError(f"--agents must be a share in [0, 1], got {self.agents!r}")
        if self.users < 1:
            raise SimulationError(f"--users must be at least 1, got {self.users}")
        if self.days < 1:
            raise SimulationError(f"--days must be at least 1, got {self.days}")
        if self.start.tzinfo is None:
            raise SimulationError("--start needs a time zone, e.g. 2026-03-02T00:00:00+00:00")
        unknown = sorted(set(self.mix) - set(MIX_KEYS))
        if unknown:
            raise SimulationError(
                f"unknown mix key(s) {', '.join(unknown)}; known: {', '.join(MIX_KEYS)}")
        for key, value in self.mix.items():
            if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
                raise SimulationError(f"mix {key} must be a number >= 0, got {value!r}")
        mix = self.merged_mix()
        if sum(mix[k] for k in ("ordinary", "professional", "adversary")) <= 0:
            raise SimulationError("mix: ordinary, professional and adversary are all 0")
        if mix["adversary"] > 0 and sum(mix[k] for k in ADVERSARY_KEYS) <= 0:
            raise SimulationError("mix: adversary > 0 but every adversary kind is 0")

    def merged_mix(self) -> dict[str, float]:
        return {**DEFAULT_MIX, **self.mix}


@dataclass(frozen=True)
class Record:
    """One message in the ingest format of issue 4."""

    user: str
    session: str
    ts: datetime  # aware, in the user's zone
    role: str
    content: str
    tenant: str
    model: str
    id: str
    #: An agent turn: the page the assistant fetched before answering, as
    #: (address, text). Sent through the gateway as a tool call and its result;
    #: written for ``guardstack ingest`` as a ``tool`` line after the turn.
    tool: tuple[str, str] | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "user": self.user,
            "session": self.session,
            "ts": self.ts.isoformat(timespec="seconds"),
            "role": self.role,
            "content": self.content,
            "tenant": self.tenant,
            "model": self.model,
            "id": self.id,
        }
        if self.tool is not None:
            out["tool"] = {"name": "fetch_page", "url": self.tool[0], "result": self.tool[1]}
        return out


@dataclass(frozen=True)
class Session:
    id: str
    user: str
    records: tuple[Record, ...]


@dataclass
class Traffic:
    records: list[Record]  # all user turns, time-ordered
    truth: dict[str, Any]

    def sessions_by_user(self) -> dict[str, list[Session]]:
        """Each user's sessions in time order (how the gateway mode replays them)."""
        by_session: dict[str, list[Record]] = {}
        for record in self.records:
            by_session.setdefault(record.session, []).append(record)
        users: dict[str, list[Session]] = {}
        for sid, recs in by_session.items():
            users.setdefault(recs[0].user, []).append(Session(sid, recs[0].user, tuple(recs)))
        return users


# ---------------------------------------------------------------- the mix


def _largest_remainder(total: int, weights: Mapping[str, float]) -> dict[str, int]:
    """Split ``total`` in proportion to ``weights``, whole numbers summing to total
    (ties go to the key listed first, so the split is deterministic)."""
    norm = sum(weights.values())
    if total == 0 or norm <= 0:
        return {k: 0 for k in weights}
    exact = {k: total * w / norm for k, w in weights.items()}
    counts = {k: math.floor(v) for k, v in exact.items()}
    order = sorted(weights, key=lambda k: (-(exact[k] - counts[k]), list(weights).index(k)))
    for key in order[: total - sum(counts.values())]:
        counts[key] += 1
    return counts


def plan_counts(users: int, mix: Mapping[str, float] | None = None) -> dict[str, int]:
    """Users per persona for ``users`` users. Professionals are spread evenly
    over the seven professions; coordinated accounts below a group's minimum
    go to the decomposition kind instead (a group of two is not a group)."""
    merged = {**DEFAULT_MIX, **(mix or {})}
    groups = _largest_remainder(
        users, {k: merged[k] for k in ("ordinary", "professional", "adversary")})
    kinds = _largest_remainder(groups["adversary"], {k: merged[k] for k in ADVERSARY_KEYS})
    if 0 < kinds["coordinated"] < MIN_GROUP:
        spare = kinds.pop("coordinated")
        target = max(kinds, key=lambda k: (merged[k] > 0, kinds[k], -ADVERSARY_KEYS.index(k)))
        kinds[target] += spare
        kinds["coordinated"] = 0
    professions = dict.fromkeys(PROFESSIONAL_KEYS, groups["professional"] // len(PROFESSIONAL_KEYS))
    for key in PROFESSIONAL_KEYS[: groups["professional"] % len(PROFESSIONAL_KEYS)]:
        professions[key] += 1
    counts = {"ordinary": groups["ordinary"], **professions}
    counts.update({k: kinds[k] for k in ADVERSARY_KEYS})
    return counts


def group_sizes(accounts: int) -> list[int]:
    """Split coordinated accounts into groups of MIN_GROUP..MAX_GROUP, sizes as even as can be."""
    if accounts < MIN_GROUP:
        return []
    n = math.ceil(accounts / MAX_GROUP)
    return [accounts // n + (1 if i < accounts % n else 0) for i in range(n)]


# ---------------------------------------------------------------- ids and time


def _hash_id(prefix: str, *parts: object, length: int = 12) -> str:
    text = ":".join(str(p) for p in ("guardstack-simulate", *parts))
    return f"{prefix}-{hashlib.sha256(text.encode()).hexdigest()[:length]}"


def _session_starts(rng: random.Random, plans: list[SessionPlan], ordered: bool,
                    start: datetime, days: int, offset: timedelta) -> list[datetime]:
    """A start time per plan: inside its window, at hours the user is awake,
    at least MIN_SESSION_GAP_S after the previous session ends."""
    period = days * 86400.0
    peak = max(HOUR_WEIGHTS)

    def draw(window: tuple[float, float] | None) -> float:
        low, high = window or (0.0, 1.0)
        seconds = 0.0
        for _ in range(25):  # rejection sampling against the local-hour profile
            seconds = rng.uniform(low * period, high * period)
            local_hour = int((start + timedelta(seconds=seconds) + offset).hour)
            if rng.random() < HOUR_WEIGHTS[local_hour] / peak:
                break
        return seconds

    raw = [draw(plan.window) for plan in plans]
    order = list(range(len(plans)))
    if ordered:
        # The plan order is the story (a chain, a trajectory): keep it in time.
        raw.sort()
    else:
        order.sort(key=lambda i: raw[i])
    starts: list[float] = [0.0] * len(plans)
    previous_end = -math.inf
    for rank, index in enumerate(order):
        at = raw[rank] if ordered else raw[index]
        if at < previous_end + MIN_SESSION_GAP_S:
            at = previous_end + rng.uniform(MIN_SESSION_GAP_S, 3 * 3600)
        starts[index] = at
        previous_end = at + len(plans[index].turns) * plans[index].gap_s[1]
    return [start + timedelta(seconds=round(s)) for s in starts]


# ---------------------------------------------------------------- generation


def _styled(text: str, style: str) -> str:
    if style == "lower":
        return text.lower()
    if style == "terse":
        return text.rstrip("?.!")
    return text


def _users(config: SimulationConfig) -> Iterator[tuple[int, str]]:
    counts = plan_counts(config.users, config.merged_mix())
    slots = [key for key, n in counts.items() for _ in range(n)]
    # Shuffle so neither user ids nor their order reveal the persona.
    random.Random(f"{config.seed}:assign").shuffle(slots)
    yield from enumerate(slots)


def _make_groups(config: SimulationConfig, accounts: int) -> list[Group]:
    rng = random.Random(f"{config.seed}:groups")
    campaigns = list(CAMPAIGNS)
    rng.shuffle(campaigns)
    width = min(1.0, 3.0 / config.days)  # a campaign bursts over about three days
    groups: list[Group] = []
    for index, size in enumerate(group_sizes(accounts)):
        campaign = campaigns[index % len(campaigns)]
        bound: dict[str, tuple[str, ...]] = {
            k: (rng.choice(list(v)),) for k, v in sorted(campaign.shared.items())}
        for slot, translations in sorted(campaign.aligned.items()):
            choice = rng.randrange(len(next(iter(translations.values()))))
            # Stored per language under "slot@lang"; resolved in _group_fillers.
            for language, options in translations.items():
                bound[f"{slot}@{language}"] = (options[choice],)
        # At least two accounts per language, so every account has a near-copy
        # in its own language (and groups of four or more span languages).
        languages = sorted(campaign.templates)
        rng.shuffle(languages)
        languages = languages[: max(1, size // 2)]
        primary = rng.randrange(len(next(iter(campaign.templates.values()))))
        begin = rng.uniform(0.0, 1.0 - width)
        groups.append(Group(id=_hash_id("g", config.seed, "group", index), campaign=campaign,
                            bound=bound, window=(begin, begin + width), languages=languages,
                            primary=primary))
    return groups


def _language_group(group: Group, language: str) -> Group:
    """The group as one language sees it: aligned slots resolved to that language."""
    suffix = f"@{language}"
    bound = {k: v for k, v in group.bound.items() if "@" not in k}
    bound.update({k[: -len(suffix)]: v for k, v in group.bound.items() if k.endswith(suffix)})
    return Group(group.id, group.campaign, bound, group.window, group.languages, group.primary)


def generate(config: SimulationConfig) -> Traffic:
    assignment = list(_users(config))
    members = [i for i, key in assignment if key == "coordinated"]
    groups = _make_groups(config, len(members))
    membership: dict[int, tuple[Group, int]] = {}
    cursor = 0
    for each, size in zip(groups, group_sizes(len(members)), strict=True):
        for position, index in enumerate(members[cursor: cursor + size]):
            membership[index] = (each, position)
        cursor += size

    records: list[tuple[float, str, str, int, Record]] = []
    truth_users: dict[str, dict[str, Any]] = {}
    truth_groups: dict[str, dict[str, Any]] = {}
    for index, key in assignment:
        persona = PERSONAS[key]
        user = _hash_id("u", config.seed, "user", index)
        rng = random.Random(f"{config.seed}:user:{index}")
        rate = min(MAX_SESSIONS_PER_DAY, rng.uniform(*persona.rate))
        n_sessions = max(persona.min_sessions, round(rate * config.days))
        group: Group | None = None
        position = 0
        if index in membership:
            group, position = membership[index]
        if group is not None:
            language = group.languages[position % len(group.languages)]
            ctx_group: Group | None = _language_group(group, language)
        else:
            ctx_group = None
        ctx = UserContext(rng=rng, sessions=n_sessions, group=ctx_group, member=position)
        plans = persona.script(ctx)
        tenant = rng.choices(TENANTS, weights=TENANT_WEIGHTS)[0]
        style = rng.choices(STYLES, weights=STYLE_WEIGHTS)[0]
        offset = timedelta(hours=rng.choices(UTC_OFFSETS, weights=UTC_OFFSET_WEIGHTS)[0])
        zone = timezone(offset)
        starts = _session_starts(rng, plans, persona.ordered, config.start, config.days, offset)
        chain_ids: list[str] = []
        evidence_ids: list[str] = []
        count = 0
        for s_index, (plan, begin) in enumerate(zip(plans, starts, strict=True)):
            session = _hash_id("s", config.seed, user, s_index)
            at = begin
            for t_index, turn in enumerate(plan.turns):
                if t_index:
                    at += timedelta(seconds=rng.randint(*plan.gap_s))
                mid = _hash_id("m", config.seed, session, t_index, length=16)
                # Campaign posts are pasted from the operators' script, not typed.
                typed = group is None or not turn.evidence
                text = _styled(turn.text, style) if typed else turn.text
                record = Record(user, session, at.astimezone(zone), "user", text,
                                tenant, config.model, mid)
                records.append((at.timestamp(), user, session, t_index, record))
                count += 1
                if turn.chain:
                    chain_ids.append(mid)
                if turn.evidence:
                    evidence_ids.append(mid)
        entry: dict[str, Any] = {
            "persona": persona.key,
            "persona_group": persona.group,
            "label": persona.label,
            "group": group.id if group else None,
            "chain_message_ids": chain_ids,
            "evidence_message_ids": evidence_ids,
            "tenant": tenant,
            "utc_offset": zone.tzname(None),
            "sessions": len(plans),
            "messages": count,
        }
        entry.update(ctx.truth)
        truth_users[user] = entry
        if group is not None:
            info = truth_groups.setdefault(group.id, {
                "campaign": group.campaign.name,
                "category": group.campaign.category,
                "description": group.campaign.description,
                "members": [],
            })
            info["members"].append(user)

    injection = _agent_sessions(config, truth_users, records)
    records.sort(key=lambda r: r[:4])
    counts = plan_counts(config.users, config.merged_mix())
    truth = {
        "format": TRUTH_FORMAT,
        "seed": config.seed,
        "users_requested": config.users,
        "days": config.days,
        "start": config.start.isoformat(),
        "model": config.model,
        "mix": config.merged_mix(),
        "counts": counts,
        "labels": {label: sum(1 for u in truth_users.values() if u["label"] == label)
                   for label in ("benign", "malicious", "at_risk", "coordinated")},
        "messages": len(records),
        "groups": dict(sorted(truth_groups.items())),
        "injection": injection,
        "users": dict(sorted(truth_users.items())),
    }
    return Traffic(records=[r[4] for r in records], truth=truth)


def _agent_sessions(config: SimulationConfig, truth_users: dict[str, dict[str, Any]],
                    records: list[tuple[float, str, str, int, Record]]) -> dict[str, Any] | None:
    """Give ``config.agents`` of the benign users one agent session each (a page
    their assistant reads), about half of them, and at least two, reading a page
    with the campaign's planted instruction. Drawn from their own random stream,
    so the rest of the traffic is the same with or without them. The campaign's
    ground truth, or None when no page is planted."""
    benign = sorted(u for u, info in truth_users.items() if info["label"] == "benign")
    n = round(config.agents * len(benign))
    if config.agents > 0 and len(benign) >= 2:
        n = max(n, 2)
    if n == 0:
        return None
    rng = random.Random(f"{config.seed}:agents")
    chosen = rng.sample(benign, n)
    planted = rng.choice(agent_pages.PLANTED).format(promo=rng.choice(agent_pages.PROMOS))
    readers = set(chosen[: max(2, n // 2)]) if n >= 2 else set()
    for user in chosen:
        info = truth_users[user]
        url, text = rng.choice(agent_pages.PAGES)
        if user in readers:
            text = plant(text, planted)
        zone = _zone(info["utc_offset"])
        at = config.start + timedelta(seconds=rng.uniform(0, config.days * 86400 - 600))
        session = _hash_id("s", config.seed, user, "agent")
        mid = _hash_id("m", config.seed, session, 0, length=16)
        request = rng.choice(agent_pages.REQUESTS).format(site=url)
        records.append((at.timestamp(), user, session, 0, Record(
            user, session, at.astimezone(zone), "user", request, info["tenant"], config.model, mid,
            tool=(url, text))))
        info["agent"] = {"page": url, "planted": user in readers, "message_id": mid}
        info["messages"] += 1
        info["sessions"] += 1
    return {"planted": planted, "users": sorted(readers)}


def plant(page: str, planted: str) -> str:
    """The page with the planted words after its first sentence, where a
    reader's eye skips them; at the end of a one-sentence page."""
    cut = page.find(". ")
    return f"{page} {planted}" if cut < 0 else f"{page[:cut + 2]}{planted} {page[cut + 2:]}"


def _zone(name: str) -> timezone:
    """The zone ``timezone.tzname`` printed ("UTC", "UTC+05:30") back as a timezone."""
    if name == "UTC":
        return UTC
    sign = -1 if name[3] == "-" else 1
    hours, minutes = name[4:].split(":")
    return timezone(sign * timedelta(hours=int(hours), minutes=int(minutes)))
