"""Model and adapter discovery: HF cache layout, folders, the real tiny model, broken folders."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lemlab.core.models.discovery import (
    ModelEntry,
    Problem,
    count_parameters,
    discover,
    find_model,
    hf_cache_dir,
    inspect_model,
    scan_folder,
    scan_hf_cache,
)
from lemlab.core.models.safetensors_header import read_header, write_safetensors


def _zeros(shape: tuple[int, ...], dtype: str = "F32") -> tuple[str, tuple[int, ...], bytes]:
    n = 1
    for d in shape:
        n *= d
    return dtype, shape, bytes(n * (2 if dtype in ("BF16", "F16") else 4))


def write_model(
    folder: Path, *, hidden: int = 32, layers: int = 2, quant_bits: int | None = None
) -> Path:
    """A model folder with a real safetensors header. Quantized: uint32-packed weights plus
    scales/biases, the way mlx-lm saves them."""
    folder.mkdir(parents=True, exist_ok=True)
    cfg: dict[str, object] = {
        "model_type": "llama",
        "hidden_size": hidden,
        "num_hidden_layers": layers,
    }
    tensors = {"model.embed_tokens.weight": _zeros((100, hidden), "BF16")}
    for i in range(layers):
        name = f"model.layers.{i}.mlp.up_proj"
        if quant_bits:
            tensors[name + ".weight"] = _zeros((hidden, hidden * quant_bits // 32), "U32")
            tensors[name + ".scales"] = _zeros((hidden, hidden // 32), "BF16")
            tensors[name + ".biases"] = _zeros((hidden, hidden // 32), "BF16")
        else:
            tensors[name + ".weight"] = _zeros((hidden, hidden), "BF16")
    if quant_bits:
        cfg["quantization"] = {"bits": quant_bits, "group_size": 32}
    (folder / "config.json").write_text(json.dumps(cfg))
    write_safetensors(folder / "model.safetensors", tensors)
    return folder


def write_adapter(folder: Path, model: str, checkpoints: tuple[int, ...] = ()) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    cfg = {
        "model": model,
        "num_layers": 2,
        "lora_parameters": {"rank": 4, "scale": 10.0, "dropout": 0.0},
    }
    (folder / "adapter_config.json").write_text(json.dumps(cfg))
    lora = {
        "model.layers.0.mlp.up_proj.lora_a": _zeros((32, 4)),
        "model.layers.0.mlp.up_proj.lora_b": _zeros((4, 32)),
    }
    write_safetensors(folder / "adapters.safetensors", lora)
    for it in checkpoints:
        write_safetensors(folder / f"{it:07d}_adapters.safetensors", lora)
    return folder


def make_hf_cache(cache: Path, repo_id: str, build=write_model) -> Path:  # type: ignore[no-untyped-def]
    """The hub cache layout: blobs hold the files, snapshots/<commit>/ links to them, refs/main
    names the commit."""
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    commit = "0123456789abcdef0123456789abcdef01234567"
    staging = cache.parent / f"staging-{repo_id.replace('/', '_')}"
    build(staging)
    snap = repo / "snapshots" / commit
    snap.mkdir(parents=True)
    (repo / "blobs").mkdir()
    for f in staging.iterdir():
        blob = repo / "blobs" / f"blob-{f.name}"
        f.rename(blob)
        (snap / f.name).symlink_to(os.path.relpath(blob, snap))
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    return snap


# --- the hub cache -----------------------------------------------------------------------------


def test_hf_cache_dir_honours_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.delenv("HUGGINGFACE_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hfhome"))
    assert hf_cache_dir() == tmp_path / "hfhome" / "hub"
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "direct"))
    assert hf_cache_dir() == tmp_path / "direct"


def test_scan_hf_cache_finds_snapshot(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    cache = tmp_path / "hub"
    snap = make_hf_cache(
        cache, "mlx-community/Tiny-Llama-4bit", lambda p: write_model(p, quant_bits=4)
    )
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    found = discover(include_hf_cache=True)
    assert [m.path for m in found.models] == [snap]
    m = found.models[0]
    assert (m.name, m.repo_id, m.source, m.model_type) == (
        "mlx-community/Tiny-Llama-4bit",
        "mlx-community/Tiny-Llama-4bit",
        "hf-cache",
        "llama",
    )
    assert m.quantization == "4-bit g32" and m.layers == 2 and m.dtype == "BF16"
    # 32x32 up_proj per layer at 4 bits unpacks to 1024 values; scales/biases are not parameters.
    assert m.params == 100 * 32 + 2 * 32 * 32
    assert m.size_bytes == sum(f.stat().st_size for f in snap.iterdir())  # through the symlinks
    assert not found.problems


def test_hf_cache_adapter_and_missing_cache(tmp_path: Path) -> None:
    cache = tmp_path / "hub"
    make_hf_cache(cache, "org/base-model")
    make_hf_cache(cache, "org/my-lora", lambda p: write_adapter(p, "org/base-model"))
    found = scan_hf_cache(cache)
    assert [m.repo_id for m in found.models] == ["org/base-model"]
    assert [a.source for a in found.adapters] == ["hf-cache"]
    assert scan_hf_cache(tmp_path / "no-cache-here").models == []


def test_cache_given_as_a_folder_is_read_as_a_cache(tmp_path: Path) -> None:
    cache = tmp_path / "hub"
    make_hf_cache(cache, "org/only")
    found = discover([cache], include_hf_cache=False)
    assert [(m.name, m.source) for m in found.models] == [("org/only", "folder")]


# --- folders -----------------------------------------------------------------------------------


def test_folder_scan_recurses_within_depth(tmp_path: Path) -> None:
    write_model(tmp_path / "a" / "m1")
    write_model(tmp_path / "a" / "b" / "c" / "m2")
    write_model(tmp_path / ".hidden" / "m3")
    (tmp_path / "loop").symlink_to(tmp_path)  # a symlink loop must not hang the scan
    names = {m.name for m in scan_folder(tmp_path, max_depth=4).models}
    assert names == {"m1", "m2"}
    assert {m.name for m in scan_folder(tmp_path, max_depth=2).models} == {"m1"}


def test_unrelated_config_json_is_not_a_model(tmp_path: Path) -> None:
    (tmp_path / "proj").mkdir()
    (tmp_path / "proj" / "config.json").write_text('{"name": "some app"}')
    found = scan_folder(tmp_path)
    assert found.models == [] and found.problems == []


@pytest.mark.parametrize("fixture", ["tiny_model", "tiny_llama"])
def test_real_tiny_model_discovered(fixture: str, request: pytest.FixtureRequest) -> None:
    """Layers and parameters read from headers equal what mlx-lm actually loads."""
    import mlx.core as mx
    from mlx.utils import tree_flatten
    from mlx_lm import load

    path: Path = request.getfixturevalue(fixture)
    found = discover([path.parent], include_hf_cache=False)
    m = find_model(found, path.name)
    assert m is not None and m.path == path
    cfg = json.loads((path / "config.json").read_text())
    model, _ = load(str(path))
    real_params = sum(v.size for _, v in tree_flatten(model.parameters()))
    mx.synchronize()
    assert m.params == real_params
    assert (m.layers, m.hidden_size, m.model_type) == (
        cfg["num_hidden_layers"],
        cfg["hidden_size"],
        cfg["model_type"],
    )
    assert m.is_demo and m.quantization == "none" and m.source == "folder"
    assert json.loads(json.dumps(m.to_dict()))["path"] == str(path)


@pytest.mark.slow
def test_real_quantized_model_counts_like_its_source(tiny_llama: Path, tmp_path: Path) -> None:
    """`mlx_lm convert -q` packs the weights; the estimate must give back the original count."""
    out = tmp_path / "tiny-llama-4bit"
    cmd = [
        sys.executable,
        "-m",
        "mlx_lm",
        "convert",
        "--hf-path",
        str(tiny_llama),
        "--mlx-path",
        str(out),
        "-q",
        "--q-bits",
        "4",
        "--q-group-size",
        "32",
    ]
    env = {**os.environ, "MLX_DISABLE_COMPILE": "1"}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    plain, packed = inspect_model(tiny_llama), inspect_model(out)
    assert isinstance(plain, ModelEntry) and isinstance(packed, ModelEntry)
    assert packed.quantization == "4-bit g32" and plain.quantization == "none"
    assert packed.params == plain.params and packed.size_bytes < plain.size_bytes


def test_count_parameters_mixed_bits() -> None:
    header = {
        "a.weight": ("U32", (8, 4)),  # 4 words x 8 values (4-bit) = 32 per row
        "a.scales": ("F16", (8, 1)),
        "b.weight": ("U32", (8, 8)),  # 8-bit override: 4 values per word
        "norm.weight": ("F32", (8,)),
    }
    from lemlab.core.models.safetensors_header import TensorInfo

    tensors = {k: TensorInfo(k, d, s) for k, (d, s) in header.items()}
    cfg = {"quantization": {"bits": 4, "group_size": 32, "b": {"bits": 8, "group_size": 32}}}
    assert count_parameters(tensors, cfg) == 8 * 32 + 8 * 32 + 8


# --- adapters, pairing -------------------------------------------------------------------------


def test_adapters_paired_with_discovered_bases(tmp_path: Path) -> None:
    cache = tmp_path / "hub"
    snap = make_hf_cache(cache, "mlx-community/gemma-3-1b-it-qat-4bit")
    local = write_model(tmp_path / "models" / "llama-local")
    runs = tmp_path / "runs"
    by_id = write_adapter(runs / "from-hub", "mlx-community/gemma-3-1b-it-qat-4bit", (10, 20))
    by_path = write_adapter(runs / "from-path", str(local))
    orphan = write_adapter(runs / "orphan", "someone/unknown-model")
    found = discover([tmp_path / "models", runs], cache_dir=cache)
    pairs = {a.path.name: (a.base.path if a.base else None) for a in found.adapters}
    assert pairs == {"from-hub": snap, "from-path": local, "orphan": None}
    hub = next(a for a in found.adapters if a.path == by_id)
    assert [i for i, _ in hub.info.checkpoints] == [10, 20]
    assert all(a.base_warning is None for a in found.adapters)
    d = json.loads(json.dumps(found.to_dict()))
    assert {a["name"]: a["base"] and a["base"]["path"] for a in d["adapters"]}["from-path"] == str(
        local
    )
    assert by_path.exists() and orphan.exists()


def test_recorded_base_outside_scanned_folders_is_added(tmp_path: Path) -> None:
    base = write_model(tmp_path / "far" / "away-model")
    write_adapter(tmp_path / "runs" / "r", str(base))
    found = discover([tmp_path / "runs"], include_hf_cache=False)
    assert [(m.path, m.source) for m in found.models] == [(base, "adapter-base")]
    assert found.adapters[0].base is not None


# --- broken folders ----------------------------------------------------------------------------


def test_broken_folders_listed_with_reasons(tmp_path: Path) -> None:
    good = write_model(tmp_path / "good")
    bad_json = write_model(tmp_path / "bad-json")
    (bad_json / "config.json").write_text('{"model_type": "llama",\n')
    trunc = write_model(tmp_path / "truncated")
    data = (trunc / "model.safetensors").read_bytes()
    (trunc / "model.safetensors").write_bytes(data[: len(data) - 100])
    garbage = write_model(tmp_path / "garbage-header")
    (garbage / "model.safetensors").write_bytes(b"\xff" * 64)
    no_weights = write_model(tmp_path / "no-weights")
    (no_weights / "model.safetensors").unlink()
    shard = write_model(tmp_path / "missing-shard")
    index = {
        "weight_map": {
            "x": "model-00001-of-00002.safetensors",
            "y": "model-00002-of-00002.safetensors",
        }
    }
    (shard / "model.safetensors.index.json").write_text(json.dumps(index))
    bad_adapter = tmp_path / "bad-adapter"
    bad_adapter.mkdir()
    (bad_adapter / "adapter_config.json").write_text("not json")
    empty_adapter = write_adapter(tmp_path / "empty-adapter", "x")
    (empty_adapter / "adapters.safetensors").unlink()

    found = discover([tmp_path], include_hf_cache=False)
    assert [m.path for m in found.models] == [good]
    reasons = {p.path.name: p.problem for p in found.problems}
    assert reasons["bad-json"].startswith("config.json:2: malformed JSON")
    assert "truncated" in reasons["truncated"]
    assert "header length" in reasons["garbage-header"]
    assert "no .safetensors weights" in reasons["no-weights"]
    assert "missing weight shard model-00001-of-00002.safetensors" in reasons["missing-shard"]
    assert "malformed JSON" in reasons["bad-adapter"]
    assert "no adapters.safetensors and no checkpoints" in reasons["empty-adapter"]
    assert all("\n" not in r for r in reasons.values())


def test_inspect_model_returns_problem_not_exception(tmp_path: Path) -> None:
    assert isinstance(inspect_model(tmp_path / "absent"), Problem)
    assert isinstance(inspect_model(write_model(tmp_path / "ok")), ModelEntry)


def test_safetensors_writer_round_trips(tmp_path: Path) -> None:
    write_safetensors(tmp_path / "t.safetensors", {"w": _zeros((3, 5), "F16")})
    info = read_header(tmp_path / "t.safetensors")["w"]
    assert (info.dtype, info.shape, info.numel) == ("F16", (3, 5), 15)
    from safetensors.numpy import load_file  # the reference reader agrees

    assert load_file(str(tmp_path / "t.safetensors"))["w"].shape == (3, 5)


# --- the command -------------------------------------------------------------------------------


def _lemlab(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lemlab", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


@pytest.mark.slow
def test_models_command_json_and_table(tmp_path: Path, lemlab_home: Path) -> None:
    cache = tmp_path / "hub"
    make_hf_cache(cache, "org/cached-model")
    configured = write_model(tmp_path / "cfgdir" / "configured")
    extra = write_model(tmp_path / "extra" / "extra-model")
    write_adapter(tmp_path / "extra" / "ad", "org/cached-model", (5,))
    broken = tmp_path / "extra" / "broken"
    broken.mkdir()
    (broken / "config.json").write_text("{")
    (broken / "model.safetensors").write_bytes(b"")
    (lemlab_home / "config").mkdir(parents=True)
    (lemlab_home / "config" / "config.toml").write_text(f'model_dirs = ["{tmp_path / "cfgdir"}"]\n')
    env = {**os.environ, "LEMLAB_HOME": str(lemlab_home), "HF_HUB_CACHE": str(cache)}

    out = _lemlab(["models", "--json", "--path", str(tmp_path / "extra")], env)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert set(data) == {"models", "adapters", "problems"}
    paths = {m["path"] for m in data["models"]}
    assert {str(configured), str(extra)} <= paths and any(
        "models--org--cached-model" in p for p in paths
    )
    (ad,) = data["adapters"]
    assert ad["base"]["name"] == "org/cached-model" and len(ad["checkpoints"]) == 1
    assert [p["path"] for p in data["problems"]] == [str(broken)]

    table = _lemlab(["models", "--path", str(tmp_path / "extra")], env)
    assert table.returncode == 0 and "extra-model" in table.stdout and "Not usable" in table.stdout

    missing = _lemlab(["models", "--path", str(tmp_path / "nope")], env)
    assert missing.returncode == 2
    assert missing.stderr.strip() == f"lemlab: error: --path {tmp_path / 'nope'}: no such folder"
