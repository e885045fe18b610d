"""``guardstack train``: fine-tune, export, quantize and calibrate the fast
classifier; optionally write the held-out test splits for ``guardstack eval``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from guardstack.cli import report_error


def add_commands(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "train",
        help="fine-tune the fast classifier on ../shared/data (needs the 'train' extra)",
        description=(
            "Fine-tune all-MiniLM-L6-v2 end to end on the licensed training sets, export it "
            "to ONNX, quantize to int8, calibrate per label on the dev split and write the "
            "weights directory. Splits are deterministic (content hash, fixed seed)."
        ),
    )
    p.add_argument("--data-dir", default="../shared/data", help="normalized datasets folder")
    p.add_argument("--out", default="runs/fast", help="run folder (checkpoints, logs, weights)")
    p.add_argument("--weights-dir", default=None, help="where to write weights (OUT/weights)")
    p.add_argument("--epochs", type=int, default=3, help="passes over the training rows")
    p.add_argument(
        "--seed",
        type=int,
        nargs="+",
        default=[13],
        help="training seed (splits use a fixed seed); several seeds train one run each "
        "and average their weights into one model (a model soup)",
    )
    p.add_argument("--max-length", type=int, default=96, help="tokens per model input")
    p.add_argument("--batch-size", type=int, default=32, help="training batch size")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    p.add_argument(
        "--device", default="cpu", help="torch device to train on: cpu, cuda, cuda:1, ..."
    )
    p.add_argument("--scale", type=float, default=1.0, help="shrink every per-source cap")
    p.add_argument("--lr", type=float, default=5e-5, help="encoder learning rate")
    p.add_argument("--head-lr", type=float, default=1e-3, help="head learning rate")
    p.add_argument(
        "--later-chunks",
        type=int,
        default=0,
        metavar="N",
        help="also train on up to N later chunks of each long answer or safe prompt "
        "(inference judges every chunk; the default recipe trains on first chunks)",
    )
    p.add_argument(
        "--mark-chunks",
        action="store_true",
        help="start every chunk with the role marker, not only the first (recorded in "
        "the weights' config, so inference encodes the same way)",
    )
    p.add_argument(
        "--init-from",
        metavar="STATE",
        help="continue from this trained state dict instead of the base model",
    )
    p.add_argument(
        "--export-splits",
        metavar="DIR",
        help="write held-out TEST rows per source and the eval-only sets as JSONL",
    )
    p.add_argument("--splits-only", action="store_true", help="only write --export-splits")
    p.add_argument("--checkpoint", help="skip training; export and calibrate this state dict")
    p.set_defaults(func=run_train)


def run_train(args: argparse.Namespace) -> int:
    from guardstack.training.data import build_mix, export_splits

    data_dir = Path(args.data_dir)
    if not (data_dir / "README.md").exists():
        return report_error(f"{data_dir} is not the shared datasets folder (no README.md)")
    if args.splits_only and not args.export_splits:
        return report_error("--splits-only needs --export-splits DIR")
    if args.export_splits:
        written = export_splits(build_mix(data_dir), Path(args.export_splits))
        print(f"wrote {len(written)} files, {sum(written.values())} rows to {args.export_splits}")
        if args.splits_only:
            return 0
    try:
        import torch
        import transformers  # noqa: F401
    except ImportError:
        return report_error(
            "training needs torch and transformers: pip install 'guardstack[train]'")
    from guardstack.training.export import build_weights
    from guardstack.training.train import train

    if args.init_from and not Path(args.init_from).exists():
        return report_error(f"--init-from {args.init_from} not found")
    if args.later_chunks < 0:
        return report_error("--later-chunks must be 0 or more")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.checkpoint:
        state = Path(args.checkpoint)
        if not state.exists():
            return report_error(f"checkpoint {state} not found")
    else:
        if args.device.startswith("cuda") and not torch.cuda.is_available():
            return report_error(f"--device {args.device}: torch sees no CUDA device here")
        seeds = list(dict.fromkeys(args.seed))
        runs = [
            train(
                data_dir,
                out if len(seeds) == 1 else out / f"seed{seed}",
                epochs=args.epochs,
                seed=seed,
                max_length=args.max_length,
                batch_size=args.batch_size,
                scale=args.scale,
                threads=args.threads,
                device=args.device,
                lr=args.lr,
                head_lr=args.head_lr,
                later_chunks=args.later_chunks,
                mark_chunks=args.mark_chunks,
                init_state=Path(args.init_from) if args.init_from else None,
                # a soup's runs start from one head, or their mean is no model;
                # the first run draws it as a single-seed run does, so a soup
                # of 13 and 14 contains the plain seed-13 run
                head_seed=seeds[0] if len(seeds) > 1 and seed != seeds[0] else None,
            )
            for seed in seeds
        ]
        state = runs[0]
        if len(runs) > 1:
            from guardstack.training.train import average_state_dicts

            state = average_state_dicts(runs, out / "model.pt")
            cfg = json.loads((runs[0].parent / "train_config.json").read_text())
            cfg["soup_seeds"] = seeds
            (out / "train_config.json").write_text(json.dumps(cfg, indent=1))
    cfg_path = out / "train_config.json"
    train_cfg = json.loads(cfg_path.read_text()) if cfg_path.exists() else {}
    if args.mark_chunks:  # exporting a checkpoint trained with marked chunks
        train_cfg["mark_chunks"] = True
    weights = Path(args.weights_dir) if args.weights_dir else out / "weights"
    report = build_weights(state, data_dir, weights, train_cfg)
    print(
        json.dumps(
            {"weights": str(weights), "model": report["model"], "harm": report["labels"]["harm"]}
        )
    )
    return 0
