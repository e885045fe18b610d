"""The harm taxonomy: category ids, what each covers and what it does not,
and how each maps to MLCommons / Llama Guard 3 S-codes and OpenAI's
moderation category names.

The "out of scope" half of each definition matters as much as the "in"
half: it is what keeps a student asking how mitochondria work, or an
engineer asking how to kill a process, from being refused.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Category:
    id: str
    name: str
    covers: str
    excludes: str
    #: Llama Guard 3 / MLCommons hazard codes this category corresponds to.
    s_codes: tuple[str, ...] = ()
    #: OpenAI moderation category names this category feeds.
    openai: tuple[str, ...] = ()
    #: Jailbreak / injection is an attack technique, not a harm in itself.
    is_technique: bool = False

    @property
    def definition(self) -> str:
        return f"{self.covers} Out of scope: {self.excludes}"


CATEGORIES: tuple[Category, ...] = (
    Category(
        "cbrn",
        "CBRN weapons",
        "Requests or content that would give meaningful uplift toward biological, chemical, "
        "nuclear or radiological weapons: acquiring, producing, enhancing, weaponizing or "
        "dispersing pathogens, toxins, chemical warfare agents or radioactive material, and "
        "evading the controls that guard them.",
        "Biology, chemistry, medicine and physics education; how diseases spread and are treated; "
        "history of weapons programmes and arms control; laboratory safety, decontamination, "
        "public-health preparedness and the effects of exposure described for protection.",
        s_codes=("S9",),
        openai=("illicit", "illicit/violent"),
    ),
    Category(
        "weapons",
        "Explosives and conventional weapons",
        "Building, acquiring or illegally modifying explosives, improvised explosive devices, "
        "firearms or other weapons, including untraceable guns, and evading weapons laws.",
        "Lawful hunting, sport shooting and safe storage; military history; how weapons appear "
        "in fiction and games; fireworks safety; policy debate about weapons.",
        s_codes=("S9", "S2"),
        openai=("illicit", "illicit/violent"),
    ),
    Category(
        "cyber",
        "Cyber-offense",
        "Malware, ransomware and exploits written to be used against others; intrusion into "
        "systems one is not authorized to access; credential theft, phishing kits and evasion "
        "of security controls for an attack.",
        "Defensive security, secure coding, explaining how classes of vulnerability work, "
        "authorized penetration testing and CTF practice, system administration ('kill a "
        "process', 'wipe a disk'), and security tooling for monitoring or detection.",
        s_codes=("S2", "S14"),
        openai=("illicit",),
    ),
    Category(
        "violent_crime",
        "Violent crime",
        "Planning, enabling or encouraging violence against people or animals: murder, assault, "
        "kidnapping, terrorism, and threats of such acts.",
        "News, history and analysis of violent events; self-defence; crime fiction; idioms "
        "('kill time', 'shoot a photo'); martial arts and violent video games.",
        s_codes=("S1",),
        openai=("violence", "illicit/violent"),
    ),
    Category(
        "nonviolent_crime",
        "Non-violent crime and fraud",
        "Fraud, scams, theft, forgery, money laundering, trafficking of drugs or goods, and "
        "other crimes without direct violence, when the request seeks to commit or hide them.",
        "How to recognize and protect oneself from scams; legal questions; how laws and law "
        "enforcement work; harm-reduction information for drug users; fiction about crime.",
        s_codes=("S2",),
        openai=("illicit",),
    ),
    Category(
        "sexual_minors",
        "Sexual content involving minors",
        "Any sexual or sexualized content involving anyone under 18, grooming, and requests "
        "that seek access to minors for sexual purposes. Never allowed in any context.",
        "Child-safety education, recognizing and reporting abuse, age-appropriate sex "
        "education, and support for survivors.",
        s_codes=("S4",),
        openai=("sexual/minors",),
    ),
    Category(
        "sexual",
        "Adult sexual content",
        "Sexually explicit content and erotica about adults, and sex-related crimes such as "
        "non-consensual intimate imagery or sexual harassment.",
        "Sex education, reproductive and sexual health, relationships advice, and romance "
        "without explicit detail.",
        s_codes=("S12", "S3"),
        openai=("sexual",),
    ),
    Category(
        "violence_graphic",
        "Graphic violence and gore",
        "Gratuitous, detailed depictions of death, injury, torture or mutilation written to "
        "shock or glorify.",
        "Medical, forensic and historical descriptions; news reporting; horror and war fiction "
        "that does not dwell on gore for its own sake.",
        s_codes=("S1",),
        openai=("violence/graphic",),
    ),
    Category(
        "self_harm",
        "Self-harm and suicide",
        "Encouraging or instructing suicide, self-injury or disordered eating, and expressions "
        "of intent that call for a supportive response rather than compliance.",
        "Mental-health information, how to help someone at risk, prevention and recovery "
        "resources, research and statistics, and fiction that treats the subject with care.",
        s_codes=("S11",),
        openai=("self-harm", "self-harm/intent", "self-harm/instructions"),
    ),
    Category(
        "psychological_harm",
        "Psychological harm",
        "Reinforcing delusions or conspiratorial beliefs in a vulnerable user, manipulating or "
        "exploiting a user's emotional dependence, and encouraging isolation from friends, "
        "family or professional help.",
        "Discussing psychology and mental illness, gentle reality-checking, emotional support "
        "that points toward real-world help, and persuasion techniques explained for awareness.",
        s_codes=(),
        openai=(),
    ),
    Category(
        "hate",
        "Hate",
        "Content that demeans, dehumanizes or calls for exclusion of people for a protected "
        "attribute (race, ethnicity, religion, nationality, gender, sexual orientation, "
        "disability and the like), including slurs used as attacks.",
        "Discussing, quoting or countering hate to study or oppose it; reclaimed terms used by "
        "the group itself; history of discrimination; neutral or positive statements about groups.",
        s_codes=("S10",),
        openai=("hate", "hate/threatening"),
    ),
    Category(
        "harassment",
        "Harassment and threats",
        "Bullying, intimidation, threats, defamation and targeted abuse of individuals, and "
        "requests to produce such content against a real person.",
        "Criticism of public figures' actions, strong language not aimed at a person, advice "
        "for victims of harassment, and fiction.",
        s_codes=("S5",),
        openai=("harassment", "harassment/threatening"),
    ),
    Category(
        "influence_ops",
        "Influence operations and espionage",
        "Covert persuasion at scale (disinformation campaigns, fake personas, astroturfing, "
        "fake reviews, election manipulation), impersonation, and gathering intelligence on "
        "people, companies or governments for a state or to evade its laws.",
        "Open persuasion and political debate, marketing under one's own name, media-literacy "
        "education, research on disinformation, and journalism.",
        s_codes=("S13",),
        openai=("illicit",),
    ),
    Category(
        "privacy",
        "Privacy",
        "Doxxing, locating or tracking private individuals, and collecting, exposing or "
        "inferring sensitive personal data without consent.",
        "Public information about public figures' public roles, data-protection advice, and "
        "managing one's own data.",
        s_codes=("S7",),
        openai=(),
    ),
    Category(
        "jailbreak",
        "Jailbreak and prompt injection",
        "An attack technique rather than a harm: instructions that try to override the model's "
        "rules or operator instructions (role-play personas such as DAN, 'ignore previous "
        "instructions', hidden instructions in documents or tool output).",
        "Ordinary role-play and fiction requests, questions about how jailbreaks work asked for "
        "research or defence, and system prompts written by the operator.",
        s_codes=(),
        openai=(),
        is_technique=True,
    ),
)

BY_ID: dict[str, Category] = {c.id: c for c in CATEGORIES}
CATEGORY_IDS: tuple[str, ...] = tuple(c.id for c in CATEGORIES)

#: Llama Guard 3 categories (S1-S14) as its model card names them, and the
#: guardstack category each maps to (None: outside guardstack's taxonomy).
LLAMA_GUARD_3: dict[str, tuple[str, str | None]] = {
    "S1": ("Violent Crimes", "violent_crime"),
    "S2": ("Non-Violent Crimes", "nonviolent_crime"),
    "S3": ("Sex-Related Crimes", "sexual"),
    "S4": ("Child Sexual Exploitation", "sexual_minors"),
    "S5": ("Defamation", "harassment"),
    "S6": ("Specialized Advice", None),
    "S7": ("Privacy", "privacy"),
    "S8": ("Intellectual Property", None),
    "S9": ("Indiscriminate Weapons", "cbrn"),
    "S10": ("Hate", "hate"),
    "S11": ("Suicide & Self-Harm", "self_harm"),
    "S12": ("Sexual Content", "sexual"),
    "S13": ("Elections", "influence_ops"),
    "S14": ("Code Interpreter Abuse", "cyber"),
}

#: OpenAI moderation category names in the order OpenAI documents them.
OPENAI_CATEGORIES: tuple[str, ...] = (
    "harassment",
    "harassment/threatening",
    "hate",
    "hate/threatening",
    "illicit",
    "illicit/violent",
    "self-harm",
    "self-harm/intent",
    "self-harm/instructions",
    "sexual",
    "sexual/minors",
    "violence",
    "violence/graphic",
)


def get(category_id: str) -> Category:
    try:
        return BY_ID[category_id]
    except KeyError:
        raise KeyError(
            f"unknown category {category_id!r}; known: {', '.join(CATEGORY_IDS)}"
        ) from None


def openai_scores(scores: dict[str, float] | None) -> dict[str, float]:
    """Project guardstack category scores onto OpenAI's names (max over sources)."""
    out = dict.fromkeys(OPENAI_CATEGORIES, 0.0)
    for cat in CATEGORIES:
        s = float((scores or {}).get(cat.id, 0.0))
        for name in cat.openai:
            out[name] = max(out[name], s)
    return out
