"""Exceptions raised by infocus.

Every error that a user can cause is an :class:`InfocusInputError`, a subclass of
:class:`ValueError`, so ``except ValueError`` keeps working. Its message is one sentence
that names the problem and the fix; the command line prints it and exits with status 2.

::

    ValueError
     └── InfocusInputError          bad image, axes, parameter or file
          └── OutputExistsError     the output path exists and overwrite was not asked for
"""

from __future__ import annotations

__all__ = ["InfocusInputError", "OutputExistsError"]


class InfocusInputError(ValueError):
    """Input that infocus cannot use; the message says what to change."""


class OutputExistsError(InfocusInputError, FileExistsError):
    """The output path exists and overwriting was not requested."""
