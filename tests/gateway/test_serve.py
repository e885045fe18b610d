"""``guardstack serve`` as a user runs it: a subprocess in front of the real
llama.cpp server, the real default detector, a SQLite event store, and
SIGTERM at the end, after which every exchange must be in the store.

The policy flags instead of blocking so the test does not depend on what
the classifier scores; it only needs the classifier to have judged."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import openai
import pytest
import sqlalchemy as sa
from tests.fixtures.llama_server import MODEL_ALIAS, free_port
from tests.fixtures.processes import wait_for_http

from guardstack.store import Store
from guardstack.store.schema import exchanges, messages

pytestmark = pytest.mark.slow

POLICY = """
version: 1
prompt: {default: {threshold: 0.5, action: flag}}
response: {default: {threshold: 0.5, action: flag}}
"""


def test_serve_records_everything_and_flushes_on_sigterm(llama_server, tmp_path):
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    db = f"sqlite:///{tmp_path / 'gs.db'}"
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "guardstack", "serve", "--upstream", llama_server,
         "--port", str(port), "--open", "--db", db, "--policy", str(policy),
         "--log-level", "warning"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env={**os.environ})
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(url + "/readyz", proc, what="guardstack serve", timeout=60,
                      output=lambda: proc.stdout.read().decode() if proc.stdout else "")
        with openai.OpenAI(base_url=url + "/v1", api_key="k", max_retries=0) as c:
            story = [{"role": "user", "content": "Write a story about a cat."}]
            reply = c.chat.completions.create(model=MODEL_ALIAS, messages=story, max_tokens=12)
            assert reply.choices[0].message.content
            stream = c.chat.completions.create(model=MODEL_ALIAS, messages=story, max_tokens=12,
                                               stream=True)
            streamed = "".join(ch.choices[0].delta.content or "" for ch in stream if ch.choices)
            assert streamed
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out.decode()
    assert b"Traceback" not in out, out.decode()
    store = Store(db)
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(exchanges)).mappings().all()
        msgs = conn.execute(sa.select(messages)).mappings().all()
    store.dispose()
    assert len(rows) == 2
    assert all(r["prompt_decision"] in ("allow", "flag") for r in rows)
    assert all(m["detector"] == "fast" and m["status"] == "ok" for m in msgs)
    assert all(m["embedding"] is not None for m in msgs)
