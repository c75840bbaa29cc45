"""A/B runs: conditions, the runner, the research JSONL and its store, score
overrides, the Battery tab's score table and the text reports."""
