"""`lemlab curriculum`: two real stages with a fuse between them, resume, refusals, parsing."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest
from support.train import read_events, run_lemlab, write_chat_data

from lemlab.cli import main
from lemlab.core.errors import LemlabError
from lemlab.core.training.curriculum import load_curriculum

REPO = Path(__file__).resolve().parents[1]


def _write_curriculum(tmp_path: Path, model: Path, stages: int = 2) -> Path:
    write_chat_data(tmp_path / "data-a")
    write_chat_data(tmp_path / "data-b", n_train=8)
    text = (
        f'schema_version = 1\nbase_model = "{model}"\noutput = "out"\n'
        "[defaults]\nsteps_per_report = 5\nsteps_per_eval = 10\nsave_every = 10\n"
        "learning_rate = 5e-6\nnum_layers = 1\nbatch_size = 1\n"
    )
    for i, (name, data) in enumerate([("ethics", "data-a"), ("watts zen", "data-b")][:stages]):
        text += f'[[stage]]\nname = "{name}"\ndata = "{data}"\niters = {20 if i == 0 else 10}\n'
    path = tmp_path / "cur.toml"
    path.write_text(text)
    return path


def test_two_stages_with_fuse_end_to_end(tiny_model: Path, tmp_path: Path) -> None:
    cur = _write_curriculum(tmp_path, tiny_model)
    res = run_lemlab("curriculum", cur, "--fuse", "--yes")
    assert res.returncode == 0, res.stderr
    out = tmp_path / "out"
    fused = out / "01-ethics" / "fused"
    assert (fused / "config.json").is_file() and (fused / "lemlab-fused.json").is_file()
    stage2 = out / "02-watts-zen" / "adapter"
    # The second stage trained on the merged weights, not the base model.
    assert json.loads((stage2 / "adapter_config.json").read_text())["model"] == str(fused)
    assert tomllib.loads((stage2 / "lemlab-train.toml").read_text())["train"]["model"] == str(fused)
    for adapter in (out / "01-ethics" / "adapter", stage2):
        assert read_events(adapter / "events.jsonl")[-1]["event"] == "done"
    assert not (out / "02-watts-zen" / "fused").exists()  # nothing after the last stage needs it
    state = tomllib.loads((out / "curriculum-state.toml").read_text())
    assert [s["status"] for s in state["stage"]] == ["fused", "trained"]
    again = run_lemlab("curriculum", cur, "--fuse", "--yes")  # resumable: both skipped
    assert again.returncode == 0 and again.stdout.count("already trained, skipped") == 2


def test_refuses_without_fuse_and_dry_run_writes_nothing(
    tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cur = _write_curriculum(tmp_path, tiny_model)
    assert main(["curriculum", str(cur)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "fusing is required between stages" in err and "--fuse" in err
    assert main(["curriculum", str(cur), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "stage 1 ethics" in out and "then fuse ->" in out and "dry run: nothing written" in out
    assert not (tmp_path / "out").exists()
    # A later stage alone needs the earlier stage's fused model first.
    assert main(["curriculum", str(cur), "--only", "2", "--yes"]) == 2
    assert "needs stage 'ethics' fused first" in capsys.readouterr().err


def test_single_stage_needs_no_fuse(tiny_model: Path, tmp_path: Path) -> None:
    cur = _write_curriculum(tmp_path, tiny_model, stages=1)
    res = run_lemlab("curriculum", cur, "--yes")
    assert res.returncode == 0, res.stderr
    assert not (tmp_path / "out" / "01-ethics" / "fused").exists()


def test_curriculum_parse_errors(tmp_path: Path) -> None:
    bad = tmp_path / "c.toml"
    cases = {
        'base_model = "m"\noutput = "o"\n': "at least one [[stage]]",
        'base_model = "m"\noutput = "o"\n[[stage]]\nname = "a"\n': "data (a folder) is required",
        'base_model = "m"\noutput = "o"\n[[stage]]\nname = "a"\ndata = "d"\nitres = 5\n': "did you mean iters",
        'base_model = "m"\noutput = "o"\n[[stage]]\nname = "a"\ndata = "d"\n[[stage]]\nname = "a"\ndata = "d"\n': "duplicate",
        'output = "o"\n[[stage]]\nname = "a"\ndata = "d"\n': "base_model",
        'base_model = "m"\noutput = "o"\n[[stage]]\nname = "a"\ndata = "d"\nmodel = "x"\n': "set by the curriculum",
        'base_model = "m"\noutput = "o"\n[eval]\nlimit = 2\n[[stage]]\nname = "a"\ndata = "d"\n': "prompts (a battery) is required",
        'base_model = "m"\noutput = "o"\n[eval]\nprompts = "ccp6"\nlimt = 2\n[[stage]]\nname = "a"\ndata = "d"\n': "did you mean limit",
        'base_model = "m"\noutput = "o"\n[eval]\nprompts = "ccp6"\nmax_tokens = 0\n[[stage]]\nname = "a"\ndata = "d"\n': "max_tokens must be at least 1",
    }
    for text, message in cases.items():
        bad.write_text(text)
        with pytest.raises(LemlabError) as info:
            load_curriculum(bad)
        assert message in str(info.value)


def test_shipped_example_parses_with_recommended_settings() -> None:
    cur = load_curriculum(REPO / "examples" / "curriculum-1b.toml")
    assert [s.name for s in cur.stages] == ["ethics", "watts-zen", "lek-reinforcement"]
    cfg = cur.stage_config(0)
    assert (cfg.learning_rate, cfg.num_layers, cfg.batch_size, cfg.iters) == (5e-6, 8, 1, 200)
    assert sum(cur.stage_config(i).iters for i in range(3)) == 400
    assert cfg.model == str(cur.base_model) and cur.stage_config(1).model == str(cur.fused_dir(0))


def _finish_stage(cur_path: Path, folder: Path) -> None:
    """A stage whose adapter run ended with a done event (written as the training child would)."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = [{"event": "start", "total_iters": 2}, {"event": "done", "iteration": 2, "path": "x"}]
    (folder / "events.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))


def test_progress_steps_rows_and_fuse_job(tmp_path: Path) -> None:
    from lemlab.core.training.curriculum import CurriculumProgress, fuse_job, stage_rows

    model = tmp_path / "m"
    model.mkdir()
    (model / "model.safetensors").write_bytes(b"0" * 1000)
    (model / "adapters.safetensors").write_bytes(b"0" * 50)  # never counted as model weights
    path = _write_curriculum(tmp_path, model)
    cur = load_curriculum(path)
    fused: set[Path] = set()
    check = fused.__contains__

    def statuses() -> list[str]:
        return [r.status for r in stage_rows(cur, check)]

    progress = CurriculumProgress(cur)
    assert progress.next_step(check) == ("train", 0) and statuses() == ["pending", "pending"]
    progress.begin_training(0)
    assert (
        tomllib.loads((cur.output / "curriculum-state.toml").read_text())["stage"][0]["status"]
        == "training"
    )
    assert statuses() == ["stopped", "pending"]  # an attempt that never finished
    _finish_stage(path, cur.adapter_dir(0))
    assert progress.next_step(check) == ("fuse", 0) and statuses() == [
        "trained (not fused)",
        "pending",
    ]
    job = fuse_job(cur, 0)
    assert (job.model, job.adapter, job.out, job.size_bytes) == (
        model,
        cur.adapter_dir(0),
        cur.fused_dir(0),
        1000,
    )
    fused.add(cur.fused_dir(0))
    assert progress.next_step(check) == ("train", 1)
    assert fuse_job(cur, 1).model == cur.fused_dir(0)
    _finish_stage(path, cur.adapter_dir(1))
    assert progress.next_step(check) is None and statuses() == ["done", "done"]
    assert progress.statuses == {"ethics": "fused", "watts zen": "trained"}
    rows = stage_rows(cur, check)
    assert [(r.name, r.data, r.iters, r.learning_rate, r.num_layers) for r in rows] == [
        ("ethics", "data-a", 20, 5e-6, 1),
        ("watts zen", "data-b", 10, 5e-6, 1),
    ]


def test_eval_battery_after_each_stage_beside_its_loss(tiny_model: Path, tmp_path: Path) -> None:
    cur = _write_curriculum(tmp_path, tiny_model)
    text = cur.read_text().replace(
        "[defaults]", '[eval]\nprompts = "ccp6"\nlimit = 2\nmax_tokens = 6\n[defaults]'
    )
    cur.write_text(text)
    dry = run_lemlab("curriculum", cur, "--dry-run")
    assert (
        "then evaluate: battery ccp6 (first 2 probes, 6 tokens, v2), without and with the adapter"
        in dry.stdout
    )
    res = run_lemlab("curriculum", cur, "--fuse", "--yes", timeout=300)
    assert res.returncode == 0, res.stderr
    out = tmp_path / "out"
    state = {
        s["name"]: s for s in tomllib.loads((out / "curriculum-state.toml").read_text())["stage"]
    }
    for n, (name, folder) in enumerate([("ethics", "01-ethics"), ("watts zen", "02-watts-zen")], 1):
        lines = [json.loads(x) for x in (out / folder / "eval.jsonl").read_text().splitlines()]
        probes, summary = lines[:-1], lines[-1]
        assert [p["id"] for p in probes] == ["taiwan_direct", "taiwan_baltic"]
        assert all(list(p["conditions"]) == ["baseline", "trained"] for p in probes)
        avg = {c["name"]: c["avg_lek"] for c in summary["conditions"]}
        row = state[name]
        assert (row["battery_before"], row["battery_after"]) == (avg["baseline"], avg["trained"])
        assert (
            f"stage {n} {name}: val loss {row['final_val_loss']:.4f} · battery "
            f"{avg['baseline']:.2f} -> {avg['trained']:.2f} ({avg['trained'] - avg['baseline']:+.2f})"
            in res.stdout
        )
    # Stage 2's baseline is stage 1 fused: the A/B file names that model.
    assert json.loads((out / "02-watts-zen" / "eval.jsonl").read_text().splitlines()[-1])[
        "model"
    ] == str(out / "01-ethics" / "fused")
    stamp = (out / "01-ethics" / "eval.jsonl").stat().st_mtime_ns
    again = run_lemlab("curriculum", cur, "--fuse", "--yes")
    assert again.returncode == 0 and "battery" in again.stdout
    assert (out / "01-ethics" / "eval.jsonl").stat().st_mtime_ns == stamp  # not evaluated twice
