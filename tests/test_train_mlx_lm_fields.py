"""The training child mirrors `mlx_lm.lora.train_model`: every mlx-lm option is mapped to a
TrainingConfig field or explicitly not applicable, every TrainingArgs field is passed, and the
optimizer and schedule settings match mlx's own signatures. These fail when mlx-lm (or mlx)
gains or drops an option lemlab does not account for. Then real short runs with gradient
accumulation, a warmup + cosine schedule, optimizer settings, and a full fine-tune."""

from __future__ import annotations

import dataclasses
import inspect
import json
import re
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from support.train import read_events, run_lemlab, write_chat_data

from lemlab.cli import main
from lemlab.core.errors import LemlabError
from lemlab.core.training.config import (
    FIELD_NAMES,
    FINE_TUNE_TYPES,
    LR_SCHEDULES,
    MLX_LM_FIXED,
    OPTIMIZER_SETTINGS,
    OPTIMIZERS,
    TrainingConfig,
    load_config_toml,
    resolve_config,
    write_config_toml,
)
from lemlab.engine.train_child import training_args

# mlx-lm options with no meaning in a lemlab run (lemlab's MLX_LM_FIXED holds the value each
# gets in adapter_config.json). Adding a name here is a decision, not a fix for a failing test.
NOT_APPLICABLE = {
    "train",  # the child only trains
    "test",
    "test_batches",  # no test-set pass: lemlab evaluates with batteries
    "config",  # mlx-lm's YAML; lemlab reads its own TOML (`lemlab train -c`)
    "report_to",
    "project_name",  # wandb / swanlab; lemlab writes events.jsonl
    "trust_remote_code",  # never: models load without their own code
}
LORA_FIELDS = {"rank", "scale", "dropout"}  # nested under lora_parameters in mlx-lm
# Defaults lemlab chooses on purpose (config.py's docstring: the safe small-model settings), and
# fields whose "unset" spelling differs (TOML has no null; model and data have no default here).
OWN_DEFAULTS = {
    "iters",
    "batch_size",
    "num_layers",
    "learning_rate",
    "model",
    "data",
    "resume_adapter_file",
    "optimizer_config",
    "lr_schedule",
}


def test_every_mlx_lm_option_is_a_field_or_not_applicable() -> None:
    from mlx_lm.lora import CONFIG_DEFAULTS

    assert set(MLX_LM_FIXED) == NOT_APPLICABLE
    mapped = (set(FIELD_NAMES) - LORA_FIELDS) | {"lora_parameters"}
    assert not mapped & NOT_APPLICABLE
    missing = set(CONFIG_DEFAULTS) - mapped - NOT_APPLICABLE
    assert not missing, f"mlx-lm options lemlab neither maps nor rules out: {sorted(missing)}"
    gone = (mapped | NOT_APPLICABLE) - set(CONFIG_DEFAULTS)
    assert not gone, f"lemlab settings mlx-lm no longer has: {sorted(gone)}"
    assert set(CONFIG_DEFAULTS["lora_parameters"]) == LORA_FIELDS
    assert set(CONFIG_DEFAULTS["optimizer_config"]) == set(OPTIMIZERS)
    # adapter_config.json carries exactly mlx-lm's keys, for either fine-tune shape.
    for kind in FINE_TUNE_TYPES:
        assert set(TrainingConfig(fine_tune_type=kind).mlx_lm_args()) == set(CONFIG_DEFAULTS)
    # Shared defaults stay mlx-lm's (the four safe ones are lemlab's own on purpose).
    ours = TrainingConfig()
    for name in mapped - OWN_DEFAULTS - {"lora_parameters"}:
        assert getattr(ours, name) == CONFIG_DEFAULTS[name], name
    assert {k: getattr(ours, k) for k in LORA_FIELDS} == CONFIG_DEFAULTS["lora_parameters"]


def test_mlx_lm_command_line_has_no_option_beyond_its_config() -> None:
    from mlx_lm.lora import CONFIG_DEFAULTS, build_parser

    actions = {a.dest: a for a in build_parser()._actions if a.dest != "help"}
    assert set(actions) <= set(CONFIG_DEFAULTS), sorted(set(actions) - set(CONFIG_DEFAULTS))
    assert tuple(actions["optimizer"].choices) == OPTIMIZERS
    assert tuple(actions["fine_tune_type"].choices) == FINE_TUNE_TYPES


def test_every_training_args_field_is_passed() -> None:
    from mlx_lm.tuner.trainer import TrainingArgs

    passed = training_args(TrainingConfig(grad_accumulation_steps=3, clear_cache_threshold=5))
    assert set(passed) == {f.name for f in dataclasses.fields(TrainingArgs)}
    targs = TrainingArgs(**passed)
    assert (targs.grad_accumulation_steps, targs.clear_cache_threshold) == (3, 5)


def test_train_and_train_model_use_nothing_the_child_does_not_mirror() -> None:
    from mlx_lm.lora import train_model
    from mlx_lm.tuner.trainer import train

    # train(): the child passes all but `loss` (default_loss, which train_model keeps too).
    assert set(inspect.signature(train).parameters) == {
        "model",
        "optimizer",
        "train_dataset",
        "val_dataset",
        "args",
        "loss",
        "iterate_batches",
        "training_callback",
    }
    # Every option train_model reads is one prepare / build_optimizer / training_args handles.
    used = set(re.findall(r"\bargs\.(\w+)", inspect.getsource(train_model)))
    assert used == {
        "seed",
        "num_layers",
        "fine_tune_type",
        "lora_parameters",
        "resume_adapter_file",
        "adapter_path",
        "batch_size",
        "iters",
        "val_batches",
        "steps_per_report",
        "steps_per_eval",
        "save_every",
        "max_seq_length",
        "grad_checkpoint",
        "grad_accumulation_steps",
        "lr_schedule",
        "learning_rate",
        "optimizer",
        "optimizer_config",
    }


def _kind_of(param: inspect.Parameter) -> str:
    default = param.default
    if isinstance(default, bool):
        return "bool"
    if isinstance(default, int):
        return "int"
    if isinstance(default, list | tuple):
        assert len(default) == 2
        return "pair"
    return "float"  # float, or Optional[float] = None (Adafactor's beta_1)


def test_optimizer_settings_match_mlx_signatures() -> None:
    import mlx.optimizers as optim

    classes = {
        "adam": optim.Adam,
        "adamw": optim.AdamW,
        "muon": optim.Muon,
        "sgd": optim.SGD,
        "adafactor": optim.Adafactor,
    }
    assert set(classes) == set(OPTIMIZER_SETTINGS) == set(OPTIMIZERS)
    for name, cls in classes.items():
        params = {
            k: p
            for k, p in inspect.signature(cls.__init__).parameters.items()
            if k not in ("self", "learning_rate")
        }
        assert {k: _kind_of(p) for k, p in params.items()} == OPTIMIZER_SETTINGS[name], name


def test_schedules_match_mlx_schedulers() -> None:
    from mlx.optimizers import schedulers

    public = {
        n
        for n, f in vars(schedulers).items()
        if inspect.isfunction(f) and f.__module__ == schedulers.__name__ and not n.startswith("_")
    }
    assert public - {"join_schedules"} == set(LR_SCHEDULES)  # join takes schedules, not numbers
    for name, (params, required) in LR_SCHEDULES.items():
        sig = inspect.signature(getattr(schedulers, name)).parameters.values()
        assert [p.name for p in sig] == [n for n, _ in params], name
        assert sum(p.default is inspect.Parameter.empty for p in sig) == required, name


def test_new_settings_round_trip_and_reach_mlx_lm_args(tmp_path: Path) -> None:
    schedule = {
        "name": "cosine_decay",
        "arguments": [1e-5, 100, 1e-7],
        "warmup": 10,
        "warmup_init": 0.0,
    }
    cfg = resolve_config(
        {
            "model": str(tmp_path / "m"),
            "data": str(tmp_path / "d"),
            "adapter_path": str(tmp_path / "a"),
            "fine_tune_type": "dora",
            "optimizer": "adamw",
            "optimizer_config": {"adamw": {"weight_decay": 0.05, "betas": [0.9, 0.95]}},
            "lr_schedule": schedule,
            "grad_accumulation_steps": 4,
            "clear_cache_threshold": 1 << 30,
        }
    )
    write_config_toml(cfg, tmp_path / "lemlab-train.toml")
    assert load_config_toml(tmp_path / "lemlab-train.toml") == cfg
    args = cfg.mlx_lm_args()
    assert args["lr_schedule"] == schedule and args["grad_accumulation_steps"] == 4
    assert args["optimizer_config"]["adamw"] == {"weight_decay": 0.05, "betas": [0.9, 0.95]}
    assert cfg.peak_learning_rate == 1e-5
    assert TrainingConfig().mlx_lm_args()["lr_schedule"] is None  # {} in TOML, None for mlx-lm
    full = TrainingConfig(fine_tune_type="full").mlx_lm_args()
    assert full["lora_parameters"] is None  # as train_model records a full fine-tune
    plain = TrainingConfig(adapter_path=str(tmp_path / "a"))
    write_config_toml(plain, tmp_path / "plain.toml")  # empty tables round-trip too
    assert load_config_toml(tmp_path / "plain.toml") == plain


@pytest.mark.parametrize(
    ("train_table", "message"),
    [
        ({"fine_tune_type": "qlora"}, "fine_tune_type must be one of lora, dora, full"),
        ({"grad_accumulation_steps": 0}, "grad_accumulation_steps must be at least 1"),
        ({"grad_accumulation_steps": 1.5}, "grad_accumulation_steps must be int"),
        ({"clear_cache_threshold": -1}, "clear_cache_threshold must be 0"),
        ({"optimizer_config": {"adamx": {}}}, "unknown optimizer 'adamx'"),
        (
            {"optimizer_config": {"adamw": {"weight_decy": 0.1}}},
            "adamw takes betas, eps, weight_decay",
        ),
        (
            {"optimizer_config": {"adam": {"betas": [0.9]}}},
            "optimizer_config.adam.betas must be a list of two",
        ),
        (
            {"optimizer_config": {"sgd": {"nesterov": 1}}},
            "optimizer_config.sgd.nesterov must be true or false",
        ),
        ({"optimizer_config": {"sgd": 3}}, "optimizer_config.sgd must be a table"),
        ({"optimizer_config": "adam"}, "optimizer_config must be dict"),
        (
            {"lr_schedule": {"name": "cosine", "arguments": [1e-5, 10]}},
            "lr_schedule.name must be one of cosine_decay",
        ),
        (
            {"lr_schedule": {"name": "cosine_decay", "arguments": [1e-5]}},
            "cosine_decay takes [init, decay_steps, end]",
        ),
        (
            {"lr_schedule": {"name": "cosine_decay", "arguments": [1e-5, 2.5]}},
            "decay_steps must be a whole number",
        ),
        (
            {"lr_schedule": {"name": "cosine_decay", "arguments": [0, 10]}},
            "init must be a positive",
        ),
        (
            {"lr_schedule": {"name": "cosine_decay", "arguments": [1e-5, 10], "warmup": -1}},
            "lr_schedule.warmup",
        ),
        (
            {"lr_schedule": {"name": "cosine_decay", "arguments": [1e-5, 10], "warm": 5}},
            "unknown key 'warm'",
        ),
    ],
)
def test_bad_new_settings_exit_2_with_one_line(
    train_table: dict[str, Any], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(
        tomli_w.dumps({"schema_version": 1, "train": {"model": "m", "data": "d", **train_table}})
    )
    with pytest.raises(LemlabError, match=re.escape(message)):
        load_config_toml(path)
    code = main(["train", "-c", str(path), "--adapter-path", str(tmp_path / "a"), "--yes"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.count("\n") == 0 and message in err, err
    assert not (tmp_path / "a").exists()


# ---------------------------------------------------------------- real runs on the tiny model


def _train(tmp_path: Path, model: Path, **settings: Any) -> Path:
    adapter = tmp_path / "adapter"
    table = {
        "model": str(model),
        "data": str(write_chat_data(tmp_path / "data", n_train=8, n_valid=2)),
        "adapter_path": str(adapter),
        "batch_size": 1,
        "num_layers": 1,
        "steps_per_report": 2,
        "steps_per_eval": 100,
        "save_every": 100,
        **settings,
    }
    (tmp_path / "cfg.toml").write_text(tomli_w.dumps({"schema_version": 1, "train": table}))
    res = run_lemlab("train", "-c", tmp_path / "cfg.toml", "--yes", timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    events = read_events(adapter / "events.jsonl")
    assert events[-1]["event"] == "done"
    assert (adapter / "adapters.safetensors").is_file()
    return adapter


def test_accumulation_and_warmup_cosine_schedule_run(tiny_model: Path, tmp_path: Path) -> None:
    import mlx.core as mx
    from mlx_lm.tuner.utils import build_schedule

    schedule = {
        "name": "cosine_decay",
        "arguments": [1e-2, 4, 1e-3],
        "warmup": 2,
        "warmup_init": 0.0,
    }
    adapter = _train(
        tmp_path,
        tiny_model,
        iters=8,
        grad_accumulation_steps=2,
        lr_schedule=schedule,
        optimizer="adamw",
        optimizer_config={"adamw": {"weight_decay": 0.0}},
    )
    train = [e for e in read_events(adapter / "events.jsonl") if e["event"] == "train"]
    assert [e["iteration"] for e in train] == [2, 4, 6, 8]
    # Two batches per update: after iteration 2k the optimizer has taken k steps, and mlx's
    # reported rate is the schedule at step k - 1 (warmup from 0, then the cosine).
    sched = build_schedule(schedule)
    expected = [sched(mx.array(k - 1)).item() for k in (1, 2, 3, 4)]
    assert [e["learning_rate"] for e in train] == pytest.approx(expected, rel=1e-4)
    assert len(set(round(e["learning_rate"], 9) for e in train)) > 1
    cfg = json.loads((adapter / "adapter_config.json").read_text())
    assert cfg["grad_accumulation_steps"] == 2 and cfg["lr_schedule"] == schedule
    assert cfg["optimizer_config"]["adamw"] == {"weight_decay": 0.0}


def test_full_fine_tune_saves_the_layers_own_weights(tiny_model: Path, tmp_path: Path) -> None:
    import mlx.core as mx

    adapter = _train(tmp_path, tiny_model, iters=2, fine_tune_type="full", learning_rate=1e-3)
    weights = mx.load(str(adapter / "adapters.safetensors"))
    names = set(weights)
    assert names and not any("lora" in n for n in names)
    assert all(".layers.1." in n for n in names)  # the top layer of 2 (num_layers = 1), all of it
    assert any(n.endswith("self_attn.q_proj.weight") for n in names)
    cfg = json.loads((adapter / "adapter_config.json").read_text())
    assert cfg["fine_tune_type"] == "full" and cfg["lora_parameters"] is None
    # mlx-lm loads it back as a full fine-tune.
    from mlx_lm.tuner.utils import load_adapters
    from mlx_lm.utils import load

    model, _ = load(str(tiny_model))
    load_adapters(model, str(adapter))
    from mlx.utils import tree_flatten

    loaded = dict(tree_flatten(model.parameters()))
    some = sorted(names)[0]
    assert mx.array_equal(loaded[some], weights[some]).item()
