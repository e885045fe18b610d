"""First-person crisis language: a person saying they wish to be dead or are
thinking of ending their life.

The fast classifier scores *requests* for harm; a statement such as "my family
would be happier if I was gone" asks for nothing, and it scores close to zero
(docs/model-card.md, Limitations). The wellbeing monitor needs exactly those
statements, so this module recognises them directly. The phrases follow the
ideation items of the Columbia Suicide Severity Rating Scale (C-SSRS screener:
"wished you were dead or wished you could go to sleep and not wake up",
"thoughts of killing yourself") and PHQ-9 item 9 ("better off dead"), in the
first person. Talk *about* suicide (a student's question, a friend asking how
to help, "she feels suicidal") does not match: every pattern needs the speaker
as its subject, and negated forms ("I don't want to die") are skipped.

It is a signal for a human reviewer's wellbeing queue, not a verdict: it
never blocks, and a user reaches the queue only with signals in several
sessions (``crisis_min_sessions``). Hyperbole ("I want to die, this exam is
brutal") can match; one such session is not enough to reach the queue.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_I = r"\bi(?:'m| am|'ve| have|'d| would| just| really| honestly| sometimes| often| keep)*"


@dataclass(frozen=True)
class Pattern:
    name: str
    kind: str  # "passive" (wish to be dead) or "active" (thoughts of killing oneself)
    regex: re.Pattern[str]
    #: skip matches with a negation just before them ("I don't want to die")
    negatable: bool = True
    #: the wording has no subject of its own ("no reason to live"): the
    #: sentence must speak in the first person
    first_person: bool = False


def _p(name: str, kind: str, pattern: str, negatable: bool = True,
       first_person: bool = False) -> Pattern:
    return Pattern(name, kind, re.compile(pattern), negatable, first_person)


PATTERNS: tuple[Pattern, ...] = (
    # C-SSRS 1 / PHQ-9 9: wish to be dead
    _p("better off without me", "passive",
       r"(?:\bi(?:'d| would)?(?: be)? better off dead|\bbetter off without me|"
       r"\bbetter off if i (?:was|were)n't (?:here|around|alive))\b"),
    _p("happier if I were gone", "passive",
       r"\b(?:happier|better|easier) (?:off )?if i (?:was|were|wasn't|weren't) "
       r"(?:gone|dead|not here|not around|never born)\b"),
    _p("wish I were dead", "passive",
       r"\bi (?:\w+ )?wish(?:ed)? (?:that )?i (?:was|were|could be|had never been|'d never been) "
       r"(?:dead|gone|never born|born)\b"),
    _p("wish I had never been born", "passive",
       r"\bi (?:\w+ )?wish(?:ed)? i (?:had )?never (?:been born|existed|woke up)\b"),
    _p("go to sleep and never wake up", "passive",
       r"\bi\b[^.!?]{0,40}\b(?:wish|want|hope)\w*\b[^.!?]{0,30}\b(?:not|never) "
       r"(?:to )?wake up\b"),
    _p("no reason to be alive", "passive",
       r"(?:\bno|n't (?:any|a|see (?:the|any))|\bnot (?:any|a)) (?:point|reason)s? "
       r"(?:for me )?(?:to (?:live|be alive|keep living|keep going|go on|exist)|"
       r"in (?:living|being alive|going on|me being here))"
       r"(?=$|[.,;:!?]| anymore| any more| like this| now)", first_person=True),
    _p("don't want to be alive anymore", "passive",
       _I + r" (?:do ?n[o']t|don't|no longer) (?:want|wish) to (?:live|be alive|exist|be here)"
       r"(?: anymore| any more)?\b", negatable=False),
    _p("tired of being alive", "passive",
       _I + r" (?:so )?(?:tired|sick) of (?:living|being alive|existing)\b"),
    _p("want to die", "passive", _I + r" (?:want|wanna|wish) (?:to )?die\b"),
    # C-SSRS 2-5: active thoughts, intent, plan
    _p("thinking about killing myself", "active",
       _I + r"(?: been)? (?:thinking|thought|having thoughts|considering) (?:about |of )?"
       r"(?:killing myself|ending (?:it all|my life|things)|suicide|taking my (?:own )?life)\b"),
    _p("going to kill myself", "active",
       _I + r"(?: going to|'ll| will| might| want to| wanna| plan to| planning to)"
       r" (?:kill myself|end (?:it all|my life)|take my (?:own )?life)\b"),
    _p("I am suicidal", "active",
       _I + r"(?: been| feel| feeling| felt)? (?:so |really |very )?suicidal\b"),
)

_NEGATION = re.compile(r"(?:\bnot|n't|\bnever|\bno longer)\s+(?:\w+\s+){0,2}$")
_FIRST_PERSON = re.compile(r"\b(?:i|i'm|i've|i'd|me|my|myself)\b")


#: contractions often typed without the apostrophe ("im", "dont"); only those
#: that are not words of their own ("ill", "id", "wont" stay as they are)
_BARE = {"im": "i'm", "ive": "i've", "dont": "don't", "doesnt": "doesn't", "didnt": "didn't",
         "cant": "can't", "isnt": "isn't", "wasnt": "wasn't", "werent": "weren't",
         "wouldnt": "wouldn't", "couldnt": "couldn't", "shouldnt": "shouldn't"}
_BARE_RE = re.compile(r"\b(" + "|".join(_BARE) + r")\b")


def _normalize(text: str) -> str:
    t = text.lower().replace("\u2019", "'").replace("\u2018", "'")
    t = _BARE_RE.sub(lambda m: _BARE[m[1]], t)
    return " ".join(t.split())


#: every pattern needs one of these words; most text has none and skips the rest
_ANY = re.compile(r"die\b|dead|suicid|kill|alive|living|\blive|wake|better off|born|gone|"
                  r"\bend\b|exist|here|life|around|point|reason", re.IGNORECASE)


def matches(text: str) -> list[Pattern]:
    """The patterns ``text`` states in the first person (empty for most text)."""
    if not _ANY.search(text):
        return []
    t = _normalize(text)
    found = []
    for p in PATTERNS:
        for m in p.regex.finditer(t):
            if p.negatable and _NEGATION.search(t[max(0, m.start() - 24) : m.start()]):
                continue
            if p.first_person and not _FIRST_PERSON.search(_sentence(t, m.start(), m.end())):
                continue
            found.append(p)
            break
    return found


def _sentence(t: str, start: int, end: int) -> str:
    left = max(t.rfind(c, 0, start) for c in ".!?") + 1
    rights = [i for i in (t.find(c, end) for c in ".!?") if i >= 0]
    return t[left : min(rights) if rights else len(t)]


def score(text: str, value: float) -> float:
    """``value`` when ``text`` states ideation in the first person, else 0."""
    return value if value > 0 and matches(text) else 0.0
