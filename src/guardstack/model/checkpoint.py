"""The resumable part of a run: one JSON line per finished item, keyed by
(configuration, transformation, item id), appended and flushed as each item
finishes. A re-run reads it back and only sends what is missing.

The first line records what the answers depend on (model, max_tokens,
streaming); resuming with different settings is refused rather than mixing
two runs into one figure.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import IO, Any

Key = tuple[str, str, str]
FORMAT = 1


class CheckpointError(ValueError):
    pass


def key_of(record: dict[str, Any]) -> Key:
    return (str(record["config"]), str(record["transform"]), str(record["id"]))


class Checkpoint:
    def __init__(self, path: Path, settings: dict[str, Any]) -> None:
        self.path = path
        self.settings = {"format": FORMAT, **settings}
        self.records: dict[Key, dict[str, Any]] = {}
        self.damaged = 0
        self.changed = False
        self._file: IO[str] | None = None

    def load(self, may_change: frozenset[str] = frozenset()) -> dict[Key, dict[str, Any]]:
        """Read finished items back. Settings named in ``may_change`` may differ
        from the file's (the caller re-derives what depends on them)."""
        if not self.path.exists() or self.path.stat().st_size == 0:
            return self.records
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise CheckpointError(f"cannot read state file {self.path}: {exc}") from None
        try:
            head = json.loads(lines[0]) if lines else {}
        except ValueError:
            head = {}
        if not isinstance(head, dict) or head.get("kind") != "meta":
            raise CheckpointError(f"{self.path} is not a model-eval state file; "
                                  "pass another --state or --report folder")
        theirs = {k: v for k, v in head.items() if k != "kind"}
        differ = {k for k in set(theirs) | set(self.settings)
                  if theirs.get(k) != self.settings.get(k)}
        self.changed = bool(differ)
        if differ - may_change:
            diff = ", ".join(f"{k}: {theirs.get(k)!r} there, {self.settings.get(k)!r} now"
                             for k in sorted(differ - may_change))
            raise CheckpointError(f"{self.path} holds a run with other settings ({diff}); "
                                  "use another --report folder or --state file, or delete it")
        for line in lines[1:]:
            try:
                record = json.loads(line)
                self.records[key_of(record)] = record
            except (ValueError, KeyError, TypeError):
                # A line cut short by an interruption: that item runs again.
                self.damaged += 1
        return self.records

    def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fresh = not self.path.exists() or self.path.stat().st_size == 0
        if not fresh and (self.damaged or self.changed):
            # Rewrite without the damaged lines so appends start on a clean line
            # (and with the new settings and records after a re-judge).
            self._rewrite()
            fresh = False
        self._file = self.path.open("a", encoding="utf-8")
        if fresh:
            self._file.write(json.dumps({"kind": "meta", **self.settings}) + "\n")
            self._file.flush()
        elif not self.path.read_bytes().endswith(b"\n"):
            self._file.write("\n")

    def _rewrite(self) -> None:
        tmp = self.path.with_suffix(self.path.suffix + ".tmp")
        with tmp.open("w", encoding="utf-8") as f:
            f.write(json.dumps({"kind": "meta", **self.settings}) + "\n")
            for record in self.records.values():
                f.write(json.dumps(record, ensure_ascii=False) + "\n")
        tmp.replace(self.path)

    def add(self, record: dict[str, Any]) -> None:
        self.records[key_of(record)] = record
        if self._file is None:
            self.open()
        assert self._file is not None
        self._file.write(json.dumps(record, ensure_ascii=False) + "\n")
        self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
