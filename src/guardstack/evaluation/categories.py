"""Map the category names that datasets use onto guardstack taxonomy ids,
for reporting recall per category.

Three sources, first match wins:

1. names that already are taxonomy ids (the held-out splits ``guardstack
   train`` exports carry mapped ids);
2. the training recipe's own map, :func:`guardstack.training.data.map_categories`,
   so evaluation reads a source's categories the way training learned them;
3. the small table below, for evaluation-only sets the recipe does not map
   (CoSafe, ToxicChat) and generic names.

Ambiguous names (HarmBench ``copyright``, Do-Not-Answer's broad risk areas,
...) stay unmapped rather than guessed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from guardstack.taxonomy import CATEGORY_IDS
from guardstack.training import data as training_data

#: Lower-cased source category name -> taxonomy id, after the two steps above.
BY_NAME: dict[str, str] = {
    # Generic names shared by several sets (exact taxonomy ids match without a row here).
    "hate_speech": "hate",
    "violence": "violent_crime",
    "self-harm": "self_harm",
    "jailbreaking": "jailbreak",  # ToxicChat
    # CoSafe (BeaverTails names); evaluation-only, so the recipe does not map it.
    "animal_abuse": "violent_crime",
    "discrimination,stereotype,injustice": "hate",
    "financial_crime,property_crime,theft": "nonviolent_crime",
    "hate_speech,offensive_language": "hate",
    "privacy_violation": "privacy",
    "sexually_explicit,adult_content": "sexual",
    "terrorism,organized_crime": "violent_crime",
    "violence,aiding_and_abetting,incitement": "violent_crime",
}

_unknown = {v for v in BY_NAME.values() if v not in CATEGORY_IDS}
if _unknown:  # pragma: no cover - guards the tables above against taxonomy renames
    raise RuntimeError(f"category map names unknown taxonomy ids: {sorted(_unknown)}")


def to_taxonomy(
    names: Iterable[str], source: str | None = None, meta: Mapping[str, Any] | None = None
) -> tuple[str, ...]:
    """Taxonomy ids for a record's category names (sorted, deduplicated; may be empty)."""
    names = list(names)
    ids = {name for name in names if name in CATEGORY_IDS}
    if not ids and source:
        row = {"categories": names, "meta": dict(meta or {})}
        ids.update(training_data.map_categories(source, row) or ())
    if not ids:
        keys = (name.strip().lower() for name in names)
        ids = {BY_NAME.get(key, key) for key in keys if key in BY_NAME or key in CATEGORY_IDS}
    return tuple(sorted(ids))
