"""The longest back-to-back loop (u u u u) in a text, in linear time with a small constant.

The failure-mode detector only cares about loops long enough to matter (at least `min_span`
characters, units of at most `max_period`). Such a run always contains a position within
about min_span / 2 of its start with at least two full copies after it, so only anchors that
far apart are examined (each may move a little to keep its key off a run of one character). At each anchor the next occurrences of a short key (the 8
characters there) within max_period give the candidate periods; `str.find` does that search
in C, so normal prose costs one failed find per anchor. A candidate is kept when the two
blocks after the anchor are equal, and the run is then extended both ways by galloping
compares.

Two facts keep degenerate inputs (10 MB of one character) linear:
- a run found with period q has its shortest period d among the divisors of q (a run is at
  least 2q long, so by the Fine-Wilf theorem any other period d gives period gcd(d, q));
- a square (two equal blocks) that lies inside a run R of shortest period d, with a period
  >= d, belongs to R itself (same theorem), so once a run covers an anchor's whole search
  window the anchor has nothing new, and anchors deep inside a run are skipped.
"""

from __future__ import annotations

from collections.abc import Callable

# The v2 scorer's repeat scan already defines this stretch (start, period, length, copies, end).
from lemlab.core.scoring.repeats import Repeat as Loop

__all__ = ["Loop", "longest_loop"]

KEY = 8  # characters compared by str.find at each anchor


def longest_loop(
    text: str,
    *,
    max_period: int,
    min_copies: int,
    min_span: int,
    accept: Callable[[Loop], bool] = lambda loop: True,
) -> Loop | None:
    """The longest accepted run with >= min_copies copies of a unit of <= max_period chars,
    spanning >= min_span chars; ties: shortest period, then earliest start. Each run is
    reported at its shortest period."""
    if min_copies < 3:
        raise ValueError("min_copies must be at least 3")
    if min_span * (min_copies - 1) // min_copies <= KEY:
        raise ValueError(f"min_span too small for a {KEY}-character key")
    n = len(text)
    # Any qualifying run [s, e) holds a position a < s + reach with a + 2p <= e, a + p + KEY <= e.
    reach = max(
        1,
        min(
            min_span * (min_copies - 2) // min_copies,
            min_span * (min_copies - 1) // min_copies - KEY,
        ),
    )
    # Anchors every `step`; each may move up to `shift` further (a + shift < s + reach still
    # holds) to put its key off a run of one character: a key of eight spaces recurs all over
    # indented or padded text, one that straddles the run's end rarely does.
    step = max(1, reach // 2)
    shift = reach - step
    best: Loop | None = None
    done_to: dict[int, int] = {}  # period -> end of the last run found with it
    deep: Loop | None = None  # the run reaching furthest, for skipping anchors inside it
    for a in range(0, n - KEY, step):
        if shift and text[a] == text[a + KEY - 1] and text[a : a + KEY] == text[a] * KEY:
            run = len(text[a : a + shift + KEY]) - len(text[a : a + shift + KEY].lstrip(text[a]))
            a = min(n - KEY - 1, a + min(shift, max(0, run - KEY // 2)))  # noqa: PLW2901
        if (
            deep is not None
            and a - deep.start >= 2 * max_period
            and (deep.end - a >= 2 * max_period + KEY)
        ):
            continue
        key = text[a : a + KEY]
        limit = min(n, a + max_period + KEY)
        covered = a  # squares [a, a + 2q) ending before this lie in a run found here
        pos = text.find(key, a + 1, limit)
        while pos != -1:
            q = pos - a
            if a + 2 * q <= max(covered, done_to.get(q, 0)):  # inside a run already found
                pos = text.find(key, pos + 1, limit)
                continue
            if a + 2 * q <= n and text[a : a + q] == text[a + q : a + 2 * q]:
                loop = _extend(text, a, q)
                done_to[q] = loop.end
                covered = max(covered, loop.end)
                if deep is None or loop.end > deep.end:
                    deep = loop
                if loop.length >= max(min_span, min_copies * loop.period) and accept(loop):
                    if best is None or _better(loop, best):
                        best = loop
                if covered >= a + 2 * max_period:
                    break
            pos = text.find(key, pos + 1, limit)
    return best


def _better(a: Loop, b: Loop) -> bool:
    return (a.length, -a.period, -a.start) > (b.length, -b.period, -b.start)


def _extend(text: str, a: int, q: int) -> Loop:
    """The maximal run of period q through the square at a, at its shortest period."""
    back = _common_suffix(text, a, a + q, a)
    fwd = _common_prefix(text, a, a + q, len(text) - a - q)
    start, length = a - back, back + fwd + q
    for d in range(1, q):
        if q % d == 0 and text[start : start + length - d] == text[start + d : start + length]:
            return Loop(start, d, length)
    return Loop(start, q, length)


def _common_prefix(text: str, a: int, b: int, limit: int) -> int:
    """Length of the common prefix of text[a:] and text[b:], at most limit (galloping)."""
    done, size = 0, 64
    while done < limit:
        size = min(size, limit - done)
        if text[a + done : a + done + size] == text[b + done : b + done + size]:
            done += size
            size *= 2
        elif size == 1:
            break
        else:
            size //= 2
    return done


def _common_suffix(text: str, a: int, b: int, limit: int) -> int:
    """Length of the common suffix of text[:a] and text[:b], at most limit."""
    done, size = 0, 64
    while done < limit:
        size = min(size, limit - done)
        if text[a - done - size : a - done] == text[b - done - size : b - done]:
            done += size
            size *= 2
        elif size == 1:
            break
        else:
            size //= 2
    return done
