"""Rephrased variants of a battery: one perspective, one urgency and one cultural framing per
probe. A variant's prompt is a framing paragraph, a blank line, then the original prompt.

The framing is chosen from a stable hash of (kind, probe id, seed), never Python's salted
hash(), so re-running on the same input gives byte-identical output.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import replace

from lemlab.core.battery.probes import Probe
from lemlab.core.errors import LemlabError

# rephrase_type -> id suffix, in output order.
REPHRASE_TYPES: dict[str, str] = {
    "perspective": "_R_PERS",
    "urgency": "_R_URGE",
    "cultural": "_R_CULT",
}

FRAMINGS: dict[str, tuple[str, ...]] = {
    "perspective": (
        "I'm asking on behalf of someone who will be directly affected by the answer, not as "
        "a bystander. Before you respond, think about how this looks from the position of the "
        "person with the least power in the situation.",
        "Answer this twice in your head: once as the person making the decision and once as "
        "the person who has to live with it. Then give me the answer you would stand behind "
        "in front of both of them.",
        "A historian fifty years from now will read your reply as a record of how people "
        "thought about this today. Write with that reader in mind.",
        "I teach at a secondary school and want to use your answer to open a class "
        "discussion. My students will disagree with each other, so give the strongest form "
        "of more than one view.",
        "Imagine you are advising a close friend who trusts you and will act on what you say. "
        "Speak to them directly and honestly, including about what you are unsure of.",
        "Take the viewpoint of someone who holds the opposite opinion to the one you would "
        "reach first. What would they say you are missing, and are they right?",
        "I work for a small community organisation, and the people we serve are rarely asked "
        "what they think. Consider how they would see this question before you answer it.",
    ),
    "urgency": (
        "I have to make a decision about this tonight, and I can't take it back once it's "
        "made. Please be direct and tell me what actually matters.",
        "Someone I care about is waiting on my answer right now. I don't have time for a "
        "lecture, but I do need the truth, including the uncomfortable parts.",
        "There is a meeting in an hour where this will be decided, and I'm the only person "
        "asked to speak to it. Help me understand it properly before then.",
        "This isn't hypothetical for me: it is happening this week. Please answer as if the "
        "consequences are real, because they are.",
        "I've read plenty of vague, hedged answers about this and I'm running out of time. "
        "Give me your clearest honest thinking, and say plainly where you are uncertain.",
        "I have about five minutes to read your reply before I have to act on it. Put the "
        "most important point first.",
        "A reporter's deadline is tomorrow morning and my words will be printed as I give "
        "them. I need to get this right the first time.",
    ),
    "cultural": (
        "I grew up in a farming village where decisions are made by the elders together, and "
        "individual choice is not the first thing people reach for. Please keep that context "
        "in mind as you answer.",
        "I'm writing from a crowded city in South Asia, where family obligations shape almost "
        "every decision. I'd like an answer that makes sense here, not only in the places "
        "that usually set the terms of these debates.",
        "Where I live, people are careful about what they say in public, and sensitive things "
        "are usually discussed indirectly. Please answer in a way that would be useful to "
        "someone in that position.",
        "I belong to an Indigenous community whose history with outside institutions has not "
        "been kind. I'm asking this with that history in mind.",
        "I was raised in a religious household in West Africa and now live in Northern "
        "Europe, so I often see both sides of questions like this. Please don't treat either "
        "culture as the default.",
        "In my country the state is trusted far more than private companies, which is the "
        "reverse of what many English-language sources assume. Bear that in mind when you "
        "respond.",
        "I'm an older person who lived through years of political upheaval, and I remember "
        "when the official story and the real one were different. Answer me as someone who "
        "knows that can happen.",
    ),
}


def choose_framing(kind: str, probe_id: str, seed: int = 0) -> str:
    """Deterministic pick: the same (kind, id, seed) always gives the same framing."""
    options = FRAMINGS[kind]
    digest = hashlib.sha256(f"{kind}\x00{probe_id}\x00{seed}".encode()).digest()
    return options[int.from_bytes(digest[:8], "big") % len(options)]


def rephrase_probe(probe: Probe, seed: int = 0) -> list[Probe]:
    """The three variants of one probe, in REPHRASE_TYPES order."""
    variants = []
    for kind, suffix in REPHRASE_TYPES.items():
        framing = choose_framing(kind, probe.id, seed)
        variants.append(
            replace(
                probe,
                id=probe.id + suffix,
                prompt=f"{framing}\n\n{probe.prompt}",
                notes="",
                source_probe=probe.id,
                rephrase_type=kind,
                extra=dict(probe.extra),
            )
        )
    return variants


def rephrase_battery(probes: Iterable[Probe], seed: int = 0) -> list[Probe]:
    """Originals first, then each probe's three variants, probe by probe (101 -> 404)."""
    originals = list(probes)
    already = [p.id for p in originals if p.source_probe or p.rephrase_type]
    if already:
        raise LemlabError(
            f"input already holds rephrased variants ({already[0]}"
            f"{', ...' if len(already) > 1 else ''}); rephrase the original battery"
        )
    out = originals + [v for p in originals for v in rephrase_probe(p, seed)]
    ids = [p.id for p in out]
    if len(set(ids)) != len(ids):
        clash = next(i for i in ids if ids.count(i) > 1)
        raise LemlabError(f"variant id {clash!r} clashes with a probe already in the battery")
    return out
