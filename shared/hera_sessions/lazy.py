"""Packages whose ``__init__`` runs only when it is needed: what a cold start does not import.

A package's ``__init__`` runs before any of its submodules can be imported, and the big libraries' ``__init__``
files import everything they offer:

- ``aws_lambda_powertools/event_handler/__init__`` imports every resolver (AppSync's, Bedrock's, VPC Lattice's…)
  before ``event_handler.api_gateway`` can load;
- ``aws_lambda_powertools/utilities/data_classes/__init__`` imports the data classes of every event source;
- ``redis/__init__`` starts with ``from redis import asyncio``, whose ``__init__`` imports the asyncio client;
- ``redis/utils`` imports ``importlib.metadata`` (and with it zipfile, email, tempfile) to look its own version up.

A function uses one resolver, one event source and redis-py's synchronous client. :func:`defer` registers such a
package, before it is imported, as a module that behaves as the package does but runs its ``__init__`` late:

- its submodules import as usual (the module has the package's ``__path__``);
- a name its ``__init__`` re-exports (``from .api_gateway import APIGatewayHttpResolver``) is found by importing
  just the submodule that defines it (the ``__init__``'s source is read, not run, to know where);
- any other name (``__all__``, a name the ``__init__`` computes) runs the real ``__init__`` once, after which it is
  an ordinary module.

So every name the package offers is the package's own object (``tests/unit/test_lazy.py`` checks each name of the
deferred packages against a fresh import); only what is used gets imported.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import threading
import types
from importlib.machinery import PathFinder

#: The packages the functions defer (see the module's docstring).
PACKAGES = (
    "aws_lambda_powertools.event_handler",
    "aws_lambda_powertools.utilities.data_classes",
    "aws_lambda_powertools.utilities.batch",
    "redis.asyncio",
    # redis.utils imports it for its own version, which the client is given instead (DriverInfo): ~6 ms of
    # zipfile, email, tempfile... that nothing else on a function's path imports
    "importlib.metadata",
)

#: ``compile(..., flags=PyCF_ONLY_AST)``: the syntax tree without importing :mod:`ast`.
_ONLY_AST = 0x400
#: package → {name its ``__init__`` re-exports → the module that defines it}, read on first use.
_REEXPORTS: dict[str, dict[str, str]] = {}


#: Held while a deferred package's real ``__init__`` runs: another thread asking for one of its names waits, as it
#: would on the import lock of a package being imported.
_LOCK = threading.RLock()
#: package → the thread running its real ``__init__`` now (to that thread the package is partly initialized).
_RUNNING: dict[str, int] = {}


class _Deferred(types.ModuleType):
    """A package whose ``__init__`` has not run yet (see the module's docstring)."""

    def __getattr__(self, name: str) -> object:
        if _RUNNING.get(self.__name__) == threading.get_ident() or (name.startswith("__") and name != "__all__"):
            # its own __init__ asking for what it has not bound yet, or a probe (__wrapped__, __warningregistry__):
            # missing, as on any module
            raise AttributeError(f"module {self.__name__!r} has no attribute {name!r}")
        module = _reexports(self).get(name)
        if module is not None:
            value = getattr(importlib.import_module(module), name)
            setattr(self, name, value)
            return value
        submodule = f"{self.__name__}.{name}"
        if importlib.util.find_spec(submodule) is not None:  # `from package import submodule`
            return importlib.import_module(submodule)
        return self._initialize(name)

    def __dir__(self) -> list[str]:
        self._initialize("__name__")
        return dir(self)

    def _initialize(self, name: str) -> object:
        """Run the real ``__init__`` once (the first thread runs it, the others wait), then be an ordinary
        module. An ``__init__`` that fails leaves the package deferred, to be run again, as a failed import is."""
        with _LOCK:
            if type(self) is _Deferred:
                spec = self.__spec__
                assert spec is not None
                assert spec.loader is not None
                _RUNNING[self.__name__] = threading.get_ident()
                try:
                    spec.loader.exec_module(self)
                finally:
                    del _RUNNING[self.__name__]
                object.__setattr__(self, "__class__", types.ModuleType)
        return getattr(self, name)


def defer(name: str) -> bool:
    """Register the package ``name`` (not imported yet) as deferred; False where it is imported already, or not
    there. A parent package already imported, or a top-level one, is left as it is; a deeper one is imported."""
    if name in sys.modules:
        return False
    parent, _, last = name.rpartition(".")
    if parent:
        locations = _locations(parent)
        spec = PathFinder.find_spec(name, locations) if locations is not None else None
    else:
        spec = PathFinder.find_spec(name)
    if spec is None or spec.loader is None or spec.origin is None or spec.submodule_search_locations is None:
        return False
    module = importlib.util.module_from_spec(spec)
    module.__class__ = _Deferred
    sys.modules[name] = module
    if parent in sys.modules:
        setattr(sys.modules[parent], last, module)
    return True


def _locations(package: str) -> list[str] | None:
    """Where ``package``'s submodules are, importing it only where it is neither imported nor top-level
    (``redis`` must not be: its ``__init__`` imports ``redis.asyncio``)."""
    if package in sys.modules:
        return list(getattr(sys.modules[package], "__path__", []))
    if "." not in package:
        spec = PathFinder.find_spec(package)
        return list(spec.submodule_search_locations or []) if spec else None
    try:
        return list(importlib.import_module(package).__path__)
    except (ImportError, AttributeError):
        return None


def defer_all() -> None:
    """Defer every package of :data:`PACKAGES` that is not imported yet (called before the functions import
    Powertools' resolver or batch utilities, or redis-py)."""
    for name in PACKAGES:
        defer(name)


def _reexports(package: types.ModuleType) -> dict[str, str]:
    """name → the module it comes from, for each ``from <module> import <name>`` at the top of the package's
    ``__init__`` (read once, on the first name asked for: a package only ever asked for submodules costs nothing)."""
    known = _REEXPORTS.get(package.__name__)
    if known is not None:
        return known
    origin = package.__spec__.origin if package.__spec__ else None
    exports: dict[str, str] = {}
    if origin:
        with open(origin, encoding="utf-8") as f:
            tree = compile(f.read(), origin, "exec", flags=_ONLY_AST, dont_inherit=True)
        for node in tree.body:
            if type(node).__name__ != "ImportFrom" or node.module is None:
                continue
            if node.level:  # `from .api_gateway import ...` (a relative import inside the package)
                base = package.__name__.rsplit(".", node.level - 1)[0] if node.level > 1 else package.__name__
                module = f"{base}.{node.module}"
            else:
                module = node.module
            if module.startswith(package.__name__ + "."):  # names taken from elsewhere are left to the real __init__
                exports.update((alias.asname or alias.name, module) for alias in node.names if alias.name != "*")
    _REEXPORTS[package.__name__] = exports
    return exports
