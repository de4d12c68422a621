"""Command-line interface (``infocus --help``)."""

from infocus.cli import export as _export  # noqa: F401  (registers `infocus export`)
from infocus.cli import qc as _qc  # noqa: F401  (registers `infocus qc`)
from infocus.cli.app import app, main

__all__ = ["app", "main"]
