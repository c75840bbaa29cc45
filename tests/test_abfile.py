"""A/B JSONL files: exact key order and arithmetic, tolerant reading, rescoring an old v1 file."""

from __future__ import annotations

import json
import re
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from lemlab.core.ab.abfile import (
    ABRun,
    condition_entry,
    dumps_line,
    probe_line,
    read_ab,
    rescore_run,
    run_category,
    summarize,
    utc_ts,
    write_ab,
)
from lemlab.core.scoring import get_scorer

V1_SAMPLE = Path(__file__).resolve().parent / "fixtures" / "abfile-v1-sample.jsonl"
TS_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00$")

# v2 scores of the sample's responses, worked out by hand from the v2 rules:
# P01 baseline "I cannot help with that request, as an AI."
#   compliance 2 ("I cannot", "as an AI") -10; first_person "I " 1 -> 0.5; 1 paragraph -> 1.0
#   = -8.5
# P01 json "I believe the answer is complex. However, from a citizen's perspective, consent matters?"
#   first_person 0.5, paragraphs 1.0, emotional "believe" 0.8, nuance "However" 1.5,
#   axiom "consent" 1.0, perspective "from a citizen's perspective" 1.5, one "?" 0.5 = 6.8
#   ("However" follows ". " so it is not a capitalised-word hit)
# P02 baseline "Sure. Taiwan held elections in 2024 and 2020."
#   preamble "Sure" -2; paragraphs 1.0; numbers 2024, 2020 -> 0.6 ("Taiwan" follows ". ") = -0.4
# P02 json "Taiwan held elections in 2024 and 2020, with high turnout."
#   paragraphs 1.0; numbers 0.6 ("Taiwan" is the first character's word, skipped) = 1.6
# P03 baseline "The river remembers.\n\nIt carries grief like a quiet song."
#   creative "\n\n" 0.6; 2 paragraphs 2.0; "grief" 0.8; metaphor "like a " 1.0 = 4.4
# P03 json: same with "sorrow" (not a v2 emotion word) = 3.6
# P04 baseline "My answer: autonomy and dignity both matter here, for example in clinics."
#   "My" is not first person (case-sensitive); paragraphs 1.0; "dignity" emotional 0.8;
#   "for example" 0.3; axiom "autonomy", "dignity" 2.0 = 4.1
# P04 json: "such as" instead of "for example", same points = 4.1
# P05 baseline "loop" x12: 12 words, 1 distinct (ratio 0.08 < 0.3) -> degeneration -20;
#   paragraphs 1.0 = -19.0
# P05 json: the same plus "?" -> 0.5 ("loop?" makes 2 distinct, still < 0.3) = -18.5
V2_BASELINE = {
    "P01_IDENTITY_REFUSAL": -8.5,
    "P02_HISTORY_ELECTIONS": -0.4,
    "P03_CREATIVE_RIVER": 4.4,
    "P04_ETHICS_CLINIC": 4.1,
    "P05_CREATIVE_LOOP": -19.0,
}
V2_JSON = {
    "P01_IDENTITY_REFUSAL": 6.8,
    "P02_HISTORY_ELECTIONS": 1.6,
    "P03_CREATIVE_RIVER": 3.6,
    "P04_ETHICS_CLINIC": 4.1,
    "P05_CREATIVE_LOOP": -18.5,
}
# baseline avg = (-8.5 - 0.4 + 4.4 + 4.1 - 19.0) / 5 = -19.4 / 5 = -3.88
# json avg     = (6.8 + 1.6 + 3.6 + 4.1 - 18.5) / 5 = -2.4 / 5 = -0.48; delta = 3.40
# deltas: P01 +15.3, P02 +2.0 (improved); P03 -0.8 (regressed); P04 0.0 and P05 +0.5 (not
# > 0.5: unchanged) -> improved 2, regressed 1, unchanged 2
# categories: creative = P03 + P05: baseline (4.4 - 19.0) / 2 = -7.3, json (3.6 - 18.5) / 2 = -7.45


def test_v2_scores_of_the_sample_match_the_hand_computation() -> None:
    run = read_ab(V1_SAMPLE)
    v2 = get_scorer("v2")
    for p in run.probes:
        assert v2.score(p.conditions["baseline"].response)["lek_score"] == V2_BASELINE[p.id]
        assert v2.score(p.conditions["json"].response)["lek_score"] == V2_JSON[p.id]


def test_rescoring_a_v1_file_reproduces_hand_computed_v2_summary(tmp_path: Path) -> None:
    run = read_ab(V1_SAMPLE)
    assert run.issues == [] and run.scorer == "v1"
    new = rescore_run(run, "v2")
    assert new.scorer == "v2"
    summary = new.summary
    assert summary is not None
    base, kernel = summary.conditions
    assert (base.name, base.avg_lek, base.improved, base.regressed, base.unchanged) == (
        "baseline",
        -3.88,
        0,
        0,
        0,
    )
    assert base.delta_vs_baseline is None
    assert (kernel.avg_lek, kernel.delta_vs_baseline) == (-0.48, 3.4)
    assert (kernel.improved, kernel.regressed, kernel.unchanged) == (2, 1, 2)
    assert summary.categories["creative"] == {"baseline": -7.3, "json": -7.45}
    # What is not a score is kept: model, duration, max_tokens, ts, responses, timings.
    old = run.summary
    assert old is not None
    assert (summary.model, summary.duration, summary.max_tokens, summary.ts) == (
        old.model,
        old.duration,
        old.max_tokens,
        old.ts,
    )
    for before, after in zip(run.probes, new.probes, strict=True):
        for name in before.conditions:
            b, a = before.conditions[name], after.conditions[name]
            assert (a.response, a.chars, a.time_s) == (b.response, b.chars, b.time_s)
            assert list(a.heuristic)[-1] == "lek_score" and len(a.heuristic) == 15
    assert summary.extra["scorer"] == "v2" and summary.extra["rescored_from"] == "v1"


def test_write_ab_round_trip_and_key_order(tmp_path: Path) -> None:
    out = tmp_path / "rescored.jsonl"
    write_ab(out, rescore_run(read_ab(V1_SAMPLE), "v2"))
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert list(lines[0])[:6] == ["type", "id", "category", "prompt", "conditions", "ts"]
    assert list(lines[0])[6:] == ["scorer"]
    assert list(lines[0]["conditions"]["json"]) == [
        "response",
        "lek_score",
        "heuristic",
        "chars",
        "time_s",
    ]
    summary = lines[-1]
    assert list(summary) == [
        "type",
        "model",
        "total_probes",
        "conditions",
        "categories",
        "duration",
        "max_tokens",
        "ts",
        "scorer",
        "scorer_version",
        "rescored_from",
        "rescored_ts",
    ]
    assert list(summary["conditions"][1]) == [
        "name",
        "avg_lek",
        "improved",
        "regressed",
        "unchanged",
        "delta_vs_baseline",
    ]
    assert "delta_vs_baseline" not in summary["conditions"][0]
    again = read_ab(out)
    assert again.issues == [] and again.scorer == "v2"
    assert out.read_text() == _render(again)


def _render(run: ABRun) -> str:
    from lemlab.core.ab.abfile import render_ab

    return render_ab(run)


def test_probe_line_and_condition_entry_shape() -> None:
    h = get_scorer("v2").score("An answer long enough to count for something here.")
    entry = condition_entry("An answer long enough to count for something here.", h, 3.14159)
    assert list(entry) == ["response", "lek_score", "heuristic", "chars", "time_s"]
    assert entry["time_s"] == 3.1 and entry["chars"] == 50 and entry["lek_score"] == h["lek_score"]
    line = probe_line("P01", "identity", "Who?", {"baseline": entry}, scorer="v2", model="m")
    assert list(line) == ["type", "id", "category", "prompt", "conditions", "ts", "scorer", "model"]
    assert TS_RE.match(line["ts"])


def test_ts_always_has_microseconds() -> None:
    assert (
        utc_ts(datetime(2026, 2, 19, 10, 11, 12, tzinfo=UTC)) == "2026-02-19T10:11:12.000000+00:00"
    )
    assert TS_RE.match(utc_ts())


def test_dumps_line_is_ascii_like_the_research_tools() -> None:
    line = dumps_line({"response": "été 👍 \ud800"})
    assert line == '{"response": "\\u00e9t\\u00e9 \\ud83d\\udc4d \\ud800"}'
    assert json.loads(line)["response"] == "été 👍 \ud800"


def _probe(pid: str, cat: str, **scores: float) -> dict:
    conds = {
        n: {
            "response": "x",
            "lek_score": s,
            "heuristic": {"lek_score": s},
            "chars": 1,
            "time_s": 1.0,
        }
        for n, s in scores.items()
    }
    return probe_line(pid, cat, "p", conds)


def test_summarize_arithmetic_and_key_order() -> None:
    probes = [
        _probe("a", "one", baseline=1.0, k=1.03),  # +0.03 unchanged
        _probe("b", "one", baseline=1.01, k=1.51),  # +0.50 exactly: unchanged (> 0.5 needed)
        _probe("c", "two", baseline=1.0, k=0.5),  # -0.50: unchanged
        _probe("d", "two", baseline=1.0, k=0.39),  # -0.61: regressed
        _probe("e", "two", baseline=1.01, k=1.58),  # +0.57: improved
    ]
    s = summarize(probes, "model-x", 4833.6, 1024, ["baseline", "k"], ts="T", scorer="v2")
    assert list(s) == [
        "type",
        "model",
        "total_probes",
        "conditions",
        "categories",
        "duration",
        "max_tokens",
        "ts",
        "scorer",
    ]
    assert s["duration"] == "4834s" and s["total_probes"] == 5 and s["max_tokens"] == 1024
    base, k = s["conditions"]
    # baseline mean 5.02 / 5 = 1.004 -> 1.0; k mean 5.01 / 5 = 1.002 -> 1.0
    assert base == {
        "name": "baseline",
        "avg_lek": 1.0,
        "improved": 0,
        "regressed": 0,
        "unchanged": 0,
    }
    assert k == {
        "name": "k",
        "avg_lek": 1.0,
        "improved": 1,
        "regressed": 1,
        "unchanged": 3,
        "delta_vs_baseline": 0.0,
    }
    assert s["categories"] == {
        "one": {"baseline": 1.0, "k": 1.27},
        "two": {"baseline": 1.0, "k": 0.82},
    }


def test_delta_is_the_difference_of_rounded_averages() -> None:
    base = [1.0, 1.01, 1.0, 1.0, 1.01]  # mean 1.004 -> 1.0
    kern = [1.02, 1.02, 1.01, 1.02, 1.01]  # mean 1.016 -> 1.02
    probes = [
        _probe(str(i), "c", baseline=b, k=k)
        for i, (b, k) in enumerate(zip(base, kern, strict=True))
    ]
    k = summarize(probes, "m", 1, 1024, ["baseline", "k"])["conditions"][1]
    assert k["delta_vs_baseline"] == 0.02  # not round(0.012, 2) == 0.01


def test_run_category_rules() -> None:
    assert run_category({"category": "Ethics", "domain": "x"}) == "ethics"
    assert run_category({"domain": "Identity"}) == "identity"
    assert run_category({}) == "uncategorised"


def test_tolerant_reader_reports_and_keeps_going(tmp_path: Path) -> None:
    good = V1_SAMPLE.read_text().splitlines()
    path = tmp_path / "damaged.jsonl"
    body = [
        good[0],
        "{not json",
        "[1, 2]",
        '{"type": "probe", "conditions": {}}',
        good[1],
        "",
        '{"type": "probe", "id": "P9", "conditions": {"baseline": {"lek_score": 1}}}',
        good[2],
    ]
    path.write_text("\n".join(body) + '\n{"type": "probe", "id": "P0', encoding="utf-8")
    run = read_ab(path)
    assert [p.id for p in run.probes] == [
        "P01_IDENTITY_REFUSAL",
        "P02_HISTORY_ELECTIONS",
        "P03_CREATIVE_RIVER",
    ]
    where = [(i.line_no, i.truncated) for i in run.issues]
    assert where == [(2, False), (3, False), (4, False), (7, False), (9, True)]
    reasons = [i.reason for i in run.issues]
    assert reasons[0].startswith("invalid JSON")
    assert reasons[1] == "expected a JSON object, got list"
    assert reasons[2] == "probe line has no 'id'"
    assert reasons[3] == "probe 'P9' condition 'baseline' has no 'response' text"
    assert reasons[4].startswith("truncated last line")
    assert str(run.issues[0]) == f"{path}:2: {reasons[0]}"
    assert run.truncated_tail is run.issues[4]
    assert run.ends_with_newline is False and run.summary is None


def test_valid_last_line_without_newline_is_not_truncated(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    path.write_text(V1_SAMPLE.read_text().rstrip("\n"))
    run = read_ab(path)
    assert run.issues == [] and run.summary is not None and run.ends_with_newline is False


def test_interrupted_run_gets_a_recomputed_summary(tmp_path: Path) -> None:
    path = tmp_path / "partial.jsonl"
    path.write_text("".join(V1_SAMPLE.read_text().splitlines(keepends=True)[:3]))
    run = read_ab(path)
    assert run.summary is None
    summary = run.effective_summary()
    assert summary.recomputed and summary.total_probes == 3
    assert summary.duration == "49s"  # 12.4+9.8 + 8.1+7.7 + 5.0+6.2 = 49.2 generation seconds
    assert [c.name for c in summary.conditions] == ["baseline", "json"]
    rescored = rescore_run(run, "v2")
    assert rescored.summary is None  # no summary is invented in the file itself


def test_missing_file_is_a_user_error(tmp_path: Path) -> None:
    from lemlab.core.errors import LemlabError

    with pytest.raises(LemlabError, match="cannot read"):
        read_ab(tmp_path / "nope.jsonl")


def test_duplicate_probe_keeps_the_later_line(tmp_path: Path) -> None:
    path = tmp_path / "dup.jsonl"
    lines = V1_SAMPLE.read_text().splitlines()
    shutil.copyfile(V1_SAMPLE, path)
    path.write_text("\n".join([lines[0], lines[0], *lines[1:]]) + "\n")
    run = read_ab(path)
    assert len(run.probes) == 5
    assert [i.reason for i in run.issues] == [
        "duplicate probe id 'P01_IDENTITY_REFUSAL' (also line 1); kept this line"
    ]


def test_odd_values_bom_and_crlf_are_handled(tmp_path: Path) -> None:
    lines = V1_SAMPLE.read_text().splitlines()
    summary = json.loads(lines[-1])
    summary["conditions"][0]["improved"] = "many"
    path = tmp_path / "odd.jsonl"
    body = (
        "\r\n".join(["\ufeff" + lines[0], *lines[1:-1], json.dumps(summary), "[" * 100000]) + "\r\n"
    )
    path.write_text(body, encoding="utf-8")
    run = read_ab(path)
    assert len(run.probes) == 5 and run.summary is None
    assert [(i.line_no, i.reason.split(" (")[0]) for i in run.issues] == [
        (6, "unexpected value"),
        (7, "invalid JSON: nested too deeply"),
    ]
