"""One parameter count, computed one way (discovery.count_parameters over safetensors headers),
shown the same in the Models pane rows, `lemlab models` and the training form."""

from __future__ import annotations

import json
import struct
from pathlib import Path

from lemlab.core.models.discovery import inspect_model, model_parameters, params_label
from lemlab.core.training.config import read_model_facts
from lemlab.tui.models.rows import model_row

VOCAB, HIDDEN = 4096, 256


def _header_only_model(d: Path) -> Path:
    """A 4-bit MLX model whose embedding is kept at 8 bits (as mixed recipes do): packed uint32
    weights, with scales and biases, described by headers alone."""
    d.mkdir(parents=True)
    cfg = {
        "model_type": "llama",
        "num_hidden_layers": 1,
        "quantization": {
            "group_size": 64,
            "bits": 4,
            "model.embed_tokens": {"group_size": 64, "bits": 8},
        },
    }
    (d / "config.json").write_text(json.dumps(cfg))
    tensors = {
        "model.embed_tokens.weight": ("U32", [VOCAB, HIDDEN * 8 // 32]),
        "model.embed_tokens.scales": ("BF16", [VOCAB, HIDDEN // 64]),
        "model.embed_tokens.biases": ("BF16", [VOCAB, HIDDEN // 64]),
        "model.layers.0.q_proj.weight": ("U32", [HIDDEN, HIDDEN * 4 // 32]),
        "model.layers.0.q_proj.scales": ("BF16", [HIDDEN, HIDDEN // 64]),
        "model.layers.0.q_proj.biases": ("BF16", [HIDDEN, HIDDEN // 64]),
        "model.norm.weight": ("BF16", [HIDDEN]),
    }
    header, offset = {}, 0
    for name, (dtype, shape) in tensors.items():
        size = (4 if dtype == "U32" else 2) * shape[0] * (shape[1] if len(shape) > 1 else 1)
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + size]}
        offset += size
    raw = json.dumps(header).encode()
    (d / "model.safetensors").write_bytes(struct.pack("<Q", len(raw)) + raw + bytes(offset))
    return d


def test_quantized_counts_logical_parameters_the_same_everywhere(tmp_path: Path) -> None:
    d = _header_only_model(tmp_path / "m-4bit")
    logical = VOCAB * HIDDEN + HIDDEN * HIDDEN + HIDDEN  # what the model computes with
    assert model_parameters(d) == logical
    entry = inspect_model(d)
    assert not isinstance(entry, Exception) and getattr(entry, "params", None) == logical
    # The training form reads the same function (it once counted the 8-bit embedding as 4-bit).
    assert read_model_facts(d).params == logical
    assert model_row(entry).params == params_label(logical) == "1.1M"
