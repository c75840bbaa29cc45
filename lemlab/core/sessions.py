"""Sessions: one chat + the runs made around it, kept as versioned TOML (headless; no UI imports).

File layout (`<sessions_dir>/<name>.toml`, `schema_version = 1`, no nulls - absent values are
omitted). Tables lemlab does not know (written by newer versions or other tools) are kept as read
and written back unchanged. Open arrays other parts append to with `add_record`:
`[[battery_runs]]`, `[[training_runs]]`, `[[overrides]]`.

The file is the session's identity: a loaded session takes its name from the file name and is
saved back to the file it was opened from (a copied file is a separate session, never a way to
write into the original; the `name` key inside is informative). A session opened for editing
holds an exclusive lock (core/locks.py) so two lemlab processes never interleave one file's
turns. Session files are created private (0600 before the umask): they hold whole
conversations. A file whose mode the user changed keeps that mode on every save.

Identity hashes are cheap on purpose (weights can be GBs): sha256 over config.json's bytes plus
the name, size and mtime of every weight file. A changed file changes the hash; a copied folder
with new mtimes does too (a false "changed", never a false "same").
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import tomli_w

from lemlab.core.atomic import write_text_atomic
from lemlab.core.errors import DataError, LemlabError
from lemlab.core.locks import FileLock, acquire

SCHEMA_VERSION = 1
SESSION_FILE_MODE = 0o600  # new session files: private transcripts (see the module doc)
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}\Z")  # \Z: `$` also matches before "\n"
# Kernels up to this size are stored verbatim, so a session replays exactly without the file.
KERNEL_TEXT_LIMIT = 64 * 1024
RECORD_KINDS = ("battery_runs", "training_runs", "overrides")
_KNOWN = {
    "schema_version",
    "name",
    "created",
    "updated",
    "model",
    "adapter",
    "kernel",
    "sampler",
    "versions",
    "messages",
}


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


def validate_name(name: str) -> str:
    """A session name maps to one file in the sessions folder and can never leave it."""
    if not NAME_RE.match(name or "") or ".." in name:
        raise LemlabError(
            f"bad session name {name!r}: use 1-64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit, no '..'"
        )
    return name


def _weights_identity(folder: Path, pattern: str) -> str:
    h = hashlib.sha256()
    for meta in ("config.json", "adapter_config.json"):
        if (folder / meta).is_file():
            h.update((folder / meta).read_bytes())
    for f in sorted(folder.glob(pattern)):
        st = f.stat()
        h.update(f"{f.name}:{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()


def model_identity(path: str | Path) -> str:
    """sha256 of config.json + (name, size, mtime) of each *.safetensors file; '' if not a folder."""
    folder = Path(path)
    return _weights_identity(folder, "*.safetensors") if folder.is_dir() else ""


def adapter_identity(path: str | Path) -> str:
    """Same recipe for an adapter folder (adapters.safetensors) or one checkpoint file in it."""
    p = Path(path)
    if p.is_file():
        return _weights_identity(p.parent, p.name)
    return _weights_identity(p, "adapters.safetensors") if p.is_dir() else ""


def package_versions() -> dict[str, str]:
    out: dict[str, str] = {}
    for dist in ("lemlab", "mlx", "mlx-lm"):
        try:
            out[dist.replace("-", "_")] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return out


def drop_nones(value: Any) -> Any:
    """TOML has no null: absent values are omitted, recursively."""
    if isinstance(value, dict):
        return {k: drop_nones(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [drop_nones(v) for v in value if v is not None]
    return value


@dataclass
class Session:
    name: str
    created: str = field(default_factory=now_iso)
    updated: str = ""
    model: dict[str, Any] = field(default_factory=dict)  # path, identity, is_demo
    adapter: dict[str, Any] = field(default_factory=dict)  # path, identity
    kernel: dict[str, Any] = field(default_factory=dict)  # name, sha256, text (if small)
    sampler: dict[str, Any] = field(default_factory=dict)  # temperature, top_p, max_tokens, seed
    messages: list[dict[str, Any]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)  # battery_runs etc. + unknown tables
    # The file it was read from / is saved to (None: <sessions_dir>/<name>.toml), and its lock.
    path: Path | None = field(default=None, compare=False, repr=False)
    lock: FileLock | None = field(default=None, compare=False, repr=False)

    def release(self) -> None:
        """Give up the session's lock (another lemlab may then open it)."""
        if self.lock is not None:
            self.lock.release()
            self.lock = None

    # -- building ---------------------------------------------------------------------------
    def set_model(self, path: str | None, *, is_demo: bool = False) -> None:
        self.model = {} if not path else {"path": path, "identity": model_identity(path)}
        if path and is_demo:
            self.model["is_demo"] = True

    def set_adapter(self, path: str | None) -> None:
        self.adapter = {} if not path else {"path": path, "identity": adapter_identity(path)}

    def set_kernel(self, name: str | None, text: str) -> None:
        """name=None with text: a free-text system prompt; empty text clears the kernel."""
        if not text:
            self.kernel = {}
            return
        self.kernel = {
            "name": name or "custom",
            "sha256": hashlib.sha256(text.encode()).hexdigest(),
        }
        if len(text.encode()) <= KERNEL_TEXT_LIMIT:
            self.kernel["text"] = text

    def add_message(self, role: str, content: str, **meta: Any) -> dict[str, Any]:
        msg: dict[str, Any] = drop_nones(
            {"role": role, "content": content, "ts": now_iso(), **meta}
        )
        self.messages.append(msg)
        return msg

    def add_record(self, kind: str, record: dict[str, Any]) -> None:
        """Append to [[battery_runs]] / [[training_runs]] / [[overrides]] (see module doc)."""
        if kind not in RECORD_KINDS:
            raise ValueError(f"unknown record kind {kind!r} (one of {', '.join(RECORD_KINDS)})")
        self.extra.setdefault(kind, []).append(drop_nones(dict(record)))

    def records(self, kind: str) -> list[dict[str, Any]]:
        return list(self.extra.get(kind, []))

    # -- (de)serialising ------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "schema_version": SCHEMA_VERSION,
            "name": self.name,
            "created": self.created,
            "updated": self.updated or self.created,
            "versions": package_versions(),
        }
        for key in ("model", "adapter", "kernel", "sampler"):
            if getattr(self, key):
                data[key] = getattr(self, key)
        data.update({k: v for k, v in self.extra.items() if k not in _KNOWN})
        data["messages"] = self.messages  # last: long arrays of tables read best at the end
        out: dict[str, Any] = drop_nones(data)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Session:
        version = data.get("schema_version")
        if version != SCHEMA_VERSION:
            raise DataError(f"unsupported schema_version {version!r} (this lemlab reads 1)")
        if not isinstance(data.get("name"), str):
            raise DataError("missing session name")
        msgs = data.get("messages", [])
        if not isinstance(msgs, list) or any(
            not isinstance(m, dict)
            or not isinstance(m.get("role"), str)
            or not isinstance(m.get("content"), str)
            for m in msgs
        ):
            raise DataError("messages must be tables with role and content (strings)")
        for key in ("model", "adapter", "kernel", "sampler"):
            if not isinstance(data.get(key, {}), dict):
                raise DataError(f"{key} must be a table ([{key}])")
        for key in RECORD_KINDS:
            runs = data.get(key, [])
            if not isinstance(runs, list) or not all(isinstance(r, dict) for r in runs):
                raise DataError(f"{key} must be an array of tables ([[{key}]])")
        return cls(
            name=data["name"],
            created=str(data.get("created", "")),
            updated=str(data.get("updated", "")),
            model=dict(data.get("model", {})),
            adapter=dict(data.get("adapter", {})),
            kernel=dict(data.get("kernel", {})),
            sampler=dict(data.get("sampler", {})),
            messages=msgs,
            extra={k: v for k, v in data.items() if k not in _KNOWN},
        )


def session_path(name: str, sessions_dir: Path) -> Path:
    return sessions_dir / f"{validate_name(name)}.toml"


def save_session(session: Session, sessions_dir: Path) -> Path:
    """Atomic write (temp + fsync + rename): a crash leaves the old file or the new, never half.
    Written to the file the session came from, else `<sessions_dir>/<name>.toml`."""
    session.updated = now_iso()
    path = session.path or session_path(session.name, sessions_dir)
    write_text_atomic(path, tomli_w.dumps(session.to_dict()), new_mode=SESSION_FILE_MODE)
    session.path = path
    return path


def load_session_file(path: Path) -> Session:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text (bad byte at offset {exc.start})") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    except RecursionError:
        raise DataError(f"{path}: not valid TOML: nested too deeply") from None
    except tomllib.TOMLDecodeError as exc:
        raise DataError(f"{path}: not valid TOML: {exc}") from exc
    try:
        session = Session.from_dict(data)
    except DataError as exc:
        raise DataError(f"{path}: {exc}") from exc
    session.name, session.path = path.stem, path  # the file name is the identity
    return session


def open_or_create(name: str, sessions_dir: Path, *, lock: bool = False) -> tuple[Session, bool]:
    """Load the named session, or a new empty one (not written until first saved). (session, created)
    `lock`: hold the session's lock first (LockHeld names the lemlab that has it open)."""
    path = session_path(name, sessions_dir)
    held = acquire(path, f"session {name}") if lock else None
    try:
        if path.exists():
            session, created = load_session_file(path), False
        else:
            session, created = Session(name=name, path=path), True
    except BaseException:
        if held is not None:
            held.release()
        raise
    session.lock = held
    return session, created


@dataclass(frozen=True)
class SessionSummary:
    name: str
    updated: str
    model: str
    messages: int
    runs: int
    path: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "updated": self.updated,
            "model": self.model,
            "messages": self.messages,
            "runs": self.runs,
            "path": self.path,
        }


def list_sessions(sessions_dir: Path) -> tuple[list[SessionSummary], list[str]]:
    """Every readable session (newest first) and one line per damaged file, which is left as is."""
    found: list[SessionSummary] = []
    damaged: list[str] = []
    if not sessions_dir.is_dir():
        return found, damaged
    for path in sorted(sessions_dir.glob("*.toml")):
        try:
            s = load_session_file(path)
        except DataError as exc:
            damaged.append(str(exc).splitlines()[0])
            continue
        runs = sum(len(s.extra.get(k, [])) for k in ("battery_runs", "training_runs"))
        found.append(
            SessionSummary(
                s.name, s.updated, str(s.model.get("path", "")), len(s.messages), runs, str(path)
            )
        )
    found.sort(key=lambda x: x.updated, reverse=True)
    return found, damaged


def chat_turns(session: Session) -> list[dict[str, str]]:
    """The conversation as engine messages: kernel as system turn, then user/assistant turns."""
    turns: list[dict[str, str]] = []
    if session.kernel.get("text"):
        turns.append({"role": "system", "content": session.kernel["text"]})
    turns += [
        {"role": m["role"], "content": m["content"]}
        for m in session.messages
        if m["role"] in ("user", "assistant")
    ]
    return turns


def to_markdown(session: Session) -> str:
    """A readable transcript: settings, then each turn with its stats and score."""
    lines = [f"# {session.name}", ""]
    for label, value in (
        ("Model", session.model.get("path")),
        ("Adapter", session.adapter.get("path")),
        ("Kernel", session.kernel.get("name")),
        ("Sampler", ", ".join(f"{k}={v}" for k, v in session.sampler.items()) or None),
    ):
        if value:
            lines.append(f"- **{label}:** {value}")
    if session.kernel.get("text"):
        lines += ["", "## System", "", session.kernel["text"]]
    for msg in session.messages:
        lines += ["", f"## {msg['role'].capitalize()}", "", msg["content"]]
        if "score" in msg:
            labels = ", ".join(msg.get("labels", [])) or "none"
            lines += ["", f"_score {msg['score']:.2f}; failure modes: {labels}_"]
    return "\n".join(lines).rstrip() + "\n"


def to_training_jsonl(session: Session) -> str:
    """One mlx-lm chat-format line for the conversation (the kernel is not part of training data,
    as in the research tools' self-distillation output)."""
    import json

    turns = [t for t in chat_turns(session) if t["role"] != "system"]
    while turns and turns[-1]["role"] != "assistant":
        turns.pop()  # a trailing unanswered user turn is no training example
    if not turns:
        return ""
    return json.dumps({"messages": turns}, ensure_ascii=False) + "\n"


def default_session_name() -> str:
    """A fresh name per run when none is given, so runs never mix into one file."""
    return datetime.now(UTC).strftime("chat-%Y%m%d-%H%M%S")
