"""Child processes the demo starts, and the guarantee that none outlives it.

Each child runs in its own session (so a terminal's Ctrl-C reaches only the
demo, which then stops the children in order instead of racing them), and on
Linux asks the kernel for SIGTERM if the demo itself dies without cleaning up.
Stopping sends SIGTERM to the child's whole process group, then SIGKILL."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    # Runs in the child between fork and exec; failures are harmless (the
    # demo's own cleanup still stops the child).
    if sys.platform.startswith("linux"):
        with contextlib.suppress(Exception):
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class StartError(RuntimeError):
    """A child did not start or did not become ready; the message says why."""


class Children:
    """Processes started by the demo, stopped in reverse order by ``stop_all``
    (also on exit from ``with Children() as children``)."""

    def __init__(self) -> None:
        self.procs: list[tuple[str, subprocess.Popen[Any]]] = []

    def __enter__(self) -> Children:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_all()

    def start(self, name: str, cmd: Sequence[str], *, log: Path | None = None,
              stdin: int | None = subprocess.DEVNULL, stdout: int | IO[Any] | None = None,
              env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        handle: IO[Any] | None = open(log, "ab") if log is not None else None  # noqa: SIM115
        try:
            proc = subprocess.Popen(
                list(cmd), stdin=stdin,
                stdout=handle if handle is not None else stdout,
                stderr=subprocess.STDOUT if handle is not None else None,
                start_new_session=True, preexec_fn=_die_with_parent,
                env=env)
        finally:
            if handle is not None:
                handle.close()  # the child holds its own copy
        self.procs.append((name, proc))
        return proc

    def run(self, name: str, cmd: Sequence[str], *, input_text: str | None = None,
            timeout: float | None = None) -> subprocess.CompletedProcess[str]:
        """Run a child to completion (output captured); stopped with the rest
        if the demo is interrupted meanwhile."""
        proc = subprocess.Popen(
            list(cmd), stdin=subprocess.PIPE if input_text is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            start_new_session=True, preexec_fn=_die_with_parent)
        self.procs.append((name, proc))
        try:
            out, err = proc.communicate(input_text, timeout=timeout)
        except subprocess.TimeoutExpired:
            stop(proc)
            raise StartError(f"{name} took longer than {timeout:.0f} s") from None
        finally:
            if proc.poll() is not None:
                self.procs.remove((name, proc))
        return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)

    def stop_all(self) -> None:
        while self.procs:
            _, proc = self.procs.pop()
            stop(proc)


def stop(proc: subprocess.Popen[Any], timeout: float = 15.0) -> None:
    """SIGTERM to the child's process group, SIGKILL after ``timeout``."""
    if proc.poll() is not None:
        return
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=wait)
            break
        except subprocess.TimeoutExpired:
            continue
    # Anything the child left in its group (it forked and exited) goes too.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


def wait_ready(url: str, proc: subprocess.Popen[Any], *, name: str, timeout: float,
               log: Path | None = None) -> None:
    """Poll ``url`` until it answers 200; a child that exits or a
    deadline that passes raises StartError with the tail of its log."""
    import httpx

    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise StartError(f"{name} exited with status {proc.returncode}{_tail(log)}")
        try:
            response = httpx.get(url, timeout=2.0)
            if response.status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise StartError(f"{name} did not answer {url} within {timeout:.0f} s{_tail(log)}")
        time.sleep(0.25)


def _tail(log: Path | None, chars: int = 1500) -> str:
    if log is None or not log.exists():
        return ""
    text = log.read_text(errors="replace")[-chars:].strip()
    return f"; last lines of {log}:\n{text}" if text else ""
