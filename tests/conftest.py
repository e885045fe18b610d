"""Shared test setup. Fixtures for real servers live in tests/fixtures/."""

pytest_plugins: list[str] = []
