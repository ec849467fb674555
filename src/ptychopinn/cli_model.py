"""CLI commands for models (train, infer, compare, iterative, study)."""

from __future__ import annotations


def add_commands(sub) -> None:
    """Register the model subcommands on ``sub``."""
