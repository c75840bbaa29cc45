"""A small GGUF v3 writer for tests: F32, F16, Q8_0, Q4_0 and Q4_1 tensors, quantized the way
llama.cpp's reference quantizers do, plus the exact values each block decodes to.

It also turns an mlx_lm llama folder into a GGUF the way llama.cpp's converter does (names, the
Q/K row permutation, tokenizer metadata), so an import can be checked against the model it came
from."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import numpy as np

TYPE_IDS = {"F32": 0, "F16": 1, "Q4_0": 2, "Q4_1": 3, "Q8_0": 8}
_ALIGN = 32


def _kv(key: str, value: Any) -> bytes:
    out = _str(key)
    if isinstance(value, bool):
        return out + struct.pack("<I?", 7, value)
    if isinstance(value, int):
        return out + struct.pack("<II", 4, value)
    if isinstance(value, float):
        return out + struct.pack("<If", 6, value)
    if isinstance(value, str):
        return out + struct.pack("<I", 8) + _str(value)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return out + struct.pack("<IIQ", 9, 8, len(value)) + b"".join(_str(v) for v in value)
    if isinstance(value, list):
        return out + struct.pack("<IIQ", 9, 5, len(value)) + struct.pack(f"<{len(value)}i", *value)
    raise TypeError(f"cannot write {key}={value!r}")


def _str(s: str) -> bytes:
    raw = s.encode("utf-8")
    return struct.pack("<Q", len(raw)) + raw


def _blocks(x: np.ndarray) -> np.ndarray:
    return x.astype(np.float32).reshape(-1, 32)


def _pack_nibbles(q: np.ndarray) -> np.ndarray:
    # Byte j of a block holds element j in its low nibble and element j + 16 in its high nibble.
    return (q[:, :16] | (q[:, 16:] << 4)).astype(np.uint8)


def encode(x: np.ndarray, type_name: str) -> tuple[bytes, np.ndarray]:
    """(bytes as GGUF stores them, the float32 values they decode to)."""
    if type_name == "F32":
        return x.astype("<f4").tobytes(), x.astype(np.float32)
    if type_name == "F16":
        h = x.astype("<f2")
        return h.tobytes(), h.astype(np.float32)
    b = _blocks(x)
    if type_name == "Q8_0":
        d = (np.abs(b).max(axis=1) / 127.0).astype(np.float16)
        inv = np.where(d > 0, 1.0 / d.astype(np.float32), 0.0)
        q = np.round(b * inv[:, None]).clip(-128, 127).astype(np.int8)
        raw = b"".join(dd.tobytes() + qq.tobytes() for dd, qq in zip(d, q, strict=True))
        return raw, (q.astype(np.float32) * d.astype(np.float32)[:, None]).reshape(x.shape)
    if type_name == "Q4_0":
        idx = np.abs(b).argmax(axis=1)
        signed_max = b[np.arange(len(b)), idx]
        d = (signed_max / -8.0).astype(np.float16)
        inv = np.where(d != 0, 1.0 / d.astype(np.float32), 0.0)
        q = np.minimum(15, (b * inv[:, None] + 8.5).astype(np.int32).clip(0)).astype(np.uint8)
        packed = _pack_nibbles(q)
        raw = b"".join(dd.tobytes() + pp.tobytes() for dd, pp in zip(d, packed, strict=True))
        deq = (q.astype(np.float32) - 8.0) * d.astype(np.float32)[:, None]
        return raw, deq.reshape(x.shape)
    if type_name == "Q4_1":
        lo, hi = b.min(axis=1), b.max(axis=1)
        d = ((hi - lo) / 15.0).astype(np.float16)
        m = lo.astype(np.float16)
        inv = np.where(d != 0, 1.0 / d.astype(np.float32), 0.0)
        q = np.minimum(
            15, ((b - m.astype(np.float32)[:, None]) * inv[:, None] + 0.5).astype(np.int32).clip(0)
        ).astype(np.uint8)
        packed = _pack_nibbles(q)
        raw = b"".join(
            dd.tobytes() + mm.tobytes() + pp.tobytes()
            for dd, mm, pp in zip(d, m, packed, strict=True)
        )
        deq = q.astype(np.float32) * d.astype(np.float32)[:, None] + m.astype(np.float32)[:, None]
        return raw, deq.reshape(x.shape)
    raise ValueError(type_name)


def write_gguf(
    path: Path, metadata: dict[str, Any], tensors: list[tuple[str, np.ndarray, str]]
) -> dict[str, np.ndarray]:
    """Write a GGUF file; returns each tensor's decoded float32 values by name."""
    encoded = [(name, arr.shape, t, *encode(arr, t)) for name, arr, t in tensors]
    head = b"GGUF" + struct.pack("<IQQ", 3, len(encoded), len(metadata))
    head += b"".join(_kv(k, v) for k, v in metadata.items())
    offset, infos, data = 0, b"", b""
    for name, shape, t, raw, _ in encoded:
        dims = list(reversed(shape))
        infos += _str(name) + struct.pack("<I", len(dims)) + struct.pack(f"<{len(dims)}Q", *dims)
        infos += struct.pack("<IQ", TYPE_IDS[t], offset)
        pad = -len(raw) % _ALIGN
        data += raw + b"\0" * pad
        offset += len(raw) + pad
    head += infos
    head += b"\0" * (-len(head) % _ALIGN)
    path.write_bytes(head + data)
    return {name: deq for name, _, _, _, deq in encoded}


def permute(w: np.ndarray, n_head: int) -> np.ndarray:
    """llama.cpp's converter: half-split RoPE rows -> interleaved pairs, per head."""
    return (
        w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:])
        .swapaxes(1, 2)
        .reshape(w.shape)
    )


_NAMES = {
    "input_layernorm": "attn_norm",
    "post_attention_layernorm": "ffn_norm",
    "self_attn.q_proj": "attn_q",
    "self_attn.k_proj": "attn_k",
    "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output",
    "mlp.gate_proj": "ffn_gate",
    "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down",
}


def gguf_name(mlx_name: str) -> str:
    module, _, suffix = mlx_name.rpartition(".")
    if module == "model.embed_tokens":
        return f"token_embd.{suffix}"
    if module == "model.norm":
        return f"output_norm.{suffix}"
    if module == "lm_head":
        return f"output.{suffix}"
    _, _, layer, rest = module.split(".", 3)
    return f"blk.{layer}.{_NAMES[rest]}.{suffix}"


def llama_folder_to_gguf(
    folder: Path,
    out: Path,
    matrix_type: str = "F32",
    *,
    architecture: str = "llama",
    types: dict[str, str] | None = None,
) -> dict[str, np.ndarray]:
    """Write `out` from an mlx_lm llama folder with float weights. Matrices use `matrix_type`
    (or `types[gguf_name]`), norms stay F32. Returns the decoded values by GGUF tensor name
    (permuted as stored)."""
    types = types or {}
    import mlx.core as mx

    cfg = json.loads((folder / "config.json").read_text())
    weights = mx.load(str(folder / "model.safetensors"))
    tensors = []
    for name in sorted(weights):
        arr = np.array(weights[name].astype(mx.float32))
        if name.endswith("q_proj.weight"):
            arr = permute(arr, cfg["num_attention_heads"])
        elif name.endswith("k_proj.weight"):
            arr = permute(arr, cfg["num_key_value_heads"])
        gname = gguf_name(name)
        tensors.append((gname, arr, types.get(gname, matrix_type if arr.ndim == 2 else "F32")))
    tok = json.loads((folder / "tokenizer.json").read_text())
    vocab = tok["model"]["vocab"]
    tokens = [t for t, _ in sorted(vocab.items(), key=lambda kv: kv[1])]
    merges = [m if isinstance(m, str) else " ".join(m) for m in tok["model"]["merges"]]
    specials = {a["id"] for a in tok.get("added_tokens", []) if a.get("special")}
    tcfg = json.loads((folder / "tokenizer_config.json").read_text())
    eos = cfg["eos_token_id"]
    eos = eos if isinstance(eos, list) else [eos]
    md: dict[str, Any] = {
        "general.architecture": architecture,
        "general.name": "tiny llama for tests",
        f"{architecture}.block_count": cfg["num_hidden_layers"],
        f"{architecture}.context_length": cfg["max_position_embeddings"],
        f"{architecture}.embedding_length": cfg["hidden_size"],
        f"{architecture}.feed_forward_length": cfg["intermediate_size"],
        f"{architecture}.attention.head_count": cfg["num_attention_heads"],
        f"{architecture}.attention.head_count_kv": cfg["num_key_value_heads"],
        f"{architecture}.attention.key_length": cfg["head_dim"],
        f"{architecture}.attention.layer_norm_rms_epsilon": float(cfg["rms_norm_eps"]),
        f"{architecture}.rope.freq_base": float(cfg["rope_theta"]),
        f"{architecture}.vocab_size": len(tokens),
        "tokenizer.ggml.model": "gpt2",
        "tokenizer.ggml.pre": "gpt2",
        "tokenizer.ggml.tokens": tokens,
        "tokenizer.ggml.token_type": [3 if i in specials else 1 for i in range(len(tokens))],
        "tokenizer.ggml.merges": merges,
        "tokenizer.ggml.bos_token_id": vocab[tcfg["bos_token"]],
        "tokenizer.ggml.eos_token_id": eos[0],
        "tokenizer.ggml.padding_token_id": vocab[tcfg["pad_token"]],
        "tokenizer.ggml.add_bos_token": False,
        "tokenizer.chat_template": tcfg["chat_template"],
    }
    if len(eos) > 1:
        md["tokenizer.ggml.eot_token_id"] = eos[1]
    return write_gguf(out, md, tensors)
