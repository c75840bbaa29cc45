"""A chat template is code from the model folder: one with runaway loops or output is refused at
load with one line, instead of hanging the engine thread at the first generation."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from lemlab.cli import main
from lemlab.core.chat import template_guard as chat_template_guard

RUNAWAY = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}hi"
FLOOD = "{% for i in range(100000) %}{{ 'x' * 100 }}{% endfor %}"


@pytest.mark.slow
@pytest.mark.parametrize(("template", "says"), [(RUNAWAY, "within 2 s"), (FLOOD, "over 1,048,576")])
def test_runaway_template_is_refused_at_load(
    tiny_model: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    template: str,
    says: str,
) -> None:
    monkeypatch.setattr(chat_template_guard, "TIME_LIMIT", 2.0)
    model = tmp_path / "model"
    shutil.copytree(tiny_model, model)
    cfg_file = model / "tokenizer_config.json"
    cfg = json.loads(cfg_file.read_text())
    cfg["chat_template"] = template
    cfg_file.write_text(json.dumps(cfg))
    before = {p.name: p.read_bytes() for p in model.iterdir()}
    status = main(["chat", "--model", str(model), "--prompt", "hi", "--max-tokens", "2"])
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert status == 2 and len(lines) == 1 and lines[0].startswith("lemlab: error: "), err
    assert "chat template" in lines[0] and says in lines[0]
    assert {p.name: p.read_bytes() for p in model.iterdir()} == before


def test_real_templates_pass_and_are_checked_once(
    tiny_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (template,) = chat_template_guard.templates_in(tiny_model)
    assert "messages" in template
    chat_template_guard.check_chat_templates(tiny_model)
    calls: list[object] = []
    monkeypatch.setattr(chat_template_guard.subprocess, "run", lambda *a, **k: calls.append(a))
    chat_template_guard.check_chat_templates(tiny_model)  # same template: no second child
    assert calls == []
