"""The registry of network architectures (re-exported by :mod:`infocus.nets`).

It lives in its own module so that architecture files can import it while
:mod:`infocus.nets` is still importing them.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from infocus._registry import Registry

__all__ = ["NETWORKS", "NetworkFactory"]

#: Anything that builds a network from keyword arguments: a ``nn.Module`` class or a function.
NetworkFactory = Callable[..., nn.Module]

#: Name -> factory; architectures register with ``@NETWORKS.register("name")``.
NETWORKS: Registry[NetworkFactory] = Registry("network")
