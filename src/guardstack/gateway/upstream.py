"""The client for the upstream model server. Connection failures become
502 and timeouts 504 in OpenAI's envelope; everything else the upstream
says is passed back as it said it.

Requests go straight to the connection pool (the transport), not through
``httpx.AsyncClient.send``: a proxy wants none of the client's layers
(redirects, auth flows, and above all its cookie jar, which would carry one
user's upstream cookies into every other user's requests), and skipping them
is about a tenth of the gateway's own time per request.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx

from guardstack import __version__
from guardstack.gateway import tracing
from guardstack.gateway.errors import GatewayError
from guardstack.gateway.sse import UpstreamStreamError

log = logging.getLogger("guardstack.gateway")
#: Seconds between log lines about an upstream's failed answers (timeouts,
#: broken-off streams): each is counted, one line says how many.
REPORT_EVERY_S = 10.0
#: Seconds the upstream's model list is trusted (:meth:`Upstream.served_models`),
#: and seconds before a list that could not be had is asked for again.
MODELS_TTL_S = 60.0
MODELS_RETRY_S = 5.0


class Upstream:
    def __init__(self, base_url: str, *, api_key: str | None = None, timeout: float = 120.0,
                 connect_timeout: float = 5.0,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self._base = httpx.URL(self.base_url + "/")
        self._urls: dict[str, httpx.URL] = {}
        self._headers = {"user-agent": f"guardstack/{__version__}"}
        if api_key:
            self._headers["authorization"] = f"Bearer {api_key}"
        timeouts = httpx.Timeout(timeout, connect=connect_timeout)
        self._timeout = timeouts.as_dict()
        # Streams hold a connection each for their whole length.
        self._transport = transport or httpx.AsyncHTTPTransport(
            limits=httpx.Limits(max_connections=2000, max_keepalive_connections=200))
        # For the readiness probe only; it shares the transport's connections.
        self.client = httpx.AsyncClient(base_url=self._base, headers=self._headers,
                                        timeout=timeouts, transport=self._transport)
        #: since when the upstream cannot be reached (logged once, and its return)
        self._down_since: float | None = None
        #: failed answers not yet logged, and when the last line about them was
        self._failures: dict[str, int] = {}
        self._reported = 0.0
        #: the listed model names (None: no list to be had) and until when to trust them
        self._served: frozenset[str] | None = None
        self._served_until = float("-inf")
        self._served_lock = asyncio.Lock()

    def _unreachable(self, exc: httpx.HTTPError) -> None:
        if self._down_since is None:
            self._down_since = time.monotonic()
            log.warning("upstream %s cannot be reached (%s: %s); answering 502 until it "
                        "can", self.base_url, type(exc).__name__, exc)

    def _answered(self) -> None:
        if self._down_since is not None:
            log.warning("upstream %s answers again, after %.0f s", self.base_url,
                        time.monotonic() - self._down_since)
            self._down_since = None

    def failed(self, what: str) -> None:
        """Count a failed answer (``what``: "timed out", "broke off its stream")
        and log the counts every :data:`REPORT_EVERY_S` seconds at most."""
        self._failures[what] = self._failures.get(what, 0) + 1
        now = time.monotonic()
        if now - self._reported >= REPORT_EVERY_S:
            counts = ", ".join(f"{what} {n}x" for what, n in sorted(self._failures.items()))
            log.warning("upstream %s: %s", self.base_url, counts)
            self._failures.clear()
            self._reported = now

    def _url(self, path: str) -> httpx.URL:
        url = self._urls.get(path)
        if url is None:
            url = self._urls[path] = self._base.join(path.lstrip("/"))
        return url

    async def open(self, method: str, path: str, body: dict[str, Any] | None = None
                   ) -> tuple[httpx.Response, float]:
        """Send and return the response with its body unread, and the seconds
        to its headers. The caller must ``aclose()`` it."""
        headers = dict(self._headers)
        content = b""
        if body is not None:
            # as httpx's json= encodes it
            content = json.dumps(body, ensure_ascii=False, separators=(",", ":"),
                                 allow_nan=False).encode()
            headers["content-type"] = "application/json"
        url = self._url(path)
        with tracing.upstream_call(method, str(url)) as (span, carried):
            headers.update(carried)  # traceparent, when this exchange is traced
            request = httpx.Request(method, url, headers=headers, content=content,
                                    extensions={"timeout": self._timeout})
            start = time.perf_counter()
            try:
                response = await self._transport.handle_async_request(request)
                response.request = request
            except httpx.TimeoutException as exc:
                self.failed("timed out")
                raise GatewayError(504, f"The upstream model server did not answer in time "
                                        f"({type(exc).__name__}).",
                                   code="upstream_timeout") from None
            except httpx.HTTPError as exc:
                self._unreachable(exc)
                raise GatewayError(502, f"The upstream model server could not be reached "
                                        f"({type(exc).__name__}: {exc}).",
                                   code="upstream_unavailable") from None
            self._answered()
            if span is not None:
                span.set_attribute("http.response.status_code", response.status_code)
            return response, time.perf_counter() - start

    async def read(self, response: httpx.Response) -> bytes:
        try:
            return await response.aread()
        except httpx.TimeoutException:
            self.failed("stopped sending")
            raise GatewayError(504, "The upstream model server stopped sending its response.",
                               code="upstream_timeout") from None
        except httpx.HTTPError as exc:
            self.failed("broke off a response")
            raise GatewayError(502, f"The upstream model server broke off its response "
                                    f"({type(exc).__name__}).",
                               code="upstream_error") from None
        finally:
            await response.aclose()

    async def chunks(self, response: httpx.Response) -> AsyncIterator[bytes]:
        try:
            async for chunk in response.aiter_bytes():
                yield chunk
        except httpx.TimeoutException:
            self.failed("stopped sending a stream")
            raise UpstreamStreamError("the upstream model server stopped sending "
                                      "(timed out waiting for the next chunk)") from None
        except httpx.HTTPError as exc:
            self.failed("broke off a stream")
            raise UpstreamStreamError(f"the upstream model server broke off the stream "
                                      f"({type(exc).__name__})") from None

    async def models_status(self) -> int | None:
        """The status of ``GET models``, or None when nothing answered."""
        try:
            response = await self.client.get("models", timeout=2.0)
        except httpx.HTTPError:
            return None
        return response.status_code

    async def served_models(self) -> frozenset[str] | None:
        """The model names ``GET models`` lists, asked at most once every
        :data:`MODELS_TTL_S` seconds; None when the upstream gives no list
        (asked again after :data:`MODELS_RETRY_S`)."""
        if time.monotonic() < self._served_until:
            return self._served
        async with self._served_lock:  # one request for every caller waiting on it
            if time.monotonic() < self._served_until:
                return self._served
            names: frozenset[str] | None = None
            try:
                # Not kept alive: a server that closes after answering would
                # otherwise hand the next completion a dead pooled connection.
                response = await self.client.get("models", timeout=5.0,
                                                 headers={"connection": "close"})
                listed = response.json().get("data") if response.status_code == 200 else None
            except (httpx.HTTPError, ValueError, AttributeError):
                listed = None
            if isinstance(listed, list):
                names = frozenset(e["id"] for e in listed
                                  if isinstance(e, dict) and isinstance(e.get("id"), str))
            elif self._served is not None or self._served_until == float("-inf"):
                log.warning("upstream %s gives no model list: the policy's safety system "
                            "prompt goes with every model name sent to it", self.base_url)
            self._served = names
            self._served_until = time.monotonic() + (
                MODELS_TTL_S if names is not None else MODELS_RETRY_S)
            return names

    async def reachable(self) -> bool:
        """Ready to serve: the model list answers 2xx. A 404 is a server at
        the wrong path (a base URL without its /v1 prefix), a 401 one that
        wants ``--upstream-api-key``: neither can answer a completion."""
        status = await self.models_status()
        return status is not None and 200 <= status < 300

    async def aclose(self) -> None:
        await self.client.aclose()
