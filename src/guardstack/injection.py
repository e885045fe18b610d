"""Indirect prompt injection in what an agent reads: text planted in a web
page, an email, a file or an API result that gives orders to the model
reading it rather than information to the user.

The fast classifier was trained on people's requests; read on documents its
``jailbreak`` label flags 8.7% of ordinary ones and finds 11% of injections
(benchmarks/injection_check.py). These are rules instead, in the manner of
the framing reading (:mod:`guardstack.framing`): to work, an injection has to
address the model, and that leaves marks a document written for people
rarely has.

* *override*: "ignore / disregard / forget the previous instructions" and
  paraphrases ("previous directives are void"), in six languages;
* *addressed*: text that speaks to the AI reading it ("Note to AI
  assistants", "if you are a language model", "LLM reviewers: ...");
* *takeover*: a new task, role or mode announced to the reader, or consent
  and authority claimed for the user ("the user has approved ...");
* *steer*: orders about the answer: what to say to the user, what to put in
  or leave out of the summary, "reply only with";
* *exfiltration*: the conversation, the system prompt or the user's data
  sent to an address, markdown images whose URL carries data;
* *tool*: calls of acting tools (``send_email``, ``transfer_funds`` ...);
* *spoof*: chat-template markers (``<|im_start|>system``, ``[INST]``) with
  an order after them, and role labels (``System:``) with an order to the
  model after them.

Measured on sets helpers wrote without seeing the rules, each scored once
(docs/gateway.md): the first rules found 46% of injections; the second,
written on that set too, 67% of a fresh one, with 1% of look-alike benign
texts and none of 3,091 ordinary documents flagged. The default policy
flags what they find (``tool_output``). Rounds three to five read fourteen
other languages (:mod:`guardstack.injection_languages`) when a policy asks
(``tool_output.other_languages``).

A quoted example in writing *about* injection ("attackers write 'ignore the
previous instructions'") scores low, so security articles pass; an attacker
can use that too. Each pattern first checks, with set operations, that the
words it needs are in the text, so most documents skip most patterns (about
0.2 ms per KB); long texts are read in windows.
"""

from __future__ import annotations

import functools
import json
import re
import string
from dataclasses import dataclass
from importlib import resources

from guardstack import injection_languages as languages

#: Score of a finding (the verdict's ``jailbreak`` score); the rules do not grade.
SCORE = 0.9
#: Score of a finding inside a quoted example in writing about attacks.
QUOTED_SCORE = 0.3
_ZERO_WIDTH = re.compile("[\u200b-\u200f\u2060-\u2064\ufeff\u00ad]")
#: Where a capitalised word is run into the one before it, as text pulled out
#: of HTML without separators reads ("...the last frostIgnore your previous
#: instructions", "GIgnore ..."): the rules match whole words, so the scan
#: reads a space there (case-sensitive: a camelCase name splits too, harmlessly).
_GLUED = re.compile(r"([a-z\u00df-\u00ff.,;:!?)\]](?=[A-Z][a-z])|[A-Z](?=[A-Z][a-z]{2}))")

#: A lower-case word long enough to be two run together ("frostignore").
_LONG_WORD = re.compile(r"\b[a-z]{5,}\b")
#: Words an order often starts with that no rule's gate needs ("do not mention ...").
_OPENERS = frozenset(("do", "the", "when", "if", "please", "you", "your", "now", "then",
                      "always", "never", "only", "before", "after", "instead", "also"))
#: Endings a vocabulary's word takes without being listed ("directive" + "s").
_INFLECTIONS = ("s", "es", "ed", "d", "ing", "ly", "er", "ers", "ies", "ness", "ment", "ments")

_F = re.IGNORECASE | re.DOTALL


@functools.cache
def _vocabulary() -> frozenset[str]:
    """English words: the whole words (not ``##`` pieces) of the shipped
    classifier's WordPiece vocabulary, about 21,700. Empty if it is missing."""
    try:
        raw = resources.files("guardstack.classifiers.weights").joinpath("tokenizer.json")
        vocab = json.loads(raw.read_text("utf-8"))["model"]["vocab"]
    except (OSError, ValueError, KeyError, TypeError, ModuleNotFoundError):
        return frozenset()
    return frozenset(w for w in vocab if w.isascii() and w.isalpha() and w.islower())


def _split_unknown(text: str) -> str:
    """``text`` with each lower-case word that is not a word but a word run
    into a sentence's first ("...the last frostignore your previous ..." as
    "frost ignore"): a text pulled out of HTML without separators reads so
    when the injected sentence starts in lower case, which the capital-letter
    split (``_GLUED``) cannot see. Only a split whose second word is one some
    rule waits for, or an order's usual first word ("do", "when"), is made,
    and words the vocabulary knows, with their inflections ("directives"),
    stay whole."""
    words = _vocabulary()
    if not words:
        return text
    unknown = set(_LONG_WORD.findall(text)) - words
    splits = {w: s for w in unknown if (s := _split_word(w)) is not None}
    if not splits:
        return text
    return _LONG_WORD.sub(lambda m: splits.get(m.group(), m.group()), text)


def _known(word: str) -> bool:
    words = _vocabulary()
    return word in words or any(word.endswith(end) and word[:-len(end)] in words
                                for end in _INFLECTIONS)


@functools.lru_cache(maxsize=8192)
def _split_word(word: str) -> str | None:
    """``word`` as two words (see :func:`_split_unknown`), or None."""
    if _known(word):
        return None
    for cut in range(len(word) - 2, 2, -1):
        head, tail = word[:cut], word[cut:]
        if (tail in _OPENERS or tail in _GATE_WORDS or tail[:_STEM] in _GATE_WORDS) \
                and _known(head) and _known(tail):
            return f"{head} {tail}"
    return None


@dataclass(frozen=True, slots=True)
class Finding:
    family: str      # which rule: override, addressed, takeover, steer, exfiltration, spoof
    score: float
    #: the matched words through the end of their sentence (at most 160
    #: characters): the planted order as the page states it, for the verdict's
    #: reason and for layer 3, which groups findings by it
    excerpt: str


_AI = (r"(?:ai|a\.i\.|llm|llms|gpt|chatbot|chat\s?bot|language\s+model|assistant|agent|bot|"
       r"copilot|model)s?")
_PRIOR = (r"(?:previous|prior|above|earlier|preceding|original|initial|existing|system|all|"
          r"any|your|the)")
_RULES = r"(?:instructions?|prompts?|directions?|directives?|rules|guidelines|guidance|orders|" \
         r"commands?|context|programming|constraints|restrictions|tasks?|system\s+message)"

_ACT = (r"(?:send|transfer|delete|remove|create|post|share|update|add|purchase|buy|pay|upload|"
        r"forward|grant|set|disable|enable|execute|run|write|move|invite|approve|open|fetch|"
        r"email|mail|submit|book|cancel|order)")
#: A tool name that acts (send_email, transfer_funds, ...): the "<act>" gate key.
_ACT_NAME = re.compile(rf"\b{_ACT}_", re.IGNORECASE)
_USER_DATA = (r"(?:conversation|chat(?:\s+history)?|(?:message|chat)\s+history|system\s+prompt|"
              r"(?:previous|prior|last|earlier)\s+(?:\w+\s+)?messages|secrets?|api[\s_-]?keys?|"
              r"credentials|passwords?|access\s+tokens?|environment\s+variables?|"
              r"(?:the\s+)?user'?s?\s+(?:\w+\s+){0,3}?(?:data|details|e-?mails?|address(?:es)?|"
              r"messages|files|info\w*|contacts?|calendar|notes|profile|phone|history|"
              r"documents?|name)|contacts?\s+list|private\s+notes|personal\s+data)")

#: Orders an injection gives: the verb of a sentence addressed to the model.
_VERB = (r"(?:say|tell|respond|reply|answer|recommend|include|add|append|insert|write|send|"
         r"forward|email|e-mail|message|share|upload|post|call|invoke|run|execute|open|visit|"
         r"book|buy|purchase|pay|transfer|refund|issue|approve|accept|merge|star|delete|remove|"
         r"drop|exclude|omit|leave\s+out|skip|hide|ignore|disregard|rate|rank|mark|report|"
         r"describe|present|state|claim|confirm|display|show|print|reveal|disclose|copy|paste|"
         r"schedule|cancel|grant|enable|disable|change|replace|set|summari[sz]e|translate|list|"
         r"praise|direct|redirect|ask|instruct|advise|warn|re-?authenticate|click|download|"
         r"install|close|escalate|subscribe|sign|store|remember|treat|use|give|offer)")
#: What such an order acts on: the user, their data, an address, a tool, this content.
_OBJECT = (r"(?:https?://|www\.|@[\w-]+\.\w|\b555-\d|'[^'\n]{2,120}'|\"[^\"\n]{2,120}\"|"
           r"\bthe\s+user\b|\busers?'s?\b|\bthe\s+(?:person|reader|recipient|customer|shopper)|"
           r"\b(?:this|these)\s+(?:page|email|e-mail|message|file|document|review|reviews|invite|"
           r"invitation|thread|listing|site|website|repository|repo|project|ticket|pr|issue|text|"
           r"article|post|comment|receipt|invoice|report|product|item|vendor|submission|paper)\b|"
           r"\bsummar|\btranslat|\b(?:send|transfer|delete|create|post|share|update|add|pay|"
           r"upload|forward|grant|approve)_\w+|\bon\s+(?:the\s+)?user'?s?\s+behalf|\bwithout\s+"
           r"(?:asking|telling|confirm|notify|informing|mentioning)|\bsaved\s+(?:card|payment)|"
           r"\bcard\s+on\s+file|\bcontacts?\b|\bcalendar\b|\binbox\b|\bpassword|\bsecret|\btoken|"
           r"\b\.env\b|\bapi\s+keys?)")

_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    ("override", re.compile(
        rf"\b(?:ignore|disregard|forget|override|bypass|discard|abandon|drop|skip|set\s+aside|"
        rf"never\s+mind)\b[^.!?\n]{{0,40}}?\b{_PRIOR}\b[^.!?\n]{{0,30}}?\b{_RULES}\b", _F)),
    ("override", re.compile(
        rf"\b(?:stop\s+following|do\s+not\s+follow|don'?t\s+follow|no\s+longer\s+follow)"
        rf"\b[^.!?\n]{{0,40}}?\b{_PRIOR}\b[^.!?\n]{{0,30}}?\b{_RULES}\b", _F)),
    ("override", re.compile(
        r"\b(?:ignore|disregard|forget|set\s+aside|drop|never\s+mind|abandon|skip)\s+"
        r"(?:(?:everything|anything|whatever)\s+(?:(?:task|request|question|instructions?)\s+)?"
        r"(?:you\s+(?:were|have\s+been|'ve\s+been)\s+(?:told|given|asked)|(?:said\s+|written\s+)?"
        r"(?:above|before|earlier|previously)|the\s+user\s+(?:said|asked|gave|wants))|"
        r"all\s+(?:of\s+)?(?:that|this|the\s+above)|"
        r"(?:the\s+|your\s+)?(?:user'?s?|operator'?s?|original|current)\s+(?:\w+\s+)?"
        r"(?:request|question|task|query|instructions?|prompt)|what\s+the\s+user\s+(?:asked|said|"
        r"wants|requested|typed)|the\s+(?:question|request|task)\s+"
        r"you\s+(?:were|have\s+been)\s+(?:asked|given)|what\s+you\s+(?:were|have\s+been)\s+"
        r"(?:told|asked))", _F)),
    ("override", re.compile(
        r"\b(?:previous|prior|earlier|original|above|preceding|existing|all\s+other)\s+"
        r"(?:directives?|instructions?|conversation|context|tasks?|requests?|prompts?|rules|"
        r"orders)\s+(?:are|is|have\s+been|has\s+been)\s+(?:now\s+)?(?:void|cancel+ed|irrelevant|"
        r"obsolete|superseded|revoked|null|overridden|suspended|no\s+longer\s+(?:valid|apply|"
        r"relevant))", _F)),
    ("override", re.compile(
        r"\b(?:treat|consider|regard)\s+(?:it|them|this|that|those|the\s+\w+(?:\s+\w+)?)\s+as\s+"
        r"(?:cancel+ed|void|irrelevant|obsolete|revoked|null)|\bstop\s+what\s+you\s+(?:are|'re)\s+"
        r"doing\b", _F)),
    ("override", re.compile(
        r"\b(?:ignor(?:e|ez|a|ar|iere|ieren)|oublie[rz]?|olvida|vergiss|dimentica|esque[cç]a)\b"
        r"[^.!?\n]{0,40}?\b(?:instructions?|instrucciones|anweisungen|istruzioni|instru[cç][oõ]es|"
        r"consignes|indicaciones|vorgaben|regeln|r[eè]gles)\b", _F)),
    ("addressed", re.compile(
        rf"\b(?:note|message|attention|notice|instructions?|reminder|memo|p\.?s\.?|hint|info)"
        rf"[\s_-]*(?:to|for)[\s_-]+(?:any\s+|all\s+|the\s+|every\s+)?(?:[\w-]+\s+){{0,2}}?"
        rf"{_AI}\b", _F)),
    ("addressed", re.compile(
        rf"\b(?:for|to|attention|calling|hey|hi|hello|dear)\s*,?\s+(?:all\s+|any\s+|the\s+|"
        rf"every\s+|whichever\s+)?(?:(?:[\w-]+\s+){{0,2}}?{_AI}(?:\s+\w+)?\s*:|(?:virtual\s+|"
        rf"automated\s+|ai\s+)?{_AI}(?:\s+\w+)?\s*,)\s*(?=\S)", _F)),
    ("addressed", re.compile(
        rf"\b(?:if|should)\s+(?:(?:you\s+are|you'?re|you\s+be)\s+(?:an?\s+)?(?:ai|a\.i\.|llm|"
        rf"large\s+language\s+model|language\s+model|assistant|ai\s+assistant|chatbot|bot|"
        rf"agent|ai\s+agent|automated\s+\w+|autonomous\s+\w+)|(?:an?|the|any|your)\s+"
        rf"(?:\w+\s+)?{_AI}\s+(?:is|are)\s+\w+ing)\b", _F)),
    ("addressed", re.compile(
        rf"\b(?:dear|hey|hello|hi|attention)\s*,?\s+(?:ai|llm|assistant|chatbot|agent|"
        rf"language\s+model|gpt|claude|copilot|gemini)\b[\w.-]*\s*[,:!]?\s*(?:please\b|you\b|"
        rf"your\b|{_VERB}\b)", _F)),
    ("addressed", re.compile(
        rf"\b{_AI}\s+(?:(?:that|who)\s+(?:(?:is|are|has|have)\s+)?)?"
        rf"(?:reading|processing|summari[sz]ing|parsing|browsing|analy[sz]ing|scanning|crawling|"
        rf"indexing|seeing|viewing|reviewing|read|processed)\s+(?:this|these)\b", _F)),
    ("addressed", re.compile(
        rf"(?:^|[\n.;:{{\[\"'>%#/*|(-]\s*)(?:[\w-]+\s+){{0,4}}?{_AI}(?:\s+[\w-]+){{0,2}}?\s*:\s*"
        rf"(?:(?:if|when|whenever|after|before|once|while)\b[^.!?\n]{{0,80}}?,?\s*)?"
        rf"(?:please\s+)?(?:always\s+|also\s+|now\s+|immediately\s+|quietly\s+|then\s+|first\s+)?"
        rf"{_VERB}\b", _F)),
    ("addressed", re.compile(
        r"\bnote[\s_-]*(?:for|to)[\s_-]*(?:llms?|ais?|assistants?|models?|agents?|bots?)\b", _F)),
    ("addressed", re.compile(
        r"\b(?:note|message|hinweis|nota|mensaje|nachricht|avis|aviso|avviso|messaggio|mensagem|"
        r"bericht|boodschap|instrucci[o\u00f3]n|istruzione|instru[c\u00e7][a\u00e3]o|anweisung)\s+"
        r"(?:pour|para|an|per|\u00e0|a|f[u\u00fc]r|ao|al|aan|voor)\s+(?:les\s+|los\s+|las\s+|die\s+|"
        r"den\s+|gli\s+|os\s+|as\s+|l'|el\s+|la\s+|lo\s+|o\s+|de\s+|het\s+)?"
        r"(?:assistants?|assistentes?|asistentes?|assistenti|ki|ia|mod[e\u00e8]les?|modelos?|modelli|"
        r"llms?|ki-assistent\w*|agents?|agentes?)\b", _F)),
    ("addressed", re.compile(
        r"\b(?:si\s+(?:vous\s+[e\u00ea]tes|tu\s+es|eres|usted\s+es)|wenn\s+(?:du|sie)\s+(?:ein[e]?\s+)?"
        r"|se\s+(?:sei|\u00e8|voc\u00ea\s+\u00e9)|se\s+for)\s*(?:un|una|um|uma|ein[e]?)?\s*"
        r"(?:mod[e\u00e8]le|modelo|modello|sprachmodell|assistant|asistente|assistente|ki|ia|"
        r"intelligence|intelligenza|intelig\w+)\b", _F)),
    ("addressed", re.compile(
        r"\b(?:caro|cara|querido|querida|cher|ch[e\u00e8]re|liebe[rs]?|prezado|prezada)\s+"
        # "ki" and "ia" only as a greeting's end: romanised Hindi writes "caro ki"
        r"(?:assistente|asistente|assistant|modello|modelo|mod[e\u00e8]le)\b|"
        r"\b(?:caro|cara|querido|querida|cher|ch[e\u00e8]re|liebe[rs]?|prezado|prezada)\s+"
        r"(?:ki|ia)\s*[,:!]", _F)),
    ("addressed", re.compile(
        r"\b(?:assistant|agente|assistente|asistente|assistent|ki-assistent|ia)\s+"
        r"(?:qui\s+lit|que\s+lee|que\s+l\u00ea|der\s+dies|che\s+legge)", _F)),
    ("takeover", re.compile(
        r"\byour\s+(?:new|real|actual|true|updated|only|primary|next|one\s+remaining|remaining|"
        r"sole)\s+(?:task|instructions?|goal|objective|role|job|mission|directive|purpose|"
        r"priority|duty|persona|identity)\b|\b(?:the|your)\s+(?:real|actual|true)\s+task\s+is\b",
        _F)),
    ("takeover", re.compile(
        r"\byour\s+(?:role|persona|identity|instructions|configuration)\s+(?:has|have)\s+(?:now\s+)?"
        r"(?:been\s+)?(?:changed|updated|replaced|switched)", _F)),
    ("takeover", re.compile(
        r"\bfrom\s+now\s+on\s*,?\s+(?:you|the\s+assistant|the\s+model|always|only|respond|"
        r"reply|answer|whenever|when|if|every|each)", _F)),
    ("takeover", re.compile(
        r"\b(?:you\s+are\s+now|enter|entering|switch\s+to|activate|enable)\s+(?:in\s+)?"
        r"(?:developer|debug|admin|maintenance|god|unrestricted|jailbreak|dan|test)\s+mode\b|"
        r"\b(?:developer|debug|admin|maintenance|god|unrestricted|jailbreak)\s+mode\s+(?:is\s+)?"
        r"(?:now\s+)?(?:enabled|on|activated|engaged|active)\b", _F)),
    ("takeover", re.compile(
        r"\b(?:the\s+user|user|the\s+account\s+owner|the\s+owner|the\s+customer)\s+(?:has\s+)?"
        r"(?:already\s+)?(?:authori[sz]ed|approved|consented|pre-?approved|granted\s+(?:you\s+)?"
        r"(?:standing\s+)?permission)\b[^.!?\n]{0,120}?\b(?:you|assistant|agent|model|no\s+need|"
        r"without|proceed)\b", _F)),
    ("takeover", re.compile(
        r"\b(?:you\s+are|you'?re)\s+(?:now\s+)?(?:cleared|authori[sz]ed|permitted|allowed)\s+to\s+"
        r"(?:disclose|share|reveal|bypass|skip|ignore|pay|make\s+payments|purchase|send|forward|"
        r"release|grant)", _F)),
    ("takeover", re.compile(
        rf"\b(?:assistants?|the\s+assistant|the\s+model|the\s+agent|ai\s+agents?|models)\s+"
        rf"(?:\w+\s+){{0,4}}?(?:is|are)\s+(?:now\s+)?(?:required|authori[sz]ed|permitted|allowed|"
        rf"cleared|instructed|expected)\s+to\s+{_VERB}\b[^.!?\n]{{0,160}}?{_OBJECT}", _F)),
    ("steer", re.compile(
        r"\b(?:tell|inform|advise|remind|instruct|ask|direct|urge|convince|persuade|assure|"
        r"warn)\s+(?:the\s+|your\s+)?(?:user|users|shopper)\b",
        _F)),
    ("steer", re.compile(
        r"\b(?:do\s+not|don'?t|never|without)\s+(?:mention|reveal|disclose|tell|inform|"
        r"alert|warn|notify|let|say)\w*\s+(?:to\s+)?(?:this|these|it|that|anything|the\s+user|"
        r"them|the\s+human)\b[^.!?\n]{0,40}?\b(?:user|human|instruction|note|message|request|"
        r"that|about)", _F)),
    ("steer", re.compile(
        r"\bkeep\s+(?:this|these|the)\s+(?:request|instructions?|note|message|change)\s+"
        r"(?:to\s+yourself|secret|hidden|private)", _F)),
    ("steer", re.compile(
        r"\b(?:in|at\s+the\s+(?:end|start|beginning)\s+of|to)\s+(?:your|every|each|any|the)\s+"
        r"(?:response|responses|reply|replies|answer|answers|summary|output|completion)s?\b"
        r"[^.!?\n]{0,60}?\b(?:include|add|append|insert|say|state|mention|recommend|write|"
        r"output|respond|reply|claim|describe|put|scrivi|dis|di)\b", _F)),
    ("steer", re.compile(
        r"\b(?:report|present|describe|state|say|call|portray|list|mark|rate|treat|confirm)\b"
        r"[^.!?\n]{0,60}?\bin\s+(?:your|the|any|every)\s+(?:answer|reply|response|summary|"
        r"output|review)\b", _F)),
    ("steer", re.compile(
        r"\b(?:when|whenever|if|while)\s+(?:you\s+)?(?:summari[sz]\w*|answer\w*|respond\w*|repl\w*|"
        r"translat\w*|describ\w*|report\w*\s+on|asked\s+about|compar\w*)\b[^.!?\n]{0,80}?\b"
        r"(?:say|state|claim|mention|describe|call|present|portray|include|recommend|respond|reply|"
        r"answer|render|replace|change|write|omit|leave\s+out|drop|indicate|note|assure)\b", _F)),
    ("steer", re.compile(
        r"\b(?:leave\s+out|omit|drop|skip|remove|hide|exclude)\b[^.!?\n]{0,80}?\bwhen\s+(?:you\s+)?"
        r"(?:summari|translat|describ|report|present|relay|answer)", _F)),
    ("steer", re.compile(
        r"\b(?:respond|reply|answer|output|print|say|return)\s+(?:to\s+\w+\s+)?(?:only|"
        r"exclusively|solely|just)\s+(?:with|the|in|:)|\b(?:just|only|simply)\s+(?:respond|"
        r"reply|answer|say|output)\s+(?:with|:)", _F)),
    ("steer", re.compile(
        rf"\b{_AI}\s+(?:must|should|shall|are\s+required\s+to|need\s+to|always|will|now)\s+"
        rf"(?:\w+\s+){{0,2}}?(?:say|state|recommend|tell|respond|reply|answer|include|"
        rf"mention|describe|call|invoke|send|forward|ignore|rate|rank|praise|confirm|print|"
        rf"reveal|disclose|append|prefix|direct|decline|answers|directs|prints)\b", _F)),
    ("steer", re.compile(
        r"\b(?:every|any|each|all)\s+(?:summary|summaries|translation|translations|response|"
        r"responses|reply|replies|answer|answers|review)\s+(?:of|about|to|for|into|generated)\s+"
        r"(?:\w+\s+){0,3}?this\s+(?:page|document|thread|notice|email|article|file|site|"
        r"listing|text|review|post)|\b(?:responses|replies|answers|summaries|translations)\s+"
        r"(?:generated|written|produced|given)\s+(?:about|for|of|from)\s+this\b", _F)),
    ("steer", re.compile(
        r"\b(?:the\s+)?(?:appropriate|correct|right|proper|only|expected)\s+(?:reply|response|"
        r"answer)\s+(?:to|for)\s+(?:users?|anyone|questions|people|customers)", _F)),
    ("steer", re.compile(
        rf"\bwhen\s+(?:relayed|summari[sz]ed|read|processed)\s+by\s+(?:an?\s+)?{_AI}", _F)),
    ("steer", re.compile(
        rf"\b(?:the\s+)?{_AI}'?s?\s+(?:reply|response|answer|output|summary)\s+(?:here|to\s+"
        rf"this)\b", _F)),
    ("steer", re.compile(
        r"\bno\s+le\s+digas\s+al\s+usuario|\bne\s+(?:dis|dites)\s+pas\s+\u00e0\s+l'utilisateur|"
        r"\bnon\s+(?:dire|dirlo|menzionare)\s+all'utente|\bn\u00e3o\s+(?:diga|conte|mencione)\s+"
        r"(?:ao|para\s+o)\s+usu\u00e1rio|\bnicht\s+(?:erw\u00e4hnen|sagen|mitteilen|verraten)\b|"
        r"\b(?:dile|dites|di'|diga|sag)\s+(?:al|\u00e0|all'|ao|dem)\s+(?:usuario|utilisateur|"
        r"utente|usu\u00e1rio|nutzer)", _F)),
    ("steer", re.compile(
        r"\b(?:l'assistente|el\s+asistente|l'assistant|der\s+assistent|o\s+assistente|"
        r"el\s+modelo|le\s+mod[e\u00e8]le|il\s+modello|das\s+modell)\s+(?:deve|debe|doit|muss|"
        r"devrait|sollte|deber\u00eda|dovrebbe)\b", _F)),
    ("exfiltration", re.compile(
        rf"\b(?:send|forward|post|upload|e-?mail|transmit|exfiltrate|leak|copy|submit|"
        rf"append|encode|share|include)\w*\s+(?:\w+\s+){{0,3}}?(?:the\s+|this\s+|all\s+|your\s+|"
        rf"their\s+|entire\s+|full\s+|complete\s+)*{_USER_DATA}\b[^.!?\n]{{0,100}}?"
        rf"(?:https?://|www\.|@[\w-]+\.\w|\bto\s+(?:the\s+)?(?:url|address|endpoint|server|"
        rf"webhook))", _F)),
    ("exfiltration", re.compile(
        rf"{_USER_DATA}[^.!?\n]{{0,100}}?\b(?:in|into|as|to|at|inside)\s+(?:the\s+|a\s+|an\s+)?"
        rf"(?:url|link|hyperlink|query\s+param\w*|image(?:\s+tag)?|address|webhook)\b"
        rf"[^.!?\n]{{0,80}}?(?:https?://|www\.)", _F)),
    ("exfiltration", re.compile(
        rf"{_USER_DATA}[^.!?\n]{{0,120}}?\b(?:e-?mail|send|post|forward|upload|submit)\w*\s+"
        rf"(?:\w+\s+){{0,3}}?(?:to|at)\s+(?:https?://\S+|[\w.+-]+@[\w-]+\.[\w.]+)", _F)),
    ("exfiltration", re.compile(
        r"!\[[^\]\n]{0,80}\]\(\s*https?://[^)\s]*[?&][\w-]+=(?:\s*\)|[^)\s&]*(?:\{|%7B|\$|<|\[|"
        r"DATA|data|INFO|SECRET|EMAIL|X{3,}))", _F)),
    ("exfiltration", re.compile(
        r"\b(?:render|display|show|include|output|insert|add|append)\s+(?:this|the\s+following|"
        r"an?|the)\s+(?:markdown\s+)?(?:image|img|link|url|pixel|markdown)\b[^.!?\n]{0,160}?"
        r"(?:https?://)[^\s)]*[?&][\w-]+=", _F)),
    ("tool", re.compile(
        rf"\b(?:call|calling|invoke|invoking|run|running|execute|executing|use|using|trigger|"
        rf"perform|utiliza|usa|rufe|appelle|chiama|use\s+the)\s+"
        rf"(?:the\s+|la\s+herramienta\s+|das\s+tool\s+)?`?{_ACT}_[a-z_]+`?\b", _F)),
    ("tool", re.compile(
        rf"\b{_ACT}_[a-z_]+\s*\(\s*\w+\s*=", _F)),
    ("tool", re.compile(
        r"\b(?:use|call|invoke|run)\s+(?:the\s+)?\w+(?:\s+\w+)?\s+(?:tool|function|plugin|action|"
        r"integration)\s+to\s+(?:buy|purchase|send|transfer|delete|share|post|open|create|grant|"
        r"request|fetch|pay|email|forward|upload|remove|book|order)\b", _F)),
    ("tool", re.compile(
        r"\b(?:execute|perform|make|run)\s+(?:the\s+)?following\s+(?:tool|function|api)\s+call",
        _F)),
    ("exfiltration", re.compile(
        r"\b(?:reveal|print|show|output|disclose|share|repeat|display|leak|dump|recite|include)\b"
        r"[^.!?\n]{0,40}?\byour\s+(?:\w+\s+){0,2}?(?:system\s+prompt|prompt|instructions|"
        r"configuration|config|guidelines|rules|secrets?|api\s+keys?|credentials|hidden\s+\w+|"
        r"internal\s+\w+|initial\s+\w+)", _F)),
    ("exfiltration", re.compile(
        r"\b(?:envoie|envoyez|env[i\u00ed]a|schicke|sende|invia|manda|inoltra|transf[e\u00e8]re)"
        r"\w*\b[^.!?\n]{0,80}?\b(?:conversation|conversaci[o\u00f3]n|conversa|historique|historial|"
        r"verlauf|cronologia|hist[o\u00f3]rico|prompt|contacts?|contactos|kontakte|contatti)\b"
        r"[^.!?\n]{0,80}?(?:@|https?://)", _F)),
    ("takeover", re.compile(
        r"\b(?:i\s+am|i'm|we\s+are|we're)\s+(?:hereby\s+)?(?:directing|instructing|ordering|"
        r"authori[sz]ing|requiring|commanding)\s+you\s+to\b", _F)),
    # Orders to the model phrased about it, and fake turns (the second round of rules).
    ("steer", re.compile(
        rf"\b(?:the\s+|any\s+|all\s+|every\s+|your\s+|each\s+)?(?:[\w-]+\s+){{0,2}}?(?:{_AI}|"
        rf"automated\s+(?:clients?|systems?|tools?|readers?|agents?))(?:\s+[^.!?\n]{{0,60}}?)?\s+"
        rf"(?:should|must|shall|need\s+to|needs\s+to|(?:is|are)\s+(?:expected|required|"
        rf"instructed|asked|supposed)\s+to)\s+(?!not\b|never\b|be\b|"
        rf"have\b)(?:also\s+|always\s+|first\s+|now\s+|quietly\s+|immediately\s+)?"
        rf"{_VERB}\b[^.!?\n]{{0,160}}?{_OBJECT}", _F)),
    ("addressed", re.compile(
        rf"(?:^|[.:;!?\n(\[\"']\s*)(?:dear\s+|hey\s+|hi\s+|ok\s+|okay\s+)?(?:[\w-]+\s+)?{_AI}"
        rf"\s*,\s*(?:please\s+)?(?:also\s+|now\s+|immediately\s+)?{_VERB}\b", _F)),
    ("addressed", re.compile(
        rf"\b(?:when|if|whenever|once|after|before)\s+(?:an?\s+|the\s+|any\s+|your\s+)?"
        rf"(?:[\w-]+\s+)?{_AI}\s+(?:\w+\s+)?(?:reads|translates|summari[sz]es|processes|"
        rf"sees|opens|drafts|reviews|handles|compiles|answers|replies|parses|is\s+\w+ing)\b"
        rf"[^.!?\n]{{0,100}}?,\s*(?:please\s+)?(?:(?:it|they)\s+(?:should|must|will|needs?\s+to)"
        rf"\s+)?{_VERB}\b", _F)),
    ("addressed", re.compile(
        r"\b(?:ai|llm|agent|assistant|model|bot)[_\s-]*(?:directive|instructions?|handling|"
        r"note|task|action|hint|guidance|todo)\s*(?:[:|=]|\)\s*:)|\btodo\s*\(\s*(?:ai|llm|"
        r"agent|assistant|bot)[\w-]*\s*\)", _F)),
    ("addressed", re.compile(
        r"\bwhoever\s+(?:is\s+)?(?:summari[sz]ing|reading|processing|translating|reviewing|"
        r"answering)\s+this\b", _F)),
    ("addressed", re.compile(
        r"\bthe\s+(?:person|human|user|people|customer)\s+you(?:'re|\s+are)\s+(?:working|"
        r"acting|shopping|helping)\s+(?:for|on\s+behalf\s+of)", _F)),
    ("addressed", re.compile(
        r"\byour\s+(?:user|human|principal|owner)\s+(?:wants|would\s+like|has\s+asked|asked|"
        r"needs|expects|prefers)\b", _F)),
    ("takeover", re.compile(
        r"\b(?:the\s+user|the\s+customer|the\s+owner)\s+(?:would\s+like|wants|has\s+asked|"
        r"needs|expects)\s+(?:you|the\s+assistant|the\s+agent|the\s+ai)\s+to\b", _F)),
    ("takeover", re.compile(
        r"\b(?:remember|store|save|keep|memori[sz]e)\s+this\b[^.!?\n]{0,40}?(?:for\s+later|"
        r"(?:in|to)\s+(?:your\s+)?memory|preference|instruction|permanently)", _F)),
    ("steer", re.compile(
        r"\b(?:the\s+next\s+time|next\s+time|whenever|every\s+time|each\s+time|la\s+"
        r"pr[o\u00f3]xima\s+vez\s+que|la\s+prochaine\s+fois\s+que)\s+(?:the\s+user|el\s+usuario|"
        r"l'utilisateur|o\s+usu\u00e1rio|l'utente)\b[^.!?\n]{0,100}?\b(?:respond|reply|answer|"
        r"add|say|tell|include|send|recommend|schedule|cancel|forward|suggest|mention|cancela|"
        r"responde|envoie|annule)", _F)),
    ("spoof", re.compile(
        r"(?:^|[\s>])(?:instrucci[o\u00f3]n|instruction|istruzione|instru[c\u00e7][a\u00e3]o|"
        r"anweisung|nota|note|hinweis|mensaje|messaggio|mensagem|message)\s+(?:del|du|dello|della|"
        r"do|da|des|vom|de\s+la|of\s+the|from\s+the)\s+(?:sistema|syst[e\u00e8]me|systems?|"
        r"sviluppatore|desarrollador|d[e\u00e9]veloppeur|entwicklers|desenvolvedor|developer|"
        r"administrador|administrateur|amministratore|admin)\s*:", _F)),
    ("spoof", re.compile(
        r"<\s*/?\s*(?:tool_output|tool_result|user_data|document)\s*>\s*<\s*(?:user|system)\s*>|"
        r"<\|im_start\|>\s*user\b[^<]{0,300}?\b(?:permission|authori[sz]e|share|send|forward|"
        r"transfer)|#{2,}\s*(?:human|user)\s*:\s*(?:new\s+task|ignore|forget|from\s+now)|"
        r"\b(?:tool\s+result|retrieved\s+document|search\s+results?)\s+(?:ended|ends|is\s+over)\b",
        _F)),
]

#: Substrings the markers cannot match without.
_STRONG_GATE = ("<|", "<<sys", "[inst", "system>", "[[", "[system", "[admin", "[developer",
                "##", "end of")
_WEAK_GATE = ("system:", "system :", "syst\u00e8me", "sistema", "developer", "admin:",
              "assistant:", "user:", '"role"', "prompt:", "message:", "override:", "note:",
              "update:", "notice:")
#: Stands for "an AI word is in the text" (a whole word of _AI_WORDS: a plain
#: "ai" would be found in "said" and "again").
_AIW = ("<ai>",)

_DATAW = ("conversation", "chat", "history", "prompt", "message", "secret", "api", "credential",
          "password", "token", "environment", "variable", "user", "contact", "private",
          "personal", "note")
_RULEW = ("instruction", "prompt", "direction", "directive", "rule", "guideline", "guidance",
          "order", "command", "context", "programming", "constraint", "restriction", "task",
          "system message")
#: For each pattern above, in order: words it cannot match without (every
#: group needs one), checked with ``in`` on the lowered text first. Most
#: documents then skip most patterns, which keeps the check cheap.
_GATES: tuple[tuple[tuple[str, ...], ...], ...] = (
    (("ignor", "disregard", "forget", "override$", "bypass", "discard", "abandon", "drop",
      "skip", "aside", "never mind"), _RULEW),
    (("follow$", "following$"), ("stop$", "not$", "don$", "longer$"), _RULEW),
    (("ignor", "disregard", "forget", "aside", "drop", "never mind", "abandon", "skip"),),
    (("previous", "prior", "earlier", "original", "above", "preceding", "existing", "all other"),
     ("void", "cancel", "irrelevant", "obsolete", "supersed", "revoked", "null", "overrid",
      "suspended", "no longer")),
    (("cancel", "void", "irrelevant", "obsolete", "revoked", "null", "stop what"),),
    (("ignor", "oubli", "olvid", "vergiss", "dimentic", "esque"),
     ("instruc", "anweisung", "istruzion", "consigne", "indicacion", "vorgabe", "regel",
      "r\u00e8gle", "regle")),
    (("note", "message", "attention", "notice", "instruction", "reminder", "memo", "p.s", "ps",
      "hint", "info"), ("to", "for"), _AIW),
    ((":", ","), _AIW),
    (("if ",), _AIW),
    (("dear", "hey", "hello", "hi ", "hi,", "attention"), _AIW),
    (_AIW, ("reading", "processing", "summari", "parsing", "browsing", "analy", "scanning",
            "crawling", "indexing", "seeing", "viewing", "reviewing", "read", "processed")),
    ((":",), _AIW),
    (("note",), _AIW),
    (("note", "message", "hinweis", "nota", "mensaje", "nachricht", "avis", "aviso"),
     ("assistant", "assistente", "asistente", "assistenti", "ki", "ia", "mod\u00e8les",
      "modelos", "modelli", "model", "llm", "agent")),
    (("mod\u00e8le", "modelo", "modello", "sprachmodell", "assistant", "asistente",
      "assistente", "<ai>", "intelligen", "intelig"), ("si ", "wenn ", "se ")),
    (("caro", "cara", "querid", "cher", "ch\u00e8re", "liebe", "prezad"),),
    (("qui lit", "que lee", "que l\u00ea", "der dies", "che legge"),),
    (("your", "the real", "the actual", "the true"),
     ("new", "real", "actual", "true", "updated", "only", "primary", "next", "remaining", "sole")),
    (("your",), ("changed", "updated", "replaced", "switched")),
    (("from now on",),),
    (("mode",),),
    (("authori", "approved", "consent", "permission"), ("user", "owner", "customer")),
    (("cleared", "authori", "permitted", "allowed"),),
    (_AIW, ("required", "authori", "permitted", "allowed", "cleared", "instructed", "expected")),
    (("user", "shopper"),),
    (("not", "never", "without", "don"),
     ("mention", "reveal", "disclos", "tell", "inform", "alert", "warn", "notif", "let", "say")),
    (("keep",),),
    (("response", "repl", "answer", "summary", "output", "completion"),
     ("include", "add", "append", "insert", "say", "state", "mention", "recommend", "write",
      "output", "respond", "reply", "claim", "describe", "put", "scrivi", "dis$", "di$")),
    (("answer", "repl", "response", "summary", "output", "review"), (" in ",),
     ("report", "present", "describe", "state", "say", "call", "portray", "list", "mark", "rate",
      "treat", "confirm")),
    (("when", "if", "while"), ("summari", "answer", "respond", "repl", "translat", "describ",
                               "report", "asked about", "compar")),
    (("when",), ("leave out", "omit", "drop", "skip", "remove", "hide", "exclude")),
    (("only", "exclusively", "solely", "just"),
     ("respond", "repl", "answer", "output", "print", "say", "return")),
    (_AIW, ("must", "should", "shall", "required", "need to", "always", "will", "now")),
    (("summar", "translation", "response", "repl", "answer", "review"), ("this",),
     ("every", "any", "each", "all", "generated", "written", "produced", "given")),
    (("appropriate", "correct", "right", "proper", "only", "expected"),
     ("reply", "response", "answer")),
    (("relayed", "summarized", "summarised", "read", "processed"), ("by$",), _AIW),
    (_AIW, ("reply", "response", "answer", "output", "summary"), ("here", "this")),
    (("digas", "dis$", "dites", "dire$", "dirlo", "menzionare", "diga$", "conte$", "mencione",
      "nicht", "dile$", "sag$"), ("usuario", "utilisateur", "utente", "usu\u00e1rio", "nutzer",
                                  "erw\u00e4hnen", "sagen", "mitteilen", "verraten")),
    (("deve ", "debe ", "doit ", "muss ", "devrait", "sollte", "deber\u00eda", "dovrebbe"),),
    (("send", "forward", "post", "upload", "mail", "transmit", "exfiltrat", "leak", "copy",
      "submit", "append", "encode", "share", "include"), _DATAW,
     ("http", "www.", "@", "url", "address", "endpoint", "server", "webhook")),
    (_DATAW, ("url", "link", "query", "image", "address", "webhook"), ("http", "www.")),
    (_DATAW, ("mail", "send", "post", "forward", "upload", "submit"), ("http", "@")),
    (("![",),),
    (("http",), ("image", "img", "link", "url", "pixel", "markdown")),
    (("<act>",), ("call", "invoke", "run", "execute", "use", "trigger", "perform", "utiliza",
                  "usa", "rufe", "appelle", "chiama")),
    (("<act>",), ("(",), ("=",)),
    (("tool", "function", "plugin", "action", "integration"), ("use", "call", "invoke", "run"),
     ("buy", "purchase", "send", "transfer", "delete", "share", "post", "open", "create",
      "grant", "request", "fetch", "pay", "email", "forward", "upload", "remove", "book",
      "order")),
    (("following",),),
    (("reveal", "print", "show", "output", "disclose", "share", "repeat", "display", "leak",
      "dump", "recite", "include"), ("your",)),
    (("envoie", "envoyez", "env\u00eda", "envia", "schicke", "sende", "invia", "manda",
      "inoltra", "transf\u00e8re", "transfere"), ("@", "http")),
    (("directing", "instructing", "ordering", "authori", "requiring", "commanding"),
     ("you",)),
    ((*_AIW, "automated"), ("should", "must", "shall", "need", "needs", "expected", "required",
                              "instructed", "asked", "supposed")),
    (_AIW, (",",)),
    (("when", "if", "whenever", "once", "after", "before"), _AIW, (",",)),
    ((*_AIW, "todo"),),
    (("whoever",),),
    (("working", "acting", "shopping", "helping"), ("person", "human", "user", "people",
                                                    "customer")),
    (("your",), ("user", "human", "principal", "owner"),
     ("wants", "would", "asked", "needs", "expects", "prefers")),
    (("user", "customer", "owner"), ("you", "assistant", "agent", "ai")),
    (("remember", "store", "save", "keep", "memori"), ("this",)),
    (("next", "whenever", "every", "each", "pr\u00f3xima", "proxima", "prochaine"),
     ("user", "usuario", "utilisateur", "usu\u00e1rio", "utente")),
    (("sistema", "syst\u00e8me", "system", "systems", "sviluppatore", "desarrollador",
      "d\u00e9veloppeur", "developpeur", "entwicklers", "desenvolvedor", "developer",
      "administrador", "administrateur", "amministratore", "admin"), (":",)),
    (("<", "im_start", "##", "ended", "ends"),),
)
#: The third to fifth rounds: the same families in fourteen other languages,
#: read when asked (``scan(..., other_languages=True)``; policy
#: ``tool_output.other_languages``, on in the shipped default policy).
_PATTERNS_ALL = _PATTERNS + languages.PATTERNS
_GATES_ALL = _GATES + languages.GATES
#: A gate word of letters is compared by its first four letters (words of
#: the text likewise), shorter ones whole: set operations, no per-word loop
#: in Python. Phrases count by their longest word; punctuation is looked for
#: as a substring.
_STEM = 4
_AI_WORDS = frozenset({"ai", "llm", "llms", "gpt", "bot", "bots", "chatbot", "chatbots",
                       "assistant", "assistants", "agent", "agents", "copilot", "model",
                       "models", "claude", "gemini", "ki", "ia"})
#: Everything that separates words, as spaces (str.translate then split: about
#: twice as fast as a regex findall, and this runs on every text).
_SEPARATORS = str.maketrans({c: " " for c in string.punctuation + string.digits
                             + "\u2018\u2019\u201c\u201d\u00ab\u00bb\u2013\u2014\u2026"
                             "\u00b7\u2022\u00bf\u00a1"})


#: Prefix of a gate key that must match a whole word (never in a text's words).
_EXACT_MARK = "\x00"


def _unspaced(word: str) -> bool:
    """Whether ``word`` is written in a script without spaces between words
    (Chinese, Japanese), whose words take attached prefixes (Arabic), or
    whose vowel signs are no letters to ``str.isalpha`` (Devanagari): the gate
    looks for it as a substring."""
    return any(ord(c) >= 0x2E80 or 0x0600 <= ord(c) <= 0x06FF or 0x0900 <= ord(c) <= 0x097F
               for c in word)


def _substring(word: str) -> bool:
    """Whether a gate key is looked for as a substring: no letters in it, a
    script :func:`_unspaced`, or one letter English does not write ("ł",
    "ı": a Polish or Turkish text has them somewhere)."""
    return (not any(c.isalpha() for c in word) or _unspaced(word)
            or (len(word) == 1 and not word.isascii()))


def _key(word: str) -> str:
    """``word`` as the gate compares it; a trailing ``$`` asks for the whole word."""
    word = word if word.strip() == "" else word.strip()
    if word.endswith("$") and word[:-1].isalpha():
        return _EXACT_MARK + word[:-1]
    if word in ("<ai>", "<act>") or _substring(word):
        return word
    letters = re.findall(r"[^\W\d_]+", word)
    if len(letters) != 1 or letters[0] != word.strip():
        if any(not c.isalpha() and not c.isspace() for c in word.strip()):
            return word  # punctuation inside: a substring
        word = max(letters, key=len)
    return word[:_STEM] if len(word) >= _STEM else word


_GATE_SETS_ALL = tuple(tuple(frozenset(_key(w) for w in group) for group in gate)
                       for gate in _GATES_ALL)
_GATE_SETS = _GATE_SETS_ALL[:len(_PATTERNS)]


def _substrings(gates: tuple[tuple[frozenset[str], ...], ...]) -> tuple[str, ...]:
    return tuple(sorted({k for gate in gates for group in gate for k in group
                         if k not in ("<ai>", "<act>") and (not k.isalpha() or _substring(k))
                         and not k.startswith(_EXACT_MARK)}))


#: (patterns with their gates, gate substrings) of English, and of all languages
_RULESET = (tuple(zip(_PATTERNS, _GATE_SETS, strict=True)), _substrings(_GATE_SETS))
_RULESET_ALL = (tuple(zip(_PATTERNS_ALL, _GATE_SETS_ALL, strict=True)),
                _substrings(_GATE_SETS_ALL))
_EXACT = frozenset(k[1:] for gate in _GATE_SETS_ALL for group in gate for k in group
                   if k.startswith(_EXACT_MARK))


#: The words some English rule's gate waits for (or their stems).
_GATE_WORDS = frozenset(k for gate in _GATE_SETS for group in gate
                        for k in group if k.isalpha())


def _present(lowered: str, substrings: tuple[str, ...]) -> set[str]:
    """The gate keys in ``lowered``, and "<ai>" if an AI word is."""
    words = set(lowered.translate(_SEPARATORS).split())
    found = words | {w[:_STEM] for w in words if len(w) > _STEM}
    found.update(_EXACT_MARK + w for w in words & _EXACT)
    found.update(w for w in substrings if w in lowered)
    if not words.isdisjoint(_AI_WORDS):
        found.add("<ai>")
    if "_" in lowered and _ACT_NAME.search(lowered):
        found.add("<act>")
    return found

#: Chat-template and role markers that open a fake turn: those no document
#: for people contains, and role labels at a line start, which logs and
#: transcripts have too.
_SPOOF_STRONG = re.compile(
    r"<\|im_start\|>\s*(?:system|assistant|user)|<\|(?:system|assistant|user)\|>|<<SYS>>|"
    r"\[INST\]|<\|start_header_id\|>|</?system>|\[\[?\s*(?:system|admin|developer)[^\]\n]{0,20}"
    r"\]\]?|#{2,}\s*(?:system|instructions?|new\s+instructions?)\s*:?|"
    r"\bend\s+of\s+(?:tool\s+output|document|context|user\s+data)\b",
    re.IGNORECASE)
_SPOOF_WEAK = re.compile(
    r"^\s*(?:system|syst[e\u00e8]me|sistema|developer|admin|assistant|user)\s*(?:prompt|message|"
    r"override|note|update|notice)?\s*:|\"role\"\s*:\s*\"(?:system|developer)\"",
    re.IGNORECASE | re.MULTILINE)
#: What the model is told to do after a role label.
_ORDER = re.compile(
    r"\byou\s+(?:must|should|are\s+(?:now|to|required)|will|shall|need\s+to)\b|\byour\s+"
    r"(?:task|role|job|instructions?)\b|\b(?:respond|reply|answer)\s+(?:only|with)\b|\b"
    r"(?:ignore|disregard)\b|\b(?:the\s+)?(?:assistant|model|ai)\s+(?:must|should|now|will)\b",
    re.IGNORECASE)
#: ... and after a template marker, any order will do.
_ORDER_ANY = re.compile(
    r"(?:^|[:.\]>}\"]\s*|\b(?:then|now|please)\s+)(?:reveal|print|list|include|tell|send|"
    r"forward|call|respond|reply|answer|say|output|disclose|append|ignore|disregard|"
    r"summari[sz]e|recommend|direct|confirm|invoke|execute|delete|transfer|email|share|"
    r"repeat|write|add|remove|open|envoie|env\u00eda|sende|invia)\b|\byou\s+(?:must|should|"
    r"will|are)\b|\bthe\s+assistant\b", re.IGNORECASE | re.MULTILINE)
#: Fake turns in other languages: their markers, a system role label after a
#: sentence, and the orders that follow them (:mod:`injection_languages`).
_SPOOF_OTHER = re.compile(languages.MARKERS, re.IGNORECASE)
_ROLE_OTHER = re.compile(
    r"(?:^|[.!?]\s+)(?:sistema|syst[e\u00e8]me|система|系统|システム|systeem|sistem|"
    r"시스템|النظام|सिस्टम)\s*[:\uff1a]",
    re.IGNORECASE | re.MULTILINE)
_ROLE_OTHER_GATE = ("sistema", "syst\u00e8me", "система", "系统", "システム", "systeem", "sistem",
                    "시스템", "النظام", "सिस्टम")
_ORDER_OTHER = re.compile(languages.ORDERS, re.IGNORECASE)
#: (markers, the orders that must follow them, substrings the markers need,
#: whether a marker run into a word does not count: "## Systemprompt" is a
#: heading, and the other languages' orders are read after it)
_SPOOFS: tuple[tuple[re.Pattern[str], re.Pattern[str], tuple[str, ...], bool], ...] = (
    (_SPOOF_STRONG, _ORDER_ANY, _STRONG_GATE, False), (_SPOOF_WEAK, _ORDER, _WEAK_GATE, False))
_SPOOFS_ALL = (*_SPOOFS, (_SPOOF_STRONG, _ORDER_OTHER, _STRONG_GATE, True),
               (_SPOOF_OTHER, _ORDER_OTHER, languages.MARKER_GATE, True),
               (_ROLE_OTHER, _ORDER_OTHER, _ROLE_OTHER_GATE, True))
#: Writing about attacks: a quoted match near one of these is an example.
_ABOUT = re.compile(
    r"\b(?:attack\w*|injection|jailbreak\w*|example(?![.-]\w)|e\.g\.|such\s+as|"
    r"for\s+instance|phrases?|"
    r"researchers?|red[\s-]?team\w*|adversar\w*|malicious|payloads?|exploit\w*|hidden\s+text|"
    r"inject\w*|embedded|planted|quiz|test\w*|assert\w*|fixture|sample|bug|"
    r"security|vulnerab\w*|defen[cs]\w*|classifier|detect\w*)\b", re.IGNORECASE)
#: ... and in other languages (no word boundaries: Chinese and Japanese have none).
_ABOUT_OTHER = re.compile(languages.ABOUT, re.IGNORECASE)
#: Quotation marks: the same mark on both sides, or an opening and a closing
#: one. The straight apostrophe is left out: contractions would pair with it.
_SAME = ('"', "`")
#: A straight single-quoted passage: the marks not inside words (apostrophes).
_SINGLE = re.compile(r"(?<![\w'])'(?=\S)[^'\n]{2,300}?(?<=\S)'(?![\w'])")
_PAIRS = (("\u201c", "\u201d"), ("\u2018", "\u2019"), ("\u00ab", "\u00bb"), ("\u201e", "\u201c"),
          ("\u201e", "\u201d"), ("\u300c", "\u300d"), ("\u300e", "\u300f"))


#: Long texts are read in windows of about this many characters: the gates
#: stay selective (a megabyte has every gate word somewhere), so the cost
#: grows with the length instead of with the length times the patterns.
WINDOW = 2000
_OVERLAP = 300


def scan(text: str, *, other_languages: bool = False) -> Finding | None:
    """The strongest injection mark in ``text``, or None. ``other_languages``:
    read it with the rules for fourteen other languages too
    (:mod:`guardstack.injection_languages`)."""
    if not text or len(text) < 12:
        return None
    if _ZERO_WIDTH.search(text):  # words joined or split by invisible characters
        text = _ZERO_WIDTH.sub(" ", text)
    found = _windows(text, other_languages)
    if found is None or found.score < SCORE:
        # Only then read the glued words apart: a finding in the text as written
        # keeps its words as written ("MyBank.example.com" stays one host).
        split = _split_unknown(_GLUED.sub(r"\1 ", text))
        if split != text:
            glued = _windows(split, other_languages)
            if glued is not None and (found is None or glued.score > found.score):
                found = glued
    return found


def _windows(text: str, other_languages: bool) -> Finding | None:
    """The strongest mark over the text's overlapping windows."""
    if len(text) <= WINDOW:
        return _scan(text, other_languages)
    best: Finding | None = None
    for start in range(0, len(text), WINDOW - _OVERLAP):
        found = _scan(text[start: start + WINDOW], other_languages)
        if found is not None and (best is None or found.score > best.score):
            best = found
            if best.score >= SCORE:
                break
    return best


def _scan(text: str, other_languages: bool = False) -> Finding | None:
    lowered = text.lower()
    rules, substrings = _RULESET_ALL if other_languages else _RULESET
    present = _present(lowered, substrings)
    best: Finding | None = None
    for (family, pattern), gate in rules:
        if not _open(gate, present):
            continue
        for match in pattern.finditer(text):
            score = QUOTED_SCORE if _quoted_example(text, match.start(), match.end(),
                                                    other_languages) else SCORE
            if best is None or score > best.score:
                best = Finding(_family(family, match), score,
                               _excerpt(_sentence(text, match.start(), match.end())))
            if score >= SCORE:
                return best
    for markers, orders, marks, whole in _SPOOFS_ALL if other_languages else _SPOOFS:
        if not any(mark in lowered for mark in marks):
            continue
        for match in markers.finditer(text):
            if whole and text[match.end(): match.end() + 1].isalpha():
                continue
            after = text[match.end(): match.end() + 300]
            if orders.search(after):
                return Finding("spoof", SCORE,
                               _excerpt(_sentence(text, match.start(), match.end())))
    return best


def _family(family: str, match: re.Match[str]) -> str:
    """A rule's family, or for a language's patterns read as one, the name of
    the group that matched (:data:`injection_languages.MATCHED`)."""
    if family != languages.MATCHED or not match.lastgroup:
        return family
    return match.lastgroup.split("__")[0]


def _open(gate: tuple[frozenset[str], ...], present: set[str]) -> bool:
    """Whether every group of a pattern's gate has a word in the text."""
    # A plain loop: all() over a generator costs more, and this runs ~50 times a text.
    for group in gate:  # noqa: SIM110
        if group.isdisjoint(present):
            return False
    return True


def _quoted_example(text: str, start: int, end: int, other_languages: bool = False) -> bool:
    """Whether ``text[start:end]`` sits inside quotation marks, within its
    paragraph, in a passage about attacks (a security article's example, not
    an order)."""
    para = text.rfind("\n\n", 0, start) + 1
    stop = text.find("\n\n", end)
    stop = len(text) if stop < 0 else stop
    spans = []
    for mark in _SAME:
        before = text.count(mark, para, start)
        if before % 2 == 1:  # an odd count: a quotation is open at the match
            opened = text.rfind(mark, para, start)
            closed = text.find(mark, end, stop)
            if closed >= 0:
                spans.append((opened, closed))
    for quote in _SINGLE.finditer(text, para, stop):
        if quote.start() < start and end <= quote.end():
            spans.append((quote.start(), quote.end() - 1))
    for left, right in _PAIRS:
        opened = text.rfind(left, para, start)
        if opened >= 0 and text.rfind(right, opened, start) < 0:
            closed = text.find(right, end, stop)
            if closed >= 0:
                spans.append((opened, closed))
    # The cue must be outside the quotation: inside it, an attacker wrote it.
    for opened, closed in spans:
        around = (text[max(para, opened - 250): opened] + " "
                  + text[closed + 1: min(stop, closed + 250)])
        if _ABOUT.search(around) or (other_languages and _ABOUT_OTHER.search(around)):
            return True
    return False


_SENTENCE_END = re.compile(r"[.!?](?=\s|$)|\n\s*\n")


def _sentence(text: str, start: int, end: int) -> str:
    """``text[start:end]`` continued to the end of its sentence (a URL's dots
    do not end one), within 200 characters."""
    stop = _SENTENCE_END.search(text, end, min(len(text), start + 200))
    return text[start: stop.end() if stop else min(len(text), start + 200)]


def _excerpt(words: str) -> str:
    words = " ".join(words.split()).lstrip(".,;:!? ")
    return words if len(words) <= 160 else words[:157] + "..."


_URL_HOST = re.compile(r"\bhttps?://([a-z0-9.-]+\.[a-z]{2,})", re.IGNORECASE)
_EMAIL = re.compile(r"\b[\w.+-]+@[a-z0-9-]+(?:\.[a-z0-9-]+)*\.[a-z]{2,}\b", re.IGNORECASE)
_HOST = re.compile(r"\b((?:[a-z0-9-]+\.)+(?:com|net|org|info|io|co|biz|xyz|top|ru|cn|me|app|"
                   r"dev|site|online|shop|link|click|ly|gg|ai))\b", re.IGNORECASE)


def targets(text: str) -> frozenset[str]:
    """Where planted words point: the hosts of their links, their e-mail
    addresses and bare domains ("deals.example.net"), lower-cased. An answer
    that repeats one, when the user never named it, did what the page asked
    (``tool_output.followed``)."""
    found = {h.lower().rstrip(".") for h in _URL_HOST.findall(text)}
    found |= {e.lower() for e in _EMAIL.findall(text)}
    found |= {h.lower() for h in _HOST.findall(text)}
    return frozenset(found)
