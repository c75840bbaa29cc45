"""Reuse of KV caches for prompt prefixes shared between requests (a kernel's system turn, an
earlier part of a chat), so a battery prefills a 1,500-token kernel once, not once per probe.

How a prefix gets cached, in both cases while this request prefills it anyway (no extra cost):
- the caller names a boundary, the tokens that do not depend on the request's last message (a
  kernel's system turn, a chat's earlier turns); that part becomes an entry on first sight, so a
  kernel is prefilled once per model, not twice;
- else each request's tokens are remembered, and when a new request shares at least MIN_SHARED
  tokens with a remembered one, the shared part becomes an entry.
Entries are snapshots taken at the end of their prefix, never trimmed back from a longer cache: a
sliding-window (rotating) KV cache that has wrapped cannot be trimmed. One exception, for chats:
the cache of the last finished request (its prompt and its reply) is kept as a "tail" when it
can be trimmed; the next turn's prompt starts with that conversation, so it reuses the tail cut
back to the tokens the two share (where the re-templated reply first differs) and prefills only
the new message, instead of the whole last exchange. Later requests that start
with an entry's tokens get a deep copy of its cache and prefill only the rest. Entries live in a
small LRU, so conditions interleaved probe by probe (baseline, kernel A, kernel B, ...) each keep
theirs. Only called on the engine thread.

Memory: besides MAX_ENTRIES, the entries and the tail together hold at most `max_bytes` of KV
cache (each cache's `nbytes`, its allocated arrays); the least recently used of them go first,
and one bigger than the whole budget is not kept at all. The count alone bounds nothing: an
entry is as long as its prefix, and a chat's conversation (a boundary entry per turn, plus the
tail) grows without end. MAX_BYTES, 2 GiB, holds four ~1,500-token kernel entries of an 8B
with full KV caches (about 200 MB each), two or three of gemma-3-12b (~500 MB each, its
sliding-window layers capped near their window), or a chat tail of ~15k tokens on an 8B; more
would compete with the model's weights on a 16-32 GB Mac. A running request's own copy is its
working cache and is not counted. Budget and count are constructor arguments.

mlx-lm's LRUPromptCache (mlx_lm.models.cache, 0.32, written for mlx_lm.server) has a byte limit
too but is not used: it keeps whole finished requests, while lemlab snapshots a boundary mid-
prefill; inserting a trimmable cache drops every shorter entry it extends (a kernel's entry goes
when one of its chats is kept, and other probes then deep-copy the long chat to trim it back);
and it is a server internal with no stability promise.
"""

from __future__ import annotations

import copy
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

MIN_SHARED = 32  # shorter shared prefixes (BOS + turn markers) are not worth an entry
MIN_EXTEND = 32  # grow an entry only when a request shares this many more tokens
MIN_TAIL = 8  # a tail is reused from fewer shared tokens: it costs a copy, not a new prefill
MAX_ENTRIES = 4
MAX_BYTES = 2 << 30  # KV cache bytes the entries and the tail hold together (see above)
HISTORY = 8


@dataclass
class _Entry:
    tokens: list[int]
    cache: list[Any]
    nbytes: int = 0
    used: int = 0  # PrefixCache._clock when last stored or served: the lowest goes first


@dataclass
class Prepared:
    """A cache ready for this request: prefill `rest`, the first `cached` tokens are in `cache`."""

    cache: list[Any]
    rest: list[int]
    cached: int  # tokens served from an existing entry
    built: int  # tokens prefilled now to make a new entry (part of this request's prompt)
    build_time: float


def common_prefix_len(a: list[int], b: list[int]) -> int:
    n = min(len(a), len(b))
    for i in range(n):
        if a[i] != b[i]:
            return i
    return n


def cache_nbytes(cache: list[Any]) -> int:
    """Bytes a prompt cache holds: each layer cache's `nbytes` (mlx-lm's cache classes report
    their allocated arrays), else the sum over the arrays in its `state`."""
    total = 0
    for c in cache:
        try:
            total += int(c.nbytes)
        except (AttributeError, NotImplementedError):
            from mlx.utils import tree_reduce

            total += int(tree_reduce(lambda n, a: n + a.nbytes, c.state, 0))
    return total


class PrefixCache:
    def __init__(self, max_entries: int = MAX_ENTRIES, max_bytes: int = MAX_BYTES) -> None:
        self._entries: list[_Entry] = []  # most recently used last
        self._recent: deque[list[int]] = deque(maxlen=HISTORY)
        self._max = max_entries
        self._max_bytes = max_bytes
        self._clock = 0

        self._tail: _Entry | None = None  # the last finished request's cache (trimmable only)

    def clear(self) -> None:
        self._entries.clear()
        self._recent.clear()
        self._tail = None

    @property
    def nbytes(self) -> int:
        """KV cache bytes held by the entries and the tail."""
        held = self._entries + ([self._tail] if self._tail else [])
        return sum(e.nbytes for e in held)

    def remember(self, tokens: list[int], cache: list[Any]) -> None:
        """Keep a finished request's cache: `tokens` are its prompt and reply tokens; the cache
        holds the first `offset` of them. The caller hands the cache over (no copy is made)."""
        from mlx_lm.models.cache import can_trim_prompt_cache

        fed = getattr(cache[0], "offset", None) if cache else None
        if not isinstance(fed, int) or fed < MIN_TAIL or not can_trim_prompt_cache(cache):
            self._tail = None
            return
        size = cache_nbytes(cache)
        if size > self._max_bytes:
            self._tail = None
            return
        self._tail = _Entry(list(tokens[:fed]), cache, size, self._tick())
        self._fit()

    @property
    def entry_lengths(self) -> list[int]:
        return [len(e.tokens) for e in self._entries]

    def prepare(self, model: Any, tokens: list[int], boundary: int = 0) -> Prepared:
        """A cache for `tokens` (at least one token is always left to prefill). boundary: how
        many leading tokens later requests are likely to share (0: unknown)."""
        from mlx_lm.models.cache import make_prompt_cache

        limit = len(tokens) - 1
        best = self._best_entry(tokens, limit)
        seen = max((common_prefix_len(r, tokens) for r in self._recent), default=0)
        shared = min(max(seen, boundary), limit)
        self._recent.append(list(tokens))
        base_len = len(best.tokens) if best else 0
        from_tail = self._from_tail(tokens, limit, base_len)
        if from_tail is not None:
            return from_tail
        if shared >= MIN_SHARED and shared >= base_len + MIN_EXTEND:
            t0 = time.perf_counter()
            cache = copy.deepcopy(best.cache) if best else make_prompt_cache(model)
            _prefill(model, cache, tokens[base_len:shared])
            kept = self._store(_Entry(list(tokens[:shared]), cache, cache_nbytes(cache)))
            built = shared - base_len
            mine = copy.deepcopy(cache) if kept else cache
            return Prepared(mine, tokens[shared:], base_len, built, time.perf_counter() - t0)
        if best is not None:
            self._touch(best)
            return Prepared(copy.deepcopy(best.cache), tokens[base_len:], base_len, 0, 0.0)
        return Prepared(make_prompt_cache(model), list(tokens), 0, 0, 0.0)

    def _from_tail(self, tokens: list[int], limit: int, base_len: int) -> Prepared | None:
        """The tail cut back to what it shares with `tokens`, when that beats the best entry."""
        from mlx_lm.models.cache import trim_prompt_cache

        tail = self._tail
        if tail is None:
            return None
        shared = min(common_prefix_len(tail.tokens, tokens), limit)
        if shared < MIN_TAIL or (base_len and shared < base_len + MIN_EXTEND):
            return None
        tail.used = self._tick()
        cache = copy.deepcopy(tail.cache)
        trim_prompt_cache(cache, len(tail.tokens) - shared)
        return Prepared(cache, tokens[shared:], shared, 0, 0.0)

    def _best_entry(self, tokens: list[int], limit: int) -> _Entry | None:
        fitting = [
            e
            for e in self._entries
            if len(e.tokens) <= limit and tokens[: len(e.tokens)] == e.tokens
        ]
        return max(fitting, key=lambda e: len(e.tokens), default=None)

    def _tick(self) -> int:
        self._clock += 1
        return self._clock

    def _touch(self, entry: _Entry) -> None:
        self._entries.remove(entry)
        self._entries.append(entry)
        entry.used = self._tick()

    def _store(self, entry: _Entry) -> bool:
        """Keep a new entry unless it alone is over the byte budget; False: not kept."""
        if entry.nbytes > self._max_bytes:
            return False
        entry.used = self._tick()
        self._entries.append(entry)
        while len(self._entries) > self._max:
            self._entries.pop(0)
        self._fit()
        return True

    def _fit(self) -> None:
        """Drop the least recently used of the entries and the tail until the bytes fit."""
        while self.nbytes > self._max_bytes:
            held = self._entries + ([self._tail] if self._tail else [])
            oldest = min(held, key=lambda e: e.used)
            if oldest is self._tail:
                self._tail = None
            else:
                self._entries.remove(oldest)


def _prefill(model: Any, cache: list[Any], tokens: list[int], step: int = 2048) -> None:
    """Run tokens through the model into cache, in steps like mlx_lm.generate_step does."""
    import mlx.core as mx

    for i in range(0, len(tokens), step):
        model(mx.array(tokens[i : i + step])[None], cache=cache)
        mx.eval([c.state for c in cache])
