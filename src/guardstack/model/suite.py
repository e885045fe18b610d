"""Evaluation suites: harmful requests and benign-but-sensitive prompts in the
normalized schema of ``../shared/data`` (``id``, ``text``, ``label``,
``categories``, ``source``...).

Only single-turn, prompt-level records are used; response-level and
multi-turn records are skipped and counted, bad lines are errors with their
file and line number so a broken suite never yields a silently smaller run.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from guardstack.taxonomy import CATEGORY_IDS

DEFAULT_SUITE = "default"


class SuiteError(ValueError):
    """A suite file that cannot be read; ``str()`` names the file and line."""


@dataclass(frozen=True, slots=True)
class SuiteItem:
    id: str
    text: str
    harmful: bool
    categories: tuple[str, ...] = ()
    source: str = ""

    @property
    def kind(self) -> str:
        return "harmful" if self.harmful else "benign"


@dataclass(slots=True)
class Suite:
    items: list[SuiteItem] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    skipped: int = 0

    @property
    def harmful(self) -> list[SuiteItem]:
        return [i for i in self.items if i.harmful]

    @property
    def benign(self) -> list[SuiteItem]:
        return [i for i in self.items if not i.harmful]


def _taxonomy(names: Sequence[str], source: str, meta: Any) -> tuple[str, ...]:
    ids = tuple(sorted({n for n in names if n in CATEGORY_IDS}))
    if ids or not names:
        return ids
    try:  # the evaluation harness's source-name map, when that area is installed
        from guardstack.evaluation.categories import to_taxonomy
    except ImportError:  # pragma: no cover - evaluation ships with the package
        return ()
    return to_taxonomy(names, source, meta if isinstance(meta, dict) else {})


def parse_line(raw: str, where: str) -> SuiteItem | None:
    """One JSONL line -> an item, ``None`` for a record this evaluation does
    not use (response-level or multi-turn); raises SuiteError on bad input.
    A record without ``id`` is named by ``where`` (file and line), as
    ``guardstack eval`` reads the same files without one."""
    try:
        obj = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise SuiteError(f"{where}: not valid JSON ({exc.msg})") from None
    if not isinstance(obj, dict):
        raise SuiteError(f"{where}: expected a JSON object, got {type(obj).__name__}")
    if "response" in obj or obj.get("label_target") == "response" or "turns" in obj:
        return None
    text = obj.get("text")
    if not isinstance(text, str) or not text.strip():
        raise SuiteError(f"{where}: 'text' must be a non-empty string")
    label = obj.get("label")
    if label not in ("safe", "unsafe"):
        raise SuiteError(f"{where}: 'label' must be \"safe\" or \"unsafe\", got {label!r}")
    item_id = obj.get("id", where)
    if not isinstance(item_id, str | int) or isinstance(item_id, bool) or str(item_id) == "":
        raise SuiteError(f"{where}: 'id' must be a non-empty string or integer")
    cats = obj.get("categories", [])
    if not isinstance(cats, list) or not all(isinstance(c, str) for c in cats):
        raise SuiteError(f"{where}: 'categories' must be a list of strings")
    source = obj.get("source") if isinstance(obj.get("source"), str) else ""
    return SuiteItem(id=str(item_id), text=text, harmful=label == "unsafe",
                     categories=_taxonomy(cats, source or "", obj.get("meta")),
                     source=source or "")


def read_lines(lines: Iterable[str], name: str, suite: Suite) -> None:
    seen = {(i.source, i.id) for i in suite.items}
    for number, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        item = parse_line(raw, f"{name}:{number}")
        if item is None:
            suite.skipped += 1
            continue
        # Two files may reuse ids; the source keeps them apart, a repeat within
        # one source is a real duplicate and would double-count.
        key = (item.source, item.id)
        if key in seen:
            raise SuiteError(f"{name}:{number}: duplicate id {item.id!r}")
        seen.add(key)
        suite.items.append(item)
    suite.files.append(name)


def load(paths: Sequence[str | Path] = ()) -> Suite:
    """Load suite files; the shipped default suite when ``paths`` is empty or
    names ``default``."""
    suite = Suite()
    for p in paths or [DEFAULT_SUITE]:
        if str(p) == DEFAULT_SUITE:
            for name in ("harmful.jsonl", "benign.jsonl"):
                text = resources.files("guardstack.model").joinpath("suites", name).read_text(
                    encoding="utf-8")
                read_lines(text.splitlines(), f"default/{name}", suite)
            continue
        path = Path(p)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise SuiteError(f"{path}: no such suite file") from None
        except OSError as exc:
            raise SuiteError(f"{path}: cannot read ({exc.strerror})") from None
        read_lines(_lines(data, path), str(path), suite)
    if not suite.items:
        raise SuiteError(f"the suite ({', '.join(suite.files)}) has no prompt-level records "
                         "to evaluate")
    # Item ids must be unique per run (they key the checkpoint); prefix the
    # source only where two sources collide.
    ids = [i.id for i in suite.items]
    if len(set(ids)) != len(ids):
        suite.items = [SuiteItem(f"{i.source}:{i.id}", i.text, i.harmful, i.categories, i.source)
                       for i in suite.items]
    return suite


def _lines(data: bytes, path: Path) -> list[str]:
    """The file's JSONL lines as ``guardstack eval`` reads them: a byte-order
    mark skipped, lines split at ``\\n`` only (a raw U+2028 inside a JSON
    string is text, not a line break), invalid UTF-8 named by its line."""
    out = []
    for number, raw in enumerate(data.removeprefix(b"\xef\xbb\xbf").split(b"\n"), 1):
        try:
            out.append(raw.decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise SuiteError(f"{path}:{number}: not UTF-8 text (byte {exc.start} of the line)") \
                from None
    return out


def limit(suite: Suite, n: int | None) -> Suite:
    """At most ``n`` harmful and ``n`` benign items, spread over categories
    (round-robin) so a small run still covers the taxonomy."""
    if n is None:
        return suite
    out: list[SuiteItem] = []
    for group in (suite.harmful, suite.benign):
        by_cat: dict[str, list[SuiteItem]] = {}
        for item in group:
            by_cat.setdefault(item.categories[0] if item.categories else "", []).append(item)
        queues = list(by_cat.values())
        picked: list[SuiteItem] = []
        while len(picked) < n and any(queues):
            for q in queues:
                if q and len(picked) < n:
                    picked.append(q.pop(0))
        out.extend(picked)
    return Suite(items=out, files=suite.files, skipped=suite.skipped)
