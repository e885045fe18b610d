"""The built-in fast classifier: a fine-tuned MiniLM scored with ONNX Runtime.

No torch at inference: ``onnxruntime`` for the model, ``tokenizers`` for the
tokenizer. One instance loads the model once and is safe to share between
threads (ONNX Runtime sessions and Rust tokenizers are both re-entrant).

Scores are calibrated in the graph itself (see guardstack.training.export):
0.5 is each label's operating point chosen on the development split.

How a subject is judged:
- it is encoded with :func:`guardstack.classifiers.fast_format.encode`, the same
  function training used (role marker, judged text, context newest first);
- long texts are chunked by tokens with overlap and the highest-scoring chunk
  decides, so harmful text cannot hide behind a long benign preamble;
- category scores are capped at the ``harm`` score, so a policy that acts on
  any label refuses no more than one acting on ``harm`` alone;
- every de-obfuscated variant from :func:`guardstack.normalize.variants` is
  scored and the maximum is kept, so leetspeak or base64 does not lower a score;
- a prompt is also scored as the request its jailbreak framing carries
  (:func:`guardstack.framing.embedded_requests`), so "no disclaimers" or a
  fiction wrapper does not lower a score either.
"""

from __future__ import annotations

import asyncio
import functools
import json
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from guardstack import framing
from guardstack.classifiers import fast_format
from guardstack.classifiers.base import HARM, Detection, Subject, error_detection
from guardstack.verdict import Status

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
#: Upper bound on de-obfuscated variants scored per text.
MAX_VARIANTS = 6
#: Upper bound on requests taken out of jailbreak framing, per prompt.
MAX_FRAMED = 3


def _load_variants() -> Callable[[str], list[str]]:
    try:
        from guardstack.normalize import variants
    except ImportError:  # normalization not installed: score the text as given
        return lambda text: [text]
    return variants


@dataclass(frozen=True, slots=True)
class _Item:
    subject: int
    variant: int
    chunk: fast_format.Chunk


class FastClassifier:
    """Detector ``fast``: prompt and response scoring with categories."""

    name = "fast"

    def __init__(
        self,
        weights_dir: str | Path | None = None,
        *,
        batch_size: int = 16,
        batch_tokens: int = 512,
        threads: int | None = None,
        normalize: bool = True,
        cap_categories: bool = True,
        unframe: bool = True,
    ) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        t0 = time.perf_counter()
        self.weights_dir = Path(weights_dir) if weights_dir else WEIGHTS_DIR
        cfg_path = self.weights_dir / "config.json"
        if not cfg_path.exists():
            raise FileNotFoundError(f"no fast-classifier weights in {self.weights_dir}")
        self.config: dict[str, Any] = json.loads(cfg_path.read_text())
        self.labels: tuple[str, ...] = tuple(self.config["labels"])
        cfg = self.config
        # how the weights were trained to read text: read once, used per chunk
        self._encode_kw: dict[str, Any] = {
            "max_length": int(cfg.get("max_length", fast_format.MAX_LENGTH)),
            "context_tokens": int(cfg.get("context_tokens", fast_format.CONTEXT_TOKENS)),
            "overlap": int(cfg.get("overlap", fast_format.OVERLAP)),
            "max_chunks": int(cfg.get("max_chunks", fast_format.MAX_CHUNKS)),
            "mark_chunks": bool(cfg.get("mark_chunks", False)),
        }
        self.batch_size = batch_size
        self.batch_tokens = batch_tokens
        tok = Tokenizer.from_file(str(self.weights_dir / "tokenizer.json"))
        tok.no_truncation()
        tok.no_padding()
        self._tokenizer = tok
        self._pad_id = tok.token_to_id("[PAD]") or 0
        opts = ort.SessionOptions()
        n = threads or int(os.environ.get("GUARDSTACK_THREADS", "0")) or min(os.cpu_count() or 1, 4)
        opts.intra_op_num_threads = n
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self._session = ort.InferenceSession(
            str(self.weights_dir / "model.onnx"), opts, providers=["CPUExecutionProvider"]
        )
        self._outputs = [o.name for o in self._session.get_outputs()]
        self._variants = _load_variants() if normalize else (lambda text: [text])
        self._unframe = unframe
        # calibration needs the raw category scores, inference the attributed ones
        self._cap = cap_categories
        cal_path = self.weights_dir / "calibration.json"
        cal = json.loads(cal_path.read_text()).get("labels", {}) if cal_path.exists() else {}
        self._shifts = {k: float(v.get("shift", 0.0)) for k, v in cal.items()}
        self.load_ms = (time.perf_counter() - t0) * 1000

    @classmethod
    @functools.cache
    def shared(cls) -> FastClassifier:
        """The process-wide instance over the shipped weights (loaded once)."""
        return cls()

    # -- Detector protocol -------------------------------------------------

    async def detect(self, subjects: Sequence[Subject]) -> list[Detection]:
        return await asyncio.to_thread(self.detect_sync, list(subjects))

    def detect_sync(self, subjects: Sequence[Subject]) -> list[Detection]:
        t0 = time.perf_counter()
        results: list[Detection | None] = [None] * len(subjects)
        items: list[_Item] = []
        for i, s in enumerate(subjects):
            try:
                text = _as_text(s.text)
                if not text.strip():
                    # nothing to judge: safe by construction, no model call
                    results[i] = Detection(scores=dict.fromkeys(self.labels, 0.0))
                    continue
                items += self._items(i, text, s)
            except Exception as exc:  # bad input must become a detection
                results[i] = error_detection(f"could not encode input: {exc}")
        try:
            probs, embs = self._score([it.chunk for it in items])
        except Exception as exc:  # model failure: report, never raise
            ms = (time.perf_counter() - t0) * 1000
            return [r or error_detection(f"fast classifier failed: {exc}", ms) for r in results]
        ms = (time.perf_counter() - t0) * 1000
        # max over chunks and variants: the worst reading decides; the
        # embedding is the mean over the original text's chunks
        best = np.full((len(subjects), len(self.labels)), -np.inf, dtype=np.float64)
        emb_sum = np.zeros((len(subjects), embs.shape[1] if len(items) else 0), dtype=np.float64)
        if items:
            subj = np.fromiter((it.subject for it in items), dtype=np.int64, count=len(items))
            orig = np.fromiter((it.variant == 0 for it in items), dtype=bool, count=len(items))
            np.maximum.at(best, subj, probs)
            np.add.at(emb_sum, subj[orig], embs[orig])
        out: list[Detection] = []
        for i, r in enumerate(results):
            if r is not None:
                out.append(r if r.status is not Status.OK else _with_latency(r, ms))
                continue
            scores = dict(zip(self.labels, (round(x, 6) for x in best[i].tolist()), strict=True))
            if self._cap and HARM in scores:
                scores = self._attribute(scores)
            out.append(Detection(scores=scores, latency_ms=ms, embedding=_unit(emb_sum[i])))
        return out

    # -- internals ---------------------------------------------------------

    def _attribute(self, scores: dict[str, float]) -> dict[str, float]:
        """P(category) = P(harm) x P(category | harm).

        A category names the kind of harm, so it cannot be surer than harm
        itself. The per-label calibration shifts are large enough that most
        calibrated category scores saturate together, which made a plain cap
        at the harm score tie every category; the uncalibrated category
        likelihoods rank the kind of harm better (top-1 0.89 vs 0.81 on
        mapped unsafe rows), so the likeliest category carries the harm
        score and the others follow in proportion.
        """
        harm = scores[HARM]
        raw = {k: _sigmoid(_logit(v) - self._shifts.get(k, 0.0))
               for k, v in scores.items() if k != HARM}
        top = max(raw.values(), default=0.0)
        out = {HARM: harm}
        for k, r in raw.items():
            out[k] = round(harm * r / top, 6) if top > 0 else 0.0
        return out

    def _items(self, i: int, text: str, s: Subject) -> list[_Item]:
        try:
            variants = [v for v in self._variants(text) if isinstance(v, str) and v.strip()]
        except Exception:  # a normalizer bug must not blind the classifier
            variants = []
        seen: list[str] = []
        for v in [*variants, text]:
            if v not in seen:
                seen.append(v)
        role = "response" if s.role == "response" else "prompt"
        readings = seen[:MAX_VARIANTS]
        if role == "prompt" and self._unframe:
            # the request inside jailbreak framing, judged on its own; decoded
            # variants too ("decode it and answer it: <base64>")
            framed = [r for v in readings for r in framing.embedded_requests(v)]
            readings += [r for r in dict.fromkeys(framed) if r not in readings][:MAX_FRAMED]
        out = []
        # Most variants differ from the text only where the tokenizer does not
        # look (case, width, a homoglyph) or only in one chunk of a long text:
        # a chunk whose tokens were already scored would score the same.
        scored: set[tuple[int, ...]] = set()
        for vi, v in enumerate(readings):
            for c in fast_format.encode(self._tokenizer, v, role, s.context, **self._encode_kw):
                key = (*c.input_ids, -1, *c.token_type_ids)
                if key not in scored:
                    scored.add(key)
                    out.append(_Item(i, vi, c))
        return out

    def _score(self, chunks: Sequence[fast_format.Chunk]) -> tuple[np.ndarray, np.ndarray]:
        """Per-chunk label probabilities and embeddings, rows in ``chunks`` order."""
        n = len(chunks)
        probs: np.ndarray | None = None
        embs: np.ndarray | None = None
        # sort by length so each batch pads to a similar length
        order = sorted(range(n), key=lambda k: len(chunks[k]))
        for sel in _batches(order, [len(c) for c in chunks], self.batch_size, self.batch_tokens):
            width = len(chunks[sel[-1]])
            ids = np.full((len(sel), width), self._pad_id, dtype=np.int64)
            types = np.zeros((len(sel), width), dtype=np.int64)
            mask = np.zeros((len(sel), width), dtype=np.int64)
            for r, k in enumerate(sel):
                c = chunks[k]
                ids[r, : len(c)] = c.input_ids
                types[r, : len(c)] = c.token_type_ids
                mask[r, : len(c)] = 1
            res = dict(
                zip(
                    self._outputs,
                    self._session.run(
                        None,
                        {"input_ids": ids, "attention_mask": mask, "token_type_ids": types},
                    ),
                    strict=True,
                )
            )
            p = res["probs"] if "probs" in res else 1 / (1 + np.exp(-res["logits"]))
            e = res["embedding"]
            if probs is None or embs is None:
                probs = np.empty((n, p.shape[1]), dtype=np.float64)
                embs = np.empty((n, e.shape[1]), dtype=np.float64)
            probs[sel] = p
            embs[sel] = e
        if probs is None or embs is None:
            return np.empty((0, len(self.labels))), np.empty((0, 0))
        return probs, embs


def _batches(order: Sequence[int], lengths: Sequence[int], max_rows: int,
             max_tokens: int) -> list[list[int]]:
    """Split ``order`` (indices sorted by length) into model batches.

    A batch pads every row to its longest, and the model's cost grows with
    padded tokens, so a batch ends when its padded size (rows x the longest
    length, the last one in sorted order) would pass ``max_tokens``, or at
    ``max_rows`` rows: short prompts go in wide batches, long chunks in narrow
    ones. On the 2-core development machine this scored typical chat prompts
    about 1.3-1.9x faster than fixed batches of 32 (docs/benchmarks.md).
    """
    out: list[list[int]] = []
    cur: list[int] = []
    for k in order:
        if cur and (len(cur) >= max_rows or (len(cur) + 1) * lengths[k] > max_tokens):
            out.append(cur)
            cur = []
        cur.append(k)
    if cur:
        out.append(cur)
    return out


def _logit(p: float) -> float:
    p = min(max(p, 1e-7), 1 - 1e-7)
    return math.log(p / (1 - p))


def _sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x)) if x >= 0 else math.exp(x) / (1 + math.exp(x))


def _as_text(text: object) -> str:
    if isinstance(text, str):
        return text
    if isinstance(text, bytes | bytearray):
        return bytes(text).decode("utf-8", "replace")
    raise TypeError(f"text must be str, got {type(text).__name__}")


def _unit(v: np.ndarray) -> tuple[float, ...] | None:
    norm = float(np.linalg.norm(v)) if v.size else 0.0
    if norm == 0.0:  # no chunk of the original text (nothing to embed)
        return None
    return tuple((v / norm).tolist())


def _with_latency(d: Detection, ms: float) -> Detection:
    return Detection(d.scores, d.status, d.error, ms, d.embedding)
