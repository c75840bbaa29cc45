"""What the panes share: the engine, the open session, the sampler and the system prompt.

Panes read and change it through the app (`self.app.lab`); `save()` writes the session
atomically, which the chat does after every message."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from lemlab.core.chat.record import provenance as reply_provenance
from lemlab.core.engine_api import Engine, LoadInfo, Sampler
from lemlab.core.sessions import Session, chat_turns, save_session


@dataclass
class LabState:
    engine: Engine
    session: Session
    sessions_dir: Path
    sampler: Sampler = field(default_factory=Sampler)
    loading: str = ""  # what is being loaded right now ("" when idle)
    kernel_text: str = ""  # the system prompt in use (sessions store it only when small)
    save_error: str = ""

    @property
    def loaded(self) -> LoadInfo | None:
        return self.engine.loaded

    @property
    def kernel_name(self) -> str | None:
        return self.session.kernel.get("name")

    @property
    def system_text(self) -> str:
        return self.kernel_text or str(self.session.kernel.get("text", ""))

    def set_kernel(self, name: str | None, text: str) -> None:
        self.kernel_text = text
        self.session.set_kernel(name, text)

    def set_sampler(self, sampler: Sampler) -> None:
        self.sampler = sampler
        self.session.sampler = sampler.as_dict()

    def provenance(self) -> dict[str, object]:
        """What a reply generated now is made with (kept on that reply's message)."""
        info = self.loaded
        return reply_provenance(
            info.model_path if info else None,
            info.adapter_path if info else None,
            self.session.kernel,
            self.sampler.as_dict(),
        )

    def turns(self) -> list[dict[str, str]]:
        turns = [t for t in chat_turns(self.session) if t["role"] != "system"]
        system = self.system_text
        return ([{"role": "system", "content": system}] if system else []) + turns

    def save(self) -> str:
        """Write the session; returns '' or a one-line error (the UI shows it, never crashes)."""
        try:
            save_session(self.session, self.sessions_dir)
            self.save_error = ""
        except OSError as exc:
            self.save_error = f"could not save session {self.session.name}: {exc.strerror or exc}"
        return self.save_error
