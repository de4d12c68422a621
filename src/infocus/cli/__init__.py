"""Command-line interface (``infocus --help``)."""

from infocus.cli.app import app, main

__all__ = ["app", "main"]
