"""Battery runner and condition planning, driven by a fake engine (fast, no MLX)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from lemlab.core.ab.conditions import (
    AdapterSpec,
    default_adapter_name,
    parse_adapter_arg,
    plan_conditions,
)
from lemlab.core.ab.runner import (
    BatteryRunner,
    ConditionDone,
    ProbeDone,
    ProbeStarted,
    ResumeState,
    RunDone,
    RunStarted,
    VariantLoaded,
    VariantProbeDone,
    request_sampler,
)
from lemlab.core.engine_api import LoadInfo, Message, Sampler
from lemlab.core.errors import LemlabError
from lemlab.engine.fake import FakeEngine

RESEARCH_CONDITION_KEYS = ["response", "lek_score", "heuristic", "chars", "time_s"]


@dataclass(frozen=True)
class K:
    name: str
    text: str
    sha256: str


@dataclass(frozen=True)
class P:
    id: str
    category: str
    prompt: str


class LengthScorer:
    """A transparent scorer for logic tests: the score is a function of the text."""

    id = "test-length"

    def score(self, text: str) -> dict[str, Any]:
        return {"words": len(text.split()), "lek_score": len(text) / 7.0}


class ChatFake(FakeEngine):
    """FakeEngine whose reply depends on the whole chat (system text included), and which
    records loads and reuse_prefix flags."""

    def __init__(self, *, system_role: bool = True, **kw: Any) -> None:
        super().__init__(**kw)
        self.system_role = system_role
        self.loads: list[tuple[str, str | None]] = []
        self.reuse: list[bool] = []

    def _load(self, model: str, adapter: str | None) -> LoadInfo:
        info = super()._load(model, adapter)
        self.loads.append((model, adapter))
        info = replace(info, supports_system_role=self.system_role)
        self._loaded = info
        return info

    def generate(self, messages: list[Message], sampler: Sampler, *, reuse_prefix: bool = False):  # type: ignore[override]
        self.reuse.append(reuse_prefix)
        adapter = (self._loaded.adapter_path if self._loaded else None) or ""
        folded = " | ".join(m["content"][:20] for m in messages) + adapter
        handle = super().generate([{"role": "user", "content": folded}], sampler)
        self.requests[-1] = (list(messages), sampler)
        return handle


PROBES = [P(f"p{i}", "alpha" if i % 2 else "beta", f"question number {i}?") for i in range(1, 5)]
KERNELS = [K("k1", "first kernel text", "a" * 64), K("k2", "second kernel text", "b" * 64)]


@pytest.fixture
def model_dir(tmp_path: Path) -> str:
    d = tmp_path / "model"
    d.mkdir()
    return str(d)


def _run(engine: ChatFake, plan: Any, **kw: Any) -> tuple[BatteryRunner, list[Any]]:
    runner = BatteryRunner(engine, PROBES, plan, LengthScorer(), Sampler(max_tokens=12), **kw)
    return runner, list(runner.events())


# --- conditions ------------------------------------------------------------------------------


def test_plan_names_and_order() -> None:
    plan = plan_conditions("m", KERNELS, [AdapterSpec("lek", "/a/lek")])
    assert plan.names == ["baseline", "k1", "k2", "lek", "lek+k1", "lek+k2"]
    assert [v.name for v in plan.variants] == ["", "lek"]
    assert [c.name for c in plan.for_variant("lek")] == ["lek", "lek+k1", "lek+k2"]
    assert plan.conditions[0].messages("hi") == [{"role": "user", "content": "hi"}]
    assert plan.conditions[4].messages("hi")[0] == {
        "role": "system",
        "content": "first kernel text",
    }
    assert plan.settings()["lek+k2"] == {"adapter": "/a/lek", "kernel_sha256": "b" * 64}


@pytest.mark.parametrize(
    ("kernels", "adapters", "message"),
    [
        ([K("baseline", "x", "0")], [], "reserved"),
        ([K("k1", "x", "0"), K("k1", "y", "1")], [], "given twice"),
        ([], [AdapterSpec("a+b", "/x")], "'a\\+b'"),
        ([K("lek", "x", "0")], [AdapterSpec("lek", "/x")], "both named 'lek'"),
    ],
)
def test_plan_rejects_bad_names(
    kernels: list[K], adapters: list[AdapterSpec], message: str
) -> None:
    with pytest.raises(LemlabError, match=message):
        plan_conditions("m", kernels, adapters)


def test_adapter_args(tmp_path: Path) -> None:
    assert parse_adapter_arg("lek=runs/a") == AdapterSpec("lek", "runs/a")
    assert parse_adapter_arg("runs/a/") == AdapterSpec("a", "runs/a/")
    assert default_adapter_name("runs/a/0000200_adapters.safetensors") == "a@200"
    weird = tmp_path / "x=y"
    weird.mkdir()
    assert parse_adapter_arg(str(weird)).path == str(weird)  # an existing path with '='
    with pytest.raises(LemlabError):
        parse_adapter_arg("lek=")


# --- runner: one model -----------------------------------------------------------------------


def test_single_variant_yields_complete_lines_in_order(model_dir: str) -> None:
    engine = ChatFake()
    plan = plan_conditions(model_dir, KERNELS)
    _, events = _run(engine, plan)
    assert isinstance(events[0], RunStarted) and events[0].total_units == 12
    done = [e for e in events if isinstance(e, ProbeDone)]
    assert [e.probe.id for e in done] == ["p1", "p2", "p3", "p4"]
    assert not [e for e in events if isinstance(e, VariantProbeDone)]
    first = done[0].conditions
    assert list(first) == ["baseline", "k1", "k2"]
    assert list(first["k1"])[:5] == RESEARCH_CONDITION_KEYS
    assert first["k1"]["chars"] == len(first["k1"]["response"])
    assert first["k1"]["lek_score"] == round(len(first["k1"]["response"]) / 7.0, 2)
    assert first["k1"]["kernel_sha256"] == "a" * 64 and first["k1"]["system_form"] == "system"
    assert first["baseline"]["system_form"] == "none" and "kernel_sha256" not in first["baseline"]
    # Kernel text reached the model: its reply differs from the baseline's.
    assert first["k1"]["response"] != first["baseline"]["response"]
    # Prefix reuse on kernel requests only, in probe-major order.
    assert engine.reuse == [False, True, True] * 4
    assert engine.loads == [(model_dir, None)]
    last = events[-1]
    assert (
        isinstance(last, RunDone)
        and not last.cancelled
        and list(last.results) == ["p1", "p2", "p3", "p4"]
    )
    progress = [e.progress.done_units for e in events if isinstance(e, ConditionDone)]
    assert progress == list(range(1, 13))


def test_template_without_system_role_is_recorded(model_dir: str) -> None:
    engine = ChatFake(system_role=False)
    _, events = _run(engine, plan_conditions(model_dir, KERNELS[:1]))
    loaded = [e for e in events if isinstance(e, VariantLoaded)]
    assert loaded[0].system_form == "user_prefix"
    line = next(e for e in events if isinstance(e, ProbeDone)).conditions
    assert line["k1"]["system_form"] == "user_prefix" and line["baseline"]["system_form"] == "none"


# --- runner: adapters ------------------------------------------------------------------------


def test_adapters_run_variant_major_and_assemble_lines(model_dir: str) -> None:
    engine = ChatFake()
    plan = plan_conditions(model_dir, KERNELS[:1], [AdapterSpec("lek", "/ad/lek")])
    _, events = _run(engine, plan)
    assert engine.loads == [(model_dir, None), (model_dir, "/ad/lek")]  # one load per variant
    kinds = [type(e).__name__ for e in events if isinstance(e, VariantProbeDone | ProbeDone)]
    assert kinds == ["VariantProbeDone"] * 4 + ["ProbeDone"] * 4
    done = [e for e in events if isinstance(e, ProbeDone)]
    assert list(done[0].conditions) == ["baseline", "k1", "lek", "lek+k1"]
    c = done[0].conditions
    assert c["lek"]["adapter"] == "/ad/lek" and "adapter" not in c["baseline"]
    assert c["lek"]["response"] != c["baseline"]["response"]  # the adapter changed the reply


def test_resume_skips_done_work(model_dir: str) -> None:
    plan = plan_conditions(model_dir, KERNELS[:1], [AdapterSpec("lek", "/ad/lek")])
    _, full = _run(ChatFake(), plan)
    results = full[-1].results
    partial_base = {
        ("", pid): {k: v for k, v in results[pid].items() if k in ("baseline", "k1")}
        for pid in ("p3", "p4")
    }
    state = ResumeState(complete={"p1": results["p1"], "p2": results["p2"]}, partial=partial_base)
    engine = ChatFake()
    _, events = _run(engine, plan, resume=state)
    assert engine.loads == [(model_dir, "/ad/lek")]  # base has nothing left: not loaded
    assert isinstance(events[0], RunStarted) and events[0].resumed_probes == 2
    assert [e.probe.id for e in events if isinstance(e, ProbeStarted)] == ["p3", "p4"]
    assert events[-1].results == results


def test_cancel_stops_and_keeps_only_complete_probes(model_dir: str) -> None:
    engine = ChatFake(delay=0.002)
    plan = plan_conditions(model_dir, KERNELS)
    runner = BatteryRunner(engine, PROBES, plan, LengthScorer(), Sampler(max_tokens=30))
    seen: list[Any] = []
    for event in runner.events():
        seen.append(event)
        if isinstance(event, ProbeDone) and event.probe.id == "p2":
            threading.Timer(0.01, runner.cancel).start()  # mid-way through p3, from a thread
    last = seen[-1]
    assert isinstance(last, RunDone) and last.cancelled
    assert list(last.results) == ["p1", "p2"]
    assert len(engine.requests) < 12


def test_generation_error_is_one_line(model_dir: str) -> None:
    engine = ChatFake(generate_error="boom")
    with pytest.raises(LemlabError, match="boom"):
        _run(engine, plan_conditions(model_dir, []))


def test_request_sampler_seeds_per_probe_and_condition() -> None:
    greedy = Sampler()
    assert request_sampler(greedy, "p1", "k1") is greedy
    s = Sampler(temperature=0.8, seed=7)
    a, b = request_sampler(s, "p1", "k1"), request_sampler(s, "p1", "baseline")
    assert a.seed != b.seed and a == request_sampler(s, "p1", "k1")
    assert a.temperature == 0.8 and a.max_tokens == s.max_tokens
