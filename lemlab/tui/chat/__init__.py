"""The Chat pane's parts: composer, message widgets, stream pacing and the
actions the pane's keys run."""
