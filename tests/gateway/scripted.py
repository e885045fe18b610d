"""A raw TCP "model server" on loopback that answers every request with
scripted bytes, so the gateway meets what no real server sends on demand
(garbage, a stream cut off mid-chunk, silence, a reasoning model's fields)
through its real HTTP client."""

from __future__ import annotations

import json
import socket
import threading


class ScriptedUpstream:
    """Reads one HTTP request per connection, writes ``reply`` bytes, then
    closes the connection or (``hang=True``) keeps it open silently."""

    def __init__(self, reply: bytes, *, hang: bool = False) -> None:
        self.reply, self.hang = reply, hang
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self.stop = threading.Event()
        self.held: list[socket.socket] = []
        self.peer_closed = threading.Event()  # the gateway closed a held connection
        self.heads: list[bytes] = []  # each request's line and headers, in order
        self.bodies: list[bytes] = []  # and its body
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        self.sock.settimeout(0.1)
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(5)
            data = b""
            while b"\r\n\r\n" not in data:
                data += conn.recv(65536)
            head, _, rest = data.partition(b"\r\n\r\n")
            self.heads.append(head)
            length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                           if line.lower().startswith(b"content-length:")), 0)
            while len(rest) < length:
                rest += conn.recv(65536)
            self.bodies.append(rest[:length])
            conn.sendall(self.reply)
            if self.hang:
                self.held.append(conn)
                threading.Thread(target=self._watch, args=(conn,), daemon=True).start()
            else:
                conn.close()

    def _watch(self, conn: socket.socket) -> None:
        conn.settimeout(None)
        try:
            if conn.recv(1) == b"":
                self.peer_closed.set()
        except OSError:
            self.peer_closed.set()

    def close(self) -> None:
        self.stop.set()
        self.sock.close()
        for c in self.held:
            c.close()


def sse_reply(body: bytes, *, chunked: bool = False) -> bytes:
    head = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
    if chunked:
        return head + b"transfer-encoding: chunked\r\n\r\n" + body
    return head + b"content-length: " + str(len(body)).encode() + b"\r\n\r\n" + body


def upstream(scripted: list[ScriptedUpstream], reply: bytes, **kw: bool) -> ScriptedUpstream:
    """A scripted server, closed after the test (``scripted`` is the fixture)."""
    s = ScriptedUpstream(reply, **kw)
    scripted.append(s)
    return s


def json_reply(body: bytes) -> bytes:
    return (b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: "
            + str(len(body)).encode() + b"\r\n\r\n" + body)


def chat_chunk(delta: dict, finish: str | None = None) -> bytes:
    """One chat-completion chunk as a server-sent event."""
    obj = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m",
           "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    return b"data: " + json.dumps(obj).encode() + b"\n\n"


#: A reasoning model's stream that thinks, then calls weather(city="Oslo") in
#: three argument fragments, then reports usage (9 prompt, 12 completion tokens).
REASONING_THEN_TOOL_CALL = (
    chat_chunk({"role": "assistant", "reasoning_content": "The user wants"})
    + chat_chunk({"reasoning_content": " the weather."})
    + chat_chunk({"tool_calls": [{"index": 0, "id": "call_1", "type": "function",
                                  "function": {"name": "weather", "arguments": ""}}]})
    + chat_chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"city": '}}]})
    + chat_chunk({"tool_calls": [{"index": 0, "function": {"arguments": '"Oslo"}'}}]})
    + chat_chunk({}, "tool_calls")
    + b'data: {"id": "c1", "choices": [], "usage": {"prompt_tokens": 9, '
      b'"completion_tokens": 12, "total_tokens": 21}}\n\n'
    + b"data: [DONE]\n\n")

#: A stream whose reasoning turns "unsafe" (the word MARKER) before its answer.
UNSAFE_REASONING = (
    chat_chunk({"role": "assistant", "content": ""})
    + b"".join(chat_chunk({"reasoning_content": w})
               for w in [" The", " user", " asks.", " MARKER", " follows", " here."])
    + chat_chunk({"content": "Fine."}) + chat_chunk({}, "stop") + b"data: [DONE]\n\n")
