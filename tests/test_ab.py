"""`lemlab ab` end to end on the tiny model with the real MLX engine: file format and summary
arithmetic, the no-system-role fallback, adapters, kill-and-resume, and user errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from lemlab.cli import main
from lemlab.core.ab.store import sidecar_path
from lemlab.core.scoring import get_scorer

PROBE_KEYS = ["type", "id", "category", "prompt", "conditions", "ts"]
SUMMARY_KEYS = [
    "type",
    "model",
    "total_probes",
    "conditions",
    "categories",
    "duration",
    "max_tokens",
    "ts",
]
COND_KEYS = ["response", "lek_score", "heuristic", "chars", "time_s"]
BATTERY = [
    {"id": "P01_IDENTITY", "domain": "Identity", "prompt": "Who decides who you are?"},
    {"id": "P02_HISTORY", "domain": "History", "prompt": "What happened at the river crossing?"},
    {"id": "P03_CARE", "category": "care", "prompt": "How do I comfort a friend who failed?"},
    {"id": "P04_POWER", "domain": "Governance", "prompt": "Can a parliament be wrong?"},
    {"id": "P05_ART", "category": "creative", "prompt": "Write four lines about the tide."},
    {"id": "P06_DATA", "prompt": "Should an app read my messages to help me?"},
]


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory, tiny_adapter: Path) -> dict[str, Path]:
    """Battery, two kernels and the really trained adapter (checkpoints every 2 steps)."""
    d = tmp_path_factory.mktemp("ab")
    (d / "battery.json").write_text(json.dumps(BATTERY))
    (d / "short.txt").write_text("Answer honestly. Name what you do not know.\n")
    (d / "long.md").write_text("Weigh every claim with care; respect the reader's autonomy.\n" * 12)
    return {
        "dir": d,
        "battery": d / "battery.json",
        "short": d / "short.txt",
        "long": d / "long.md",
        "adapter": tiny_adapter,
    }


def ab_args(
    lab: dict[str, Path], model: Path, out: Path, *extra: str, adapter: bool = True
) -> list[str]:
    args = [
        "ab",
        "--model",
        str(model),
        "--kernel",
        f"short={lab['short']}",
        "--kernel",
        f"long={lab['long']}",
        "--prompts",
        str(lab["battery"]),
        "--output",
        str(out),
        "--max-tokens",
        "16",
    ]
    if adapter:
        args += ["--adapter", f"lek={lab['adapter']}"]
    return args + list(extra)


def read_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(ln) for ln in path.read_text().splitlines() if ln.strip()]


def stable(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Probe lines without what legitimately differs between runs (ts, time_s, and
    cache_build_s: a resumed run builds the kernel cache again on its first kernel reply)."""
    out = []
    for ln in lines:
        if ln["type"] != "probe":
            continue
        timing = ("time_s", "cache_build_s")
        conds = {
            n: {k: v for k, v in c.items() if k not in timing} for n, c in ln["conditions"].items()
        }
        out.append({**{k: v for k, v in ln.items() if k != "ts"}, "conditions": conds})
    return out


def recompute_summary(probes: list[dict[str, Any]], names: list[str]) -> tuple[list[dict], dict]:
    """The spec's summary arithmetic, written independently of lemlab.core.ab.abfile."""

    def avg(xs: list[float]) -> float:
        return round(sum(xs) / len(xs), 2)

    base = avg([p["conditions"]["baseline"]["lek_score"] for p in probes])
    conds = []
    for n in names:
        scores = [p["conditions"][n]["lek_score"] for p in probes]
        entry: dict[str, Any] = {"name": n, "avg_lek": avg(scores)}
        diffs = [
            p["conditions"][n]["lek_score"] - p["conditions"]["baseline"]["lek_score"]
            for p in probes
        ]
        up = sum(d > 0.5 for d in diffs) if n != "baseline" else 0
        down = sum(d < -0.5 for d in diffs) if n != "baseline" else 0
        entry.update(
            improved=up, regressed=down, unchanged=0 if n == "baseline" else len(diffs) - up - down
        )
        if n != "baseline":
            entry["delta_vs_baseline"] = round(entry["avg_lek"] - base, 2)
        conds.append(entry)
    cats: dict[str, dict[str, float]] = {}
    for cat in dict.fromkeys(p["category"] for p in probes):
        rows = [p for p in probes if p["category"] == cat]
        cats[cat] = {n: avg([p["conditions"][n]["lek_score"] for p in rows]) for n in names}
    return conds, cats


@pytest.fixture(scope="module")
def reference(lab: dict[str, Path], tiny_model: Path) -> Path:
    """One uninterrupted run: baseline + 2 kernels on the base model and on the adapter."""
    out = lab["dir"] / "reference.jsonl"
    assert main(ab_args(lab, tiny_model, out)) == 0
    return out


def test_file_format_and_summary(reference: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lines = read_lines(reference)
    probes, summary = lines[:-1], lines[-1]
    names = ["baseline", "short", "long", "lek", "lek+short", "lek+long"]
    assert [p["id"] for p in probes] == [b["id"] for b in BATTERY]
    assert [p["category"] for p in probes] == [
        "identity",
        "history",
        "care",
        "governance",
        "creative",
        "uncategorised",
    ]
    scorer = get_scorer("v2")
    for p in probes:
        assert list(p)[:6] == PROBE_KEYS and p["type"] == "probe"
        assert list(p["conditions"]) == names
        assert p["model"] and p["scorer"] == "v2" and p["sampler"]["max_tokens"] == 16
        for name, c in p["conditions"].items():
            assert list(c)[:5] == COND_KEYS
            assert c["chars"] == len(c["response"]) and c["tokens"] <= 16
            assert c["heuristic"] == scorer.score(c["response"])  # raw response, rescorable
            assert c["lek_score"] == round(c["heuristic"]["lek_score"], 2)
            assert list(c["heuristic"])[-1] == "lek_score"
            assert c["system_form"] == (
                "system" if name in ("short", "long", "lek+short", "lek+long") else "none"
            )
            assert ("adapter" in c) == name.startswith("lek")
    assert list(summary)[:8] == SUMMARY_KEYS and summary["type"] == "summary"
    assert summary["total_probes"] == 6 and summary["max_tokens"] == 16
    assert summary["duration"].endswith("s")
    conds, cats = recompute_summary(probes, names)
    assert summary["conditions"] == conds
    assert summary["categories"] == cats
    assert summary["scorer"] == "v2" and summary["adapters"] == {"lek": summary["adapters"]["lek"]}
    assert set(summary["kernels"]) == {"short", "long"}
    assert summary["mlx_lm_version"] != "unknown"
    assert not sidecar_path(reference).exists()
    # The adapter changes replies: at least one adapter response differs from its base twin.
    assert any(
        p["conditions"]["lek"]["response"] != p["conditions"]["baseline"]["response"]
        for p in probes
    )


def test_battery_level_prefix_reuse_equals_fresh_prompts(
    lab: dict[str, Path], tiny_model: Path, reference: Path
) -> None:
    """Each condition alone (a fresh engine per request, so no cache) gives the same replies as
    the battery run with prefix reuse."""
    from lemlab.core.engine_api import Sampler
    from lemlab.engine.mlx_engine import MLXEngine

    ref = {p["id"]: p for p in read_lines(reference)[:-1]}
    kernel = lab["long"].read_text()
    engine = MLXEngine()
    try:
        for item in BATTERY[3:]:  # later probes: their kernel prefix came from the cache
            engine.load(str(tiny_model)).result()  # a reload clears the prefix cache
            msgs = [
                {"role": "system", "content": kernel},
                {"role": "user", "content": item["prompt"]},
            ]
            text, _ = engine.generate(msgs, Sampler(max_tokens=16)).result()
            assert text == ref[item["id"]]["conditions"]["long"]["response"]
    finally:
        engine.shutdown()


def test_template_without_system_role_uses_fallback(
    lab: dict[str, Path], tiny_model_nosys: Path, tmp_path: Path
) -> None:
    out = tmp_path / "nosys.jsonl"
    assert main(ab_args(lab, tiny_model_nosys, out, "--limit", "2", adapter=False)) == 0
    lines = read_lines(out)
    assert len(lines) == 3 and lines[-1]["total_probes"] == 2
    assert lines[0]["conditions"]["short"]["system_form"] == "user_prefix"
    assert lines[-1]["system_form"] == {
        "baseline": "none",
        "short": "user_prefix",
        "long": "user_prefix",
    }


def _kill_when(cmd: list[str], ready: Any, timeout: float = 60.0) -> None:
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "MLX_DISABLE_COMPILE": "1"},
    )
    deadline = time.monotonic() + timeout
    try:
        while not ready():
            assert proc.poll() is None, "the run ended before it could be killed"
            assert time.monotonic() < deadline
            time.sleep(0.002)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()


def _count(path: Path) -> int:
    try:
        return path.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


@pytest.mark.slow
@pytest.mark.parametrize("phase", ["base-pass", "adapter-pass"])
def test_sigkill_then_resume_equals_uninterrupted(
    lab: dict[str, Path],
    tiny_model: Path,
    reference: Path,
    tmp_path: Path,
    phase: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "killed.jsonl"
    args = ab_args(lab, tiny_model, out)
    side = sidecar_path(out)
    if phase == "base-pass":  # header + 2 partial records: killed while the base model runs
        ready = lambda: _count(side) >= 3  # noqa: E731
    else:  # two complete probe lines: killed during the adapter's pass
        ready = lambda: _count(out) >= 2  # noqa: E731
    _kill_when([sys.executable, "-m", "lemlab", *args], ready)
    assert not read_lines(out) or read_lines(out)[-1]["type"] == "probe"  # no summary yet
    assert main([*args, "--resume"]) == 0
    lines = read_lines(out)
    assert stable(lines) == stable(read_lines(reference))
    probes = lines[:-1]
    conds, cats = recompute_summary(probes, list(probes[0]["conditions"]))
    assert lines[-1]["conditions"] == conds and lines[-1]["categories"] == cats
    assert not side.exists()
    # Resuming a finished file again changes nothing.
    before = out.read_bytes()
    assert main([*args, "--resume"]) == 0
    assert "already complete" in capsys.readouterr().out
    assert out.read_bytes() == before


def test_half_written_last_line_is_redone(
    lab: dict[str, Path],
    tiny_model: Path,
    reference: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "cut.jsonl"
    raw = reference.read_text().splitlines(keepends=True)
    out.write_text("".join(raw[:3]) + raw[3][: len(raw[3]) // 2])  # 3 lines + half of the 4th
    args = ab_args(lab, tiny_model, out)
    assert main([*args, "--resume"]) == 0
    assert "half-written last line" in capsys.readouterr().err
    assert stable(read_lines(out)) == stable(read_lines(reference))


def test_resume_refuses_other_settings(
    lab: dict[str, Path],
    tiny_model: Path,
    reference: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "partial.jsonl"
    out.write_text("".join(reference.read_text().splitlines(keepends=True)[:2]))
    for extra in (["--max-tokens", "8"], ["--scorer", "v0"], ["--temp", "0.5", "--seed", "1"]):
        args = ab_args(lab, tiny_model, out)
        if extra[0] == "--max-tokens":
            args = args[:-2] + extra  # replace the 16 set by ab_args
        else:
            args += extra
        assert main([*args, "--resume"]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("lemlab: error:") and "settings differ" in err and "\n" not in err
    assert main([*ab_args(lab, tiny_model, out, adapter=False), "--resume"]) == 2
    assert "conditions were" in capsys.readouterr().err
    assert len(read_lines(out)) == 2  # untouched


def test_user_errors_exit_2_with_one_line(
    lab: dict[str, Path],
    tiny_model: Path,
    reference: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('[{"id": "x", "prompt": "hi"},')
    no_prompt = tmp_path / "noprompt.json"
    no_prompt.write_text('[{"id": "x"}]')
    before = reference.read_bytes()
    cases = {
        "invalid JSON": [
            "ab",
            "--model",
            str(tiny_model),
            "--prompts",
            str(bad),
            "--output",
            str(tmp_path / "a.jsonl"),
        ],
        "missing 'prompt'": [
            "ab",
            "--model",
            str(tiny_model),
            "--prompts",
            str(no_prompt),
            "--output",
            str(tmp_path / "b.jsonl"),
        ],
        "no such file": [
            "ab",
            "--model",
            str(tiny_model),
            "--prompts",
            str(lab["battery"]),
            "--kernel",
            f"k={tmp_path / 'nope.txt'}",
            "--output",
            str(tmp_path / "c.jsonl"),
        ],
        "already exists": ab_args(lab, tiny_model, reference),
        "model folder not found": [
            "ab",
            "--model",
            str(tmp_path / "nomodel"),
            "--prompts",
            str(lab["battery"]),
            "--output",
            str(tmp_path / "d.jsonl"),
        ],
        "adapter not found": [
            "ab",
            "--model",
            str(tiny_model),
            "--prompts",
            str(lab["battery"]),
            "--adapter",
            f"x={tmp_path / 'noadapter'}",
            "--output",
            str(tmp_path / "e.jsonl"),
        ],
    }
    for needle, args in cases.items():
        assert main(args) == 2, needle
        err = capsys.readouterr().err.strip()
        assert err.startswith("lemlab: error:") and needle in err and "\n" not in err, err
    assert reference.read_bytes() == before  # never overwritten
    assert not any(
        (tmp_path / n).exists() for n in ("a.jsonl", "b.jsonl", "c.jsonl", "d.jsonl", "e.jsonl")
    )


def test_checkpoint_file_as_adapter(lab: dict[str, Path], tiny_model: Path, tmp_path: Path) -> None:
    out = tmp_path / "ckpt.jsonl"
    ckpt = lab["adapter"] / "0000002_adapters.safetensors"
    args = [
        "ab",
        "--model",
        str(tiny_model),
        "--prompts",
        str(lab["battery"]),
        "--limit",
        "1",
        "--adapter",
        str(ckpt),
        "--output",
        str(out),
        "--max-tokens",
        "8",
    ]
    assert main(args) == 0
    lines = read_lines(out)
    assert list(lines[0]["conditions"]) == ["baseline", "adapter@2"]
    assert lines[-1]["adapters"] == {"adapter@2": str(ckpt)}


@pytest.mark.slow
def test_ctrl_c_stops_after_flushing_and_resume_finishes(
    lab: dict[str, Path], tiny_model: Path, reference: Path, tmp_path: Path
) -> None:
    out = tmp_path / "interrupted.jsonl"
    args = ab_args(lab, tiny_model, out, "--kernel", f"third={lab['short']}")
    proc = subprocess.Popen(
        [sys.executable, "-m", "lemlab", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "MLX_DISABLE_COMPILE": "1"},
    )
    deadline = time.monotonic() + 60
    while _count(sidecar_path(out)) < 2:
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.002)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "--resume" in err and "Traceback" not in err
    assert main([*args, "--resume"]) == 0
    lines = read_lines(out)
    assert len(lines) == 7 and lines[-1]["type"] == "summary"
    ref = stable(read_lines(reference))
    got = stable(lines)
    for r, g in zip(ref, got, strict=True):  # same replies; plus the extra condition
        assert {n: c for n, c in g["conditions"].items() if "third" not in n} == r["conditions"]
