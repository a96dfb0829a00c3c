"""Typer options made from the declaration of every run setting (drol_diag.settings.options.OPTIONS)."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, Optional

import typer

from drol_diag.settings.options import OPTIONS, RUN_OPTIONS, Option

PYTHON_TYPES = {"int": int, "float": float, "str": str, "bool": bool, "widths": str, "seeds": str, "devices": str,
                "names": str}


def _parameter(option: Option, for_sweep: bool) -> inspect.Parameter:
    """The typer parameter of one option; every default is None (not given), shown in the help text."""
    if for_sweep and option.grid:
        flag, kind = "--" + option.grid, str
        help_text = f"comma-separated: {option.help} (default: {option.shown_default})"
        name = option.grid
    else:
        flag, kind, name = option.cli_flag, PYTHON_TYPES[option.kind], option.name
        help_text = f"{option.help} (default: {option.shown_default})"
    declarations = [f"{flag}/--no-{flag[2:]}"] if kind is bool else [flag]
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=Optional[kind],
                             default=typer.Option(None, *declarations, help=help_text))


def declared_options(for_sweep: bool = False) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorate `f(settings: dict, **own)`: the command gets a typer option per declared setting (for `sweep`,
    the grid axes take lists) beside its own, and receives the declared ones as {name: value or None}."""
    options = [option for option in (OPTIONS if for_sweep else RUN_OPTIONS).values()  # (executor settings: sweep only)
               if option.sweep or not for_sweep]  # (the sweep sets grid_settings itself, from --grid)
    names = {(option.grid if for_sweep and option.grid else option.name) for option in options}

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        own = [p for name, p in inspect.signature(command, eval_str=True).parameters.items() if name != "settings"]

        def wrapper(**values: Any) -> Any:
            settings = {name: values.pop(name) for name in names}
            return command(settings, **values)

        wrapper.__name__, wrapper.__doc__ = command.__name__, command.__doc__
        declared = [_parameter(option, for_sweep) for option in options]
        wrapper.__signature__ = inspect.Signature(declared + [p.replace(kind=inspect.Parameter.KEYWORD_ONLY)
                                                               for p in own])
        return wrapper
    return decorate
