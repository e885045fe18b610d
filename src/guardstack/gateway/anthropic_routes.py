"""Anthropic's Messages API as an endpoint of the gateway: the handler reads
a Messages request, translates it (:mod:`.anthropic_api`) and runs it through
the gateway's own steps (identify, admit, check, forward, relay, record), so
every check of the chat path applies. Errors come back in Anthropic's
envelope, which its SDK turns into its own exception types."""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import AsyncGenerator, Iterator
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from guardstack.gateway import anthropic_api, validation
from guardstack.gateway.errors import GatewayError
from guardstack.gateway.recorder import Exchange
from guardstack.gateway.response import GuardedStreamingResponse
from guardstack.gateway.streaming import Relayed
from guardstack.gateway.token_count import TokenCounter
from guardstack.gateway.upstream import Upstream

if TYPE_CHECKING:
    from guardstack.gateway.app import Gateway

#: The paths served.
ANTHROPIC_API_PATHS = ("/v1/messages", "/v1/messages/count_tokens")


def error_response(exc: GatewayError) -> Response:
    """A gateway error in Anthropic's envelope, with its status and headers."""
    return JSONResponse(anthropic_api.error_body(exc.status, exc.message),
                        status_code=exc.status, headers=exc.headers)


def upstream_error(response: Response) -> Response:
    """An upstream error (passed through as it came) in Anthropic's envelope."""
    message = anthropic_api.upstream_message(bytes(response.body))
    return JSONResponse(anthropic_api.error_body(response.status_code, message),
                        status_code=response.status_code)


class AnthropicEndpoints:
    def __init__(self, gw: Gateway) -> None:
        self.gw = gw
        # One per model server: each remembers which tokenizer endpoint its server has
        # (weak: a routes reload replaces the servers).
        self.counters: weakref.WeakKeyDictionary[Upstream, TokenCounter] = \
            weakref.WeakKeyDictionary()

    def routes(self) -> list[Route]:
        return [Route("/v1/messages", self.messages, methods=["POST"]),
                Route("/v1/messages/count_tokens", self.count_tokens, methods=["POST"])]

    async def count_tokens(self, request: Request) -> Response:
        exchange = Exchange("messages.count_tokens")
        return await self.gw._guarded(exchange, lambda r: self._count_tokens(r, exchange),
                                      request, render=error_response)

    async def _count_tokens(self, request: Request, exchange: Exchange) -> Response:
        """The input tokens of a Messages request as the model will see it (the
        policy's safety system prompt included), counted by the upstream's own
        tokenizer. Nothing is generated, so nothing is judged; the text is not
        recorded, only who asked (as for embeddings)."""
        gw = self.gw
        identity = await gw._identify(request, exchange)
        body = await validation.read_json(request, gw.settings.max_body_bytes)
        # count_tokens takes no max_tokens; the translation wants one
        chat = anthropic_api.to_chat({**body, "max_tokens": 1})
        # Agents count before every turn: counting has a bucket of its own, so it
        # neither spends the messages budget nor is refused for it.
        await gw._admit(identity, chat, exchange, request, bucket="\x00count_tokens")
        exchange.model = chat.get("model")
        upstream = gw.upstream.for_model(chat.get("model"))
        counter = self.counters.get(upstream)
        if counter is None:
            counter = self.counters[upstream] = TokenCounter(upstream)
        counted = await counter.count(await gw._for_upstream(chat, exchange))
        if counted is None:
            raise GatewayError(501, "The upstream model server has no tokenizer endpoint the "
                                    "gateway knows (vLLM's or SGLang's /tokenize, llama.cpp's "
                                    "/apply-template and /tokenize, llama-cpp-python's "
                                    "/extras/tokenize/count), so its tokens cannot be counted.",
                               code="not_supported")
        return JSONResponse({"input_tokens": counted})

    async def messages(self, request: Request) -> Response:
        exchange = Exchange("messages")
        return await self.gw._guarded(exchange, lambda r: self._messages(r, exchange), request,
                                      render=error_response)

    async def _messages(self, request: Request, exchange: Exchange) -> Response:
        gw = self.gw
        identity = await gw._identify(request, exchange)
        body = await validation.read_json(request, gw.settings.max_body_bytes)
        chat = anthropic_api.to_chat(body)
        messages = validation.chat_messages(chat)
        gw._describe(exchange, request, body)
        # the chat body: it carries metadata.user_id as the end user
        await gw._admit(identity, chat, exchange, request)
        reply = anthropic_api.Reply(body, f"msg_{exchange.id}")
        streamed = chat.get("stream") is True
        try:
            await gw._check_last_user(exchange, messages)
        except GatewayError as exc:
            if exc.code != "content_filter":
                raise
            # Anthropic's own classifiers answer 200 with stop_reason "refusal".
            exchange.finish_reason = "content_filter"
            verdicts = [*exchange.prompt_verdicts, *exchange.tool_verdicts]
            blocked = gw.settings.blocked_message
            if streamed:
                events = anthropic_api.EventStream(reply).refusal(verdicts, blocked)
                return StreamingResponse(_encoded(events), media_type="text/event-stream",
                                         headers={"cache-control": "no-cache"})
            return JSONResponse(reply.refusal(verdicts, blocked))
        forwarded = await gw._for_upstream(chat, exchange)
        if streamed:
            stream = anthropic_api.EventStream(reply)
            response = await gw._stream(forwarded, exchange, messages, "chat",
                                        lambda relayed: _as_events(relayed, stream, exchange))
            return response if isinstance(response, GuardedStreamingResponse) else \
                upstream_error(response)
        data = await gw._completion(forwarded, exchange, messages, "chat")
        if isinstance(data, Response):
            return upstream_error(data)
        return JSONResponse(reply.from_chat(data, exchange.response_verdicts))


def _encoded(events: list[dict[str, Any]]) -> Iterator[bytes]:
    return (anthropic_api.encode(e) for e in events)


async def _as_events(relayed: AsyncGenerator[tuple[Relayed, dict[str, Any]], None],
                     stream: anthropic_api.EventStream,
                     exchange: Exchange) -> AsyncGenerator[bytes, None]:
    """The checked stream as Messages events."""
    async with contextlib.aclosing(relayed):
        for event in stream.start():
            yield anthropic_api.encode(event)
        ended = False
        async for kind, obj in relayed:
            if kind == "chunk":
                out = stream.chunk(obj)
            elif kind == "halt":
                out, ended = stream.halt(exchange.response_verdicts), True
            elif kind == "error":
                out, ended = stream.fail(obj), True
            else:
                out = [] if ended else stream.finish()
            for event in out:
                yield anthropic_api.encode(event)
