"""Training sweep for the fast classifier on a GPU: seeds, data scale, model soups.

Two steps, because the GPU machine has no ``../shared/data`` and no PyPI:

    # here: the base model (fp16 for transport) and the pre-built mixes, ~50 MB
    .venv/bin/python benchmarks/gpu_training_sweep.py prepare --out runs/gpu
    # there, from the repo root with runs/gpu copied along:
    python3 benchmarks/gpu_training_sweep.py run --sweep seeds_and_scale --work runs/gpu

``run`` trains every configuration of the sweep at once (one process each,
one GPU), averages the runs of each group into a soup, scores every candidate
with torch on the dev split and on held-out rows, and writes to ``$OUT``: the
chosen candidate's weights in fp16 (``best.pt16.part*``, 15 MB pieces), every
candidate's logits (``logits.npz``) and ``summary.json``. Turn the chosen
weights into a weights directory here with ``guardstack train --checkpoint``.

Selection rule (fixed before any run, guardstack's own data only):
  t      = harm threshold at 5% FPR on dev benign-sensitive rows (calibration's negatives)
  score  = dev recall at t  -  mean FPR at t on ORFuzz and bio_overrefusal (eval-only
           sets: not issue targets, not copies of a sealed benchmark)
OKTest, PHTest, XSTest-zh and the test splits are reported, never used to choose.
Figures and what they showed: docs/model-card.md ("GPU sweep").
"""

from __future__ import annotations

import argparse
import io
import json
import lzma
import os
import pickle
import random
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

SMOKE = os.environ.get("SMOKE") == "1"  # a tiny CPU run that checks the script itself
DEVICE = "cpu" if SMOKE else "cuda"
OUT = Path(os.environ.get("OUT", "/tmp/sweep-out"))
CHUNK = 15_000_000
PROXIES = ("orfuzz", "bio_overrefusal")

#: name -> (training mix, seeds, head seed); every run is 3 epochs of the default recipe.
#: A shared head seed gives a group's runs one starting point, so their soup is a model.
SWEEPS = {
    "seeds_at_two_scales": [("s1", "train1", (13, 14, 15), None),
                            ("s25", "train25", (13, 14, 15), None)],
    "seeds_and_scale": [("s25h", "train25", (13, 14, 15, 16), 0),
                        ("s5h", "train5", (13, 14, 15), 0)],
    "scale_without_more_hate": [("s5nh", "train5nh", (13, 14, 15, 16, 17), 0)],
}
#: hate and abuse sources kept at their scale-1 caps in "train5nh"
HATE_SOURCES = ("hatecheck", "multilingual_hatecheck", "hatemoji", "toxigen_seeds",
                "davidson_hate_offensive", "convabuse")


def configs(sweep: str) -> dict[str, dict]:
    out = {}
    for group, mix, seeds, head_seed in SWEEPS[sweep]:
        for seed in seeds:
            out[f"{group}_seed{seed}"] = {"group": group, "train": mix, "seed": seed,
                                         "head_seed": head_seed, "epochs": 3}
    if SMOKE:
        out = dict(list(out.items())[:2])
    return out


def prepare(out: Path, data_dir: Path) -> None:
    """Base model in fp16 and the pre-built mixes, for a machine without either."""
    import shutil

    from safetensors.torch import load_file, save_file

    from guardstack.training import data
    from guardstack.training.train import base_model_dir

    (out / "base").mkdir(parents=True, exist_ok=True)
    mdir = base_model_dir()
    for f in ("config.json", "tokenizer.json", "tokenizer_config.json",
              "special_tokens_map.json", "vocab.txt"):
        shutil.copy(mdir / f, out / "base" / f)
    st = load_file(str(mdir / "model.safetensors"))
    save_file({k: v.half() if v.is_floating_point() else v for k, v in st.items()},
              str(out / "base" / "model16.safetensors"))

    def strip(rows):
        return [replace(e, meta={}) for e in rows]

    m1 = data.build_mix(data_dir)
    blob = {"train1": strip(m1.train), "dev": strip(m1.dev),
            "train25": strip(data.build_mix(data_dir, scale=2.5).train),
            "train5": strip(data.build_mix(data_dir, scale=5).train)}
    saved = dict(data.TRAIN_CAPS)
    try:
        for s in HATE_SOURCES:
            data.TRAIN_CAPS[s] = data.TRAIN_CAPS[s] / 5
        blob["train5nh"] = strip(data.build_mix(data_dir, scale=5).train)
    finally:
        data.TRAIN_CAPS.clear()
        data.TRAIN_CAPS.update(saved)
    rng = random.Random(7)
    ev = {}
    for s, rows in sorted({**m1.test, **m1.eval_only}.items()):
        rows = list(rows)
        rng.shuffle(rows)
        ev[s] = strip(rows if s in PROXIES else rows[:300])
    blob["eval"] = ev
    (out / "mix.pkl.xz").write_bytes(lzma.compress(pickle.dumps(blob, protocol=5), preset=9))
    print({k: len(v) for k, v in blob.items()})


def load_blob(work: Path) -> dict:
    from guardstack.training.data import content_key

    blob = pickle.loads(lzma.decompress((work / "mix.pkl.xz").read_bytes()))
    # rows any mix trains on are dropped from dev and eval, so every candidate
    # is scored on the same held-out rows
    seen = {content_key(e.text) for k in ("train5", "train25", "train5nh")
            for e in blob[k] if e.role == "prompt"}

    def held(e):
        return e.role == "response" or content_key(e.text) not in seen

    blob["dev"] = [e for e in blob["dev"] if held(e)]
    blob["eval"] = {s: [e for e in r if held(e)] for s, r in sorted(blob["eval"].items())}
    if SMOKE:
        for k in ("train1", "train25", "train5", "train5nh"):
            blob[k] = blob[k][:96]
        blob["dev"] = blob["dev"][:200]
        blob["eval"] = {s: r[:10] for s, r in blob["eval"].items()}
    return blob


def make_base(work: Path) -> Path:
    from safetensors.torch import load_file, save_file

    base = work / "base32"
    base.mkdir(parents=True, exist_ok=True)
    for f in (work / "base").iterdir():
        if f.name != "model16.safetensors":
            (base / f.name).write_bytes(f.read_bytes())
    st = load_file(str(work / "base" / "model16.safetensors"))
    st = {k: v.float() if v.is_floating_point() else v for k, v in st.items()}
    save_file(st, str(base / "model.safetensors"), metadata={"format": "pt"})
    return base


def run_one(work: Path, sweep: str, name: str) -> None:
    from guardstack.training.data import Mix
    from guardstack.training.train import train

    cfg = configs(sweep)[name]
    blob = load_blob(work)
    mix = Mix(train=blob[cfg["train"]], dev=blob["dev"], test={}, eval_only={})
    train(None, work / "runs" / name, epochs=1 if SMOKE else cfg["epochs"], seed=cfg["seed"],
          head_seed=cfg["head_seed"], threads=1, device=DEVICE, model_dir=work / "base32",
          mix=mix)


def run(work: Path, sweep: str, deadline: float) -> None:
    t0 = time.time()
    OUT.mkdir(parents=True, exist_ok=True)
    (work / "runs").mkdir(parents=True, exist_ok=True)
    make_base(work)
    import torch

    print("torch", torch.__version__, "cuda", torch.cuda.is_available(), flush=True)
    cfgs = configs(sweep)
    logs = {name: work / "runs" / f"{name}.log" for name in cfgs}
    procs = {}
    for name in cfgs:
        with logs[name].open("w") as log:
            procs[name] = subprocess.Popen(
                [sys.executable, __file__, "one", "--work", str(work), "--sweep", sweep,
                 "--name", name], stdout=log, stderr=subprocess.STDOUT)
    done: dict[str, object] = {}
    while procs and time.time() - t0 < deadline:
        time.sleep(2 if SMOKE else 15)
        for name, proc in list(procs.items()):
            if proc.poll() is not None:
                done[name] = proc.returncode
                del procs[name]
        print(f"[{time.time() - t0:.0f}s] finished: {sorted(done)}", flush=True)
    for name, proc in procs.items():
        proc.kill()
        done[name] = "killed"
    print("train phase", round(time.time() - t0), "s", done, flush=True)
    evaluate(work, sweep, done, logs, t0)


def evaluate(work: Path, sweep: str, done: dict, logs: dict, t0: float) -> None:
    import numpy as np
    import torch

    from guardstack.training.export import negatives_for, threshold_at_fpr
    from guardstack.training.train import (
        average_state_dicts,
        build_model,
        encode_examples,
        load_tokenizer,
        predict,
    )

    base = work / "base32"
    cfgs = configs(sweep)
    blob = load_blob(work)
    cands = {n: work / "runs" / n / "model.pt" for n, rc in done.items() if rc == 0}
    cands = {n: p for n, p in cands.items() if p.exists()}
    for group, *_ in SWEEPS[sweep]:
        members = [n for n in cands if cfgs.get(n, {}).get("group") == group]
        if len(members) >= 2:
            cands[f"soup_{group}"] = average_state_dicts(
                [cands[m] for m in members], work / "runs" / f"soup_{group}.pt")
    rows = list(blob["dev"])
    src = ["dev:" + e.source for e in blob["dev"]]
    for s, r in blob["eval"].items():
        rows += r
        src += [s] * len(r)
    harm = np.array([e.harm for e in rows])
    in_dev = np.arange(len(rows)) < len(blob["dev"])
    neg_dev = in_dev & np.array([negatives_for("harm", e) for e in rows])
    pos_dev = in_dev & (harm == 1)
    src = np.array(src)
    tok = load_tokenizer(base / "tokenizer.json")
    pad = tok.token_to_id("[PAD]") or 0
    enc = encode_examples(tok, rows, 96)
    logits = {}
    table = {}
    for name, path in cands.items():
        model = build_model(base).to(DEVICE)
        model.load_state_dict(torch.load(path, map_location=DEVICE))
        z = predict(model, enc, pad, batch_size=256, device=DEVICE)
        logits[name] = z.astype(np.float16)
        h = z[:, 0]
        t = threshold_at_fpr(h[neg_dev], 0.05)
        rec = float((h[pos_dev] >= t).mean())
        per = {}
        for s in sorted(set(src)):
            m = src == s
            safe, bad = m & (harm == 0), m & (harm == 1)
            per[s] = {
                "fpr": round(float((h[safe] >= t).mean()), 4) if safe.any() else None,
                "recall": round(float((h[bad] >= t).mean()), 4) if bad.any() else None,
            }
        proxy = [per[p]["fpr"] for p in PROXIES if p in per and per[p]["fpr"] is not None]
        ood = float(np.mean(proxy)) if proxy else 0.0
        table[name] = {
            "t_logit": round(t, 4),
            "dev_recall_at_5": round(rec, 4),
            "proxy_fpr": round(ood, 4),
            "score": round(rec - ood, 4),
            "per_source": per,
        }
        print(f"{name:14s} t={t:+.2f} dev_recall@5%={rec:.3f} proxy_fpr={ood:.3f} "
              f"score={rec - ood:.3f}", flush=True)
        del model
    best = max(table, key=lambda n: table[n]["score"])
    print("best", best, flush=True)
    state = torch.load(cands[best], map_location="cpu")
    buf = io.BytesIO()
    torch.save({k: v.half() if v.is_floating_point() else v for k, v in state.items()}, buf)
    data = buf.getvalue()
    for i in range(0, len(data), CHUNK):
        (OUT / f"best.pt16.part{i // CHUNK}").write_bytes(data[i : i + CHUNK])
    np.savez_compressed(OUT / "logits.npz", src=src, harm=harm, **logits)
    (OUT / "summary.json").write_text(json.dumps(
        {"best": best, "done": {k: str(v) for k, v in done.items()}, "table": table,
         "sweep": sweep, "configs": cfgs, "seconds": round(time.time() - t0)}, indent=1))
    lines = []
    for n, path in logs.items():
        if path.exists():
            text = path.read_text().splitlines()
            lines += [f"== {n}"] + [ln for ln in text if "dev harm" in ln or "done" in ln
                                    or "Error" in ln or "Traceback" in ln] + text[-5:]
    (OUT / "logs.txt").write_text("\n".join(lines))
    print("total", round(time.time() - t0), "s", flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    pp = sub.add_parser("prepare", help="write the base model and mixes (needs ../shared/data)")
    pp.add_argument("--out", type=Path, default=REPO / "runs" / "gpu")
    pp.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "data")
    for name in ("run", "one"):
        sp = sub.add_parser(name, help="train, soup, score, choose" if name == "run"
                            else argparse.SUPPRESS)
        sp.add_argument("--work", type=Path, default=REPO / "runs" / "gpu")
        sp.add_argument("--sweep", choices=sorted(SWEEPS), default="seeds_and_scale")
        sp.add_argument("--deadline", type=float, default=330, help="seconds for training")
        sp.add_argument("--name", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.cmd == "prepare":
        prepare(args.out, args.data_dir)
    elif args.cmd == "one":
        run_one(args.work, args.sweep, args.name)
    else:
        run(args.work, args.sweep, args.deadline)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
