"""Settings files: TOML files whose keys are run options (`drol-diag run --config`, `drol-diag sweep --from`),
keyed by the option's flag without the dashes (`k = 4`, `batch-size = 64` or `batch_size = 64`), read as the
command line's text is (options.read_value); the command line overrides the file.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from drol_diag.settings.options import OPTIONS, RUN_OPTIONS, read_value

# {key of a run settings file: option name}: each option's flag without "--" (k for num_candidates) and its name.
RUN_FILE_KEYS: dict[str, str] = {
    **{name: name for name in RUN_OPTIONS},
    **{option.cli_flag[2:].replace("-", "_"): name for name, option in RUN_OPTIONS.items()},
}


def read_toml(path: Path, what: str) -> dict[str, Any]:
    """The table of the TOML file `path` (`what`: "sweep file", ...). Raises ValueError (one line) if unreadable."""
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except OSError as error:
        raise ValueError(f"cannot read {what} {path}: {error.strerror or error}") from None
    except tomllib.TOMLDecodeError as error:
        raise ValueError(f"{what} {path} is not valid TOML: {error}") from None


def read_run_file(path: Path) -> dict[str, Any]:
    """The settings of a `drol-diag run --config` file as {option name: value}. Raises ValueError (one line,
    naming the file and the key) for an unknown key, an option given twice, or a value of the wrong kind."""
    values: dict[str, Any] = {}
    for key, value in read_toml(path, "settings file").items():
        name = RUN_FILE_KEYS.get(key.replace("-", "_"))
        if name is None:
            valid = ", ".join(option.cli_flag[2:] for option in RUN_OPTIONS.values())
            raise ValueError(f"unknown setting {key!r} in settings file {path}; valid: {valid}")
        if name in values:
            raise ValueError(f"settings file {path} sets {OPTIONS[name].cli_flag[2:]} twice ({key!r} and another "
                             "spelling); keep one")
        try:
            values[name] = read_value(OPTIONS[name], value)
        except ValueError as error:
            raise ValueError(f"settings file {path}: {error}") from None
    return values
