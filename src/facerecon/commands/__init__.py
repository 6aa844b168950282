"""The logic behind each CLI subcommand (argument parsing stays in cli.py). This layer sits with
cli and pipeline at the top: it may import every other layer."""
