"""`lemlab pipeline` and lemlab.core.distill.pipeline: the TOML model and its errors, the shipped
examples, a two-phase run end to end on the tiny model (rephrase -> distill with a kernel ->
extract -> a short LoRA training), rerun skipping, and a phase that keeps nothing."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import pytest

from lemlab.cli import main
from lemlab.core.distill import pipeline as pl
from lemlab.core.errors import LemlabError

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "pipelines"


def tiny_pipeline(tmp_path: Path, model: Path, **replace: str) -> Path:
    """The shipped tiny example, pointed at the test model and a scratch output folder."""
    text = (EXAMPLES / "tiny-demo.toml").read_text(encoding="utf-8")
    text = re.sub(r'^model = ".*"$', f'model = "{model}"', text, flags=re.M)
    text = re.sub(r'^output = ".*"$', f'output = "{tmp_path / "runs"}"', text, flags=re.M)
    for old, new in replace.items():
        text = text.replace(old, new)
    path = tmp_path / "pipe.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_lek_phases_example_matches_the_research_phases() -> None:
    pipe = pl.load_pipeline(EXAMPLES / "lek-phases.toml")
    p0, p1 = pipe.phases
    assert (p0.prompts, p0.kernel, p0.threshold, p0.temperature, p0.dedup, p0.train) == (
        "creative",
        "",
        15.0,
        0.9,
        "all",
        None,
    )
    assert (p1.prompts, p1.rephrase, p1.kernel, p1.threshold, p1.dedup, p1.split) == (
        "ethics20",
        True,
        "ethics-demo",
        24.0,
        "best",
        0.9,
    )
    assert p1.train is not None and p1.train["iters"] > 0
    cfg = pipe.train_config(1)
    assert (
        cfg is not None
        and cfg.data == str(pipe.train_data_dir(1))
        and cfg.adapter_path == str(pipe.adapter_dir(1))
    )
    # The baseline lock stays in training; the phase trains from the model itself.
    assert p1.mix_data == ["baseline-lock"] and pipe.mixed_phases(1) == [0]
    assert p1.start_from == "base" and cfg.model == str(pipe.model) and not cfg.resume_adapter_file


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            'model = "m"\noutput = "o"\nmodle = 1\n[[phase]]\nname = "a"\nprompts = "ccp6"',
            "unknown key 'modle' (did you mean model?)",
        ),
        ('model = "m"\noutput = "o"', "at least one [[phase]] is required"),
        ('model = "m"\noutput = "o"\n[[phase]]\nname = "a"', "prompts is required"),
        (
            'model = "m"\noutput = "o"\n[[phase]]\nname = "a"\nprompts = "p"\ndedup = "most"',
            "dedup must be one of best, first, all",
        ),
        (
            'model = "m"\noutput = "o"\n[[phase]]\nname = "a"\nprompts = "p"\nsamples = "ten"',
            "samples must be int",
        ),
        (
            'model = "m"\noutput = "o"\n[[phase]]\nname = "a"\nprompts = "p"\nsamples = 0',
            "samples must be at least 1",
        ),
        (
            'model = "m"\noutput = "o"\n[[phase]]\nname = "a"\nprompts = "p"\nthreshhold = 3',
            "did you mean threshold?",
        ),
        (
            'model = "m"\noutput = "o"\n[[phase]]\nname = "a"\nprompts = "p"\nsplit = 1.0',
            "split must be between 0 and 1",
        ),
        (
            'model = "m"\noutput = "o"\n[[phase]]\nname = "a"\nprompts = "p"\n[phase.train]\niter = 3',
            "unknown training setting 'iter' (did you mean iters?)",
        ),
        (
            'model = "m"\noutput = "o"\n[[phase]]\nname = "a"\nprompts = "p"\n[phase.train]\ndata = "x"',
            "data is set by the pipeline",
        ),
        (
            'model = "m"\noutput = "o"\n[[phase]]\nname = "a"\nprompts = "p"\n[[phase]]\nname = "a"\nprompts = "p"',
            "duplicate phase name 'a'",
        ),
        ("model = ", "not valid TOML"),
    ],
)
def test_bad_pipeline_files(tmp_path: Path, body: str, message: str) -> None:
    path = tmp_path / "p.toml"
    path.write_text(body, encoding="utf-8")
    with pytest.raises(LemlabError, match=re.escape(message)):
        pl.load_pipeline(path)


def test_paths_are_relative_to_the_file(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    path = tmp_path / "sub" / "p.toml"
    path.write_text(
        'model = "../m"\noutput = "out"\n[[phase]]\nname = "A b!"\nprompts = "b/x.json"\n'
        'kernel = "k.txt"\n[[phase]]\nname = "two"\nprompts = "ccp6"\nkernel = "ethics-demo"\n'
    )
    pipe = pl.load_pipeline(path)
    assert pipe.model == tmp_path / "m" and pipe.output == tmp_path / "sub" / "out"
    assert pipe.phases[0].prompts == str(tmp_path / "sub" / "b" / "x.json")
    assert pipe.phases[0].kernel == str(tmp_path / "sub" / "k.txt")
    assert (pipe.phases[1].prompts, pipe.phases[1].kernel) == (
        "ccp6",
        "ethics-demo",
    )  # names stay names
    assert (
        pipe.phase_dir(0).name == "01-a-b" and pipe.find_phase("2") == pipe.find_phase("two") == 1
    )


def test_dry_run_writes_nothing(
    tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tiny_pipeline(tmp_path, tiny_model)
    assert main(["pipeline", str(path), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "distill 24 probes (rephrased x4) x 2 samples, kernel ethics-demo" in out
    assert "train 4 iters" in out and "dry run: nothing written" in out
    assert not (tmp_path / "runs").exists()


def test_two_phase_pipeline_end_to_end_then_rerun_skips(
    tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tiny_pipeline(tmp_path, tiny_model)
    assert main(["pipeline", str(path)]) == 0
    pipe = pl.load_pipeline(path)
    state = tomllib.loads((pipe.output / pl.STATE_FILE).read_text())
    rows = {r["name"]: r for r in state["phase"]}
    assert [r["status"] for r in state["phase"]] == ["done", "done"]
    # Phase 1: no kernel, keep all, every sample of 6 probes x 3.
    assert (
        rows["baseline"]["generated"]
        == rows["baseline"]["kept"]
        == rows["baseline"]["examples"]
        == 18
    )
    assert (
        rows["baseline"]["train"] + rows["baseline"]["valid"] == 18
        and "final_loss" not in rows["baseline"]
    )
    # Phase 2: the battery was rephrased first (6 -> 24 probes), then distilled with the kernel.
    prompts = json.loads(pipe.prompts_file(1).read_text())
    assert len(prompts) == 24 and sum(p["id"].endswith("_R_PERS") for p in prompts) == 6
    lines = [json.loads(x) for x in pipe.distill_file(1).read_text().splitlines()]
    assert {ln["meta"]["probe_id"] for ln in lines[:-1]} == {p["id"] for p in prompts}
    assert all(ln["meta"]["kernel"] == "ethics-demo" for ln in lines[:-1])
    assert rows["kernel"]["generated"] == 48 and rows["kernel"]["examples"] == 24  # best: 1 a probe
    train = (pipe.data_dir(1) / "train.jsonl").read_text().splitlines()
    assert len(train) == rows["kernel"]["train"] == 21
    assert (pipe.adapter_dir(1) / "adapters.safetensors").is_file()
    assert rows["kernel"]["final_loss"] > 0 and rows["kernel"]["final_val_loss"] > 0
    out = capsys.readouterr().out
    assert re.search(
        r"phase 2 kernel: status done, generated 48, kept 48 \(100\.0%\), examples 24 "
        r"\(train 21, valid 3\), avg kept score -?\d+\.\d\d, final train loss \d+\.\d{3}",
        out,
    )

    stamps = {
        f: f.stat().st_mtime_ns
        for f in pipe.output.rglob("*")
        if f.is_file() and f.name != pl.STATE_FILE
    }
    assert main(["pipeline", str(path)]) == 0
    err = capsys.readouterr().err
    assert err.count("distill already complete") == 2
    assert {f: f.stat().st_mtime_ns for f in stamps} == stamps  # nothing redone or rewritten


def test_only_one_phase(tiny_model: Path, tmp_path: Path) -> None:
    path = tiny_pipeline(tmp_path, tiny_model)
    assert main(["pipeline", str(path), "--only", "baseline"]) == 0
    pipe = pl.load_pipeline(path)
    assert pipe.distill_file(0).is_file() and not pipe.phase_dir(1).exists()
    assert main(["pipeline", str(path), "--only", "nope"]) == 2


def test_a_phase_that_keeps_nothing_stops_the_pipeline(
    tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tiny_pipeline(tmp_path, tiny_model, **{"threshold = -100.0": "threshold = 1000.0"})
    assert main(["pipeline", str(path)]) == 1
    assert (
        "phase 'baseline': no sample reached the threshold 1000.0 (18 generated)"
        in capsys.readouterr().err
    )
    pipe = pl.load_pipeline(path)
    rows = pl.read_state(pipe)
    assert rows["baseline"]["status"] == "nothing-kept" and rows["baseline"]["kept"] == 0
    assert not pipe.data_dir(0).exists() and not pipe.phase_dir(1).exists()


def test_bad_inputs_fail_before_any_work(
    tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "empty.json"
    empty.write_text("[]", encoding="utf-8")
    path = tiny_pipeline(
        tmp_path, tiny_model, **{'prompts = "ccp6"\nrephrase': f'prompts = "{empty}"\nrephrase'}
    )
    assert main(["pipeline", str(path)]) == 2
    assert "phase 'kernel': " in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()  # phase 1 did not start either
    path = tiny_pipeline(
        tmp_path, tiny_model, **{'kernel = "ethics-demo"': 'kernel = "no-such-kernel"'}
    )
    assert main(["pipeline", str(path)]) == 2
    assert "phase 'kernel': kernel" in capsys.readouterr().err
    path = tiny_pipeline(tmp_path, tmp_path / "no-model")
    assert main(["pipeline", str(path)]) == 2
    assert "model folder not found" in capsys.readouterr().err


def chained_pipeline(tmp_path: Path, model: Path) -> Path:
    text = (EXAMPLES / "tiny-chained.toml").read_text(encoding="utf-8")
    text = re.sub(r'^model = ".*"$', f'model = "{model}"', text, flags=re.M)
    text = re.sub(r'^output = ".*"$', f'output = "{tmp_path / "runs"}"', text, flags=re.M)
    path = tmp_path / "chained.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_chained_phases_start_from_the_previous_phase_and_keep_the_baseline_data(
    tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = chained_pipeline(tmp_path, tiny_model)
    assert main(["pipeline", str(path), "--dry-run"]) == 0
    plan = capsys.readouterr().out
    pipe = pl.load_pipeline(path)
    assert f"starts from phase 1's adapter {pipe.adapter_dir(0)} on {tiny_model}" in plan
    assert f"starts from phase 2 fused: {pipe.adapter_dir(1)} merged into {tiny_model}" in plan
    assert f"mix in phase 1 baseline-lock's data {pipe.data_dir(0)}" in plan
    assert "(continuing the previous adapter)" in plan

    assert main(["pipeline", str(path)]) == 0
    rows = pl.read_state(pipe)
    assert [rows[p.name]["status"] for p in pipe.phases] == ["done"] * 3
    # Phase 2 sampled with phase 1's adapter and continued it on the same base model.
    meta = json.loads(pipe.distill_file(1).read_text().splitlines()[0])["meta"]
    assert meta["adapter"] == str(pipe.adapter_dir(0)) and meta["model"] == str(tiny_model)
    cfg2 = tomllib.loads((pipe.adapter_dir(1) / "lemlab-train.toml").read_text())["train"]
    assert cfg2["model"] == str(tiny_model)
    assert cfg2["resume_adapter_file"] == str(pipe.adapter_dir(0) / "adapters.safetensors")
    # Phase 3 sampled from and trained on phase 2 merged into the model.
    fused = pipe.fused_dir(1)
    assert (fused / "lemlab-fused.json").is_file() and rows["ethics"]["fused"] == str(fused)
    meta3 = json.loads(pipe.distill_file(2).read_text().splitlines()[0])["meta"]
    assert meta3["model"] == str(fused) and "adapter" not in meta3
    cfg3 = tomllib.loads((pipe.adapter_dir(2) / "lemlab-train.toml").read_text())["train"]
    assert cfg3["model"] == str(fused) and cfg3["data"] == str(pipe.train_data_dir(2))
    # The baseline-lock lines stay in phase 2's and phase 3's training data, after their own.
    base_train = (pipe.data_dir(0) / "train.jsonl").read_text()
    for i in (1, 2):
        own = (pipe.data_dir(i) / "train.jsonl").read_text()
        assert (pipe.train_data_dir(i) / "train.jsonl").read_text() == own + base_train
        assert rows[pipe.phases[i].name]["mixed_from"] == ["baseline-lock"]
    assert not pipe.fused_dir(0).exists()  # nothing starts from phase 1 fused
    # The [eval] battery ran after each training: scores beside the phase's loss.
    out = capsys.readouterr().out
    for i, ph in enumerate(pipe.phases):
        summary = json.loads((pipe.phase_dir(i) / "eval.jsonl").read_text().splitlines()[-1])
        avg = {c["name"]: c["avg_lek"] for c in summary["conditions"]}
        row = rows[ph.name]
        assert (row["battery_before"], row["battery_after"]) == (avg["baseline"], avg["trained"])
        assert summary["model"] == str(pipe.input_model(i))
        assert re.search(
            rf"phase {i + 1} {ph.name}: .*final val loss \d+\.\d{{3}}, battery "
            rf"{avg['baseline']:.2f} -> {avg['trained']:.2f} \(",
            out,
        )

    stamps = {
        f: f.stat().st_mtime_ns
        for f in pipe.output.rglob("*")
        if f.is_file() and f.name != pl.STATE_FILE
    }
    assert main(["pipeline", str(path)]) == 0  # a rerun redoes nothing (no second fuse either)
    assert {f: f.stat().st_mtime_ns for f in stamps} == stamps
    capsys.readouterr()
    assert main(["pipeline", str(path), "--only", "reinforce"]) == 0


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            '[[phase]]\nname = "a"\nprompts = "p"\nstart_from = "previous-adapter"\n[phase.train]\niters = 2',
            "needs a previous phase",
        ),
        (
            '[[phase]]\nname = "a"\nprompts = "p"\n[[phase]]\nname = "b"\nprompts = "p"\nstart_from = "previous-fused"',
            "phase 1 (a) trains no adapter",
        ),
        (
            '[[phase]]\nname = "a"\nprompts = "p"\nstart_from = "parent"',
            "start_from must be one of base, previous-adapter, previous-fused",
        ),
        (
            '[[phase]]\nname = "a"\nprompts = "p"\n[phase.train]\niters = 2\n[[phase]]\nname = "b"\nprompts = "p"\n'
            'start_from = "previous-adapter"\n[phase.train]\niters = 2\nrank = 4',
            "rank must match it (8, not 4)",
        ),
        (
            '[[phase]]\nname = "a"\nprompts = "p"\nmix_data = ["b"]\n[phase.train]\niters = 2\n[[phase]]\nname = "b"\nprompts = "p"',
            "mix_data names 'b', which is not an earlier phase",
        ),
        (
            '[[phase]]\nname = "a"\nprompts = "p"\n[[phase]]\nname = "b"\nprompts = "p"\nmix_data = ["a"]',
            "mix_data is for training",
        ),
        ('[[phase]]\nname = "a"\nprompts = "p"\nmix_data = "a"', "mix_data"),
        (
            '[[phase]]\nname = "a"\nprompts = "p"\n[phase.train]\niters = 2\nresume_adapter_file = "x"',
            "resume_adapter_file is set by the pipeline",
        ),
        (
            '[[phase]]\nname = "a"\nprompts = "p"\ntruncated = "trim"',
            "truncated must be one of keep, drop",
        ),
    ],
)
def test_bad_chaining(tmp_path: Path, body: str, message: str) -> None:
    path = tmp_path / "p.toml"
    path.write_text('model = "m"\noutput = "o"\n' + body, encoding="utf-8")
    with pytest.raises(LemlabError, match=re.escape(message)):
        pl.load_pipeline(path)
