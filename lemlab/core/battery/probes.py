"""Probe batteries: load the research JSON array (or JSONL) and lemlab's TOML format, resolve a
battery by path or shipped name, list what is available, and write the research JSON back.

Headless: no textual or mlx imports. Every user-data problem becomes one LemlabError line that
names the file (and the line, where the parser knows it).
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lemlab.core import limits
from lemlab.core.atomic import write_text_atomic
from lemlab.core.errors import DataError, LemlabError
from lemlab.core.files.user_files import decode_utf8, read_file_bytes
from lemlab.core.paths import get_paths, shipped_dirs
from lemlab.core.safe_text import control_chars

BATTERY_SUFFIXES = (".toml", ".json", ".jsonl")
UNCATEGORISED = "uncategorised"
# Keys the Probe dataclass holds itself; every other key of an item is kept in Probe.extra.
_OWN_KEYS = ("id", "prompt", "notes", "source_probe", "rephrase_type")


@dataclass(frozen=True)
class Probe:
    id: str
    category: str
    prompt: str
    notes: str = ""
    source_probe: str | None = None
    rephrase_type: str | None = None
    # Raw keys of the source item other than _OWN_KEYS (e.g. the original-case `domain`),
    # kept so a battery written back reads the same in the research scripts.
    extra: Mapping[str, Any] = field(default_factory=dict, hash=False)


@dataclass(frozen=True)
class Battery:
    name: str
    description: str
    probes: tuple[Probe, ...]
    path: Path | None = None

    @property
    def categories(self) -> list[str]:
        """Categories in first-seen order."""
        return list(dict.fromkeys(p.category for p in self.probes))

    def __len__(self) -> int:
        return len(self.probes)


@dataclass(frozen=True)
class BatteryInfo:
    name: str
    count: int
    categories: tuple[str, ...]
    path: Path
    description: str = ""
    error: str = ""  # set when the file could not be loaded; the listing still shows it


# ---------------------------------------------------------------------------------------------
# Reading


def load_battery(path: str | Path) -> Battery:
    """Load a .json (array), .jsonl (one object a line) or .toml battery."""
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix not in BATTERY_SUFFIXES:
        raise LemlabError(f"{p}: unknown battery format (use .toml, .json or .jsonl)")
    text = _read_text(p)
    if suffix == ".toml":
        name, description, items = _parse_toml(p, text)
    elif suffix == ".jsonl":
        name, description, items = p.stem, "", _parse_jsonl(p, text)
    else:
        name, description, items = p.stem, "", _parse_json(p, text)
    probes = _build_probes(p, items)
    return Battery(name=name, description=description, probes=tuple(probes), path=p)


def _read_text(p: Path) -> str:
    try:
        size = p.stat().st_size
    except OSError:
        size = 0  # read_file_bytes words the error
    if size > limits.cap(limits.BATTERY_BYTES):
        raise DataError(
            f"{p}: " + limits.over("the battery file", size, limits.BATTERY_BYTES, "bytes")
        )
    return decode_utf8(read_file_bytes(p, str(p), "battery file"), str(p), "utf-8-sig")


def _parse_json(p: Path, text: str) -> list[tuple[str, Any]]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(f"{p}: line {exc.lineno}: invalid JSON: {exc.msg}") from None
    except RecursionError:
        raise DataError(f"{p}: invalid JSON: nested too deeply") from None
    if not isinstance(data, list):
        raise DataError(f"{p}: expected a JSON array of probes, got {type(data).__name__}")
    return [(f"item {i}", item) for i, item in enumerate(data, 1)]


def _parse_jsonl(p: Path, text: str) -> list[tuple[str, Any]]:
    items: list[tuple[str, Any]] = []
    # "\n" only: splitlines() also splits on U+2028 and others that are legal inside JSON strings.
    for lineno, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        try:
            items.append((f"line {lineno}", json.loads(line)))
        except json.JSONDecodeError as exc:
            raise DataError(f"{p}: line {lineno}: invalid JSON: {exc.msg}") from None
        except RecursionError:
            raise DataError(f"{p}: line {lineno}: invalid JSON: nested too deeply") from None
    return items


def _parse_toml(p: Path, text: str) -> tuple[str, str, list[tuple[str, Any]]]:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise DataError(f"{p}: invalid TOML: {exc}") from None
    except RecursionError:
        raise DataError(f"{p}: invalid TOML: nested too deeply") from None
    tables = data.get("probe", [])
    if not isinstance(tables, list):
        raise DataError(f"{p}: `probe` must be an array of tables ([[probe]])")
    name = data.get("name", p.stem)
    description = data.get("description", "")
    if not isinstance(name, str) or not name.strip():
        raise DataError(f"{p}: `name` must be a non-empty string")
    if not isinstance(description, str):
        raise DataError(f"{p}: `description` must be a string")
    return name.strip(), description.strip(), [(f"probe {i}", t) for i, t in enumerate(tables, 1)]


def _build_probes(p: Path, items: list[tuple[str, Any]]) -> list[Probe]:
    if not items:
        raise DataError(f"{p}: battery has no probes")
    if len(items) > limits.cap(limits.BATTERY_PROBES):
        raise DataError(
            f"{p}: " + limits.over("the battery", len(items), limits.BATTERY_PROBES, "probes")
        )
    probes: list[Probe] = []
    seen: dict[str, str] = {}
    for where, item in items:
        probe = probe_from_dict(item, f"{p}: {where}")
        if probe.id in seen:
            raise DataError(f"{p}: {where}: duplicate id {probe.id!r} (first at {seen[probe.id]})")
        seen[probe.id] = where
        probes.append(probe)
    return probes


def probe_from_dict(item: Any, where: str = "probe") -> Probe:
    """One research-format item -> Probe. `where` prefixes error messages."""
    if not isinstance(item, dict):
        raise DataError(f"{where}: expected an object, got {type(item).__name__}")
    pid = _required_str(item, "id", where)
    prompt = _required_str(item, "prompt", where)
    if len(prompt) > limits.cap(limits.PROMPT_CHARS):
        raise DataError(
            f"{where}: " + limits.over("the prompt", len(prompt), limits.PROMPT_CHARS, "characters")
        )
    category = _category_of(item, where)
    optional = {
        k: _optional_str(item, k, where) for k in ("notes", "source_probe", "rephrase_type")
    }
    extra = {k: v for k, v in item.items() if k not in _OWN_KEYS}
    return Probe(
        id=pid,
        category=category,
        prompt=prompt,
        notes=optional["notes"] or "",
        source_probe=optional["source_probe"],
        rephrase_type=optional["rephrase_type"],
        extra=extra,
    )


def _required_str(item: dict[str, Any], key: str, where: str) -> str:
    if key not in item:
        raise DataError(f"{where}: missing {key!r}")
    value = item[key]
    if not isinstance(value, str):
        raise DataError(f"{where}: {key!r} must be a string")
    if not value.strip():
        raise DataError(f"{where}: empty {key!r}")
    if key == "id":
        _one_line_label(value.strip(), key, where)
    return value.strip() if key == "id" else value


def _one_line_label(value: str, key: str, where: str) -> None:
    # Ids and categories name probes in progress lines, tables and file names: one line of
    # printable text (a prompt may hold anything; it is shown with its controls made visible).
    # repr() spells each such character as an escape (\x1b, \n, \u202e): the message is safe
    # to print and shows the user what to look for in the file.
    if control_chars(value):
        raise DataError(
            f"{where}: {key!r} {value!r} holds control or invisible characters: "
            "use one line of printable text"
        )


def _optional_str(item: dict[str, Any], key: str, where: str) -> str | None:
    value = item.get(key)
    if value is not None and not isinstance(value, str):
        raise DataError(f"{where}: {key!r} must be a string")
    return value


def _category_of(item: dict[str, Any], where: str) -> str:
    # The research rule: category, else domain, else "uncategorised"; always lower-cased.
    for key in ("category", "domain"):
        value = item.get(key)
        if value is None:
            continue
        if not isinstance(value, str):
            raise DataError(f"{where}: {key!r} must be a string")
        if value.strip():
            _one_line_label(value.strip(), key, where)
            return value.strip().lower()
    return UNCATEGORISED


# ---------------------------------------------------------------------------------------------
# Writing


def probe_to_dict(probe: Probe) -> dict[str, Any]:
    """Research key order: id, domain/category, prompt, then rephrase keys, notes, other extras."""
    out: dict[str, Any] = {"id": probe.id}
    label_keys = [k for k in ("domain", "category") if k in probe.extra]
    # Keep the original-case label when it still agrees with the probe's category.
    kept = [k for k in label_keys if str(probe.extra[k]).strip().lower() == probe.category]
    if kept:
        for k in kept:
            out[k] = probe.extra[k]
    else:
        out["category"] = probe.category
    out["prompt"] = probe.prompt
    if probe.source_probe is not None:
        out["source_probe"] = probe.source_probe
    if probe.rephrase_type is not None:
        out["rephrase_type"] = probe.rephrase_type
    if probe.notes:
        out["notes"] = probe.notes
    for k, v in probe.extra.items():
        if k not in out and k not in label_keys:
            out[k] = v
    return out


def battery_json_text(probes: Iterable[Probe]) -> str:
    items = [probe_to_dict(p) for p in probes]
    return json.dumps(items, ensure_ascii=False, indent=2) + "\n"


def write_battery_json(path: str | Path, probes: Iterable[Probe]) -> None:
    """Atomically write the research JSON array (old scripts read it unchanged)."""
    write_text_atomic(path, battery_json_text(probes))


def write_battery_jsonl(path: str | Path, probes: Iterable[Probe]) -> None:
    lines = [json.dumps(probe_to_dict(p), ensure_ascii=False) for p in probes]
    write_text_atomic(path, "".join(line + "\n" for line in lines))


def write_battery_toml(
    path: str | Path, probes: Iterable[Probe], name: str = "", description: str = ""
) -> None:
    """Atomically write lemlab's TOML battery format (readable by load_battery)."""
    import tomli_w

    doc: dict[str, Any] = {"name": name or Path(path).stem}
    if description:
        doc["description"] = description
    tables = []
    for probe in probes:
        # TOML has no null: keys holding None (possible in JSON extras) are left out.
        table = {k: v for k, v in probe_to_dict(probe).items() if v is not None}
        if "category" not in table and "domain" not in table:
            table["category"] = probe.category
        tables.append(table)
    doc["probe"] = tables
    write_text_atomic(path, tomli_w.dumps(doc, multiline_strings=True))


def write_battery(
    path: str | Path, probes: Sequence[Probe], name: str = "", description: str = ""
) -> None:
    """Write by suffix: .toml -> TOML, .jsonl -> JSONL, anything else -> research JSON array."""
    suffix = Path(path).suffix.lower()
    if suffix == ".toml":
        write_battery_toml(path, probes, name, description)
    elif suffix == ".jsonl":
        write_battery_jsonl(path, probes)
    else:
        write_battery_json(path, probes)


# ---------------------------------------------------------------------------------------------
# Finding batteries


def shipped_probe_dirs() -> list[Path]:
    """Folders holding the batteries that come with lemlab (checkout or packaged copy)."""
    return shipped_dirs("probes")


def battery_dirs(extra_dirs: Iterable[str | Path] = ()) -> list[Path]:
    """Search order: shipped folders, then the user's data folder, then extra_dirs. Folders
    that do not exist are dropped; the same folder reached twice is listed once."""
    candidates = [*shipped_probe_dirs(), get_paths().data_dir / "probes"]
    candidates += [Path(d).expanduser() for d in extra_dirs]
    seen: set[Path] = set()
    out: list[Path] = []
    for d in candidates:
        real = d.resolve()
        if real in seen or not d.is_dir():
            continue
        seen.add(real)
        out.append(d)
    return out


def _battery_files(dirs: Iterable[Path]) -> Iterator[Path]:
    for d in dirs:
        for f in sorted(d.iterdir()):
            if f.is_file() and f.suffix.lower() in BATTERY_SUFFIXES and not f.name.startswith("."):
                yield f


def _looks_like_path(spec: str) -> bool:
    return "/" in spec or "\\" in spec or Path(spec).suffix.lower() in BATTERY_SUFFIXES


def resolve_battery(spec: str, extra_dirs: Iterable[str | Path] = ()) -> Battery:
    """`spec` is a battery file path, or a name (file stem or declared TOML `name`) looked up in
    the shipped folders, the user's data_dir/probes and extra_dirs, in that order."""
    if not spec or not spec.strip():
        raise LemlabError("empty battery name")
    path = Path(spec).expanduser()
    if path.is_file():
        return load_battery(path)
    if _looks_like_path(spec):
        raise LemlabError(f"{spec}: no such battery file")
    files = list(_battery_files(battery_dirs(extra_dirs)))
    for f in files:
        if f.stem == spec:
            return load_battery(f)
    for f in files:
        if f.stem.lower() == spec.lower():
            return load_battery(f)
    for f in files:  # declared names differ from the stem only in TOML files
        if f.suffix.lower() == ".toml" and _declared_name(f) == spec:
            return load_battery(f)
    names = sorted({info.name for info in list_batteries(extra_dirs)})
    raise LemlabError(f"unknown battery {spec!r} (available: {', '.join(names) or 'none'})")


def _declared_name(f: Path) -> str | None:
    try:
        name = tomllib.loads(f.read_text(encoding="utf-8")).get("name")
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, RecursionError):
        return None
    return name if isinstance(name, str) else None


def list_batteries(extra_dirs: Iterable[str | Path] = ()) -> list[BatteryInfo]:
    """Every battery file found, first occurrence of each name wins. A file that fails to load
    is still listed, with its error, so a bad user file does not hide the rest."""
    infos: list[BatteryInfo] = []
    seen: set[str] = set()
    for f in _battery_files(battery_dirs(extra_dirs)):
        try:
            b = load_battery(f)
            info = BatteryInfo(b.name, len(b), tuple(b.categories), f, b.description)
        except LemlabError as exc:
            info = BatteryInfo(f.stem, 0, (), f, "", str(exc))
        if info.name in seen:
            continue
        seen.add(info.name)
        infos.append(info)
    return infos
