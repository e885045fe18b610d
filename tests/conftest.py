"""Shared test setup. Fixtures for real servers live in tests/fixtures/."""

pytest_plugins = ["tests.fixtures.llama_server", "tests.fixtures.postgres"]
