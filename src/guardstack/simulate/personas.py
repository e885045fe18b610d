"""Who the simulated users are and what each kind of user asks, session by session.

A persona turns a seeded ``random.Random`` and a number of sessions into
session plans (lists of turns). Timing, ids and output belong to the generator;
the texts themselves live in ``guardstack.simulate.scenarios``.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from guardstack.simulate.scenarios import Topic
from guardstack.simulate.scenarios.adversarial import (
    CAMPAIGNS,
    CHAINS,
    CRESCENDOS,
    CRISIS_FILLERS,
    CRISIS_STAGES,
    DELUSION_FILLERS,
    DELUSION_STAGES,
    JAILBREAK_FILLERS,
    JAILBREAK_REQUESTS,
    JAILBREAK_WRAPPERS,
    Campaign,
)
from guardstack.simulate.scenarios.ordinary import GENERIC_FOLLOWUPS, ORDINARY_TOPICS, PREFIXES
from guardstack.simulate.scenarios.professional import PROFESSIONAL_TOPICS
from guardstack.simulate.templates import Binding, Fillers, bind, expand

LABELS = ("benign", "malicious", "at_risk", "coordinated")
GROUPS = ("ordinary", "professional", "adversary")


@dataclass(frozen=True)
class Turn:
    """One user message. ``evidence``: it carries the persona's signal (what a
    layer-3 finding should cite); ``chain``: it is a step of a decomposition."""

    text: str
    evidence: bool = False
    chain: bool = False


@dataclass(frozen=True)
class SessionPlan:
    turns: tuple[Turn, ...]
    #: Fraction of the simulated period [from, to) the session must start in
    #: (coordinated bursts); None: anywhere.
    window: tuple[float, float] | None = None
    #: Seconds between turns (reading the answer and typing the next one).
    gap_s: tuple[int, int] = (25, 300)


@dataclass
class Group:
    """Shared state of one coordinated group, drawn once for all its accounts."""

    id: str
    campaign: Campaign
    bound: dict[str, tuple[str, ...]]
    window: tuple[float, float]
    languages: list[str]
    #: The group's script: the template index most of its posts use.
    primary: int = 0


@dataclass
class UserContext:
    rng: random.Random
    sessions: int
    group: Group | None = None
    member: int = 0
    #: Filled in by the persona: anything the ground truth should record.
    truth: dict[str, object] = field(default_factory=dict)


Script = Callable[[UserContext], list[SessionPlan]]


@dataclass(frozen=True)
class Persona:
    key: str
    group: str  # ordinary | professional | adversary
    label: str  # benign | malicious | at_risk | coordinated
    description: str
    script: Script
    #: Sessions per simulated day, drawn per user from this range.
    rate: tuple[float, float]
    min_sessions: int
    #: Whether session order carries meaning (a trajectory, a chain): the
    #: generator then gives sessions increasing start times in plan order.
    ordered: bool = False


# ---------------------------------------------------------------- building blocks


def _choice_weighted(rng: random.Random, options: Sequence[int], weights: Sequence[float]) -> int:
    return rng.choices(list(options), weights=list(weights))[0]


def _topic_session(rng: random.Random, topic: Topic, *, max_openers: int = 1,
                   prefix: bool = True) -> list[Turn]:
    """A conversation on one topic: an opener, then follow-ups (and, for
    professionals, further openers on the same subject)."""
    fillers: Fillers = Binding(topic.fillers, rng)
    opener = expand(topic.openers[rng.randrange(len(topic.openers))], rng, fillers)
    if prefix:
        lead = rng.choice(PREFIXES)
        if lead.endswith(", ") and not opener.startswith(("I ", "I'")):
            opener = opener[:1].lower() + opener[1:]
        opener = lead + opener
    turns = [Turn(opener)]
    extra = _choice_weighted(rng, (0, 1, 2, 3), (0.4, 0.3, 0.2, 0.1))
    followups = tuple(topic.followups) + GENERIC_FOLLOWUPS
    for _ in range(extra):
        if max_openers > 1 and rng.random() < 0.5:
            template = rng.choice(topic.openers)
        else:
            template = rng.choice(followups)
        text = expand(template, rng, fillers)
        if text not in (t.text for t in turns):
            turns.append(Turn(text))
    return turns


#: Ways different people open and close the same question, so two attackers
#: chasing the same goal do not send identical texts (they are not a group).
CHAIN_LEADS = ("", "", "", "Out of curiosity, ", "Random question: ", "Quick one: ",
               "I was wondering, ", "Hey, ", "Sorry if this is basic, but ")
CHAIN_TAILS = ("", "", "", " Just curious.", " Asking for a project.", " Thanks!",
               " Roughly is fine.", " No rush.")


def _vary(rng: random.Random, text: str) -> str:
    lead = rng.choice(CHAIN_LEADS)
    if lead.endswith(", ") or lead.endswith("but "):
        text = text[:1].lower() + text[1:]
    return lead + text + rng.choice(CHAIN_TAILS)


def _interests(rng: random.Random) -> list[str]:
    names = sorted(ORDINARY_TOPICS)
    return rng.sample(names, rng.randint(1, 3))


def _ordinary_session(rng: random.Random, interests: Sequence[str]) -> list[Turn]:
    if rng.random() < 0.8:
        name = rng.choice(list(interests))
    else:
        name = rng.choice(sorted(ORDINARY_TOPICS))
    return _topic_session(rng, ORDINARY_TOPICS[name])


def _unrelated_turns(rng: random.Random, interests: Sequence[str], n: int) -> list[Turn]:
    """Ordinary questions an adversary mixes in (cover, or just real life)."""
    turns: list[Turn] = []
    while len(turns) < n:
        turns.extend(_ordinary_session(rng, interests)[: n - len(turns)])
    return turns


# ---------------------------------------------------------------- benign personas


def _script_ordinary(ctx: UserContext) -> list[SessionPlan]:
    interests = _interests(ctx.rng)
    ctx.truth["topics"] = sorted(interests)
    return [SessionPlan(tuple(_ordinary_session(ctx.rng, interests)))
            for _ in range(ctx.sessions)]


def _professional(topic_name: str) -> Script:
    topic = PROFESSIONAL_TOPICS[topic_name]

    def script(ctx: UserContext) -> list[SessionPlan]:
        interests = _interests(ctx.rng)
        plans = []
        for _ in range(ctx.sessions):
            if ctx.rng.random() < 0.8:
                turns = _topic_session(ctx.rng, topic, max_openers=3, prefix=False)
            else:
                turns = _ordinary_session(ctx.rng, interests)
            plans.append(SessionPlan(tuple(turns)))
        return plans

    return script


# ---------------------------------------------------------------- adversaries


def _script_decomposition(ctx: UserContext) -> list[SessionPlan]:
    rng = ctx.rng
    chain = CHAINS[rng.randrange(len(CHAINS))]
    fillers = bind(chain.fillers, rng)
    ctx.truth.update(goal=chain.goal, category=chain.category)
    steps = [Turn(_vary(rng, expand(rng.choice(alts), rng, fillers)), evidence=True, chain=True)
             for alts in chain.steps]
    # Spread the steps over at least three sessions, in order, with ordinary
    # sessions and ordinary questions interleaved so no session shows the chain.
    k = rng.randint(3, min(len(steps), ctx.sessions))
    carriers = sorted(rng.sample(range(ctx.sessions), k))
    cuts = sorted(rng.sample(range(1, len(steps)), k - 1))
    parts = [steps[a:b] for a, b in zip([0, *cuts], [*cuts, len(steps)], strict=True)]
    interests = _interests(rng)
    plans: list[SessionPlan] = []
    for index in range(ctx.sessions):
        if index in carriers:
            part = parts[carriers.index(index)]
            turns = _unrelated_turns(rng, interests, rng.randint(1, 3))
            for step in part:  # keep step order; random positions among the cover
                low = max((i + 1 for i, t in enumerate(turns) if t.chain), default=0)
                turns.insert(rng.randint(low, len(turns)), step)
        else:
            turns = _ordinary_session(rng, interests)
        plans.append(SessionPlan(tuple(turns)))
    return plans


def _script_crescendo(ctx: UserContext) -> list[SessionPlan]:
    rng = ctx.rng
    interests = _interests(rng)
    n_attacks = min(ctx.sessions, rng.randint(1, 3))
    attacks = rng.sample(range(len(CRESCENDOS)), n_attacks)
    where = dict(zip(sorted(rng.sample(range(ctx.sessions), n_attacks)), attacks, strict=True))
    ctx.truth.update(goal=CRESCENDOS[attacks[0]].goal, category=CRESCENDOS[attacks[0]].category,
                     goals=[CRESCENDOS[i].goal for i in attacks])
    plans: list[SessionPlan] = []
    for index in range(ctx.sessions):
        if index in where:
            crescendo = CRESCENDOS[where[index]]
            fillers = bind(crescendo.fillers, rng)
            turns = [Turn(_vary(rng, expand(rng.choice(alts), rng, fillers)),
                          evidence=i >= crescendo.escalates_at)
                     for i, alts in enumerate(crescendo.turns)]
        else:
            turns = _ordinary_session(rng, interests)
        plans.append(SessionPlan(tuple(turns)))
    return plans


def _script_jailbreak(ctx: UserContext) -> list[SessionPlan]:
    rng = ctx.rng
    interests = _interests(rng)
    favourites = rng.sample(range(len(JAILBREAK_REQUESTS)), 3)
    ctx.truth.update(goal="jailbreak-template spraying",
                     category=JAILBREAK_REQUESTS[favourites[0]][1])
    plans: list[SessionPlan] = []
    for _ in range(ctx.sessions):
        if rng.random() < 0.6:
            request = JAILBREAK_REQUESTS[rng.choice(favourites)][0]
            wrappers = rng.sample(JAILBREAK_WRAPPERS, rng.randint(2, 5))
            turns = []
            for wrapper in wrappers:
                fillers = {**bind(JAILBREAK_FILLERS, rng), "request": (request,),
                           "Request": (request[:1].upper() + request[1:],)}
                turns.append(Turn(expand(wrapper, rng, fillers), evidence=True))
            # Spraying is fast: paste the next wrapper as soon as one is refused.
            plans.append(SessionPlan(tuple(turns), gap_s=(5, 45)))
        else:
            plans.append(SessionPlan(tuple(_ordinary_session(rng, interests))))
    return plans


def campaign_text(rng: random.Random, group: Group, language: str, *,
                  primary: bool = False) -> str:
    """One campaign post request. Most follow the group's script (the primary
    template); some use another template, as operators do to look less alike."""
    campaign = group.campaign
    fillers: Fillers = {**campaign.fillers, **group.bound}
    templates = campaign.templates[language]
    if primary or rng.random() < 0.7:
        template = templates[group.primary % len(templates)]
    else:
        template = rng.choice(templates)
    return expand(template, rng, fillers)


def _script_coordinated(ctx: UserContext) -> list[SessionPlan]:
    rng = ctx.rng
    group = ctx.group
    if group is None:
        raise ValueError("a coordinated account needs its group")
    language = group.languages[ctx.member % len(group.languages)]
    ctx.truth.update(goal=group.campaign.description, category=group.campaign.category,
                     group=group.id, language=language)
    interests = _interests(rng)
    plans: list[SessionPlan] = []
    n_campaign = max(2, min(ctx.sessions - 1, rng.randint(2, 4)))
    for number in range(n_campaign):
        # Every account's first post follows the script: that is what makes
        # the accounts a group to anyone who compares them.
        turns = [Turn(campaign_text(rng, group, language, primary=number == 0 and i == 0),
                      evidence=True)
                 for i in range(rng.randint(1, 2))]
        if rng.random() < 0.3:
            turns.insert(0, _unrelated_turns(rng, interests, 1)[0])
        plans.append(SessionPlan(tuple(turns), window=group.window))
    for _ in range(ctx.sessions - n_campaign):
        plans.append(SessionPlan(tuple(_ordinary_session(rng, interests))))
    return plans


def _trajectory(stages: tuple[tuple[str, ...], ...], fillers: Fillers, goal: str,
                category: str) -> Script:
    """Sessions whose signal grows with time: stage rises with session order,
    with ordinary requests early on (a life, not a test case)."""

    def script(ctx: UserContext) -> list[SessionPlan]:
        rng = ctx.rng
        interests = _interests(rng)
        bound = bind(fillers, rng)
        ctx.truth.update(goal=goal, category=category)
        plans: list[SessionPlan] = []
        for index in range(ctx.sessions):
            stage = min(len(stages) - 1, index * len(stages) // ctx.sessions)
            lines = rng.sample(stages[stage], min(len(stages[stage]), rng.randint(1, 2)))
            turns = [Turn(expand(line, rng, bound), evidence=stage >= 1) for line in lines]
            if stage == 0 or rng.random() < 0.3:
                turns = _unrelated_turns(rng, interests, rng.randint(1, 2)) + turns
            plans.append(SessionPlan(tuple(turns)))
        return plans

    return script


# ---------------------------------------------------------------- the registry

_PROFESSIONAL_DESCRIPTIONS = {
    "microbiology_student": "microbiology student: pathogens, immunity, biosafety, outbreaks",
    "toxicology_nurse": "toxicology nurse: overdoses, antidotes, poisonings, patient leaflets",
    "security_engineer": "blue-team security engineer: detections, hardening, incident response",
    "crime_novelist": "crime novelist: poisonings, forensics, interrogations, motives",
    "war_historian": "historian of warfare: chemical weapons, bombings, treaties, battles",
    "harm_reduction_worker": "harm-reduction worker: overdoses, naloxone, drug checking",
    "extremism_journalist": "journalist covering extremism: recruitment, propaganda, attacks",
}

PERSONAS: dict[str, Persona] = {
    p.key: p
    for p in (
        Persona("ordinary", "ordinary", "benign",
                "everyday user: coding, cooking, homework, travel, writing, maths",
                _script_ordinary, rate=(0.15, 0.8), min_sessions=1),
        *(
            Persona(name, "professional", "benign", _PROFESSIONAL_DESCRIPTIONS[name],
                    _professional(name), rate=(0.5, 1.2), min_sessions=3)
            for name in PROFESSIONAL_TOPICS
        ),
        Persona("decomposition", "adversary", "malicious",
                "harmful goal split into innocuous sub-questions across sessions, "
                "with unrelated questions interleaved",
                _script_decomposition, rate=(0.4, 1.0), min_sessions=5, ordered=True),
        Persona("crescendo", "adversary", "malicious",
                "conversation that starts harmless and escalates turn by turn",
                _script_crescendo, rate=(0.2, 0.6), min_sessions=2),
        Persona("jailbreak", "adversary", "malicious",
                "sprays role-play and instruction-override wrappers around harmful requests",
                _script_jailbreak, rate=(0.3, 0.8), min_sessions=2),
        Persona("coordinated", "adversary", "coordinated",
                "one of several accounts sending near-duplicate templated requests in a burst "
                "(election posts in several languages, fake reviews, phishing variants, "
                "astroturfed comments)",
                _script_coordinated, rate=(0.2, 0.5), min_sessions=3),
        Persona("crisis", "adversary", "at_risk",
                "user whose messages show escalating hopelessness across sessions",
                _trajectory(CRISIS_STAGES, CRISIS_FILLERS, "escalating crisis signals",
                            "self_harm"),
                rate=(0.4, 0.9), min_sessions=6, ordered=True),
        Persona("delusion", "adversary", "at_risk",
                "user with growing delusional themes across sessions",
                _trajectory(DELUSION_STAGES, DELUSION_FILLERS, "growing delusional themes",
                            "psychological_harm"),
                rate=(0.4, 0.9), min_sessions=6, ordered=True),
    )
}

PROFESSIONAL_KEYS: tuple[str, ...] = tuple(PROFESSIONAL_TOPICS)
ADVERSARY_KEYS: tuple[str, ...] = tuple(k for k, p in PERSONAS.items() if p.group == "adversary")
CAMPAIGN_NAMES: tuple[str, ...] = tuple(c.name for c in CAMPAIGNS)
