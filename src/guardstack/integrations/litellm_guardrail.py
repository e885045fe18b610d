"""guardstack as a LiteLLM guardrail, for teams that already run the LiteLLM
proxy (or call the ``litellm`` SDK) and want guardstack's checks without
putting ``guardstack serve`` in the request path.

In the proxy's ``config.yaml``::

    guardrails:
      - guardrail_name: guardstack
        litellm_params:
          guardrail: guardstack.integrations.litellm_guardrail.GuardstackGuardrail
          mode: [pre_call, post_call]
          default_on: true
          api_base: http://127.0.0.1:8000          # remote; leave out to judge in-process
          api_key: os.environ/GUARDSTACK_API_KEY

Two ways to judge, one behaviour:

* **remote** (``api_base`` set): a running guardstack gateway's
  ``POST /v1/moderations`` judges each text (:mod:`.remote_judge`).
* **in-process**: guardstack's own :class:`~guardstack.guard.Guard` (the
  policy's detector, by default the shipped fast classifier) judges inside
  the LiteLLM process; its model call runs in a worker thread.

The hooks do what the gateway does: ``pre_call``/``during_call`` judge the
last user message with the conversation before it and raise
:class:`ContentFilterError` (HTTP 400, the gateway's ``content_filter`` error
body) on ``block``; ``post_call`` judges each returned choice whole, and a
streamed answer is judged while it streams by the gateway's own
:class:`~guardstack.gateway.streaming.StreamCheck` (sentence ends, a sliding
window, a hold-back) and ends with a ``finish_reason: "content_filter"``
chunk when it turns unsafe. Responses API calls (``/v1/responses``,
``litellm.aresponses``) are judged the same way: the ``input`` and
``instructions`` as the conversation, the output items (message text,
reasoning, function-call arguments) as the answer, and a streamed response's
text deltas by the same StreamCheck, a halt ending it with a
``response.incomplete`` event (reason ``content_filter``). Anthropic Messages
calls (the proxy's ``/v1/messages``) read ``system`` as context and
``tool_result`` blocks for planted orders; a Message is judged on its text,
thinking and tool inputs, and a streamed one (raw SSE bytes,
:mod:`.anthropic_sse`) on its deltas, a halt ending it with stop reason
``refusal``. The policy's masking lists rewrite prompts in ``pre_call`` and
chat and completion answers in ``post_call``, as the gateway does, a
``restore`` list's values kept in memory until the answer gives them back.
``flag`` lets the
text through; every verdict is logged and attached to the request's metadata
under ``guardstack``. When guardstack cannot judge (gateway unreachable or
slow, classifier broken), the policy's ``<role>.on_error`` decides: fail open
or fail closed.

Which hooks run is LiteLLM's decision: the guardrail's ``mode`` (event
hooks), ``default_on`` and the request's ``guardrails`` list, checked by
:meth:`CustomGuardrail.should_run_guardrail` before a hook is called.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
import uuid
from collections import OrderedDict
from collections.abc import AsyncGenerator, AsyncIterator, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

import httpx
from fastapi import HTTPException
from litellm.integrations.custom_guardrail import CustomGuardrail
from litellm.litellm_core_utils.core_helpers import get_or_create_metadata_bucket
from litellm.types.guardrails import GuardrailEventHooks
from litellm.types.utils import GuardrailTracingDetail, ModelResponseStream, TextCompletionResponse

from guardstack.classifiers.base import Message, Subject
from guardstack.gateway import (
    anthropic_api,
    masking,
    output_text,
    responses_api,
    tool_results,
    validation,
)
from guardstack.gateway import history as history_check
from guardstack.gateway.errors import blocked, blocked_prompt, blocked_tool_output
from guardstack.gateway.judge import Judge
from guardstack.gateway.recorder import Exchange
from guardstack.gateway.settings import DEFAULTS
from guardstack.gateway.streaming import Kind, StreamCheck
from guardstack.guard import Guard, as_message, subject_from_messages
from guardstack.integrations import anthropic_sse
from guardstack.integrations.remote_judge import RemoteJudge
from guardstack.policy import FailMode, Policy
from guardstack.secrets import SecretError, resolve_secret
from guardstack.verdict import Action, Status, Verdict

if TYPE_CHECKING:
    from litellm.caching.caching import DualCache
    from litellm.types.proxy.auth.user_api_key_auth import UserAPIKeyAuth
    from litellm.types.utils import CallTypesLiteral, LLMResponseTypes

log = logging.getLogger("guardstack.litellm")

Backend = Literal["remote", "in_process"]
#: Where a stream chunk's LiteLLM object rides through StreamCheck, which
#: works on the OpenAI dict shape and hands back the dicts it releases.
_ORIGINAL = "_litellm_chunk"
#: How many of a stream's verdicts go into the request metadata (as the gateway keeps).
_STREAM_VERDICTS_KEPT = 64
#: Requests whose masked values wait for their answer (oldest forgotten first).
_RESTORES_KEPT = 10_000
#: How many SDK requests' prompt verdicts wait for their stream (``guard_stream``).
_LEFT_KEPT = 1_000


class ContentFilterError(HTTPException):
    """guardstack blocked the text. An HTTP 400 whose ``detail`` is the
    gateway's own error body (``{"error": {..., "code": "content_filter",
    "innererror": {"content_filter_result": ...}}}``): the proxy returns it
    to the client like any guardrail's 400, and LiteLLM logs it as the
    guardrail intervening. ``verdicts`` are guardstack's verdicts."""

    def __init__(self, body: dict[str, Any], verdicts: Sequence[Verdict],
                 param: str | None) -> None:
        super().__init__(status_code=400, detail=body)
        self.verdicts = list(verdicts)
        self.param = param  # the proxy copies it into the OpenAI error's `param`

    @property
    def categories(self) -> list[str]:
        return sorted({c for v in self.verdicts if v.blocked for c in v.categories})


class GuardstackGuardrail(CustomGuardrail):
    """guardstack's checks as a LiteLLM ``CustomGuardrail``.

    Settings (``litellm_params`` in the proxy's config, keyword arguments in
    the SDK); LiteLLM's own (``guardrail_name``, ``mode``/``event_hook``,
    ``default_on``, ``timeout``) keep their LiteLLM meaning:

    * ``api_base``: a guardstack gateway (``http://host:8000``); remote mode.
    * ``api_key``: its key, e.g. ``os.environ/GUARDSTACK_API_KEY`` (the
      default when that variable is set); not needed for ``--open`` gateways.
    * ``guardstack_mode``: ``remote`` or ``in_process``; by default remote
      exactly when ``api_base`` is set.
    * ``policy``: a policy file (default: the shipped policy). In-process it
      decides everything; remote, the gateway's policy decides and this one
      only says what an unreachable gateway means (``<role>.on_error``) and how
      long to wait (``<role>.timeout_ms``).
    * ``on_error``: ``open`` or ``closed`` for both roles, over the policy's.
    * ``timeout``: seconds to wait for a check, over the policy's ``timeout_ms``.
    * ``hold_back``, ``check_every``, ``window_tokens``: the streamed output
      check, as ``guardstack serve`` has them (16, 16, 256).
    * ``guard``: (SDK) a :class:`Guard` of your own for in-process mode; its
      policy then decides, and ``policy``/``on_error``/``timeout`` are refused.
    """

    def __init__(self, *, guardstack_mode: str | None = None, api_base: str | None = None,
                 api_key: str | None = None, policy: str | Path | None = None,
                 on_error: str | None = None, hold_back: int = DEFAULTS["hold_back"],
                 check_every: int = DEFAULTS["check_every"],
                 window_tokens: int = DEFAULTS["window_tokens"], guard: Guard | None = None,
                 **kwargs: Any) -> None:
        super().__init__(supported_event_hooks=self.get_supported_event_hooks(), **kwargs)
        self.backend = _backend(guardstack_mode, api_base)
        if hold_back < 0 or check_every < 1 or window_tokens < check_every:
            raise ValueError("guardstack: need hold_back >= 0, check_every >= 1 and "
                             f"window_tokens >= check_every; got hold_back={hold_back}, "
                             f"check_every={check_every}, window_tokens={window_tokens}")
        self.hold_back, self.check_every, self.window_tokens = hold_back, check_every, window_tokens
        timeout_s = _seconds(self.timeout)
        self.judge: Judge
        if guard is not None:
            if self.backend == "remote":
                raise ValueError("guardstack: 'guard' is for in-process mode; remote mode "
                                 "asks the gateway at api_base")
            if policy is not None or on_error is not None or timeout_s is not None:
                raise ValueError("guardstack: with your own 'guard', its policy decides; "
                                 "leave out 'policy', 'on_error' and 'timeout'")
            self.judge = Judge(guard)
        else:
            loaded = Policy.default() if policy is None else Policy.load(policy)
            adjusted = _adjusted(loaded, _fail_mode(on_error), timeout_s)
            if self.backend == "remote":
                assert api_base is not None  # _backend refuses remote without it
                self.judge = RemoteJudge(adjusted, api_base, api_key=_api_key(api_key))
            else:
                self.judge = Judge(Guard(adjusted))
        self.policy = self.judge.policy
        #: user messages judged already (``prompt.judge_history``)
        self.judged_turns = history_check.JudgedTurns()
        #: values of ``restore`` lists masked in a prompt, by the request's mask
        #: id, until its answer gives them back: in memory only, never in the
        #: metadata (LiteLLM's logging integrations ship that elsewhere)
        self._restores: OrderedDict[str, dict[str, str]] = OrderedDict()
        #: what pre_call left in each request's metadata, by what the request
        #: asked (``_request_key``), oldest first: an SDK caller's own request
        #: has no metadata bucket when it passed none (LiteLLM made one for its
        #: copy), so ``guard_stream`` finds the prompt's verdicts and mask here
        self._left_by_request: OrderedDict[str, list[dict[str, Any]]] = OrderedDict()
        masks = [b.id for b in self.policy.blocklists if b.mask]
        hooks = self.event_hook if isinstance(self.event_hook, list) else [self.event_hook]
        if masks and GuardrailEventHooks.pre_call not in hooks:  # a str enum: "pre_call" too
            log.warning("guardstack: the policy's masking blocklists (%s) mask prompts in the "
                        "pre_call hook, which this guardrail's mode leaves out",
                        ", ".join(masks))

    @classmethod
    def get_supported_event_hooks(cls) -> list[GuardrailEventHooks]:
        return [GuardrailEventHooks.pre_call, GuardrailEventHooks.during_call,
                GuardrailEventHooks.post_call]

    # -- LiteLLM's hooks ---------------------------------------------------

    async def async_pre_call_hook(self, user_api_key_dict: UserAPIKeyAuth, cache: DualCache,
                                  data: dict, call_type: CallTypesLiteral,
                                  ) -> Exception | str | dict | None:
        await self._check_prompt(data, GuardrailEventHooks.pre_call, user_api_key_dict)
        masked = self._mask_prompt(data, call_type)
        # data changed in place when earlier messages were withheld: hand it back
        return data if masked is None and "history_withheld" in _left(data) else masked

    async def async_pre_call_deployment_hook(self, kwargs: dict[str, Any],
                                             call_type: Any) -> dict | None:
        # The SDK's way in to pre_call (LiteLLM's copy of the caller's keyword
        # arguments): remember what it left for guard_stream, keyed before
        # masking rewrites the messages.
        asked = _request_key(kwargs)
        out = await super().async_pre_call_deployment_hook(kwargs, call_type)
        self._remember(asked, kwargs)
        return out

    async def async_moderation_hook(self, data: dict, user_api_key_dict: UserAPIKeyAuth,
                                    call_type: CallTypesLiteral) -> object:
        # during_call: the same check, run while the model already generates.
        await self._check_prompt(data, GuardrailEventHooks.during_call, user_api_key_dict)
        return None

    async def async_post_call_success_hook(self, data: dict, user_api_key_dict: UserAPIKeyAuth,
                                           response: LLMResponseTypes) -> Any:
        texts = _response_texts(response)
        if not texts:
            return None  # not a completion (embeddings, images, ...) or nothing written
        context = _conversation(data)
        start = time.time()
        checked = _checked(data)
        verdicts = await self._judge([Subject(t, "response", context) for t in texts], data,
                                     user_api_key_dict, prompt_clean=checked.prompt_clean)
        for text in texts:  # as the gateway: did the answer do what a planted page asked?
            took = tool_results.followed(tool_results.repeated(text, checked.planted),
                                         self.policy.tool_output_followed)
            if took is not None:
                verdicts.append(self.policy.monitored(took))
        self._record(data, "response", verdicts, GuardrailEventHooks.post_call, start)
        if any(v.blocked for v in verdicts):
            if anthropic_api.message_text(response) is not None:
                # As Anthropic's API (and the gateway, and a halted stream) answers
                # when its classifiers intervene: HTTP 200, stop_reason "refusal".
                return _refusal_message(cast("Mapping[str, Any]", response), verdicts)
            raise ContentFilterError(blocked("response", list(verdicts)).body(), verdicts,
                                     param=None)
        self._mask_answer(data, response)
        return None

    async def async_post_call_streaming_iterator_hook(
            self, user_api_key_dict: UserAPIKeyAuth, response: Any, request_data: dict,
    ) -> AsyncGenerator[Any, None]:
        async for chunk in self.guard_stream(response, request_data,
                                             end_user=_end_user(request_data, user_api_key_dict)):
            yield chunk

    # -- for SDK users -----------------------------------------------------

    async def guard_stream(self, stream: AsyncIterator[Any], request_data: dict, *,
                           end_user: str | None = None) -> AsyncGenerator[Any, None]:
        """The streamed output check around a LiteLLM stream; what the proxy's
        streaming hook runs. The SDK has no streaming guardrail hook, so wrap
        the stream ``litellm.acompletion(..., stream=True)`` returned, with the
        request's keyword arguments as ``request_data``. Verdicts go into
        ``request_data``'s metadata. ``end_user`` (default: the request's
        ``user``) is whom remote mode tells the gateway the text is from."""
        judge = await self._ready(end_user or _end_user(request_data))
        self._recall(request_data)
        exchange = _checked(request_data)
        exchange.model, exchange.stream = request_data.get("model"), True
        exchange.restore = self._restored(request_data)
        check: StreamCheck | None = None
        rewrite = False
        start = time.time()
        created: Any = None  # a Responses stream's response.created event
        frames = anthropic_sse.SSEFrames()  # a /v1/messages stream: raw SSE bytes

        def sent(chunk: Any) -> Any:
            if anthropic_sse.is_frames(chunk):
                frames.sent(chunk)
            return chunk

        try:
            async for chunk in stream:
                for item in (frames.split(chunk) if anthropic_sse.is_frames(chunk) else (chunk,)):
                    if _event_type(item) == "response.created":
                        created = item
                    event = _chunk_event(item)
                    if event is None or (check is None and not event["choices"]):
                        yield sent(item)  # no text to judge, none held before it: as it came
                        continue
                    if check is None:  # the first choices say what kind of stream this is
                        # Chat and completion chunks are masked: StreamCheck masks
                        # its dicts and _written_back copies that into LiteLLM's own.
                        rewrite = _maskable(item) and masking.rewrites_answers(self.policy,
                                                                               exchange)
                        check = StreamCheck(judge, _conversation(request_data), exchange,
                                            kind=_kind(item), hold_back=self.hold_back,
                                            check_every=self.check_every,
                                            window_tokens=self.window_tokens,
                                            prompt_clean=exchange.prompt_clean,
                                            rewrite=rewrite)
                    for out in await check.feed(event):
                        yield sent(_written_back(out) if rewrite else out[_ORIGINAL])
                    if check.halted:
                        break
                if check is not None and check.halted:
                    break
            if check is not None and not check.halted:
                for out in await check.finish():
                    yield sent(_written_back(out) if rewrite else out[_ORIGINAL])
            if check is not None and check.halted:
                if frames.seen:
                    for frame in frames.halt([j.verdict for j in check.judgements]):
                        yield frame
                else:
                    yield _halt_chunk(check) if created is None else _responses_halt(created)
            elif rest := frames.rest():
                yield rest
        finally:
            if check is not None:
                if check.halted:
                    # Stop the model: nothing more it writes will be shown.
                    close = getattr(stream, "aclose", None)
                    if close is not None:
                        await close()
                self._record_stream(request_data, check, start)
                if check.exchange.masked:  # beside the prompt's counts, as a whole answer's
                    _ours(request_data).setdefault("masked", {}).update(check.exchange.masked)

    async def aclose(self) -> None:
        """Close the connections to the gateway (remote mode) held for the
        running event loop; the proxy never needs to, one-off SDK scripts may."""
        if isinstance(self.judge, RemoteJudge):
            await self.judge.aclose()

    # -- judging -----------------------------------------------------------

    async def _ready(self, end_user: str | None = None) -> Judge:
        """The judge, loaded; in remote mode one that names ``end_user`` to the gateway."""
        if not self.judge.loaded:
            try:
                await self.judge.load()  # reads the model in a worker thread
            except Exception as exc:  # judge anyway: checks then fail open/closed per policy
                log.error("guardstack classifier failed to load: %s: %s",
                          type(exc).__name__, exc)
        if isinstance(self.judge, RemoteJudge):
            return self.judge.on_behalf_of(end_user)
        return self.judge

    async def _judge(self, subjects: Sequence[Subject], data: Mapping[str, Any],
                     key: Any = None, *, prompt_clean: bool = False) -> list[Verdict]:
        judge = await self._ready(_end_user(data, key))
        return [j.verdict for j in await judge.judge(subjects, prompt_clean=prompt_clean)]

    async def _check_prompt(self, data: dict, event: GuardrailEventHooks, key: Any = None,
                            ) -> None:
        subjects = _prompt_subjects(data)
        if subjects:
            start = time.time()
            before = history_check.earlier(self.judged_turns, self.policy,
                                           [as_message(m) for m in _messages(data)])
            verdicts = await self._judge([*subjects, *before.subjects], data, key)
            before.settle(subjects, verdicts)
            verdicts = verdicts[:len(subjects)]
            # earlier messages that flagged or blocked count as the prompt's
            # verdicts: the answer is then judged as a flagged prompt's
            self._record(data, "prompt", [*verdicts, *(v for _, v in before.found)], event,
                         start)
            if any(v.blocked for v in verdicts):
                raise ContentFilterError(blocked_prompt(verdicts).body(), verdicts,
                                         param="prompt")
            if before.blocking is not None and not self._withhold(data, event, before):
                found = [before.blocking[1]]
                raise ContentFilterError(blocked_prompt(found, earlier=True).body(), found,
                                         param="messages")
        self._check_tool_results(data, event)

    def _withhold(self, data: dict, event: GuardrailEventHooks,
                  before: history_check.Earlier) -> bool:
        """Under ``judge_history: withhold``, as the gateway: take the earlier
        user messages that block (and the turns that answered them) out of
        what the model will read. Only where this hook's request is the chat
        LiteLLM forwards: a pre_call chat request in OpenAI's shape. In
        during_call the model reads the request already, and a Responses or
        Anthropic-shaped body is translated after this hook; there the request
        is refused instead (False)."""
        if self.policy.role("prompt").judge_history != "withhold" \
                or event != GuardrailEventHooks.pre_call:
            return False
        raw = data.get("messages")
        if not isinstance(raw, list) or anthropic_api.is_messages_body(data) \
                or not all(isinstance(m, Mapping) or hasattr(m, "model_dump") for m in raw):
            return False  # indices into _messages(data) would not be indices into raw
        data["messages"] = history_check.withheld(raw, before.blocked)
        _ours(data)["history_withheld"] = before.blocked
        return True

    def _check_tool_results(self, data: dict, event: GuardrailEventHooks) -> None:
        """As the gateway: the tool results after the last user message, read
        for injected instructions under the policy's ``tool_output`` (off
        unless it is turned on). The rules run here in both modes: they need
        no model."""
        rule = self.policy.tool_output
        if rule.action is Action.ALLOW:
            return
        texts = tool_results.since_last_user([as_message(m) for m in _messages(data)])
        if not texts:
            return
        start = time.time()
        verdicts = [self.policy.monitored(v) for v in tool_results.verdicts(
            texts, rule, other_languages=self.policy.tool_output_other_languages)]
        self._record(data, "tool", verdicts, event, start)
        if any(v.blocked for v in verdicts):
            raise ContentFilterError(blocked_tool_output(verdicts).body(), verdicts,
                                     param="messages")

    # -- what pre_call left, for an SDK stream ------------------------------

    def _remember(self, asked: str | None, data: dict) -> None:
        """Keep what the prompt's hooks left in ``data``'s metadata (the same
        dict, so later additions show) under what the request asked."""
        if asked is None or not _left(data):
            return
        self._left_by_request.setdefault(asked, []).append(_ours(data))
        self._left_by_request.move_to_end(asked)
        while len(self._left_by_request) > _LEFT_KEPT:
            self._left_by_request.popitem(last=False)

    def _recall(self, request_data: dict) -> None:
        """Give a request without guardstack's metadata (an SDK caller that
        passed no ``metadata``: LiteLLM's hooks wrote into its own copy) what
        its prompt's hooks left, found by what it asked; the oldest such
        request's first, as identical requests' streams are read in turn."""
        if _left(request_data):
            return
        asked = _request_key(request_data)
        waiting = self._left_by_request.get(asked) if asked is not None else None
        if asked is None or not waiting:
            return
        left = waiting.pop(0)
        if not waiting:
            del self._left_by_request[asked]
        _ours(request_data).update(left)

    # -- masking -----------------------------------------------------------

    def _mask_prompt(self, data: dict, call_type: str) -> dict | None:
        """As the gateway: the policy's masking lists applied to what goes to
        the model (after the check, which judged what the user wrote): user
        messages and earlier answers, a completions prompt, a Responses
        ``input``, an embeddings ``input``. ``data`` is rewritten in place and
        returned, as LiteLLM takes a pre_call hook's changes; None when the
        policy masks no prompt."""
        if not self.policy.masks("prompt"):
            return None
        exchange = Exchange("litellm")
        if isinstance(data.get("messages"), list):
            data["messages"] = masking.messages(self.policy, data["messages"], exchange)
        elif "embedding" in call_type:
            data.update(masking.embedding_input(self.policy, data, exchange))
        elif isinstance(data.get("prompt"), str | list):
            data.update(masking.completion_prompts(self.policy, data, exchange))
        elif isinstance(data.get("input"), str):  # a Responses call
            data["input"] = masking.text(self.policy, "prompt", data["input"], exchange)
        elif isinstance(data.get("input"), list):
            data["input"] = masking.messages(self.policy, data["input"], exchange)
        if exchange.masked:
            _ours(data)["masked"] = exchange.masked  # counts only, never the values
        if exchange.restore:
            key = uuid.uuid4().hex
            _ours(data)["mask_id"] = key
            self._restores[key] = dict(exchange.restore)
            while len(self._restores) > _RESTORES_KEPT:
                self._restores.popitem(last=False)
        return data

    def _restored(self, data: Mapping[str, Any]) -> dict[str, str]:
        """The values this request's prompt masking numbered, for its answer
        (taken: an answer gives them back once)."""
        key = _left(data).get("mask_id")
        return self._restores.pop(key, {}) if isinstance(key, str) else {}

    def _mask_answer(self, data: dict, response: Any) -> None:
        """A whole chat or completions answer, masked in place by the
        policy's answer lists, with the values its placeholders stand for put
        back (content and reasoning; tool-call arguments as the model wrote
        them). Responses API and Anthropic answers are left as they are."""
        exchange = Exchange("litellm")
        exchange.restore = self._restored(data)
        if not masking.rewrites_answers(self.policy, exchange):
            return
        for choice in getattr(response, "choices", None) or ():
            message = getattr(choice, "message", None)
            holder, fields = (message, masking.ANSWER_FIELDS) \
                if message is not None else (choice, ("text",))
            for name in fields:
                value = getattr(holder, name, None)
                if isinstance(value, str) and value:
                    setattr(holder, name, masking.answer_text(self.policy, value, exchange))
        if exchange.masked.get("response"):
            masked = _ours(data).setdefault("masked", {})
            masked["response"] = exchange.masked["response"]

    # -- recording ---------------------------------------------------------

    def _record(self, data: dict, role: str, verdicts: Sequence[Verdict],
                event: GuardrailEventHooks, start: float, **extra: Any) -> None:
        """Attach the verdicts to the request's metadata, log what was not a
        plain allow, and hand LiteLLM its standard guardrail record (which
        its logging integrations ship to Langfuse, Datadog, OTEL, ...)."""
        _, metadata = get_or_create_metadata_bucket(data)
        ours = metadata.setdefault("guardstack", {})
        ours.setdefault(role, []).extend(v.to_dict() for v in verdicts)
        ours.update(extra)
        for v in verdicts:
            if v.status is not Status.OK:  # the reason names the fail mode that decided
                log.warning("guardstack could not check the %s (%s): %s", role, self.backend,
                            v.reason)
            elif v.decision is Action.FLAG:
                log.warning("guardstack flagged the %s (%s): %s", role,
                            ", ".join(v.categories) or "no category", v.reason)
            elif v.blocked:
                log.info("guardstack blocked the %s (%s): %s", role,
                         ", ".join(v.categories) or "no category", v.reason)
        end = time.time()
        worst = max(verdicts, key=lambda v: v.decision.severity, default=None)
        self.add_standard_logging_guardrail_information_to_request_data(
            guardrail_json_response={"role": role, "verdicts": [v.to_dict() for v in verdicts],
                                     **extra},
            request_data=data,
            guardrail_status=_logged_status(verdicts),
            start_time=start, end_time=end, duration=end - start,
            guardrail_provider="guardstack",
            event_type=event,
            tracing_detail=GuardrailTracingDetail(
                violation_categories=sorted({c for v in verdicts if v.flagged
                                             for c in v.categories}),
                guardrail_action=worst.decision.value if worst else Action.ALLOW.value,
                detection_method=worst.detector if worst else None,
            ),
        )

    def _record_stream(self, data: dict, check: StreamCheck, start: float) -> None:
        verdicts = [j.verdict for j in check.judgements][-_STREAM_VERDICTS_KEPT:]
        self._record(data, "response", verdicts, GuardrailEventHooks.post_call, start,
                     halted=check.halted,
                     unsafe_tokens_released=check.exchange.unsafe_tokens_released)


# -- settings ----------------------------------------------------------------


def _backend(mode: str | None, api_base: str | None) -> Backend:
    if mode is None:
        return "remote" if api_base else "in_process"
    if mode not in ("remote", "in_process"):
        raise ValueError(f"guardstack: guardstack_mode must be 'remote' or 'in_process', "
                         f"got {mode!r}")
    if mode == "remote" and not api_base:
        raise ValueError("guardstack: remote mode needs api_base, the URL of a guardstack "
                         "gateway (e.g. http://127.0.0.1:8000)")
    return cast(Backend, mode)


def _fail_mode(on_error: str | None) -> FailMode | None:
    if on_error is None or on_error in ("open", "closed"):
        return cast("FailMode | None", on_error)
    raise ValueError(f"guardstack: on_error must be 'open' or 'closed', got {on_error!r}")


def _seconds(timeout: Any) -> float | None:
    if timeout is None:
        return None
    # LiteLLM allows an httpx.Timeout here; its read timeout is the wait for an answer.
    seconds = timeout.read if isinstance(timeout, httpx.Timeout) else timeout
    if not isinstance(seconds, int | float) or seconds <= 0:
        raise ValueError(f"guardstack: timeout must be a number of seconds > 0, got {timeout!r}")
    return float(seconds)


def _adjusted(policy: Policy, on_error: FailMode | None, timeout_s: float | None) -> Policy:
    roles = {name: replace(rp, on_error=on_error or rp.on_error,
                           timeout_ms=timeout_s * 1000 if timeout_s else rp.timeout_ms)
             for name, rp in policy.roles.items()}
    return replace(policy, roles=roles)


def _api_key(api_key: str | None) -> str | None:
    """``os.environ/NAME`` as LiteLLM writes secrets (the proxy resolves it
    before we see it; the SDK does not), else ``$GUARDSTACK_API_KEY``."""
    if api_key is None:
        return os.environ.get("GUARDSTACK_API_KEY") or None
    try:
        return resolve_secret(api_key)
    except SecretError as exc:
        if exc.name is None:
            raise ValueError(f"guardstack: {exc}") from None
        raise ValueError(f"guardstack: api_key refers to ${exc.name}, which is not set") from None


# -- what to judge -----------------------------------------------------------


def _messages(data: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    raw = data.get("messages")
    if not isinstance(raw, list):
        # A Responses API call: its input and instructions are the conversation.
        return list(responses_api.messages_of(data)) if "input" in data else []
    if anthropic_api.is_messages_body(data):
        # The proxy's /v1/messages: tool results become tool messages (checked
        # for planted orders), the system prompt context, as in the gateway.
        return list(anthropic_api.messages_of(data))
    out: list[Mapping[str, Any]] = []
    for m in raw:
        if isinstance(m, Mapping):
            out.append(m)
        elif hasattr(m, "model_dump"):  # a pydantic message object
            out.append(m.model_dump())
    return out


def _prompt_subjects(data: Mapping[str, Any]) -> list[Subject]:
    """As the gateway: the last user message with the messages before it,
    or each text-completion prompt."""
    messages = _messages(data)
    if messages:
        last_user = max((i for i, m in enumerate(messages) if m.get("role") == "user"),
                        default=None)
        return [] if last_user is None else [subject_from_messages(messages[:last_user + 1])]
    prompt = data.get("prompt")
    suffix = data.get("suffix")
    prompts = [prompt] if isinstance(prompt, str) else \
        [p for p in prompt if isinstance(p, str)] if isinstance(prompt, list) else []
    return [Subject(t, "prompt") for t in
            validation.with_suffix(prompts, suffix if isinstance(suffix, str) else None)]


def _end_user(data: Mapping[str, Any] | None, key: Any = None) -> str | None:
    """The end user behind a request: the one LiteLLM's proxy identified (its
    ``end_user_id``: the request's ``user``, or a customer-id header), else
    the request's own ``user`` or ``safety_identifier``."""
    found = getattr(key, "end_user_id", None)
    for bucket in ("metadata", "litellm_metadata"):
        meta = data.get(bucket) if data else None
        if not found and isinstance(meta, dict):
            found = meta.get("user_api_key_end_user_id")
    for name in ("user", "safety_identifier"):
        if not found and data:
            found = data.get(name)
    return found if isinstance(found, str) and found.strip() else None


def _ours(data: dict) -> dict[str, Any]:
    """guardstack's part of the request's metadata (created when missing)."""
    _, metadata = get_or_create_metadata_bucket(data)
    ours: dict[str, Any] = metadata.setdefault("guardstack", {})
    return ours


def _request_key(data: Mapping[str, Any]) -> str | None:
    """What a request asked (its messages, prompt or input, and its end
    user), as a digest: the same for LiteLLM's copy of an SDK call's keyword
    arguments and for the caller's own. None when it asked nothing."""
    asked = {k: data[k] for k in ("messages", "prompt", "input") if data.get(k) is not None}
    if not asked:
        return None
    asked["user"] = _end_user(data)
    blob = json.dumps(asked, sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8", "surrogatepass")).hexdigest()


def _left(data: Mapping[str, Any]) -> Mapping[str, Any]:
    """What the earlier hooks left in the request's metadata (empty if none)."""
    for bucket in ("metadata", "litellm_metadata"):
        meta = data.get(bucket)
        if isinstance(meta, dict) and isinstance(meta.get("guardstack"), dict):
            return cast("Mapping[str, Any]", meta["guardstack"])
    return {}


def _maskable(chunk: Any) -> bool:
    """Whether a stream's chunks are LiteLLM's chat or completion chunks,
    which the stream's masking writes back into (not Responses events or an
    Anthropic stream's raw frames)."""
    return not anthropic_sse.is_frames(chunk) and _event_type(chunk) is None


def _written_back(out: dict[str, Any]) -> Any:
    """The LiteLLM chunk behind a released (and masked) event, with the
    event's masked text copied into it."""
    original = out[_ORIGINAL]
    for mine, theirs in zip(out.get("choices") or (), getattr(original, "choices", None) or (),
                            strict=False):
        delta = getattr(theirs, "delta", None)
        if delta is not None:
            for name, value in (mine.get("delta") or {}).items():
                if name in masking.ANSWER_FIELDS and isinstance(value, str):
                    setattr(delta, name, value)
        elif isinstance(mine.get("text"), str):
            theirs.text = mine["text"]
    return original


def _checked(data: Mapping[str, Any]) -> Exchange:
    """What this request's pre_call check found (the verdicts ``_record``
    left in its metadata) as the gateway's exchange holds it: whether the
    prompt was clean (``Exchange.prompt_clean``) and where the tool results'
    planted words point, less what the user messages name."""
    ours = _left(data)

    def verdicts(role: str) -> list[Verdict]:
        return [Verdict.from_dict(v) for v in ours.get(role) or () if isinstance(v, dict)]

    exchange = Exchange("litellm", prompt_verdicts=verdicts("prompt"),
                        tool_verdicts=verdicts("tool"))
    if exchange.tool_verdicts:
        users = [str(m.get("content") or "") for m in _messages(data) if m.get("role") == "user"]
        exchange.planted = tool_results.planted_targets(exchange.tool_verdicts, users)
    return exchange


def _conversation(data: Mapping[str, Any]) -> tuple[Message, ...]:
    """The context a response is judged in: the whole conversation sent."""
    messages = _messages(data)
    if messages:
        return subject_from_messages([*messages, {"role": "assistant", "content": ""}]).context
    prompt = data.get("prompt")
    return (Message("user", prompt),) if isinstance(prompt, str) else ()


def _get(obj: Any, name: str) -> Any:
    """A field of a LiteLLM object or of the dict it sometimes is."""
    return obj.get(name) if isinstance(obj, Mapping) else getattr(obj, name, None)


def _response_texts(response: Any) -> list[str]:
    anthropic = anthropic_api.message_text(response)
    if anthropic is not None:  # an Anthropic Message (the proxy's /v1/messages)
        return [anthropic] if anthropic else []
    output = _get(response, "output")
    if _get(response, "choices") is None and isinstance(output, list):
        answer = _output_text(output)  # a Responses API answer: one answer, all its items
        return [answer] if answer else []
    texts = []
    for choice in getattr(response, "choices", None) or ():
        message = getattr(choice, "message", None)
        text: Any = (output_text.message_text(_channel_fields(message))  # every channel
                     if message is not None else getattr(choice, "text", None))
        if isinstance(text, str) and text:
            texts.append(text)
    return texts


def _refusal_message(message: Mapping[str, Any], verdicts: Sequence[Verdict]) -> dict[str, Any]:
    """An Anthropic Message whose answer was blocked, as the refusal that
    replaces it: no content, ``stop_reason: "refusal"``, ``stop_details``."""
    return {**message, "content": [], "stop_reason": "refusal", "stop_sequence": None,
            "stop_details": anthropic_api.stop_details(verdicts)}


def _output_text(items: list[Any]) -> str:
    """A Responses answer's output items as the text the output check reads:
    reasoning, message text and function-call arguments, a blank line between."""
    parts: list[str] = []
    for item in items:
        kind = _get(item, "type")
        if kind == "function_call":
            parts.append(_get(item, "arguments") or "")
            continue
        pieces = [*(_get(item, "content") or ()),
                  *((_get(item, "summary") or ()) if kind == "reasoning" else ())]
        parts.extend(t for t in (_get(p, "text") or _get(p, "refusal") for p in pieces)
                     if isinstance(t, str))
    return "\n\n".join(p for p in parts if p)


def _channel_fields(message: Any) -> dict[str, Any]:
    """A LiteLLM ``Message`` or ``Delta`` as the OpenAI dict that
    :mod:`guardstack.gateway.output_text` reads: content, reasoning, tool
    call arguments."""
    out: dict[str, Any] = {}
    for name in ("content", *output_text.REASONING_FIELDS):
        value = getattr(message, name, None)
        if isinstance(value, str):
            out[name] = value
    calls = getattr(message, "tool_calls", None)
    if isinstance(calls, list):
        out["tool_calls"] = [
            {"function": {"arguments": getattr(getattr(c, "function", None), "arguments", None)}}
            for c in calls]
    legacy = getattr(message, "function_call", None)
    if legacy is not None:
        out["function_call"] = {"arguments": getattr(legacy, "arguments", None)}
    return out


# -- stream chunks -----------------------------------------------------------


def _kind(chunk: Any) -> Kind:
    if _event_type(chunk) is not None or anthropic_sse.is_frames(chunk):
        return "chat"
    return "chat" if hasattr(chunk.choices[0], "delta") else "completion"


#: Responses stream events whose ``delta`` is answer text, by the chat
#: delta field StreamCheck reads it as.
_RESPONSES_DELTAS = {"response.output_text.delta": "content",
                     "response.refusal.delta": "content",
                     "response.reasoning_text.delta": "reasoning_content",
                     "response.reasoning_summary_text.delta": "reasoning_content"}
_RESPONSES_ENDS = ("response.completed", "response.incomplete", "response.failed")


def _event_type(chunk: Any) -> str | None:
    """A Responses stream event's type (``response.output_text.delta``, ...);
    None for a chat or text-completion chunk."""
    kind = _get(chunk, "type")
    kind = getattr(kind, "value", kind)
    return kind if isinstance(kind, str) and kind.startswith("response.") else None


def _responses_event(chunk: Any, kind: str) -> dict[str, Any]:
    """A Responses stream event as the chat-shaped dict StreamCheck reads:
    text deltas as a choice's delta, the terminal event as its finish."""
    delta = _get(chunk, "delta")
    choices: list[dict[str, Any]] = []
    if kind in _RESPONSES_DELTAS and isinstance(delta, str) and delta:
        choices.append({"index": 0, "delta": {_RESPONSES_DELTAS[kind]: delta},
                        "finish_reason": None})
    elif kind == "response.function_call_arguments.delta" and isinstance(delta, str) and delta:
        choices.append({"index": 0, "delta": {"tool_calls": [{"function": {"arguments": delta}}]},
                        "finish_reason": None})
    elif kind in _RESPONSES_ENDS:
        choices.append({"index": 0, "delta": {}, "finish_reason": "stop"})
    return {"choices": choices, _ORIGINAL: chunk}


def _responses_halt(created: Any) -> Any:
    """The event that ends a halted Responses stream: ``response.incomplete``
    with reason ``content_filter``, for the response the stream created."""
    from litellm.types.llms.openai import ResponseIncompleteEvent, ResponsesAPIStreamEvents

    response = created.response.model_copy(update={
        "status": "incomplete", "incomplete_details": {"reason": "content_filter"}})
    return ResponseIncompleteEvent(type=ResponsesAPIStreamEvents.RESPONSE_INCOMPLETE,
                                   response=response)


def _chunk_event(chunk: Any) -> dict[str, Any] | None:
    """A LiteLLM chunk as the OpenAI dict StreamCheck reads, carrying the
    chunk itself so what StreamCheck releases is what LiteLLM streamed."""
    if anthropic_sse.is_frames(chunk):  # one whole frame of a /v1/messages stream
        return {**anthropic_sse.chat_event(anthropic_sse.parse(chunk)), _ORIGINAL: chunk}
    kind = _event_type(chunk)
    if kind is not None:
        return _responses_event(chunk, kind)
    choices = getattr(chunk, "choices", None)
    if not isinstance(choices, list):
        return None
    out = []
    for c in choices:
        delta = getattr(c, "delta", None)
        text = getattr(c, "text", None)
        out.append({"index": getattr(c, "index", 0) or 0,
                    "delta": _channel_fields(delta) if delta is not None else {},
                    "text": text if isinstance(text, str) else None,
                    "finish_reason": getattr(c, "finish_reason", None)})
    event: dict[str, Any] = {"choices": out, _ORIGINAL: chunk}
    for key in ("id", "created", "model"):
        value = getattr(chunk, key, None)
        if value is not None:
            event[key] = value
    return event


def _halt_chunk(check: StreamCheck) -> Any:
    """StreamCheck's closing chunk (``finish_reason: content_filter``) as the
    LiteLLM type the stream was made of."""
    halt = check.halt_chunk()
    if check.kind == "completion":
        return TextCompletionResponse(**halt)
    return ModelResponseStream(**halt)


# -- errors and log records --------------------------------------------------


def _logged_status(verdicts: Sequence[Verdict]) -> Literal[
        "success", "guardrail_flagged", "guardrail_intervened", "guardrail_failed_to_respond"]:
    if any(v.status is not Status.OK for v in verdicts):
        return "guardrail_failed_to_respond"
    if any(v.blocked for v in verdicts):
        return "guardrail_intervened"
    if any(v.flagged for v in verdicts):
        return "guardrail_flagged"
    return "success"


__all__ = ["ContentFilterError", "GuardstackGuardrail"]
