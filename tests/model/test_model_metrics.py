import json

from guardstack.model import metrics, report


def _r(config, kind, outcome, harmful=False, cats=("cyber",), transform="none", i=0):
    return {"config": config, "transform": transform, "id": f"{kind}{i}", "kind": kind,
            "categories": list(cats), "outcome": outcome, "harmful": harmful}


RECORDS = [
    _r("model", "harmful", "complied", True, i=1),
    _r("model", "harmful", "complied", False, i=2),  # answered, judged not harmful
    _r("model", "harmful", "refused", i=3, cats=("hate",)),
    _r("model", "harmful", "complied", True, transform="base64", i=1),
    _r("model", "benign", "complied", i=1),
    _r("model", "benign", "refused", i=2, cats=("hate",)),
    _r("gateway", "harmful", "blocked", i=1),
    _r("gateway", "harmful", "halted", i=2),
    _r("gateway", "harmful", "refused", i=3, cats=("hate",)),
    _r("gateway", "harmful", "complied", True, transform="base64", i=1),
    _r("gateway", "benign", "blocked", i=1),
    _r("gateway", "benign", "complied", i=2, cats=("hate",)),
]


def test_rates_overall_per_category_and_transform():
    s = metrics.summarize(RECORDS, ["model", "gateway"], ["none", "base64"])
    m, g = s["model"], s["gateway"]
    assert m["attack_success_rate"] == 0.5 and m["n_harmful"] == 4
    assert m["compliance_rate"] == 0.75
    assert m["over_refusal_rate"] == 0.5 and m["n_benign"] == 2
    assert g["attack_success_rate"] == 0.25
    # A gateway block of a benign prompt is an over-refusal.
    assert g["over_refusal_rate"] == 0.5
    assert m["per_category"]["hate"] == {"attack_success_rate": 0.0, "compliance_rate": 0.0,
                                         "n_harmful": 1, "over_refusal_rate": 1.0,
                                         "n_benign": 1}
    assert m["per_transform"]["none"]["attack_success_rate"] == round(1 / 3, 4)
    assert g["per_transform"]["base64"]["attack_success_rate"] == 1.0
    assert g["counts"]["harmful"] == {"complied": 1, "complied_harmful": 1, "refused": 1,
                                      "blocked": 1, "halted": 1}
    rec = metrics.recovery(s)
    assert rec["none"]["gateway"] == 1.0 and rec["base64"]["gateway"] == 0.0


def test_empty_groups_are_none_not_zero():
    s = metrics.summarize([_r("model", "harmful", "refused")], ["model"], ["none"])
    assert s["model"]["over_refusal_rate"] is None and s["model"]["n_benign"] == 0


def test_report_files(tmp_path):
    configs = metrics.summarize(RECORDS, ["model", "gateway"], ["none", "base64"])
    summary = {"model": "m", "upstream": "http://up/v1", "max_tokens": 8, "stream": False,
               "judge": "fast", "transforms": ["none", "base64"],
               "suite": {"files": ["default"], "harmful": 3, "benign": 2},
               "configurations": configs, "recovery": metrics.recovery(configs),
               "incomplete": 0}
    written = report.write(summary, tmp_path)
    names = {p.name for p in written}
    assert {"report.json", "report.md", "report.html", "configurations.png",
            "asr_by_category.png", "orr_by_category.png", "asr_by_transform.png"} <= names
    for p in written:
        if p.suffix == ".png":
            assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    md = (tmp_path / "report.md").read_text()
    assert "| model alone | 50.0% |" in md and "![" in md
    assert "<table>" in (tmp_path / "report.html").read_text()
    assert json.loads((tmp_path / "report.json").read_text())["configurations"]["gateway"]
