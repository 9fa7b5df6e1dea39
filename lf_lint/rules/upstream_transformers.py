"""transformers TrainingArguments checks (placeholder)."""

RULES = []
