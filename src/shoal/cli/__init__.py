"""The ``shoal`` command (Typer + Rich)."""
