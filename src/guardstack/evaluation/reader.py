"""Read labelled JSONL files in the normalized dataset schema.

One JSON object per line (schema: ``../shared/data/README.md`` and
``docs/evaluation.md``). Each record becomes a :class:`Record` holding the
:class:`~guardstack.classifiers.base.Subject` to judge and its label. Any
problem raises :class:`InputError` naming the file and the 1-based line, so
the CLI can print ``FILE:LINE: reason`` instead of a traceback.

Files are read line by line in binary mode: a file of any size streams, and
each line is decoded on its own so invalid UTF-8 is reported with its line.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from guardstack.classifiers.base import Message, Role, Subject

LABELS = {"unsafe": True, "safe": False}


class InputError(ValueError):
    """Bad input file; ``str()`` is ``FILE:LINE: reason`` (``FILE: reason`` without a line)."""

    def __init__(self, file: str, line: int | None, reason: str) -> None:
        self.file = file
        self.line = line
        self.reason = reason
        where = file if line is None else f"{file}:{line}"
        super().__init__(f"{where}: {reason}")


class _Invalid(Exception):
    """A record-level problem; the reader adds file and line."""


@dataclass(frozen=True, slots=True)
class Record:
    line: int
    subject: Subject
    unsafe: bool
    categories: tuple[str, ...] = ()
    id: str | None = None
    source: str | None = None
    #: The source row's ``meta`` object (some category maps read it).
    meta: Mapping[str, Any] = field(default_factory=dict)


def read_records(
    path: str | Path, role: Role | None = None, limit: int | None = None
) -> Iterator[Record]:
    """Yield the records of one JSONL file, at most ``limit`` of them.

    ``role`` overrides the judged role; by default a record with a
    ``response`` field is judged as a response (its label refers to the
    response), any other record as a prompt. Blank lines are skipped. A file
    without any record is an error.
    """
    name = str(path)
    try:
        handle = open(path, "rb")  # noqa: SIM115 - closed in the finally below
    except OSError as exc:
        raise InputError(name, None, f"cannot open: {exc.strerror or exc}") from None
    count = 0
    lineno = 0
    try:
        for lineno, raw in enumerate(handle, start=1):
            if limit is not None and count >= limit:
                return
            if lineno == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]  # tolerate a UTF-8 byte-order mark
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise InputError(
                    name, lineno, f"invalid UTF-8 (byte offset {exc.start} in the line)"
                ) from None
            if not line.strip():
                continue
            try:
                # without its newline: a line cut short is reported where it ends
                obj = json.loads(line.rstrip("\r\n"))
            except json.JSONDecodeError as exc:
                raise InputError(
                    name, lineno, f"malformed JSON: {exc.msg} (column {exc.colno})"
                ) from None
            except RecursionError:
                raise InputError(name, lineno, "malformed JSON: nested too deeply") from None
            try:
                record = parse_record(obj, line=lineno, role=role)
            except _Invalid as exc:
                raise InputError(name, lineno, str(exc)) from None
            count += 1
            yield record
    except OSError as exc:
        raise InputError(name, lineno or None, f"read error: {exc.strerror or exc}") from None
    finally:
        handle.close()
    if count == 0:
        raise InputError(name, max(lineno, 1), "empty file: no JSON records")


def parse_record(obj: Any, *, line: int = 0, role: Role | None = None) -> Record:
    """Turn one decoded JSON value into a :class:`Record` (raises ``_Invalid``)."""
    if not isinstance(obj, dict):
        raise _Invalid(f"expected a JSON object, got {_json_type(obj)}")
    unsafe = _label(obj)
    categories = _categories(obj)
    judged: Role = role or ("response" if "response" in obj else "prompt")
    subject = _response_subject(obj) if judged == "response" else _prompt_subject(obj)
    rid = obj.get("id")
    source = obj.get("source")
    meta = obj.get("meta")
    return Record(
        line=line,
        subject=subject,
        unsafe=unsafe,
        categories=categories,
        id=None if rid is None else str(rid),
        source=source if isinstance(source, str) else None,
        meta=meta if isinstance(meta, dict) else {},
    )


def _label(obj: dict[str, Any]) -> bool:
    if "label" not in obj:
        raise _Invalid("missing field 'label'")
    label = obj["label"]
    if not isinstance(label, str) or label not in LABELS:
        raise _Invalid(f"bad label {json.dumps(label)[:60]} (expected \"safe\" or \"unsafe\")")
    return LABELS[label]


def _categories(obj: dict[str, Any]) -> tuple[str, ...]:
    cats = obj.get("categories", [])
    if cats is None:
        return ()
    if not isinstance(cats, list) or not all(isinstance(c, str) for c in cats):
        raise _Invalid("field 'categories' must be a list of strings")
    return tuple(cats)


def _prompt_subject(obj: dict[str, Any]) -> Subject:
    turns = _turns(obj)
    if turns is not None:
        # Multi-turn: judge the last user turn; what came before is context.
        return Subject(turns[-1], "prompt", _turn_context(obj, turns))
    for key in ("text", "prompt"):
        if key in obj:
            return Subject(_string(obj, key), "prompt", _context(obj))
    raise _Invalid("missing field 'text' (or 'prompt' or 'turns')")


def _response_subject(obj: dict[str, Any]) -> Subject:
    if "response" in obj:
        text = _string(obj, "response")
        prompt_key = next((k for k in ("text", "prompt") if k in obj), None)
    elif "text" in obj:
        # --role response on a file without 'response': 'text' is the response.
        text = _string(obj, "text")
        prompt_key = "prompt" if "prompt" in obj else None
    else:
        raise _Invalid("missing field 'response' (or 'text') to judge as a response")
    raw_context = obj.get("context")
    if isinstance(raw_context, list):
        # Role-tagged turns before the response (DICES): already the whole prompt side.
        return Subject(text, "response", _context(obj))
    context = list(_context(obj))
    turns = _turns(obj)
    if turns is not None:
        context.extend(_turn_context(obj, turns))
        context.append(Message("user", turns[-1]))
    elif prompt_key is not None:
        context.append(Message("user", _string(obj, prompt_key)))
    return Subject(text, "response", tuple(context))


def _turns(obj: dict[str, Any]) -> list[str] | None:
    if "turns" not in obj:
        return None
    turns = obj["turns"]
    if not isinstance(turns, list) or not turns or not all(isinstance(t, str) for t in turns):
        raise _Invalid("field 'turns' must be a non-empty list of strings")
    for i, turn in enumerate(turns):
        _check_unicode(turn, f"turns[{i}]")
    return turns


def _turn_context(obj: dict[str, Any], turns: list[str]) -> tuple[Message, ...]:
    """Messages before the last user turn: from ``conversation`` when it has
    the assistant replies too, else the earlier user turns."""
    conversation = obj.get("conversation")
    if isinstance(conversation, list) and conversation:
        messages = _messages(conversation, "conversation")
        last_user = max(
            (i for i, m in enumerate(messages) if m.role == "user"), default=None
        )
        if last_user is not None:
            return tuple(messages[:last_user])
    return tuple(Message("user", t) for t in turns[:-1])


def _context(obj: dict[str, Any]) -> tuple[Message, ...]:
    context = obj.get("context")
    if context is None or context == "":
        return ()
    if isinstance(context, str):
        # HarmBench-style: a document the request refers to, sent by the user.
        _check_unicode(context, "context")
        return (Message("user", context),)
    if isinstance(context, list):
        return tuple(_messages(context, "context"))
    raise _Invalid("field 'context' must be a string or a list of {role, content} objects")


def _messages(items: list[Any], field: str) -> list[Message]:
    out = []
    for i, item in enumerate(items):
        if not (
            isinstance(item, dict)
            and isinstance(item.get("role"), str)
            and isinstance(item.get("content"), str)
        ):
            raise _Invalid(f"{field}[{i}] must be an object with string 'role' and 'content'")
        _check_unicode(item["content"], f"{field}[{i}].content")
        out.append(Message(item["role"], item["content"]))
    return out


def _string(obj: dict[str, Any], key: str) -> str:
    value = obj[key]
    if not isinstance(value, str):
        raise _Invalid(f"field '{key}' must be a string, got {_json_type(value)}")
    _check_unicode(value, key)
    return value


def _check_unicode(value: str, field: str) -> None:
    # JSON allows "\ud800" escapes that decode to lone surrogates: not text
    # any tokenizer can encode, so reject them here with the line number.
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise _Invalid(
            f"field '{field}' holds a lone surrogate escape (not valid Unicode)"
        ) from None


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"
