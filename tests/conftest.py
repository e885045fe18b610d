"""Shared test setup. Fixtures for real servers live in tests/fixtures/."""

import socket

import pytest

pytest_plugins = ["tests.fixtures.llama_server", "tests.fixtures.postgres"]


@pytest.fixture
def dead_url() -> str:
    """A loopback URL with nothing listening."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"
