"""argparse ``type=`` converters shared by every command, so a bad number
gets the same clear message everywhere."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime

from guardstack.urls import normalize_base_url

#: Years a stored or analysed timestamp may fall in: conversation logs are
#: not older, and windows and decay computed around a time near year 1 or
#: 9999 would overflow Python's datetime.
YEARS = (1970, 2999)


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None


def positive_int(text: str) -> int:
    value = _int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def count(text: str) -> int:
    value = _int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative, got {value}")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def _unit(text: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"expected {what} in [0, 1], got {text!r}")
    return value


def share(text: str) -> float:
    """A fraction in [0, 1] (``--agents 0.3``)."""
    return _unit(text, "a share")


def score(text: str) -> float:
    """A classifier score in [0, 1] (``--sensitive-score 0.2``)."""
    return _unit(text, "a score")


def base_url(text: str) -> str:
    """An OpenAI-compatible server's base URL; a bare ``http://host:port``
    gets ``/v1``, where vLLM, llama.cpp's server and Ollama serve it."""
    try:
        return normalize_base_url(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def in_years(value: datetime, text: str) -> datetime:
    """``value`` in UTC, or ValueError naming ``text`` when it falls outside :data:`YEARS`."""
    try:
        utc = value.astimezone(UTC)
    except OverflowError:
        utc = None
    if utc is None or not YEARS[0] <= utc.year <= YEARS[1]:
        raise ValueError(f"{text!r} is out of range (years {YEARS[0]}-{YEARS[1]})")
    return utc
