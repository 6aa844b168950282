"""The logic behind each CLI subcommand (argument parsing stays in cli.py). This layer sits with
cli and pipeline at the top: it may import every other layer."""

from ..native_logs import quiet_native_stderr

__all__ = ["quiet_native_stderr"]
