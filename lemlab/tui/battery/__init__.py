"""The Battery tab's parts: run setup, the worker that drives the A/B runner, the score table,
the side-by-side view and the override dialog (the pane itself is lemlab.tui.panes.battery)."""
