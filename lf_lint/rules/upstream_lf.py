"""LLaMA-Factory's own start-up checks (placeholder until the per-version table is encoded)."""

RULES = []
