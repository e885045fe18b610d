"""A tiny template language for request texts, so a few hundred hand-written
templates yield many thousands of distinct but natural requests.

``{name}`` draws one entry of ``fillers[name]`` (entries may hold slots of
their own); ``{a|b|c}`` picks one inline alternative (``{|please }`` makes a
word optional). Innermost braces are expanded first, so alternatives may nest.
All choices come from the ``random.Random`` passed in: same state, same text.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator, Mapping, Sequence

Fillers = Mapping[str, Sequence[str]]

_SLOT = re.compile(r"\{([^{}]*)\}")
# Deep enough for any hand-written nesting, small enough to stop a filler
# that (by mistake) refers to itself.
_MAX_ROUNDS = 12


class TemplateError(ValueError):
    """A template names a filler that does not exist, or never terminates."""


def expand(template: str, rng: random.Random, fillers: Fillers | None = None) -> str:
    fillers = fillers or {}
    text = template
    for _ in range(_MAX_ROUNDS):
        if "{" not in text:
            return _tidy(text)

        def pick(match: re.Match[str]) -> str:
            body = match.group(1)
            if "|" in body:
                return rng.choice(body.split("|"))
            options = fillers.get(body)
            if not options:
                raise TemplateError(f"unknown filler {{{body}}} in template {template!r}")
            return rng.choice(options)

        text = _SLOT.sub(pick, text)
    raise TemplateError(f"template {template!r} is still unexpanded after {_MAX_ROUNDS} rounds")


def bind(fillers: Fillers, rng: random.Random) -> dict[str, tuple[str, ...]]:
    """Fix one value per slot, so a slot used in several turns of one
    conversation (the same country, the same product) names the same thing."""
    return {name: (rng.choice(list(options)),) for name, options in sorted(fillers.items())}


class Binding(Mapping[str, Sequence[str]]):
    """:func:`bind` on demand: a slot's value is drawn the first time a
    template uses it (topics have dozens of slots, a session uses a few)."""

    def __init__(self, fillers: Fillers, rng: random.Random) -> None:
        self._fillers, self._rng = fillers, rng
        self._chosen: dict[str, tuple[str, ...]] = {}

    def __getitem__(self, name: str) -> Sequence[str]:
        if name not in self._chosen:
            self._chosen[name] = (self._rng.choice(self._fillers[name]),)
        return self._chosen[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._fillers)

    def __len__(self) -> int:
        return len(self._fillers)


def slots(template: str) -> set[str]:
    """Named slots a template uses directly (for checks that every filler exists)."""
    return {m.group(1) for m in _SLOT.finditer(template) if "|" not in m.group(1)}


def _tidy(text: str) -> str:
    # Optional words leave double spaces and " ," behind; users do not type those.
    text = re.sub(r"[ \t]{2,}", " ", text)
    text = re.sub(r" ([,.?!])", r"\1", text)
    text = text.strip()
    return text[:1].upper() + text[1:] if text else text
