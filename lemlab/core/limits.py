"""Size caps on what users and servers hand lemlab, so a wrong file cannot take the machine's
memory (one 100 MB prompt reached 10 GB in a minute). `--allow-large` on any command raises
every cap a hundredfold for inputs that really are that big. Headless."""

from __future__ import annotations

FLAG = "--allow-large"
_SCALE = 100

PROMPT_CHARS = 200_000  # ~50k tokens: more than any model lemlab runs takes as one prompt
BATTERY_BYTES = 32 << 20  # a battery file (JSON, JSONL, TOML)
BATTERY_PROBES = 20_000

_factor = 1


def allow_large(on: bool = True) -> None:
    global _factor
    _factor = _SCALE if on else 1


def cap(base: int) -> int:
    """`base` under the current setting."""
    return base * _factor


def over(what: str, size: int, base: int, unit: str) -> str:
    """The message for an input past its cap (names the flag that raises it)."""
    if _factor > 1:
        return f"{what} is {size:,} {unit}, over the cap of {cap(base):,} even with {FLAG}"
    return f"{what} is {size:,} {unit}, over the cap of {base:,} ({FLAG} raises it)"
