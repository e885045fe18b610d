"""Request texts for the simulator's personas, written by the guardstack team.

Every text here is a *request* at the level harm benchmarks use: it may name a
goal, never carry instructions, recipes, quantities or code. The content test
in ``tests/simulate/test_content.py`` scans generated traffic to keep it so.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from guardstack.simulate.templates import Fillers


@dataclass(frozen=True)
class Topic:
    """A subject a persona asks about: first-turn templates, follow-ups that
    only make sense after an opener, and the fillers both draw from."""

    name: str
    openers: tuple[str, ...]
    followups: tuple[str, ...] = ()
    fillers: Fillers = field(default_factory=dict)
