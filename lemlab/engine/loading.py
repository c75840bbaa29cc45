"""Loading a model (and optionally a LoRA adapter) with mlx_lm, after checks that turn every
usual mistake into one clear line. Runs on the engine thread; mlx_lm is imported lazily."""

from __future__ import annotations

import contextlib
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from lemlab.core.chat.template_guard import check_chat_templates
from lemlab.core.engine_api import LoadInfo
from lemlab.core.errors import LemlabError
from lemlab.core.models.adapters import (
    ADAPTER_CONFIG,
    ADAPTER_WEIGHTS,
    check_adapter_base,
    resolve_adapter,
)
from lemlab.core.models.paths import is_demo_model, resolve_model_dir

_PROBE = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Hello."},
]


@dataclass
class LoadedModel:
    model: Any
    tokenizer: Any  # mlx_lm TokenizerWrapper
    info: LoadInfo


def load_model(model: str, adapter: str | None = None) -> LoadedModel:
    """Validate, load, probe the chat template. Raises LemlabError with one line."""
    t0 = time.perf_counter()
    model_dir = resolve_model_dir(model)
    check_chat_templates(model_dir)  # a runaway template would hang the engine thread later
    warnings: list[str] = []
    adapter_dir: Path | None = None
    weights: Path | None = None
    if adapter:
        adapter_dir, weights = resolve_adapter(adapter)
        if weights.name != ADAPTER_WEIGHTS and Path(adapter).expanduser().is_dir():
            warnings.append(f"{adapter_dir.name} has no {ADAPTER_WEIGHTS}: using {weights.name}")
        mismatch = check_adapter_base(adapter_dir, model_dir)
        if mismatch:
            warnings.append(mismatch)
    with _adapter_folder(adapter_dir, weights) as adapter_path:
        mlx_model, tokenizer, config = _mlx_load(model_dir, adapter_path, adapter)
    info = LoadInfo(
        model_path=str(model_dir),
        adapter_path=_adapter_label(adapter_dir, weights),
        model_type=str(config.get("model_type", "")),
        num_layers=_num_layers(mlx_model, config),
        supports_system_role=supports_system_role(tokenizer),
        is_demo=_is_demo(model_dir),
        warnings=warnings,
    )
    if not getattr(tokenizer, "has_chat_template", False):
        info.warnings.append(
            f"{model_dir.name} has no chat template: messages are sent as plain text"
        )
    if info.is_demo:
        info.warnings.append(f"{model_dir.name} is a random-weight demo model: its output is noise")
    info.load_time = time.perf_counter() - t0
    return LoadedModel(mlx_model, tokenizer, info)


def _adapter_label(adapter_dir: Path | None, weights: Path | None) -> str | None:
    """The folder, or the checkpoint file when one was chosen instead of adapters.safetensors."""
    if adapter_dir is None or weights is None:
        return None
    return str(adapter_dir if weights == adapter_dir / ADAPTER_WEIGHTS else weights)


@contextlib.contextmanager
def _adapter_folder(adapter_dir: Path | None, weights: Path | None) -> Iterator[str | None]:
    """mlx_lm loads `adapters.safetensors` from a folder; a checkpoint file is presented to it as
    a temporary folder holding links to the config and that file."""
    if adapter_dir is None or weights is None:
        yield None
        return
    if weights == adapter_dir / ADAPTER_WEIGHTS:
        yield str(adapter_dir)
        return
    with tempfile.TemporaryDirectory(prefix="lemlab-adapter-") as tmp:
        (Path(tmp) / ADAPTER_CONFIG).symlink_to((adapter_dir / ADAPTER_CONFIG).resolve())
        (Path(tmp) / ADAPTER_WEIGHTS).symlink_to(weights.resolve())
        yield tmp


def _mlx_load(
    model_dir: Path, adapter_path: str | None, adapter_arg: str | None
) -> tuple[Any, Any, dict]:
    """Base model first, then the adapter, so a failure names the folder that caused it."""
    import mlx.core as mx
    from mlx_lm import load

    with _one_line_errors(f"cannot load {model_dir}", f"cannot read weights in {model_dir}"):
        # mlx-lm annotates load() with both return shapes; return_config=True gives the three.
        model, tokenizer, config = cast(
            "tuple[Any, Any, dict[str, Any]]",
            load(str(model_dir), return_config=True, trust_remote_code=False),
        )
    if adapter_path is not None:
        from mlx_lm.tuner.utils import load_adapters

        with _one_line_errors(
            f"adapter {adapter_arg} does not fit model {model_dir}",
            f"cannot read weights in {adapter_arg}",
        ):
            model = load_adapters(model, adapter_path)
            model.eval()
            mx.eval(model.parameters())  # read the adapter while a temp folder still exists
    return model, tokenizer, config


@contextlib.contextmanager
def _one_line_errors(prefix: str, unreadable: str) -> Iterator[None]:
    try:
        yield
    except ValueError as exc:
        lines = str(exc).strip().splitlines()
        # mlx_lm lists incompatible adapter tensors one per line: show the first.
        detail = lines[1] if "incompatible tensors" in str(exc) and len(lines) > 1 else str(exc)
        raise LemlabError(f"{prefix}: {_first_line(detail)}") from None
    except RuntimeError as exc:
        # mlx's readers say "[load_safetensors] ..." or "[read] ..." for bad or truncated files.
        text = str(exc)
        where = unreadable if text.startswith("[") or "safetensors" in text else prefix
        raise LemlabError(f"{where}: {_first_line(text)}") from None
    except KeyError as exc:  # a config.json without a key mlx_lm needs
        raise LemlabError(f"{prefix}: missing key {_first_line(str(exc))} in its config") from None
    except OSError as exc:
        raise LemlabError(f"{prefix}: {exc.strerror or _first_line(str(exc))}") from None
    except TypeError as exc:  # a config value of the wrong type, met inside mlx_lm
        raise LemlabError(
            f"{prefix}: unexpected value in its config ({_first_line(str(exc))})"
        ) from None


def supports_system_role(tokenizer: Any) -> bool:
    """Probe the chat template with a system message (some, like Gemma 2's, raise on it)."""
    if not getattr(tokenizer, "has_chat_template", False):
        return False
    try:
        tokenizer.apply_chat_template(_PROBE, tokenize=False, add_generation_prompt=True)
    except Exception:  # noqa: BLE001 - jinja raise_exception, TemplateError, ValueError ...
        return False
    return True


def _num_layers(model: Any, config: dict) -> int:
    layers = getattr(model, "layers", None)
    if layers is not None:
        return len(layers)
    cfg = config.get("text_config", config)
    return int(cfg.get("num_hidden_layers", 0) or 0)


def _is_demo(model_dir: Path) -> bool:
    return is_demo_model(model_dir)


def _first_line(text: str) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return lines[0] if lines else "unknown error"
