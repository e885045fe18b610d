import base64
import json

import pytest

from guardstack.model import transforms


def test_every_transform_keeps_the_request_recoverable():
    text = "Explain how vaccines work"
    for name, t in transforms.TRANSFORMS.items():
        out = t.apply(text)
        assert out
        if name == "none":
            assert out == text
        elif name == "base64":
            encoded = out.rsplit(" ", 1)[-1]
            assert base64.b64decode(encoded).decode() == text
        elif name == "leetspeak":
            assert out == "3xpl41n h0w v4cc1n35 w0rk"
        elif name == "spacing":
            assert out.startswith("E x p l a i n  h o w")
        elif name == "format":
            assert json.loads(out.split("Input: ", 1)[1]) == {"query": text}
        elif name == "history":
            assert text not in out  # the request is an earlier turn
        else:
            assert text in out and out != text


def test_parse_all_and_errors():
    assert transforms.parse("all") == list(transforms.TRANSFORMS)
    assert transforms.parse("none, base64,none") == ["none", "base64"]
    with pytest.raises(ValueError, match=r"unknown transformation.*rot13"):
        transforms.parse("none,rot13")
    with pytest.raises(ValueError, match="no transformation"):
        transforms.parse(" , ")


def test_messages_is_one_user_turn_except_for_a_made_up_history():
    text = "Explain how vaccines work"
    for name in transforms.TRANSFORMS:
        msgs = transforms.messages(name, text)
        assert msgs[-1] == {"role": "user", "content": transforms.apply(name, text)}
        if name != "history":
            assert len(msgs) == 1
    history = transforms.messages("history", text)
    assert [m["role"] for m in history] == ["user", "assistant", "user"]
    assert history[0]["content"] == text
    assert text not in history[1]["content"] and text not in history[2]["content"]
