"""Fusing a LoRA adapter into a 4-bit base (issue 19): the merged model must compute what
base + adapter computes. Re-quantizing after the merge (mlx-lm fuse's default) rounds the update
away; lemlab dequantizes unless asked otherwise."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest
from support.train import read_events, run_lemlab, train_lora, write_chat_data

PROMPTS = [
    "A lab notebook records what was tried",
    "Write a short poem about the sea",
    "Questions about history deserve honest answers",
]


@pytest.fixture(scope="session")
def tiny_model_q4(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tiny_model quantized to 4 bits (group size 64) by mlx-lm's own convert."""
    from mlx_lm.convert import convert

    out = tmp_path_factory.mktemp("models-q4") / "tiny-gemma-4bit"
    convert(str(tiny_model), str(out), quantize=True, q_bits=4, q_group_size=64)
    assert json.loads((out / "config.json").read_text())["quantization"]["bits"] == 4
    return out


@pytest.fixture(scope="session")
def q4_adapter(tiny_model_q4: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Six real LoRA steps at a small learning rate (1e-5): an update smaller than 4-bit rounding."""
    root = tmp_path_factory.mktemp("lora-q4")
    data = write_chat_data(root / "data")
    return train_lora(tiny_model_q4, data, root / "adapter", iters=6, learning_rate=1e-5)


def _logits(model_path: Path, adapter: Path | None = None) -> list:
    import mlx.core as mx
    from mlx_lm import load

    model, tok = load(str(model_path), adapter_path=str(adapter) if adapter else None)
    return [model(mx.array([tok.encode(p)])).astype(mx.float32) for p in PROMPTS]


def _max_diff(a: list, b: list) -> float:
    import mlx.core as mx

    return max(mx.abs(x - y).max().item() for x, y in zip(a, b, strict=True))


def test_fused_model_computes_base_plus_adapter(
    tiny_model_q4: Path, q4_adapter: Path, tmp_path: Path
) -> None:
    from lemlab.engine.fuse import fuse_adapter, read_marker

    with_adapter = _logits(tiny_model_q4, q4_adapter)
    learned = _max_diff(with_adapter, _logits(tiny_model_q4))
    assert learned > 1e-3  # the adapter changes the logits measurably

    res = fuse_adapter(tiny_model_q4, q4_adapter, tmp_path / "fused", tmp_path / "fuse.log")
    assert res.dequantized and not res.requantized and res.base_quantization["bits"] == 4
    assert "quantization" not in json.loads((tmp_path / "fused" / "config.json").read_text())
    assert _max_diff(with_adapter, _logits(tmp_path / "fused")) < 1e-4
    marker = read_marker(tmp_path / "fused")
    assert marker["dequantized"] is True and marker["requantized"] is False
    assert "dequantized from 4-bit to full precision" in (tmp_path / "fuse.log").read_text()

    # The old behaviour, now an explicit choice: re-quantizing loses more than the update.
    lossy = fuse_adapter(
        tiny_model_q4, q4_adapter, tmp_path / "requant", tmp_path / "rq.log", requantize=True
    )
    assert lossy.requantized and read_marker(tmp_path / "requant")["requantized"] is True
    assert (
        json.loads((tmp_path / "requant" / "config.json").read_text())["quantization"]["bits"] == 4
    )
    assert _max_diff(with_adapter, _logits(tmp_path / "requant")) > learned / 2


def _curriculum(tmp_path: Path, model: Path, extra: str = "") -> Path:
    """Two stages with the same validation set, so stage 2's first val loss measures exactly
    the model stage 1 left behind."""
    a = write_chat_data(tmp_path / "data-a")
    b = write_chat_data(tmp_path / "data-b", n_train=8)
    (b / "valid.jsonl").write_text((a / "valid.jsonl").read_text())
    text = (
        f'schema_version = 1\nbase_model = "{model}"\noutput = "out"\n{extra}'
        "[defaults]\nsteps_per_report = 5\nsteps_per_eval = 5\nsave_every = 10\n"
        "learning_rate = 2e-4\nnum_layers = 2\nbatch_size = 1\n"
        '[[stage]]\nname = "one"\ndata = "data-a"\niters = 10\n'
        '[[stage]]\nname = "two"\ndata = "data-b"\niters = 5\n'
    )
    path = tmp_path / "cur.toml"
    path.write_text(text)
    return path


def _val(adapter: Path) -> list[tuple[int, float]]:
    return [
        (e["weights_after"], e["val_loss"])
        for e in read_events(adapter / "events.jsonl")
        if e["event"] == "val"
    ]


def test_two_stage_curriculum_on_4bit_base_starts_stage_two_where_one_ended(
    tiny_model_q4: Path, tmp_path: Path
) -> None:
    res = run_lemlab(
        "curriculum", _curriculum(tmp_path, tiny_model_q4), "--fuse", "--yes", timeout=300
    )
    assert res.returncode == 0, res.stderr
    out = tmp_path / "out"
    fused = out / "01-one" / "fused"
    assert "dequantized from 4-bit to full precision" in res.stdout + res.stderr
    assert "quantization" not in json.loads((fused / "config.json").read_text())
    marker = json.loads((fused / "lemlab-fused.json").read_text())
    first_two = _val(out / "02-two" / "adapter")[0]
    assert first_two[0] == 0  # measured before stage 2's first step: the merged model as is
    # The merged model's loss is base + adapter's, and stage 2 starts from it.
    assert abs(marker["val_loss_fused"] - marker["val_loss_adapter"]) < 1e-4
    assert abs(first_two[1] - marker["val_loss_adapter"]) < 1e-4
    assert f"starts from stage 1's merged model {fused}" in res.stderr
    state = {
        s["name"]: s for s in tomllib.loads((out / "curriculum-state.toml").read_text())["stage"]
    }
    assert state["one"]["fused_val_loss"] == marker["val_loss_fused"]
    assert state["one"]["final_val_loss"] == marker["val_loss_adapter"]
    # The size the plan and the fuse dialog announce is the dequantized model's, not the 4-bit's.
    from lemlab.core.training.curriculum import fuse_job, load_curriculum

    announced = fuse_job(load_curriculum(tmp_path / "cur.toml"), 0).size_bytes
    written = (fused / "model.safetensors").stat().st_size
    assert abs(announced - written) < 0.05 * written
    assert written > 2 * (tiny_model_q4 / "model.safetensors").stat().st_size
    loss = f"{marker['val_loss_adapter']:.4f}"
    assert f"validation loss {loss} merged vs {loss} base + adapter" in res.stderr


def test_requantize_is_an_explicit_warned_choice(
    tiny_model_q4: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from lemlab.cli import main

    cur = _curriculum(tmp_path, tiny_model_q4)
    assert main(["curriculum", str(cur), "--dry-run"]) == 0
    plan = capsys.readouterr().out
    assert "merged model: dequantized from 4-bit to full precision" in plan
    assert "WARNING" not in plan
    for args, text in ((["--requantize"], ""), ([], "requantize = true\n")):
        cur = _curriculum(tmp_path, tiny_model_q4, text)
        assert main(["curriculum", str(cur), "--dry-run", *args]) == 0
        plan = capsys.readouterr().out
        assert "merged model: RE-QUANTIZED to 4-bit" in plan
        assert "WARNING: stage 1 one: the fused model is re-quantized to 4-bit" in plan
    (tmp_path / "cur.toml").write_text(
        f'base_model = "{tiny_model_q4}"\noutput = "o"\nrequantize = "yes"\n'
    )
    from lemlab.core.errors import LemlabError
    from lemlab.core.training.curriculum import load_curriculum

    with pytest.raises(LemlabError, match="requantize must be true or false"):
        load_curriculum(tmp_path / "cur.toml")


def test_drift_warning_compares_the_merge_with_what_the_stage_learned() -> None:
    from lemlab.commands.curriculum import fuse_drift_warning
    from lemlab.engine.fuse import FuseResult

    q4 = {"bits": 4, "group_size": 32}
    # Issue 19's re-quantized real run: the merge undid most of what stage 1 learned.
    lost = fuse_drift_warning(FuseResult(Path("f"), q4, True, 1.542, 1.555), 1.560)
    assert lost is not None and "differs from base + adapter by 0.0130" in lost
    # A dequantized float16 merge on the real model: 0.0031 against a 0.8634 drop is arithmetic.
    assert fuse_drift_warning(FuseResult(Path("f"), q4, False, 3.8403, 3.8434), 4.7037) is None
    assert fuse_drift_warning(FuseResult(Path("f"), q4, False, None, None), 4.7) is None


@pytest.mark.real_model
@pytest.mark.slow
def test_real_model_two_stage_curriculum_starts_stage_two_where_one_ended(
    real_model: Path, tmp_path: Path
) -> None:
    """SmolLM2-135M (4-bit): two tiny stages with a fuse. Sized for ~5 tokens/s: two short
    training lines, one validation line shared by both stages, three LoRA steps in all."""
    qa = [("What do bees make?", "Bees make honey."), ("Is ice cold?", "Yes, ice is cold.")]

    def line(q: str, a: str) -> str:
        return (
            json.dumps(
                {"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]}
            )
            + "\n"
        )

    for name, rows in (("a", qa), ("b", qa[::-1])):
        folder = tmp_path / name
        folder.mkdir()
        (folder / "train.jsonl").write_text("".join(line(q, a) for q, a in rows))
        (folder / "valid.jsonl").write_text(line("What colour is grass?", "Grass is green."))
    (tmp_path / "cur.toml").write_text(
        f'schema_version = 1\nbase_model = "{real_model}"\noutput = "out"\n'
        "[defaults]\nnum_layers = 1\nbatch_size = 1\nlearning_rate = 1e-4\nsteps_per_report = 1\n"
        "steps_per_eval = 100\nsave_every = 100\nmax_seq_length = 32\n"
        '[[stage]]\nname = "one"\ndata = "a"\niters = 2\n'
        '[[stage]]\nname = "two"\ndata = "b"\niters = 1\n'
    )
    res = run_lemlab("curriculum", tmp_path / "cur.toml", "--fuse", "--yes", timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]
    out = tmp_path / "out"
    marker = json.loads((out / "01-one" / "fused" / "lemlab-fused.json").read_text())
    assert marker["dequantized"] and marker["base_quantization"]["bits"] == 4
    one, two = _val(out / "01-one" / "adapter"), _val(out / "02-two" / "adapter")
    learned = one[0][1] - marker["val_loss_adapter"]
    assert learned > 0.05  # stage 1 really moved the loss
    # Stage 2's first validation (before its first step) is on the merged model as read back,
    # and it sits where stage 1 ended: within float16 arithmetic, far inside what was learned.
    assert two[0][0] == 0 and abs(two[0][1] - marker["val_loss_fused"]) < 1e-5
    assert abs(two[0][1] - marker["val_loss_adapter"]) < 0.05 * learned
    assert "WARNING: stage 1 one" not in res.stderr


def test_fuse_without_the_training_data_still_merges(
    tiny_model_q4: Path, q4_adapter: Path, tmp_path: Path
) -> None:
    """The validation check reads the adapter's training data; when that folder is gone the
    merge still happens, with the check reported as skipped."""
    import shutil

    from lemlab.core.training.config import resolve_config, write_config_toml
    from lemlab.engine.fuse import fuse_adapter

    adapter = tmp_path / "adapter"
    shutil.copytree(q4_adapter, adapter)
    cfg = resolve_config(
        {"model": str(tiny_model_q4), "data": str(tmp_path / "gone"), "adapter_path": str(adapter)}
    )
    write_config_toml(cfg, adapter / "lemlab-train.toml")
    res = fuse_adapter(tiny_model_q4, adapter, tmp_path / "fused", tmp_path / "fuse.log")
    assert res.dequantized and res.val_loss_adapter is None and res.val_loss_fused is None
    assert "validation check skipped" in (tmp_path / "fuse.log").read_text()
    assert res.summary() == "merged model dequantized from 4-bit to full precision"
