"""The format-directive rule measured for answers to clean prompts, and not shipped.

An experiment of 2026-11-27 (docs/normalization.md, "Style injection: a
strict answer check after format directives, measured and not shipped"): a
prompt that dictates the reply's format (style injection, Wei et al. 2023) or
uses an adversarial jailbreak tactic would not count as clean, so its answer
would be halted from the response rule's own threshold instead of
``response.clean_prompt_threshold``. It halted more helpful answers to benign
format requests than harmful answers to wrapped harmful ones, so the gateway
does not do it; the pattern lives here so the figures can be reproduced
(``style_strict_answer.py``, ``style_answers.py``, ``clean_prompt_answers.py``).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from guardstack import framing

_FORMATS = (r"json|yaml|xml|csv|tsv|toml|html|markdown|latex|sql|"
            r"(?:python|javascript|js|typescript)\s+(?:dict(?:ionary)?|list|object|array|code)|"
            r"(?:markdown\s+)?tables?|(?:bullet(?:ed)?|numbered)\s+(?:points?|lists?)|"
            r"bullets|plain\s+text|code\s+(?:block|only)|key-value\s+pairs?|"
            r"(?:a|the)\s+(?:given\s+|following\s+|this\s+)?(?:schema|template|form)")
STYLE = re.compile(
    rf"""(?:
        \b(?:respond|reply|answer|output|return|format|write|give|present|provide|produce|
           emit|express|structure|print|render|deliver)\w*\b[^.!?\n]{{0,40}}?
           \b(?:in|as|with|using|into|via)\s+(?:(?:a|an|the|valid|strict|raw|only|pure|
           well-formed|properly\s+formatted|exactly|at\s+most|\d+|one|two|three|four|five|
           six|seven|eight|nine|ten)\s+)*(?:{_FORMATS})\b
      | \b(?:return|output|emit|produce|give\s+me|generate)\s+(?:only\s+)?(?:(?:a|an|the|
           valid|strict|raw|pure)\s+)*(?:{_FORMATS})\b
      | \b(?:{_FORMATS})\s+(?:only|format(?:ted)?\s+only)\b
      | \bonly\s+(?:valid\s+)?(?:{_FORMATS})\b
      | (?:^|[\n.;]\s*)(?:output\s+)?format\s*:\s*(?:{_FORMATS})\b
      | \b(?:no|without)\s+(?:prose|commentary|explanations?|preamble|extra\s+text|
           text\s+outside|surrounding\s+text)\b
      | \band\s+nothing\s+else\b
      | \bfill\s+(?:in\s+)?(?:every|each|all|the)\s+(?:fields?|keys?|slots?|blanks?)\b
      | \byou\s+are\s+an?\s+[\w-]{{0,20}}\s*(?:api|endpoint|parser|function|compiler|
           interpreter|terminal|serializer)\b
      | (?:^|[\n.;]\s*)(?:task|request|query|instruction|input)\s*:
      | \{{\s*"[\w\s-]{{1,30}}"\s*:\s*["\[{{]
      | \b(?:under|fewer\s+than|at\s+most|no\s+more\s+than|exactly)\s+\d+\s+
           (?:words|characters|lines)\b
      | \bone\s+line\s+per\s+(?:step|item|point)\b
    )""", re.I | re.X)


def strict_answer(texts: Iterable[str]) -> bool:
    """Whether any of these prompts dictates the reply's format (``STYLE``) or
    uses an adversarial jailbreak tactic (``guardstack.framing.ADVERSARIAL``)."""
    return any(STYLE.search(t[:framing.TACTICS_MAX_CHARS]) or framing.adversarial_tactics(t)
               for t in texts)
