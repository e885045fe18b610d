"""Meta-tests: the reference docs are generated from the code's tables and
must match what is committed, so a new setting, category or command cannot
ship undocumented."""

from pathlib import Path

import pytest

from guardstack import reference
from guardstack.policy import SETTINGS
from guardstack.taxonomy import CATEGORY_IDS

DOCS = Path(__file__).resolve().parents[1] / "docs"


@pytest.mark.parametrize("page", sorted(reference.PAGES))
def test_generated_reference_pages_are_up_to_date(page):
    committed = (DOCS / page).read_text(encoding="utf-8")
    assert committed == reference.PAGES[page](), (
        f"docs/{page} is stale: run `python -m guardstack.reference`"
    )


def test_every_category_and_setting_is_documented():
    taxonomy = (DOCS / "taxonomy.md").read_text(encoding="utf-8")
    policy = (DOCS / "policy.md").read_text(encoding="utf-8")
    for cat in CATEGORY_IDS:
        assert f"`{cat}`" in taxonomy
    for s in SETTINGS:
        assert f"`{s.name}`" in policy


def test_every_command_is_documented():
    from guardstack.cli import build_parser

    text = (DOCS / "cli.md").read_text(encoding="utf-8")
    parser = build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    for name in sub.choices:
        assert f"## `guardstack {name}`" in text
