"""A run that diverges reports NaN / inf losses: lemlab's own trainer writes `NaN` into
events.jsonl and mlx-lm prints `nan` in its log. `watch` shows them (never exit 70, never a
dropped line)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lemlab.cli import main
from lemlab.core.training.events import parse_log_line

FIXTURES = Path(__file__).parent / "fixtures" / "training"


def _watch_once(path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    status = main(["watch", "--once", str(path)])
    out = capsys.readouterr()
    return status, out.out, out.err


def test_nan_losses_in_events_are_shown(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lines = (FIXTURES / "lemlab_events.jsonl").read_text().split("\n")[:3]
    more = [
        {
            "event": "train",
            "ts": "2026-11-24T06:11:53.4+00:00",
            "iteration": 10,
            "train_loss": float("nan"),
            "learning_rate": 1e-5,
            "tokens_per_second": 3000.0,
            "trained_tokens": 900,
            "peak_memory": 0.004,
        },
        {
            "event": "val",
            "ts": "2026-11-24T06:11:53.5+00:00",
            "iteration": 10,
            "val_loss": float("inf"),
            "val_time": 0.03,
        },
    ]
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(lines + [json.dumps(e) for e in more]) + "\n")  # NaN, Infinity
    assert "NaN" in path.read_text() and "Infinity" in path.read_text()
    status, out, err = _watch_once(path, capsys)
    assert status == 0 and "internal error" not in err, err
    assert "train loss nan" in out and "val loss   inf" in out
    assert "2 loss value(s) NaN or infinite: the run diverged" in out


def test_nan_lines_in_mlx_lm_logs_are_kept(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old = "Iter 15: Train loss nan, Learning Rate 1.000e-05, It/sec 53.420, Tokens/sec 4636.873, Trained Tokens 634, Peak mem 0.004 GB"
    (event,) = parse_log_line(old)
    assert event.iteration == 15 and event.train_loss != event.train_loss  # NaN
    (val,) = parse_log_line("Iter 20: Val loss inf, Val took 0.028s")
    assert val.val_loss == float("inf")
    (new,) = parse_log_line("    25   nan   ▲   4,201   1.2k")  # mlx-lm >= 0.32 table row
    assert new.iteration == 25 and new.train_loss != new.train_loss
    log = tmp_path / "train.log"
    log.write_text(
        "\n".join((FIXTURES / "mlx_lm_0.31.3_old_format.log").read_text().split("\n")[:12] + [old])
        + "\n"
    )
    status, out, _ = _watch_once(log, capsys)
    assert status == 0 and "train loss nan" in out and "at iteration 15" in out
