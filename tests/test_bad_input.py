"""Bad input of every family gets one line on stderr starting `lemlab: error:`, exit status 2,
and leaves every file as it was (same bytes, same mode, nothing new written). Each case is a real
`lemlab.cli.main([...])` call, the way the console script runs it."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from lemlab.cli import main

FIXTURES = Path(__file__).parent / "fixtures"
BATTERY = json.dumps([{"id": "P1", "domain": "Care", "prompt": "Is it kind to tell the truth?"}])
DEEP = "[" * 100_000 + "]" * 100_000
PIPELINE = """\
output = "out"
model = "no-such-model"
[[phase]]
name = "one"
prompts = "battery.json"
"""


def _files(tmp: Path) -> dict[str, bytes]:
    """What every case starts from: a battery, an A/B file, a few TOML files, a data folder."""
    sample = (FIXTURES / "abfile-v1-sample.jsonl").read_bytes()
    return {
        "battery.json": BATTERY.encode(),
        "deep.json": DEEP.encode(),
        "big.txt": b"Be kind. " * 100_000,
        "long.json": json.dumps(
            [{"id": "P1", "domain": "Care", "prompt": "why? " * 50_000}]
        ).encode(),
        "run.jsonl": sample,
        "empty.jsonl": b"",
        "garbage.jsonl": b"\x00\xff not json at all\n{{{\n",
        "notab.jsonl": b'{"hello": "world"}\n[1, 2, 3]\n',
        "list.jsonl": b"[]\n",
        "deep.jsonl": (DEEP + "\n").encode(),
        "pipeline-nan.toml": (PIPELINE + "threshold = nan\n").encode(),
        "pipeline-inf.toml": (PIPELINE + "temperature = inf\n").encode(),
        "pipeline-latin1.toml": (PIPELINE + 'note = "caf\xe9"\n').encode("latin-1"),
        "curriculum-latin1.toml": 'output = "o"\nnote = "caf\xe9"\n'.encode("latin-1"),
        "pipeline-seed.toml": (PIPELINE + "seed = -1\n").encode(),
        "pipeline-samples.toml": (PIPELINE + "samples = 0\n").encode(),
        "train-seed.toml": b"[train]\nseed = 18446744073709551616\n",
        "train-nan.toml": b"[train]\nlearning_rate = nan\n",
        "train-inf.toml": b"[train]\nscale = inf\n",
        "train-latin1.toml": '[train]\nmodel = "caf\xe9"\n'.encode("latin-1"),
        "a-file": b"not a folder\n",
        "data/train.jsonl": b'{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}\n',
        "data/valid.jsonl": b'{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}\n',
        "badmodel/config.json": b"{ this is not json",
        "badmodel/model.safetensors": b"\x08\x00\x00\x00\x00\x00\x00\x00{}      ",
    }


def _home_config(home: Path, text: bytes) -> None:
    from lemlab.core.paths import get_paths

    cfg = get_paths().config_file
    assert home in cfg.parents
    cfg.parent.mkdir(parents=True, exist_ok=True)
    cfg.write_bytes(text)


M = "--model=no-such-model"
AB = ["ab", M, "--prompts", "{d}/battery.json", "--output", "{d}/o.jsonl"]
DISTILL = ["distill", M, "--prompts", "{d}/battery.json", "--output", "{d}/o.jsonl"]
CHAT = ["chat", M, "--prompt", "hi"]

# (case id, argv with {d} for the case's folder, words the line must hold, config.toml bytes)
CASES: list[tuple[str, list[str], str, bytes | None]] = [
    # NaN / Inf / out-of-range numbers on flags: caught before any model loads.
    ("chat-temp-nan", [*CHAT, "--temp", "nan"], "--temp", None),
    ("chat-temp-inf", [*CHAT, "--temp", "inf"], "--temp", None),
    ("chat-top-p-nan", [*CHAT, "--top-p", "nan"], "--top-p", None),
    ("chat-seed-negative", [*CHAT, "--seed", "-1"], "--seed", None),
    ("chat-seed-huge", [*CHAT, "--seed", str(2**64)], "--seed", None),
    ("chat-max-tokens-huge", [*CHAT, "--max-tokens", str(10**10)], "--max-tokens", None),
    ("ab-temp-nan", [*AB, "--temp", "nan"], "--temp", None),
    ("ab-top-p-inf", [*AB, "--top-p", "inf"], "--top-p", None),
    ("ab-retry-delay-inf", [*AB, "--retry-delay", "inf"], "--retry-delay", None),
    ("ab-retry-delay-nan", [*AB, "--retry-delay", "nan"], "--retry-delay", None),
    ("ab-seed-huge", [*AB, "--seed", str(2**64)], "--seed", None),
    ("ab-limit-zero", [*AB, "--limit", "0"], "--limit", None),
    ("distill-threshold-nan", [*DISTILL, "--threshold", "nan"], "--threshold", None),
    ("distill-threshold-inf", [*DISTILL, "--threshold", "-inf"], "--threshold", None),
    ("distill-temperature-nan", [*DISTILL, "--temperature", "nan"], "--temperature", None),
    ("distill-seed-negative", [*DISTILL, "--seed", "-3"], "--seed", None),
    ("distill-samples-huge", [*DISTILL, "--samples", str(10**9)], "--samples", None),
    ("watch-interval-nan", ["watch", "{d}/run.jsonl", "--interval", "nan"], "--interval", None),
    ("watch-interval-zero", ["watch", "{d}/run.jsonl", "--interval", "0"], "--interval", None),
    (
        "extract-split-nan",
        ["extract", "--input", "{d}/run.jsonl", "--output", "{d}/x", "--split", "nan"],
        "--split",
        None,
    ),
    (
        "train-lr-nan",
        ["train", "--model", "{d}/badmodel", "--data", "{d}/data", "--learning-rate", "nan"],
        "--learning-rate",
        None,
    ),
    (
        "train-rank-huge",
        ["train", "--model", "{d}/badmodel", "--data", "{d}/data", "--rank", "100000000"],
        "rank must be at most",
        None,
    ),
    (
        "train-batch-huge",
        ["train", "--model", "{d}/badmodel", "--data", "{d}/data", "--batch-size", "5000"],
        "batch_size must be at most",
        None,
    ),
    ("tiny-hidden-huge", ["make-tiny-model", "{d}/tiny", "--hidden", "1048576"], "--hidden", None),
    ("tiny-layers-huge", ["make-tiny-model", "{d}/tiny", "--layers", "100000"], "--layers", None),
    ("models-depth-huge", ["models", "--depth", "100000"], "--depth", None),
    ("argparse-unknown-flag", [*AB, "--no-such-flag"], "unrecognized", None),
    ("argparse-not-a-number", [*AB, "--temp", "warm"], "--temp", None),
    ("argparse-missing-required", ["ab", M], "required", None),
    # NaN / Inf and bad bytes in TOML files.
    (
        "pipeline-threshold-nan",
        ["pipeline", "--dry-run", "{d}/pipeline-nan.toml"],
        "threshold",
        None,
    ),
    (
        "pipeline-temperature-inf",
        ["pipeline", "--dry-run", "{d}/pipeline-inf.toml"],
        "temperature",
        None,
    ),
    (
        "pipeline-seed-negative",
        ["pipeline", "--dry-run", "{d}/pipeline-seed.toml"],
        "seed must be at least 0",
        None,
    ),
    (
        "pipeline-samples-zero",
        ["pipeline", "--dry-run", "{d}/pipeline-samples.toml"],
        "samples must be at least 1",
        None,
    ),
    (
        "train-config-seed-huge",
        ["train", "-c", "{d}/train-seed.toml"],
        "seed must be at most 4294967295",
        None,
    ),
    ("pipeline-not-utf8", ["pipeline", "--dry-run", "{d}/pipeline-latin1.toml"], "UTF-8", None),
    (
        "curriculum-not-utf8",
        ["curriculum", "--dry-run", "{d}/curriculum-latin1.toml"],
        "UTF-8",
        None,
    ),
    ("train-config-nan", ["train", "-c", "{d}/train-nan.toml"], "learning_rate", None),
    ("train-config-inf", ["train", "-c", "{d}/train-inf.toml"], "scale", None),
    ("train-config-not-utf8", ["train", "-c", "{d}/train-latin1.toml"], "UTF-8", None),
    ("config-temperature-nan", ["models"], "temperature", b"temperature = nan\n"),
    ("config-seed-huge", ["models"], "seed", b"seed = 18446744073709551616\n"),
    ("config-not-utf8", ["models"], "UTF-8", 'theme = "caf\xe9"\n'.encode("latin-1")),
    (
        "config-endpoint-timeout-nan",
        ["chat", "--model", "endpoint:a", "--prompt", "hi"],
        "timeout",
        b'[endpoints.a]\nurl = "http://h:1/v1"\ntimeout = nan\n',
    ),
    (
        "config-endpoint-not-utf8",
        ["chat", "--model", "endpoint:a", "--prompt", "hi"],
        "UTF-8",
        '[endpoints.a]\nurl = "http://h:1/v1"\nmodel = "caf\xe9"\n'.encode("latin-1"),
    ),
    # JSON nested too deeply.
    (
        "ab-prompt-too-long",
        ["ab", M, "--prompts", "{d}/long.json", "--output", "{d}/o.jsonl"],
        "--allow-large",
        None,
    ),
    ("ab-kernel-too-big", [*AB, "--kernel", "big={d}/big.txt"], "--allow-large", None),
    (
        "ab-battery-deep",
        ["ab", M, "--prompts", "{d}/deep.json", "--output", "{d}/o.jsonl"],
        "deep",
        None,
    ),
    ("report-deep", ["report", "{d}/deep.jsonl"], "deep", None),
    ("rescore-deep", ["rescore", "{d}/deep.jsonl", "--out", "{d}/r.jsonl"], "deep", None),
    # Files that are not A/B runs, folders that are not folders.
    ("report-empty", ["report", "{d}/empty.jsonl"], "empty", None),
    ("report-garbage", ["report", "{d}/garbage.jsonl"], "", None),
    ("report-not-ab", ["report", "{d}/notab.jsonl"], "", None),
    ("report-list", ["report", "{d}/list.jsonl"], "", None),
    ("report-missing", ["report", "{d}/nope.jsonl"], "", None),
    ("report-vs-empty", ["report", "{d}/run.jsonl", "--vs", "{d}/empty.jsonl"], "empty", None),
    ("rescore-garbage", ["rescore", "{d}/garbage.jsonl", "--out", "{d}/r.jsonl"], "", None),
    ("rescore-empty", ["rescore", "{d}/empty.jsonl", "--out", "{d}/r.jsonl"], "", None),
    ("rescore-not-ab", ["rescore", "{d}/notab.jsonl", "--out", "{d}/r.jsonl"], "", None),
    (
        "extract-garbage",
        ["extract", "--input", "{d}/garbage.jsonl", "--output", "{d}/x"],
        "not self-distill output",
        None,
    ),
    (
        "extract-not-distill",
        ["extract", "--input", "{d}/notab.jsonl", "--output", "{d}/x"],
        "not self-distill output",
        None,
    ),
    (
        "extract-deep",
        ["extract", "--input", "{d}/deep.jsonl", "--output", "{d}/x"],
        "nested too deeply",
        None,
    ),
    ("probes-dir-missing", ["probes", "--dir", "{d}/missing"], "missing", None),
    ("probes-dir-file", ["probes", "--dir", "{d}/a-file"], "a-file", None),
    ("sessions-dir-file", ["sessions", "--dir", "{d}/a-file"], "a-file", None),
    ("sessions-dir-missing", ["sessions", "--dir", "{d}/missing"], "missing", None),
    (
        "train-garbage-config-json",
        [
            "train",
            "--model",
            "{d}/badmodel",
            "--data",
            "{d}/data",
            "--adapter-path",
            "{d}/adapter",
            "--yes",
        ],
        "config.json",
        None,
    ),
]


def _snapshot(root: Path) -> dict[str, tuple[bytes, int]]:
    return {
        str(p.relative_to(root)): (p.read_bytes(), p.stat().st_mode)
        for p in sorted(root.rglob("*"))
        if p.is_file()
    } | {
        str(p.relative_to(root)) + "/": (b"", p.stat().st_mode)
        for p in root.rglob("*")
        if p.is_dir()
    }


def run_case(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    status, err, _ = run_with_output(argv, capsys)
    return status, err


def run_with_output(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        status = main(argv)
    except SystemExit as exc:  # argparse
        status = exc.code if isinstance(exc.code, int) else 2
    captured = capsys.readouterr()
    return status, captured.err, captured.out


@pytest.mark.parametrize(
    ("argv", "words", "config"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_bad_input_is_one_line_and_exit_2(
    tmp_path: Path,
    lemlab_home: Path,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    words: str,
    config: bytes | None,
) -> None:
    d = tmp_path / "case"
    for name, data in _files(d).items():
        (d / name).parent.mkdir(parents=True, exist_ok=True)
        (d / name).write_bytes(data)
    if config is not None:
        _home_config(lemlab_home, config)
    before, home_before = _snapshot(d), _snapshot(lemlab_home)
    status, err = run_case([a.replace("{d}", str(d)) for a in argv], capsys)
    lines = err.splitlines()
    assert status == 2 and len(lines) == 1, err
    assert lines[0].startswith("lemlab: error: "), err
    assert words in lines[0], err
    assert "Error:" not in lines[0] and "Traceback" not in err  # no exception class names
    assert _snapshot(d) == before and _snapshot(lemlab_home) == home_before


CaseSetup = Callable[[Path], None]


def _assert_one_line_exit_2(status: int, err: str, words: str) -> None:
    lines = err.splitlines()
    assert status == 2 and len(lines) == 1 and lines[0].startswith("lemlab: error: "), err
    assert words in lines[0], err


@pytest.mark.slow
@pytest.mark.parametrize("case", ["other-model", "other-rank", "not-lora"])
def test_train_refuses_a_resume_file_that_does_not_fit_before_creating_anything(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    tiny_model: Path,
    tiny_adapter: Path,
    case: str,
) -> None:
    from support.train import write_chat_data

    data = write_chat_data(tmp_path / "data", n_train=4, n_valid=2)
    weights = tiny_adapter / "adapters.safetensors"
    model, extra = tiny_model, []
    if case == "other-model":  # wider: the adapter's 64-wide LoRA tensors cannot fit it
        from lemlab.engine.tiny import build_tiny_model

        model = build_tiny_model(tmp_path / "wide", hidden=128)
    if case == "other-rank":
        model, extra = tiny_model, ["--rank", "4"]
    if case == "not-lora":
        model, weights = tiny_model, next(tiny_model.glob("*.safetensors"))
    before = weights.read_bytes()
    out = tmp_path / "adapter"
    status, err = run_case(
        [
            "train",
            "--model",
            str(model),
            "--data",
            str(data),
            "--adapter-path",
            str(out),
            "--resume-adapter-file",
            str(weights),
            "--iters",
            "2",
            "--yes",
            *extra,
        ],
        capsys,
    )
    _assert_one_line_exit_2(status, err, "--resume-adapter-file")
    assert {"other-model": "the model's weight is", "other-rank": "rank 4", "not-lora": "no LoRA"}[
        case
    ] in err
    assert not out.exists() and weights.read_bytes() == before


def test_one_bad_battery_does_not_hide_the_others(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "good.json").write_text(BATTERY)
    (tmp_path / "deep.json").write_text(DEEP)
    (tmp_path / "latin.toml").write_bytes('name = "caf\xe9"\n'.encode("latin-1"))
    status, err, out = run_with_output(["probes", "--json", "--dir", str(tmp_path)], capsys)
    assert status == 0 and err == ""
    listed = {b["name"]: b for b in json.loads(out)["batteries"]}
    assert listed["good"]["probes"] == 1 and "error" not in listed["good"]
    assert "nested too deeply" in listed["deep"]["error"]
    assert "not UTF-8" in listed["latin"]["error"]


def test_sessions_with_wrong_types_are_listed_as_damaged(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = {
        "a": 'model = "not a table"\n',
        "b": "battery_runs = 5\n",
        "c": '[[messages]]\nrole = 1\ncontent = "hi"\n',
        "d": '[[messages]]\nrole = "user"\ncontent = ["x"]\n',
    }
    for name, body in bad.items():
        (tmp_path / f"{name}.toml").write_text(f'schema_version = 1\nname = "{name}"\n{body}')
    (tmp_path / "fine.toml").write_bytes(
        b'\xef\xbb\xbfschema_version = 1\nname = "fine"\n'
    )  # a BOM
    before = _snapshot(tmp_path)
    status, err, out = run_with_output(["sessions", "--dir", str(tmp_path)], capsys)
    assert status == 1 and "Traceback" not in err  # exit 1: some files are damaged
    assert out.splitlines()[1].split()[0] == "fine"
    damaged = [ln for ln in out.splitlines() if ln.startswith("damaged (left untouched): ")]
    assert len(damaged) == 4 and all("must be" in ln for ln in damaged)
    assert _snapshot(tmp_path) == before


@pytest.mark.parametrize("name", ["work\n", "work\r", "../work", "a/b", ".hidden", ""])
def test_session_names_that_could_escape_are_refused(name: str) -> None:
    from lemlab.core.errors import LemlabError
    from lemlab.core.sessions import validate_name

    with pytest.raises(LemlabError, match="bad session name"):
        validate_name(name)


def test_jsonl_battery_keeps_line_separators_inside_strings(tmp_path: Path) -> None:
    from lemlab.core.battery.probes import load_battery

    prompt = "first\u2028second\u2029third\x85fourth"
    path = tmp_path / "b.jsonl"
    path.write_text(
        json.dumps({"id": "P1", "domain": "Care", "prompt": prompt}, ensure_ascii=False) + "\n"
    )
    (probe,) = load_battery(path).probes
    assert probe.prompt == prompt


def test_allow_large_raises_the_prompt_cap(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from lemlab.core import limits
    from lemlab.core.battery.probes import load_battery

    path = tmp_path / "long.json"
    path.write_text(
        json.dumps([{"id": "P1", "domain": "Care", "prompt": "x" * (limits.PROMPT_CHARS + 1)}])
    )
    with pytest.raises(Exception, match="--allow-large raises it"):
        load_battery(path)
    limits.allow_large()
    try:
        assert len(load_battery(path).probes[0].prompt) == limits.PROMPT_CHARS + 1
    finally:
        limits.allow_large(False)


def test_deep_json_lines_in_training_files_are_malformed_lines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from lemlab.core.models.safetensors_header import SafetensorsHeaderError, read_header
    from lemlab.core.training.data import check_jsonl

    deep_line = '{"a": ' + DEEP + "}"
    events = tmp_path / "events.jsonl"
    good = (FIXTURES / "training" / "lemlab_events.jsonl").read_text().split("\n")[:3]
    events.write_text("\n".join([*good, deep_line]) + "\n")
    status, err, out = run_with_output(["watch", "--once", str(events)], capsys)
    assert status == 0 and "internal error" not in err and "val loss" in out

    data = tmp_path / "train.jsonl"
    data.write_text('{"text": "fine"}\n' + deep_line + "\n")
    count, _, problems = check_jsonl(data)
    assert count == 1 and problems == ["train.jsonl:2: not valid JSON (nested too deeply)"]

    header = DEEP.encode()
    weights = tmp_path / "w.safetensors"
    weights.write_bytes(len(header).to_bytes(8, "little") + header)
    with pytest.raises(SafetensorsHeaderError, match="not valid JSON"):
        read_header(weights)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"model_type": None}, "missing key 'model_type'"),
        ({"hidden_size": "wide"}, "unexpected value in its config"),
        ({"num_hidden_layers": [2]}, "cannot load"),
    ],
)
def test_model_config_with_wrong_keys_is_one_line_without_class_names(
    tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], change: dict, says: str
) -> None:
    import shutil

    model = tmp_path / "model"
    shutil.copytree(tiny_model, model)
    cfg = json.loads((model / "config.json").read_text())
    for key, value in change.items():
        cfg.pop(key) if value is None else cfg.__setitem__(key, value)
    (model / "config.json").write_text(json.dumps(cfg))
    before = _snapshot(model)
    status, err = run_case(
        ["chat", "--model", str(model), "--prompt", "hi", "--max-tokens", "2"], capsys
    )
    _assert_one_line_exit_2(status, err, says)
    assert "Error" not in err and _snapshot(model) == before


def test_bom_prefixed_toml_files_are_read(tmp_path: Path, lemlab_home: Path) -> None:
    """A byte-order mark (Windows editors write one) is not bad input: the file is read."""
    from lemlab.core.config import load_config
    from lemlab.core.distill.pipeline import load_pipeline
    from lemlab.core.training.config import read_config_toml
    from lemlab.core.training.curriculum import load_curriculum

    bom = b"\xef\xbb\xbf"
    (tmp_path / "p.toml").write_bytes(bom + PIPELINE.encode())
    assert [ph.name for ph in load_pipeline(tmp_path / "p.toml").phases] == ["one"]
    (tmp_path / "c.toml").write_bytes(
        bom + b'base_model = "m"\noutput = "o"\n[[stage]]\nname = "s"\ndata = "d"\n'
    )
    assert [st.name for st in load_curriculum(tmp_path / "c.toml").stages] == ["s"]
    (tmp_path / "t.toml").write_bytes(bom + b"[train]\niters = 7\n")
    assert read_config_toml(tmp_path / "t.toml")["iters"] == 7
    (tmp_path / "config.toml").write_bytes(bom + b"max_tokens = 99\n")
    assert load_config(tmp_path / "config.toml").max_tokens == 99


@pytest.mark.slow
@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (
            ["ab", "--prompts", "b.json", "--output", "o.jsonl", "--temp", "nan"],
            "--temp must be a finite number",
        ),
        (["watch", "x", "--interval", "inf"], "--interval must be a finite number"),
        (["report", "--no-such-flag", "x"], "unrecognized arguments"),
        (["make-tiny-model", "t", "--hidden", "1048576"], "--hidden must be at most 8192"),
    ],
)
def test_console_entry_gives_the_same_one_line(tmp_path: Path, argv: list[str], words: str) -> None:
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-m", "lemlab", *argv],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stderr.startswith("lemlab: error: ") and words in proc.stderr
    assert list(tmp_path.iterdir()) == []


def test_huge_scores_in_an_ab_file_are_unreadable_lines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = [
        json.loads(ln) for ln in (FIXTURES / "abfile-v1-sample.jsonl").read_text().split("\n") if ln
    ]
    probe = next(i for i, o in enumerate(lines) if o.get("type") == "probe")
    first = next(iter(lines[probe]["conditions"]))
    lines[probe]["conditions"][first]["lek_score"] = 1e308  # fsum of two overflows
    path = tmp_path / "run.jsonl"
    path.write_text("".join(json.dumps(o) + "\n" for o in lines))
    status, err, out = run_with_output(["report", str(path)], capsys)
    assert status == 0 and "out of range" in err and "internal error" not in err
    assert "# A/B report" in out


@pytest.mark.slow
@pytest.mark.parametrize("command", ["ab", "distill"])
def test_resume_onto_a_deeply_nested_output_is_one_line(
    tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    (tmp_path / "battery.json").write_text(BATTERY)
    out = tmp_path / "out.jsonl"
    out.write_text(DEEP + "\n")
    before = _snapshot(tmp_path)
    argv = [
        command,
        "--model",
        str(tiny_model),
        "--prompts",
        str(tmp_path / "battery.json"),
        "--output",
        str(out),
        "--resume",
        "--max-tokens",
        "2",
    ]
    status, err = run_case(argv, capsys)
    _assert_one_line_exit_2(status, err, "nested too deeply")
    assert _snapshot(tmp_path) == before


def test_state_and_theme_files_of_the_wrong_shape_are_unreadable_not_fatal(tmp_path: Path) -> None:
    from lemlab.core.errors import DataError
    from lemlab.core.themes import load_theme_file
    from lemlab.core.training.events import find_total_iters

    (tmp_path / "lemlab-train.toml").write_text("train = 5\n")
    (tmp_path / "adapter_config.json").write_text(DEEP)
    assert find_total_iters(tmp_path) is None
    theme = tmp_path / "deep.toml"
    theme.write_text("a = " + "[" * 5000 + "]" * 5000 + "\n")
    with pytest.raises(DataError, match="nested too deeply"):
        load_theme_file(theme)
