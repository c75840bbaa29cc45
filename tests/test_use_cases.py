"""The headless use cases the CLI commands and the TUI share (lemlab.core ... prepare, preflight):
keyword arguments in, a dataclass out for good input, one LemlabError line for bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.train import write_chat_data
from support.tui import fake_model_dir

from lemlab.core.engine_api import Sampler
from lemlab.core.errors import LemlabError


def test_prepare_ab_returns_its_setup(tmp_path: Path) -> None:
    from lemlab.core.ab.prepare import ABSetup, prepare_ab

    model = fake_model_dir(tmp_path)
    out = tmp_path / "run.jsonl"
    setup = prepare_ab(
        model=str(model),
        prompts="ccp6",
        output=out,
        sampler=Sampler(max_tokens=8),
        kernels=["ethics-demo"],
        limit=2,
    )
    try:
        assert isinstance(setup, ABSetup)
        assert [p.id for p in setup.probes] == [p.id for p in setup.battery.probes[:2]]
        assert setup.plan.names == ["baseline", "ethics-demo"]
        assert setup.settings.model == str(model) and setup.specs == [str(model)]
        assert not setup.remote and setup.endpoints is None
        assert not setup.opened.already_complete and setup.opened.lock is not None
    finally:
        setup.release()
    # The lock is let go: the same output opens again (resumed, nothing written yet).
    prepare_ab(
        model=str(model),
        prompts="ccp6",
        output=out,
        sampler=Sampler(max_tokens=8),
        kernels=["ethics-demo"],
        limit=2,
        resume=True,
    ).release()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"limit": 0}, "--limit must be at least 1"),
        ({"sampler": Sampler(max_tokens=0)}, "--max-tokens must be at least 1"),
        ({"sampler": Sampler(top_p=0.0)}, r"--top-p must be in \(0, 1\]"),
        ({"prompts": "no-such-battery"}, "no-such-battery"),
        ({"scorer": "v9"}, "v9"),
    ],
)
def test_prepare_ab_refuses_bad_input(
    tmp_path: Path, changes: dict[str, object], message: str
) -> None:
    from lemlab.core.ab.prepare import prepare_ab

    kw: dict[str, object] = {
        "model": str(fake_model_dir(tmp_path)),
        "prompts": "ccp6",
        "output": tmp_path / "run.jsonl",
        "sampler": Sampler(),
        **changes,
    }
    with pytest.raises(LemlabError, match=message):
        prepare_ab(**kw)  # type: ignore[arg-type]
    assert not (tmp_path / "run.jsonl").exists()


def _curriculum(
    tmp_path: Path, model: Path, *, data: str = "data", eval_prompts: str | None = None
) -> Path:
    write_chat_data(tmp_path / "data")
    text = f'schema_version = 1\nbase_model = "{model}"\noutput = "out"\n'
    if eval_prompts:
        text += f'[eval]\nprompts = "{eval_prompts}"\nlimit = 1\n'
    text += f'[defaults]\nnum_layers = 1\n[[stage]]\nname = "only"\ndata = "{data}"\niters = 10\n'
    path = tmp_path / "cur.toml"
    path.write_text(text)
    return path


def test_preflight_training_returns_figures_or_one_line(tmp_path: Path) -> None:
    from lemlab.core.training.config import GradientFigures, TrainingConfig
    from lemlab.core.training.preflight import preflight_training

    model, data = fake_model_dir(tmp_path), write_chat_data(tmp_path / "data")
    cfg = TrainingConfig(
        model=str(model), data=str(data), adapter_path=str(tmp_path / "a"), num_layers=1, iters=10
    )
    fig = preflight_training(cfg)
    assert isinstance(fig, GradientFigures) and fig.iters == 10
    cfg.num_layers = 16
    with pytest.raises(LemlabError, match="--num-layers 16 but the model has 2 layers"):
        preflight_training(cfg)
    cfg.num_layers, cfg.data = 1, str(tmp_path / "no-data")
    with pytest.raises(LemlabError):
        preflight_training(cfg)


def test_preflight_curriculum_returns_its_plan(tmp_path: Path) -> None:
    from lemlab.core.training.curriculum import load_curriculum
    from lemlab.core.training.preflight import CurriculumPlan, preflight_curriculum

    model = fake_model_dir(tmp_path)
    cur = load_curriculum(_curriculum(tmp_path, model, eval_prompts="ccp6"))
    plan = preflight_curriculum(cur, todo=range(len(cur.stages)))
    assert isinstance(plan, CurriculumPlan) and not plan.warned
    assert plan.lines[0].startswith("stage 1 only: ")
    assert any("then evaluate: battery ccp6" in line for line in plan.lines)

    bad = load_curriculum(_curriculum(tmp_path, model, eval_prompts="no-such-battery"))
    with pytest.raises(LemlabError, match=r"^\[eval\]: "):
        preflight_curriculum(bad, todo=[0])


def test_stage_eval_reads_a_finished_file_without_a_child(tmp_path: Path) -> None:
    from lemlab.core.training.stage_eval import EvalSettings, StageScores
    from lemlab.engine.stage_eval import run_stage_eval

    out = tmp_path / "eval.jsonl"
    summary = {
        "type": "summary",
        "total_probes": 1,
        "conditions": [{"name": "baseline", "avg_lek": 1.0}, {"name": "trained", "avg_lek": 2.5}],
    }
    out.write_text(json.dumps(summary) + "\n")
    said: list[str] = []
    scores = run_stage_eval(
        EvalSettings("ccp6"),
        model=tmp_path / "m",
        adapter=tmp_path / "a",
        out=out,
        announce=said.append,
    )
    assert isinstance(scores, StageScores) and (scores.before, scores.after) == (1.0, 2.5)
    assert said == []  # done before: no child, nothing announced


def test_prepare_distill_returns_its_job_or_one_line(tmp_path: Path) -> None:
    from lemlab.core.distill.prepare import DistillJob, prepare_distill

    model = fake_model_dir(tmp_path)
    job = prepare_distill(
        model=str(model),
        prompts="ccp6",
        output=tmp_path / "d.jsonl",
        limit=1,
        samples=2,
        threshold=1.0,
    )
    try:
        assert isinstance(job, DistillJob) and not job.remote and len(job.probes) == 1
        assert job.settings.samples == 2 and job.battery == "ccp6" and job.kernel_text is None
    finally:
        if job.state.lock is not None:
            job.state.lock.release()
    with pytest.raises(LemlabError, match="has no probes"):
        prepare_distill(model=str(model), prompts=[], output=tmp_path / "e.jsonl")
