"""`lemlab ab` and `lemlab distill` over real mlx_lm.server processes on 127.0.0.1 serving the
tiny model: two requests in flight, the server SIGKILLed mid-run and restarted on the same port,
--resume completing the file; two servers sharing the probes; API keys never written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lemlab.engine.mlx_server import LocalServer, start_mlx_server

pytestmark = pytest.mark.slow

SECRET = "sk-lemlab-test-4f1c9a"
N_PROBES = 24


@pytest.fixture()
def hub(tmp_path: Path) -> Path:
    path = tmp_path / "hub"  # an empty hub cache: /v1/models lists exactly the served model
    path.mkdir()
    return path


@pytest.fixture()
def servers(tiny_model: Path, tmp_path: Path, hub: Path) -> Iterator[Any]:
    started: list[LocalServer] = []

    def make() -> LocalServer:
        log = tmp_path / f"server{len(started)}.log"
        started.append(start_mlx_server(tiny_model, log_path=log, env={"HF_HUB_CACHE": str(hub)}))
        return started[-1]

    yield make
    for srv in started:
        srv.stop()


@pytest.fixture()
def battery(tmp_path: Path) -> Path:
    items = [
        {
            "id": f"P{i:02d}",
            "domain": ["Care", "Power", "Truth"][i % 3],
            "prompt": f"Question {i}: what would a careful friend say about promise {i}?",
        }
        for i in range(N_PROBES)
    ]
    path = tmp_path / "battery.json"
    path.write_text(json.dumps(items))
    return path


def lemlab(*args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, SECRET_ENV: SECRET}
    return subprocess.run(
        [sys.executable, "-m", "lemlab", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


SECRET_ENV = "LEMLAB_TEST_API_KEY"


def write_config(home: Path, *servers: LocalServer, model: Path | None = None) -> None:
    lines = []
    for i, srv in enumerate(servers):
        lines += [
            f"[endpoints.box{i}]",
            f'url = "{srv.url}"',
            f'api_key_env = "{SECRET_ENV}"',
            "max_in_flight = 2",
        ]
        if model is not None:
            lines.append(f'model = "{model.resolve()}"')
    from lemlab.core.paths import get_paths

    config = get_paths().config_file  # under LEMLAB_HOME (`home`), inherited by the subprocess
    assert home in config.parents
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text("\n".join(lines) + "\n")


def read_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(ln) for ln in path.read_text().splitlines() if ln.strip()]


def check_complete(path: Path, names: list[str]) -> list[dict[str, Any]]:
    """Every probe once, then a summary whose figures match the probe lines."""
    lines = read_lines(path)
    probes, summary = lines[:-1], lines[-1]
    ids = [p["id"] for p in probes]
    assert all(p["type"] == "probe" for p in probes) and summary["type"] == "summary"
    assert len(ids) == len(set(ids)) == N_PROBES
    assert sorted(ids) == [f"P{i:02d}" for i in range(N_PROBES)]
    assert summary["total_probes"] == N_PROBES
    base = round(sum(p["conditions"]["baseline"]["lek_score"] for p in probes) / N_PROBES, 2)
    for entry in summary["conditions"]:
        scores = [p["conditions"][entry["name"]]["lek_score"] for p in probes]
        assert entry["avg_lek"] == round(sum(scores) / N_PROBES, 2)
        if entry["name"] != "baseline":
            assert entry["delta_vs_baseline"] == round(entry["avg_lek"] - base, 2)
    assert [c["name"] for c in summary["conditions"]] == names
    assert list(summary["categories"]) == ["care", "power", "truth"]  # battery order
    for p in probes:
        assert list(p["conditions"]) == names
        assert p["endpoint"] and all(
            c["finish_reason"] in ("stop", "length") for c in p["conditions"].values()
        )
    return probes


def test_kill_server_mid_run_then_resume(
    servers: Any, battery: Path, tmp_path: Path, lemlab_home: Path, tiny_model: Path
) -> None:
    srv = servers()
    write_config(lemlab_home, srv)
    kernel = tmp_path / "care.txt"
    kernel.write_text("Answer with care. Say what you do not know.\n")
    out = tmp_path / "run.jsonl"
    args = [
        "ab",
        "--endpoint",
        "box0",
        "--kernel",
        f"care={kernel}",
        "--prompts",
        str(battery),
        "--output",
        str(out),
        "--max-tokens",
        "48",
        "--retries",
        "2",
        "--retry-delay",
        "0.1",
    ]
    env = {**os.environ, SECRET_ENV: SECRET}
    proc = subprocess.Popen(
        [sys.executable, "-m", "lemlab", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    deadline = time.monotonic() + 120
    try:
        while not out.exists() or out.read_bytes().count(b"\n") < 3:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() < deadline
            time.sleep(0.005)
        srv.kill()
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    kept = read_lines(out)
    assert proc.returncode == 3, stderr
    assert 3 <= len(kept) < N_PROBES and all(p["type"] == "probe" for p in kept)
    errors = [ln for ln in stderr.splitlines() if ln.startswith("lemlab: error:")]
    assert len(errors) == 1 and "--resume" in stderr and "Traceback" not in stderr

    srv.start()  # same port
    resumed = lemlab(*args, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    probes = check_complete(out, ["baseline", "care"])
    assert {p["endpoint"] for p in probes} == {"box0"}
    assert [p["id"] for p in probes[: len(kept)]] == [p["id"] for p in kept]  # kept as written
    summary = read_lines(out)[-1]
    assert summary["model"] == "endpoint:box0" and summary["endpoints"] == ["box0"]
    for text in (out.read_text(), stdout, stderr, resumed.stdout, resumed.stderr):
        assert SECRET not in text
    # resuming a finished file changes nothing
    before = out.read_bytes()
    again = lemlab(*args, "--resume")
    assert again.returncode == 0 and "already complete" in again.stdout
    assert out.read_bytes() == before


def test_two_servers_share_the_probes(
    servers: Any, battery: Path, tmp_path: Path, lemlab_home: Path, tiny_model: Path
) -> None:
    a, b = servers(), servers()
    out = tmp_path / "two.jsonl"
    run = lemlab(
        "ab",
        "--model",
        f"{a.spec}",
        "--model",
        f"{b.spec}",
        "--prompts",
        str(battery),
        "--output",
        str(out),
        "--max-tokens",
        "16",
        "--max-in-flight",
        "1",
    )
    assert run.returncode == 0, run.stderr
    probes = check_complete(out, ["baseline"])
    served = Counter(p["endpoint"] for p in probes)
    assert set(served) == {f"127.0.0.1:{a.port}", f"127.0.0.1:{b.port}"}
    summary = read_lines(out)[-1]
    assert summary["model"] == str(tiny_model.resolve())  # the model both servers name
    # greedy: one server alone gives the same replies, whichever server answered first
    solo = tmp_path / "solo.jsonl"
    one = lemlab(
        "ab",
        "--model",
        a.spec,
        "--prompts",
        str(battery),
        "--output",
        str(solo),
        "--max-tokens",
        "16",
    )
    assert one.returncode == 0, one.stderr
    by_id = {p["id"]: p["conditions"]["baseline"]["response"] for p in read_lines(solo)[:-1]}
    assert {p["id"]: p["conditions"]["baseline"]["response"] for p in probes} == by_id


def test_distill_over_a_server_records_the_endpoint(
    servers: Any, battery: Path, tmp_path: Path, lemlab_home: Path, tiny_model: Path
) -> None:
    srv = servers()
    write_config(lemlab_home, srv, model=tiny_model)
    out = tmp_path / "distill.jsonl"
    run = lemlab(
        "distill",
        "--endpoint",
        "box0",
        "--prompts",
        str(battery),
        "--output",
        str(out),
        "--samples",
        "2",
        "--threshold=-100",
        "--max-tokens",
        "12",
    )
    assert run.returncode == 0, run.stderr
    lines = read_lines(out)
    training, summary = lines[:-1], lines[-1]
    keys = [(t["meta"]["probe_id"], t["meta"]["sample_idx"]) for t in training]
    assert len(keys) == len(set(keys)) == 2 * N_PROBES  # threshold -100 keeps every sample
    assert {t["meta"]["endpoint"] for t in training} == {"box0"}
    assert summary["total_generated"] == 2 * N_PROBES and summary["endpoints"] == ["box0"]
    assert summary["model"] == "endpoint:box0"
    assert SECRET not in out.read_text() + run.stdout + run.stderr


def test_user_errors_are_one_line(
    servers: Any, battery: Path, tmp_path: Path, tiny_model: Path
) -> None:
    srv = servers()
    base = ["--prompts", str(battery), "--max-tokens", "4"]
    cases = {
        "a local model runs alone": ["ab", "--model", str(tiny_model), "--model", srv.spec],
        "cannot use adapter": ["ab", "--model", srv.spec, "--adapter", f"x={tmp_path / 'none'}"],
        "unknown endpoint": ["ab", "--endpoint", "nowhere"],
        "no model given": ["ab"],
        "--max-in-flight": ["ab", "--model", srv.spec, "--max-in-flight", "0"],
        "model named on each": ["distill", "--model", f"openai:{srv.url}", "--model", srv.spec],
    }
    for i, (needle, args) in enumerate(cases.items()):
        out = tmp_path / f"bad{i}.jsonl"
        run = lemlab(*args, *base, "--output", str(out))
        err = run.stderr.strip()
        assert run.returncode == 2, (needle, err)
        assert err.startswith("lemlab: error:") and needle in err and "\n" not in err, err
        assert not out.exists()
