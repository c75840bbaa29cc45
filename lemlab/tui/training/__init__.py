"""The Training pane's parts: following a run, the loss plot, the checkpoint table, the start
form, and scoring each checkpoint with a battery (lemlab.tui.panes.training puts them together)."""
