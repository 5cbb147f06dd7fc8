"""``hera_sessions.lazy``: a deferred package gives every name the package itself gives, imports only what is used,
and survives what package ``__init__``s do (submodules importing names from their own package mid-import)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from hera_sessions.lazy import PACKAGES

#: Prints, for each package of PACKAGES, every public name it offers → what that name is (module.qualname for
#: classes, functions and modules; the type for other values). With DEFER set, each name is asked of a package
#: deferred afresh (it and its submodules dropped from sys.modules first), so every lookup starts from the
#: deferred state: the first name that runs the real __init__ does not hide how the later ones would resolve.
DESCRIBE = """
import json, os, sys, types
names = json.loads(sys.argv[1])
defer = bool(os.environ.get("DEFER"))
from hera_sessions import lazy
import importlib

def describe(value):
    if isinstance(value, types.ModuleType):
        return "module " + value.__name__
    qualname = getattr(value, "__qualname__", None)
    if qualname and getattr(value, "__module__", None):
        return f"{value.__module__}.{qualname}"
    return "value of type " + type(value).__name__

def fresh(package):
    for name in [n for n in sys.modules if n == package or n.startswith(package + ".")]:
        del sys.modules[name]
    assert lazy.defer(package), package
    assert type(sys.modules[package]).__name__ == "_Deferred"
    return sys.modules[package]

out, lazily = {}, {}
for package, wanted in names.items():
    out[package], lazily[package] = {}, 0
    for name in wanted:
        module = fresh(package) if defer else importlib.import_module(package)
        out[package][name] = describe(getattr(module, name))
        lazily[package] += defer and type(module).__name__ == "_Deferred"  # found without the real __init__
print(json.dumps({"names": out, "lazily": lazily}))
"""


def _run(code: str, *args: str, defer: bool, cwd: Path | None = None) -> str:
    env = {"PATH": "/usr/bin:/bin", "DEFER": "1" if defer else ""}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2] / "shared") + (f":{cwd}" if cwd else "")
    done = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_every_name_of_a_deferred_package_is_the_packages_own() -> None:
    # GIVEN every public name each deferred package offers when imported as usual
    listing = (
        "import importlib, json, sys\n"
        "public = {p: [n for n in dir(importlib.import_module(p)) if not n.startswith('_')] for p in sys.argv[1:]}\n"
        "print(json.dumps(public))"
    )
    names = json.loads(_run(listing, *PACKAGES, defer=False))
    assert all(names.values())
    # WHEN each name is asked of the packages imported as usual, and of the deferred ones (in fresh processes)
    usual = json.loads(_run(DESCRIBE, json.dumps(names), defer=False))
    deferred = json.loads(_run(DESCRIBE, json.dumps(names), defer=True))
    # THEN every name is the same object, by module and qualified name
    assert deferred["names"] == usual["names"]
    # and the re-exports of Powertools' and redis-py's packages were found without running their __init__
    for package in PACKAGES:
        if package != "importlib.metadata":  # (its names are its __init__'s own)
            assert deferred["lazily"][package] > 0, package


def test_a_function_imports_only_what_it_uses() -> None:
    code = textwrap.dedent(
        """
        import sys
        from hera_sessions import lazy
        lazy.defer_all()
        from aws_lambda_powertools.event_handler.api_gateway import APIGatewayHttpResolver
        from aws_lambda_powertools.utilities.batch.base import BasePartialBatchProcessor
        from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
        import redis
        print(" ".join(sorted(sys.modules)))
        """
    )
    modules = set(_run(code, defer=False).split())
    # the resolver, the batch processor and the SQS record are there; the other resolvers, the other event
    # sources' data classes and redis-py's asyncio client are not
    assert {"aws_lambda_powertools.event_handler.api_gateway", "redis.client"} <= modules
    assert not modules & {
        "aws_lambda_powertools.event_handler.appsync",
        "aws_lambda_powertools.event_handler.bedrock_agent",
        "aws_lambda_powertools.event_handler.vpc_lattice",
        "aws_lambda_powertools.utilities.data_classes.cognito_user_pool_event",
        "aws_lambda_powertools.utilities.data_classes.api_gateway_authorizer_event",
        "redis.asyncio.client",
    }


@pytest.fixture
def package(tmp_path: Path) -> Path:
    """A package whose ``__init__`` re-exports names, one of which shadows its own submodule's name, and whose
    submodule imports a name from the package while the package is being imported (as Powertools' do)."""
    root = tmp_path / "pkg"
    root.mkdir()
    (root / "__init__.py").write_text(
        "from .a import A\nfrom .b import B, helper\nfrom .helper import helper as helper\n"
        "import sys\nsys.modules[__name__].INITIALIZED = True\n__all__ = ['A', 'B']\n"
    )
    (root / "a.py").write_text("class A: pass\n")
    (root / "b.py").write_text("from pkg import A\nclass B(A): pass\ndef helper(): return 'b'\n")
    (root / "helper.py").write_text("def helper(): return 'helper'\n")
    (root / "other.py").write_text("VALUE = 1\n")
    return tmp_path


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        # a submodule: imported alone, the package's __init__ not run
        ("from pkg import other; print(other.VALUE, 'INITIALIZED' in vars(sys.modules['pkg']))", "1 False"),
        # a re-exported name whose module imports from the package mid-import: no circular-import error
        ("from pkg import B; print(B.__mro__[1].__name__, 'pkg.a' in sys.modules)", "A True"),
        # a re-exported name that shadows a submodule: the name, as the real __init__ binds it
        ("from pkg import helper; print(helper())", "helper"),
        # a name only the real __init__ makes: it runs, once
        ("import pkg; print(pkg.INITIALIZED, pkg.__all__)", "True ['A', 'B']"),
        ("from pkg import *; print(A.__name__, B.__name__)", "A B"),
        # a name nothing defines: AttributeError, as always
        ("import pkg\ntry:\n    pkg.missing\nexcept AttributeError:\n    print('AttributeError')", "AttributeError"),
    ],
)
def test_a_deferred_package_behaves_as_the_package(package: Path, code: str, expected: str) -> None:
    prelude = "import sys\nfrom hera_sessions import lazy\nassert lazy.defer('pkg')\n"
    assert _run(prelude + code, defer=False, cwd=package).strip() == expected


def test_a_package_imported_already_is_left_alone(package: Path) -> None:
    code = "import sys, pkg\nfrom hera_sessions import lazy\nprint(lazy.defer('pkg'), lazy.defer('nothing.here'))"
    assert _run(code, defer=False, cwd=package).strip() == "False False"


@pytest.fixture
def slow_package(tmp_path: Path) -> Path:
    """A package whose ``__init__`` takes a while and binds a name, and one whose ``__init__`` fails once."""
    (tmp_path / "slow").mkdir()
    (tmp_path / "slow" / "__init__.py").write_text("import time\ntime.sleep(0.3)\nVALUE = 42\n")
    (tmp_path / "flaky").mkdir()
    (tmp_path / "flaky" / "__init__.py").write_text(
        "import os\nif not os.path.exists('ok'):\n"
        "    open('ok', 'w').close()\n    raise RuntimeError('first')\n"
        "VALUE = 1\n"
    )
    return tmp_path


def test_threads_asking_while_the_init_runs_wait_for_it(slow_package: Path) -> None:
    code = textwrap.dedent(
        """
        import sys, threading
        from hera_sessions import lazy
        assert lazy.defer("slow")
        got = []
        def ask():
            from slow import VALUE
            got.append(VALUE)
        threads = [threading.Thread(target=ask) for _ in range(4)]
        for t in threads: t.start()
        for t in threads: t.join()
        print(got)
        """
    )
    assert _run(code, defer=False, cwd=slow_package).strip() == "[42, 42, 42, 42]"


def test_an_init_that_fails_is_run_again_on_the_next_use_as_a_failed_import_is(slow_package: Path) -> None:
    code = textwrap.dedent(
        """
        from hera_sessions import lazy
        assert lazy.defer("flaky")
        import flaky
        try:
            flaky.VALUE
        except RuntimeError as exc:
            print("failed:", exc)
        print(flaky.VALUE)
        """
    )
    assert _run(code, defer=False, cwd=slow_package).split("\n")[:2] == ["failed: first", "1"]


def test_probes_of_dunder_names_do_not_run_the_init(package: Path) -> None:
    code = (
        "import sys\nfrom hera_sessions import lazy\nassert lazy.defer('pkg')\nimport pkg\n"
        "print(hasattr(pkg, '__wrapped__'), 'INITIALIZED' in vars(pkg), sorted(pkg.__all__))"
    )
    assert _run(code, defer=False, cwd=package).strip() == "False False ['A', 'B']"
