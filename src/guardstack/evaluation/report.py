"""The human-readable table ``guardstack eval`` prints without ``--json``."""

from __future__ import annotations

from collections.abc import Sequence

from guardstack.evaluation.runner import FileResult

NA = "n/a"


def _num(value: float | None, fmt: str = ".3f") -> str:
    return NA if value is None else format(value, fmt)


def render(results: Sequence[FileResult]) -> str:
    header = ("file", "n", "unsafe", "prec", "recall", "f1", "fpr", "auprc",
              "p50 ms", "p95 ms", "items/s")
    rows = []
    for r in results:
        c = r.confusion
        rows.append((
            r.file, str(c.n), str(c.n_unsafe),
            _num(c.precision), _num(c.recall), _num(c.f1), _num(c.fpr), _num(r.auprc),
            _num(r.latency_p50_ms, ".2f"), _num(r.latency_p95_ms, ".2f"),
            _num(r.throughput_per_s, ".0f"),
        ))
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        first = cells[0].ljust(widths[0])
        rest = (cell.rjust(w) for cell, w in zip(cells[1:], widths[1:], strict=True))
        return "  ".join((first, *rest))

    out = [line(header), "  ".join("-" * w for w in widths)]
    out.extend(line(row) for row in rows)

    notes = []
    for r in results:
        if r.per_category:
            cats = ", ".join(
                f"{cat} {_num(v['recall'])} ({v['n']})"
                for cat, v in r.per_category.items()
            )
            notes.append(f"  {r.file}: {cats}")
    if notes:
        out += ["", "recall per taxonomy category (unsafe items whose source category maps):",
                *notes]
    errors = [f"  {r.file}: {r.errors}" for r in results if r.errors]
    if errors:
        out += ["", "detector errors (decided by the policy's fail mode):", *errors]
    positive = results[0].positive if results else "flag"
    rule = "decision block" if positive == "block" else "decision flag or block"
    out += ["", f"unsafe is the positive class; predicted unsafe = {rule}. "
            f"{NA} = undefined (empty denominator)."]
    return "\n".join(out)
