"""The append-only JSONL spool that holds events while the database is down.

One JSON object (:meth:`ExchangeEvent.to_dict`) per line; every append is
flushed and fsync'd before it returns, so an event the writer accepted
survives the process dying once it is in the spool. The file is removed only
after every line in it has been committed to the database. Events the
database *rejects* (bad data, not an outage) go to ``<spool>.rejected.jsonl``
with the reason, never silently away.

Only one process may use a spool file: :meth:`Spool.lock` takes an
exclusive ``flock`` on ``<spool>.lock`` and fails fast if another writer
holds it (two gateway workers configured with the same path).
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from guardstack.store.errors import StoreError

log = logging.getLogger("guardstack.store.spool")


def _fsync_dir(path: Path) -> None:
    # The directory entry of a new or removed file is only durable once the
    # directory itself is synced.
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Spool:
    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path).expanduser().absolute()
        self.rejected_path = self.path.with_name(self.path.name + ".rejected.jsonl")
        self._lock_file: IO[bytes] | None = None

    def __repr__(self) -> str:
        return f"Spool({str(self.path)!r})"

    def lock(self) -> None:
        """Take the exclusive lock, or raise :class:`StoreError` if held elsewhere."""
        if self._lock_file is not None:
            return
        if not self.path.parent.is_dir():
            raise StoreError(f"spool directory {self.path.parent} does not exist")
        if self.path.is_dir():
            raise StoreError(f"spool {self.path} is a directory; give a file path")
        try:
            fh = open(self.path.with_name(self.path.name + ".lock"), "ab")  # noqa: SIM115
        except OSError as exc:
            raise StoreError(f"cannot write the spool's lock file in {self.path.parent}: "
                             f"{exc.strerror or exc}") from None
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.close()
            raise StoreError(
                f"spool {self.path} is in use by another process; "
                "give each gateway worker its own spool_path"
            ) from None
        self._lock_file = fh

    def unlock(self) -> None:
        if self._lock_file is not None:
            fcntl.flock(self._lock_file.fileno(), fcntl.LOCK_UN)
            self._lock_file.close()
            self._lock_file = None

    @property
    def pending(self) -> bool:
        try:
            return self.path.stat().st_size > 0
        except FileNotFoundError:
            return False

    def count(self) -> int:
        """Number of complete lines waiting (reads the file)."""
        if not self.pending:
            return 0
        with open(self.path, "rb") as fh:
            return sum(1 for line in fh if line.endswith(b"\n"))

    def append(self, records: list[dict[str, Any]]) -> None:
        """Append records durably (write, flush, fsync) before returning."""
        if not records:
            return
        data = "".join(
            json.dumps(r, ensure_ascii=False, separators=(",", ":")) + "\n" for r in records
        ).encode("utf-8", "surrogatepass")  # json.loads(bytes) reads it back the same
        new = not self.path.exists()
        with open(self.path, "ab") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        if new:
            _fsync_dir(self.path.parent)

    def batches(self, size: int) -> Iterator[list[dict[str, Any]]]:
        """Yield the spooled records in order, ``size`` at a time.

        A line that is not valid JSON (a write cut short by a crash) goes to
        the rejected file rather than blocking the replay forever.
        """
        if not self.pending:
            return
        batch: list[dict[str, Any]] = []
        with open(self.path, "rb") as fh:
            for lineno, raw in enumerate(fh, 1):
                try:
                    record = json.loads(raw)
                    if not isinstance(record, dict):
                        raise ValueError("not a JSON object")
                except ValueError as exc:
                    self.reject_raw(raw, f"line {lineno}: unreadable spool line ({exc})")
                    continue
                batch.append(record)
                if len(batch) >= size:
                    yield batch
                    batch = []
        if batch:
            yield batch

    def clear(self) -> None:
        """Remove the spool; call only after everything in it is committed."""
        try:
            self.path.unlink()
        except FileNotFoundError:
            return
        _fsync_dir(self.path.parent)

    def reject(self, record: dict[str, Any], reason: str) -> None:
        line = json.dumps({"reason": reason, "event": record}, ensure_ascii=False)
        self._append_rejected(line.encode("utf-8", "surrogatepass") + b"\n")
        log.error(
            "event %s rejected by the database: %s (kept in %s)",
            record.get("id"),
            reason,
            self.rejected_path,
        )

    def reject_raw(self, raw: bytes, reason: str) -> None:
        line = json.dumps({"reason": reason, "raw": raw.decode("utf-8", "replace")})
        self._append_rejected(line.encode("utf-8") + b"\n")
        log.error("%s (kept in %s)", reason, self.rejected_path)

    def _append_rejected(self, data: bytes) -> None:
        with open(self.rejected_path, "ab") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
