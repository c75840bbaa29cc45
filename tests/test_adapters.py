"""Adapter folders: config, checkpoints, resolving, and telling whether an adapter fits a base."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from support.train import train_lora, write_chat_data

from lemlab.core.errors import LemlabError
from lemlab.core.models.adapters import (
    base_match_strength,
    check_adapter_base,
    list_checkpoints,
    read_adapter_config,
    read_adapter_info,
    resolve_adapter,
)
from lemlab.core.models.safetensors_header import write_safetensors


def _zeros(shape: tuple[int, ...], dtype: str = "F32") -> tuple[str, tuple[int, ...], bytes]:
    n = 1
    for d in shape:
        n *= d
    return dtype, shape, bytes(n * 4)


def write_base(
    folder: Path, *, hidden: int = 64, layers: int = 2, model_type: str = "gemma3_text"
) -> Path:
    """A model folder with real headers (zero weights): enough for shape checks."""
    folder.mkdir(parents=True, exist_ok=True)
    cfg = {"model_type": model_type, "hidden_size": hidden, "num_hidden_layers": layers}
    (folder / "config.json").write_text(json.dumps(cfg))
    tensors = {"model.embed_tokens.weight": _zeros((32, hidden))}
    for i in range(layers):
        tensors[f"model.layers.{i}.self_attn.q_proj.weight"] = _zeros((hidden, hidden))
        tensors[f"model.layers.{i}.mlp.down_proj.weight"] = _zeros((hidden, 2 * hidden))
    write_safetensors(folder / "model.safetensors", tensors)
    return folder


def write_adapter(
    folder: Path, model: str, *, hidden: int = 64, layers: int = 2, rank: int = 4, **extra: object
) -> Path:
    """An mlx-lm shaped adapter: lora_a (in, r), lora_b (r, out) per adapted Linear."""
    folder.mkdir(parents=True, exist_ok=True)
    cfg = {
        "model": model,
        "num_layers": layers,
        "fine_tune_type": "lora",
        "lora_parameters": {"rank": rank, "scale": 20.0, "dropout": 0.0},
        "iters": 30,
        "learning_rate": 1e-5,
        "batch_size": 2,
        **extra,
    }
    (folder / "adapter_config.json").write_text(json.dumps(cfg))
    tensors = {}
    for i in range(layers):
        q = f"model.layers.{i}.self_attn.q_proj"
        d = f"model.layers.{i}.mlp.down_proj"
        tensors[q + ".lora_a"] = _zeros((hidden, rank))
        tensors[q + ".lora_b"] = _zeros((rank, hidden))
        tensors[d + ".lora_a"] = _zeros((2 * hidden, rank))
        tensors[d + ".lora_b"] = _zeros((rank, hidden))
    write_safetensors(folder / "adapters.safetensors", tensors)
    return folder


# --- config, checkpoints, resolving -----------------------------------------------------------


def test_read_adapter_config_missing_and_malformed(tmp_path: Path) -> None:
    with pytest.raises(LemlabError, match="not found"):
        read_adapter_config(tmp_path / "nope")
    with pytest.raises(LemlabError, match="not an adapter folder"):
        read_adapter_config(tmp_path)
    (tmp_path / "adapter_config.json").write_text('{"model": "x",\n  "iters": }')
    with pytest.raises(LemlabError) as exc:
        read_adapter_config(tmp_path)
    msg = str(exc.value)
    assert "adapter_config.json:2: malformed JSON" in msg and "\n" not in msg


def test_list_checkpoints_sorted_by_iteration(tmp_path: Path) -> None:
    write_adapter(tmp_path / "a", "m")
    for it in (100, 20, 1000):
        (tmp_path / "a" / f"{it:07d}_adapters.safetensors").write_bytes(b"x")
    (tmp_path / "a" / "best_adapters.safetensors").write_bytes(b"x")  # not a checkpoint name
    got = list_checkpoints(tmp_path / "a")
    assert [i for i, _ in got] == [20, 100, 1000]
    assert got[0][1].name == "0000020_adapters.safetensors"


def test_resolve_adapter_folder_checkpoint_and_fallback(tmp_path: Path) -> None:
    a = write_adapter(tmp_path / "a", "m")
    assert resolve_adapter(a) == (a, a / "adapters.safetensors")
    ckpt = a / "0000010_adapters.safetensors"
    ckpt.write_bytes(b"x")
    assert resolve_adapter(ckpt) == (a, ckpt)
    (a / "adapters.safetensors").unlink()
    (a / "0000030_adapters.safetensors").write_bytes(b"x")
    assert resolve_adapter(a) == (a, a / "0000030_adapters.safetensors")  # latest checkpoint
    for p in a.glob("*.safetensors"):
        p.unlink()
    with pytest.raises(LemlabError, match="no adapters.safetensors and no checkpoints"):
        resolve_adapter(a)
    with pytest.raises(LemlabError, match="adapter not found"):
        resolve_adapter(tmp_path / "missing")
    (tmp_path / "loose.safetensors").write_bytes(b"x")
    with pytest.raises(LemlabError, match="not an adapter folder"):
        resolve_adapter(tmp_path / "loose.safetensors")


def test_adapter_info_fields(tmp_path: Path) -> None:
    a = write_adapter(tmp_path / "a", "mlx-community/gemma-3-1b-it-qat-4bit", rank=16)
    (a / "0000010_adapters.safetensors").write_bytes(b"xx")
    info = read_adapter_info(a)
    assert (info.base_model, info.rank, info.scale, info.dropout) == (
        "mlx-community/gemma-3-1b-it-qat-4bit",
        16,
        20.0,
        0.0,
    )
    assert (info.num_layers, info.fine_tune_type, info.iters, info.batch_size) == (2, "lora", 30, 2)
    assert info.learning_rate == 1e-5 and info.has_final_weights
    assert [i for i, _ in info.checkpoints] == [10]
    assert info.size_bytes == sum(p.stat().st_size for p in a.iterdir())
    d = info.to_dict()
    assert json.loads(json.dumps(d))["checkpoints"][0]["iteration"] == 10


# --- check_adapter_base ------------------------------------------------------------------------


def test_match_by_absolute_path_and_symlink(tmp_path: Path) -> None:
    base = write_base(tmp_path / "models" / "base-a")
    a = write_adapter(tmp_path / "ad", str(base))
    assert check_adapter_base(a, base) is None
    link = tmp_path / "elsewhere"
    link.symlink_to(base)
    assert check_adapter_base(a, link) is None
    assert base_match_strength(a, link) == 3


def test_match_by_relative_path_from_training_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    base = write_base(tmp_path / "work" / "models" / "m1")
    # mlx-lm writes `model` and `adapter_path` as typed, relative to where training ran.
    a = write_adapter(tmp_path / "work" / "runs" / "r1", "models/m1", adapter_path="runs/r1")
    other = write_base(tmp_path / "other" / "m2")
    monkeypatch.chdir(tmp_path / "other")
    assert base_match_strength(a, base) == 3
    msg = check_adapter_base(a, other)
    assert msg == f"adapter r1 was trained on models/m1, not on {other}"


def test_match_relative_to_parent_and_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    base = write_base(tmp_path / "proj" / "mymodel")
    a = write_adapter(tmp_path / "proj" / "ad", "mymodel")  # relative to the adapter's parent
    assert base_match_strength(a, base) == 3
    b = write_adapter(tmp_path / "runs" / "ad2", "proj/mymodel")  # relative to the cwd
    monkeypatch.chdir(tmp_path)
    assert base_match_strength(b, base) == 3
    assert check_adapter_base(b, base) is None


def test_match_by_hf_id_basename_and_snapshot(tmp_path: Path) -> None:
    local = write_base(tmp_path / "dl" / "gemma-3-1b-it-qat-4bit")
    a = write_adapter(tmp_path / "ad", "mlx-community/gemma-3-1b-it-qat-4bit")
    assert check_adapter_base(a, local) is None
    assert base_match_strength(a, local) == 1
    snap = write_base(
        tmp_path / "hub" / "models--mlx-community--gemma-3-1b-it-qat-4bit" / "snapshots" / "abc123"
    )
    assert base_match_strength(a, snap) == 2
    assert check_adapter_base(a, snap) is None
    # An adapter trained from a snapshot path matches the same repo reached another way.
    b = write_adapter(tmp_path / "ad2", str(snap))
    assert check_adapter_base(b, local) is None


def test_mismatch_names_both_models_and_types(tmp_path: Path) -> None:
    gemma = write_base(tmp_path / "gemma-small")
    llama = write_base(tmp_path / "llama-small", model_type="llama")
    a = write_adapter(tmp_path / "ad", str(gemma))
    msg = check_adapter_base(a, llama)
    assert msg == (f"adapter ad was trained on {gemma} (gemma3_text), not on llama-small (llama)")
    hub = write_adapter(tmp_path / "ad2", "mlx-community/Qwen3-4B-4bit")
    assert check_adapter_base(hub, llama) == (
        f"adapter ad2 was trained on mlx-community/Qwen3-4B-4bit, not on {llama}"
    )


def test_unknown_recorded_model_cannot_be_told_apart(tmp_path: Path) -> None:
    base = write_base(tmp_path / "b")
    a = write_adapter(tmp_path / "ad", "")
    assert check_adapter_base(a, base) is None


def test_shape_mismatch_reported_even_when_names_match(tmp_path: Path) -> None:
    wide = write_base(tmp_path / "v2" / "same-name", hidden=128)
    a = write_adapter(tmp_path / "ad", "org/same-name", hidden=64)
    msg = check_adapter_base(a, wide)
    assert msg is not None and msg.startswith("adapter ad does not fit same-name: ")
    assert "q_proj maps 64->64, the model's weight is 128x128" in msg


def test_too_many_layers_and_name_mismatch_combined(tmp_path: Path) -> None:
    short = write_base(tmp_path / "short", layers=1)
    a = write_adapter(tmp_path / "ad", "org/deep-model", layers=2)
    msg = check_adapter_base(a, short)
    assert msg == (
        f"adapter ad was trained on org/deep-model, not on {short}, and does not fit it: "
        "it has tensors for layer 1, the model has 1 layer(s) (0-0)"
    )


def test_quantized_base_shapes_are_unpacked(tmp_path: Path) -> None:
    base = tmp_path / "q4"
    base.mkdir()
    cfg = {
        "model_type": "llama",
        "hidden_size": 64,
        "num_hidden_layers": 1,
        "quantization": {"bits": 4, "group_size": 32},
    }
    (base / "config.json").write_text(json.dumps(cfg))
    # 64 inputs at 4 bits = 8 uint32 words per row.
    write_safetensors(
        base / "model.safetensors",
        {
            "model.layers.0.self_attn.q_proj.weight": _zeros((64, 8), "U32"),
            "model.layers.0.self_attn.q_proj.scales": _zeros((64, 2)),
            "model.layers.0.mlp.down_proj.weight": _zeros((64, 16), "U32"),
        },
    )
    a = write_adapter(tmp_path / "ad", str(base), layers=1)
    assert check_adapter_base(a, base) is None
    bad = write_adapter(tmp_path / "bad", str(base), layers=1, hidden=32)
    assert "does not fit" in (check_adapter_base(bad, base) or "")


def test_config_only_base_checked_against_hidden_size(tmp_path: Path) -> None:
    base = tmp_path / "cfgonly"
    base.mkdir()
    (base / "config.json").write_text(json.dumps({"hidden_size": 96, "num_hidden_layers": 4}))
    a = write_adapter(tmp_path / "ad", str(base))
    assert check_adapter_base(a, base) == (
        "adapter ad does not fit cfgonly: model.layers.0.self_attn.q_proj takes 64 inputs, "
        "the model's hidden_size is 96"
    )


# --- a real adapter written by mlx-lm ----------------------------------------------------------


@pytest.fixture(scope="module")
def trained_adapter(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two LoRA iterations on the tiny model via `python -m mlx_lm lora` (~1 s), run from a work
    folder with a relative --model, the way people start trainings."""
    work = tmp_path_factory.mktemp("train")
    write_chat_data(work / "data", n_train=6, n_valid=6)
    model_rel = os.path.relpath(tiny_model, work)
    return train_lora(
        model_rel,
        "data",
        "adapters/r1",
        iters=2,
        batch_size=2,
        num_layers=2,
        save_every=1,
        cwd=work,
    )


@pytest.mark.slow
def test_real_adapter_matches_its_base_only(
    trained_adapter: Path, tiny_model: Path, tiny_llama: Path, tmp_path: Path
) -> None:
    info = read_adapter_info(trained_adapter)
    assert [i for i, _ in info.checkpoints] == [1, 2] and info.rank == 8 and info.num_layers == 2
    assert check_adapter_base(trained_adapter, tiny_model) is None
    assert base_match_strength(trained_adapter, tiny_model) == 3  # relative path resolved
    msg = check_adapter_base(trained_adapter, tiny_llama)
    assert msg is not None and "(gemma3_text), not on tiny-llama (llama)" in msg
    # Same name, wider model: the names match but the tensors cannot fit.
    from lemlab.engine.tiny import build_tiny_model

    wide = build_tiny_model(tmp_path / "tiny-gemma", hidden=128, layers=2)
    msg = check_adapter_base(trained_adapter, wide)
    assert msg is not None and msg.startswith("adapter r1 does not fit tiny-gemma: model.layers.0.")
