"""Several model servers behind one gateway: which upstream serves a model.

vLLM serves one model per process, llama.cpp one per server; a platform with
three models runs three servers. ``guardstack serve --routes FILE`` reads
which model names go where, in the shape LiteLLM's ``model_list`` taught
platform teams::

    routes:
      - model: llama-3.1-8b-instruct        # the name clients send (fnmatch pattern)
        upstream: http://127.0.0.1:8001/v1
      - model: "qwen2.5-*"
        upstream: http://127.0.0.1:8002/v1
        api_key: os.environ/QWEN_API_KEY    # optional; a secret reference

The first route whose pattern matches a request's ``model`` decides; a name
no route matches goes to ``--upstream`` when one is given, else it is a 404
``model_not_found``. Routes to the same server share its connections.
``GET /v1/models`` lists, from each server, the models routed to it.

:class:`Router` offers :class:`~guardstack.gateway.upstream.Upstream`'s
interface, so a request body's ``model`` picks its server where the gateway
sends it; a gateway without ``--routes`` has a router of one upstream.
"""

from __future__ import annotations

import asyncio
import fnmatch
import json
import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from guardstack.gateway.errors import GatewayError
from guardstack.gateway.upstream import Upstream
from guardstack.secrets import SecretError, resolve_secret
from guardstack.urls import normalize_base_url

log = logging.getLogger("guardstack.gateway")


class RoutesError(ValueError):
    """A routes file that cannot be used; ``str()`` names the file and line."""


@dataclass(frozen=True, slots=True)
class RouteSpec:
    pattern: str
    upstream: str
    api_key: str | None = None


def load(path: str | Path) -> list[RouteSpec]:
    """The routes of a YAML file, in order; secrets resolved."""
    p = Path(path)
    try:
        text = p.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RoutesError(f"{p}: cannot read routes file: {exc}") from None
    return parse(text, source=str(p))


def parse(text: str, *, source: str = "<routes>") -> list[RouteSpec]:
    def fail(node: yaml.Node | None, message: str) -> RoutesError:
        line = f":{node.start_mark.line + 1}" if node is not None else ""
        return RoutesError(f"{source}{line}: {message}")

    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise RoutesError(f"{source}{line}: invalid YAML: "
                          f"{getattr(exc, 'problem', None) or exc}") from None
    if not isinstance(root, yaml.MappingNode):
        raise fail(root, "must be a mapping with a 'routes' list")
    top = {str(k.value): (k, v) for k, v in root.value}
    unknown = sorted(set(top) - {"routes"})
    if unknown:
        raise fail(top[unknown[0]][0], f"{unknown[0]}: unknown setting; expected: routes")
    if "routes" not in top or not isinstance(top["routes"][1], yaml.SequenceNode) \
            or not top["routes"][1].value:
        raise fail(top["routes"][1] if "routes" in top else root,
                   "routes: must be a non-empty list of {model, upstream, api_key}")
    out = []
    for i, item in enumerate(top["routes"][1].value):
        where = f"routes[{i}]"
        if not isinstance(item, yaml.MappingNode):
            raise fail(item, f"{where}: must be a mapping with model and upstream")
        fields: dict[str, tuple[yaml.Node, Any]] = {}
        for key, value in item.value:
            name = str(key.value)
            if name not in ("model", "upstream", "api_key"):
                raise fail(key, f"{where}.{name}: unknown setting; expected one of: model, "
                                "upstream, api_key")
            if not isinstance(value, yaml.ScalarNode):
                raise fail(value, f"{where}.{name}: must be text")
            fields[name] = (value, yaml.safe_load(yaml.serialize(value)))
        for name in ("model", "upstream"):
            if name not in fields or not isinstance(fields[name][1], str) \
                    or not fields[name][1].strip():
                raise fail(fields[name][0] if name in fields else item,
                           f"{where}.{name}: required, as text")
        node, url = fields["upstream"]
        try:
            url = normalize_base_url(url)
        except ValueError:
            raise fail(node, f"{where}.upstream: must be an http(s) URL, got {url!r}") from None
        api_key = None
        if "api_key" in fields:
            node, ref = fields["api_key"]
            try:
                api_key = resolve_secret(str(ref), f"{where}.api_key")
            except SecretError as exc:
                raise fail(node, str(exc)) from None
        out.append(RouteSpec(fields["model"][1].strip(), url, api_key))
    return out


class Router:
    """The upstreams of a gateway and the model names each serves."""

    def __init__(self, default: Upstream | None, routes: Sequence[tuple[str, Upstream]] = ()
                 ) -> None:
        if default is None and not routes:
            raise ValueError("a router needs a default upstream or routes")
        self.default = default
        self.routes = list(routes)
        self.upstreams: list[Upstream] = []
        for up in [*(u for _, u in self.routes), *([default] if default else [])]:
            if not any(up is u for u in self.upstreams):
                self.upstreams.append(up)

    @classmethod
    def build(cls, default_url: str | None, specs: Sequence[RouteSpec], *,
              api_key: str | None = None, timeout: float = 120.0, connect_timeout: float = 5.0,
              transport: httpx.AsyncBaseTransport | None = None) -> Router:
        made: dict[tuple[str, str | None], Upstream] = {}

        def upstream(url: str, key: str | None) -> Upstream:
            if (url, key) not in made:
                made[(url, key)] = Upstream(url, api_key=key, timeout=timeout,
                                            connect_timeout=connect_timeout, transport=transport)
            return made[(url, key)]

        default = upstream(default_url, api_key) if default_url else None
        return cls(default, [(s.pattern, upstream(s.upstream, s.api_key)) for s in specs])

    @property
    def routed(self) -> bool:
        return bool(self.routes)

    def for_model(self, model: Any) -> Upstream:
        """The upstream that serves ``model``; 404 ``model_not_found`` when
        no route matches and there is no default."""
        if isinstance(model, str):
            for pattern, upstream in self.routes:
                if fnmatch.fnmatchcase(model, pattern):
                    return upstream
        if self.default is not None:
            return self.default
        named = f"'{model}'" if isinstance(model, str) else "(none given)"
        raise GatewayError(404, f"The model {named} is not served here: no route names it "
                                f"(routes: {', '.join(p for p, _ in self.routes)}).",
                           code="model_not_found", param="model")

    # -- Upstream's interface ------------------------------------------------

    async def open(self, method: str, path: str, body: dict[str, Any] | None = None
                   ) -> tuple[httpx.Response, float]:
        """As :meth:`Upstream.open`, on the upstream of the body's ``model``."""
        model = body.get("model") if isinstance(body, dict) else None
        return await self.for_model(model).open(method, path, body)

    async def read(self, response: httpx.Response) -> bytes:
        return await self.upstreams[0].read(response)

    def chunks(self, response: httpx.Response) -> AsyncIterator[bytes]:
        return self.upstreams[0].chunks(response)

    async def reachability(self) -> dict[str, bool]:
        """Each upstream's base URL and whether its model list answers 2xx."""
        found = await asyncio.gather(*(u.reachable() for u in self.upstreams))
        return {u.base_url: ok for u, ok in zip(self.upstreams, found, strict=True)}

    async def aclose(self) -> None:
        for u in self.upstreams:
            await u.aclose()

    # -- the model list --------------------------------------------------------

    async def model_list(self) -> tuple[list[Any], float]:
        """OpenAI list entries of every upstream, each model listed by the
        upstream that serves it (an entry routed elsewhere is left out), and
        the slowest answer's seconds. An upstream that does not answer is
        left out of the list and logged; none answering is the first error."""
        results = await asyncio.gather(*(self._listed(u) for u in self.upstreams),
                                       return_exceptions=True)
        entries: list[Any] = []
        seen: set[str] = set()
        slowest = 0.0
        errors = []
        for up, result in zip(self.upstreams, results, strict=True):
            if isinstance(result, BaseException):
                log.warning("upstream %s did not list its models: %s", up.base_url, result)
                errors.append(result)
                continue
            listed, seconds = result
            slowest = max(slowest, seconds)
            for entry in listed:
                name = entry.get("id") if isinstance(entry, dict) else None
                if not isinstance(name, str) or name in seen:
                    continue
                try:
                    serves = self.for_model(name) is up
                except GatewayError:
                    serves = False
                if serves:
                    seen.add(name)
                    entries.append(entry)
        if errors and len(errors) == len(self.upstreams):
            first = errors[0]
            raise first if isinstance(first, GatewayError) else GatewayError(
                502, f"No upstream model server listed its models ({first}).",
                code="upstream_error")
        return entries, slowest

    async def _listed(self, up: Upstream) -> tuple[list[Any], float]:
        response, seconds = await up.open("GET", "models")
        raw = await up.read(response)
        if response.status_code != 200:
            raise GatewayError(502, f"{up.base_url}/models answered HTTP "
                                    f"{response.status_code}.", code="upstream_error")
        return list_entries(raw, f"{up.base_url}/models"), seconds


def list_entries(raw: bytes, where: str = "The upstream model server's model list") -> list[Any]:
    """The ``data`` of an OpenAI model list; 502 naming ``where`` when it is not one."""
    try:
        listed = json.loads(raw).get("data")
    except (ValueError, AttributeError):
        listed = None
    if not isinstance(listed, list):
        raise GatewayError(502, f"{where} is not an OpenAI list.", code="upstream_error")
    return listed
