"""What the command line prints is plain text: no reStructuredText from the docstrings."""

from __future__ import annotations

import pytest
import typer.main
from typer.testing import CliRunner

from infocus.cli import app
from infocus.cli._common import plain_text

runner = CliRunner()
MARKUP = ("``", ":func:", ":class:", ":math:", ":meth:", ":mod:", ":attr:")


def command_paths(command=None, path=()):
    """Every command and sub-command, as the words that name it."""
    command = command or typer.main.get_command(app)
    yield list(path)
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        yield from command_paths(sub, (*path, name))


@pytest.mark.parametrize(
    ("rst", "plain"),
    [
        (r"Gaussian filter, :math:`\hat{y} = G_s * z`, width :math:`s`.",
         "Gaussian filter, ŷ = G_s * z, width s."),
        ("cubes of a ``ZYX`` block", "cubes of a ZYX block"),
        (":func:`~infocus.io.read_image` and :class:`infocus.qc.QualityReport`",
         "read_image and infocus.qc.QualityReport"),
        (r":math:`p(x \mid s)`, :math:`\varphi \in \{0, \dots, g-1\}^d`",
         "p(x | s), φ ∈ {0, …, g-1}^d"),
        (r":math:`x = a\,\mathrm{Poisson}(s) + \mathcal{N}(\mu, \sigma^2)`",
         "x = a Poisson(s) + N(μ, σ^2)"),
        (r":math:`x_{t+1} = \frac{a}{b + 1}`", "x_(t+1) = a/(b + 1)"),
        ("*emphasis*, **strong**, `Chambolle <https://doi.org>`_", "emphasis, strong, Chambolle"),
        ("2*3*4, a * b, Chambolle's algorithm", "2*3*4, a * b, Chambolle's algorithm"),
    ],
)
def test_plain_text(rst, plain):
    assert plain_text(rst) == plain


def test_methods_list_reads_as_plain_text():
    result = runner.invoke(app, ["methods"], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "ŷ" in result.output  # the gaussian formula, rendered rather than dropped
    leaked = [m for m in MARKUP if m in result.output]
    assert not leaked, result.output


@pytest.mark.parametrize("path", list(command_paths()), ids=lambda p: " ".join(p) or "infocus")
def test_help_reads_as_plain_text(path):
    result = runner.invoke(app, [*path, "--help"], terminal_width=200)
    assert result.exit_code == 0, result.output
    leaked = [m for m in MARKUP if m in result.output]
    assert not leaked, result.output
