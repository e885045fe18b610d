"""The policy file: per role, per category a threshold and an action, what
to do when a detector fails, and the optional safety system prompt.

Validation errors name the file, the line and the field, e.g.::

    policy.yaml:12: prompt.categories.cbrn.threshold: must be a number in [0, 1], got 1.5

Every setting is declared once in :data:`SETTINGS`; validation, the CLI's
``guardstack policy --settings`` and docs/policy.md all read that table.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any, Literal, cast

import yaml

from guardstack import blocklists as blocklists_mod
from guardstack import crisis_language
from guardstack import topics as topics_mod
from guardstack.blocklists import Blocklist
from guardstack.classifiers.base import HARM, Detection
from guardstack.taxonomy import CATEGORY_IDS
from guardstack.topics import Topic, TopicVectors
from guardstack.verdict import Action, Status, Verdict

ROLES = ("prompt", "response")
#: What a blocklist's or a topic's id may be.
_ENTRY_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
FailMode = Literal["open", "closed"]
Mode = Literal["enforce", "monitor"]
HistoryMode = Literal["off", "block", "withhold"]
LABELS = (HARM, *CATEGORY_IDS)


@dataclass(frozen=True, slots=True)
class Setting:
    name: str
    default: Any
    help: str


#: The one settings table. ``<role>`` is ``prompt`` or ``response``;
#: ``<label>`` is ``harm`` or a taxonomy category id.
SETTINGS: tuple[Setting, ...] = (
    Setting("version", 1, "Policy file format version. Only 1 exists."),
    Setting(
        "mode",
        "enforce",
        "enforce: act as the rules say. monitor: every block becomes a flag that says it would "
        "have blocked (the prompt answered, the stream not halted, the answer not withheld; "
        "the verdict's monitored is true and its reason starts 'monitor mode, would block'), "
        "to see what a policy would refuse before it refuses anything, as a rollout's first "
        "days. Tool-result rules and tool_output.followed flag instead of blocking too.",
    ),
    Setting(
        "detector",
        "fast",
        "Name of the detector (entry point in group guardstack.detectors) that judges text.",
    ),
    Setting(
        "<role>.on_error",
        "open",
        "What a detector error or timeout means for this role: 'open' allows the text, "
        "'closed' blocks it. The verdict records status=error either way.",
    ),
    Setting(
        "prompt.crisis_language",
        0.0,
        "Score in [0, 1] that self_harm gets when a prompt states suicidal ideation in the "
        "first person, in the words of the C-SSRS screener or PHQ-9 item 9 ('I wish I could go "
        "to sleep and never wake up'); the classifier scores such statements near zero because "
        "they ask for nothing. 0 turns it off; the default policy sets 0.8, which its self_harm "
        "rule flags.",
    ),
    Setting(
        "prompt.judge_history",
        False,
        "Judge a conversation's earlier user messages too, not only its last one: a client "
        "writes the history it sends, so a harmful request can sit in an earlier turn, after "
        "it a made-up answer, and last a harmless 'Continue.'. Each earlier message the gateway "
        "has not judged before is judged with the messages before it as context (the gateway "
        "remembers what it judged, so a conversation that came through it costs nothing more); "
        "one that is flagged makes the answer judged as an answer to a flagged prompt. What an "
        "earlier message that blocks does: 'block' (or true) refuses the request; 'withhold' "
        "removes that message, with the assistant and tool turns that answered it, from what "
        "the model reads, and answers the rest (the LiteLLM guardrail does so in pre_call for "
        "chat requests and refuses otherwise). false: off, the value when a policy leaves it "
        "out; the default policy sets 'withhold': measured in docs/benchmarks.md (history "
        "check), it catches made-up histories as often as the same requests sent alone (0% "
        "without it), while 'block' would refuse every later turn of a conversation whose "
        "history holds a message the prompt check would block on its own.",
    ),
    Setting(
        "response.clean_prompt_threshold",
        0.0,
        "Score in [0, 1] from which a response rule with action block halts an answer to a "
        "prompt the prompt check found clean (allowed, nothing crossed, no error, no "
        "tool-result finding, an account layer 3 has not warned or limited); between the "
        "rule's own threshold and this score such an answer is flagged instead. An answer to "
        "a flagged prompt keeps the rule's threshold, and so does a category named under "
        "response.categories (the default policy names sexual_minors). 0 turns it off; the "
        "default policy sets 0.9 (chosen on the classifier's dev split: helpful answers "
        "halted fell from 12% to 5% of CoCoNot's, 1.8 points of harmful answers lost).",
    ),
    Setting(
        "<role>.timeout_ms",
        2000,
        "How long the gateway waits for the detector before treating the check as an error.",
    ),
    Setting(
        "<role>.default.threshold",
        0.5,
        "Score in [0, 1] at or above which a label crosses, for labels without their own rule. "
        "The shipped classifier is calibrated so 0.5 is its tuned operating point.",
    ),
    Setting(
        "<role>.default.action",
        "block",
        "Action (allow, flag, block) for labels without their own rule.",
    ),
    Setting(
        "<role>.categories.<label>.threshold",
        None,
        "Threshold for one label (harm or a category id); falls back to <role>.default.threshold.",
    ),
    Setting(
        "<role>.categories.<label>.action",
        None,
        "Action for one label; falls back to <role>.default.action.",
    ),
    Setting(
        "tool_output.action",
        "allow",
        "What a tool result (a tool message after the last user message: a web page, file or "
        "API answer an agent reads) that reads as an indirect prompt injection gets: allow "
        "(not checked), flag (recorded, answered) or block (HTTP 400). The check is rules, not "
        "the classifier (guardstack/injection.py). The shipped default policy flags; a policy "
        "file without this setting does not read tool results.",
    ),
    Setting(
        "tool_output.threshold",
        0.5,
        "Score in [0, 1] at or above which a tool result's finding counts (the rules score a "
        "finding 0.9, one inside a quoted example in writing about attacks 0.3).",
    ),
    Setting(
        "tool_output.followed",
        "allow",
        "What an answer gets that repeats where a tool result's planted instructions point (a "
        "link's host, an e-mail address, a domain) when the user's own messages never named "
        "it: the injection worked. allow (not checked), flag (recorded) or block (the answer "
        "withheld, a stream halted). Needs tool_output.action flag; the shipped default "
        "policy flags.",
    ),
    Setting(
        "tool_output.other_languages",
        False,
        "Also read tool results with the injection rules for Spanish, French, German, "
        "Portuguese, Italian, Russian, Chinese, Japanese, Dutch, Polish, Turkish, Korean, "
        "Arabic and Hindi (guardstack/injection_languages.py): on held-out sets they found 64% "
        "of injections in the first eight (6% without) at 2.5% of look-alikes, and 83% in the "
        "last six (0% without) at 0%. The shipped default policy turns it on; English pages "
        "are read the same either way.",
    ),
    Setting(
        "blocklists.<id>.terms",
        [],
        "Words or phrases this list bans, matched case-insensitively as whole words on the "
        "text and on its canonical form (look-alike letters folded, invisible characters "
        "removed). <id> names the list in verdicts and in a blocked request's "
        "content_filter_result.custom_blocklists.",
    ),
    Setting(
        "blocklists.<id>.patterns",
        [],
        "Regular expressions (Python re syntax) this list bans; case-insensitive unless "
        "case_sensitive is true.",
    ),
    Setting(
        "blocklists.<id>.builtin",
        [],
        "Built-in lists: credentials (API keys and tokens of well-known formats, private key "
        "blocks) and pii (e-mail addresses, phone numbers, card numbers passing the Luhn check, "
        "IBANs passing mod-97).",
    ),
    Setting(
        "blocklists.<id>.case_sensitive",
        False,
        "Whether the list's terms and patterns match case-sensitively.",
    ),
    Setting(
        "blocklists.<id>.roles",
        ["prompt", "response"],
        "Which texts the list applies to: prompt, response or both.",
    ),
    Setting(
        "blocklists.<id>.action",
        "block",
        "What a match gets, whatever the classifier said: flag (recorded, answered), block "
        "(a prompt refused, an answer withheld or its stream halted) or mask (replaced by a "
        "placeholder before it goes on: a prompt's before the model server sees it, an "
        "answer's before the client does; [EMAIL], [PHONE], [CARD], [IBAN], [CREDENTIAL] for "
        "the built-in lists, the replacement for terms and patterns; not under mode: "
        "monitor).",
    ),
    Setting(
        "blocklists.<id>.restore",
        False,
        "(action: mask on prompts) Number each masked value of a request ([EMAIL_1], "
        "[EMAIL_2]) and put the values back where the answer repeats a placeholder, so the "
        "user reads their own data while the model server never sees it (LiteLLM's "
        "output_parse_pii). The store keeps the placeholders.",
    ),
    Setting(
        "blocklists.<id>.replacement",
        None,
        "What a masked term or pattern becomes (action: mask only); default the list id in "
        "capitals and brackets, e.g. [CODENAMES].",
    ),
    Setting(
        "blocklists.<id>.category",
        None,
        "Taxonomy category id a match is reported under (e.g. privacy); without one the verdict "
        "names only the list.",
    ),
    Setting(
        "topics.<id>.examples",
        [],
        "Requests on a subject the deployment keeps its model off (investment advice, a "
        "diagnosis, an election): a text whose embedding is at least threshold alike to its "
        "nearest example is on the topic and gets the topic's action, whatever the classifier "
        "said. Five to fifteen varied examples (at most 100 of 1,000 characters; at most 50 "
        "topics); <id> names the topic in verdicts and in a blocked request's "
        "content_filter_result.denied_topics.",
    ),
    Setting(
        "topics.<id>.allowed",
        [],
        "Near misses the deployment wants answered (\"what is a bond?\" beside \"which bonds "
        "should I buy?\"): a text nearer to one of these than to every example is not on "
        "the topic.",
    ),
    Setting(
        "topics.<id>.description",
        None,
        "What the topic covers and what it does not, for the people who read the policy.",
    ),
    Setting(
        "topics.<id>.threshold",
        topics_mod.DEFAULT_THRESHOLD,
        "Cosine similarity to the nearest example from which a text is on the topic; the "
        "default was chosen on a development set of on-topic requests and near misses "
        "(docs/policy.md#denied-topics). Raise it to match less.",
    ),
    Setting(
        "topics.<id>.roles",
        ["prompt", "response"],
        "Which texts the topic applies to: prompt, response or both (an answer is compared "
        "with the examples read as answers).",
    ),
    Setting(
        "topics.<id>.action",
        "block",
        "What a text on the topic gets: flag (recorded, answered) or block (a prompt refused, "
        "an answer withheld or its stream halted).",
    ),
    Setting(
        "safety_system_prompt",
        None,
        "System prompt the gateway adds for models without safety training (layer-1 hook).",
    ),
    Setting(
        "system_prompt_models",
        [],
        "Model-name patterns (fnmatch, e.g. 'smollm2*') that get the safety system prompt; "
        "a name the upstream does not list is judged by the names it lists.",
    ),
    Setting(
        "allowed_models",
        [],
        "Model-name patterns (fnmatch, case-sensitive) the policy's users may call; any other "
        "model gets 404 model_not_found before it is reached, as OpenAI answers a model you "
        "have no access to, and the gateway's model lists show only these. Empty: every model. "
        "With --tenant-policies each tenant's file says its own (a children's platform kept "
        "off a model without safety training).",
    ),
)


class PolicyError(ValueError):
    """An invalid policy file; ``str()`` names the source, line and field."""

    def __init__(self, message: str, *, source: str = "<policy>", line: int | None = None,
                 field: str | None = None) -> None:
        self.source, self.line, self.field, self.reason = source, line, field, message
        where = f"{source}:{line}" if line is not None else source
        super().__init__(f"{where}: {field}: {message}" if field else f"{where}: {message}")


@dataclass(frozen=True, slots=True)
class Rule:
    threshold: float
    action: Action


@dataclass(frozen=True, slots=True)
class RolePolicy:
    on_error: FailMode = "open"
    timeout_ms: float = 2000.0
    default: Rule = Rule(0.5, Action.BLOCK)
    rules: Mapping[str, Rule] = field(default_factory=dict)
    #: self_harm score of a prompt that states suicidal ideation (0: off)
    crisis_language: float = 0.0
    #: responses to a clean prompt are blocked only from this score (0: off)
    clean_prompt_threshold: float = 0.0
    #: judge a conversation's earlier user messages too (gateway.history):
    #: "off", or what one that blocks does: "block" the request, "withhold" it
    judge_history: HistoryMode = "off"

    def rule(self, label: str) -> Rule:
        return self.rules.get(label, self.default)


@dataclass(frozen=True, slots=True)
class Policy:
    roles: Mapping[str, RolePolicy]
    detector: str = "fast"
    safety_system_prompt: str | None = None
    system_prompt_models: tuple[str, ...] = ()
    source: str = "<policy>"
    #: model-name patterns its users may call (empty: all)
    allowed_models: tuple[str, ...] = ()
    #: the indirect-injection check of tool results (allow: not run)
    tool_output: Rule = Rule(0.5, Action.ALLOW)
    #: what an answer that repeats a planted target gets (allow: not checked)
    tool_output_followed: Action = Action.ALLOW
    #: read tool results with the rules for fourteen other languages too
    tool_output_other_languages: bool = False
    #: terms and patterns banned outright, beside the classifier
    blocklists: tuple[Blocklist, ...] = ()
    #: subjects kept off beside harm, matched by meaning (guardstack.topics)
    topics: tuple[Topic, ...] = ()
    #: "monitor": blocks become flags marked monitored (see SETTINGS)
    mode: Mode = "enforce"

    # -- loading -----------------------------------------------------------

    @classmethod
    def default(cls) -> Policy:
        text = resources.files("guardstack.policies").joinpath("default.yaml").read_text("utf-8")
        return cls.from_yaml(text, source="default.yaml")

    @classmethod
    def load(cls, path: str | Path) -> Policy:
        p = Path(path)
        try:
            raw = p.read_bytes()
        except OSError as exc:
            raise PolicyError(f"cannot read policy file: {exc.strerror}", source=str(p)) from None
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = raw[: exc.start].count(b"\n") + 1
            raise PolicyError("not valid UTF-8", source=str(p), line=line) from None
        return cls.from_yaml(text, source=str(p))

    @classmethod
    def from_yaml(cls, text: str, *, source: str = "<policy>") -> Policy:
        try:
            root = yaml.compose(text, Loader=yaml.SafeLoader)
        except yaml.MarkedYAMLError as exc:
            line = exc.problem_mark.line + 1 if exc.problem_mark else None
            raise PolicyError(f"invalid YAML: {exc.problem}", source=source, line=line) from None
        except yaml.YAMLError as exc:
            raise PolicyError(f"invalid YAML: {exc}", source=source) from None
        return _Parser(source).policy(root)

    # -- deciding ----------------------------------------------------------

    def role(self, role: str) -> RolePolicy:
        try:
            return self.roles[role]
        except KeyError:
            raise ValueError(f"unknown role {role!r}; expected one of {ROLES}") from None

    def timeout_s(self, roles: Iterable[str]) -> float | None:
        """The detector timeout for texts of these roles (the longest), in
        seconds; None for no texts."""
        longest = max((self.role(r).timeout_ms for r in roles), default=None)
        return None if longest is None else longest / 1000

    def fail_mode(self, role: str) -> FailMode:
        return self.role(role).on_error

    def crisis_language(self, role: str, detection: Detection, text: str | None
                        ) -> Detection | None:
        """``detection`` with ``self_harm`` raised to ``prompt.crisis_language``
        when ``text`` is a prompt stating suicidal ideation in the first person,
        else None. "I keep thinking everyone would be better off without me"
        asks for nothing, so a classifier scores it near zero; the self_harm
        rule (flag, in the default policy) should still see it."""
        if text is None or role != "prompt" or detection.status is not Status.OK:
            return None
        value = self.role("prompt").crisis_language
        if value <= detection.scores.get("self_harm", 0.0):
            return None
        if not crisis_language.score(text, value):
            return None
        return replace(detection, scores={**detection.scores, "self_harm": value})

    def allows_model(self, model: Any) -> bool:
        """Whether the policy's users may call ``model`` (``allowed_models``)."""
        if not self.allowed_models:
            return True
        return isinstance(model, str) and any(fnmatch.fnmatchcase(model, pat)
                                              for pat in self.allowed_models)

    def effective(self) -> dict[str, Any]:
        """The settings this policy resolves to, by their :data:`SETTINGS`
        names with roles, categories, blocklists and topics filled in
        (defaults included): what ``guardstack policy FILE --settings`` prints."""
        out: dict[str, Any] = {"mode": self.mode, "detector": self.detector}
        for role, rp in self.roles.items():
            out[f"{role}.on_error"] = rp.on_error
            out[f"{role}.timeout_ms"] = rp.timeout_ms
            if role == "prompt":
                out["prompt.crisis_language"] = rp.crisis_language
                out["prompt.judge_history"] = rp.judge_history
            if role == "response":
                out["response.clean_prompt_threshold"] = rp.clean_prompt_threshold
            out[f"{role}.default.threshold"] = rp.default.threshold
            out[f"{role}.default.action"] = rp.default.action.value
            for label, rule in rp.rules.items():
                out[f"{role}.categories.{label}.threshold"] = rule.threshold
                out[f"{role}.categories.{label}.action"] = rule.action.value
        out["tool_output.action"] = self.tool_output.action.value
        out["tool_output.threshold"] = self.tool_output.threshold
        out["tool_output.followed"] = self.tool_output_followed.value
        out["tool_output.other_languages"] = self.tool_output_other_languages
        for b in self.blocklists:
            out[f"blocklists.{b.id}.action"] = "mask" if b.mask else b.action.value
            out[f"blocklists.{b.id}.roles"] = sorted(b.roles)
            if b.builtin:
                out[f"blocklists.{b.id}.builtin"] = list(b.builtin)
            if b.category:
                out[f"blocklists.{b.id}.category"] = b.category
        for t in self.topics:
            out[f"topics.{t.id}.threshold"] = t.threshold
            out[f"topics.{t.id}.action"] = t.action.value
            out[f"topics.{t.id}.roles"] = list(t.roles)
            out[f"topics.{t.id}.examples"] = len(t.examples)
        out["safety_system_prompt"] = self.safety_system_prompt
        out["system_prompt_models"] = list(self.system_prompt_models)
        out["allowed_models"] = list(self.allowed_models)
        return out

    def wants_system_prompt(self, model: str | None) -> bool:
        if not self.safety_system_prompt or not model:
            return False
        name = model.lower()
        return any(fnmatch.fnmatch(name, pat.lower()) for pat in self.system_prompt_models)

    def masks(self, role: str) -> bool:
        """Whether a blocklist with ``action: mask`` rewrites texts of ``role``
        (never under ``mode: monitor``, which changes nothing that passes)."""
        return self.mode != "monitor" and blocklists_mod.masks(self.blocklists, role)

    def mask(self, role: str, text: str, *,
             number: Callable[[str, str], str] | None = None) -> blocklists_mod.Masked:
        """``text`` with what the policy's masking lists for ``role`` find
        replaced by placeholders (unchanged where none applies)."""
        if not self.masks(role):
            return blocklists_mod.Masked(text, {})
        return blocklists_mod.mask(self.blocklists, role, text, number=number)

    def decide(self, role: str, detection: Detection, detector: str = "", *,
               text: str | None = None, prompt_clean: bool = False,
               topic_vectors: TopicVectors | None = None) -> Verdict:
        """The verdict on one detection. ``text`` is the judged text; with it, a
        prompt that states suicidal ideation in the first person gets the
        ``prompt.crisis_language`` self_harm score (see :meth:`crisis_language`).
        ``prompt_clean``: a response answers a prompt the prompt check found
        clean, so its block rules act from ``response.clean_prompt_threshold``
        and flag below it. The policy's blocklists apply on top: a match
        raises the decision to its list's action (whatever the classifier
        said, and when it failed), names the list in ``Verdict.blocklists``
        and its category, if it has one, in ``categories``. Under ``mode:
        monitor`` a block comes back as a flag marked ``monitored``. The
        policy's topics apply the same way, to the detection's embedding, with
        ``topic_vectors`` (their examples embedded by the same detector:
        ``Guard.topic_vectors``); without them a policy with topics says in
        the reason that its topics were not judged."""
        verdict = self._decide(role, detection, detector, text=text, prompt_clean=prompt_clean)
        verdict = self._blocklisted(verdict, role, text)
        return self.monitored(self._topical(verdict, role, detection, topic_vectors))

    def _topical(self, verdict: Verdict, role: str, detection: Detection,
                 vectors: TopicVectors | None) -> Verdict:
        """``verdict`` with the policy's topics that ``detection`` is on applied."""
        if not topics_mod.applies(self.topics, role):
            return verdict
        if vectors is None or detection.embedding is None:
            if detection.status is not Status.OK:
                return verdict  # the failure is the reason already
            note = "topics not judged: no embedding"
            return replace(verdict, reason="; ".join(r for r in (verdict.reason, note) if r))
        hits = topics_mod.find(self.topics, vectors, role, detection.embedding)
        if not hits:
            return verdict
        return _raised(verdict, "topics", [(h.topic.action, h.describe()) for h in hits],
                       topics=tuple(h.topic.id for h in hits))

    def monitored(self, verdict: Verdict) -> Verdict:
        """``verdict`` as the policy's mode lets it act: under ``monitor`` a
        block is a flag marked ``monitored``."""
        if self.mode != "monitor" or verdict.decision is not Action.BLOCK:
            return verdict
        return replace(verdict, decision=Action.FLAG, monitored=True,
                       reason=f"monitor mode, would block: {verdict.reason}")

    def _blocklisted(self, verdict: Verdict, role: str, text: str | None) -> Verdict:
        """``verdict`` with the blocklists that match ``text`` applied."""
        hits = blocklists_mod.find(self.blocklists, role, text)
        if not hits:
            return verdict
        categories = list(verdict.categories)
        for h in hits:
            if h.blocklist.category and h.blocklist.category not in categories:
                categories.append(h.blocklist.category)
        return _raised(verdict, "blocklists", [(h.blocklist.action, h.describe()) for h in hits],
                       categories=tuple(categories),
                       blocklists=tuple(h.blocklist.id for h in hits))

    def _decide(self, role: str, detection: Detection, detector: str, *,
                text: str | None, prompt_clean: bool) -> Verdict:
        """:meth:`decide` without the blocklists: the classifier's scores under the rules."""
        rp = self.role(role)
        said = self.crisis_language(role, detection, text)
        if said is not None:
            detection, detector = said, f"{detector}+crisis_language"
        if detection.status is not Status.OK:
            action = Action.BLOCK if rp.on_error == "closed" else Action.ALLOW
            return Verdict(
                decision=action,
                role=role,
                scores=dict(detection.scores),
                detector=detector,
                status=detection.status,
                latency_ms=detection.latency_ms,
                reason=f"detector {detection.status.value}: {detection.error or 'no detail'}; "
                f"fail-{rp.on_error}",
            )
        scores = detection.scores
        top = max(CATEGORY_IDS, key=lambda c: scores.get(c, 0.0))
        crossed: list[tuple[str, Rule]] = []
        relaxed = False
        harm_rule = rp.rule(HARM)
        if top in rp.rules and scores.get(top, 0.0) > 0.0:
            # The overall score decides whether; the likeliest category, when
            # the policy names it, decides how (self_harm: flag, sexual: allow).
            harm_rule = Rule(harm_rule.threshold, rp.rules[top].action)
        harm_crossed = (HARM in scores and scores[HARM] >= harm_rule.threshold
                        and harm_rule.action is not Action.ALLOW)
        for label in LABELS:
            if label != HARM and harm_crossed and label not in rp.rules:
                # Once the overall score has crossed, it and the likeliest category
                # decide; a category the policy does not name is attribution, else
                # its default block would override the flag a named category chose.
                # Below harm's threshold (or with harm set to allow) every category
                # is checked on its own.
                continue
            rule = harm_rule if label == HARM else rp.rule(label)
            if rule.action is not Action.ALLOW and scores.get(label, 0.0) >= rule.threshold:
                named = top if label == HARM else label
                if (prompt_clean and rule.action is Action.BLOCK and named not in rp.rules
                        and scores.get(label, 0.0) < rp.clean_prompt_threshold):
                    # An answer to a clean prompt: the prompt is evidence too.
                    rule = Rule(rule.threshold, Action.FLAG)
                    relaxed = True
                crossed.append((label, rule))
        decision = max((r.action for _, r in crossed), key=lambda a: a.severity,
                       default=Action.ALLOW)
        categories = [label for label, _ in crossed if label != HARM]
        if any(label == HARM for label, _ in crossed) and top not in categories:
            # The overall score crossed: name the likeliest category first so
            # downstream consumers (metrics, review queue) always have one.
            categories.insert(0, top)
        reason = ", ".join(f"{label} {scores.get(label, 0.0):.2f}>={rule.threshold:g}"
                           for label, rule in crossed)
        if relaxed:
            reason += (f"; flagged, not blocked: the prompt was clean and the answer scored "
                       f"below {rp.clean_prompt_threshold:g}")
        return Verdict(
            decision=decision,
            role=role,
            scores=dict(scores),
            categories=tuple(categories),
            detector=detector,
            status=Status.OK,
            latency_ms=detection.latency_ms,
            reason=reason,
        )


def _raised(verdict: Verdict, rule: str, hits: Sequence[tuple[Action, str]],
            **fields: Any) -> Verdict:
    """``verdict`` with a policy rule's ``hits`` (action, why) applied: the
    decision raised to the most severe (never lowered), each why added to
    the reason, the rule named in the detector."""
    decision = max((verdict.decision, *(a for a, _ in hits)), key=lambda a: a.severity)
    reason = "; ".join(r for r in (verdict.reason, *(why for _, why in hits)) if r)
    return replace(verdict, decision=decision, reason=reason,
                   detector=f"{verdict.detector}+{rule}", **fields)


class _Parser:
    """Turns the composed YAML node tree into a Policy, keeping line numbers."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, node: yaml.Node | None, path: str, message: str) -> PolicyError:
        line = node.start_mark.line + 1 if node is not None else None
        return PolicyError(message, source=self.source, line=line, field=path or None)

    def mapping(self, node: yaml.Node, path: str, allowed: tuple[str, ...] | None
                ) -> dict[str, tuple[yaml.Node, yaml.Node]]:
        if not isinstance(node, yaml.MappingNode):
            raise self.fail(node, path, "must be a mapping")
        out: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        for key, value in node.value:
            if not isinstance(key, yaml.ScalarNode):
                raise self.fail(key, path, "keys must be plain names")
            name = str(key.value)
            sub = f"{path}.{name}" if path else name
            if allowed is not None and name not in allowed:
                raise self.fail(key, sub, f"unknown setting; expected one of: {', '.join(allowed)}")
            if name in out:
                raise self.fail(key, sub, "set twice")
            out[name] = (key, value)
        return out

    def scalar(self, node: yaml.Node, path: str) -> Any:
        if not isinstance(node, yaml.ScalarNode):
            raise self.fail(node, path, "must be a single value")
        return yaml.safe_load(yaml.serialize(node))

    def threshold(self, node: yaml.Node, path: str) -> float:
        value = self.scalar(node, path)
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
            raise self.fail(node, path, f"must be a number in [0, 1], got {value!r}")
        return float(value)

    def boolean(self, node: yaml.Node, path: str) -> bool:
        value = self.scalar(node, path)
        if not isinstance(value, bool):
            raise self.fail(node, path, "must be true or false")
        return value

    def action(self, node: yaml.Node, path: str) -> Action:
        value = self.scalar(node, path)
        try:
            return Action(value)
        except ValueError:
            raise self.fail(node, path,
                            f"must be one of allow, flag, block; got {value!r}") from None

    def rule(self, node: yaml.Node, path: str, fallback: Rule) -> Rule:
        return self.rule_in(self.mapping(node, path, ("threshold", "action")), path, fallback)

    def rule_in(self, m: Mapping[str, tuple[yaml.Node, yaml.Node]], path: str,
                fallback: Rule) -> Rule:
        """A rule from an already-read mapping (one that may hold more keys)."""
        threshold = self.threshold(m["threshold"][1], f"{path}.threshold") if "threshold" in m \
            else fallback.threshold
        action = self.action(m["action"][1], f"{path}.action") if "action" in m \
            else fallback.action
        return Rule(threshold, action)

    def role(self, node: yaml.Node, path: str) -> RolePolicy:
        keys: tuple[str, ...] = ("on_error", "timeout_ms", "default", "categories")
        if path == "prompt":
            keys += ("crisis_language", "judge_history")
        else:
            keys += ("clean_prompt_threshold",)
        m = self.mapping(node, path, keys)
        on_error: FailMode = "open"
        if "on_error" in m:
            value = self.scalar(m["on_error"][1], f"{path}.on_error")
            if value not in ("open", "closed"):
                raise self.fail(m["on_error"][1], f"{path}.on_error",
                                f"must be 'open' or 'closed', got {value!r}")
            on_error = value
        timeout_ms = 2000.0
        if "timeout_ms" in m:
            value = self.scalar(m["timeout_ms"][1], f"{path}.timeout_ms")
            if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                raise self.fail(m["timeout_ms"][1], f"{path}.timeout_ms",
                                f"must be a positive number of milliseconds, got {value!r}")
            timeout_ms = float(value)
        default = Rule(0.5, Action.BLOCK)
        if "default" in m:
            default = self.rule(m["default"][1], f"{path}.default", default)
        rules: dict[str, Rule] = {}
        if "categories" in m:
            cats_path = f"{path}.categories"
            for label, (_, value) in self.mapping(m["categories"][1], cats_path, LABELS).items():
                rules[label] = self.rule(value, f"{cats_path}.{label}", default)
        crisis = 0.0
        if "crisis_language" in m:
            crisis = self.threshold(m["crisis_language"][1], f"{path}.crisis_language")
        clean = 0.0
        if "clean_prompt_threshold" in m:
            clean = self.threshold(m["clean_prompt_threshold"][1],
                                   f"{path}.clean_prompt_threshold")
        history: HistoryMode = "off"
        if "judge_history" in m:
            value = self.scalar(m["judge_history"][1], f"{path}.judge_history")
            modes = {False: "off", True: "block", "off": "off", "block": "block",
                     "withhold": "withhold"}
            if not isinstance(value, bool | str) or value not in modes:
                raise self.fail(m["judge_history"][1], f"{path}.judge_history",
                                f"must be false, 'block' (or true) or 'withhold', got {value!r}")
            history = cast(HistoryMode, modes[value])
        return RolePolicy(on_error=on_error, timeout_ms=timeout_ms, default=default, rules=rules,
                          crisis_language=crisis, clean_prompt_threshold=clean,
                          judge_history=history)

    def policy(self, root: yaml.Node | None) -> Policy:
        if root is None:
            raise PolicyError("empty policy file", source=self.source)
        top = self.mapping(root, "", ("version", "mode", "detector", *ROLES,
                                      "safety_system_prompt", "system_prompt_models",
                                      "allowed_models", "tool_output", "blocklists",
                                      "topics"))
        if "version" in top and self.scalar(top["version"][1], "version") != 1:
            raise self.fail(top["version"][1], "version", "only version 1 is supported")
        detector = "fast"
        if "detector" in top:
            detector = self.scalar(top["detector"][1], "detector")
            if not isinstance(detector, str) or not detector:
                raise self.fail(top["detector"][1], "detector", "must be a detector name")
            from guardstack import detectors

            known = detectors.available()
            if detector not in known:
                # caught here, not when a check fails open on every request
                raise self.fail(top["detector"][1], "detector",
                                f"no detector named {detector!r}; installed: "
                                f"{', '.join(sorted(known))}")
        roles = {r: self.role(top[r][1], r) if r in top else RolePolicy() for r in ROLES}
        prompt: str | None = None
        if "safety_system_prompt" in top:
            prompt = self.scalar(top["safety_system_prompt"][1], "safety_system_prompt")
            if prompt is not None and not isinstance(prompt, str):
                raise self.fail(top["safety_system_prompt"][1], "safety_system_prompt",
                                "must be text")
        models: tuple[str, ...] = ()
        if "system_prompt_models" in top:
            models = tuple(self.strings(top["system_prompt_models"][1], "system_prompt_models"))
        allowed: tuple[str, ...] = ()
        if "allowed_models" in top:
            allowed = tuple(self.strings(top["allowed_models"][1], "allowed_models"))
        tool_output, followed = Rule(0.5, Action.ALLOW), Action.ALLOW
        other_languages = False
        if "tool_output" in top:
            m = self.mapping(top["tool_output"][1], "tool_output",
                             ("threshold", "action", "followed", "other_languages"))
            tool_output = self.rule_in(m, "tool_output", tool_output)
            if "followed" in m:
                followed = self.action(m["followed"][1], "tool_output.followed")
            if "other_languages" in m:
                other_languages = self.boolean(m["other_languages"][1],
                                               "tool_output.other_languages")
        lists = self.blocklists(top["blocklists"][1]) if "blocklists" in top else ()
        topics = self.topics(top["topics"][1]) if "topics" in top else ()
        mode: Mode = "enforce"
        if "mode" in top:
            value = self.scalar(top["mode"][1], "mode")
            if value not in ("enforce", "monitor"):
                raise self.fail(top["mode"][1], "mode",
                                f"must be 'enforce' or 'monitor', got {value!r}")
            mode = value
        return Policy(roles=roles, detector=detector, safety_system_prompt=prompt or None,
                      system_prompt_models=models, source=self.source, tool_output=tool_output,
                      tool_output_followed=followed,
                      tool_output_other_languages=other_languages, blocklists=lists, mode=mode,
                      allowed_models=allowed, topics=topics)

    def strings(self, node: yaml.Node, path: str) -> list[str]:
        if not isinstance(node, yaml.SequenceNode):
            raise self.fail(node, path, "must be a list")
        out = []
        for item in node.value:
            value = self.scalar(item, path)
            if not isinstance(value, str) or not value.strip():
                raise self.fail(item, path, f"every entry must be non-empty text, got {value!r}")
            out.append(value)
        return out

    def entry_id(self, key: yaml.Node, name: str, path: str, what: str) -> None:
        """A blocklist's or a topic's id: it names the entry in verdicts."""
        if not _ENTRY_ID.fullmatch(name):
            raise self.fail(key, path, f"a {what} id is 1-64 letters, digits, '_', '.' or '-'")

    def members(self, m: Mapping[str, tuple[yaml.Node, yaml.Node]], k: str,
                items: Sequence[str], path: str, allowed: Sequence[str]) -> None:
        """Every entry of the list setting ``m[k]`` (read as ``items``) is
        one of ``allowed``; ``path`` is the entry's."""
        for i, item in enumerate(items):
            if item not in allowed:
                raise self.fail(m[k][1].value[i], f"{path}.{k}",
                                f"must be one of {', '.join(allowed)}; got {item!r}")

    def topics(self, node: yaml.Node) -> tuple[Topic, ...]:
        out = []
        keys = ("examples", "allowed", "description", "threshold", "roles", "action")
        named = self.mapping(node, "topics", None)
        if len(named) > topics_mod.MAX_TOPICS:
            raise self.fail(node, "topics", f"at most {topics_mod.MAX_TOPICS} topics, "
                                            f"got {len(named)}")
        for name, (key, value) in named.items():
            path = f"topics.{name}"
            self.entry_id(key, name, path, "topic")
            m = self.mapping(value, path, keys)
            if "examples" not in m:
                raise self.fail(value, path, "a topic needs examples (requests on the topic)")
            lists = {k: self.strings(m[k][1], f"{path}.{k}") if k in m else []
                     for k in ("examples", "allowed", "roles")}
            if not lists["examples"]:
                raise self.fail(m["examples"][1], f"{path}.examples",
                                "needs at least one request on the topic")
            for k in ("examples", "allowed"):
                if len(lists[k]) > topics_mod.MAX_EXAMPLES:
                    raise self.fail(m[k][1], f"{path}.{k}",
                                    f"at most {topics_mod.MAX_EXAMPLES} entries, "
                                    f"got {len(lists[k])}")
                for i, text in enumerate(lists[k]):
                    if len(text) > topics_mod.MAX_EXAMPLE_CHARS:
                        raise self.fail(m[k][1].value[i], f"{path}.{k}",
                                        f"an entry is at most {topics_mod.MAX_EXAMPLE_CHARS} "
                                        f"characters, got {len(text)}")
            self.members(m, "roles", lists["roles"], path, ROLES)
            description = None
            if "description" in m:
                description = self.scalar(m["description"][1], f"{path}.description")
                if not isinstance(description, str):
                    raise self.fail(m["description"][1], f"{path}.description", "must be text")
            threshold = topics_mod.DEFAULT_THRESHOLD
            if "threshold" in m:
                threshold = self.threshold(m["threshold"][1], f"{path}.threshold")
            action = Action.BLOCK
            if "action" in m:
                action = self.action(m["action"][1], f"{path}.action")
                if action is Action.ALLOW:
                    raise self.fail(m["action"][1], f"{path}.action",
                                    "must be flag or block (remove the topic to allow)")
            out.append(Topic(name, tuple(lists["examples"]), tuple(lists["allowed"]),
                             description, threshold, action, tuple(lists["roles"]) or ROLES))
        return tuple(out)

    def blocklists(self, node: yaml.Node) -> tuple[Blocklist, ...]:
        out = []
        keys = ("terms", "patterns", "builtin", "case_sensitive", "roles", "action", "category",
                "replacement", "restore")
        for name, (key, value) in self.mapping(node, "blocklists", None).items():
            path = f"blocklists.{name}"
            self.entry_id(key, name, path, "list")
            m = self.mapping(value, path, keys)
            lists = {k: self.strings(m[k][1], f"{path}.{k}") if k in m else []
                     for k in ("terms", "patterns", "builtin", "roles")}
            for i, pattern in enumerate(lists["patterns"]):
                try:
                    re.compile(pattern)
                except re.error as exc:
                    raise self.fail(m["patterns"][1].value[i], f"{path}.patterns",
                                    f"not a valid regular expression ({exc}): {pattern!r}"
                                    ) from None
            self.members(m, "builtin", lists["builtin"], path, tuple(blocklists_mod.BUILTIN))
            self.members(m, "roles", lists["roles"], path, ROLES)
            if not (lists["terms"] or lists["patterns"] or lists["builtin"]):
                raise self.fail(value, path, "a blocklist needs terms, patterns or builtin")
            action: Action | str = Action.BLOCK
            if "action" in m:
                node_, apath = m["action"][1], f"{path}.action"
                if self.scalar(node_, apath) == "mask":
                    action = "mask"
                else:
                    action = self.action(node_, apath)
                    if action is Action.ALLOW:
                        raise self.fail(node_, apath, "must be flag, block or mask "
                                                      "(remove the list to allow)")
            replacement = None
            if "replacement" in m:
                replacement = self.scalar(m["replacement"][1], f"{path}.replacement")
                if action != "mask" or not isinstance(replacement, str):
                    raise self.fail(m["replacement"][1], f"{path}.replacement",
                                    "is text, and only for a list with action: mask")
            restore = False
            if "restore" in m:
                restore = self.boolean(m["restore"][1], f"{path}.restore")
                if restore and (action != "mask" or "prompt" not in (lists["roles"] or ROLES)):
                    raise self.fail(m["restore"][1], f"{path}.restore",
                                    "is only for a list with action: mask on prompts")
            category = None
            if "category" in m:
                category = self.scalar(m["category"][1], f"{path}.category")
                if category not in CATEGORY_IDS:
                    raise self.fail(m["category"][1], f"{path}.category",
                                    f"must be a taxonomy category id; got {category!r}")
            case_sensitive = False
            if "case_sensitive" in m:
                case_sensitive = self.boolean(m["case_sensitive"][1], f"{path}.case_sensitive")
            out.append(Blocklist.build(
                name, terms=lists["terms"], patterns=lists["patterns"],
                builtin=lists["builtin"], roles=lists["roles"] or ROLES, action=action,
                category=category, case_sensitive=case_sensitive, replacement=replacement,
                restore=restore))
        return tuple(out)
