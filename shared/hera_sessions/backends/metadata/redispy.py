"""redis-py without its asyncio client on the import path.

``import redis`` runs ``redis/__init__.py``, whose first line is ``from redis import asyncio``: every process
that only ever uses the synchronous client pays for importing the asyncio one (``redis.asyncio.client``,
``.cluster``, ``.connection``, ``.sentinel``...; about a tenth of redis-py's import time).
:func:`defer_asyncio`, called before ``import redis``, registers ``redis.asyncio`` as a package whose
``__init__`` runs only when one of its names is first used: its submodules stay importable
(``redis.commands.core`` imports ``redis.asyncio.observability.recorder``), and ``redis.asyncio.Redis`` still
works, after a one-time import. Nothing changes when redis-py is already imported.
"""

from __future__ import annotations

import importlib.util
import sys
import types
from importlib.machinery import PathFinder

ASYNC_PACKAGE = "redis.asyncio"


class _Deferred(types.ModuleType):
    """A package whose ``__init__`` has not run yet: the first missing attribute runs it."""

    def __getattr__(self, name: str) -> object:
        spec = self.__spec__
        object.__setattr__(self, "__class__", types.ModuleType)  # an ordinary module from here on (no recursion)
        assert spec is not None
        assert spec.loader is not None
        spec.loader.exec_module(self)
        return getattr(self, name)


def defer_asyncio() -> None:
    """Make the coming ``import redis`` leave ``redis.asyncio``'s own ``__init__`` to its first use."""
    if "redis" not in sys.modules and ASYNC_PACKAGE not in sys.modules:
        _defer(ASYNC_PACKAGE)


def _defer(name: str) -> None:
    parent = importlib.util.find_spec(name.rpartition(".")[0])  # a top-level name: found, not imported
    if parent is None or parent.submodule_search_locations is None:
        return
    spec = PathFinder.find_spec(name, list(parent.submodule_search_locations))
    if spec is None or spec.loader is None:
        return
    module = importlib.util.module_from_spec(spec)
    module.__class__ = _Deferred
    sys.modules[name] = module
