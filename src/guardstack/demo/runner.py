"""The demo, step by step: upstream, gateway, dashboard login, simulated
traffic, layer-3 analysis, report. Every step is the real ``guardstack``
command a user would run, as a child process in its own process group."""

from __future__ import annotations

import contextlib
import json
import secrets
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from guardstack.demo.processes import Children, StartError, wait_ready
from guardstack.demo.upstream import MODEL_ALIAS, server_command, smollm2_gguf

#: Small enough for a few minutes on two cores, and still every kind of user
#: the layers are about: ordinary users, professionals on sensitive topics
#: (the hard negatives), a decomposition attacker, a jailbreak sprayer, three
#: coordinated accounts and a user in crisis (16 users, 3 days, seed 1: 83
#: requests). 16 users keep a 3-account group under coord_max_share (0.2).
DEFAULT_USERS = 16
DEFAULT_DAYS = 3
DEFAULT_SEED = 1
DEFAULT_MIX = ("ordinary=0.4,professional=0.2,adversary=0.4,decomposition=0.25,"
               "coordinated=0.45,crisis=0.15,jailbreak=0.15,crescendo=0,delusion=0")
#: SmolLM2's answers are cut here: the gateway's stream checks still run
#: (every 16 tokens), and 83 requests finish in minutes on two cores.
DEFAULT_MAX_TOKENS = 32
DEFAULT_PORT = 8000
DB_NAME = "demo.db"
ADMIN = "admin"


class DemoError(RuntimeError):
    """A step failed in a way the user can act on; the message says how."""


@dataclass
class DemoOptions:
    workdir: Path
    upstream: str | None = None
    model: str = MODEL_ALIAS
    port: int = DEFAULT_PORT
    users: int = DEFAULT_USERS
    days: int = DEFAULT_DAYS
    seed: int = DEFAULT_SEED
    mix: str = DEFAULT_MIX
    max_tokens: int = DEFAULT_MAX_TOKENS
    concurrency: int = 4
    threads: int | None = None
    keep_running: bool = False


@dataclass
class DemoResult:
    report: dict[str, Any]
    gateway_url: str
    dashboard: dict[str, str] | None
    files: dict[str, str]
    timings: dict[str, float] = field(default_factory=dict)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def guardstack_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "guardstack", *args]


class Demo:
    def __init__(self, options: DemoOptions, children: Children,
                 say: Callable[[str], None]) -> None:
        self.o, self.children, self.say = options, children, say
        self.workdir = options.workdir.resolve()
        self.db_url = f"sqlite:///{self.workdir / DB_NAME}"
        self.timings: dict[str, float] = {}

    def _step(self, name: str, started: float) -> None:
        self.timings[name] = round(time.monotonic() - started, 1)

    def run(self) -> DemoResult:
        self.workdir.mkdir(parents=True, exist_ok=True)
        # A fresh store on every run; a spool left by an interrupted run would
        # otherwise be replayed into it.
        for stale in self.workdir.glob(f"{DB_NAME}*"):
            stale.unlink(missing_ok=True)
        upstream = self.start_upstream()
        gateway = self.start_gateway(upstream)
        dashboard = self.add_dashboard_login(gateway)
        simulate = self.simulate(gateway)
        self.wait_recorded(simulate)
        analysis = self.analyze()
        from guardstack.demo import report as report_mod

        truth = json.loads((self.workdir / "truth.json").read_text())
        built = report_mod.build(self.db_url, analysis=analysis, truth=truth, simulate=simulate)
        files = {"store": self.db_url, "analysis": str(self.workdir / "analysis.json"),
                 "truth": str(self.workdir / "truth.json"),
                 "transcript": str(self.workdir / "transcript.jsonl"),
                 "logs": str(self.workdir)}
        return DemoResult(built, f"{gateway}/v1", dashboard, files, self.timings)

    def start_upstream(self) -> str:
        import httpx

        started = time.monotonic()
        if self.o.upstream:
            url = self.o.upstream.rstrip("/")
            try:
                ok = httpx.get(f"{url}/models", timeout=5.0).status_code == 200
            except httpx.HTTPError:
                ok = False
            if not ok:
                raise DemoError(f"--upstream {url} does not answer GET {url}/models")
            self.say(f"upstream: {url} (given)")
            return url
        try:
            cmd = server_command(smollm2_gguf(), port := free_port(), threads=self.o.threads)
        except RuntimeError as exc:
            raise DemoError(f"{exc}; or give --upstream URL of a running model server") from None
        log = self.workdir / "llama_server.log"
        self.say("starting SmolLM2-135M-Instruct under llama.cpp's server ...")
        proc = self.children.start("llama.cpp server", cmd, log=log)
        url = f"http://127.0.0.1:{port}/v1"
        wait_ready(f"{url}/models", proc, name="llama.cpp server", timeout=180, log=log)
        self.say(f"upstream: {url} (ready in {time.monotonic() - started:.0f} s)")
        self._step("upstream", started)
        return url

    def start_gateway(self, upstream: str) -> str:
        started = time.monotonic()
        port = self.o.port if self.o.port and _port_free(self.o.port) else free_port()
        if self.o.port and port != self.o.port:
            self.say(f"port {self.o.port} is taken; the gateway uses {port}")
        log = self.workdir / "gateway.log"
        # Embedded defaults: the shipped classifier and default policy, a
        # SQLite store. --open: the simulator's users are told apart by the
        # OpenAI `user` field instead of one API key each.
        cmd = guardstack_cmd("serve", "--upstream", upstream, "--port", str(port),
                             "--db", self.db_url, "--open", "--log-level", "warning")
        proc = self.children.start("gateway", cmd, log=log)
        url = f"http://127.0.0.1:{port}"
        wait_ready(f"{url}/readyz", proc, name="guardstack serve", timeout=120, log=log)
        self.say(f"gateway: {url}/v1 in front of it (ready in "
                 f"{time.monotonic() - started:.0f} s; SQLite store {self.workdir / DB_NAME})")
        self._step("gateway", started)
        return url

    def add_dashboard_login(self, gateway: str) -> dict[str, str] | None:
        """An admin login for the dashboard, when this install has one: decided
        by asking the CLI (``guardstack users``) and the gateway (``/ui``)."""
        probe = self.children.run("users --help", guardstack_cmd("users", "add", "--help"),
                                  timeout=60)
        if probe.returncode != 0:
            return None
        password = secrets.token_urlsafe(12)
        args = ["users", "add", ADMIN, "--role", "admin"]
        if "--db" in probe.stdout:
            args += ["--db", self.db_url]
        added = self.children.run("users add", guardstack_cmd(*args),
                                  input_text=password + "\n", timeout=60)
        if added.returncode != 0:
            self.say("dashboard: could not add a login: "
                     + (added.stderr.strip().splitlines() or ["(no message)"])[-1])
            return None
        import httpx

        url = f"{gateway}/ui/"
        try:
            status = httpx.get(url, timeout=5.0).status_code
        except httpx.HTTPError:
            status = 0
        if status in (0, 404):
            self.say(f"dashboard: this gateway serves no {url}")
            return None
        return {"url": url, "user": ADMIN, "password": password}

    def simulate(self, gateway: str) -> dict[str, Any]:
        started = time.monotonic()
        self.say(f"sending simulated traffic ({self.o.users} users over {self.o.days} "
                 "simulated days) through the gateway ...")
        cmd = guardstack_cmd("simulate", "--gateway", f"{gateway}/v1",
                             "--users", str(self.o.users), "--days", str(self.o.days),
                             "--seed", str(self.o.seed), "--mix", self.o.mix,
                             "--model", self.o.model, "--stream", "--api", "mixed",
                             "--max-tokens", str(self.o.max_tokens),
                             "--concurrency", str(self.o.concurrency),
                             "--truth", str(self.workdir / "truth.json"),
                             "--transcript", str(self.workdir / "transcript.jsonl"), "--json")
        done = self.children.run("simulate", cmd, timeout=3600)
        if done.returncode != 0:
            raise DemoError("guardstack simulate failed: " + done.stderr.strip()[-1500:])
        summary: dict[str, Any] = json.loads(done.stdout)
        g = summary["gateway"]
        self.say(f"  sent {g['sent']} ({g.get('responses_api', 0)} through the Responses "
                 f"API, {g.get('ollama_api', 0)} through Ollama's, {g.get('messages_api', 0)} "
                 f"through Anthropic's), answered {g['answered']}, "
                 f"blocked {g['blocked']}, "
                 f"halted {g['halted']}, errors {g['errors']} "
                 f"({time.monotonic() - started:.0f} s)")
        self._step("simulate", started)
        return summary

    def wait_recorded(self, simulate: dict[str, Any], timeout: float = 30.0) -> None:
        """The gateway records through a batched writer; analysis starts once
        every request that reached it is in the store."""
        import sqlalchemy as sa

        g = simulate["gateway"]
        expected = g["sent"] - g["errors"]
        engine = sa.create_engine(self.db_url)
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                with engine.connect() as conn:
                    count = conn.execute(sa.text("SELECT count(*) FROM exchanges")).scalar_one()
                if count >= expected:
                    return
                time.sleep(0.2)
        finally:
            engine.dispose()
        self.say(f"warning: {count} of {expected} exchanges recorded after {timeout:.0f} s")

    def analyze(self) -> dict[str, Any]:
        started = time.monotonic()
        self.say("running layer-3 analysis (guardstack analyze) ...")
        done = self.children.run("analyze", guardstack_cmd("analyze", "--db", self.db_url,
                                                           "--json", "--quiet"), timeout=1800)
        if done.returncode != 0:
            raise DemoError("guardstack analyze failed: " + done.stderr.strip()[-1500:])
        (self.workdir / "analysis.json").write_text(done.stdout)
        self._step("analyze", started)
        result: dict[str, Any] = json.loads(done.stdout)
        return result

    def serve_until_interrupted(self) -> None:
        """--keep-running: the gateway (and dashboard) stay up until Ctrl-C;
        a child that dies meanwhile ends the demo with an error."""
        while True:
            for name, proc in self.children.procs:
                if proc.poll() is not None:
                    raise DemoError(f"{name} exited with status {proc.returncode} "
                                    f"(logs in {self.workdir})")
            time.sleep(0.5)


def run(options: DemoOptions, say: Callable[[str], None],
        show: Callable[[DemoResult], None]) -> DemoResult:
    """Runs the demo; ``show`` gets the result while the servers still run
    (with ``keep_running`` they then serve until Ctrl-C). Nothing the demo
    started outlives this call, whatever way it ends."""
    with Children() as children:
        demo = Demo(options, children, say)
        try:
            result = demo.run()
        except StartError as exc:
            raise DemoError(str(exc)) from None
        show(result)
        if options.keep_running:
            with contextlib.suppress(KeyboardInterrupt):
                demo.serve_until_interrupted()
            say("stopping ...")
        return result
