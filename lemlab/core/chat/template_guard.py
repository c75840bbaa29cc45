"""A model's chat template is code from its folder. Jinja's sandbox stops it from reaching
files or Python objects, but nothing bounds its loops: a template with nested `range(100000)`
loops hangs the first render, on the thread that owns MLX. Before a model is loaded its template
is rendered once, on a two-message chat, in a child process with a time and size budget.

Only the budget is judged here: a template that fails to render (a raise_exception on a system
role, a filter this minimal environment lacks) is left to the real renderer, which words it.
Headless (no mlx); jinja2 is imported only in the child.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from lemlab.core.errors import LemlabError

TIME_LIMIT = 10.0  # seconds for one render: real templates take milliseconds
OUTPUT_LIMIT = 1 << 20  # characters one render of two short messages may produce

_checked: set[str] = set()  # digests of templates that rendered within budget (this process)

# The child mirrors what transformers gives a template (trim/lstrip, loopcontrols, tojson,
# raise_exception, strftime_now) closely enough to run real templates; it prints nothing on
# success, exits 3 when the output passes the size limit.
_CHILD = r"""
import json, sys
from datetime import datetime
from jinja2.sandbox import ImmutableSandboxedEnvironment
req = json.loads(sys.stdin.read())
env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                    extensions=["jinja2.ext.loopcontrols"])
env.filters["tojson"] = lambda x, indent=None, **kw: json.dumps(x, ensure_ascii=False, indent=indent)
def _raise(message):
    raise ValueError(message)
env.globals["raise_exception"] = _raise
env.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
try:
    template = env.from_string(req["template"])
    total = 0
    for piece in template.generate(messages=req["messages"], add_generation_prompt=True,
                                   bos_token="<s>", eos_token="</s>", tools=None):
        total += len(piece)
        if total > req["limit"]:
            sys.exit(3)
except SystemExit:
    raise
except BaseException:
    pass
"""

_MESSAGES = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Hello."},
]


def templates_in(model_dir: Path) -> list[str]:
    """Every chat template a model folder carries: tokenizer_config.json's `chat_template`
    (a string, or a list of named templates), chat_template.jinja, chat_template.json."""
    found: list[str] = []
    for name in ("tokenizer_config.json", "chat_template.json"):
        try:
            data = json.loads((model_dir / name).read_text(encoding="utf-8"))
        except (OSError, ValueError, RecursionError):
            continue
        found += _template_values(data.get("chat_template") if isinstance(data, dict) else None)
    try:
        found.append((model_dir / "chat_template.jinja").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        pass
    return [t for t in found if t.strip()]


def _template_values(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [
            v["template"]
            for v in value
            if isinstance(v, dict) and isinstance(v.get("template"), str)
        ]
    return []


def check_chat_templates(model_dir: Path, time_limit: float | None = None) -> None:
    """LemlabError (one line) when a template of the folder cannot render a short chat within
    `time_limit` seconds (default TIME_LIMIT) and OUTPUT_LIMIT characters."""
    time_limit = TIME_LIMIT if time_limit is None else time_limit
    for template in templates_in(model_dir):
        digest = hashlib.sha256(template.encode()).hexdigest()
        if digest in _checked:
            continue
        request = json.dumps({"template": template, "messages": _MESSAGES, "limit": OUTPUT_LIMIT})
        try:
            proc = subprocess.run(
                [sys.executable, "-I", "-c", _CHILD],
                input=request,
                capture_output=True,
                text=True,
                timeout=time_limit,
            )
        except subprocess.TimeoutExpired:
            raise LemlabError(
                f"{model_dir}: its chat template did not render a two-message chat within "
                f"{time_limit:g} s (runaway loops?): refusing to load it"
            ) from None
        if proc.returncode == 3:
            raise LemlabError(
                f"{model_dir}: its chat template writes over {OUTPUT_LIMIT:,} characters for a "
                "two-message chat: refusing to load it"
            )
        _checked.add(digest)
