"""``guardstack serve``: run the gateway in front of a model server."""

from __future__ import annotations

import argparse
import contextlib
import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from guardstack.gateway.settings import SETTINGS, GatewaySettings

if TYPE_CHECKING:
    from guardstack.policy import Policy

_TYPES = {bool: None, int: int, float: float}


def add_commands(sub: Any) -> None:
    p = sub.add_parser(
        "serve", help="Run the guard gateway in front of an OpenAI-compatible model server.",
        description="Run the OpenAI-compatible guard gateway: prompts are checked before they "
        "reach the upstream model server, completions while they stream back, and every "
        "exchange is recorded in the event store.")
    for s in SETTINGS:
        flag = "--" + s.name.replace("_", "-")
        if isinstance(s.default, bool):
            p.add_argument(flag, action="store_true", default=s.default, help=s.help)
            continue
        kind = _TYPES.get(type(s.default), str) or str
        default_note = "" if s.default in (None, "") else f" (default: {s.default})"
        p.add_argument(flag, type=kind, default=s.default, metavar=s.name.upper(),
                       help=s.help + default_note)
    p.add_argument("--log-level", default="info",
                   choices=("critical", "error", "warning", "info", "debug"),
                   help="uvicorn log level (default: info)")
    p.add_argument("--log-format", default="text", choices=("text", "json"),
                   help="text (uvicorn's lines), or json: one JSON object per line for a log "
                        "pipeline, with one record per exchange (request id, decision, "
                        "timings; never the text) instead of the access line (default: text)")
    p.set_defaults(func=cmd_serve)


def resolve_secret(value: str | None) -> str | None:
    """``os.environ/NAME``, ``$env:NAME`` or a literal, read at start-up."""
    from guardstack.cli import CommandError
    from guardstack.secrets import SecretError
    from guardstack.secrets import resolve_secret as resolve

    try:
        return resolve(value, "--upstream-api-key")
    except SecretError as exc:
        raise CommandError(str(exc)) from None


def settings_from_args(args: argparse.Namespace) -> GatewaySettings:
    from guardstack.cli import CommandError

    values = {name: getattr(args, name) for name in GatewaySettings.names() if hasattr(args, name)}
    if values.get("upstream") is None and values.get("routes") is None:
        raise CommandError("give the model server: --upstream URL, or --routes FILE for several")
    values["upstream_api_key"] = resolve_secret(values.get("upstream_api_key"))
    try:
        settings = GatewaySettings(**values)
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    if settings.routes is not None:
        from guardstack.gateway.routing import RoutesError, load

        try:
            load(settings.routes)  # read again by the gateway; checked here, before serving
        except RoutesError as exc:
            raise CommandError(str(exc)) from None
    return settings


def _say_what_serves(settings: GatewaySettings, policy: Policy, tenants: int) -> None:
    """One start-up line: which model server, policy and store this gateway
    uses, so an operator reading the log need not reconstruct its flags."""
    from sqlalchemy.engine import make_url

    from guardstack import __version__
    from guardstack.store.engine import default_url, normalize_url

    upstream = settings.upstream or f"the routes in {settings.routes}"
    try:
        store = make_url(normalize_url(settings.db or default_url())).render_as_string(
            hide_password=True)
    except Exception:  # the store reports a bad URL itself, when it is opened
        store = "(unreadable URL)"
    logging.getLogger("guardstack.gateway").info(
        "guardstack %s in front of %s; policy %s%s%s; store %s%s", __version__, upstream,
        policy.source, " in monitor mode" if policy.mode == "monitor" else "",
        f" and {tenants} tenant policies" if tenants else "", store,
        "; no API key asked (--open)" if settings.open else "")


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from guardstack import detectors
    from guardstack.cli import CommandError
    from guardstack.gateway import tenant_policies
    from guardstack.gateway.app import create_app
    from guardstack.gateway.store_adapter import open_store
    from guardstack.guard import Guard
    from guardstack.policy import PolicyError
    from guardstack.store.errors import StoreError

    settings = settings_from_args(args)
    try:
        policy, tenants = tenant_policies.read(settings.policy, settings.tenant_policies)
    except PolicyError as exc:
        raise CommandError(str(exc)) from None
    options = {"threads": settings.classifier_threads} \
        if policy.detector == "fast" and settings.classifier_threads else {}
    try:
        # Loaded here, before serving: a gateway without its classifier should
        # not start quietly failing open.
        detector = detectors.load(policy.detector, **options)
    except Exception as exc:
        raise CommandError(f"cannot load detector {policy.detector!r}: "
                           f"{type(exc).__name__}: {exc}") from None
    tracing = None
    if settings.otlp_traces_endpoint:
        from guardstack.gateway.tracing import Tracing, TracingUnavailable

        try:
            tracing = Tracing(settings.otlp_traces_endpoint,
                              protocol=settings.otlp_traces_protocol)
        except TracingUnavailable as exc:
            raise CommandError(str(exc)) from None
    try:
        recorder, keys, states = open_store(settings.db, redact=settings.redact,
                                            ttl=settings.state_ttl, spool=settings.spool)
        spool = recorder.writer.spool  # taken for real when serving starts; tried here
        spool.lock()
        spool.unlock()
    except (StoreError, OSError) as exc:  # a bad --db or --spool, said in one line
        raise CommandError(f"cannot open the event store: {exc}") from None
    store = recorder.writer.store
    buckets = None
    if settings.shared_rate_limits:
        from guardstack.store.rate_buckets import RateBuckets

        buckets = RateBuckets(store)
    answers = None
    if settings.shared_responses:
        from guardstack.store.stored_responses import SharedResponses

        answers = SharedResponses(store, settings.stored_responses_ttl)
    app = create_app(settings, guard=Guard(policy, detector=detector), recorder=recorder,
                     keys=keys, states=states, dashboard=_dashboard(store),
                     probe_upstream=True, tenant_policies=tenants, reload_on_sighup=True,
                     rate_buckets=buckets, shared_responses=answers, tracing=tracing)
    from guardstack.gateway.logs import uvicorn_config

    config = uvicorn.Config(app, host=settings.host, port=settings.port,
                            log_level=args.log_level, timeout_graceful_shutdown=30,
                            timeout_keep_alive=max(1, round(settings.keep_alive)),
                            log_config=uvicorn_config(args.log_format, args.log_level),
                            # json: guardstack.access writes one record per exchange instead
                            access_log=args.log_format == "text")
    _say_what_serves(settings, policy, len(tenants))  # logging is configured from here on
    server = _server_class()(config)
    server.run()
    return 0 if server.started else 1


def _dashboard(store: Any) -> Any:
    """The review dashboard over the gateway's store, for ``/ui``; None when
    its extra (jinja2) is not installed."""
    try:
        from guardstack.dashboard.app import create_dashboard
    except ModuleNotFoundError as exc:
        logging.getLogger("guardstack.gateway").warning(
            "review dashboard not mounted at /ui (%s); install guardstack[dashboard]", exc)
        return None
    return create_dashboard(store)


def _server_class() -> type:
    import uvicorn

    class Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            with super().capture_signals():
                yield
                # uvicorn re-raises SIGTERM/SIGINT after a graceful shutdown, so the
                # process would die by signal; a drained, flushed stop is a clean exit.
                self._captured_signals.clear()

    return Server
