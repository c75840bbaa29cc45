"""`lemlab extract` and lemlab.core.distill.extract: dedup modes, probe-id order, the seeded split,
stats, tolerant reading (file:line) and the nothing-kept case. Inputs are small hand-written
self-distill files (the format is data); a real distill file goes through extract in
tests/test_pipeline.py."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from lemlab.cli import main
from lemlab.core.distill import extract as x

# (probe id, category, sample idx, score) in file order.
SAMPLES = [
    ("P02_B", "Ethics", 0, 25.0),
    ("P02_B", "Ethics", 1, 30.5),
    ("P02_B", "Ethics", 2, 30.5),  # ties with idx 1: best keeps idx 1
    ("P01_A", "Identity", 3, 24.0),
    ("P01_A", "Identity", 1, 26.0),
    ("P03_C", "ethics", 0, 28.0),
]


def training(pid: str, cat: str, idx: int, score: float) -> dict[str, Any]:
    msgs = [
        {"role": "user", "content": f"prompt {pid}"},
        {"role": "assistant", "content": f"reply {pid} #{idx}"},
    ]
    meta = {
        "probe_id": pid,
        "category": cat,
        "sample_idx": idx,
        "lek_score": score,
        "chars": 10,
        "time_s": 0.1,
        "model": "m",
        "threshold": 24.0,
        "temperature": 0.8,
        "ts": "t",
    }
    return {"type": "training", "training": {"messages": msgs}, "meta": meta}


SUMMARY = {
    "type": "summary",
    "model": "m",
    "probes": 4,
    "samples_per_probe": 4,
    "total_generated": 16,
    "total_kept": 6,
    "keep_rate": 37.5,
    "avg_kept_score": 27.33,
    "threshold": 24.0,
    "temperature": 0.8,
    "duration_s": 1.0,
    "ts": "t",
}


def write(path: Path, lines: list[Any], extra_text: str = "") -> Path:
    path.write_text("".join(json.dumps(ln) + "\n" for ln in lines) + extra_text, encoding="utf-8")
    return path


@pytest.fixture
def distilled(tmp_path: Path) -> Path:
    return write(tmp_path / "distill.jsonl", [training(*s) for s in SAMPLES] + [SUMMARY])


def replies(path: Path) -> list[str]:
    return [json.loads(ln)["messages"][1]["content"] for ln in path.read_text().splitlines()]


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("best", ["reply P01_A #1", "reply P02_B #1", "reply P03_C #0"]),
        ("first", ["reply P01_A #3", "reply P02_B #0", "reply P03_C #0"]),
        (
            "all",
            [
                "reply P01_A #1",
                "reply P01_A #3",
                "reply P02_B #0",
                "reply P02_B #1",
                "reply P02_B #2",
                "reply P03_C #0",
            ],
        ),
    ],
)
def test_dedup_modes_sorted_by_probe_id(
    distilled: Path, tmp_path: Path, mode: str, expected: list[str]
) -> None:
    out = tmp_path / f"{mode}.jsonl"
    assert main(["extract", "--input", str(distilled), "--output", str(out), "--dedup", mode]) == 0
    assert replies(out) == expected
    for line in out.read_text().splitlines():  # mlx-lm chat format, nothing else
        obj = json.loads(line)
        assert list(obj) == ["messages"] and [m["role"] for m in obj["messages"]] == [
            "user",
            "assistant",
        ]


@pytest.mark.parametrize(
    ("n", "train", "valid"), [(1, 1, 0), (2, 1, 1), (5, 4, 1), (10, 9, 1), (25, 22, 3), (30, 27, 3)]
)
def test_split_counts(n: int, train: int, valid: int) -> None:
    examples = [x.KeptSample(f"P{i:03d}", 0, 1.0, "c", [], i) for i in range(n)]
    t, v = x.split_examples(examples, 0.9, seed=42)
    assert (len(t), len(v)) == (train, valid)
    assert sorted(e.probe_id for e in t + v) == [e.probe_id for e in examples]
    assert [e.probe_id for e in t] == sorted(e.probe_id for e in t)  # each part keeps probe order


def test_split_is_seeded(tmp_path: Path) -> None:
    lines = [training(f"P{i:02d}", "c", 0, 30.0) for i in range(40)]
    src = write(tmp_path / "d.jsonl", lines)
    for name, seed in (("a", "42"), ("b", "42"), ("c", "7")):
        assert (
            main(
                [
                    "extract",
                    "--input",
                    str(src),
                    "--output",
                    str(tmp_path / name),
                    "--split",
                    "--seed",
                    seed,
                ]
            )
            == 0
        )
    valid = {n: replies(tmp_path / n / "valid.jsonl") for n in "abc"}
    assert len(valid["a"]) == 4 and valid["a"] == valid["b"] and valid["a"] != valid["c"]
    assert len(replies(tmp_path / "a" / "train.jsonl")) == 36


def test_stats_from_the_summary_line(
    distilled: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "data"
    assert (
        main(
            [
                "extract",
                "--input",
                str(distilled),
                "--output",
                str(out),
                "--stats",
                "--split",
                "0.5",
            ]
        )
        == 0
    )
    text = capsys.readouterr().out
    for expected in (
        "generated   16",
        "kept        6",
        "keep rate   37.5%",
        "examples    3",
        "probes      3",
        "min 26.00  avg 28.17  max 30.50",
        "train 1  valid 2",
        "ethics               2",
        "identity             1",
    ):
        assert expected in text
    assert (out / "train.jsonl").is_file() and (out / "valid.jsonl").is_file()


def test_stats_without_a_summary(tmp_path: Path) -> None:
    src = write(tmp_path / "d.jsonl", [training(*s) for s in SAMPLES])
    df = x.read_distill(src)
    stats = x.compute_stats(df, x.dedup(df.samples, "all"))
    assert (stats.generated, stats.kept, stats.keep_rate, stats.examples) == (None, 6, None, 6)
    assert "generated   ?" in stats.lines()


def test_malformed_lines_are_reported_and_skipped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = dict(training("P09_X", "c", 0, 1.0))
    bad["meta"] = {**bad["meta"], "sample_idx": "zero"}
    src = write(
        tmp_path / "d.jsonl",
        [training(*SAMPLES[0]), "just a string", bad, {"type": "other"}],
        extra_text='{"type": "training", "trai',
    )
    out = tmp_path / "o.jsonl"
    assert main(["extract", "--input", str(src), "--output", str(out)]) == 1
    err = capsys.readouterr().err
    for n, reason in (
        (2, "not a JSON object"),
        (3, "meta.sample_idx must be an integer"),
        (4, "unknown line type 'other'"),
        (5, "invalid JSON"),
    ):
        assert f"{src}:{n}: {reason}" in err
    assert "4 malformed lines skipped" in err
    assert replies(out) == ["reply P02_B #0"]  # the good line is still written


def test_nothing_kept_writes_nothing_and_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = write(tmp_path / "d.jsonl", [{**SUMMARY, "total_kept": 0, "keep_rate": 0.0}])
    out = tmp_path / "o.jsonl"
    assert main(["extract", "--input", str(src), "--output", str(out), "--stats"]) == 1
    captured = capsys.readouterr()
    assert "nothing passed the threshold" in captured.err and "examples    0" in captured.out
    assert not out.exists()


def test_bad_arguments(distilled: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(
            ["extract", "--input", str(tmp_path / "missing.jsonl"), "--output", str(tmp_path / "o")]
        )
        == 2
    )
    assert "no such file" in capsys.readouterr().err
    assert (
        main(
            [
                "extract",
                "--input",
                str(distilled),
                "--output",
                str(tmp_path / "o"),
                "--split",
                "1.5",
            ]
        )
        == 2
    )
    assert "--split must be between 0 and 1" in capsys.readouterr().err
    assert main(["extract", "--input", str(distilled), "--output", str(distilled)]) == 2
    assert "--output would replace its own input" in capsys.readouterr().err


def test_ab_run_file_is_refused_in_one_line(tmp_path: Path) -> None:
    import shutil
    import subprocess
    import sys

    src = tmp_path / "run.jsonl"
    shutil.copy(Path(__file__).parent / "fixtures" / "abfile-v1-sample.jsonl", src)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "lemlab",
            "extract",
            "--input",
            str(src),
            "--output",
            str(tmp_path / "o.jsonl"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"lemlab: error: {src} is an A/B run file (from `lemlab ab`), not self-distill output "
        "(from `lemlab distill`)"
    ]
    assert not (tmp_path / "o.jsonl").exists()
