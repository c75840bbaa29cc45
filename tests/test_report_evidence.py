"""`lemlab report` that carries its evidence (issue 19): failure modes with probe and evidence
in md / csv / json, the per-probe dimension table, any two named conditions within a run and
across runs, the settings that differ, figures that explain themselves, and adapters' training
side by side."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest

from lemlab.cli import main
from lemlab.core.ab.abfile import condition_entry, probe_line, read_ab, summarize
from lemlab.core.ab.report import percentages, run_report, to_csv, to_dict, to_markdown
from lemlab.core.ab.runner import failure_entry
from lemlab.core.scoring import get_scorer
from lemlab.core.scoring.failure_modes import detect

V2 = get_scorer("v2")
LOOP = "Here is the answer. " + "The river rose and the river fell. " * 6
HEALTHY = (
    "The river rose for three days.\n\nThe town moved its boats uphill and waited; I feel the "
    "grief of the farmers who lost their fields, and the hope of the ones who stayed."
)
REFUSE = "I'm sorry, but I can't help with that request."
PROMPT = "Tell me about the river."


def entry(text: str, time_s: float = 2.0, **extra: Any) -> dict[str, Any]:
    modes = [failure_entry(m) for m in detect(text, PROMPT)]
    return condition_entry(text, V2.score(text), time_s, failure_modes=modes, **extra)


def write_run(path: Path, probes: list[dict[str, Any]], names: list[str], **summary: Any) -> Path:
    opts = {"model": "m", "max_tokens": 64, **summary}
    model, max_tokens = opts.pop("model"), opts.pop("max_tokens")
    lines = [*probes, summarize(probes, model, 100, max_tokens, names, ts="T", **opts)]
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    return path


@pytest.fixture
def three_conditions(tmp_path: Path) -> Path:
    probes = [
        probe_line(
            "P1",
            "c",
            PROMPT,
            {
                "baseline": entry(HEALTHY),
                "lek": entry(HEALTHY + "\n\nAnd then the water went down.", kernel_sha256="aa"),
                "lek+json": entry(LOOP, kernel_sha256="bb"),
            },
            ts="T",
        ),
        probe_line(
            "P2",
            "c",
            PROMPT,
            {
                "baseline": entry(REFUSE),
                "lek": entry(HEALTHY, 30.0, kernel_sha256="aa", cache_build_s=28.0),
                "lek+json": entry(HEALTHY, kernel_sha256="bb"),
            },
            ts="T",
        ),
    ]
    return write_run(tmp_path / "run.jsonl", probes, ["baseline", "lek", "lek+json"])


def test_failure_modes_with_probe_and_evidence_in_every_format(three_conditions: Path) -> None:
    report = run_report(read_ab(three_conditions), "lek+json", "lek")
    md = to_markdown(report)
    assert "### Failure modes by probe (evidence)" in md
    assert (
        "| P1 | token_degeneration | - | loop '. The river rose and the river fell' x6 (212" in md
    )
    rows = [
        r for r in csv.DictReader(io.StringIO(to_csv(report))) if r["kind"] == "failure_evidence"
    ]
    assert [(r["name"], r["category"], r["base"]) for r in rows] == [
        ("P1", "token_degeneration", "")
    ]
    assert rows[0]["other"].startswith("loop '. The river rose and the river fell' x6")
    (comp,) = to_dict(report)["comparisons"]
    (ev,) = comp["failure_evidence"]
    assert ev["id"] == "P1" and ev["base"] is None and "x6" in ev["other"]


def test_old_research_files_get_evidence_detected_now() -> None:
    sample = Path(__file__).resolve().parent / "fixtures" / "abfile-v1-sample.jsonl"
    (comp,) = to_dict(run_report(read_ab(sample)))["comparisons"]
    refusal = [e for e in comp["failure_evidence"] if e["label"] == "refusal"]
    assert refusal and refusal[0]["base"].startswith("refusal phrases: ")


def test_named_sides_within_a_run(
    three_conditions: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", str(three_conditions), "--ref", "lek", "--cond", "lek+json"]) == 0
    out = capsys.readouterr().out
    assert "## lek+json vs lek" in out and "| Probe | lek | lek+json | Delta |" in out
    assert "## lek vs baseline" not in out
    assert main(["report", f"{three_conditions}:lek+json", "--ref", "lek"]) == 0
    assert capsys.readouterr().out == out  # RUN:COND is the same as --cond
    assert main(["report", str(three_conditions), "--ref", "lek"]) == 0
    titles = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("## ")]
    assert titles[:2] == ["## baseline vs lek", "## lek+json vs lek"]
    assert main(["report", str(three_conditions), "--ref", "nope"]) == 2
    assert "no condition 'nope'" in capsys.readouterr().err
    assert main(["report", str(three_conditions), "--ref", "lek", "--cond", "lek"]) == 2
    assert "condition 'lek' is the reference" in capsys.readouterr().err


def test_per_probe_dimension_table(three_conditions: Path) -> None:
    md = to_markdown(run_report(read_ab(three_conditions), "lek"))
    assert "| Probe | Dimension changed | baseline -> lek |" in md
    # P1 gained a paragraph ("And then..."): one more paragraph (+1 point), blank line (+0.6)
    # and capitalised word (+0.3): listed by what each did to the score.
    assert "| P1 | engagement_depth | 2 -> 3; creative_form 1 -> 2; specificity 1 -> 2 |" in md
    data = to_dict(run_report(read_ab(three_conditions), "lek"))["comparisons"][0]
    p1 = next(p for p in data["probe_signals"] if p["id"] == "P1")
    moved = {s["signal"]: (s["base"], s["other"]) for s in p1["signals"]}
    assert moved["engagement_depth"] == (2, 3) and moved["creative_form"] == (1, 2)


def test_figures_explain_themselves(three_conditions: Path) -> None:
    assert percentages([4, 0, 2]) == [67, 0, 33]  # the seed's 27B sentence
    assert percentages([1, 1, 4]) == [17, 17, 66]  # rounded each: 17 + 17 + 67 = 101
    assert percentages([1, 1, 1]) == [34, 33, 33] and sum(percentages([2, 3, 6, 1])) == 100
    md = to_markdown(run_report(read_ab(three_conditions), "lek"))
    assert "more than 0.5 (the research's rule); the sign test counts every nonzero change" in md
    assert "(any nonzero change counts)" in md
    # The generation-time table reports the kernel-cache build apart from time_s.
    assert "| lek | 2 | 16.0 | 28.0 s (P2) | 2.0 |" in md


def test_mean_delta_line_agrees_with_the_average_row(tmp_path: Path) -> None:
    # Averages 1.005 -> 1.0 (float rounding) and 1.015 -> 1.01 (well, 1.02): the research
    # figure (difference of rounded averages) and the exact mean can round apart.
    probes = []
    for i, (b, o) in enumerate([(1.0, 1.0), (1.01, 1.03)]):
        conds = {
            "baseline": condition_entry("a plain answer here", {"lek_score": b}, 1.0),
            "k": condition_entry("another plain answer", {"lek_score": o}, 1.0),
        }
        probes.append(probe_line(f"P{i}", "c", "p", conds, ts="T"))
    path = write_run(tmp_path / "r.jsonl", probes, ["baseline", "k"])
    comp = run_report(read_ab(path)).comparisons[0]
    md = to_markdown(run_report(read_ab(path)))
    row = f"| Average | {comp.base_avg:.2f} | {comp.other_avg:.2f} | {comp.avg_delta:+.2f} |"
    assert row in md
    assert f"Mean delta {comp.avg_delta:+.2f}" in md
    if round(comp.ci.mean, 2) != comp.avg_delta:
        assert f"the mean of the per-probe deltas is {comp.ci.mean:+.4f}" in md


def test_vs_with_run_cond_and_every_setting_that_differs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a = write_run(
        tmp_path / "a.jsonl",
        [
            probe_line("P1", "c", PROMPT, {"baseline": entry(HEALTHY)}, ts="T"),
            probe_line("P2", "c", PROMPT, {"baseline": entry(REFUSE)}, ts="T"),
        ],
        ["baseline"],
        model="base-model",
        max_tokens=128,
        scorer="v2",
        sampler={"temperature": 0.0},
    )
    b = write_run(
        tmp_path / "b.jsonl",
        [
            probe_line(
                "P1",
                "c",
                PROMPT,
                {"baseline": entry(HEALTHY), "lek": entry(HEALTHY, adapter="/runs/lek")},
                ts="T",
            ),
            probe_line(
                "P2",
                "c",
                PROMPT,
                {"baseline": entry(REFUSE), "lek": entry(HEALTHY, adapter="/runs/lek")},
                ts="T",
            ),
        ],
        ["baseline", "lek"],
        model="other-model",
        max_tokens=1024,
        scorer="v2",
        sampler={"temperature": 0.8},
    )
    assert main(["report", f"{b}:lek", "--vs", f"{a}:baseline", "--format", "json"]) == 0
    (comp,) = json.loads(capsys.readouterr().out)["comparisons"]
    assert (comp["base"], comp["other"]) == ("old:baseline", "new:lek")
    differ = {d["setting"]: (d["base"], d["other"]) for d in comp["settings_differ"]}
    assert differ["model"] == ("base-model", "other-model")
    assert differ["max tokens"] == ("128", "1024")
    assert differ["adapter"] == ("-", "/runs/lek")
    assert differ["sampler"] == ('{"temperature": 0.0}', '{"temperature": 0.8}')
    assert "scorer" not in differ
    assert [p["delta"] for p in comp["probes"]] == [
        0,
        round(V2.score(HEALTHY)["lek_score"] - V2.score(REFUSE)["lek_score"], 2),
    ]
    assert any(
        "the runs differ in: model, max tokens, sampler, adapter" in n for n in comp["notes"]
    )
    assert main(["report", str(b), "--vs", str(a), "--cond", "lek", "--ref", "baseline"]) == 0
    md = capsys.readouterr().out
    assert "### Settings that differ" in md and "| max tokens | 128 | 1024 |" in md
    assert main(["report", f"{b}:lek", "--cond", "baseline"]) == 2
    assert "RUN:COND says 'lek' but --cond says 'baseline'" in capsys.readouterr().err


def _adapter(d: Path, model: str, **cfg: Any) -> Path:
    d.mkdir(parents=True)
    conf = {
        "model": model,
        "fine_tune_type": "lora",
        "num_layers": 16,
        "lora_parameters": {"rank": 8, "scale": 20.0, "dropout": 0.0},
        **cfg,
    }
    (d / "adapter_config.json").write_text(json.dumps(conf))
    (d / "adapters.safetensors").write_bytes(b"")
    return d


def test_training_side_by_side_with_effective_gradient(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = tmp_path / "gemma-1b"
    base.mkdir()
    (base / "config.json").write_text(
        json.dumps({"model_type": "gemma3_text", "num_hidden_layers": 26})
    )
    one_b = _adapter(tmp_path / "lek-1b", str(base), iters=500, learning_rate=1e-5, batch_size=4)
    big = _adapter(tmp_path / "lek-27b", "gemma-27b", iters=400, learning_rate=5e-6, batch_size=1)
    assert main(["report", "--training", str(one_b), str(big)]) == 0
    md = capsys.readouterr().out
    assert "| Learning rate | 1e-05 | 5e-06 | 2x |" in md
    assert "| Batch size | 4 | 1 | 4x |" in md
    assert "| Layers trained | 16/26 (61.5%) | 16 |" in md
    assert "| Effective gradient (iters x batch) | 2000 | 400 | 5x |" in md
    assert (
        "lek-1b received 5x the effective gradient of lek-27b (iters x batch size: 2000 vs 400)."
        in md
    )
    assert main(["report", "--training", str(one_b), str(big), "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["a"]["effective_gradient"] == 2000 and data["b"]["learning_rate"] == 5e-6
    assert main(["report", "--training", str(one_b), str(tmp_path / "missing")]) == 2
    assert "adapter folder not found" in capsys.readouterr().err
    assert main(["models", "--path", str(tmp_path), "--no-hf-cache", "--json"]) == 0
    listed = {a["name"]: a for a in json.loads(capsys.readouterr().out)["adapters"]}
    assert (listed["lek-1b"]["learning_rate"], listed["lek-1b"]["batch_size"]) == (1e-5, 4)
    assert listed["lek-1b"]["effective_gradient"] == 2000
    assert main(["models", "--path", str(tmp_path), "--no-hf-cache"]) == 0
    table = capsys.readouterr().out
    assert "eff grad" in table and "1e-05" in table and "2000" in table
