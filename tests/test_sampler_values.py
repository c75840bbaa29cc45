"""NaN, inf and out-of-range seeds are refused wherever sampling settings are typed: a Sampler
cannot hold them, and the TUI forms word the refusal in their one line."""

from __future__ import annotations

import pytest

from lemlab.core.engine_api import Sampler, SamplerError
from lemlab.core.errors import LemlabError


@pytest.mark.parametrize(
    "kw",
    [
        {"temperature": float("nan")},
        {"temperature": float("inf")},
        {"top_p": float("nan")},
        {"seed": -1},
        {"seed": 2**64},
        {"seed": 1.5},
    ],
)
def test_sampler_refuses_values_no_engine_can_use(kw: dict) -> None:
    with pytest.raises(SamplerError) as info:
        Sampler(**kw)
    assert isinstance(info.value, ValueError) and isinstance(info.value, LemlabError)
    assert next(iter(kw)) in str(info.value)


def test_sampler_keeps_ordinary_values() -> None:
    s = Sampler(temperature=0.7, top_p=0.9, max_tokens=5, seed=2**64 - 1)
    assert s.as_dict() == {"temperature": 0.7, "top_p": 0.9, "max_tokens": 5, "seed": 2**64 - 1}


FORM = {"temperature": "0.5", "top_p": "0.9", "max_tokens": "16", "seed": ""}


@pytest.mark.parametrize(
    ("field", "text"),
    [("temperature", "nan"), ("top_p", "inf"), ("temperature", "-inf"), ("seed", "-4")],
)
def test_chat_settings_form_refuses_nan(field: str, text: str) -> None:
    from lemlab.tui.panes.chat import _parse_sampler

    with pytest.raises(ValueError):
        _parse_sampler({**FORM, field: text}, Sampler())


@pytest.mark.parametrize(
    ("field", "text"), [("temperature", "nan"), ("seed", "99999999999999999999999")]
)
def test_battery_setup_form_refuses_nan(field: str, text: str) -> None:
    from lemlab.tui.battery.setup_form import parse_form

    values = {
        **FORM,
        "battery_path": "b.json",
        "kernel_paths": "",
        "adapters": "",
        "scorer": "v2",
        "limit": "",
        field: text,
    }
    with pytest.raises(ValueError):
        parse_form(values, [], None)


@pytest.mark.parametrize("field", ["threshold", "temperature"])
def test_distill_dialog_refuses_nan(field: str) -> None:
    from lemlab.tui.training.distill_flow import parse_request

    texts = {
        "battery": "ethics20",
        "output": "o.jsonl",
        "samples": "2",
        "threshold": "24",
        "max_tokens": "64",
        "temperature": "0.8",
        field: "nan",
    }
    with pytest.raises(LemlabError, match="finite"):
        parse_request(texts)
