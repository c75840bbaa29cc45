"""Turn a llama-architecture GGUF file (Ollama, LM Studio, llama.cpp) into an mlx_lm model folder.

mlx.core.load reads GGUF natively: float tensors come back as they are, and Q4_0 / Q4_1 / Q8_0
blocks come back as MLX affine-quantized triples (weight, scales, biases; group size 32), so no
weight is dequantized or re-quantized here. What this module adds is everything mlx_lm needs
around the weights: a config.json from the metadata (with per-module quantization where bit
widths differ), mlx_lm's tensor names, the Q/K rows put back in the order mlx_lm's RoPE expects,
and a tokenizer.json / tokenizer_config.json rebuilt from the GGUF vocabulary.

The folder is written beside OUT under a temporary name and renamed into place, so a half-written
folder is never seen at OUT.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from lemlab.core.errors import LemlabError
from lemlab.core.models.demo import IMPORT_MARKER
from lemlab.core.models.gguf_header import IMPORTABLE, QUANT_LAYOUT, GgufHeader, read_gguf_header

# GGUF's per-layer tensor names -> mlx_lm's llama module paths.
_LAYER_NAMES = {
    "attn_norm": "input_layernorm",
    "ffn_norm": "post_attention_layernorm",
    "attn_q": "self_attn.q_proj",
    "attn_k": "self_attn.k_proj",
    "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj",
    "ffn_gate": "mlp.gate_proj",
    "ffn_up": "mlp.up_proj",
    "ffn_down": "mlp.down_proj",
}
_TOP_NAMES = {"token_embd": "model.embed_tokens", "output_norm": "model.norm", "output": "lm_head"}
# Suffixes mx.load produces: quantized triples use weight/scales/biases; a linear bias is "bias".
_SUFFIXES = ("weight", "scales", "biases", "bias")

# Pre-tokenizer split patterns, by `tokenizer.ggml.pre`. The GPT-2 pattern is what the ByteLevel
# pre-tokenizer applies itself; the others are split first and ByteLevel then only maps bytes.
_LLAMA3_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)
_QWEN2_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)
_PRE_TOKENIZERS = {
    "default": "gpt2",
    "gpt2": "gpt2",
    "smollm": "digits+gpt2",  # each digit on its own, then GPT-2's pattern (as llama.cpp does)
    "llama-bpe": "llama3",
    "llama3": "llama3",
    "qwen2": "qwen2",
}
_TOKEN_CONTROL, _TOKEN_USER_DEFINED = 3, 4


def import_gguf(
    src: str | Path, out: str | Path, *, force: bool = False, name: str | None = None
) -> Path:
    """Convert `src` into an mlx_lm folder at `out` and return `out`. Raises LemlabError (one
    line) for an unsupported or broken file; `out` is then left as it was. `name` labels the
    model (default: the GGUF's general.name)."""
    src, out = Path(src), Path(out)
    header = read_gguf_header(src)
    plan = _check(header)
    plan["name"] = name or str(header.metadata.get("general.name") or src.stem)
    if out.exists() and not force:
        raise LemlabError(f"{out} already exists (use --force to replace it)")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.importing-", dir=out.parent))
    try:
        _write_folder(header, plan, tmp)
        _replace_dir(tmp, out, force=force)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _check(h: GgufHeader) -> dict[str, Any]:
    """Everything that can be refused is refused here, before any weight is read."""
    where = h.path.name
    if h.architecture != "llama":
        raise LemlabError(
            f"{where}: architecture {h.architecture!r} is not supported "
            "(lemlab imports llama-architecture GGUF files)"
        )
    for t in h.tensors:
        if t.type_name not in IMPORTABLE:
            raise LemlabError(
                f"{where}: tensor {t.name} is {t.type_name}; lemlab imports "
                f"{', '.join(sorted(IMPORTABLE))} tensors (re-export the GGUF as Q4_0, Q8_0 or F16)"
            )
    if h.tensor("rope_freqs.weight") is not None:
        raise LemlabError(
            f"{where}: per-frequency RoPE scaling (Llama 3.1 style) is not supported yet"
        )
    md = h.metadata
    model = md.get("tokenizer.ggml.model")
    if model != "gpt2":
        raise LemlabError(
            f"{where}: tokenizer model {model!r} is not supported (lemlab imports byte-level BPE "
            "tokenizers, tokenizer.ggml.model = 'gpt2')"
        )
    pre = str(md.get("tokenizer.ggml.pre", "default"))
    if pre not in _PRE_TOKENIZERS:
        raise LemlabError(
            f"{where}: pre-tokenizer {pre!r} is not supported "
            f"(known: {', '.join(sorted(_PRE_TOKENIZERS))})"
        )
    tokens, merges = md.get("tokenizer.ggml.tokens"), md.get("tokenizer.ggml.merges")
    if not isinstance(tokens, list) or not tokens or not isinstance(merges, list):
        raise LemlabError(f"{where}: the GGUF carries no tokenizer vocabulary and merges")
    for key in ("block_count", "embedding_length", "feed_forward_length", "attention.head_count"):
        if not isinstance(md.get(f"llama.{key}"), int) or md[f"llama.{key}"] <= 0:
            raise LemlabError(f"{where}: metadata llama.{key} is missing or not a positive integer")
    for name in ("token_embd.weight", "output_norm.weight"):
        if h.tensor(name) is None:
            raise LemlabError(f"{where}: tensor {name} is missing")
    return {"pre": _PRE_TOKENIZERS[pre]}


def _write_folder(h: GgufHeader, plan: dict[str, Any], out: Path) -> None:
    import mlx.core as mx

    try:
        raw = mx.load(str(h.path))
    except (RuntimeError, ValueError) as exc:
        raise LemlabError(f"{h.path.name}: MLX could not read the tensors: {exc}") from None
    if not isinstance(raw, dict):  # a .gguf loads as name -> array (mx.load's other shapes: npy)
        raise LemlabError(f"{h.path.name}: MLX did not read it as named tensors")
    config = _config(h)
    weights = _rename_and_unpermute(h, raw, config)
    quant = _quantization(h)
    if quant:
        config["quantization"] = quant
        config["quantization_config"] = quant
    mx.save_safetensors(str(out / "model.safetensors"), weights, metadata={"format": "mlx"})
    (out / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    _write_tokenizer(h, plan["pre"], out)
    marker = {
        "source": h.path.name,
        "source_bytes": h.path.stat().st_size,
        "name": plan["name"],
        "types": dict(Counter(t.type_name for t in h.tensors)),
    }
    (out / IMPORT_MARKER).write_text(json.dumps(marker, indent=2) + "\n")


def _config(h: GgufHeader) -> dict[str, Any]:
    md = h.metadata
    heads = md["llama.attention.head_count"]
    hidden = md["llama.embedding_length"]
    tokens = md["tokenizer.ggml.tokens"]
    cfg: dict[str, Any] = {
        "model_type": "llama",
        "architectures": ["LlamaForCausalLM"],
        "hidden_size": hidden,
        "num_hidden_layers": md["llama.block_count"],
        "intermediate_size": md["llama.feed_forward_length"],
        "num_attention_heads": heads,
        "num_key_value_heads": md.get("llama.attention.head_count_kv", heads),
        "head_dim": md.get("llama.attention.key_length", hidden // heads),
        "rms_norm_eps": _f32(md.get("llama.attention.layer_norm_rms_epsilon", 1e-5)),
        "rope_theta": _f32(md.get("llama.rope.freq_base", 10000.0)),
        "max_position_embeddings": md.get("llama.context_length", 4096),
        "vocab_size": md.get("llama.vocab_size", len(tokens)),
        "tie_word_embeddings": h.tensor("output.weight") is None,
    }
    scaling = md.get("llama.rope.scaling.type")
    if scaling == "linear" and md.get("llama.rope.scaling.factor"):
        cfg["rope_scaling"] = {"type": "linear", "factor": float(md["llama.rope.scaling.factor"])}
    elif scaling not in (None, "none"):
        raise LemlabError(f"{h.path.name}: RoPE scaling {scaling!r} is not supported")
    for key in ("bos", "eos", "padding"):
        token_id = md.get(f"tokenizer.ggml.{key}_token_id")
        if isinstance(token_id, int) and 0 <= token_id < len(tokens):
            cfg["pad_token_id" if key == "padding" else f"{key}_token_id"] = token_id
    # End-of-turn tokens end a reply too (mlx_lm stops on every id listed here).
    eos = [cfg["eos_token_id"]] if "eos_token_id" in cfg else []
    for key in ("eot", "eom"):
        token_id = md.get(f"tokenizer.ggml.{key}_token_id")
        if isinstance(token_id, int) and 0 <= token_id < len(tokens) and token_id not in eos:
            eos.append(token_id)
    if eos:
        cfg["eos_token_id"] = eos if len(eos) > 1 else eos[0]
    return cfg


def _f32(value: object) -> float:
    """GGUF stores these as float32: print the shortest decimal that reads back the same."""
    return float(f"{float(value):.7g}")  # type: ignore[arg-type]


def _module_path(h: GgufHeader, gguf_name: str) -> tuple[str, str]:
    """("blk.3.attn_q", "scales") -> ("model.layers.3.self_attn.q_proj", "scales")."""
    stem, _, suffix = gguf_name.rpartition(".")
    if suffix not in _SUFFIXES:
        raise LemlabError(f"{h.path.name}: unexpected tensor {gguf_name}")
    parts = stem.split(".")
    if len(parts) == 3 and parts[0] == "blk" and parts[1].isdigit() and parts[2] in _LAYER_NAMES:
        return f"model.layers.{parts[1]}.{_LAYER_NAMES[parts[2]]}", suffix
    if stem in _TOP_NAMES:
        return _TOP_NAMES[stem], suffix
    raise LemlabError(f"{h.path.name}: unexpected tensor {gguf_name}")


def _rename_and_unpermute(
    h: GgufHeader, raw: dict[str, Any], cfg: dict[str, Any]
) -> dict[str, Any]:
    out = {}
    for name, array in raw.items():
        module, suffix = _module_path(h, name)
        if module.endswith("self_attn.q_proj"):
            array = unpermute_rows(array, cfg["num_attention_heads"])
        elif module.endswith("self_attn.k_proj"):
            array = unpermute_rows(array, cfg["num_key_value_heads"])
        out[f"{module}.{suffix}"] = array
    return out


def unpermute_rows(array: Any, n_heads: int) -> Any:
    """Undo llama.cpp's Q/K row permutation. Its converter reorders each head's rows from
    mlx_lm/HF's half-split RoPE layout [x0..x(d/2-1), y0..] into interleaved pairs [x0, y0, x1, ...];
    this puts them back. Rows of a quantized weight, its scales and biases move together, which is
    exact because quantization groups run along a row, never across rows."""
    rows = array.shape[0]
    if rows % (2 * n_heads):
        raise LemlabError(f"cannot un-permute {rows} rows over {n_heads} heads")
    rest = tuple(array.shape[1:])
    return (
        array.reshape(n_heads, rows // n_heads // 2, 2, *rest).swapaxes(1, 2).reshape(rows, *rest)
    )


def _quantization(h: GgufHeader) -> dict[str, Any]:
    """mlx_lm's `quantization` entry: the most common (bits, group size) as the default and a
    per-module entry for each quantized module that differs (e.g. an 8-bit token embedding)."""
    layouts: dict[str, tuple[int, int]] = {}
    for t in h.tensors:
        if t.name.endswith(".weight") and t.type_name in QUANT_LAYOUT:
            layouts[_module_path(h, t.name)[0]] = QUANT_LAYOUT[t.type_name]
    if not layouts:
        return {}
    (bits, group), _ = Counter(layouts.values()).most_common(1)[0]
    quant: dict[str, Any] = {"group_size": group, "bits": bits}
    for module, (b, g) in sorted(layouts.items()):
        if (b, g) != (bits, group):
            quant[module] = {"group_size": g, "bits": b}
    return quant


def _write_tokenizer(h: GgufHeader, pre: str, out: Path) -> None:
    from tokenizers import (
        AddedToken,
        Regex,
        Tokenizer,
        decoders,
        models,
        pre_tokenizers,
        processors,
    )

    md = h.metadata
    tokens: list[str] = md["tokenizer.ggml.tokens"]
    types: list[int] = md.get("tokenizer.ggml.token_type") or [1] * len(tokens)
    vocab = {tok: i for i, tok in enumerate(tokens)}
    merges = []
    for line in md["tokenizer.ggml.merges"]:
        left, sep, right = line.partition(" ")
        if not sep:
            raise LemlabError(f"{h.path.name}: malformed BPE merge {line[:40]!r}")
        merges.append((left, right))
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, fuse_unk=False, byte_fallback=False))
    byte_level = pre_tokenizers.ByteLevel(
        add_prefix_space=False, use_regex=pre in ("gpt2", "digits+gpt2")
    )
    if pre == "digits+gpt2":
        tok.pre_tokenizer = pre_tokenizers.Sequence(
            [pre_tokenizers.Digits(individual_digits=True), byte_level]
        )
    elif pre in ("llama3", "qwen2"):
        pattern = _LLAMA3_SPLIT if pre == "llama3" else _QWEN2_SPLIT
        split = pre_tokenizers.Split(Regex(pattern), behavior="isolated", invert=False)
        tok.pre_tokenizer = pre_tokenizers.Sequence([split, byte_level])
    else:
        tok.pre_tokenizer = byte_level
    tok.decoder = decoders.ByteLevel()
    special = [
        AddedToken(tokens[i], special=types[i] == _TOKEN_CONTROL, normalized=False)
        for i in range(len(tokens))
        if i < len(types) and types[i] in (_TOKEN_CONTROL, _TOKEN_USER_DEFINED)
    ]
    tok.add_special_tokens([t for t in special if t.special])
    tok.add_tokens([t for t in special if not t.special])

    def token(key: str) -> str | None:
        token_id = md.get(f"tokenizer.ggml.{key}_token_id")
        return (
            tokens[token_id] if isinstance(token_id, int) and 0 <= token_id < len(tokens) else None
        )

    bos, eos, unk, pad = token("bos"), token("eos"), token("unknown"), token("padding")
    add_bos = bool(md.get("tokenizer.ggml.add_bos_token", False)) and bos is not None
    if add_bos and bos is not None:
        tok.post_processor = processors.TemplateProcessing(
            single=f"{bos} $A", pair=f"{bos} $A {bos} $B", special_tokens=[(bos, vocab[bos])]
        )
    else:
        tok.post_processor = processors.ByteLevel(trim_offsets=False)
    tok.save(str(out / "tokenizer.json"))
    cfg: dict[str, Any] = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "add_bos_token": add_bos,
        "add_eos_token": False,
        "clean_up_tokenization_spaces": False,
        "model_max_length": md.get("llama.context_length", 4096),
    }
    for key, value in (
        ("bos_token", bos),
        ("eos_token", eos),
        ("unk_token", unk),
        ("pad_token", pad),
    ):
        if value is not None:
            cfg[key] = value
    template = md.get("tokenizer.chat_template")
    if isinstance(template, str) and template.strip():
        cfg["chat_template"] = template
    (out / "tokenizer_config.json").write_text(json.dumps(cfg, indent=2, ensure_ascii=False) + "\n")
    special_map = {
        k: cfg[k] for k in ("bos_token", "eos_token", "unk_token", "pad_token") if k in cfg
    }
    (out / "special_tokens_map.json").write_text(json.dumps(special_map, indent=2) + "\n")


def _replace_dir(tmp: Path, out: Path, *, force: bool) -> None:
    os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700; a model folder follows the umask
    if force and out.exists():
        old = out.with_name(f".{out.name}.replaced-{os.getpid()}")
        os.rename(out, old)
        os.rename(tmp, out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.rename(tmp, out)  # fails if another process put a folder there first: caller decides


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
