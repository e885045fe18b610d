"""The text an OpenAI-style content part carries, whatever its type says.

Model servers read more than ``text`` parts: vLLM renders ``input_text``,
``output_text``, ``refusal`` and ``thinking`` parts into the prompt as it
renders ``text`` ones. Whatever a server may render must be judged, so
every part's text counts: its ``text`` field, or the field its type names
(``refusal``, ``thinking``), for any type, known or not. Images and audio
carry none and pass through.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: Part types whose text is in a field of the type's own name.
_NAMED_FIELDS = {"refusal": "refusal", "thinking": "thinking"}


def field_of(part: Mapping[str, Any]) -> str:
    """The field of ``part`` that holds its text."""
    kind = part.get("type")
    return _NAMED_FIELDS.get(kind, "text") if isinstance(kind, str) else "text"


def part_text(part: Any) -> str | None:
    """The text ``part`` carries, or None (an image, audio). A bare string in
    the list is text too: vLLM reads it as such."""
    if isinstance(part, str):
        return part
    if not isinstance(part, Mapping):
        return None
    text = part.get(field_of(part))
    return text if isinstance(text, str) else None
