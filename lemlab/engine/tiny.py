"""Build a tiny random-weight model that mlx_lm.load accepts, fully offline.

Used by tests (built once per test session) and by the embedded demo of `make run`. Its output
is noise; the folder carries a marker file so every UI can label it as a demo model.
"""

from __future__ import annotations

import json
from pathlib import Path

from lemlab.core.models.demo import RANDOM_MARKER as DEMO_MARKER

MODEL_TYPES = ("gemma3_text", "llama", "qwen2")

SPECIAL_TOKENS = ["<pad>", "<eos>", "<bos>", "<unk>", "<start_of_turn>", "<end_of_turn>"]

# A Gemma-style turn template that renders a system turn.
CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "<start_of_turn>{{ 'model' if message['role'] == 'assistant' else message['role'] }}\n"
    "{{ message['content'] | trim }}<end_of_turn>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}"
)

# Same turns, but refuses a system role (like Gemma 2's template): callers must fall back to
# putting the system text at the top of the user turn.
CHAT_TEMPLATE_NO_SYSTEM = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{% if message['role'] == 'system' %}"
    "{{ raise_exception('System role not supported') }}"
    "{% endif %}"
    "<start_of_turn>{{ 'model' if message['role'] == 'assistant' else message['role'] }}\n"
    "{{ message['content'] | trim }}<end_of_turn>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}"
)

# Training text for the byte-level BPE: the team's own sentences, enough for 512 merges.
_CORPUS = [
    "A lab notebook records what was tried, what happened, and what it meant.",
    "The probe asks a hard question; the model answers; the scorer counts what it sees.",
    "Kernels are system prompts. Adapters are small trained deltas on top of a base model.",
    "Loss goes down while training runs, and validation tells us whether it generalises.",
    "Questions about history, governance, identity and care deserve careful, honest answers.",
    "Write a short poem about the sea at night, the wind, the stars and a lighthouse keeper.",
    "Numbers: 0 1 2 3 4 5 6 7 8 9 10 100 1024 2026. Punctuation: . , ; : ! ? - ( ) [ ] { } \" '",
    "def score(text): return sum(weights[k] * counts[k] for k in counts)  # heuristics",
    "Autonomy, consent, dignity and transparency appear in many ethical frameworks.",
    "She walked along the shore while he watched the dawn; they talked about memory and loss.",
]


def build_tokenizer(out: Path, *, system_role: bool = True) -> None:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=512,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_CORPUS * 4, trainer=trainer)
    tok.save(str(out / "tokenizer.json"))
    cfg = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": "<bos>",
        "eos_token": "<eos>",
        "pad_token": "<pad>",
        "unk_token": "<unk>",
        "additional_special_tokens": ["<start_of_turn>", "<end_of_turn>"],
        "model_max_length": 8192,
        "chat_template": CHAT_TEMPLATE if system_role else CHAT_TEMPLATE_NO_SYSTEM,
    }
    (out / "tokenizer_config.json").write_text(json.dumps(cfg, indent=2))
    (out / "special_tokens_map.json").write_text(
        json.dumps({k: cfg[k] for k in ("bos_token", "eos_token", "pad_token", "unk_token")})
    )


def model_config(model_type: str, hidden: int, layers: int, vocab: int, eos: list[int]) -> dict:
    heads = max(2, hidden // 32)
    common = {
        "model_type": model_type,
        "hidden_size": hidden,
        "num_hidden_layers": layers,
        "intermediate_size": hidden * 2,
        "num_attention_heads": heads,
        "num_key_value_heads": 1,
        "head_dim": hidden // heads,
        "rms_norm_eps": 1e-6,
        "vocab_size": vocab,
        "max_position_embeddings": 8192,
        "tie_word_embeddings": True,
        "eos_token_id": eos,
        "bos_token_id": 2,
        "pad_token_id": 0,
    }
    if model_type == "gemma3_text":
        common.update(
            {
                "sliding_window": 512,
                "sliding_window_pattern": 2,
                "query_pre_attn_scalar": hidden // heads,
                "rope_theta": 1_000_000.0,
                "rope_local_base_freq": 10_000.0,
            }
        )
    elif model_type == "llama":
        common.update({"rope_theta": 10_000.0})
    elif model_type == "qwen2":
        common.update({"rope_theta": 1_000_000.0})
    else:
        raise ValueError(
            f"unknown model type {model_type!r} (choose from {', '.join(MODEL_TYPES)})"
        )
    return common


def build_tiny_model(
    out: str | Path,
    *,
    model_type: str = "gemma3_text",
    system_role: bool = True,
    hidden: int = 64,
    layers: int = 2,
    seed: int = 0,
) -> Path:
    """Write a loadable random-weight model to `out` and return its path."""
    import importlib

    import mlx.core as mx
    from mlx_lm.utils import save_model

    if model_type not in MODEL_TYPES:
        raise ValueError(
            f"unknown model type {model_type!r} (choose from {', '.join(MODEL_TYPES)})"
        )
    if hidden % 32 or hidden < 64:
        raise ValueError("hidden must be a multiple of 32 and at least 64")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    build_tokenizer(out, system_role=system_role)
    vocab = json.loads((out / "tokenizer.json").read_text())["model"]["vocab"]
    eos = [vocab["<eos>"], vocab["<end_of_turn>"]]
    cfg = model_config(model_type, hidden, layers, 512, eos)
    arch = importlib.import_module(f"mlx_lm.models.{model_type}")
    mx.random.seed(seed)
    model = arch.Model(arch.ModelArgs.from_dict(cfg))
    mx.eval(model.parameters())
    save_model(out, model)
    (out / "config.json").write_text(json.dumps(cfg, indent=2))
    (out / DEMO_MARKER).write_text(
        "Random-weight model written by `lemlab make-tiny-model`. Its output is noise.\n"
    )
    return out
