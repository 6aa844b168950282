"""Evaluation harnesses: code that drives the pipeline on benchmark data and scores it with the
metrics of `facerecon.evaluation`. Sits above `pipeline` (and below `commands`/`cli`)."""
