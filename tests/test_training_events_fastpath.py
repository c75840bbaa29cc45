"""The whole-text fast paths of parse_lines / event_from_dict give the same events as the
per-line parsers they stand in for."""

from __future__ import annotations

import gc
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from lemlab.core.training.events import (
    ANSI_RE,
    event_from_dict,
    load_run,
    parse_lines,
    parse_log_line,
    strip_ansi,
)
from lemlab.core.training.textchart import _columns

_LINES = [
    "  \x1b[38;5;244m  10\x1b[0m    \x1b[1;32m5.123 ▼\x1b[0m    \x1b[1m4,321\x1b[0m    0.9k",
    "    20    val 4.500    0.03s",
    "\t30\x0b 1.5e-1 ▲  12  3k  ",
    "  40    2.000 ▼    1,000    1.2k\r  41    1.900 ▼    1,000    1.3k",
    "  save  adapters/0000040_adapters.safetensors",
    "Iter 50: Train loss 2.1, Learning Rate 1e-5, It/sec 1.2, Tokens/sec 300, Trained Tokens 900, Peak mem 1.5 GB",
    "Iter 50: Val loss 2.0, Val took 0.5s",
    "Starting training..., iters: 60",
    "Saved final weights to adapters/adapters.safetensors.",
    "batch · iters    4 · 1,000",
    "  12 val",
    "garbage 12 3.0 ▼ 4 5k",
    "x",
    "7",
    "",
    "   ",
    "\x1b]0;title\x07  70    val 1.000    0.10s",
]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.sampled_from(_LINES), max_size=12))
def test_log_batch_matches_per_line_parser(lines: list[str]) -> None:
    expected = [ev for line in lines for ev in parse_log_line(line)]
    assert parse_lines(lines, events_format=False) == expected


_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-5, 5), st.floats(-2, 2), st.text(max_size=3)
)


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(["train", "val", "done", "nope"]),
    st.dictionaries(
        st.sampled_from(
            ["iteration", "train_loss", "trained_tokens", "path", "message", "ts", "other"]
        ),
        _VALUES,
    ),
)
def test_event_from_dict_types(kind: str, fields: dict[str, object]) -> None:
    ev = event_from_dict({"event": kind, **fields})
    if kind == "nope":
        assert ev is None
        return
    assert ev is not None and ev.kind == kind
    for name in ("iteration", "trained_tokens"):
        v = fields.get(name)
        assert getattr(ev, name) == (int(v) if type(v) in (int, float) else None)
    v = fields.get("train_loss")
    assert ev.train_loss == (float(v) if type(v) in (int, float) else None)
    for name in ("path", "message"):
        v = fields.get(name)
        assert getattr(ev, name) == (v if type(v) is str else None)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(st.integers(-50, 5000), st.floats(-10, 10)), min_size=1, max_size=200),
    st.integers(10, 160),
    st.integers(0, 6000),
)
def test_sorted_chart_columns_match_general_loop(
    points: list[tuple[int, float]], width: int, total: int
) -> None:
    points.sort(key=lambda p: p[0])
    lo_x = min(points[0][0], 1)
    hi_x = max(points[-1][0], total)
    span = max(hi_x - lo_x, 1)
    sums: dict[int, list[float]] = {}
    for x, y in points:  # the general loop, written out
        acc = sums.setdefault(min(width - 1, (x - lo_x) * (width - 1) // span), [0.0, 0.0])
        acc[0] += y
        acc[1] += 1
    assert _columns(points, lo_x, hi_x, width) == {c: s / n for c, (s, n) in sums.items()}


_ANSI_BITS = [
    "\x1b[0m",
    "\x1b[1;32m",
    "\x1b[38;5;244m",
    "\x1b[",
    "\x1b(",
    "\x1b",
    "A",
    "0m",
    "1",
    "\x1b]t\x07",
    "\n",
]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(_ANSI_BITS), max_size=20), st.booleans())
def test_strip_ansi_matches_regex(bits: list[str], tail_first: bool) -> None:
    body = "\x1b[38;5;244m  12\x1b[0m    \x1b[1;32m5.000 ▼\x1b[0m\n" * 2000  # past the sample size
    tail = "".join(bits)
    text = tail + body if tail_first else body + tail
    assert strip_ansi(text) == ANSI_RE.sub("", text)


def test_bulk_poll_restores_garbage_collector(tmp_path: Path) -> None:
    log = tmp_path / "train.log"
    log.write_text(
        "".join(
            f"  {i}    {5 - i / 1e5:.3f} ▼    1,000    {i * 0.1:.1f}k\n" for i in range(1, 12_001)
        )
    )
    assert gc.isenabled()
    state = load_run(log)
    assert gc.isenabled() and len(state.train_points) == 12_000 and state.iteration == 12_000
    gc.disable()
    try:
        load_run(log)
        assert not gc.isenabled()  # a caller's own setting is left alone
    finally:
        gc.enable()
