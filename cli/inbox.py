"""Placeholder until the inbox commands land; owned by the engineer building them."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the commands to the main app (none yet)."""
