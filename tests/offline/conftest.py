"""Offline-analysis fixtures: small simulated traffic, ingested once per
session with the real classifier, copied per test."""

from __future__ import annotations

import argparse
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.fixtures.postgres import pg_server, pg_url  # noqa: F401

from guardstack.simulate import SimulationConfig, Traffic, generate, sinks
from guardstack.store import Store

#: Small enough to ingest in seconds on the shared machine, big enough to hold
#: every persona kind and a coordinated group.
SIM = SimulationConfig(users=40, days=7, seed=5, mix={"adversary": 0.4})


@pytest.fixture(autouse=True)
def _pseudonym_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GUARDSTACK_PSEUDONYM_KEY", "test-key-not-secret-0123456789")


@pytest.fixture(scope="session")
def traffic() -> Traffic:
    return generate(SIM)


@pytest.fixture(scope="session")
def traffic_file(traffic: Traffic, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sim") / "traffic.jsonl"
    sinks.write_jsonl(traffic.records, path)
    return path


@pytest.fixture(scope="session")
def ingested_db(traffic_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from guardstack.offline.ingest import ingest

    path = tmp_path_factory.mktemp("db") / "ingested.db"
    store = Store(f"sqlite:///{path}")
    store.migrate()
    ingest(store, traffic_file, progress=False)
    store.dispose()
    return path


@pytest.fixture
def loaded_store(ingested_db: Path, tmp_path: Path) -> Iterator[Store]:
    """A private copy of the ingested store."""
    copy = tmp_path / "store.db"
    shutil.copy(ingested_db, copy)
    store = Store(f"sqlite:///{copy}")
    yield store
    store.dispose()


@pytest.fixture
def empty_store(tmp_path: Path) -> Iterator[Store]:
    store = Store(f"sqlite:///{tmp_path / 'empty.db'}")
    store.migrate()
    yield store
    store.dispose()


def _run_cli(argv: list[str]) -> int:
    from guardstack.offline.commands import add_commands

    parser = argparse.ArgumentParser(prog="guardstack")
    add_commands(parser.add_subparsers())
    args: Any = parser.parse_args(argv)
    return int(args.func(args))


@pytest.fixture
def cli() -> Any:
    """Run ``guardstack ingest|analyze ...`` in process; returns the exit code."""
    return _run_cli
