"""A one-line progress bar on stderr (redrawn in place on a terminal, a line
every tenth of the way otherwise, so logs stay readable)."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    def __init__(self, total: int, done: int = 0, stream: TextIO | None = None,
                 width: int = 28) -> None:
        self.total, self.done, self.errors = total, done, 0
        self.stream = stream if stream is not None else sys.stderr
        self.width = width
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.started = time.monotonic()
        self._last_tenth = -1
        self.label = ""

    def start(self, total: int, done: int) -> None:
        """Called once the state file is read: how much is left."""
        self.total, self.done = total, done
        if done:
            self._write(f"model-eval: resuming, {done}/{total} already done\n")

    def _line(self) -> str:
        share = self.done / self.total if self.total else 1.0
        filled = int(share * self.width)
        elapsed = time.monotonic() - self.started
        return (f"model-eval [{'#' * filled}{'.' * (self.width - filled)}] "
                f"{self.done}/{self.total} {share:4.0%}  errors {self.errors}  "
                f"{elapsed:5.0f}s  {self.label}")

    def _write(self, text: str) -> None:
        self.stream.write(text)
        self.stream.flush()

    def advance(self, label: str = "", error: bool = False) -> None:
        if error:
            self.errors += 1
        else:
            self.done += 1
        self.label = label
        if self.tty:
            self._write("\r" + self._line().ljust(100))
            return
        tenth = int(10 * self.done / self.total) if self.total else 10
        if tenth != self._last_tenth or error:
            self._last_tenth = tenth
            self._write(self._line() + "\n")

    def close(self) -> None:
        if self.tty:
            self._write("\n")
