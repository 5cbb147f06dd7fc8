"""The README's reference tables hold what the code has: every error code it can answer, every command it has.

The error codes are read from the layer's source (no import, no request): a code is a constant given to a
``HeraError`` subclass or to the local server's ``json_error``, a class's ``default_code``, or a literal
``{"code": ...}`` answer. A code the reader cannot work out fails the test, so a new way of writing one is seen.
"""

from __future__ import annotations

import ast
import contextlib
import functools
import io
import re
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest

from hera_sessions import cli
from tests.markdown import README, ROOT, section, table

LAYER = ROOT / "shared" / "hera_sessions"
#: Commands being built on other branches this hour: listed in the README before cli.py has them.
#: Remove each name once its branch is merged (the test then holds its README line to its --help).
PENDING_COMMANDS = {"doctor", "inspect", "cost"}

Statuses = dict[str, set[int | None]]


def _modules() -> dict[Path, ast.Module]:
    return {path: ast.parse(path.read_text(), str(path)) for path in sorted(LAYER.rglob("*.py"))}


def _name(node: ast.expr) -> str | None:
    return node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else None


def _error_classes(modules: dict[Path, ast.Module]) -> dict[str, tuple[str, int | None]]:
    """Every ``HeraError`` subclass of the layer by name: its code and status, its own or inherited."""
    own: dict[str, tuple[list[str], dict[str, object]]] = {}
    for tree in modules.values():
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                attrs = {
                    target.id: stmt.value.value
                    for stmt in node.body
                    if isinstance(stmt, (ast.Assign, ast.AnnAssign)) and isinstance(stmt.value, ast.Constant)
                    for target in (stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target])
                    if isinstance(target, ast.Name)
                }
                own[node.name] = ([n for n in map(_name, node.bases) if n], attrs)
    root = own["HeraError"][1]
    classes: dict[str, tuple[str, int | None]] = {"HeraError": (str(root["default_code"]), int(str(root["status"])))}
    while True:
        found = {
            name: (str(attrs.get("default_code", classes[base][0])), int(str(attrs.get("status", classes[base][1]))))
            for name, (bases, attrs) in own.items()
            if name not in classes
            for base in bases[:1]
            if base in classes
        }
        if not found:
            return classes
        classes |= found


def _enclosing_function(tree: ast.Module, node: ast.AST) -> ast.FunctionDef:
    functions = [f for f in ast.walk(tree) if isinstance(f, ast.FunctionDef) and node in ast.walk(f)]
    assert functions, f"line {getattr(node, 'lineno', '?')}: a computed code outside a function"
    return min(functions, key=lambda f: len(list(ast.walk(f))))


def _strings(tree: ast.Module, node: ast.expr, where: str) -> Iterator[str]:
    """The codes ``node`` can be: a constant; an f-string over a parameter, filled from the module's calls; a name,
    from the constants of the last assignment to it before ``node`` in its function."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        yield node.value
        return
    function = _enclosing_function(tree, node)
    if isinstance(node, ast.JoinedStr):
        (hole,) = [v for v in node.values if isinstance(v, ast.FormattedValue)]
        assert isinstance(hole.value, ast.Name), where
        index = [a.arg for a in function.args.args].index(hole.value.id)
        pattern = "".join(v.value if isinstance(v, ast.Constant) else "{}" for v in node.values)
        calls = [c for c in ast.walk(tree) if isinstance(c, ast.Call) and _name(c.func) == function.name]
        assert calls, where
        for call in calls:
            argument = call.args[index]
            assert isinstance(argument, ast.Constant), where
            yield pattern.format(argument.value)
        return
    if isinstance(node, ast.Name):
        assigned = [
            stmt
            for stmt in ast.walk(function)
            if isinstance(stmt, ast.Assign)
            and stmt.lineno < node.lineno
            and any(_name(t) == node.id for t in stmt.targets)
        ]
        assert assigned, f"{where}: cannot tell which codes {node.id} holds"
        last = max(assigned, key=lambda stmt: stmt.lineno)
        for constant in ast.walk(last.value):
            if isinstance(constant, ast.Constant) and isinstance(constant.value, str):
                yield constant.value
        return
    raise AssertionError(f"{where}: cannot tell which code {ast.unparse(node)} is")


@functools.cache
def emitted_codes() -> Statuses:
    """Every error code the layer can answer or raise, with the HTTP statuses it goes with (None: not known here)."""
    modules = _modules()
    classes = _error_classes(modules)
    codes: Statuses = defaultdict(set)
    for code, status in classes.values():
        codes[code].add(status)  # each family's fallback, raised or not
    for path, tree in modules.items():
        for node in ast.walk(tree):
            where = f"{path.relative_to(ROOT)}:{getattr(node, 'lineno', '?')}"
            if isinstance(node, ast.Call) and (callee := _name(node.func)) in classes:
                given = [k.value for k in node.keywords if k.arg == "code"] or node.args[1:2]
                status = classes[callee][1]
                for code in _strings(tree, given[0], where) if given else [classes[callee][0]]:
                    codes[code].add(status)
            elif isinstance(node, ast.Call) and _name(node.func) == "json_error":
                status_node = node.args[0]
                status = status_node.value if isinstance(status_node, ast.Constant) else None
                for code in _strings(tree, node.args[1], where):
                    codes[code].add(status)
            elif isinstance(node, ast.Dict):
                for key, value in zip(node.keys, node.values, strict=True):
                    if isinstance(key, ast.Constant) and key.value == "code" and isinstance(value, ast.Constant):
                        codes[value.value].add(None)
            elif isinstance(node, ast.Assign) and any(_name(t) == "json_code" for t in node.targets):
                codes.update({code: codes[code] | {None} for code in _strings(tree, node.value, where)})
    return dict(codes)


def readme_errors() -> dict[str, str]:
    rows = table(section(README.read_text(), "Errors"), "| code | status | when |")
    return {code.strip("`"): status for code, status, _ in rows}


def test_the_error_reader_finds_the_codes_it_should() -> None:
    # GIVEN the layer's source WHEN its codes are read THEN codes of each kind of site are among them
    codes = emitted_codes()
    assert codes["route_not_found"] == {404}  # NotFoundError(..., "route_not_found") and json_error(404, ...)
    assert 400 in codes["invalid_part_number"]  # f"invalid_{name}", filled in from _int's callers
    assert "headers_too_large" in codes  # a local refusal, from error_answer's table
    assert "incomplete_body" in codes  # a json_code class attribute
    assert codes["internal_error"] >= {500, None}  # HeraError's default and the literal answers


def test_the_readme_error_table_lists_every_code_the_code_can_produce_and_no_other() -> None:
    listed, emitted = readme_errors(), emitted_codes()
    assert sorted(set(emitted) - set(listed)) == [], "codes the README's error table is missing"
    assert sorted(set(listed) - set(emitted)) == [], "codes in the README's error table that nothing produces"


def test_the_readme_error_table_gives_each_code_its_status() -> None:
    emitted = emitted_codes()
    for code, status in readme_errors().items():
        known = {s for s in emitted.get(code, set()) if s is not None}
        if status != "—" and known:
            assert int(status) in known, f"{code}: the README says {status}, the code {sorted(known)}"


def _help(args: list[str]) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
        cli.main([*args, "--help"])
    return out.getvalue()


def parser_commands() -> dict[str, str]:
    """Each ``hera-sessions`` subcommand and its usage line, from argparse's own ``--help``."""
    top = _help([])
    found = re.search(r"\{([\w,-]+)\}", top)
    assert found, top
    return {name: _help([name]).split("\n\n", 1)[0] for name in found.group(1).split(",")}


def words(synopsis: str) -> tuple[set[str], set[str]]:
    """A synopsis's options (``--json``) and its other words (command, choices, argument names), lower case."""
    options = set(re.findall(r"--[a-z][a-z-]*", synopsis))
    rest = re.sub(r"\[--[^\]]*\]|\[-h\]|^usage:|hera-sessions", " ", synopsis.replace("\n", " "))
    return options, {w.lower() for w in re.findall(r"[A-Za-z_]+", rest)}


def readme_commands() -> dict[str, str]:
    rows = table(section(README.read_text(), "The `hera-sessions` command"), "| command | what it does |")
    commands = {}
    for cell, _ in rows:
        synopsis = cell.strip("`")
        assert synopsis.startswith("hera-sessions "), synopsis
        commands[synopsis.split()[1]] = synopsis
    return commands


def test_the_readme_lists_every_command_with_its_arguments(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")  # one usage line each
    listed, parsed = readme_commands(), parser_commands()
    assert sorted(set(parsed) - set(listed)) == [], "commands the README does not list"
    assert sorted(set(listed) - set(parsed) - PENDING_COMMANDS) == [], "commands in the README that do not exist"
    for name, usage in parsed.items():
        assert words(listed[name]) == words(usage), f"the README's {listed[name]!r} is not {usage!r}"
