"""Rephrasing: three framed variants per probe, deterministic, in the research layout."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.train import run_lemlab

from lemlab.core.battery.probes import Probe, load_battery, resolve_battery
from lemlab.core.battery.rephrase import FRAMINGS, REPHRASE_TYPES, choose_framing, rephrase_battery
from lemlab.core.errors import LemlabError

SUFFIX_TYPES = [("_R_PERS", "perspective"), ("_R_URGE", "urgency"), ("_R_CULT", "cultural")]


def test_six_probes_give_24_in_order_with_fields() -> None:
    originals = list(resolve_battery("ccp6").probes)
    out = rephrase_battery(originals)
    assert len(out) == 24
    assert out[:6] == originals
    expected_ids = [p.id + s for p in originals for s, _ in SUFFIX_TYPES]
    assert [p.id for p in out[6:]] == expected_ids
    for i, variant in enumerate(out[6:]):
        src = originals[i // 3]
        suffix, kind = SUFFIX_TYPES[i % 3]
        assert variant.source_probe == src.id and variant.rephrase_type == kind
        assert variant.category == src.category
        framing, blank, rest = variant.prompt.partition("\n\n")
        assert blank and rest == src.prompt
        assert framing in FRAMINGS[kind] and "\n" not in framing


def test_framings_are_plentiful_and_distinct() -> None:
    assert list(REPHRASE_TYPES) == ["perspective", "urgency", "cultural"]
    all_framings = [f for kind in REPHRASE_TYPES for f in FRAMINGS[kind]]
    assert all(len(FRAMINGS[k]) >= 6 for k in REPHRASE_TYPES)
    assert len(set(all_framings)) == len(all_framings)


def test_deterministic_and_seed_sensitive() -> None:
    probes = list(resolve_battery("ethics20").probes)
    assert rephrase_battery(probes) == rephrase_battery(probes)
    picks = {choose_framing("urgency", p.id) for p in probes}
    assert len(picks) > 1, "framings should vary across probes"
    seeds = {choose_framing("cultural", "E01", seed) for seed in range(20)}
    assert len(seeds) > 1


def test_domain_is_preserved_in_json(tmp_path: Path) -> None:
    src = tmp_path / "p.json"
    src.write_text(json.dumps([{"id": "P01", "domain": "Identity", "prompt": "Who?"}]))
    out = rephrase_battery(load_battery(src).probes)
    assert out[1].extra == {"domain": "Identity"} and out[1].category == "identity"


def test_rejects_input_that_already_has_variants() -> None:
    base = [Probe("A", "x", "p")]
    with pytest.raises(LemlabError, match="already holds rephrased variants"):
        rephrase_battery(rephrase_battery(base))
    with pytest.raises(LemlabError, match="clashes"):
        rephrase_battery([Probe("A", "x", "p"), Probe("A_R_PERS", "x", "q")])


def test_cli_rephrase_json_byte_identical(tmp_path: Path) -> None:
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    for out in (a, b):
        res = run_lemlab("rephrase", "--input", "ccp6", "--output", str(out))
        assert res.returncode == 0, res.stderr
        assert "wrote 24 probes" in res.stdout
    assert a.read_bytes() == b.read_bytes()
    items = json.loads(a.read_text())
    assert len(items) == 24
    assert items[6]["id"] == "taiwan_direct_R_PERS"
    assert list(items[6])[:5] == ["id", "category", "prompt", "source_probe", "rephrase_type"]
    assert items[6]["prompt"].endswith("\n\n" + items[0]["prompt"])
    c = tmp_path / "c.json"
    assert run_lemlab("rephrase", "-i", "ccp6", "-o", str(c), "--seed", "7").returncode == 0
    assert c.read_bytes() != a.read_bytes()


def test_cli_rephrase_toml_output_and_errors(tmp_path: Path) -> None:
    out = tmp_path / "r.toml"
    res = run_lemlab("rephrase", "-i", "ccp6", "-o", str(out))
    assert res.returncode == 0, res.stderr
    loaded = load_battery(out)
    assert len(loaded) == 24 and loaded.probes[23].id == "emotional_R_CULT"
    assert loaded.probes[23].rephrase_type == "cultural"
    bad = run_lemlab("rephrase", "-i", "nope", "-o", str(tmp_path / "x.json"))
    assert bad.returncode == 2
    assert bad.stderr.strip().count("\n") == 0 and "unknown battery 'nope'" in bad.stderr
    again = run_lemlab("rephrase", "-i", str(out), "-o", str(tmp_path / "y.json"))
    assert again.returncode == 2 and "already holds" in again.stderr
