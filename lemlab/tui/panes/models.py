"""Models tab: discovered models and LoRA adapters, filter, load / unload, base mismatch warning;
configured endpoints (OpenAI-compatible servers) with the models they list, loaded through the
engine router like any local model."""

from __future__ import annotations

from functools import partial
from pathlib import Path

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Input, Static

from lemlab.core.safe_text import visible_line
from lemlab.tui.models.open_folder import adapter_warning, ask_open_folder
from lemlab.tui.models.rows import (
    ADAPTER_COLUMNS,
    ENDPOINT_COLUMNS,
    MODEL_COLUMNS,
    AdapterRow,
    EndpointRow,
    ModelRow,
    scan,
    scan_endpoints,
)
from lemlab.tui.panes.base import LabPane, Verb


class ModelsPane(LabPane):
    DEFAULT_CSS = """
    ModelsPane #endpoints-table { height: auto; max-height: 8; }
    ModelsPane .-no-endpoints { display: none; }
    """
    TAB_ID = "models"
    TITLE = "Models"
    FOCUS = "#models-table"
    BINDINGS = [
        Binding(
            "slash",
            "focus_filter",
            "Filter",
            id="models.filter",
            tooltip="Type to filter models and adapters by name",
        ),
        Binding(
            "ctrl+u",
            "unload",
            "Unload",
            id="models.unload",
            tooltip="Unload the current model and adapter",
        ),
        Binding(
            "ctrl+l",
            "rescan",
            "Rescan",
            id="models.rescan",
            tooltip="Scan the model folders and ask the endpoints again",
        ),
        Binding(
            "ctrl+f",
            "open_folder",
            "Open folder",
            id="models.open_folder",
            tooltip="Open a model or adapter folder by path (completion, tree, recent)",
        ),
    ]

    def __init__(self) -> None:
        super().__init__(id="models-pane")
        self.models: list[ModelRow] = []
        self.adapters: list[AdapterRow] = []
        self.endpoints: list[EndpointRow] = []
        self.base: str | None = None  # the model an adapter will be put on
        self._warning = ""  # the warning on show, so a status refresh does not toast it again

    def compose(self) -> ComposeResult:
        yield Input(placeholder="filter (name, type, base)…", id="model-filter")
        yield Static("", id="adapter-warning", markup=False)
        yield Static("Models  (Enter loads)", classes="table-title", markup=False)
        yield DataTable(id="models-table", cursor_type="row", zebra_stripes=True)
        yield Static(
            "Adapters  (Enter loads on the chosen base)", classes="table-title", markup=False
        )
        yield DataTable(id="adapters-table", cursor_type="row", zebra_stripes=True)
        # Shown only when config.toml has [endpoints.NAME] tables.
        yield Static(
            "Endpoints  (Enter loads)",
            id="endpoints-title",
            markup=False,
            classes="table-title -no-endpoints",
        )
        yield DataTable(
            id="endpoints-table", cursor_type="row", zebra_stripes=True, classes="-no-endpoints"
        )
        yield Static("", id="models-status", markup=False)

    def on_mount(self) -> None:
        self.query_one("#models-table", DataTable).add_columns(*MODEL_COLUMNS)
        self.query_one("#adapters-table", DataTable).add_columns(*ADAPTER_COLUMNS)
        self.query_one("#endpoints-table", DataTable).add_columns(*ENDPOINT_COLUMNS)
        self.action_rescan()

    def on_show(self) -> None:
        # Adapters trained meanwhile (Training pane, `lemlab train`) appear when the tab opens.
        self.action_rescan()

    def action_open_folder(self) -> None:
        ask_open_folder(self.app)  # type: ignore[arg-type]

    @property
    def configured_endpoints(self) -> dict[str, object]:
        return dict(self.app.settings.endpoints)  # type: ignore[attr-defined]  # LemlabApp's Settings

    @work(thread=True, exclusive=True, group="endpoints")
    def scan_endpoints(self) -> None:
        # Plain HTTP with a timeout per server (no MLX): a thread worker is safe here.
        rows = scan_endpoints(self.configured_endpoints)
        self.app.call_from_thread(self._show_endpoints, rows)

    def _show_endpoints(self, rows: list[EndpointRow]) -> None:
        self.endpoints = rows
        for widget in self.query(".-no-endpoints, .-has-endpoints"):
            widget.set_class(not rows, "-no-endpoints")
            widget.set_class(bool(rows), "-has-endpoints")
        self._fill()

    @work(thread=True, exclusive=True, group="scan")
    def action_rescan(self) -> None:
        # File scanning only (no MLX): a plain thread worker is safe here.
        settings = self.app.settings  # type: ignore[attr-defined]
        if self.configured_endpoints:
            self.app.call_from_thread(self.scan_endpoints)
        models, adapters, problems = scan(settings.model_dirs, settings.scan_hf_cache)
        self.app.call_from_thread(self._show_scan, models, adapters, problems)

    def _show_scan(
        self, models: list[ModelRow], adapters: list[AdapterRow], problems: list[str]
    ) -> None:
        self.models, self.adapters = models, adapters
        self._fill()
        note = f"{len(models)} models, {len(adapters)} adapters"
        self.set_status(note + (f"; {len(problems)} unreadable: {problems[0]}" if problems else ""))

    def _fill(self) -> None:
        needle = self.query_one("#model-filter", Input).value.strip().lower()
        tables: list[tuple[str, list[ModelRow] | list[AdapterRow] | list[EndpointRow]]] = [
            ("#models-table", self.models),
            ("#adapters-table", self.adapters),
            ("#endpoints-table", self.endpoints),
        ]
        for table_id, rows in tables:
            table = self.query_one(table_id, DataTable)
            table.clear()
            for row in rows:
                if needle in " ".join(row.cells()).lower():
                    key = row.spec if isinstance(row, EndpointRow) else row.path
                    # Folder names and config values: Text (DataTable reads str as markup).
                    table.add_row(*(Text(visible_line(c)) for c in row.cells()), key=key)

    @on(Input.Changed, "#model-filter")
    def _filter_changed(self) -> None:
        self._fill()

    def action_focus_filter(self) -> None:
        self.query_one("#model-filter", Input).focus()

    @on(DataTable.RowHighlighted, "#models-table")
    def _base_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.row_key.value:
            self.base = str(event.row_key.value)

    @on(DataTable.RowSelected, "#models-table")
    def _model_chosen(self, event: DataTable.RowSelected) -> None:
        self.base = str(event.row_key.value)
        self.show_warning("")
        self.app.load_model(self.base, None)  # type: ignore[attr-defined]

    @on(DataTable.RowSelected, "#endpoints-table")
    def _endpoint_chosen(self, event: DataTable.RowSelected) -> None:
        self.load_endpoint(str(event.row_key.value))

    def load_endpoint(self, spec: str) -> None:
        """Load a server's model through the engine router (chat and battery then use it)."""
        self.base = spec
        self.show_warning("")
        self.app.load_model(spec, None)  # type: ignore[attr-defined]

    @on(DataTable.RowSelected, "#adapters-table")
    def _adapter_chosen(self, event: DataTable.RowSelected) -> None:
        self.load_adapter(str(event.row_key.value))

    def load_adapter(self, adapter: str) -> None:
        loaded = self.lab.loaded
        base = self.base or (loaded.model_path if loaded else None)
        if not base:
            self.app.notify("Choose a base model first (Enter on a model row).", severity="warning")
            return
        self.show_warning(adapter_warning(adapter, base))
        self.app.load_model(base, adapter)  # type: ignore[attr-defined]

    def show_warning(self, text: str, *, toast: bool = True) -> None:
        box = self.query_one("#adapter-warning", Static)
        shown = box.has_class("-shown") and self._warning == text
        self._warning = text
        box.update(f"⚠ {text}" if text else "")
        box.set_class(bool(text), "-shown")
        if toast and text and not shown:  # the status refreshes often: one toast per new warning
            self.app.notify(text, title="Adapter / base mismatch", severity="warning", timeout=10)

    def set_status(self, text: str) -> None:
        self.query_one("#models-status", Static).update(text)

    def action_unload(self) -> None:
        self.app.unload_model()  # type: ignore[attr-defined]

    def model_changed(self) -> None:
        info = self.lab.loaded
        if self.lab.loading:
            self.set_status(f"loading {self.lab.loading}…")
        elif info is None:
            self.set_status("no model loaded")
        else:
            extra = f" + {Path(info.adapter_path).name}" if info.adapter_path else ""
            name = info.model_path if info.model_type == "remote" else Path(info.model_path).name
            self.set_status(f"loaded {name}{extra} in {info.load_time:.2f} s")
            if info.warnings:
                self.show_warning(
                    "; ".join(info.warnings), toast=False
                )  # the app toasts load warnings

    def palette_verbs(self) -> list[Verb]:
        verbs = [
            Verb(f"Load model: {m.name}", m.path, partial(self._pick_model, m.path))
            for m in self.models
        ]
        verbs += [
            Verb(
                f"Load adapter: {a.name}",
                f"on the chosen base; trained on {a.base or '?'}",
                partial(self.load_adapter, a.path),
            )
            for a in self.adapters
        ]
        verbs += [
            Verb(
                f"Load checkpoint: {a.name} @ {it}",
                f"iteration {it} of {a.name}, on the chosen base",
                partial(self.load_adapter, f),
            )
            for a in self.adapters
            for it, f in a.checkpoint_files
        ]
        verbs += [
            Verb(
                f"Load endpoint model: {e.name} {e.model}",
                e.url,
                partial(self.load_endpoint, e.spec),
            )
            for e in self.endpoints
            if e.status == "ok"
        ]
        return verbs

    def _pick_model(self, path: str) -> None:
        self.base = path
        self.show_warning("")
        self.app.load_model(path, None)  # type: ignore[attr-defined]


PANE = ModelsPane
