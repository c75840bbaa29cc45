"""Self-contained HTML reports (A/B runs and trainings) with server-side SVG
charts, for readers who never open a terminal."""
