"""A tiny name -> object registry that refuses duplicates (after torchvision's ``_api.py``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from infocus._errors import InfocusInputError

T = TypeVar("T")

__all__ = ["Registry"]


class Registry(Generic[T]):
    """Map names to objects; ``register`` works as a decorator.

    Parameters
    ----------
    kind : str
        What is registered ("denoiser", "network", ...), used in error messages.
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator: register the decorated object under ``name``."""

        def decorator(obj: T) -> T:
            key = name.lower()
            if key in self._entries:
                raise ValueError(f"A {self.kind} is already registered under the name {key!r}.")
            self._entries[key] = obj
            return obj

        return decorator

    def get(self, name: str) -> T:
        """The object registered under ``name``; a clear error lists the known names."""
        key = name.lower()
        if key not in self._entries:
            raise InfocusInputError(
                f"Unknown {self.kind} {name!r}; choose one of: {', '.join(self.names())}."
            )
        return self._entries[key]

    def names(self) -> list[str]:
        """Registered names, sorted."""
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._entries
