"""No command calls another command's typer function: what commands share is a plain function
with plain defaults (issue 20: ``demo`` called ``simulate``'s typer function, left out its
newest option, and sent typer's ``OptionInfo`` as ``persona_model``)."""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import typer
from typer.models import ParameterInfo

import prefshift
from prefshift.cli import simulate
from prefshift.cli.main import app

SOURCE = Path(prefshift.__file__).resolve().parent


def _callbacks(group: typer.Typer) -> Iterator[Callable[..., Any]]:
    for command in group.registered_commands:
        assert command.callback is not None
        yield command.callback
    for subgroup in group.registered_groups:
        assert subgroup.typer_instance is not None
        yield from _callbacks(subgroup.typer_instance)


def _command_functions() -> set[tuple[str, str]]:
    """(module, name) of every function typer runs as a command."""
    callbacks = list(_callbacks(app))
    assert len(callbacks) >= 20, [c.__qualname__ for c in callbacks]
    return {(c.__module__, c.__qualname__) for c in callbacks}


def _modules() -> Iterator[tuple[str, ast.Module]]:
    for path in sorted(SOURCE.rglob("*.py")):
        parts = path.relative_to(SOURCE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        yield name, ast.parse(path.read_text(), filename=str(path))


def _imported_names(module: str, tree: ast.Module) -> dict[str, str]:
    """Local name → what it refers to (``package.module`` or ``package.module.function``)."""
    names: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            base = node.module
            if node.level:
                base = ".".join([*module.split(".")[: -node.level], node.module])
            for alias in node.names:
                names[alias.asname or alias.name] = f"{base}.{alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                names[alias.asname or alias.name.split(".")[0]] = alias.name
    return names


def _called(module: str, tree: ast.Module) -> Iterator[tuple[str, int]]:
    """Every call in the module as the dotted name it resolves to, with its line."""
    imported = _imported_names(module, tree)
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        function = node.func
        if isinstance(function, ast.Name):
            yield imported.get(function.id, f"{module}.{function.id}"), node.lineno
        elif isinstance(function, ast.Attribute) and isinstance(function.value, ast.Name):
            owner = imported.get(function.value.id, function.value.id)
            yield f"{owner}.{function.attr}", node.lineno


def test_no_command_calls_another_commands_typer_function() -> None:
    commands = {f"{module}.{name}" for module, name in _command_functions()}
    calls = [
        f"{module}:{line} calls {called}"
        for module, tree in _modules()
        for called, line in _called(module, tree)
        if called in commands
    ]
    assert calls == [], "call the plain function both commands share instead"


def test_no_plain_function_has_a_typer_default() -> None:
    """A typer ``Option``/``Argument`` default never leaves its command: a function that is not
    a command and has one would pass ``OptionInfo`` on when called without that argument."""
    commands = _command_functions()
    offending = []
    for info in pkgutil.walk_packages(prefshift.__path__, "prefshift."):
        module = importlib.import_module(info.name)
        for name, function in inspect.getmembers(module, inspect.isfunction):
            if function.__module__ != info.name or (info.name, name) in commands:
                continue
            for parameter in inspect.signature(function).parameters.values():
                if isinstance(parameter.default, ParameterInfo):
                    offending.append(f"{info.name}.{name}({parameter.name})")
    assert offending == []


#: Options of ``simulate`` named otherwise in ``run_simulation`` (one --arm, repeated → arms).
RENAMED = {"arm": "arms"}


def test_every_option_of_simulate_reaches_run_simulation_with_a_plain_default() -> None:
    """``demo`` calls ``run_simulation``: an option added to ``simulate`` must be a parameter of
    ``run_simulation`` with a plain default (so ``demo`` keeps working without naming it)."""
    command = inspect.signature(simulate.simulate).parameters
    shared = inspect.signature(simulate.run_simulation).parameters
    for name, parameter in command.items():
        target = shared.get(RENAMED.get(name, name))
        assert target is not None, f"simulate's {name!r} is not a parameter of run_simulation"
        if parameter.default is inspect.Parameter.empty or (
            isinstance(parameter.default, ParameterInfo) and parameter.default.default is ...
        ):
            continue  # a required argument (the user id): the caller names it
        assert target.default is not inspect.Parameter.empty, name
        assert not isinstance(target.default, ParameterInfo), name
        assert target.default == parameter.default.default, (
            f"{name}: run_simulation's default {target.default!r} is not simulate's "
            f"{parameter.default.default!r}"
        )
    assert set(shared) - {RENAMED.get(n, n) for n in command} == set(), (
        "run_simulation has a parameter simulate does not offer"
    )
