"""The gateway's ASGI app: an OpenAI-compatible proxy that checks prompts
before they reach the model and completions while they stream back.

Every exchange is handed to the recorder exactly once, whatever happens
(blocked, halted, upstream failure, client gone), from a ``finally`` that a
client disconnect cannot cancel. Ollama's native endpoints are in
:mod:`.ollama_routes`, Anthropic's Messages API in :mod:`.anthropic_routes`,
over the same steps.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import anyio
import httpx
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

from guardstack import framing
from guardstack.classifiers.base import Message, Subject
from guardstack.gateway import (
    anthropic_api,
    disconnect,
    logs,
    masking,
    moderation,
    ollama_api,
    openapi,
    output_text,
    responses_api,
    routing,
    sse,
    tool_results,
    tracing,
    validation,
)
from guardstack.gateway import history as history_check
from guardstack.gateway.anthropic_routes import ANTHROPIC_API_PATHS, AnthropicEndpoints
from guardstack.gateway.auth import (
    ACCOUNT_STATES,
    AccountStates,
    Authenticator,
    Identity,
    KeyLookup,
)
from guardstack.gateway.errors import (
    GatewayError,
    blocked_prompt,
    blocked_tool_output,
    content_filter_result,
    error_body,
    indirect_attack_result,
)
from guardstack.gateway.judge import Judge, Judgement
from guardstack.gateway.metrics import Metrics
from guardstack.gateway.ollama_routes import OLLAMA_API_PATHS, OllamaEndpoints
from guardstack.gateway.ratelimit import RateLimiter, SharedRateLimiter
from guardstack.gateway.recorder import Exchange, MemoryRecorder, Recorder
from guardstack.gateway.response import GuardedStreamingResponse
from guardstack.gateway.routing import Router
from guardstack.gateway.settings import GatewaySettings
from guardstack.gateway.stored_responses import SharedStoredResponses, Stored, StoredResponses
from guardstack.gateway.streaming import Encoder, Kind, Relayed, StreamCheck, chunk_channels
from guardstack.gateway.tenant_policies import load as load_tenants
from guardstack.gateway.tenant_policies import read as read_policies
from guardstack.policy import Policy, PolicyError
from guardstack.verdict import Action

if TYPE_CHECKING:
    from guardstack.gateway.tracing import Tracing
    from guardstack.store.rate_buckets import RateBuckets
    from guardstack.store.stored_responses import SharedResponses

log = logging.getLogger("guardstack.gateway")

Handler = Callable[[Request], Awaitable[Response]]
#: The longest end-user id a request may name (an id, not a document).
MAX_END_USER = 256


class Gateway:
    def __init__(self, settings: GatewaySettings, guard: Any, recorder: Recorder, *,
                 keys: KeyLookup | None = None, states: AccountStates | None = None,
                 transport: httpx.AsyncBaseTransport | None = None,
                 metrics: Metrics | None = None, probe_upstream: bool = False,
                 tenant_policies: Mapping[str, Policy] | None = None,
                 reload_on_sighup: bool = False, rate_buckets: RateBuckets | None = None,
                 shared_responses: SharedResponses | None = None,
                 tracing: Tracing | None = None) -> None:
        self.settings = settings
        self.tracing = tracing
        self.reload_on_sighup = reload_on_sighup
        self.probe_upstream = probe_upstream
        self.metrics = metrics or Metrics()
        self.judge = Judge(guard, self.metrics, max_calls=settings.classifier_calls)
        #: user messages judged already, so a conversation's history is judged once
        self.judged_turns = history_check.JudgedTurns()
        self.policy = self.judge.policy
        self.tenant_policies: dict[str, Policy] = dict(tenant_policies or {})
        self.recorder = recorder
        self.auth = Authenticator(keys, states, open_mode=settings.open, ttl=settings.state_ttl)
        self.limiter = RateLimiter(settings.rate_limit, settings.rate_burst) \
            if rate_buckets is None else \
            SharedRateLimiter(settings.rate_limit, settings.rate_burst, rate_buckets)
        self._transport = transport
        self.upstream = self._router(routing.load(settings.routes) if settings.routes else ())
        #: routers a reload replaced: their streams may still run; closed at shutdown
        self._retired: list[Router] = []
        self.metrics.track_queue_depth(lambda: recorder.queue_depth)
        self.stored = StoredResponses(settings.stored_responses, settings.stored_responses_ttl) \
            if shared_responses is None else \
            SharedStoredResponses(settings.stored_responses, shared_responses)
        self._recording: set[asyncio.Task[None]] = set()
        #: reloaded policies' topic examples being embedded
        self._warming: set[asyncio.Task[None]] = set()

    # -- lifecycle ---------------------------------------------------------

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        await self.recorder.start()
        try:
            await self.judge.load()
        except Exception as exc:  # serve anyway: checks then fail open/closed per policy
            log.error("classifier failed to load: %s: %s", type(exc).__name__, exc)
        else:
            await self.judge.warm(self.tenant_policies.values())
        if self.probe_upstream:
            await self._probe_upstream()
        loop = asyncio.get_running_loop()
        sighup = False
        if self.reload_on_sighup and hasattr(signal, "SIGHUP"):
            # Not every loop takes signal handlers (Windows, a thread's loop).
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(signal.SIGHUP, self.reload)
                sighup = True
        watcher = asyncio.create_task(self._watch_config()) \
            if self.settings.reload_every > 0 else None
        try:
            yield
        finally:
            for task in (watcher, *self._warming):
                if task is not None:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
            if sighup:
                loop.remove_signal_handler(signal.SIGHUP)
            for router in (*self._retired, self.upstream):
                await router.aclose()
            if self._recording:  # exchanges answered but not yet handed to the recorder
                await asyncio.gather(*self._recording)
            # Flushes everything queued (SIGTERM reaches here through uvicorn).
            await self.recorder.close()
            self.limiter.close()
            self.stored.close()
            if self.tracing is not None:  # sends the spans still queued
                await asyncio.to_thread(self.tracing.shutdown)

    def _router(self, specs: Sequence[routing.RouteSpec]) -> Router:
        s = self.settings
        return Router.build(s.upstream, specs, api_key=s.upstream_api_key,
                            timeout=s.upstream_timeout, connect_timeout=s.connect_timeout,
                            transport=self._transport)

    def _config_files(self) -> tuple[tuple[str, int, int], ...]:
        """What a reload reads, as (path, modified, size): the policy, each
        tenant file and the routes file; a file that is gone reads (-1, -1).
        ``os.stat`` follows links, so a ConfigMap's swapped link shows."""
        s = self.settings
        paths = [p for p in (s.policy, s.routes) if p]
        if s.tenant_policies and os.path.isdir(s.tenant_policies):
            paths += sorted(os.path.join(s.tenant_policies, n)
                            for n in os.listdir(s.tenant_policies))
        out = []
        for path in paths:
            try:
                st = os.stat(path)
                out.append((path, st.st_mtime_ns, st.st_size))
            except OSError:
                out.append((path, -1, -1))
        return tuple(out)

    async def _watch_config(self) -> None:
        """``--reload-every``: reload when a config file changed. A file that
        does not load is reported once and the running config stays, until
        the file changes again."""
        seen = await asyncio.to_thread(self._config_files)
        while True:
            await asyncio.sleep(self.settings.reload_every)
            try:
                now = await asyncio.to_thread(self._config_files)
            except OSError as exc:  # the tenant folder went away mid-listing
                log.warning("could not look at the config files: %s", exc)
                continue
            if now != seen:
                seen = now
                log.warning("config files changed; reloading")
                self.reload()

    def reload(self) -> bool:
        """SIGHUP: re-read the policies and the routes file; each all or
        nothing. True when both were read."""
        policies = self.reload_policies()
        return self.reload_routes() and policies

    def reload_routes(self) -> bool:
        """Re-read ``--routes`` so a model server joins or leaves without a
        restart. A file that does not load leaves the running routes, and the
        log says why. Requests already sent keep their server (the replaced
        routes' connections close at shutdown)."""
        if not self.settings.routes:
            return True
        try:
            specs = routing.load(self.settings.routes)
        except routing.RoutesError as exc:
            log.error("routes not reloaded; the running ones stay: %s", exc)
            return False
        self._retired.append(self.upstream)
        self.upstream = self._router(specs)
        log.warning("routes reloaded: %s (%d routes)", self.settings.routes, len(specs))
        return True

    def reload_policies(self) -> bool:
        """Re-read ``--policy`` and ``--tenant-policies`` (on SIGHUP), so
        thresholds change without a restart. All or nothing: a file that does
        not load, or names another detector (the loaded classifier stays),
        leaves every policy as it was, and says why in the log."""
        try:
            policy, tenants = read_policies(self.settings.policy, self.settings.tenant_policies)
            if policy.detector != self.policy.detector:
                raise PolicyError(f"detector {policy.detector!r}: a reload cannot change the "
                                  f"detector ({self.policy.detector!r}); restart for that",
                                  source=policy.source, field="detector")
        except PolicyError as exc:
            log.error("policies not reloaded; the running ones stay: %s", exc)
            return False
        self.policy = self.judge.policy = policy
        self.tenant_policies = tenants
        with contextlib.suppress(RuntimeError):  # no running loop: the first check embeds
            task = asyncio.get_running_loop().create_task(
                self.judge.warm([policy, *tenants.values()]))
            self._warming.add(task)
            task.add_done_callback(self._warming.discard)
        log.warning("policies reloaded: %s%s", policy.source,
                    f" and {len(tenants)} tenant file(s)" if tenants else "")
        return True

    async def _probe_upstream(self) -> None:
        """Say at start-up what a newcomer's first request would otherwise
        show as a bare 404 or 401 from the model server. Serves either way:
        the upstream may simply start later."""
        for upstream in self.upstream.upstreams:
            url = f"{upstream.base_url}/models"
            status = await upstream.models_status()
            if status is None:
                log.warning("upstream %s does not answer yet; /readyz reports it", url)
            elif status in (401, 403):
                log.warning("upstream %s answered %d: does it need an API key "
                            "(--upstream-api-key, or api_key in --routes)?", url, status)
            elif not 200 <= status < 300:
                log.warning("upstream %s answered %d: is it the server's OpenAI base URL "
                            "(usually ending in /v1)?", url, status)

    # -- plumbing ----------------------------------------------------------

    async def _record(self, exchange: Exchange) -> None:
        exchange.finish()
        self.metrics.observe_masked(exchange.masked)
        self.metrics.observe_tactics(exchange.tactics)
        logs.access(exchange)
        if self.tracing is not None:
            self.tracing.end(exchange)
        with anyio.CancelScope(shield=True):
            try:
                await self.recorder.record(exchange)
            except Exception:
                log.exception("event recorder failed for exchange %s", exchange.id)

    async def _identify(self, request: Request, exchange: Exchange) -> Identity:
        """Who is calling (401 before a stranger's body is read). Anthropic's
        clients send their key in ``x-api-key``; it reads as a bearer token."""
        authorization = request.headers.get("authorization")
        if authorization is None and request.headers.get("x-api-key"):
            authorization = f"Bearer {request.headers['x-api-key']}"
        identity = await self.auth.identify(authorization, None)
        exchange.user, exchange.tenant, exchange.key_id = (identity.user, identity.tenant,
                                                           identity.key_id)
        return identity

    async def _admit(self, identity: Identity, body: dict[str, Any] | None,
                     exchange: Exchange, request: Request, *, model_access: bool = True,
                     bucket: str = "") -> None:
        """May they? Account state and rate limit: raises 403/429; and, with
        ``model_access``, the body's model under the policy's
        ``allowed_models``: 404 (moderations name no upstream model).
        ``bucket``: a rate-limit bucket of its own beside the user's requests
        (token counting, which Anthropic also limits apart from messages).

        The end user a request names (OpenAI's ``user`` or its successor
        ``safety_identifier``, else the ``--end-user-header``, which Open WebUI
        sends) is always recorded. It is the user itself in ``--open`` mode
        without a key, and for a platform's key (``keys add --end-users``),
        as ``<key user>:<end user>``: rate limits, account states and layer 3
        then see each person, and the platform's own state still applies."""
        end_user, source = None, ""
        for name in ("user", "safety_identifier"):
            if body and isinstance(body.get(name), str) and body[name].strip():
                end_user, source = body[name].strip(), name
                break
        header = self.settings.end_user_header
        if end_user is None and header and request.headers.get(header, "").strip():
            end_user, source = request.headers[header].strip(), header
        if end_user is not None and len(end_user) > MAX_END_USER:
            raise GatewayError(400, f"The end-user id in '{source}' is longer than "
                                    f"{MAX_END_USER} characters.", code="invalid_value",
                               param=source)
        exchange.openai_user = end_user
        if end_user:
            if self.settings.open and identity.key_id is None:
                identity = Identity(user=end_user)
            elif identity.end_users:
                identity = identity.on_behalf_of(end_user)
            exchange.user = identity.user
        state = await self.auth.state(identity.user)
        if identity.platform is not None:
            # A suspended (or limited) platform holds back every one of its end users.
            state = max(state, await self.auth.state(identity.platform),
                        key=ACCOUNT_STATES.index)
        exchange.account_state = state
        if state == "suspended":
            raise GatewayError(403, "This account is suspended.", code="account_suspended")
        factor = self.settings.rate_limited_factor if state == "rate_limited" else 1.0
        wait = await self.limiter.admit(identity.user + bucket, factor,
                                        rate=identity.rate_limit, burst=identity.rate_burst)
        if wait > 0:
            self.metrics.rate_limited.inc()
            after = RateLimiter.retry_after(wait)  # whole seconds, as the header has them
            raise GatewayError(429, f"Rate limit reached for user {identity.user!r}; "
                                    f"retry in {after} s.", code="rate_limit_exceeded",
                               headers={"retry-after": after})
        if body is not None and model_access:
            self._check_model_access(exchange, body.get("model"))

    def _check_model_access(self, exchange: Exchange, model: Any) -> None:
        """404 for a model the exchange's policy does not let its users call
        (``allowed_models``), as OpenAI answers a model one has no access to."""
        if self._policy(exchange).allows_model(model):
            return
        if not isinstance(model, str):
            raise GatewayError(400, "Name the model: this key may call only some models.",
                               code="missing_required_parameter", param="model")
        raise GatewayError(404, f"The model '{model}' does not exist or you do not have "
                                "access to it.", code="model_not_found", param="model")

    def _allowed_entries(self, exchange: Exchange, entries: list[Any]) -> list[Any]:
        """A model list's entries the exchange's policy lets its users call."""
        policy = self._policy(exchange)
        if not policy.allowed_models:
            return entries
        return [e for e in entries if isinstance(e, dict) and policy.allows_model(e.get("id"))]

    async def _guarded(self, exchange: Exchange, work: Handler, request: Request, *,
                       render: Callable[[GatewayError], Response] | None = None) -> Response:
        """Run a handler; turn every failure into an OpenAI error (or the
        error ``render`` writes: Ollama's, Anthropic's) and record once
        (streams record themselves when they end). Every answer names the
        exchange (:func:`_identified`)."""
        if self.tracing is not None:
            self.tracing.begin(exchange, request)
        disconnect.watch(request)
        try:
            response = await disconnect.unless_client_leaves(request, work(request))
        except disconnect.ClientLeft:
            # Nobody reads this answer; the handler (and its upstream call) was cancelled.
            exchange.client_disconnected = True
            exchange.status_code, exchange.error = 499, "the client disconnected before the answer"
            await self._record(exchange)
            return Response(status_code=499)
        except GatewayError as exc:
            exchange.status_code, exchange.error = exc.status, exc.message
            exchange.client_disconnected = exc.code == "client_disconnected"
            await self._record(exchange)
            return _identified(render(exc) if render else exc.response(), exchange)
        except Exception as exc:
            log.exception("internal error on %s", exchange.endpoint)
            exchange.status_code, exchange.error = 500, f"{type(exc).__name__}: {exc}"
            await self._record(exchange)
            failure = GatewayError(500, "The gateway failed to handle the request; see its log "
                                        f"for exchange {exchange.id}.", code="internal_error")
            return _identified(render(failure) if render else failure.response(), exchange)
        _identified(response, exchange)
        if not isinstance(response, GuardedStreamingResponse):
            exchange.status_code = response.status_code
            # Recorded once the answer is on its way: the task runs when this
            # one next yields, after the response is written, so building the
            # event is not in the client's latency. Shutdown awaits it.
            task = asyncio.create_task(self._record(exchange))
            self._recording.add(task)
            task.add_done_callback(self._recording.discard)
        return response

    def _policy(self, exchange: Exchange) -> Policy:
        """The policy for this exchange: its tenant's (--tenant-policies), else --policy."""
        policy = self.tenant_policies.get(exchange.tenant) if exchange.tenant else None
        if policy is None:
            return self.policy
        exchange.policy = policy.source
        return policy

    async def _check_prompts(self, exchange: Exchange, subjects: list[Subject], *,
                             history: tuple[list[Message], int] | None = None) -> None:
        """Judge the prompts; 400 ``content_filter`` when one is blocked. With
        ``history`` (a conversation and its last user message's index), the
        earlier user messages not judged before are judged in the same call,
        and one that blocks blocks the request (:mod:`guardstack.gateway.history`)."""
        exchange.tactics = _tactics(subjects)
        policy = self._policy(exchange)
        before = history_check.earlier(self.judged_turns, policy, *history) \
            if history is not None else history_check.Earlier()
        start = time.perf_counter()
        judgements = await self.judge.judge([*subjects, *before.subjects], policy)
        exchange.classifier_ms += (time.perf_counter() - start) * 1000
        before.settle(subjects, [j.verdict for j in judgements])
        judgements, judged_before = judgements[:len(subjects)], judgements[len(subjects):]
        exchange.prompt_verdicts = [j.verdict for j in judgements]
        exchange.prompt_embeddings = [j.embedding for j in judgements]
        if any(j.verdict.decision is Action.BLOCK for j in judgements):
            raise blocked_prompt(exchange.prompt_verdicts)
        # A flagged earlier message: its answer is judged as a flagged prompt's.
        exchange.history_flagged = bool(before.found)
        if before.blocking is not None and history is not None:
            judged_at = dict(zip(before.indices, judged_before, strict=True))
            if policy.role("prompt").judge_history == "withhold":
                # The model will not read them (_for_upstream); the rest is answered.
                exchange.history_withheld = before.blocked
                # A message judged before was recorded then; a new one (a history
                # written elsewhere) is recorded now, or layer 3 would never see it.
                found = dict(before.found)
                exchange.withheld_messages = [
                    (history[0][j].content, found[j], judged_at[j].embedding)
                    for j in exchange.history_withheld if j in judged_at]
                return
            index, verdict = before.blocking
            # What is recorded is what was blocked: that message, not the last one.
            exchange.prompt_text = history[0][index].content
            exchange.prompt_verdicts = [verdict]
            exchange.prompt_embeddings = [judged_at[index].embedding if index in judged_at
                                          else None]
            exchange.history_message = index
            raise blocked_prompt([verdict], earlier=True)

    async def _passthrough(self, response: httpx.Response, exchange: Exchange) -> Response:
        """An upstream error, status and body as the upstream sent them."""
        raw = await self.upstream.read(response)
        exchange.error = f"upstream {response.status_code}: {raw[:500].decode('utf-8', 'replace')}"
        media = response.headers.get("content-type", "application/json")
        return Response(raw, status_code=response.status_code, media_type=media)

    # -- endpoints ---------------------------------------------------------

    async def chat_completions(self, request: Request) -> Response:
        exchange = Exchange("chat.completions")
        return await self._guarded(exchange, lambda r: self._chat(r, exchange), request)

    async def _chat(self, request: Request, exchange: Exchange) -> Response:
        identity = await self._identify(request, exchange)
        body = await validation.read_json(request, self.settings.max_body_bytes)
        messages = validation.chat_messages(body)
        self._describe(exchange, request, body)
        await self._admit(identity, body, exchange, request)
        await self._check_last_user(exchange, messages)
        forwarded = await self._for_upstream(body, exchange)
        if body.get("stream"):
            return await self._stream(forwarded, exchange, messages, "chat")
        return await self._complete(forwarded, exchange, messages, "chat")

    async def _check_last_user(self, exchange: Exchange, messages: list[Message]) -> None:
        """The input check of a conversation: its last user message, judged
        with the messages before it as context, and under ``prompt.judge_history``
        the earlier user messages this gateway has not judged yet
        (:mod:`guardstack.gateway.history`); then the tool results after it,
        for injected instructions, when the policy asks."""
        last_user = max((i for i, m in enumerate(messages) if m.role == "user"), default=None)
        if last_user is not None:
            exchange.prompt_text = messages[last_user].content
            await self._check_prompts(exchange, [Subject(messages[last_user].content, "prompt",
                                                         tuple(messages[:last_user]))],
                                      history=(messages, last_user))
        tools = tool_results.since_last_user(messages)
        if tools:
            await self._check_tool_outputs(exchange, tools)
            if self._policy(exchange).tool_output_followed is not Action.ALLOW:
                exchange.planted = tool_results.planted_targets(
                    exchange.tool_verdicts, [m.content for m in messages if m.role == "user"])

    async def _check_tool_outputs(self, exchange: Exchange, texts: list[str]) -> None:
        """The tool results an agent is about to read (web pages, files, API
        answers), judged by the injection rules under the policy's
        ``tool_output``; off (allow) unless a policy turns it on."""
        policy = self._policy(exchange)
        rule = policy.tool_output
        if rule.action is Action.ALLOW:
            return
        start = time.perf_counter()
        with tracing.check("tool", len(texts), tool_results.DETECTOR) as span:
            found = [policy.monitored(v) for v in await tool_results.averdicts(
                texts, rule, other_languages=policy.tool_output_other_languages)]
            tracing.verdicts(span, found)
        exchange.classifier_ms += (time.perf_counter() - start) * 1000
        exchange.tool_verdicts.extend(found)
        for verdict in found:
            self.metrics.observe_verdict(verdict)
        if any(v.decision is Action.BLOCK for v in found):
            raise blocked_tool_output(exchange.tool_verdicts)

    async def responses(self, request: Request) -> Response:
        exchange = Exchange("responses")
        return await self._guarded(exchange, lambda r: self._responses(r, exchange), request)

    async def _responses(self, request: Request, exchange: Exchange) -> Response:
        """The Responses API, served over the upstream's chat completions
        (:mod:`responses_api`) with the chat path's checks."""
        identity = await self._identify(request, exchange)
        body = await validation.read_json(request, self.settings.max_body_bytes)
        chat = responses_api.to_chat(body)
        messages = validation.chat_messages(chat)
        self._describe(exchange, request, body)
        await self._admit(identity, body, exchange, request)
        reply = responses_api.Reply(body, f"resp_{exchange.id}",
                                    f"guardstack-{self.judge.detector_name}")
        chain = reply.id  # a chain of responses is one conversation in the store
        if body.get("previous_response_id") is not None:
            previous = await self._previous(body, exchange)
            chat = responses_api.with_history(chat, body, previous.messages)
            messages = validation.chat_messages(chat)
            chain = previous.conversation_id
        conversation = exchange.conversation_id = exchange.conversation_id or chain
        await self._check_last_user(exchange, messages)
        forwarded = await self._for_upstream(chat, exchange)
        owner, turns = exchange.user, responses_api.conversation_of(chat, body)

        async def remember(output: list[dict[str, Any]]) -> None:
            # Before the client has the answer's end, so its next turn finds it.
            if body.get("store") is not False:  # OpenAI's default: stored
                await self.stored.remember(reply.id, Stored(
                    owner, [*turns, *responses_api.assistant_messages(output)], conversation))

        if chat.get("stream"):
            events = responses_api.EventStream(reply)
            return await self._stream(forwarded, exchange, messages, "chat",
                                      lambda relayed: _as_response_events(relayed, events,
                                                                          exchange, remember))
        data = await self._completion(forwarded, exchange, messages, "chat")
        if isinstance(data, Response):
            return data
        answer = reply.from_chat(data, exchange.prompt_verdicts, exchange.response_verdicts)
        await remember(answer["output"])
        return JSONResponse(answer)

    async def _previous(self, body: dict[str, Any], exchange: Exchange) -> Stored:
        """The stored conversation ``previous_response_id`` continues: the
        same user's, still kept (404 otherwise, whoever's it was)."""
        previous = body["previous_response_id"]
        if self.stored.capacity <= 0:
            raise GatewayError(400, "'previous_response_id' is not supported: this gateway "
                                    "keeps no responses (--stored-responses 0); send the "
                                    "conversation in 'input'.", code="unsupported_parameter",
                               param="previous_response_id")
        stored = await self.stored.recall(previous, exchange.user)
        if stored is None:
            raise GatewayError(404, f"Previous response with id '{previous}' not found.",
                               code="previous_response_not_found",
                               param="previous_response_id")
        return stored

    async def completions(self, request: Request) -> Response:
        exchange = Exchange("completions")
        return await self._guarded(exchange, lambda r: self._legacy(r, exchange), request)

    async def _legacy(self, request: Request, exchange: Exchange) -> Response:
        identity = await self._identify(request, exchange)
        body = await validation.read_json(request, self.settings.max_body_bytes)
        prompts = validation.completion_prompts(body)
        suffix = validation.completion_suffix(body)
        self._describe(exchange, request, body)
        await self._admit(identity, body, exchange, request)
        judged = validation.with_suffix(prompts, suffix)
        exchange.prompt_text = "\n\n".join(judged)
        await self._check_prompts(exchange, [Subject(t, "prompt") for t in judged])
        context = [Message("user", prompts[0])] if len(prompts) == 1 else []
        body = self._masked_prompts(body, exchange)
        if body.get("stream"):
            return await self._stream(body, exchange, context, "completion")
        return await self._complete(body, exchange, context, "completion")

    def _describe(self, exchange: Exchange, request: Request, body: dict[str, Any]) -> None:
        exchange.request = body
        exchange.model = body.get("model")
        exchange.stream = bool(body.get("stream"))
        metadata = body.get("metadata")
        # Open WebUI names its chat in X-OpenWebUI-Chat-Id (with its user-info headers on).
        conv = request.headers.get("x-conversation-id") or (
            metadata.get("conversation_id") if isinstance(metadata, dict) else None) or \
            request.headers.get("x-openwebui-chat-id")
        exchange.conversation_id = conv if isinstance(conv, str) else None

    async def _for_upstream(self, body: dict[str, Any], exchange: Exchange
                            ) -> dict[str, Any]:
        """The chat body as it goes upstream: ``developer`` messages as
        ``system`` (unless --keep-developer-role), text-only content-part
        arrays as strings, null content of tool-call turns as "",
        ``max_completion_tokens`` also as ``max_tokens``, user messages
        masked by the policy's masking blocklists (:mod:`masking`), and the
        policy's safety system prompt for the models that want it."""
        if "max_completion_tokens" in body and "max_tokens" not in body:
            # OpenAI's newer name for the cap; llama.cpp's server reads only
            # max_tokens and would otherwise generate until its context is full.
            body = {**body, "max_tokens": body["max_completion_tokens"]}
        policy = self._policy(exchange)
        messages = masking.messages(policy, [self._upstream_message(m) for m in body["messages"]],
                                    exchange)
        if any(new is not old for new, old in zip(messages, body["messages"], strict=True)):
            body = {**body, "messages": messages}
        if exchange.history_withheld:
            body = {**body, "messages": history_check.withheld(body["messages"],
                                                               exchange.history_withheld)}
        # The store keeps what the model was sent.
        exchange.prompt_text = masking.recorded(policy, "prompt", exchange.prompt_text, exchange)
        if not await self._system_prompt_due(policy, body.get("model")):
            return body
        prompt = (policy.safety_system_prompt or "").strip()
        messages = list(body["messages"])
        first = messages[0] if messages else None
        if isinstance(first, dict) and first.get("role") == "system" and \
                isinstance(first.get("content"), str):
            # Merge: several chat templates accept only one system message.
            messages[0] = {**first, "content": f"{prompt}\n\n{first['content']}"}
        else:
            messages.insert(0, {"role": "system", "content": prompt})
        exchange.system_prompt_added = True
        return {**body, "messages": messages}

    async def _system_prompt_due(self, policy: Policy, model: Any) -> bool:
        """Whether the policy's safety system prompt goes with a request for
        ``model``: the name the client sent matches ``system_prompt_models``,
        or the upstream does not list that name and one it lists matches.
        llama.cpp's servers answer any name with the one model they serve, so
        ``"model": "x"`` must not skip the prompt; an upstream that gives no
        model list gets it with every name."""
        if not policy.safety_system_prompt or not policy.system_prompt_models:
            return False
        if isinstance(model, str) and policy.wants_system_prompt(model):
            return True
        served = await self.upstream.for_model(model).served_models()
        if served is None:
            return True
        if isinstance(model, str) and (model in served or f"{model}:latest" in served):
            return False  # Ollama lists "llama3.2:latest" and answers to "llama3.2"
        return any(policy.wants_system_prompt(name) for name in served)

    def _masked_prompts(self, body: dict[str, Any], exchange: Exchange) -> dict[str, Any]:
        """A completions body with its prompts masked (:mod:`masking`); the
        recorded prompt text too."""
        policy = self._policy(exchange)
        body = masking.completion_prompts(policy, body, exchange)
        exchange.prompt_text = masking.recorded(policy, "prompt", exchange.prompt_text, exchange)
        return body

    def _upstream_message(self, message: Any) -> Any:
        """One message as open-weight servers take it: a ``developer`` role as
        ``system``; content given as text parts only, as one string (llama.cpp's
        chat templates fail on arrays: "can only concatenate str (not list)");
        an assistant turn of tool calls only with ``""`` for its null content
        (llama-cpp-python's server refuses null with 422; OpenAI's clients,
        the Responses API's function calls and agent frameworks send it)."""
        if not isinstance(message, dict):
            return message
        out = message
        if message.get("role") == "developer" and not self.settings.keep_developer_role:
            out = {**out, "role": "system"}
        content = message.get("content")
        if isinstance(content, list) and content and all(
                isinstance(p, dict) and p.get("type") == "text" and isinstance(p.get("text"), str)
                for p in content):
            out = {**out, "content": "\n".join(p["text"] for p in content)}
        if content is None and message.get("role") == "assistant" and message.get("tool_calls"):
            out = {**out, "content": ""}
        return out

    async def _complete(self, body: dict[str, Any], exchange: Exchange,
                        context: list[Message], kind: Kind) -> Response:
        data = await self._completion(body, exchange, context, kind)
        return data if isinstance(data, Response) else JSONResponse(data)

    async def _completion(self, body: dict[str, Any], exchange: Exchange,
                          context: list[Message], kind: Kind) -> dict[str, Any] | Response:
        """The upstream's completion, checked (a blocked answer withheld), or
        the upstream's error response as it sent it."""
        path = "chat/completions" if kind == "chat" else "completions"
        response, seconds = await self.upstream.open("POST", path, body)
        exchange.upstream_ms = seconds * 1000
        self.metrics.upstream_seconds.labels(endpoint=path).observe(seconds)
        if response.status_code != 200:
            return await self._passthrough(response, exchange)
        raw = await self.upstream.read(response)
        try:
            data = json.loads(raw)
            choices = data["choices"]
            if not isinstance(choices, list):
                raise TypeError("choices is not a list")
        except (ValueError, KeyError, TypeError) as exc:
            raise GatewayError(502, f"The upstream model server returned a malformed response "
                                    f"({type(exc).__name__}).", code="upstream_error") from None
        texts = [_choice_text(c, kind) for c in choices]
        exchange.response_text = texts[0] if len(texts) == 1 else "\n\n".join(texts)
        subjects = [Subject(t, "response", tuple(context)) for t in texts]
        start = time.perf_counter()
        policy = self._policy(exchange)
        judgements = await self.judge.judge(subjects, policy, prompt_clean=exchange.prompt_clean)
        exchange.classifier_ms += (time.perf_counter() - start) * 1000
        exchange.response_verdicts = [j.verdict for j in judgements]
        if judgements:
            exchange.response_embedding = judgements[0].embedding
        for choice, text, j in zip(choices, texts, judgements, strict=True):
            if not isinstance(choice, dict):
                continue
            verdicts = [j.verdict]
            hits = tool_results.repeated(text, exchange.planted)
            took = tool_results.followed(hits, policy.tool_output_followed)
            if took is not None:  # the answer did what a planted instruction asked
                took = policy.monitored(took)
                verdicts.append(took)
                exchange.response_verdicts.append(took)
                exchange.followed = sorted({*exchange.followed, *hits})
                self.metrics.observe_verdict(took)
            choice["content_filter_results"] = content_filter_result(verdicts)
            if any(v.decision is Action.BLOCK for v in verdicts):
                # Azure's answer to a filtered completion: 200, the text withheld,
                # finish_reason "content_filter". Clients read it like any other.
                choice["finish_reason"] = "content_filter"
                if kind == "chat" and isinstance(choice.get("message"), dict):
                    output_text.withhold(choice["message"], self.settings.blocked_message)
                else:
                    choice["text"] = self.settings.blocked_message
                exchange.finish_reason = "content_filter"
            else:
                masking.answer(policy, choice, kind, exchange)
        exchange.response_text = masking.recorded(policy, "response", exchange.response_text,
                                                  exchange)
        if exchange.finish_reason is None and choices and isinstance(choices[0], dict):
            exchange.finish_reason = choices[0].get("finish_reason")
        data["prompt_filter_results"] = [
            {"prompt_index": i, "content_filter_results": content_filter_result([v])}
            for i, v in enumerate(exchange.prompt_verdicts)]
        if exchange.tool_verdicts and data["prompt_filter_results"]:
            data["prompt_filter_results"][0]["content_filter_results"]["indirect_attack"] = \
                indirect_attack_result(exchange.tool_verdicts)
        return data

    async def _stream(self, body: dict[str, Any], exchange: Exchange,
                      context: list[Message], kind: Kind, encode: Encoder | None = None, *,
                      media_type: str = "text/event-stream") -> Response:
        """Relay the upstream's stream through the output check, as chat or
        completion chunks, or as ``encode`` writes them (Responses API
        events, Ollama's lines)."""
        path = "chat/completions" if kind == "chat" else "completions"
        started = time.perf_counter()
        response, seconds = await self.upstream.open("POST", path, body)
        exchange.upstream_ms = seconds * 1000
        self.metrics.upstream_seconds.labels(endpoint=path).observe(seconds)
        if response.status_code != 200:
            return await self._passthrough(response, exchange)
        check = StreamCheck(self.judge, context, exchange, kind=kind,
                            hold_back=self.settings.hold_back,
                            check_every=self.settings.check_every,
                            window_tokens=self.settings.window_tokens,
                            policy=self._policy(exchange),
                            prompt_clean=exchange.prompt_clean)
        exchange.status_code = 200
        async def abandoned() -> None:
            exchange.client_disconnected = True
            await response.aclose()
            await self._record(exchange)

        relayed = self._relay(response, check, exchange, started)
        encoded = (encode or _as_chunks)(relayed)
        return GuardedStreamingResponse(encoded, on_unstarted=abandoned, media_type=media_type,
                                        headers={"cache-control": "no-cache",
                                                 "x-accel-buffering": "no"})

    async def _relay(self, response: httpx.Response, check: StreamCheck, exchange: Exchange,
                     started: float) -> AsyncGenerator[tuple[Relayed, dict[str, Any]], None]:
        """The checked stream as ``(kind, object)``: ``chunk``s, then one of
        ``halt`` (the halt chunk), ``error`` (an error body) or nothing, then
        ``done``. Records the exchange once, however it ends."""
        ended = False

        def send(chunk: dict[str, Any]) -> tuple[Relayed, dict[str, Any]]:
            tokens = sum(1 for c in chunk.get("choices") or ()
                         if chunk_channels(c, check.kind))
            if tokens and exchange.ttft_ms is None:
                exchange.ttft_ms = (time.perf_counter() - started) * 1000
            exchange.tokens_streamed += tokens
            return "chunk", chunk

        try:
            done = False
            try:
                async for event in sse.events(self.upstream.chunks(response)):
                    if event is None:
                        done = True
                        break
                    if "error" in event:
                        # An error the upstream reports in-band: pass it on as it is.
                        exchange.error = f"upstream stream error: {json.dumps(event)[:500]}"
                        yield "error", event
                        break
                    for chunk in await check.feed(event):
                        yield send(chunk)
                    if check.halted:
                        break
                if exchange.error is None and not check.halted and (
                        not check.choices or not all(c.finished for c in check.choices.values())):
                    # Cut off, or [DONE] before a finish_reason: vLLM, llama.cpp, Ollama and
                    # OpenAI end every choice with one first; llama-cpp-python under
                    # concurrent streams has sent a role chunk and [DONE] alone.
                    raise sse.UpstreamStreamError(
                        f"upstream stream ended{' ([DONE])' if done else ''} before the "
                        "completion finished (no finish_reason)")
                if exchange.error is None and not check.halted:
                    for chunk in await check.finish():
                        yield send(chunk)
                exchange.response_verdicts = [j.verdict for j in check.judgements][-64:]
                if check.halted:
                    self.metrics.halts.inc()
                    self.metrics.leaked_tokens.inc(exchange.unsafe_tokens_released)
                    exchange.finish_reason = "content_filter"
                    yield "halt", check.halt_chunk()
                elif done or exchange.error is None:
                    exchange.finish_reason = _last_finish(check)
            except sse.UpstreamStreamError as exc:
                # Held-back text was never checked: it is dropped, not flushed.
                exchange.error = str(exc)
                exchange.status_code = 502
                yield "error", error_body(502, f"The upstream model server's stream failed: "
                                               f"{exc}.", code="upstream_error")
            yield "done", {}
            ended = True
        finally:
            if not ended:
                exchange.client_disconnected = True
            exchange.response_text = masking.recorded(check.active_policy, "response",
                                                      check.response_text(), exchange)
            exchange.response_verdicts = [j.verdict for j in check.judgements][-64:]
            if check.judgements:
                exchange.response_embedding = check.judgements[-1].embedding
            with anyio.CancelScope(shield=True):
                # Closing the stream cancels the upstream's generation.
                await response.aclose()
            await self._record(exchange)

    async def moderations(self, request: Request) -> Response:
        exchange = Exchange("moderations")
        return await self._guarded(exchange, lambda r: self._moderate(r, exchange), request)

    async def _moderate(self, request: Request, exchange: Exchange) -> Response:
        identity = await self._identify(request, exchange)
        body = await validation.read_json(request, self.settings.max_body_bytes)
        if validation.moderation_role(body) == "tool":
            return await self._moderate_documents(body, exchange, identity, request)
        subjects = validation.moderation_subjects(body)
        await self._admit(identity, body, exchange, request, model_access=False)
        exchange.request = body
        exchange.model = body.get("model") if isinstance(body.get("model"), str) else None
        text = "\n\n".join(s.text for s in subjects)
        start = time.perf_counter()
        judgements: list[Judgement] = await self.judge.judge(
            subjects, self._policy(exchange),
            prompt_clean=validation.moderation_prompt_clean(body))
        exchange.classifier_ms = (time.perf_counter() - start) * 1000
        if subjects[0].role == "response":
            # A model's answer sent for checking: recorded as one, so layer 3
            # does not count it among the user's own prompts.
            exchange.response_text = text
            exchange.response_verdicts = [j.verdict for j in judgements]
            exchange.response_embedding = judgements[0].embedding
        else:
            exchange.prompt_text = text
            exchange.prompt_verdicts = [j.verdict for j in judgements]
            exchange.prompt_embeddings = [j.embedding for j in judgements]
            # as for prompts the gateway forwards: the event, the access record
            # and the metric name them for apps that only ask this endpoint
            exchange.tactics = _tactics(subjects)
        model = exchange.model or f"guardstack-{self.judge.detector_name}"
        return JSONResponse(moderation.response(judgements, model))

    async def _moderate_documents(self, body: dict[str, Any], exchange: Exchange,
                                  identity: Identity, request: Request) -> Response:
        """``guardstack.role: tool``: documents (a RAG pipeline's retrieved
        chunks, an agent's tool results) read by the injection rules. Findings
        are reported under the policy's ``tool_output`` action, as ``flag``
        where it leaves the gateway's own check off. Like embeddings, the
        texts are not stored among the user's messages."""
        texts = validation.moderation_inputs(body)
        await self._admit(identity, body, exchange, request, model_access=False)
        exchange.request = {k: v for k, v in body.items() if k != "input"}
        exchange.model = body.get("model") if isinstance(body.get("model"), str) else None
        policy = self._policy(exchange)
        rule = tool_results.reporting(policy.tool_output)
        start = time.perf_counter()
        found = await tool_results.averdicts(
            texts, rule, other_languages=policy.tool_output_other_languages)
        exchange.classifier_ms = (time.perf_counter() - start) * 1000
        exchange.tool_verdicts = found
        model = exchange.model or f"guardstack-{tool_results.DETECTOR}"
        return JSONResponse(moderation.response([Judgement(v) for v in found], model))

    async def embeddings(self, request: Request) -> Response:
        exchange = Exchange("embeddings")
        return await self._guarded(exchange, lambda r: self._embed(r, exchange), request)

    async def _embed(self, request: Request, exchange: Exchange) -> Response:
        """Forwarded after the key, the account state and the rate limit; the
        input is neither judged nor stored. Embedding inputs are mostly
        documents being indexed, not a user's requests: judging them as
        prompts would refuse a security team's knowledge base, and storing
        them would file a corpus among the user's messages for layer 3. The
        policy's masking lists for prompts do apply: what they find never
        reaches the model server (:func:`masking.embedding_input`). The
        exchange is recorded (who, when, status, latency, masking counts)
        without the input."""
        identity = await self._identify(request, exchange)
        body = await validation.read_json(request, self.settings.max_body_bytes)
        validation.check_embedding_input(body)
        await self._admit(identity, body, exchange, request)
        exchange.model = body["model"]
        body = masking.embedding_input(self._policy(exchange), body, exchange)
        exchange.request = body  # the event keeps only its sampling params: no input
        response, seconds = await self.upstream.open("POST", "embeddings", body)
        exchange.upstream_ms = seconds * 1000
        if response.status_code >= 400:
            return await self._passthrough(response, exchange)
        raw = await self.upstream.read(response)
        media = response.headers.get("content-type", "application/json")
        return Response(raw, status_code=response.status_code, media_type=media)

    async def models(self, request: Request) -> Response:
        exchange = Exchange("models")
        return await self._guarded(exchange, lambda r: self._models(r, exchange), request)

    async def _models(self, request: Request, exchange: Exchange) -> Response:
        await self._admit(await self._identify(request, exchange), None, exchange, request)
        if self.upstream.routed:
            entries, seconds = await self.upstream.model_list()
            exchange.upstream_ms = seconds * 1000
            return JSONResponse({"object": "list",
                                 "data": self._allowed_entries(exchange, entries)})
        response, seconds = await self.upstream.open("GET", "models")
        exchange.upstream_ms = seconds * 1000
        raw = await self.upstream.read(response)
        media = response.headers.get("content-type", "application/json")
        if self._policy(exchange).allowed_models and response.status_code == 200:
            # Only the list, filtered: llama.cpp's server also sends every model
            # under "models", which would name the ones this key may not call.
            return JSONResponse({"object": "list", "data": self._allowed_entries(
                exchange, routing.list_entries(raw))})
        return Response(raw, status_code=response.status_code, media_type=media)

    async def model(self, request: Request) -> Response:
        exchange = Exchange("models")
        return await self._guarded(exchange, lambda r: self._model(r, exchange), request)

    async def _model(self, request: Request, exchange: Exchange) -> Response:
        """One model (OpenAI's ``models.retrieve``): the upstream's own answer
        where it serves the path (Ollama), else the entry of its list (vLLM
        and llama.cpp serve only the list); 404 naming the model otherwise."""
        await self._admit(await self._identify(request, exchange), None, exchange, request)
        name = request.path_params["model"]
        exchange.model = name
        self._check_model_access(exchange, name)
        upstream = self.upstream.for_model(name)
        response, seconds = await upstream.open("GET", f"models/{quote(name, safe='')}")
        exchange.upstream_ms = seconds * 1000
        raw = await upstream.read(response)
        if 200 <= response.status_code < 300:
            media = response.headers.get("content-type", "application/json")
            return Response(raw, status_code=response.status_code, media_type=media)
        response, seconds = await upstream.open("GET", "models")
        exchange.upstream_ms += seconds * 1000
        if response.status_code >= 400:
            return await self._passthrough(response, exchange)
        for entry in routing.list_entries(await upstream.read(response)):
            if isinstance(entry, dict) and entry.get("id") == name:
                return JSONResponse(entry)
        raise GatewayError(404, f"The model '{name}' does not exist on the upstream model "
                                "server.", code="model_not_found", param="model")

    async def healthz(self, request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(self, request: Request) -> Response:
        each = await self.upstream.reachability()
        upstream = all(each.values())
        ready = upstream and self.judge.loaded
        body: dict[str, Any] = {"status": "ready" if ready else "not ready",
                                "upstream": upstream, "classifier": self.judge.loaded}
        if self.upstream.routed:
            body["upstreams"] = each
        return JSONResponse(body, status_code=200 if ready else 503)

    async def metrics_endpoint(self, request: Request) -> Response:
        return Response(self.metrics.render(), media_type=CONTENT_TYPE_LATEST)


def _identified(response: Response, exchange: Exchange) -> Response:
    """``response`` with the exchange's id as ``x-request-id`` (OpenAI's
    header: its SDK exposes it as ``_request_id``) and ``request-id``
    (Anthropic's), so a client can quote the exchange the store keeps."""
    response.headers["x-request-id"] = exchange.id
    response.headers["request-id"] = exchange.id
    return response


async def _as_chunks(relayed: AsyncGenerator[tuple[Relayed, dict[str, Any]], None],
                     ) -> AsyncGenerator[bytes, None]:
    """The checked stream in the upstream's own format: its chunks, then
    ``[DONE]``."""
    async with contextlib.aclosing(relayed):
        async for kind, obj in relayed:
            yield sse.DONE if kind == "done" else sse.encode(obj)


async def _as_response_events(relayed: AsyncGenerator[tuple[Relayed, dict[str, Any]], None],
                              events: responses_api.EventStream,
                              exchange: Exchange,
                              remember: Callable[[list[dict[str, Any]]], Awaitable[None]]
                              ) -> AsyncGenerator[bytes, None]:
    """The checked stream as Responses API events; the answer as the client
    saw it is remembered before its last event."""
    async with contextlib.aclosing(relayed):
        for event in events.start(exchange.prompt_verdicts):
            yield responses_api.encode(event)
        ended = False
        async for kind, obj in relayed:
            if kind == "chunk":
                out = events.chunk(obj)
            elif kind == "halt":
                out, ended = events.halt(exchange.prompt_verdicts,
                                         exchange.response_verdicts), True
                await remember(events.output)
            elif kind == "error":
                out, ended = events.fail(obj), True
            else:
                out = [] if ended else events.finish(exchange.prompt_verdicts,
                                                     exchange.response_verdicts)
                if not ended:
                    await remember(events.output)
            for event in out:
                yield responses_api.encode(event)


def _choice_text(choice: Any, kind: Kind) -> str:
    if not isinstance(choice, dict):
        return ""
    if kind == "chat":
        return output_text.message_text(choice.get("message"))
    content = choice.get("text")
    return content if isinstance(content, str) else ""


def _last_finish(check: StreamCheck) -> str | None:
    return "stop" if check.choices and all(c.finished for c in check.choices.values()) else None


_ENDPOINTS = {"/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/models",
              "/v1/moderations", "/v1/responses", "/healthz", "/readyz", "/metrics",
              "/openapi.json", *OLLAMA_API_PATHS, *ANTHROPIC_API_PATHS, "/"}


class _CountRequests:
    """Counts every response by endpoint and status (404s included)."""

    def __init__(self, app: Any, metrics: Metrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        endpoint = path if path in _ENDPOINTS else "other"

        async def counting_send(message: Any) -> None:
            if message["type"] == "http.response.start":
                self.metrics.requests.labels(endpoint=endpoint,
                                             status=str(message["status"])).inc()
            await send(message)

        await self.app(scope, receive, counting_send)


async def _http_error(request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    message = {404: f"Unknown path {request.url.path}.",
               405: f"Method {request.method} is not allowed on {request.url.path}."}.get(
        status, "The gateway could not handle the request.")
    headers = getattr(exc, "headers", None)
    if request.url.path.startswith("/api/"):
        if status == 404:
            message += (f" The gateway serves Ollama's {', '.join(OLLAMA_API_PATHS)}; "
                        "managing models (pull, create, delete, ...) is the model server's own.")
        return JSONResponse(ollama_api.error_body(message), status_code=status, headers=headers)
    path = request.url.path
    if path == "/v1/messages" or path.startswith("/v1/messages/"):  # Anthropic's clients
        if status == 404:
            message += (" The gateway serves Anthropic's POST /v1/messages and "
                        "/v1/messages/count_tokens only.")
        return JSONResponse(anthropic_api.error_body(status, message), status_code=status,
                            headers=headers)
    return JSONResponse(error_body(status, message), status_code=status, headers=headers)


def _tactics(subjects: Sequence[Subject]) -> list[str]:
    """The adversarial jailbreak tactics the prompts use, named whatever the
    verdict ("no disclaimers" around a harmless question is allowed, and
    still worth counting: layer 3 reads it beside harm, per user)."""
    return sorted({t for s in subjects for t in framing.adversarial_tactics(s.text)})


def create_app(settings: GatewaySettings, *, guard: Any = None, recorder: Recorder | None = None,
               keys: KeyLookup | None = None, states: AccountStates | None = None,
               transport: httpx.AsyncBaseTransport | None = None,
               dashboard: Any = None, probe_upstream: bool = False,
               tenant_policies: Mapping[str, Policy] | None = None,
               reload_on_sighup: bool = False,
               rate_buckets: RateBuckets | None = None,
               shared_responses: SharedResponses | None = None,
               tracing: Tracing | None = None) -> Starlette:
    """Build the gateway. ``guard`` defaults to the policy's Guard with its
    default detector; ``recorder`` to an in-memory one (``guardstack serve``
    passes the event store's). ``dashboard``, an ASGI app (the review
    dashboard over the same store), is mounted at ``/ui``. ``probe_upstream``
    logs at start-up what is wrong with an upstream that does not list its
    models (``guardstack serve`` sets it). ``tenant_policies`` (default: read
    from ``settings.tenant_policies``; a :class:`PolicyError` if a file is
    wrong) judge each tenant's requests by its own policy. ``reload_on_sighup``
    re-reads the policy files on SIGHUP (``guardstack serve`` sets it).
    ``rate_buckets`` keeps the rate limits' buckets in a store that other
    replicas share (``--shared-rate-limits``); without it they are this
    process's own. ``shared_responses`` keeps Responses API answers there too
    (``--shared-responses``), so any replica continues them. ``tracing``
    sends each exchange's spans to an OpenTelemetry collector
    (``--otlp-traces-endpoint``)."""
    if guard is None:
        from guardstack.guard import Guard

        guard = Guard(settings.policy)
    if tenant_policies is None and settings.tenant_policies:
        tenant_policies = load_tenants(settings.tenant_policies, detector=guard.policy.detector)
    gw = Gateway(settings, guard, recorder if recorder is not None else MemoryRecorder(),
                 keys=keys, states=states, transport=transport, probe_upstream=probe_upstream,
                 tenant_policies=tenant_policies, reload_on_sighup=reload_on_sighup,
                 rate_buckets=rate_buckets, shared_responses=shared_responses,
                 tracing=tracing)
    api_document = openapi.document()

    async def openapi_json(request: Request) -> Response:
        return JSONResponse(api_document)

    app = Starlette(
        routes=[
            Route("/v1/chat/completions", gw.chat_completions, methods=["POST"]),
            Route("/v1/completions", gw.completions, methods=["POST"]),
            Route("/v1/responses", gw.responses, methods=["POST"]),
            Route("/v1/moderations", gw.moderations, methods=["POST"]),
            Route("/v1/embeddings", gw.embeddings, methods=["POST"]),
            Route("/v1/models", gw.models, methods=["GET"]),
            Route("/v1/models/{model:path}", gw.model, methods=["GET"]),
            *OllamaEndpoints(gw).routes(),
            *AnthropicEndpoints(gw).routes(),
            Route("/healthz", gw.healthz, methods=["GET"]),
            Route("/readyz", gw.readyz, methods=["GET"]),
            Route("/metrics", gw.metrics_endpoint, methods=["GET"]),
            Route("/openapi.json", openapi_json, methods=["GET"]),
            *([Mount("/ui", app=dashboard)] if dashboard is not None else []),
        ],
        exception_handlers={HTTPException: _http_error, Exception: _http_error},
        lifespan=gw.lifespan,
    )
    app.state.gateway = gw
    app.add_middleware(_CountRequests, metrics=gw.metrics)
    return app


__all__ = ["Gateway", "create_app"]
