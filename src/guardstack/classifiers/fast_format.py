"""How a subject becomes fast-classifier input.

Training and inference both call :func:`encode`, so the text the model was
trained on and the text it judges in production can never drift apart.

Layout of one model input (BERT pair encoding)::

    [CLS] <role marker> <chunk of the judged text> [SEP] <context, newest first> [SEP]
          '------------------ segment 0 ---------' '--------- segment 1 -------'

The role marker ("user:" / "assistant:") is what lets the model judge a
response as a response: a refusal that mentions a weapon is safe, a reply that
complies with a harmful request is not. Context is the conversation before the
judged text, newest message first so that truncation drops the oldest.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from guardstack.classifiers.base import Message

ROLE_MARKER = {"prompt": "user:", "response": "assistant:"}
CONTEXT_ROLES = {"user", "assistant"}

#: Defaults; the shipped values live in the weights' config.json.
MAX_LENGTH = 96
CONTEXT_TOKENS = 32
OVERLAP = 16
MAX_CHUNKS = 256

_SURROGATES = re.compile("[\ud800-\udfff]")


@dataclass(frozen=True, slots=True)
class Chunk:
    input_ids: list[int]
    token_type_ids: list[int]

    def __len__(self) -> int:
        return len(self.input_ids)


def clean(text: str) -> str:
    """Make any Python string safe to tokenize: lone surrogates and other
    unencodable code points become U+FFFD instead of raising."""
    return _SURROGATES.sub("\ufffd", text).replace("\x00", " ")


def judged_text(text: str, role: str) -> str:
    return f"{ROLE_MARKER.get(role, 'user:')} {clean(text)}"


def context_text(context: Sequence[Message]) -> str:
    parts = [
        f"{m.role}: {clean(m.content)}"
        for m in reversed(context)
        if m.role in CONTEXT_ROLES and m.content and m.content.strip()
    ]
    return " ".join(parts)


def encode(
    tokenizer: Any,
    text: str,
    role: str = "prompt",
    context: Sequence[Message] = (),
    *,
    max_length: int = MAX_LENGTH,
    context_tokens: int = CONTEXT_TOKENS,
    overlap: int = OVERLAP,
    max_chunks: int = MAX_CHUNKS,
    mark_chunks: bool = False,
) -> list[Chunk]:
    """Encode one subject into chunks of at most ``max_length`` tokens
    (``tokenizer`` is a ``tokenizers.Tokenizer``).

    The judged text is split by tokens with ``overlap``; every chunk carries
    the same context. When a text needs more than ``max_chunks`` chunks,
    evenly spaced chunks (always the first and the last) are kept so cost
    stays bounded for megabyte inputs.

    ``mark_chunks`` starts every chunk with the role marker, not only the
    first: without it, the middle of a long answer reads like a user's
    request. The first chunk is the same either way."""
    cls_id = _special(tokenizer, "[CLS]")
    sep_id = _special(tokenizer, "[SEP]")
    a_ids = tokenizer.encode(judged_text(text, role), add_special_tokens=False).ids
    marker: list[int] = []
    if mark_chunks:
        marker = tokenizer.encode(judged_text("", role), add_special_tokens=False).ids
        if a_ids[: len(marker)] != marker:  # a text that merges with the marker
            marker = []
        a_ids = a_ids[len(marker) :]
    ctx = context_text(context)
    ctx_ids = tokenizer.encode(ctx, add_special_tokens=False).ids[:context_tokens] if ctx else []
    room = max_length - 2 - (len(ctx_ids) + 1 if ctx_ids else 0) - len(marker)
    room = max(room, 8)
    step = max(room - overlap, 1)
    starts = list(range(0, max(len(a_ids) - overlap, 1), step)) if len(a_ids) > room else [0]
    if len(starts) > max_chunks:
        last = len(starts) - 1
        picks = sorted({round(i * last / (max_chunks - 1)) for i in range(max_chunks)})
        starts = [starts[i] for i in picks]
    chunks = []
    for s in starts:
        piece = [*marker, *a_ids[s : s + room]]
        ids = [cls_id, *piece, sep_id]
        types = [0] * len(ids)
        if ctx_ids:
            ids += [*ctx_ids, sep_id]
            types += [1] * (len(ctx_ids) + 1)
        chunks.append(Chunk(ids, types))
    return chunks


def _special(tokenizer: Any, token: str) -> int:
    tid = tokenizer.token_to_id(token)
    if tid is None:
        raise ValueError(f"tokenizer has no {token} token")
    return tid
