"""What each chat reply was generated with, kept on the message itself (headless).

A session's kernel and sampler are what the *next* reply will use; switching the kernel mid-chat
must not rewrite what earlier replies were made with. So every assistant message carries its own
record: model, adapter, kernel name, kernel_sha256 and sampler settings. Regenerated replies are
kept as variants of one message (`variants`, with `variant` the one shown); the message's own
fields mirror the variant shown, so everything that reads a chat (engine turns, exports) sees it.
"""

from __future__ import annotations

from typing import Any

PROVENANCE_KEYS = ("model", "adapter", "kernel", "kernel_sha256", "sampler")
# A variant holds one reply: its text, figures and record (never nested variants).
VARIANT_KEYS = ("content", "ts", "stats", "score", "labels", *PROVENANCE_KEYS)


def provenance(
    model: str | None, adapter: str | None, kernel: dict[str, Any], sampler: dict[str, Any]
) -> dict[str, Any]:
    """The record for a reply about to be generated ('none' for no kernel: an honest value,
    not an absent one, so a reader can tell 'no kernel' from 'not recorded')."""
    record: dict[str, Any] = {
        "model": model or "",
        "kernel": kernel.get("name") or "none",
        "sampler": dict(sampler),
    }
    if adapter:
        record["adapter"] = adapter
    if kernel.get("sha256"):
        record["kernel_sha256"] = kernel["sha256"]
    return record


def kernel_of(msg: dict[str, Any]) -> tuple[str, str] | None:
    """(kernel name, sha256) a reply was made with; None for messages with no record."""
    if msg.get("role") != "assistant" or "kernel" not in msg:
        return None
    return str(msg["kernel"]), str(msg.get("kernel_sha256", ""))


def kernel_marks(messages: list[dict[str, Any]]) -> dict[int, str]:
    """{index of a user message: mark}: where the kernel differs from the one the previous
    reply used (or the first reply used a kernel), the mark goes before the exchange."""
    marks: dict[int, str] = {}
    previous: tuple[str, str] | None = ("none", "")
    last_user = 0
    for i, msg in enumerate(messages):
        if msg.get("role") == "user":
            last_user = i
        current = kernel_of(msg)
        if current is None:
            continue
        if current != previous:
            marks[last_user] = kernel_label(*current)
        previous = current
    return marks


def kernel_label(name: str, sha256: str = "") -> str:
    if name == "none":
        return "kernel: none"
    return f"kernel: {name}" + (f" (sha256 {sha256[:12]})" if sha256 else "")


def provenance_line(msg: dict[str, Any]) -> str:
    """One line: model · adapter · kernel · sampler ('' when the message has no record)."""
    if "kernel" not in msg and "model" not in msg:
        return ""
    parts = [f"model {_name(msg.get('model', ''))}"]
    if msg.get("adapter"):
        parts.append(f"adapter {_name(msg['adapter'])}")
    parts.append(kernel_label(str(msg.get("kernel", "none")), str(msg.get("kernel_sha256", ""))))
    sampler = msg.get("sampler") or {}
    if sampler:
        parts.append(", ".join(f"{k}={v}" for k, v in sampler.items()))
    return " · ".join(parts)


def _name(path: str) -> str:
    return path.rstrip("/").rsplit("/", 1)[-1] or path


# --- variants ---------------------------------------------------------------------------------


def as_variant(msg: dict[str, Any]) -> dict[str, Any]:
    return {k: msg[k] for k in VARIANT_KEYS if k in msg}


def add_variant(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """`new` (a fresh reply to the same prompt) shown, with every earlier version kept."""
    variants = [as_variant(v) for v in old.get("variants") or [old]]
    variants.append(as_variant(new))
    return show_variant({**new, "variants": variants}, len(variants) - 1)


def show_variant(msg: dict[str, Any], index: int) -> dict[str, Any]:
    """The message with variant `index` (clamped) as its visible reply."""
    variants = msg.get("variants") or []
    if not variants:
        return msg
    index = max(0, min(index, len(variants) - 1))
    shown = {k: v for k, v in msg.items() if k not in VARIANT_KEYS}
    shown.update(variants[index])
    shown["variant"] = index
    return shown


def variant_label(msg: dict[str, Any]) -> str:
    variants = msg.get("variants") or []
    if len(variants) < 2:
        return ""
    return f"variant {int(msg.get('variant', len(variants) - 1)) + 1}/{len(variants)}"
