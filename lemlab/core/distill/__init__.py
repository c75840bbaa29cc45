"""Curriculum data: the self-distill JSONL and its runner, extraction into
training data, and the distill -> extract -> train phase pipelines."""
