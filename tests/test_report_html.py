"""`lemlab report --format html`: one self-contained page per run, comparison or training run.
Read as text (no network reference, every probe, hostile responses shown as text) and opened in a
real headless Chromium (charts drawn with a size, no console errors)."""

from __future__ import annotations

import json
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pytest

from lemlab.cli import main

FIXTURES = Path(__file__).resolve().parent / "fixtures"
RUN = FIXTURES / "battery" / "run_small.jsonl"
HOSTILE = '<script>alert("x")</script> &amp; &lt;b&gt; \x1b[2J\x1b]0;pwned\x07 done'
# src=, href= or url( pointing anywhere but the page itself.
NETWORK_REF = re.compile(
    r"""(?:src|href)\s*=\s*["']?\s*(?!#)[a-z]+:|url\(\s*["']?\s*[a-z]+:""", re.I
)


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _hostile_run(tmp_path: Path) -> Path:
    lines = _lines(RUN)
    lines[0]["conditions"]["ethics"]["response"] = HOSTILE
    out = tmp_path / "hostile.jsonl"
    out.write_text("".join(json.dumps(obj) + "\n" for obj in lines))
    return out


def _render(tmp_path: Path, *args: str, name: str = "report.html") -> str:
    out = tmp_path / name
    assert main(["report", *args, "--format", "html", "--out", str(out)]) == 0
    return out.read_text(encoding="utf-8")


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.details: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if tag == "details":
            self.details.append(dict(attrs).get("id") or "")


def test_page_is_self_contained_and_holds_every_probe(tmp_path: Path) -> None:
    page = _render(tmp_path, str(RUN))
    assert NETWORK_REF.search(page) is None
    parsed = _Tags()
    parsed.feed(page)
    assert "script" not in parsed.tags and "link" not in parsed.tags and "img" not in parsed.tags
    ids = [p["id"] for p in _lines(RUN) if p.get("type") == "probe"]
    for pid in ids:
        assert f"{pid}" in page
    # One expandable block per probe in each comparison (ethics and json against baseline).
    assert len(parsed.details) == 2 * len(ids)
    for chart in ("delta-bars", "heat-map", "score-strips"):
        assert f'class="chart {chart}"' in page
    # The addendum's tables: per probe base / condition / delta, the counts, dimensions, failures.
    assert "Dimension changed" in page and "% improved" in page and "Failure mode" in page
    assert "token_degeneration" in page  # the fixture's looping baseline reply


def test_hostile_response_is_text_never_markup(tmp_path: Path) -> None:
    page = _render(tmp_path, str(_hostile_run(tmp_path)))
    assert "<script" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    assert "&amp;amp; &amp;lt;b&amp;gt;" in page  # entities shown as typed, not decoded
    assert "\x1b" not in page and "\x07" not in page
    assert "␛[2J␛]0;pwned␇" in page


def test_vs_report_calls_out_the_settings_that_differ(tmp_path: Path) -> None:
    other = tmp_path / "other.jsonl"
    lines = _lines(RUN)
    lines[-1]["max_tokens"] = 1024  # the fixture ran with 64
    other.write_text("".join(json.dumps(obj) + "\n" for obj in lines))
    page = _render(tmp_path, f"{RUN}:ethics", "--vs", f"{other}:baseline")
    assert "Settings that differ" in page and "max tokens" in page and ">1024<" in page
    assert page.count("<details") == len([p for p in lines if p.get("type") == "probe"])


def test_existing_output_needs_force_and_md_refuses_out(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "keep.html"
    out.write_text("mine")
    assert main(["report", str(RUN), "--format", "html", "--out", str(out)]) == 2
    assert out.read_text() == "mine"
    assert main(["report", str(RUN), "--format", "html", "--out", str(out), "--force"]) == 0
    assert main(["report", str(RUN), "--out", str(out)]) == 2
    assert main(["report", str(RUN), "--format", "html"]) == 2
    errs = [line for line in capsys.readouterr().err.splitlines() if line]
    assert len(errs) == 3 and all(e.startswith("lemlab: error:") for e in errs)


def _training_folder(tmp_path: Path, name: str, scale: float = 1.0) -> Path:
    folder = tmp_path / name
    folder.mkdir()
    events = (FIXTURES / "training" / "lemlab_events.jsonl").read_text().splitlines()
    out = []
    for line in events:
        obj = json.loads(line)
        for key in ("train_loss", "val_loss"):
            if key in obj:
                obj[key] = obj[key] * scale
        out.append(json.dumps(obj))
    (folder / "events.jsonl").write_text("\n".join(out) + "\n")
    (folder / "adapter_config.json").write_text(
        json.dumps(
            {
                "model": "base-model",
                "fine_tune_type": "lora",
                "num_layers": 8,
                "iters": 400,
                "batch_size": 1,
                "learning_rate": 5e-6,
                "lora_parameters": {"rank": 8, "scale": 20.0, "dropout": 0.0},
            }
        )
    )
    return folder


def test_training_report_draws_loss_and_config_with_effective_gradient(tmp_path: Path) -> None:
    a = _training_folder(tmp_path, "run-a")
    b = _training_folder(tmp_path, "run-b", scale=1.2)
    page = _render(tmp_path, str(a), "--vs", str(b))
    assert 'class="chart line-chart"' in page
    assert "run-a train loss" in page and "run-b train loss" in page  # overlay, both labelled
    assert "validation loss (measured points)" in page
    assert "effective gradient (iters x batch)" in page and ">400<" in page
    assert NETWORK_REF.search(page) is None


# --- a real browser ------------------------------------------------------------------------


def _driver():  # type: ignore[no-untyped-def]
    chromium, chromedriver = shutil.which("chromium"), shutil.which("chromedriver")
    if not chromium or not chromedriver:
        pytest.skip(
            "Debian's chromium and chromium-driver are not installed (.ci/run installs them)"
        )
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1200,900",
    ):
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(chromedriver), options=opts)


@pytest.mark.slow
def test_charts_draw_in_a_real_browser(tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    assert (
        main(["report", str(_hostile_run(tmp_path)), "--format", "html", "--out", str(page)]) == 0
    )
    train = tmp_path / "train.html"
    assert (
        main(
            [
                "report",
                str(_training_folder(tmp_path, "run-a")),
                "--format",
                "html",
                "--out",
                str(train),
            ]
        )
        == 0
    )
    driver = _driver()
    try:
        for file, charts in (
            (page, ("delta-bars", "heat-map", "score-strips")),
            (train, ("line-chart",)),
        ):
            driver.get(file.as_uri())
            for chart in charts:
                found = driver.find_elements("css selector", f"svg.{chart}")
                assert found, chart
                for el in found:
                    assert el.size["width"] > 100 and el.size["height"] > 40, (chart, el.size)
                    # drawn marks inside, each with a size
                    marks = el.find_elements("css selector", "rect, circle, path")
                    assert marks and any(m.size["width"] > 0 for m in marks), chart
            errors = [e for e in driver.get_log("browser") if e.get("level") == "SEVERE"]
            assert errors == [], errors
            shot = tmp_path / f"{file.stem}.png"
            assert driver.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
        driver.get(page.as_uri())
        details = driver.find_elements("css selector", "details")
        details[0].click()  # the first probe's block: its reply is the hostile one, shown as text
        assert '<script>alert("x")</script>' in details[0].text
    finally:
        driver.quit()


def test_session_override_shows_on_its_own_run_only(tmp_path: Path) -> None:
    from lemlab.core.ab.overrides import add_override, make_override
    from lemlab.core.paths import get_paths
    from lemlab.core.sessions import Session, save_session

    new = tmp_path / "new.jsonl"
    new.write_text(RUN.read_text())
    session = Session(name="review")
    add_override(
        session,
        make_override(new, "taiwan_direct", "baseline", 1.3, 5.0, "the scorer missed the <caveat>"),
    )
    save_session(session, get_paths().sessions_dir)
    page = _render(tmp_path, str(new), "--session", "review")
    assert page.count("override</b> 1.30 -> 5.00") == 2  # both comparisons show the baseline cell
    assert "the scorer missed the &lt;caveat&gt;" in page
    assert "score override(s) from the session" in page
    # --vs: both runs have a "baseline"; the override belongs to new.jsonl only.
    page = _render(tmp_path, str(new), "--vs", str(RUN), "--session", "review", name="vs.html")
    assert page.count("override</b> 1.30 -> 5.00") == 1


def test_training_configuration_of_one_adapter(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = _training_folder(tmp_path, "solo")
    assert main(["report", "--training", str(folder)]) == 0
    out = capsys.readouterr().out
    assert (
        "| Effective gradient (iters x batch) | 400 |" in out and "| Learning rate | 5e-06 |" in out
    )
    assert "effective gradient of 400 (iters x batch size: 400 x 1)" in out
    assert main(["report", "--training", str(folder), str(folder), str(folder)]) == 2
