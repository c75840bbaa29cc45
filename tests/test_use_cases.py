"""The headless use cases the CLI commands and the TUI share (lemlab.core ... prepare, preflight):
keyword arguments in, a dataclass out for good input, one LemlabError line for bad input."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.tui import fake_model_dir

from lemlab.core.engine_api import Sampler
from lemlab.core.errors import LemlabError


def test_prepare_ab_returns_its_setup(tmp_path: Path) -> None:
    from lemlab.core.ab.prepare import ABSetup, prepare_ab

    model = fake_model_dir(tmp_path)
    out = tmp_path / "run.jsonl"
    setup = prepare_ab(model=str(model), prompts="ccp6", output=out, sampler=Sampler(max_tokens=8),
                       kernels=["ethics-demo"], limit=2)  # fmt: skip
    try:
        assert isinstance(setup, ABSetup)
        assert [p.id for p in setup.probes] == [p.id for p in setup.battery.probes[:2]]
        assert setup.plan.names == ["baseline", "ethics-demo"]
        assert setup.settings.model == str(model) and setup.specs == [str(model)]
        assert not setup.remote and setup.endpoints is None
        assert not setup.opened.already_complete and setup.opened.lock is not None
    finally:
        setup.release()
    # The lock is let go: the same output opens again (resumed, nothing written yet).
    prepare_ab(model=str(model), prompts="ccp6", output=out, sampler=Sampler(max_tokens=8),
               kernels=["ethics-demo"], limit=2, resume=True).release()  # fmt: skip


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"limit": 0}, "--limit must be at least 1"),
        ({"sampler": Sampler(max_tokens=0)}, "--max-tokens must be at least 1"),
        ({"sampler": Sampler(top_p=0.0)}, r"--top-p must be in \(0, 1\]"),
        ({"prompts": "no-such-battery"}, "no-such-battery"),
        ({"scorer": "v9"}, "v9"),
    ],
)
def test_prepare_ab_refuses_bad_input(tmp_path: Path, changes: dict[str, object], message: str) -> None:
    from lemlab.core.ab.prepare import prepare_ab

    kw: dict[str, object] = {"model": str(fake_model_dir(tmp_path)), "prompts": "ccp6",
                             "output": tmp_path / "run.jsonl", "sampler": Sampler(), **changes}  # fmt: skip
    with pytest.raises(LemlabError, match=message):
        prepare_ab(**kw)  # type: ignore[arg-type]
    assert not (tmp_path / "run.jsonl").exists()
