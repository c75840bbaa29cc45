"""The real MLX engine on tiny random-weight models: loading (with and without adapters, and every
usual mistake), streaming, cancel, determinism, seeded sampling, system-role fallback, errors."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lemlab.core.chat.messages import fold_system_into_user
from lemlab.core.engine_api import Engine, GenerationHandle, Sampler
from lemlab.core.errors import LemlabError
from lemlab.engine.mlx_engine import MLXEngine

CHAT = [{"role": "user", "content": "Tell me about the lighthouse keeper."}]


@pytest.fixture
def engine():
    eng = MLXEngine()
    yield eng
    eng.shutdown()


def _eos_ids(model_dir: Path) -> list[int]:
    ids = json.loads((model_dir / "config.json").read_text())["eos_token_id"]
    return ids if isinstance(ids, list) else [ids]


def ban_tokens(ids: list[int], vocab: int = 512):
    """A logits processor that makes these tokens impossible (forces the full max_tokens)."""
    import mlx.core as mx

    bias = mx.array([float("-inf") if i in ids else 0.0 for i in range(vocab)])
    return lambda tokens, logits: logits + bias


@pytest.fixture(scope="session")
def other_gemma(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Same architecture as tiny_model, other weights: an adapter loads onto it without error."""
    from lemlab.engine.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("models") / "other-gemma", seed=1)


def greedy(eng: MLXEngine, messages=CHAT, n: int = 24, **kw) -> str:
    return eng.generate(messages, Sampler(max_tokens=n), **kw).result()[0]


# --- loading -----------------------------------------------------------------------------------


def test_engine_implements_the_contract(engine: MLXEngine) -> None:
    assert isinstance(engine, Engine)
    handle = engine.generate(CHAT, Sampler(max_tokens=2))
    assert isinstance(handle, GenerationHandle)


def test_load_reports_model_facts(engine: MLXEngine, tiny_model: Path) -> None:
    assert engine.loaded is None
    info = engine.load(str(tiny_model)).result()
    assert engine.loaded is info
    assert (info.model_type, info.num_layers) == ("gemma3_text", 2)
    assert info.supports_system_role and info.is_demo and info.adapter_path is None
    assert info.load_time > 0
    assert any("demo model" in w for w in info.warnings)
    engine.unload().result()
    assert engine.loaded is None


def test_nosys_template_is_detected_and_folded(engine: MLXEngine, tiny_model_nosys: Path) -> None:
    info = engine.load(str(tiny_model_nosys)).result()
    assert info.supports_system_role is False
    with_system = [{"role": "system", "content": "You are careful."}, *CHAT]
    folded = fold_system_into_user(with_system)
    assert folded[0]["content"].startswith("You are careful.\n\n")
    assert greedy(engine, with_system) == greedy(engine, folded)
    assert engine.count_tokens(with_system).result() == engine.count_tokens(folded).result()


def test_model_without_chat_template_warns_and_generates(
    engine: MLXEngine, tiny_model: Path, tmp_path: Path
) -> None:
    plain = tmp_path / "plain"
    shutil.copytree(tiny_model, plain)
    cfg = json.loads((plain / "tokenizer_config.json").read_text())
    del cfg["chat_template"]
    (plain / "tokenizer_config.json").write_text(json.dumps(cfg))
    info = engine.load(str(plain)).result()
    assert any("no chat template" in w for w in info.warnings)
    text, stats = engine.generate(CHAT, Sampler(max_tokens=5)).result()
    assert stats.finish_reason in ("stop", "length") and stats.prompt_tokens > 0


def test_adapter_loads_and_changes_output(
    engine: MLXEngine, tiny_model: Path, tiny_adapter: Path
) -> None:
    engine.load(str(tiny_model)).result()
    base = greedy(engine)
    info = engine.load(str(tiny_model), str(tiny_adapter)).result()
    assert info.adapter_path == str(tiny_adapter)
    assert not [w for w in info.warnings if "trained on" in w], info.warnings
    assert greedy(engine) != base


def test_checkpoint_file_is_accepted_as_adapter(
    engine: MLXEngine, tiny_model: Path, tiny_adapter: Path, tmp_path: Path
) -> None:
    ckpt = tiny_adapter / "0000002_adapters.safetensors"
    info = engine.load(str(tiny_model), str(ckpt)).result()
    assert info.adapter_path == str(ckpt)
    from_ckpt = greedy(engine)
    # The same weights presented as an ordinary adapter folder give the same text...
    folder = tmp_path / "ckpt2"
    folder.mkdir()
    shutil.copy(tiny_adapter / "adapter_config.json", folder)
    shutil.copy(ckpt, folder / "adapters.safetensors")
    engine.load(str(tiny_model), str(folder)).result()
    assert greedy(engine) == from_ckpt
    # ...and differ from the final (step 4) weights.
    engine.load(str(tiny_model), str(tiny_adapter)).result()
    assert greedy(engine) != from_ckpt


def test_adapter_on_another_base_warns(
    engine: MLXEngine, other_gemma: Path, tiny_adapter: Path
) -> None:
    info = engine.load(str(other_gemma), str(tiny_adapter)).result()
    mismatch = [w for w in info.warnings if "trained on" in w]
    assert len(mismatch) == 1 and "\n" not in mismatch[0]


def test_adapter_on_other_architecture_warns_or_fails_in_one_line(
    engine: MLXEngine, tiny_llama: Path, tiny_adapter: Path
) -> None:
    try:
        info = engine.load(str(tiny_llama), str(tiny_adapter)).result()
    except LemlabError as exc:
        assert "\n" not in str(exc)
    else:
        assert any("trained on" in w or "do not fit" in w for w in info.warnings)


def test_adapter_that_does_not_fit_is_an_error(
    engine: MLXEngine, tiny_adapter: Path, tmp_path: Path
) -> None:
    from lemlab.engine.tiny import build_tiny_model

    wide = build_tiny_model(tmp_path / "wide", hidden=128)
    with pytest.raises(LemlabError, match="does not fit") as err:
        engine.load(str(wide), str(tiny_adapter)).result()
    assert "\n" not in str(err.value)
    assert engine.loaded is None


def _bad_model_dirs(tiny_model: Path, tmp: Path) -> dict[str, tuple[Path, str]]:
    empty = tmp / "empty"
    empty.mkdir()
    no_weights = tmp / "no-weights"
    no_weights.mkdir()
    shutil.copy(tiny_model / "config.json", no_weights)
    corrupt = tmp / "corrupt"
    shutil.copytree(tiny_model, corrupt)
    (corrupt / "model.safetensors").write_bytes(b"\x07not a safetensors file at all")
    truncated = tmp / "truncated"
    shutil.copytree(tiny_model, truncated)
    data = (tiny_model / "model.safetensors").read_bytes()
    (truncated / "model.safetensors").write_bytes(data[: len(data) // 3])
    return {
        "missing": (tmp / "nope", "not found"),
        "empty": (empty, "no config.json"),
        "no-weights": (no_weights, "no *.safetensors"),
        "corrupt": (corrupt, "cannot read weights in"),
        "truncated": (truncated, "cannot read weights in"),
    }


def test_bad_model_folders_fail_in_one_line(
    engine: MLXEngine, tiny_model: Path, tmp_path: Path
) -> None:
    for name, (path, words) in _bad_model_dirs(tiny_model, tmp_path).items():
        with pytest.raises(LemlabError) as err:
            engine.load(str(path)).result()
        assert words in str(err.value), (name, str(err.value))
        assert "\n" not in str(err.value), name
    assert engine.load(str(tiny_model)).result().model_type == "gemma3_text"  # still usable


def test_bad_adapter_folders_fail_in_one_line(
    engine: MLXEngine, tiny_model: Path, tiny_adapter: Path, tmp_path: Path
) -> None:
    no_config = tmp_path / "no-config"
    no_config.mkdir()
    shutil.copy(tiny_adapter / "adapters.safetensors", no_config)
    no_weights = tmp_path / "no-weights"
    no_weights.mkdir()
    shutil.copy(tiny_adapter / "adapter_config.json", no_weights)
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    shutil.copy(tiny_adapter / "adapter_config.json", corrupt)
    (corrupt / "adapters.safetensors").write_bytes(b"garbage")
    cases = {
        tmp_path / "missing": "not found",
        no_config: "adapter_config.json",
        no_weights: "adapters.safetensors",
        corrupt: "cannot read weights in",
    }
    for path, words in cases.items():
        with pytest.raises(LemlabError) as err:
            engine.load(str(tiny_model), str(path)).result()
        assert words in str(err.value) and "\n" not in str(err.value), str(err.value)


# --- generation --------------------------------------------------------------------------------


def test_streaming_yields_chunks_with_running_stats(engine: MLXEngine, tiny_model: Path) -> None:
    engine.load(str(tiny_model)).result()
    chunks = list(
        engine.generate(
            CHAT, Sampler(max_tokens=12), logits_processors=[ban_tokens(_eos_ids(tiny_model))]
        )
    )
    assert len(chunks) == 12 and chunks[-1].done and not any(c.done for c in chunks[:-1])
    counts = [c.stats.generation_tokens for c in chunks]
    assert counts == list(range(1, 13))
    last = chunks[-1].stats
    assert last.finish_reason == "length" and last.prompt_tokens > 5
    assert last.prompt_tps > 0 and last.generation_tps > 0 and last.peak_memory > 0
    assert 0 < last.time_to_first_token <= last.elapsed


def test_greedy_is_deterministic(engine: MLXEngine, tiny_model: Path) -> None:
    engine.load(str(tiny_model)).result()
    assert greedy(engine) == greedy(engine)
    assert len(greedy(engine)) > 0


def test_seeded_sampling_repeats_and_seeds_differ(engine: MLXEngine, tiny_model: Path) -> None:
    engine.load(str(tiny_model)).result()
    ban = [ban_tokens(_eos_ids(tiny_model))]

    def sample(seed: int) -> str:
        s = Sampler(temperature=1.0, top_p=0.95, max_tokens=30, seed=seed)
        return engine.generate(CHAT, s, logits_processors=ban).result()[0]

    assert sample(7) == sample(7)
    assert sample(7) != sample(8)


def test_cancel_stops_and_engine_generates_again(engine: MLXEngine, tiny_model: Path) -> None:
    engine.load(str(tiny_model)).result()
    handle = engine.generate(
        CHAT, Sampler(max_tokens=100_000), logits_processors=[ban_tokens(_eos_ids(tiny_model))]
    )
    seen = 0
    for chunk in handle:
        seen += 1
        if seen == 3:
            handle.cancel()
        if chunk.done:
            break
    _, stats = handle.result()
    assert stats.finish_reason == "cancelled" and stats.generation_tokens < 100
    text, again = engine.generate(CHAT, Sampler(max_tokens=4)).result()
    assert again.finish_reason in ("stop", "length")


def test_cancel_before_start(engine: MLXEngine, tiny_model: Path) -> None:
    engine.load(str(tiny_model))
    first = engine.generate(CHAT, Sampler(max_tokens=4))
    queued = engine.generate(CHAT, Sampler(max_tokens=4))
    queued.cancel()
    assert queued.result()[1].finish_reason in ("cancelled", "stop", "length")
    assert first.result()[1].finish_reason in ("stop", "length")


async def test_async_iteration(engine: MLXEngine, tiny_model: Path) -> None:
    await asyncio.wrap_future(engine.load(str(tiny_model)))
    handle = engine.generate(
        CHAT, Sampler(max_tokens=10), logits_processors=[ban_tokens(_eos_ids(tiny_model))]
    )
    chunks = [c async for c in handle]
    assert len(chunks) == 10 and chunks[-1].done
    assert "".join(c.text for c in chunks) == handle.result()[0]


def test_errors_arrive_as_a_final_chunk(engine: MLXEngine, tiny_model: Path) -> None:
    chunks = list(engine.generate(CHAT, Sampler(max_tokens=4)))
    assert chunks[-1].done and chunks[-1].error == "no model loaded"
    engine.load(str(tiny_model)).result()

    def broken(tokens, logits):
        raise ValueError("processor exploded")

    text, stats = engine.generate(CHAT, Sampler(max_tokens=4), logits_processors=[broken]).result()
    assert stats.finish_reason == "error"
    assert engine.generate(CHAT, Sampler(max_tokens=0)).result()[1].finish_reason == "error"
    assert engine.generate(CHAT, Sampler(max_tokens=3)).result()[1].finish_reason in (
        "stop",
        "length",
    )


@pytest.mark.skipif(not hasattr(time, "pthread_getcpuclockid"), reason="no per-thread CPU clocks")
def test_engine_cpu_clock_counts_the_engine_thread_only(
    engine: MLXEngine, tiny_model: Path
) -> None:
    engine.load(str(tiny_model)).result()
    before = engine.engine_cpu_seconds()
    assert before is not None and before > 0  # loading ran on the engine thread
    spin_until = time.thread_time() + 0.2  # CPU spent here, on the caller's thread, is not counted
    while time.thread_time() < spin_until:
        pass
    assert engine.engine_cpu_seconds() - before < 0.2  # type: ignore[operator]
    engine.generate(
        CHAT, Sampler(max_tokens=40), logits_processors=[ban_tokens(_eos_ids(tiny_model))]
    ).result()
    assert engine.engine_cpu_seconds() > before  # type: ignore[operator]


def test_shutdown_ends_the_thread_and_refuses_work(tiny_model: Path) -> None:
    eng = MLXEngine()
    eng.load(str(tiny_model)).result()
    assert eng.engine_cpu_seconds() is not None or not hasattr(time, "pthread_getcpuclockid")
    eng.shutdown()
    assert eng.engine_cpu_seconds() is None  # the thread is gone: no clock to read
    eng.shutdown()  # twice is fine
    assert not eng.alive
    assert eng.generate(CHAT, Sampler(max_tokens=3)).error == "the engine is shut down"
    with pytest.raises(LemlabError, match="shut down"):
        eng.load(str(tiny_model)).result()


EXIT_PROGRAM = """
import sys
from lemlab.core.engine_api import Sampler
from lemlab.engine.mlx_engine import MLXEngine
eng = MLXEngine()
eng.load(sys.argv[1]).result()
text, stats = eng.generate([{"role": "user", "content": "hi"}], Sampler(max_tokens=8)).result()
assert stats.finish_reason in ("stop", "length"), stats
if sys.argv[2] == "shutdown":
    eng.shutdown()
print("ok")
"""


@pytest.mark.slow
def test_twenty_processes_exit_cleanly(tiny_model: Path) -> None:
    """MLX aborts at exit (status 134) when a thread that used it ends carelessly. Half the runs
    call shutdown(), half rely on the exit hook."""
    statuses = []
    for i in range(20):
        mode = "shutdown" if i % 2 == 0 else "forget"
        run = subprocess.run(
            [sys.executable, "-c", EXIT_PROGRAM, str(tiny_model), mode],
            capture_output=True,
            text=True,
            timeout=120,
        )
        statuses.append(run.returncode)
        assert run.returncode == 0 and run.stdout.strip() == "ok", (
            mode,
            run.returncode,
            run.stderr[-1500:],
        )
    assert statuses == [0] * 20


def test_shutdown_cancels_running_and_queued_work(tiny_model: Path) -> None:
    from concurrent.futures import CancelledError

    eng = MLXEngine()
    eng.load(str(tiny_model)).result()
    ban = [ban_tokens(_eos_ids(tiny_model))]
    running = eng.generate(CHAT, Sampler(max_tokens=10_000_000), logits_processors=ban)
    next(iter(running))  # it has started
    queued = eng.generate(CHAT, Sampler(max_tokens=10_000_000), logits_processors=ban)
    queued_load = eng.load(str(tiny_model))
    eng.shutdown()
    assert running.result()[1].finish_reason == "cancelled"
    assert queued.result()[1].finish_reason == "cancelled"
    with pytest.raises(CancelledError):
        queued_load.result()
    assert not eng.alive
