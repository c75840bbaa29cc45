"""EngineRouter: local specs on the MLX engine, server specs on the remote engine (a real
mlx_lm.server on 127.0.0.1 serving the tiny model); the runner skips a load the engine already
holds; a remote-only chat never imports mlx."""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import Future
from pathlib import Path

import pytest

from lemlab.core.ab.conditions import plan_conditions
from lemlab.core.ab.runner import BatteryRunner, RunDone, VariantLoaded, loaded_matches
from lemlab.core.engine_api import LoadInfo, Sampler
from lemlab.core.errors import LemlabError
from lemlab.engine.fake import FakeEngine
from lemlab.engine.mlx_server import LocalServer, free_port
from lemlab.engine.remote import RemoteEngine
from lemlab.engine.router import EngineRouter

MSGS = [{"role": "user", "content": "Say something about rivers."}]


@pytest.mark.slow
def test_routes_local_and_remote_and_frees_the_other(
    tiny_server: LocalServer, tiny_model: Path
) -> None:
    router = EngineRouter({})
    try:
        assert router.loaded is None and router.local is None and router.remote is None
        local = router.load(str(tiny_model)).result(timeout=60)
        assert router.active is router.local and router.remote is None and not router.is_remote
        assert local.model_path == str(tiny_model.resolve()) and local.model_type == "gemma3_text"
        text, stats = router.generate(MSGS, Sampler(max_tokens=8)).result()
        assert stats.finish_reason in ("stop", "length") and stats.peak_memory > 0
        local_cpu = router.engine_cpu_seconds()  # the MLX thread's clock (None without one)
        assert local_cpu is None or local_cpu > 0

        remote = router.load(tiny_server.spec).result(timeout=60)
        assert router.is_remote and router.active is router.remote
        assert remote.model_type == "remote" and remote.model_path == tiny_server.spec
        assert router.loaded is remote
        assert router.engine_cpu_seconds() == 0.0  # the server generates in another process
        text, stats = router.generate(MSGS, Sampler(max_tokens=8)).result()
        assert stats.finish_reason in ("stop", "length") and stats.peak_memory == 0.0
        assert router.local is not None
        router.local.unload().result(timeout=30)  # queued after the switch's own unload
        assert router.local.loaded is None  # the local weights were let go

        router.load(str(tiny_model)).result(timeout=60)
        assert router.active is router.local and router.remote.loaded is None  # type: ignore[union-attr]
        assert router.count_tokens(MSGS).result(timeout=30) > 3
    finally:
        router.shutdown()
    assert not router.local.alive  # type: ignore[union-attr] - MLX thread ended (streams cleared)


@pytest.mark.slow
def test_failed_remote_load_keeps_the_local_model(tiny_model: Path) -> None:
    router = EngineRouter({})
    try:
        router.load(str(tiny_model)).result(timeout=60)
        dead = f"openai:http://127.0.0.1:{free_port()}/v1#m"
        with pytest.raises(LemlabError, match="connection refused"):
            router.load(dead).result(timeout=30)
        assert router.active is router.local and router.loaded is not None
        assert router.generate(MSGS, Sampler(max_tokens=4)).result()[1].finish_reason != "error"
        with pytest.raises(LemlabError, match="unknown endpoint"):
            router.load("endpoint:nowhere").result(timeout=5)
    finally:
        router.shutdown()


def test_remote_only_use_never_creates_the_local_engine() -> None:
    made: list[FakeEngine] = []

    def factory() -> FakeEngine:
        made.append(FakeEngine())
        return made[-1]

    router = EngineRouter({}, local_factory=factory)
    handle = router.generate(MSGS, Sampler())
    assert handle.result()[1].finish_reason == "error" and "no model loaded" in (handle.error or "")
    with pytest.raises(LemlabError):
        router.load(f"openai:http://127.0.0.1:{free_port()}/v1").result(timeout=30)
    assert made == [] and isinstance(router.remote, RemoteEngine)
    assert router.unload().result() is None
    router.load("demo/folder").result(timeout=5)  # the fake engine loads anything
    assert len(made) == 1 and router.active is made[0]
    with pytest.raises(LemlabError, match="count"):
        EngineRouter({}).count_tokens(MSGS).result()
    router.shutdown()
    with pytest.raises(LemlabError, match="shut down"):
        router.load("x").result()


class CountingFake(FakeEngine):
    def __init__(self) -> None:
        super().__init__()
        self.loads: list[tuple[str, str | None]] = []

    def load(self, model: str, adapter: str | None = None) -> Future[LoadInfo]:
        self.loads.append((model, adapter))
        return super().load(model, adapter)


class Probe:
    def __init__(self, pid: str) -> None:
        self.id, self.category, self.prompt = pid, "c", f"prompt {pid}"


class Scorer:
    id = "len"

    def score(self, text: str) -> dict[str, float]:
        return {"lek_score": float(len(text))}


def test_runner_skips_the_load_the_engine_already_holds(tmp_path: Path) -> None:
    model = tmp_path / "m"
    model.mkdir()
    engine = CountingFake()
    engine.load(str(model)).result()
    plan = plan_conditions(str(tmp_path / "." / "m"), [])  # another spelling, same folder
    run = BatteryRunner(engine, [Probe("a"), Probe("b")], plan, Scorer(), Sampler(max_tokens=4))
    events = list(run.events())
    assert engine.loads == [(str(model), None)]  # only the load done before the run
    assert any(isinstance(e, VariantLoaded) for e in events)
    assert isinstance(events[-1], RunDone) and len(events[-1].results) == 2
    # another model, or an adapter, is loaded as before
    other = tmp_path / "other"
    other.mkdir()
    plan2 = plan_conditions(str(other), [])
    list(BatteryRunner(engine, [Probe("a")], plan2, Scorer(), Sampler(max_tokens=4)).events())
    assert engine.loads[-1] == (str(other), None)


def test_loaded_matches() -> None:
    spec = "openai:http://127.0.0.1:9/v1"
    info = LoadInfo(model_path=f"{spec}#/models/tiny", adapter_path=None)
    assert loaded_matches(info, spec, None)  # the server chose the model
    assert loaded_matches(info, f"{spec}#/models/tiny", None)
    assert not loaded_matches(info, f"{spec}#/models/other", None)
    assert not loaded_matches(info, spec, "/adapters/a")
    assert not loaded_matches(LoadInfo(model_path="hub/id"), "hub/id", None)  # not a folder


@pytest.mark.slow
def test_remote_chat_streams_without_importing_mlx(tiny_server: LocalServer) -> None:
    spec = tiny_server.spec
    code = (
        "import sys\n"
        "from lemlab.cli import main\n"
        f"rc = main(['chat', '--model', {spec!r}, '--prompt', 'hi', '--max-tokens', '12'])\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('mlx', 'mlx_lm'))\n"
        "print('\\nMLX-MODULES', loaded, file=sys.stderr)\n"
        "sys.exit(rc)\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip()
    assert "MLX-MODULES []" in run.stderr
    stats = [ln for ln in run.stderr.splitlines() if ln.startswith("[")]
    assert len(stats) == 1 and "tokens" in stats[0]
    # and the plain command line, as a user types it
    cli = subprocess.run(
        [
            sys.executable,
            "-m",
            "lemlab",
            "chat",
            "--model",
            spec,
            "--prompt",
            "hi",
            "--max-tokens",
            "8",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert cli.returncode == 0 and cli.stdout.strip() and "Traceback" not in cli.stderr
