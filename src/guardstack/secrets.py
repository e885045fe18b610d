"""Secret references: how every guardstack setting names an API key without
storing it.

A value is a literal, or a reference read from the environment when it is
needed: ``os.environ/NAME`` (LiteLLM's spelling), ``$env:NAME``, or the
mapping ``{"$env": "NAME"}`` (YAML and JSON configs). An unset or empty
variable is an error that names it, never a silent ``None``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

SecretRef = str | Mapping[str, str] | None

PREFIXES = ("os.environ/", "$env:")


class SecretError(ValueError):
    """A secret reference that cannot be resolved; ``name`` is the
    environment variable it names, when it names one."""

    def __init__(self, message: str, name: str | None = None) -> None:
        super().__init__(message)
        self.name = name


def resolve_secret(ref: SecretRef, what: str = "the API key reference") -> str | None:
    """The value ``ref`` stands for (``None`` stays ``None``). ``what`` names
    the setting in the error, e.g. ``--api-key``."""
    if ref is None:
        return None
    if isinstance(ref, Mapping):
        if set(ref) != {"$env"}:
            raise SecretError(f'{what}: a secret reference mapping must be {{"$env": "NAME"}}')
        return _env(str(ref["$env"]), what)
    for prefix in PREFIXES:
        if ref.startswith(prefix):
            return _env(ref.removeprefix(prefix), what)
    return ref


def _env(name: str, what: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise SecretError(f"environment variable {name} (from {what}) is not set", name)
    return value
