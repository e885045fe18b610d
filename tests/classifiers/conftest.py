"""Fixtures for the guard-model backend tests (helpers: backend_helpers.py).

The HTTP path is tested against the real llama.cpp server (``llama_server``,
tests/fixtures/llama_server.py); ``fake_server`` covers faults a real server
cannot produce on demand (500s, hangs, resets, exact log-probabilities).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from backend_helpers import FakeServer


@pytest.fixture
def fake_server() -> Callable[[Callable[[dict[str, Any], str], Any]], FakeServer]:
    return FakeServer
