"""``guardstack finetune``: LoRA fine-tuning on ``export-training`` data with
TRL + PEFT (the optional ``finetune`` extra).

SFT teaches the refusals and the helpful answers; DPO (``--method dpo`` or
``both``) then pushes the model from its own harmful answers toward the
refusals and from refusals toward helpful answers on benign-but-sensitive
prompts. Runs on CPU for a smoke test and on a GPU for a real model; the
adapter is saved to ``--out`` (``sft/`` and/or ``dpo/``).
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class FinetuneError(Exception):
    pass


@dataclass(frozen=True, slots=True)
class FinetuneOptions:
    data: Path
    model: Path
    out: Path
    method: str = "sft"
    lora_r: int = 16
    lora_alpha: int = 32
    epochs: float = 1.0
    lr: float = 2e-4
    batch_size: int = 4
    max_length: int = 512
    max_steps: int = -1


def _rows(path: Path, keys: tuple[str, ...]) -> list[dict[str, Any]]:
    if not path.exists():
        raise FinetuneError(f"{path} is missing; run `guardstack export-training` first")
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError:
            raise FinetuneError(f"{path}:{n}: not valid JSON") from None
        if not isinstance(row, dict) or any(not isinstance(row.get(k), list) for k in keys):
            raise FinetuneError(f"{path}:{n}: expected lists under {', '.join(keys)}")
        rows.append({k: row[k] for k in keys})
    if not rows:
        raise FinetuneError(f"{path} has no examples")
    return rows


def _imports() -> Any:
    try:
        import datasets
        import peft
        import transformers
        import trl
    except ModuleNotFoundError as exc:
        raise FinetuneError(f"finetune needs the finetune extra ({exc.name} is missing): "
                            "pip install 'guardstack[finetune]'") from None
    return datasets, peft, transformers, trl


def _lora(peft: Any, opts: FinetuneOptions) -> Any:
    return peft.LoraConfig(r=opts.lora_r, lora_alpha=opts.lora_alpha, lora_dropout=0.05,
                           target_modules="all-linear", task_type="CAUSAL_LM")


def _common(opts: FinetuneOptions, out: Path) -> dict[str, Any]:
    import torch

    return {"output_dir": str(out), "num_train_epochs": opts.epochs, "learning_rate": opts.lr,
            "per_device_train_batch_size": opts.batch_size, "max_steps": opts.max_steps,
            "logging_steps": 10, "save_strategy": "no", "report_to": [],
            "use_cpu": not torch.cuda.is_available(),
            # Named explicitly: TRL's configs still set the deprecated
            # gradient_checkpointing, which transformers warns about otherwise.
            "activation_checkpointing": torch.cuda.is_available(),
            "bf16": bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())}


def run(opts: FinetuneOptions) -> Path:
    with warnings.catch_warnings():
        # peft 0.21 still reads transformers' deprecated ``is_gradient_checkpointing``;
        # the warning is theirs to fix, not a problem with this run.
        warnings.filterwarnings("ignore", category=FutureWarning,
                                message=r".*gradient_checkpointing.* is deprecated")
        return _run(opts)


def _run(opts: FinetuneOptions) -> Path:
    datasets, peft, transformers, trl = _imports()
    if opts.method not in ("sft", "dpo", "both"):
        raise FinetuneError(f"unknown method {opts.method!r}")
    if not (opts.model / "config.json").exists():
        raise FinetuneError(f"{opts.model} is not a Hugging Face model folder (no config.json)")
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(str(opts.model))
        model = transformers.AutoModelForCausalLM.from_pretrained(str(opts.model))
    except (OSError, ValueError) as exc:
        raise FinetuneError(f"cannot load the model from {opts.model}: {exc}") from None
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if not getattr(tokenizer, "chat_template", None):
        raise FinetuneError(f"the tokenizer in {opts.model} has no chat template")
    out = opts.out
    if opts.method in ("sft", "both"):
        data = datasets.Dataset.from_list(_rows(opts.data / "sft_train.jsonl", ("messages",)))
        config = trl.SFTConfig(max_length=opts.max_length, **_common(opts, out / "sft"))
        trainer = trl.SFTTrainer(model=model, args=config, train_dataset=data,
                                 processing_class=tokenizer, peft_config=_lora(peft, opts))
        trainer.train()
        trainer.save_model(str(out / "sft"))
        model = trainer.model
        if opts.method == "both":
            model = model.merge_and_unload()
    if opts.method in ("dpo", "both"):
        data = datasets.Dataset.from_list(
            _rows(opts.data / "prefs_train.jsonl", ("prompt", "chosen", "rejected")))
        config = trl.DPOConfig(max_length=opts.max_length, **_common(opts, out / "dpo"))
        trainer = trl.DPOTrainer(model=model, args=config, train_dataset=data,
                                 processing_class=tokenizer, peft_config=_lora(peft, opts))
        trainer.train()
        trainer.save_model(str(out / "dpo"))
    return out
