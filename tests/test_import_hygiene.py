"""The headless core must never pull in textual or mlx; `lemlab --help` must not load mlx_lm."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import lemlab.core

# Every module and package under lemlab.core, at any depth (the prefix lets walk_packages import
# the subpackages it descends into).
CORE_MODULES = sorted(m.name for m in pkgutil.walk_packages(lemlab.core.__path__, "lemlab.core."))
FORBIDDEN = ("textual", "mlx", "mlx_lm", "transformers")


def _loaded_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", code + "\nimport sys\nprint('\\n'.join(sys.modules))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return {name.split(".")[0] for name in out}


def test_core_modules_exist() -> None:
    assert "lemlab.core.engine_api" in CORE_MODULES
    assert "lemlab.core.training.events" in CORE_MODULES  # subpackages are walked too
    assert len(CORE_MODULES) >= 60


def test_each_core_module_imports_without_ui_or_mlx() -> None:
    for mod in CORE_MODULES:
        loaded = _loaded_after(f"import {mod}")
        bad = loaded.intersection(FORBIDDEN)
        assert not bad, f"{mod} imported {sorted(bad)}"


def test_cli_help_does_not_import_mlx_or_textual() -> None:
    loaded = _loaded_after(
        "import contextlib, io\nfrom lemlab.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    try:\n        main(['--help'])\n    except SystemExit:\n        pass"
    )
    assert not loaded.intersection(FORBIDDEN), sorted(loaded.intersection(FORBIDDEN))


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                comp = []
                while True:
                    top = stack.pop()
                    on_stack.discard(top)
                    comp.append(top)
                    if top == node:
                        break
                if len(comp) > 1:
                    found.append(sorted(comp))
    return found


def test_cycle_finder_sees_a_cycle_and_only_cycles() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles_between_lemlab_modules_even_under_type_checking() -> None:
    import grimp  # import-linter's graph builder: it sees TYPE_CHECKING and lazy imports too

    g = grimp.build_graph("lemlab")
    graph = {m: set(g.find_modules_directly_imported_by(m)) for m in g.modules}
    assert _cycles(graph) == []
