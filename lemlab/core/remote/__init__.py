"""Remote OpenAI-compatible endpoints and the spreading of work over several
of them (dispatch, parallel A/B and self-distill runs)."""
