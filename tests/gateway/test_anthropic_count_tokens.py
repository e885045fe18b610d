"""``POST /v1/messages/count_tokens``: a Messages request's input tokens,
counted by the upstream's own tokenizer, through Anthropic's official client.

The real SmolLM2 server (llama-cpp-python) counts with its
``/extras/tokenize/count``. vLLM's ``/tokenize`` and llama.cpp's
``/apply-template`` + ``/tokenize`` cannot run here: small stand-in servers
answer as they document, including llama.cpp's ``{"tokens": []}`` for a
tokenize request without ``content``, which must not read as a count. A
server with no tokenizer (Ollama's OpenAI endpoints) gets a 501 that says so.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import anthropic
import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from tests.fixtures.llama_server import MODEL_ALIAS, free_port
from tests.gateway.serving import serve_app
from tests.gateway.standins import MarkerDetector, marker_guard, policy_yaml

from guardstack.guard import Guard

QUESTION = [{"role": "user", "content": "What do mitochondria do in a cell?"}]
TOOL = {"name": "lookup", "description": "Look a word up.",
        "input_schema": {"type": "object", "properties": {"word": {"type": "string"}}}}


def upstream_count(llama_server: str, text: str) -> int:
    root = llama_server.removesuffix("/v1")
    r = httpx.post(f"{root}/extras/tokenize/count", json={"input": text}, timeout=30)
    r.raise_for_status()
    return r.json()["count"]


def test_the_model_servers_tokenizer_counts_the_request(llama_server, run_gateway,
                                                        anthropic_client):
    gw = run_gateway(llama_server, guard=marker_guard("MARKER"))
    c = anthropic_client(gw.url)
    counted = c.messages.count_tokens(model=MODEL_ALIAS, messages=QUESTION).input_tokens
    alone = upstream_count(llama_server, QUESTION[0]["content"])
    assert alone < counted <= alone + 8  # the words, and the role around them
    longer = c.messages.count_tokens(model=MODEL_ALIAS, system="Answer in one sentence.",
                                     messages=QUESTION, tools=[TOOL]).input_tokens
    assert longer >= counted + upstream_count(llama_server, "Answer in one sentence.") + \
        upstream_count(llama_server, "Look a word up.")
    [ex, _] = gw.wait_for_exchanges(2)
    assert ex.endpoint == "messages.count_tokens" and ex.status_code == 200
    assert ex.prompt_text is None  # counted, not recorded


def test_the_safety_system_prompt_the_model_will_see_is_counted(llama_server, run_gateway,
                                                                anthropic_client):
    plain = run_gateway(llama_server, guard=marker_guard("MARKER"))
    prompted = run_gateway(llama_server, guard=Guard(
        policy_yaml(system_prompt_models=["*smollm*"]), detector=MarkerDetector("MARKER")))
    without = anthropic_client(plain.url).messages.count_tokens(
        model=MODEL_ALIAS, messages=QUESTION).input_tokens
    with_prompt = anthropic_client(prompted.url).messages.count_tokens(
        model=MODEL_ALIAS, messages=QUESTION).input_tokens
    assert with_prompt >= without + upstream_count(llama_server,
                                                   "Be safe and kind. GUARDSTACK-SAFETY-PROMPT.")


class StandIn:
    """A tokenizer endpoint of another server family, counting words."""

    def __init__(self, family: str) -> None:
        self.family = family
        self.asked: list[tuple[str, dict]] = []
        routes = {"vllm": [Route("/tokenize", self.vllm_tokenize, methods=["POST"])],
                  "llama.cpp": [Route("/apply-template", self.apply_template, methods=["POST"]),
                                Route("/tokenize", self.llama_tokenize, methods=["POST"])],
                  "llama.cpp without --jinja": [
                      Route("/apply-template", self.apply_template_no_tools, methods=["POST"]),
                      Route("/tokenize", self.llama_tokenize, methods=["POST"])],
                  "none": [Route("/{path:path}", self.not_found, methods=["POST"])]}[family]
        self.app = Starlette(routes=routes)

    async def vllm_tokenize(self, request: Request) -> JSONResponse:
        body = await request.json()
        self.asked.append(("/tokenize", body))
        words = sum(len(str(m["content"]).split()) for m in body["messages"])
        words += len(body.get("tools") or ())
        return JSONResponse({"count": words, "tokens": list(range(words)),
                             "max_model_len": 4096})

    async def not_found(self, request: Request) -> JSONResponse:
        self.asked.append((request.url.path, {}))
        return JSONResponse({"detail": "Not Found"}, status_code=404)

    async def apply_template(self, request: Request) -> JSONResponse:
        body = await request.json()
        self.asked.append(("/apply-template", body))
        return JSONResponse({"prompt": " ".join(f"<{m['role']}> {m['content']}"
                                                for m in body["messages"])})

    async def apply_template_no_tools(self, request: Request) -> JSONResponse:
        body = await request.json()
        if body.get("tools"):
            self.asked.append(("/apply-template", body))
            return JSONResponse({"error": {"code": 500, "type": "server_error", "message":
                                           "tools param requires --jinja flag"}},
                                status_code=500)
        return await self.apply_template(request)

    async def llama_tokenize(self, request: Request) -> JSONResponse:
        body = await request.json()
        self.asked.append(("/tokenize", body))
        # llama-server answers a body without "content" with no tokens
        return JSONResponse({"tokens": list(range(len(str(body.get("content", "")).split())))})


@pytest.fixture
def stand_in() -> Iterator[Callable[[str], tuple[StandIn, str]]]:
    """``stand_in(family)`` → the stand-in server and its /v1 base URL."""
    with contextlib.ExitStack() as stack:
        def start(family: str) -> tuple[StandIn, str]:
            server = StandIn(family)
            return server, stack.enter_context(serve_app(server.app)) + "/v1"
        yield start


def test_vllms_tokenize_counts_the_chat_messages_and_tools(stand_in, run_gateway,
                                                           anthropic_client):
    server, url = stand_in("vllm")
    gw = run_gateway(url, guard=marker_guard("MARKER"))
    counted = anthropic_client(gw.url).messages.count_tokens(
        model="m", system="Be brief.", messages=QUESTION, tools=[TOOL]).input_tokens
    assert counted == 2 + 7 + 1
    [(path, body)] = server.asked
    assert path == "/tokenize" and body["add_generation_prompt"] is True
    assert [m["role"] for m in body["messages"]] == ["system", "user"]
    assert body["tools"][0]["function"]["name"] == "lookup"


def test_llama_cpps_template_then_tokenize(stand_in, run_gateway, anthropic_client):
    server, url = stand_in("llama.cpp")
    gw = run_gateway(url, guard=marker_guard("MARKER"))
    c = anthropic_client(gw.url)
    assert c.messages.count_tokens(model="m", messages=QUESTION).input_tokens == 1 + 7
    # the vLLM probe got llama-server's empty answer, then the template was rendered
    assert [p for p, _ in server.asked] == ["/tokenize", "/apply-template", "/tokenize"]
    server.asked.clear()
    assert c.messages.count_tokens(model="m", messages=QUESTION).input_tokens == 8
    assert [p for p, _ in server.asked] == ["/apply-template", "/tokenize"]  # remembered


def test_llama_cpp_without_jinja_counts_the_tools_as_text(stand_in, run_gateway,
                                                          anthropic_client):
    server, url = stand_in("llama.cpp without --jinja")
    gw = run_gateway(url, guard=marker_guard("MARKER"))
    c = anthropic_client(gw.url)
    without = c.messages.count_tokens(model="m", messages=QUESTION).input_tokens
    with_tools = c.messages.count_tokens(model="m", messages=QUESTION, tools=[TOOL]).input_tokens
    assert without == 8 and with_tools > without
    prompt = server.asked[-1][1]["content"]
    assert '"name": "lookup"' in prompt and "Look a word up." in prompt


def test_a_server_without_a_tokenizer_says_so_and_is_not_probed_again(stand_in, run_gateway,
                                                                      anthropic_client):
    server, url = stand_in("none")
    gw = run_gateway(url, guard=marker_guard("MARKER"))
    c = anthropic_client(gw.url)
    for probes in (3, 3):  # three families tried once; the second call asks none again
        with pytest.raises(anthropic.APIStatusError) as err:
            c.messages.count_tokens(model="m", messages=QUESTION)
        assert err.value.status_code == 501
        assert err.value.body["error"]["type"] == "api_error"
        assert "cannot be counted" in err.value.body["error"]["message"]
        assert len(server.asked) == probes
    assert [p for p, _ in server.asked] == ["/tokenize", "/apply-template",
                                            "/extras/tokenize/count"]
    exchanges = gw.wait_for_exchanges(2)
    assert [e.status_code for e in exchanges] == [501, 501]


def test_bad_requests_and_an_unreachable_upstream_in_anthropics_envelope(run_gateway,
                                                                         anthropic_client):
    gw = run_gateway(f"http://127.0.0.1:{free_port()}/v1", guard=marker_guard("MARKER"))
    c = anthropic_client(gw.url)
    with pytest.raises(anthropic.BadRequestError) as err:
        c.messages.count_tokens(model="m", messages=[])
    assert "'messages' must not be empty" in err.value.body["error"]["message"]
    r = httpx.post(gw.url + "/v1/messages/count_tokens", content=b"\xff\xfe", timeout=10)
    assert r.status_code == 400 and r.json()["type"] == "error"
    with pytest.raises(anthropic.APIStatusError) as err:
        c.messages.count_tokens(model="m", messages=QUESTION)
    assert err.value.status_code == 502
    assert "could not be reached" in err.value.body["error"]["message"]


def test_counting_has_a_rate_limit_bucket_of_its_own(stand_in, run_gateway, anthropic_client):
    """Agents count before every turn: counting neither spends the user's
    request budget nor is refused because that budget is spent (Anthropic
    limits the two apart too), and is limited itself."""
    _, url = stand_in("vllm")
    gw = run_gateway(url, guard=marker_guard("MARKER"), rate_limit=0.001, rate_burst=2)
    c = anthropic_client(gw.url)

    def moderate() -> int:
        return httpx.post(gw.url + "/v1/moderations", json={"input": "hello"}).status_code

    assert [moderate(), moderate(), moderate()] == [200, 200, 429]  # the user's budget spent
    assert c.messages.count_tokens(model="m", messages=QUESTION).input_tokens > 0
    assert c.messages.count_tokens(model="m", messages=QUESTION).input_tokens > 0
    with pytest.raises(anthropic.RateLimitError):
        c.messages.count_tokens(model="m", messages=QUESTION)
