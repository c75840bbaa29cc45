"""`lemlab import-gguf` on GGUF files written from a known tiny llama: the imported folder loads
with mlx_lm and computes what the source model computes, for every tensor type lemlab accepts;
bad files get one line, exit 2, and leave nothing behind."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest
from support.gguf_writer import llama_folder_to_gguf, write_gguf

from lemlab.cli import main


def _logits(folder: Path, text: str = "The probe asks a hard question") -> np.ndarray:
    import mlx.core as mx
    from mlx_lm import load

    model, tok = load(str(folder))
    ids = mx.array([tok.encode(text)])
    return np.array(model(ids).astype(mx.float32))


def _leftovers(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if ".importing-" in p.name)


def test_f32_import_computes_what_the_source_model_computes(
    tiny_llama: Path, tmp_path: Path
) -> None:
    src = tmp_path / "tiny.gguf"
    llama_folder_to_gguf(tiny_llama, src, "F32")
    out = tmp_path / "imported"
    assert main(["import-gguf", str(src), str(out)]) == 0
    # Without the Q/K un-permutation the attention scores differ and so do the logits.
    np.testing.assert_allclose(_logits(out), _logits(tiny_llama), atol=2e-5, rtol=1e-5)
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["model_type"] == "llama" and "quantization" not in cfg
    assert cfg["tie_word_embeddings"] is True


def test_tokenizer_rebuilt_from_vocab_and_merges_encodes_like_the_original(
    tiny_llama: Path, tmp_path: Path
) -> None:
    from tokenizers import Tokenizer

    src = tmp_path / "tiny.gguf"
    llama_folder_to_gguf(tiny_llama, src, "F16")
    out = tmp_path / "imported"
    assert main(["import-gguf", str(src), str(out)]) == 0
    original = Tokenizer.from_file(str(tiny_llama / "tokenizer.json"))
    rebuilt = Tokenizer.from_file(str(out / "tokenizer.json"))
    for text in [
        "Kernels are system prompts.",
        "  two  spaces\tand a tab\n",
        "café ☕ 2026",
        "<start_of_turn>user\nhi<end_of_turn>",
        "",
    ]:
        assert rebuilt.encode(text).ids == original.encode(text).ids, text
        assert rebuilt.decode(rebuilt.encode(text).ids, skip_special_tokens=False) == text
    tcfg = json.loads((out / "tokenizer_config.json").read_text())
    assert tcfg["chat_template"].startswith("{{ bos_token }}")
    assert tcfg["eos_token"] == "<eos>"
    cfg = json.loads((out / "config.json").read_text())
    vocab = original.get_vocab()
    assert cfg["eos_token_id"] == [vocab["<eos>"], vocab["<end_of_turn>"]]


@pytest.mark.parametrize(("kind", "bits"), [("Q8_0", 8), ("Q4_0", 4), ("Q4_1", 4)])
def test_quantized_blocks_import_to_the_values_they_encode(
    tiny_llama: Path, tmp_path: Path, kind: str, bits: int
) -> None:
    import mlx.core as mx

    from lemlab.engine.gguf_import import unpermute_rows

    src = tmp_path / f"tiny-{kind}.gguf"
    decoded = llama_folder_to_gguf(tiny_llama, src, kind)
    out = tmp_path / kind
    assert main(["import-gguf", str(src), str(out)]) == 0
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["quantization"] == {"group_size": 32, "bits": bits}
    w = mx.load(str(out / "model.safetensors"))
    q = mx.dequantize(
        w["model.layers.1.self_attn.q_proj.weight"],
        w["model.layers.1.self_attn.q_proj.scales"],
        w["model.layers.1.self_attn.q_proj.biases"],
        group_size=32,
        bits=bits,
    )
    expected = unpermute_rows(decoded["blk.1.attn_q.weight"], cfg["num_attention_heads"])
    np.testing.assert_allclose(np.array(q.astype(mx.float32)), expected, atol=1e-3, rtol=1e-3)
    # And it runs: mlx_lm builds quantized layers from the config and generates.
    from mlx_lm import generate, load

    model, tok = load(str(out))
    assert isinstance(generate(model, tok, "Loss goes down", max_tokens=4, verbose=False), str)


def test_mixed_bit_widths_get_a_per_module_quantization_entry(
    tiny_llama: Path, tmp_path: Path
) -> None:
    from mlx_lm import load

    # Real Q4 GGUFs often keep an 8-bit token embedding.
    src = tmp_path / "mixed.gguf"
    llama_folder_to_gguf(tiny_llama, src, "Q4_0", types={"token_embd.weight": "Q8_0"})
    out = tmp_path / "mixed-out"
    assert main(["import-gguf", str(src), str(out)]) == 0
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["quantization"]["bits"] == 4
    assert cfg["quantization"]["model.embed_tokens"] == {"group_size": 32, "bits": 8}
    model, _ = load(str(out))
    assert model.model.embed_tokens.bits == 8
    assert model.model.layers[0].self_attn.q_proj.bits == 4


def test_non_llama_architecture_is_refused_in_one_line(
    tiny_llama: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "gemma.gguf"
    llama_folder_to_gguf(tiny_llama, src, "F16", architecture="gemma2")
    out = tmp_path / "never"
    assert main(["import-gguf", str(src), str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "lemlab: error: gemma.gguf: architecture 'gemma2' is not supported "
        "(lemlab imports llama-architecture GGUF files)"
    ]
    assert not out.exists() and _leftovers(tmp_path) == []


@pytest.mark.parametrize(
    "damage", ["truncated", "bad-magic", "huge-count", "garbage-type", "empty"]
)
def test_broken_gguf_gets_one_line_and_leaves_nothing(
    tiny_llama: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], damage: str
) -> None:
    src = tmp_path / "tiny.gguf"
    llama_folder_to_gguf(tiny_llama, src, "Q8_0")
    raw = bytearray(src.read_bytes())
    if damage == "truncated":
        raw = raw[: len(raw) * 2 // 3]
    elif damage == "bad-magic":
        raw[:4] = b"GGUX"
    elif damage == "huge-count":
        raw[8:16] = struct.pack("<Q", 1 << 60)  # tensor count
    elif damage == "garbage-type":
        raw[20:24] = b"\xff\xff\xff\xff"  # first key's length -> far past the end
    else:
        raw = bytearray()
    src.write_bytes(bytes(raw))
    before = src.read_bytes()
    out = tmp_path / "never"
    assert main(["import-gguf", str(src), str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("lemlab: error: tiny.gguf: "), err
    assert not out.exists() and _leftovers(tmp_path) == []
    assert src.read_bytes() == before


def test_unsupported_tensor_type_names_the_tensor(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "k.gguf"
    write_gguf(
        src,
        {"general.architecture": "llama"},
        [("token_embd.weight", np.zeros((4, 32), np.float32), "F32")],
    )
    raw = bytearray(src.read_bytes())
    type_at = raw.index(b"token_embd.weight") + len(b"token_embd.weight") + 4 + 16
    raw[type_at : type_at + 4] = struct.pack("<I", 12)  # Q4_K
    src.write_bytes(bytes(raw))
    assert main(["import-gguf", str(src), str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert "token_embd.weight" in err
    assert "Q4_K" in err or "past the end" in err


def test_existing_output_is_refused_without_force(tiny_llama: Path, tmp_path: Path) -> None:
    src = tmp_path / "tiny.gguf"
    llama_folder_to_gguf(tiny_llama, src, "F16")
    out = tmp_path / "o"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    assert main(["import-gguf", str(src), str(out)]) == 2
    assert (out / "keep.txt").read_text() == "mine"
    assert main(["import-gguf", str(src), str(out), "--force"]) == 0
    assert not (out / "keep.txt").exists() and (out / "config.json").is_file()
    assert _leftovers(tmp_path) == []


def test_demo_falls_back_to_the_random_model_without_the_package(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from importlib import metadata

    from lemlab.core.models import demo as demo_model
    from lemlab.tui.models.demo import demo_plan

    def missing(name: str) -> None:
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(demo_model.metadata, "distribution", missing)
    path, command, status = demo_plan()
    assert path == demo_model.random_demo_dir() and command[0] == "make-tiny-model"
    monkeypatch.undo()
    monkeypatch.setenv("LEMLAB_DEMO_MODEL", "random")
    assert demo_plan()[1][0] == "make-tiny-model"


def test_the_pinned_model_package_is_the_one_make_installs() -> None:
    from lemlab.core.models.demo import BUNDLED

    makefile = (Path(__file__).resolve().parents[1] / "Makefile").read_text()
    assert f"MODEL_PKG := {BUNDLED.package}=={BUNDLED.version}" in makefile


def test_lemlab_models_lists_the_converted_demo_model(
    tiny_llama: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from lemlab.core.models.demo import real_demo_dir

    src = tmp_path / "tiny.gguf"
    llama_folder_to_gguf(tiny_llama, src, "Q8_0")
    assert (
        main(["import-gguf", str(src), str(real_demo_dir()), "--name", "SmolLM2-135M-Instruct"])
        == 0
    )
    capsys.readouterr()
    assert main(["models", "--json", "--no-hf-cache"]) == 0
    listed = json.loads(capsys.readouterr().out)
    paths = [Path(m["path"]) for m in listed["models"]]
    assert real_demo_dir() in paths
    entry = listed["models"][paths.index(real_demo_dir())]
    assert entry["quantization"] and entry["model_type"] == "llama"
