"""The client for the upstream model server. Connection failures become
502 and timeouts 504 in OpenAI's envelope; everything else the upstream
says is passed back as it said it."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import httpx

from guardstack.gateway.errors import GatewayError
from guardstack.gateway.sse import UpstreamStreamError


class Upstream:
    def __init__(self, base_url: str, *, api_key: str | None = None, timeout: float = 120.0,
                 connect_timeout: float = 5.0,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        headers = {"authorization": f"Bearer {api_key}"} if api_key else {}
        self.client = httpx.AsyncClient(
            base_url=self.base_url + "/",
            headers=headers,
            timeout=httpx.Timeout(timeout, connect=connect_timeout),
            # Streams hold a connection each for their whole length.
            limits=httpx.Limits(max_connections=2000, max_keepalive_connections=200),
            transport=transport,
        )

    async def open(self, method: str, path: str, body: dict[str, Any] | None = None
                   ) -> tuple[httpx.Response, float]:
        """Send and return the response with its body unread, and the seconds
        to its headers. The caller must ``aclose()`` it."""
        request = self.client.build_request(method, path.lstrip("/"), json=body)
        start = time.perf_counter()
        try:
            response = await self.client.send(request, stream=True)
        except httpx.TimeoutException as exc:
            raise GatewayError(504, f"The upstream model server did not answer in time "
                                    f"({type(exc).__name__}).", code="upstream_timeout") from None
        except httpx.HTTPError as exc:
            raise GatewayError(502, f"The upstream model server could not be reached "
                                    f"({type(exc).__name__}: {exc}).",
                               code="upstream_unavailable") from None
        return response, time.perf_counter() - start

    async def read(self, response: httpx.Response) -> bytes:
        try:
            return await response.aread()
        except httpx.TimeoutException:
            raise GatewayError(504, "The upstream model server stopped sending its response.",
                               code="upstream_timeout") from None
        except httpx.HTTPError as exc:
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
            raise UpstreamStreamError("the upstream model server stopped sending "
                                      "(timed out waiting for the next chunk)") from None
        except httpx.HTTPError as exc:
            raise UpstreamStreamError(f"the upstream model server broke off the stream "
                                      f"({type(exc).__name__})") from None

    async def reachable(self) -> bool:
        try:
            response = await self.client.get("models", timeout=2.0)
        except httpx.HTTPError:
            return False
        return response.status_code < 500

    async def aclose(self) -> None:
        await self.client.aclose()
