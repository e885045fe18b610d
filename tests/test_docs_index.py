"""Every page in docs/ is reachable: listed in mkdocs.yml's nav and linked
from docs/index.md; and every relative link in docs/ (and the README) points
to a file that exists, and to a heading that exists when it names one."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGES = sorted(p.name for p in DOCS.glob("*.md"))
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
FENCE = re.compile(r"^(```|~~~).*?^\1", re.S | re.M)
CODE_SPAN = re.compile(r"`[^`\n]*`")


def nav_files(node: Any) -> list[str]:
    if isinstance(node, str):
        return [node]
    if isinstance(node, list):
        return [f for item in node for f in nav_files(item)]
    if isinstance(node, dict):
        return [f for value in node.values() for f in nav_files(value)]
    return []


def prose(text: str) -> str:
    """The text outside code blocks and code spans, where links are links."""
    return CODE_SPAN.sub("", FENCE.sub("", text))


def slug(heading: str) -> str:
    # GitHub's and MkDocs' (toc) anchors agree on this for our headings:
    # lower case, punctuation dropped, spaces to hyphens.
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    text = FENCE.sub("", path.read_text(encoding="utf-8"))
    return {slug(m.group(1)) for m in re.finditer(r"^#{1,6}\s+(.+?)\s*#*$", text, re.M)}


def relative_links(path: Path) -> list[str]:
    links = LINK.findall(prose(path.read_text(encoding="utf-8")))
    return [t for t in links if not re.match(r"^[a-z][a-z0-9+.-]*:", t)]


def test_mkdocs_nav_lists_every_page_and_only_existing_ones():
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
    assert config["docs_dir"] == "docs"
    listed = nav_files(config["nav"])
    assert len(listed) == len(set(listed)), "a page is listed twice in mkdocs.yml"
    missing = [f for f in listed if not (DOCS / f).is_file()]
    assert not missing, f"mkdocs.yml lists pages that do not exist: {missing}"
    unlisted = sorted(set(PAGES) - set(listed))
    assert not unlisted, f"add these pages to the nav in mkdocs.yml: {unlisted}"


def test_index_links_every_page():
    linked = {t.split("#")[0] for t in relative_links(DOCS / "index.md")}
    unlinked = sorted(set(PAGES) - linked - {"index.md"})
    assert not unlinked, f"link these pages from docs/index.md: {unlinked}"


@pytest.mark.parametrize("page", [*PAGES, "../README.md"])
def test_relative_links_point_to_existing_files_and_headings(page):
    source = (DOCS / page).resolve()
    broken = []
    for target in relative_links(source):
        file_part, _, fragment = target.partition("#")
        dest = (source.parent / file_part).resolve() if file_part else source
        missing_heading = bool(fragment) and dest.suffix == ".md" and dest.exists() \
            and fragment not in anchors(dest)
        if not dest.exists() or missing_heading:
            broken.append(target)
    assert not broken, f"{page}: broken links {broken}"


def test_the_link_checker_sees_links():
    # Guards the regexes: a checker that finds nothing passes everything.
    sample = "See [a](a.md), [b](b.md#x) and ![img](i.png) `[c](c.md)` [web](https://x.org)."
    assert LINK.findall(prose(sample)) == ["a.md", "b.md#x", "https://x.org"]
    assert slug("The latency/safety trade-off") == "the-latencysafety-trade-off"
    assert slug("`guardstack serve`") == "guardstack-serve"
