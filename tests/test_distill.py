"""`lemlab distill` and lemlab.core.distill.output on the tiny model with the real engine: the research
file format, key orders and summary arithmetic, deterministic per-sample seeds, resuming after a
SIGKILL or a cut line without duplicating samples, and the bad-input messages."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

from lemlab.cli import main
from lemlab.core.battery.probes import Probe
from lemlab.core.distill import output as d
from lemlab.core.scoring import get_scorer

MAX_TOKENS = 32
SAMPLES = 3
TOTAL = 6 * SAMPLES
BATTERY = "ccp6"  # 6 shipped probes


@pytest.fixture(scope="module")
def engine():  # type: ignore[no-untyped-def]
    from lemlab.engine.mlx_engine import MLXEngine

    eng = MLXEngine()
    yield eng
    eng.shutdown()


def distill(engine: Any, model: Path, out: Path, *, resume: bool = False, **kw: Any) -> Any:
    from lemlab.commands.distill import execute_distill, prepare_distill

    # The noise model never ends a reply itself: keep cut replies, as the research tool did.
    settings = {
        "samples": SAMPLES,
        "max_tokens": MAX_TOKENS,
        "threshold": -1000.0,
        "truncated": "keep",
        **kw,
    }
    kernel = settings.pop("kernel", None)
    job = prepare_distill(
        model=str(model), prompts=BATTERY, output=out, kernel=kernel, resume=resume, **settings
    )
    if job.state.already_complete:
        return None
    return execute_distill(job, engine)


def read_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()]


def kept_set(path: Path) -> list[tuple[str, int, float, str]]:
    """What a run kept, without timestamps and timings (which differ between runs)."""
    return sorted(
        (
            ln["meta"]["probe_id"],
            ln["meta"]["sample_idx"],
            ln["meta"]["lek_score"],
            ln["training"]["messages"][1]["content"],
        )
        for ln in read_lines(path)
        if ln["type"] == "training"
    )


@pytest.fixture(scope="module")
def reference(
    engine: Any, tiny_model: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """One run that keeps every sample (to learn the scores), then one gated at the middle of the
    distinct scores, so some samples are kept and some rejected whatever the noise model writes."""
    folder = tmp_path_factory.mktemp("distill-ref")
    everything = folder / "all.jsonl"
    distill(engine, tiny_model, everything, kernel="ethics-demo")
    scores = [ln["meta"]["lek_score"] for ln in read_lines(everything) if ln["type"] == "training"]
    distinct = sorted(set(scores))
    assert len(distinct) >= 2, "the tiny model gave one score for every sample"
    threshold = distinct[len(distinct) // 2]
    gated = folder / "gated.jsonl"
    finish = d.DistillRecorder.finish

    def finish_keeping_a_copy(self: d.DistillRecorder, *args: Any, **kw: Any) -> Any:
        # A complete run removes its progress file; the resume tests below cut copies of it.
        (folder / "gated-progress.jsonl").write_bytes(self.progress.read_bytes())
        return finish(self, *args, **kw)

    with mock.patch.object(d.DistillRecorder, "finish", finish_keeping_a_copy):
        distill(engine, tiny_model, gated, threshold=threshold, kernel="ethics-demo")
    assert not d.progress_path(gated).exists()
    return {
        "all": everything,
        "gated": gated,
        "threshold": threshold,
        "scores": scores,
        "gated_progress": folder / "gated-progress.jsonl",
    }


def test_sample_seed_is_stable_and_distinct() -> None:
    seeds = {d.sample_seed(42, p, i) for p in ("a", "b") for i in range(5)}
    assert len(seeds) == 10
    assert all(0 <= s < 2**31 for s in seeds)
    assert d.sample_seed(1, "a", 0) != d.sample_seed(2, "a", 0)
    # Not Python's salted hash(): another interpreter with another hash seed agrees.
    code = "from lemlab.core.distill.output import sample_seed; print(sample_seed(42, 'P01', 3))"
    env = {**os.environ, "PYTHONHASHSEED": "123"}
    other = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    assert int(other.stdout) == d.sample_seed(42, "P01", 3)


def test_training_lines_follow_the_research_format(reference: dict[str, Any]) -> None:
    lines = read_lines(reference["gated"])
    training, summary = lines[:-1], lines[-1]
    prompts = {p.id: p.prompt for p in _probes()}
    assert training and all(ln["type"] == "training" for ln in training)
    for ln in training:
        assert list(ln) == ["type", "training", "meta"]
        assert list(ln["meta"])[: len(d.META_KEYS)] == list(d.META_KEYS)
        user, assistant = ln["training"]["messages"]  # the kernel is never in the example
        assert (user["role"], assistant["role"]) == ("user", "assistant")
        assert user["content"] == prompts[ln["meta"]["probe_id"]]
        meta = ln["meta"]
        assert meta["chars"] == len(assistant["content"])
        assert (
            meta["threshold"] == reference["threshold"] and meta["lek_score"] >= meta["threshold"]
        )
        assert meta["kernel"] == "ethics-demo" and len(meta["kernel_sha256"]) == 64
        rescored = round(get_scorer("v2-distill").score(assistant["content"])["lek_score"], 2)
        assert meta["lek_score"] == rescored
        assert meta["seed"] == d.sample_seed(42, meta["probe_id"], meta["sample_idx"])
    assert list(summary)[: len(d.SUMMARY_KEYS)] == list(d.SUMMARY_KEYS)


def test_summary_arithmetic_matches_the_progress_file(reference: dict[str, Any]) -> None:
    lines = read_lines(reference["gated"])
    summary, kept = lines[-1], [ln["meta"]["lek_score"] for ln in lines[:-1]]
    progress = read_lines(reference["gated_progress"])[1:]
    assert summary["probes"] == 6 and summary["samples_per_probe"] == SAMPLES
    assert summary["total_generated"] == len(progress) == TOTAL
    assert summary["total_kept"] == len(kept) == sum(p["kept"] for p in progress)
    assert 0 < summary["total_kept"] < TOTAL  # the median gate keeps some and rejects some
    assert summary["keep_rate"] == round(100 * len(kept) / TOTAL, 1)
    assert summary["avg_kept_score"] == round(sum(kept) / len(kept), 2)
    assert all(p["kept"] == (p["lek_score"] >= reference["threshold"]) for p in progress)


def test_same_seed_same_samples_and_gate_only_filters(
    engine: Any, tiny_model: Path, tmp_path: Path, reference: dict[str, Any]
) -> None:
    # Two separate runs with the same seed: the gated one kept exactly the samples (same texts)
    # of the keep-all one that reach the threshold.
    wanted = [k for k in kept_set(reference["all"]) if k[2] >= reference["threshold"]]
    assert kept_set(reference["gated"]) == wanted
    other = tmp_path / "other-seed.jsonl"
    distill(engine, tiny_model, other, seed=7, kernel="ethics-demo", samples=1)
    first = [k for k in kept_set(reference["all"]) if k[1] == 0]
    assert [k[:2] for k in kept_set(other)] == [k[:2] for k in first]
    assert kept_set(other) != first


def test_sigkill_then_resume_equals_an_uninterrupted_run(
    tiny_model: Path, tmp_path: Path, reference: dict[str, Any]
) -> None:
    out = tmp_path / "killed.jsonl"
    args = [
        sys.executable,
        "-m",
        "lemlab",
        "distill",
        "--model",
        str(tiny_model),
        "--prompts",
        BATTERY,
        "--output",
        str(out),
        "--samples",
        str(SAMPLES),
        "--max-tokens",
        str(MAX_TOKENS),
        "--threshold",
        str(reference["threshold"]),
        "--kernel",
        "ethics-demo",
        "--truncated",
        "keep",
    ]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    progress = d.progress_path(out)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if progress.exists() and len(progress.read_text().splitlines()) > 8:
            break
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    done_before = len(progress.read_text().splitlines()) - 1
    assert 0 < done_before < TOTAL
    code = main(
        [
            "distill",
            "--model",
            str(tiny_model),
            "--prompts",
            BATTERY,
            "--output",
            str(out),
            "--samples",
            str(SAMPLES),
            "--max-tokens",
            str(MAX_TOKENS),
            "--threshold",
            str(reference["threshold"]),
            "--kernel",
            "ethics-demo",
            "--truncated",
            "keep",
            "--resume",
        ]
    )
    assert code == 0
    assert kept_set(out) == kept_set(reference["gated"])
    assert len(read_lines(out)) - 1 == read_lines(out)[-1]["total_kept"]  # nothing kept twice
    assert read_lines(out)[-1]["total_generated"] == TOTAL
    assert not progress.exists()  # complete: the summary line holds the figures


def test_resume_drops_a_cut_line_and_redoes_a_lost_kept_sample(
    engine: Any, tiny_model: Path, tmp_path: Path, reference: dict[str, Any]
) -> None:
    out = tmp_path / "cut.jsonl"
    full, prog_full = (
        read_lines(reference["gated"]),
        read_lines(reference["gated_progress"]),
    )
    training = full[:-1]
    # The kill hit while the 3rd kept line was being written: its progress line never came.
    third = training[2]["meta"]
    stop = next(
        n
        for n, p in enumerate(prog_full)
        if p.get("probe_id") == third["probe_id"] and p.get("sample_idx") == third["sample_idx"]
    )
    cut = d.dumps_line(training[2])[:40]
    out.write_text("".join(d.dumps_line(x) for x in training[:2]) + cut, encoding="utf-8")
    # ...and a progress file whose last line is itself half written.
    d.progress_path(out).write_text(
        "".join(d.dumps_line(x) for x in prog_full[:stop]) + '{"type": "sam', encoding="utf-8"
    )
    state = d.open_distill_output(out, _settings(tiny_model, reference), _probes(), resume=True)
    assert len(state.records) == stop - 1 and state.kept == 2
    assert any("half-written" in n for n in state.notes)
    state.lock.release()  # an opened output stays locked while its state lives (one writer)
    distill(
        engine, tiny_model, out, resume=True, threshold=reference["threshold"], kernel="ethics-demo"
    )
    assert kept_set(out) == kept_set(reference["gated"])
    assert read_lines(out)[-1]["total_generated"] == TOTAL and not d.progress_path(out).exists()


def test_a_kept_line_without_its_progress_line_is_not_redone(
    tiny_model: Path, tmp_path: Path, reference: dict[str, Any]
) -> None:
    out = tmp_path / "between.jsonl"
    full, prog_full = (
        read_lines(reference["gated"]),
        read_lines(reference["gated_progress"]),
    )
    first = full[0]["meta"]
    at = next(
        n
        for n, p in enumerate(prog_full)
        if p.get("probe_id") == first["probe_id"] and p.get("sample_idx") == first["sample_idx"]
    )
    out.write_text(d.dumps_line(full[0]), encoding="utf-8")  # killed between the two writes
    d.progress_path(out).write_text(
        "".join(d.dumps_line(x) for x in prog_full[:at]), encoding="utf-8"
    )
    state = d.open_distill_output(out, _settings(tiny_model, reference), _probes(), resume=True)
    assert (first["probe_id"], first["sample_idx"]) in state.records
    assert state.kept == 1 and len(state.records) == at


def _settings(model: Path, reference: dict[str, Any]) -> d.DistillSettings:
    from lemlab.core.battery.kernels import parse_kernel_arg

    k = parse_kernel_arg("ethics-demo")
    return d.DistillSettings(
        model=str(model),
        kernel=k.name,
        kernel_sha256=k.sha256,
        samples=SAMPLES,
        threshold=reference["threshold"],
        max_tokens=MAX_TOKENS,
        truncated="keep",
    )


def _probes() -> list[Probe]:
    from lemlab.core.battery.probes import resolve_battery

    return list(resolve_battery(BATTERY).probes)


# --- CLI behaviour and bad input ---------------------------------------------------------------


def cli(tiny_model: Path, out: Path, *extra: str) -> list[str]:
    return [
        "distill",
        "--model",
        str(tiny_model),
        "--prompts",
        BATTERY,
        "--output",
        str(out),
        "--samples",
        "2",
        "--max-tokens",
        "8",
        "--truncated",
        "keep",
        *extra,
    ]


def test_threshold_that_keeps_nothing_writes_the_summary_and_exits_1(
    tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "none.jsonl"
    assert main(cli(tiny_model, out, "--threshold", "1000")) == 1
    lines = read_lines(out)
    assert [ln["type"] for ln in lines] == ["summary"]
    assert lines[0]["total_kept"] == 0 and lines[0]["total_generated"] == 12
    assert lines[0]["keep_rate"] == 0.0 and lines[0]["avg_kept_score"] == 0.0
    err = capsys.readouterr().err
    assert "WARNING: no sample reached the threshold 1000.0" in err
    # Rerunning a complete file does nothing and reports the same outcome.
    assert main(cli(tiny_model, out, "--threshold", "1000", "--resume")) == 1
    assert "already complete" in capsys.readouterr().out


def test_existing_output_without_resume_is_refused(
    tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "x.jsonl"
    out.write_text(
        "someone's notes\n", encoding="utf-8"
    )  # (an empty file is reused: nothing to lose)
    assert main(cli(tiny_model, out)) == 2
    assert "already exists: add --resume" in capsys.readouterr().err


def test_resume_with_other_settings_is_refused(
    tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "s.jsonl"
    assert main(cli(tiny_model, out, "--threshold", "-1000")) == 0
    assert main(cli(tiny_model, out, "--threshold", "5", "--resume")) == 2
    assert "settings differ: threshold was -1000.0, now 5.0" in capsys.readouterr().err


def test_empty_battery_and_bad_values(
    tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "empty.json"
    empty.write_text("[]", encoding="utf-8")
    args = cli(tiny_model, tmp_path / "o.jsonl")
    args[args.index(BATTERY)] = str(empty)
    assert main(args) == 2
    assert "battery has no probes" in capsys.readouterr().err
    assert main(cli(tiny_model, tmp_path / "o2.jsonl", "--samples", "0")) == 2
    assert "--samples must be at least 1" in capsys.readouterr().err
    assert main(cli(tiny_model, tmp_path / "o3.jsonl", "--scorer", "nope")) == 2
    assert "unknown scorer 'nope'" in capsys.readouterr().err
    assert not (tmp_path / "o.jsonl").exists() and not (tmp_path / "o2.jsonl").exists()


def test_empty_probe_list_is_refused(tiny_model: Path, tmp_path: Path) -> None:
    from lemlab.commands.distill import prepare_distill
    from lemlab.core.errors import LemlabError

    with pytest.raises(LemlabError, match="has no probes"):
        prepare_distill(model=str(tiny_model), prompts=[], output=tmp_path / "o.jsonl")


def test_samples_cut_at_max_tokens_are_marked_or_dropped(
    tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The noise model never ends a reply by itself: every sample is cut at --max-tokens 4.
    base = [
        "distill",
        "--model",
        str(tiny_model),
        "--prompts",
        BATTERY,
        "--samples",
        "2",
        "--max-tokens",
        "4",
        "--threshold",
        "-1000",
        "--limit",
        "2",
    ]
    dropped = tmp_path / "dropped.jsonl"
    assert (
        main([*base, "--output", str(dropped), "--truncated", "drop"]) == 1
    )  # nothing to train on
    (summary,) = read_lines(dropped)
    assert summary["probes"] == 2 and summary["total_generated"] == 4 and summary["total_kept"] == 0
    assert summary["truncated"] == "drop" and summary["hit_token_limit"] == 4
    assert "4/4 samples hit --max-tokens 4 mid-reply: dropped\n" in capsys.readouterr().err
    assert not d.progress_path(dropped).exists()

    kept = tmp_path / "kept.jsonl"
    assert main([*base, "--output", str(kept)]) == 0  # keep is the default (the research's)
    lines = read_lines(kept)
    assert [ln["type"] for ln in lines] == ["training"] * 4 + ["summary"]
    for ln in lines[:-1]:
        meta = ln["meta"]
        assert list(meta)[:10] == list(d.META_KEYS)  # research keys first, lemlab's after
        assert meta["finish_reason"] == "length" and meta["truncated"] is True
    assert {ln["meta"]["probe_id"] for ln in lines[:-1]} == {p.id for p in _probes()[:2]}
    assert lines[-1]["hit_token_limit"] == 4 and lines[-1]["truncated"] == "keep"
    assert (
        "kept where they scored enough, marked truncated in meta; a model trained on them learns the cut-off (pass --truncated drop"
        in capsys.readouterr().err
    )
    # Finished: a rerun with --resume sees the summary (no progress file needed) ...
    assert main([*base, "--output", str(kept), "--resume"]) == 0
    assert "already complete" in capsys.readouterr().out
    # ... and refuses other settings in one line.
    assert main([*base, "--output", str(kept), "--truncated", "drop", "--resume"]) == 2
    assert "settings differ: truncated was 'keep', now 'drop'" in capsys.readouterr().err
    from lemlab.commands.distill import prepare_distill
    from lemlab.core.errors import LemlabError

    with pytest.raises(LemlabError, match="--limit must be at least 1"):
        prepare_distill(
            model=str(tiny_model), prompts=BATTERY, output=tmp_path / "x.jsonl", limit=0
        )
