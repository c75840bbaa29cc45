"""`lemlab train`: real LoRA runs on the tiny model, stop with SIGINT, config and bad input."""

from __future__ import annotations

import signal
import subprocess
import time
import tomllib
from pathlib import Path

import pytest
from support.train import lemlab_cmd, read_events, run_lemlab, write_chat_data

from lemlab.cli import main
from lemlab.core.errors import LemlabError
from lemlab.core.training.config import (
    ModelFacts,
    TrainingConfig,
    gradient_figures,
    load_config_toml,
    read_config_toml,
    read_model_facts,
    resolve_config,
    small_model_warning,
    write_config_toml,
)

TRAIN_FLAGS = [
    "--iters",
    "30",
    "--batch-size",
    "2",
    "--num-layers",
    "2",
    "--steps-per-report",
    "5",
    "--steps-per-eval",
    "10",
    "--save-every",
    "10",
    "--yes",
]


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return write_chat_data(tmp_path / "data")


def test_train_end_to_end(tiny_model: Path, data: Path, tmp_path: Path) -> None:
    adapter = tmp_path / "adapter"
    res = run_lemlab(
        "train", "--model", tiny_model, "--data", data, "--adapter-path", adapter, *TRAIN_FLAGS
    )
    assert res.returncode == 0, res.stderr
    assert "trained layers      2 / 2" in res.stdout and "effective gradient  ~60" in res.stdout
    events = read_events(adapter / "events.jsonl")  # every line is JSON
    kinds = [e["event"] for e in events]
    assert kinds[0] == "start" and kinds[-1] == "done" and kinds.count("done") == 1
    train = [e for e in events if e["event"] == "train"]
    assert [e["iteration"] for e in train] == [5, 10, 15, 20, 25, 30]
    assert train[-1]["train_loss"] < train[0]["train_loss"]
    assert {"learning_rate", "tokens_per_second", "peak_memory", "trained_tokens"} <= set(train[0])
    vals = [e for e in events if e["event"] == "val"]
    assert [(e["iteration"], e["weights_after"]) for e in vals] == [
        (1, 0),
        (10, 9),
        (20, 19),
        (30, 29),
    ]
    ckpts = [e for e in events if e["event"] == "checkpoint"]
    assert [e["iteration"] for e in ckpts] == [10, 20, 30]
    assert all(Path(e["path"]).is_file() for e in ckpts)
    assert (adapter / "adapters.safetensors").is_file() and (
        adapter / "adapter_config.json"
    ).is_file()
    cfg = tomllib.loads((adapter / "lemlab-train.toml").read_text())["train"]
    assert cfg["iters"] == 30 and cfg["model"] == str(tiny_model) and cfg["save_every"] == 10
    assert "train_loss" in (adapter / "train.log").read_text()  # mlx-lm's own table went to the log


def test_sigint_stops_cleanly_and_keeps_checkpoints(
    tiny_model: Path, data: Path, tmp_path: Path
) -> None:
    adapter = tmp_path / "adapter"
    cmd = lemlab_cmd(
        "train",
        "--model",
        tiny_model,
        "--data",
        data,
        "--adapter-path",
        adapter,
        "--iters",
        "100000",
        "--batch-size",
        "1",
        "--num-layers",
        "1",
        "--save-every",
        "5",
        "--steps-per-report",
        "5",
        "--steps-per-eval",
        "1000",
        "--yes",
    )
    proc = subprocess.Popen(
        cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    events_path = adapter / "events.jsonl"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if events_path.exists() and '"checkpoint"' in events_path.read_text():
            break
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    events = read_events(events_path)
    assert events[-1]["event"] == "stopped" and "SIGINT" in events[-1]["message"]
    ckpts = [e for e in events if e["event"] == "checkpoint"]
    assert ckpts and all(Path(e["path"]).is_file() for e in ckpts)
    assert (adapter / "adapters.safetensors").is_file()
    assert "stopped at iteration" in err


def _main_err(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(argv)
    return code, capsys.readouterr().err.strip()


def test_bad_inputs_exit_2_with_one_line(
    tiny_model: Path, data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["train", "--adapter-path", str(tmp_path / "a"), "--num-layers", "2", "--yes"]
    code, err = _main_err(
        base + ["--model", str(tiny_model), "--data", str(tmp_path / "nope")], capsys
    )
    assert code == 2 and err.count("\n") == 0 and "data folder not found" in err
    code, err = _main_err(
        base + ["--model", str(tmp_path / "nomodel"), "--data", str(data)], capsys
    )
    assert code == 2 and err.count("\n") == 0 and "model folder not found" in err
    lines = (data / "train.jsonl").read_text().splitlines()
    lines[6] = '{"messages": [{"role": "user", "content": "hi"}'  # truncated JSON
    lines[8] = '{"messages": [{"role": "robot", "content": "hi"}]}'
    (data / "train.jsonl").write_text("\n".join(lines) + "\n")
    code, err = _main_err(base + ["--model", str(tiny_model), "--data", str(data)], capsys)
    assert code == 2 and err.count("\n") == 0
    assert (
        "train.jsonl:7: not valid JSON" in err
        and "train.jsonl:9: message 0 has role 'robot'" in err
    )
    assert not (tmp_path / "a").exists()  # nothing written for bad input


def test_layer_count_and_warning_refusal(
    tiny_model: Path, data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [
        "train",
        "--model",
        str(tiny_model),
        "--data",
        str(data),
        "--adapter-path",
        str(tmp_path / "a"),
    ]
    code, err = _main_err(argv + ["--num-layers", "5", "--yes"], capsys)
    assert code == 2 and "model has 2 layers" in err
    code = main(argv + ["--num-layers", "2"])  # small-model warning, no terminal, no --yes
    captured = capsys.readouterr()
    assert code == 2 and "pass --yes" in captured.err and "warning: small model" in captured.out
    assert not (tmp_path / "a").exists()


def test_config_layers_and_toml_roundtrip(tmp_path: Path) -> None:
    (tmp_path / "cfg.toml").write_text(
        'schema_version = 1\n[train]\nmodel = "m"\ndata = "d"\niters = 50\nlearning_rate = 1\n'
        "[train.lora_parameters]\nrank = 4\n"
    )
    from_file = read_config_toml(tmp_path / "cfg.toml")
    assert from_file["model"] == str(tmp_path / "m") and from_file["rank"] == 4
    cfg = resolve_config(
        from_file, {"iters": 70, "batch_size": None, "adapter_path": str(tmp_path / "a")}
    )
    assert (cfg.iters, cfg.batch_size, cfg.learning_rate, cfg.rank) == (
        70,
        1,
        1.0,
        4,
    )  # batch: the safe default
    write_config_toml(cfg, tmp_path / "out" / "lemlab-train.toml")
    assert load_config_toml(tmp_path / "out" / "lemlab-train.toml") == cfg
    (tmp_path / "typo.toml").write_text("[train]\nlearnig_rate = 1e-5\n")
    with pytest.raises(LemlabError, match="did you mean learning_rate"):
        read_config_toml(tmp_path / "typo.toml")
    with pytest.raises(LemlabError, match="num_layers"):
        resolve_config({"num_layers": 0})


def test_effective_gradient_warning_for_1b_like_config_only() -> None:
    one_b = ModelFacts(num_layers=26, params=1_000_000_000)
    collapsed = TrainingConfig(iters=500, batch_size=4, num_layers=16, learning_rate=1e-5)
    recommended = TrainingConfig(iters=400, batch_size=1, num_layers=8, learning_rate=5e-6)
    fig = gradient_figures(collapsed, one_b)
    assert fig.effective_gradient == 2000 and fig.layer_fraction == pytest.approx(16 / 26)
    warning = "\n".join(small_model_warning(fig))
    assert "learning rate" in warning and "62% of layers" in warning and "batch size 4" in warning
    assert (
        "--learning-rate 5e-06" in warning
        and "--num-layers 8" in warning
        and "--batch-size 1" in warning
    )
    assert small_model_warning(gradient_figures(recommended, one_b)) == []
    big = ModelFacts(num_layers=62, params=27_000_000_000)  # the 27B run is not "small"
    assert small_model_warning(gradient_figures(collapsed, big)) == []


def test_model_facts_from_tiny_model(tiny_model: Path) -> None:
    facts = read_model_facts(tiny_model)
    assert facts.num_layers == 2 and facts.params is not None and 100_000 < facts.params < 200_000


def test_default_num_layers_fits_a_small_model_but_an_explicit_value_is_checked(
    tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import argparse

    from lemlab.commands import train as train_cmd
    from lemlab.core.errors import LemlabError

    parser = argparse.ArgumentParser()
    train_cmd.add_arguments(parser)
    base = [
        "--model",
        str(tiny_model),
        "--data",
        str(tmp_path),
        "--adapter-path",
        str(tmp_path / "a"),
    ]

    cfg = train_cmd.config_from_args(parser.parse_args(base))
    assert cfg.num_layers == 1  # ~30% of the tiny model's 2 layers, not mlx-lm's default 16

    explicit = train_cmd.config_from_args(parser.parse_args([*base, "--num-layers", "16"]))
    assert explicit.num_layers == 16
    with pytest.raises(LemlabError, match="--num-layers 16 but the model has 2 layers"):
        train_cmd.preflight(explicit)
