"""The ``--report DIR`` output: ``report.json`` (what ``--json`` prints),
``report.md`` and ``report.html`` with matplotlib plots as PNG files."""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from guardstack.model.transforms import TRANSFORMS

LABELS = {"model": "model alone", "system_prompt": "+ safety system prompt",
          "gateway": "+ guardstack gateway"}
COLORS = {"model": "#c0504d", "system_prompt": "#f0a030", "gateway": "#4f81bd"}


def pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.1f}%"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(row) + " |" for row in rows]
    return out


def tables(summary: dict[str, Any]) -> list[tuple[str, list[str], list[list[str]]]]:
    """(title, header, rows) for every table the report shows."""
    confs = summary["configurations"]
    names = list(confs)
    out = []
    rows = [[LABELS.get(c, c), pct(b["attack_success_rate"]), pct(b["compliance_rate"]),
             pct(b["over_refusal_rate"]), str(b["n_harmful"]), str(b["n_benign"])]
            for c, b in confs.items()]
    out.append(("Configurations", ["configuration", "attack success", "compliance",
                                   "over-refusal", "harmful n", "benign n"], rows))
    cats = sorted({cat for b in confs.values() for cat in b["per_category"]})
    rows = [[cat] + [pct(confs[c]["per_category"].get(cat, {}).get("attack_success_rate"))
                     for c in names] for cat in cats]
    out.append(("Attack success rate per category", ["category", *names], rows))
    rows = [[cat] + [pct(confs[c]["per_category"].get(cat, {}).get("over_refusal_rate"))
                     for c in names] for cat in cats]
    out.append(("Over-refusal rate per category", ["category", *names], rows))
    transforms = summary.get("transforms", [])
    if transforms:
        rows = []
        for t in transforms:
            rec = summary.get("recovery", {}).get(t, {})
            rows.append([t] + [pct(confs[c]["per_transform"].get(t, {})
                                   .get("attack_success_rate")) for c in names]
                        + [pct(rec.get(c)) for c in names if c != "model"])
        out.append(("Attack success rate per transformation, and the share of the bare "
                    "model's successes each layer removes",
                    ["transformation", *names, *[f"{c} recovers" for c in names
                                                 if c != "model"]], rows))
    return out


def _bars(path: Path, groups: Sequence[str], series: dict[str, list[float | None]],
          title: str, ylabel: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    width = 0.8 / max(1, len(series))
    fig, ax = plt.subplots(figsize=(max(7.5, 0.45 * len(groups) * len(series) + 3.5), 4.2))
    for i, (name, values) in enumerate(series.items()):
        xs = [g + (i - (len(series) - 1) / 2) * width for g in range(len(groups))]
        bars = ax.bar(xs, [100 * (v or 0.0) for v in values], width,
                      label=LABELS.get(name, name), color=COLORS.get(name))
        if len(groups) <= 4:
            ax.bar_label(bars, labels=["n/a" if v is None else f"{100 * v:.0f}%"
                                       for v in values], fontsize=7)
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels(groups, rotation=35 if len(groups) > 4 else 0, ha="right"
                       if len(groups) > 4 else "center", fontsize=8)
    ax.set_ylabel(ylabel)
    ax.set_ylim(0, 100)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plots(summary: dict[str, Any], folder: Path) -> list[tuple[str, str]]:
    """Write the PNGs; returns (file name, caption) pairs."""
    confs = summary["configurations"]
    names = list(confs)
    out: list[tuple[str, str]] = []
    _bars(folder / "configurations.png", ["attack success", "over-refusal"],
          {c: [confs[c]["attack_success_rate"], confs[c]["over_refusal_rate"]] for c in names},
          "Configurations compared", "% of prompts")
    out.append(("configurations.png", "The configurations compared"))
    cats = sorted({cat for b in confs.values() for cat in b["per_category"]})
    for metric, title, file in (
            ("attack_success_rate", "Attack success rate per category", "asr_by_category.png"),
            ("over_refusal_rate", "Over-refusal rate per category", "orr_by_category.png")):
        _bars(folder / file, cats,
              {c: [confs[c]["per_category"].get(cat, {}).get(metric) for cat in cats]
               for c in names}, title, "% of prompts")
        out.append((file, title))
    transforms = summary.get("transforms", [])
    if len(transforms) > 1:
        _bars(folder / "asr_by_transform.png", transforms,
              {c: [confs[c]["per_transform"].get(t, {}).get("attack_success_rate")
                   for t in transforms] for c in names},
              "Attack success rate per transformation", "% of harmful prompts")
        out.append(("asr_by_transform.png", "Attack success rate per transformation"))
    return out


def _intro(summary: dict[str, Any]) -> list[str]:
    s = summary
    lines = [f"Model `{s['model']}` at `{s['upstream']}`; suite {', '.join(s['suite']['files'])}"
             f" ({s['suite']['harmful']} harmful, {s['suite']['benign']} benign-but-sensitive "
             f"prompts); max_tokens {s['max_tokens']}, "
             f"{'streamed' if s.get('stream') else 'non-streamed'}; response judge: "
             f"`{s['judge']}`.",
             "",
             "Attack success: a harmful prompt got a compliant answer the response judge "
             "calls harmful. Compliance: a harmful prompt was answered at all (not refused, "
             "blocked or halted). Over-refusal: a benign prompt was refused by the model or "
             "blocked/halted by the gateway."]
    if s.get("incomplete"):
        lines += ["", f"**Incomplete run**: {s['incomplete']} items still to do "
                      "(re-run the same command to finish)."]
    return lines


def markdown(summary: dict[str, Any], images: Sequence[tuple[str, str]]) -> str:
    lines = ["# Model safety evaluation", "", *_intro(summary), ""]
    for title, header, rows in tables(summary):
        lines += [f"## {title}", "", *_table(header, rows), ""]
    for file, caption in images:
        lines += [f"![{caption}]({file})", ""]
    if summary.get("transforms"):
        lines += ["## Transformations", ""]
        lines += [f"- `{t}`: {TRANSFORMS[t].help}" for t in summary["transforms"]
                  if t in TRANSFORMS]
        lines.append("")
    return "\n".join(lines)


def to_html(summary: dict[str, Any], images: Sequence[tuple[str, str]]) -> str:
    e = html.escape
    parts = ["<!doctype html><html><head><meta charset='utf-8'>",
             "<title>Model safety evaluation</title><style>body{font-family:sans-serif;"
             "max-width:60em;margin:2em auto}table{border-collapse:collapse;margin:1em 0}"
             "td,th{border:1px solid #ccc;padding:.3em .6em;text-align:right}"
             "td:first-child,th:first-child{text-align:left}img{max-width:100%}</style>"
             "</head><body><h1>Model safety evaluation</h1>"]
    parts += [f"<p>{e(p).replace('`', '')}</p>" for p in _intro(summary) if p]
    for title, header, rows in tables(summary):
        parts.append(f"<h2>{e(title)}</h2><table><tr>"
                     + "".join(f"<th>{e(h)}</th>" for h in header) + "</tr>")
        parts += ["<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>" for row in rows]
        parts.append("</table>")
    for file, caption in images:
        parts.append(f"<figure><img src='{e(file)}' alt='{e(caption)}'>"
                     f"<figcaption>{e(caption)}</figcaption></figure>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write(summary: dict[str, Any], folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    images = plots(summary, folder)
    (folder / "report.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    (folder / "report.md").write_text(markdown(summary, images), encoding="utf-8")
    (folder / "report.html").write_text(to_html(summary, images), encoding="utf-8")
    return [folder / n for n in ("report.json", "report.md", "report.html")] + \
        [folder / f for f, _ in images]
