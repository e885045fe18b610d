"""Ollama's native API as endpoints of the gateway: each handler reads an
Ollama request, translates it (:mod:`.ollama_api`) and runs it through the
gateway's own steps (identify, admit, check, forward, relay, record), so
every check of the OpenAI paths applies."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from guardstack import __version__
from guardstack.classifiers.base import Message, Subject
from guardstack.gateway import masking, ollama_api, validation
from guardstack.gateway.errors import GatewayError, type_error
from guardstack.gateway.recorder import Exchange
from guardstack.gateway.response import GuardedStreamingResponse
from guardstack.gateway.streaming import Kind

if TYPE_CHECKING:
    from guardstack.gateway.app import Gateway


#: (path, handler method name, HTTP method) of each endpoint.
_ROUTES = (("/", "root", "GET"), ("/api/chat", "chat", "POST"),
           ("/api/generate", "generate", "POST"), ("/api/embed", "embed", "POST"),
           ("/api/embeddings", "embeddings", "POST"), ("/api/tags", "tags", "GET"),
           ("/api/show", "show", "POST"), ("/api/version", "version", "GET"))
#: The ``/api/...`` paths served (a 404 elsewhere under /api/ lists them).
OLLAMA_API_PATHS = tuple(path for path, _, _ in _ROUTES if path.startswith("/api/"))


class OllamaEndpoints:
    def __init__(self, gw: Gateway) -> None:
        self.gw = gw

    def routes(self) -> list[Route]:
        return [Route(path, getattr(self, name), methods=[method])
                for path, name, method in _ROUTES]

    async def chat(self, request: Request) -> Response:
        exchange = Exchange("ollama.chat")
        return await self.gw._guarded(exchange, lambda r: self._answer(r, exchange, "chat"),
                                      request, render=ollama_api.error_response)

    async def generate(self, request: Request) -> Response:
        exchange = Exchange("ollama.generate")
        return await self.gw._guarded(exchange, lambda r: self._answer(r, exchange, "generate"),
                                      request, render=ollama_api.error_response)

    async def _answer(self, request: Request, exchange: Exchange,
                      endpoint: ollama_api.Endpoint) -> Response:
        """``/api/chat`` and ``/api/generate`` over the upstream's chat
        completions (``raw`` prompts over its completions), with the checks
        of the paths they take."""
        identity = await self.gw._identify(request, exchange)
        body = await validation.read_json(request, self.gw.settings.max_body_bytes)
        raw = endpoint == "generate" and body.get("raw") is True
        forwarded = (ollama_api.chat_request(body) if endpoint == "chat" else
                     ollama_api.raw_completion_request(body) if raw else
                     ollama_api.generate_request(body))
        self.gw._describe(exchange, request, body)
        exchange.request, exchange.stream = forwarded, forwarded["stream"]
        await self.gw._admit(identity, body, exchange, request)
        reply = ollama_api.Reply(forwarded["model"], endpoint)
        if ollama_api.loads_only(body, endpoint):
            return JSONResponse(reply.loaded())
        kind: Kind
        if raw:
            prompt = validation.completion_prompts(forwarded)[0]
            exchange.prompt_text = prompt
            await self.gw._check_prompts(exchange, [Subject(prompt, "prompt")])
            context, kind = [Message("user", prompt)], "completion"
            forwarded = self.gw._masked_prompts(forwarded, exchange)
        else:
            context, kind = validation.chat_messages(forwarded), "chat"
            await self.gw._check_last_user(exchange, context)
            forwarded = await self.gw._for_upstream(forwarded, exchange)
        if forwarded["stream"]:
            lines = ollama_api.NdjsonStream(reply)
            response = await self.gw._stream(forwarded, exchange, context, kind,
                                             lambda relayed: ollama_api.ndjson(relayed, lines),
                                             media_type="application/x-ndjson")
            return response if isinstance(response, GuardedStreamingResponse) else \
                ollama_api.upstream_error(response)
        data = await self.gw._completion(forwarded, exchange, context, kind)
        if isinstance(data, Response):
            return ollama_api.upstream_error(data)
        generated = (exchange.upstream_ms or 0.0) / 1000
        return JSONResponse(reply.from_chat(data, generated) if kind == "chat" else
                            reply.from_completion(data, generated))

    async def tags(self, request: Request) -> Response:
        exchange = Exchange("ollama.tags")

        async def listing(r: Request) -> Response:
            return JSONResponse(ollama_api.tags(await self._upstream_models(r, exchange)))

        return await self.gw._guarded(exchange, listing, request, render=ollama_api.error_response)

    async def show(self, request: Request) -> Response:
        exchange = Exchange("ollama.show")

        async def shown(r: Request) -> Response:
            body = await validation.read_json(r, self.gw.settings.max_body_bytes)
            name = body.get("model", body.get("name"))  # older clients send "name"
            if name is None:
                raise GatewayError(400, "Missing required parameter: 'model'.",
                                   code="missing_required_parameter", param="model")
            if not isinstance(name, str):
                raise type_error("model", "a string", name)
            found = ollama_api.show(name, await self._upstream_models(r, exchange))
            if found is None:
                raise GatewayError(404, f"model '{name}' not found", code="model_not_found",
                                   param="model")
            return JSONResponse(found)

        return await self.gw._guarded(exchange, shown, request, render=ollama_api.error_response)

    async def _upstream_models(self, request: Request, exchange: Exchange) -> Any:
        await self.gw._admit(await self.gw._identify(request, exchange), None, exchange, request)
        if self.gw.upstream.routed:
            entries, seconds = await self.gw.upstream.model_list()
            exchange.upstream_ms = seconds * 1000
            return {"object": "list", "data": self.gw._allowed_entries(exchange, entries)}
        response, seconds = await self.gw.upstream.open("GET", "models")
        exchange.upstream_ms = seconds * 1000
        raw = await self.gw.upstream.read(response)
        if response.status_code != 200:
            raise GatewayError(502, "The upstream model server did not list its models "
                                    f"(HTTP {response.status_code}: "
                                    f"{ollama_api.error_message(raw)}).", code="upstream_error")
        try:
            listed = json.loads(raw)
        except ValueError:
            raise GatewayError(502, "The upstream model server's model list is not JSON.",
                               code="upstream_error") from None
        if isinstance(listed, dict) and isinstance(listed.get("data"), list):
            listed["data"] = self.gw._allowed_entries(exchange, listed["data"])
        return listed

    async def embed(self, request: Request) -> Response:
        exchange = Exchange("ollama.embed")
        return await self.gw._guarded(exchange, lambda r: self._embed(r, exchange, False),
                                      request, render=ollama_api.error_response)

    async def embeddings(self, request: Request) -> Response:
        exchange = Exchange("ollama.embeddings")
        return await self.gw._guarded(exchange, lambda r: self._embed(r, exchange, True),
                                      request, render=ollama_api.error_response)

    async def _embed(self, request: Request, exchange: Exchange, legacy: bool) -> Response:
        """As ``/v1/embeddings``: forwarded, neither judged nor stored, masked
        by the prompt's masking lists (see :meth:`Gateway._embed`)."""
        identity = await self.gw._identify(request, exchange)
        body = await validation.read_json(request, self.gw.settings.max_body_bytes)
        forwarded = ollama_api.embed_request(body, legacy)
        await self.gw._admit(identity, body, exchange, request)
        forwarded = masking.embedding_input(self.gw._policy(exchange), forwarded, exchange)
        exchange.model, exchange.request = forwarded["model"], forwarded
        response, seconds = await self.gw.upstream.open("POST", "embeddings", forwarded)
        exchange.upstream_ms = seconds * 1000
        if response.status_code >= 400:
            return ollama_api.upstream_error(await self.gw._passthrough(response, exchange))
        try:
            data = json.loads(await self.gw.upstream.read(response))
        except ValueError:
            data = None
        return JSONResponse(ollama_api.embed_answer(data, forwarded["model"], legacy))

    async def root(self, request: Request) -> Response:
        """``GET /`` and ``HEAD /``: Ollama's CLI asks this before anything
        else (its heartbeat), as Ollama answers "Ollama is running"."""
        return PlainTextResponse("guardstack is running")

    async def version(self, request: Request) -> Response:
        """The gateway's version (Ollama's clients ask before anything else)."""
        return JSONResponse({"version": __version__})
