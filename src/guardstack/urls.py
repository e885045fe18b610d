"""Base URLs of OpenAI-compatible servers, read the same way everywhere."""

from __future__ import annotations

from urllib.parse import urlsplit


def normalize_base_url(url: str) -> str:
    """``http://host:8000`` and ``http://host:8000/v1/`` both mean ``.../v1``
    (vLLM, llama.cpp's server and Ollama all serve the OpenAI API there); any
    other path is kept as given (some gateways mount the API elsewhere)."""
    url = url.strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"must be http(s)://host[:port][/path], got {url!r}")
    if parts.path in ("", "/"):
        url += "/v1"
    return url
