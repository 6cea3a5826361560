"""mkdocs hook: pages generated from the code, so they cannot drift from it.

- reference/cli.md from the typer application (every command, option and default);
- reference/settings.md from each registered algorithm's settings model (kubenas/algorithm_settings);
- on any page, `<!-- settings: NAME -->` becomes algorithm NAME's settings table.
"""

from __future__ import annotations

import inspect
import re
import sys
from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parent.parent


def _cli_page() -> str:
    import click
    import typer.main
    from typer.cli import get_docs_for_click

    from kubenas_cli.app import app

    command = typer.main.get_command(app)
    ctx = click.Context(command, info_name="kubenas")
    body = get_docs_for_click(obj=command, ctx=ctx, name="kubenas", title="CLI reference")
    return body + "\n\n`kubenas-train` (the trainer programs) is described under [Trainers](../trainers.md).\n"


def _cell(value: object) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def _summary(model: Any) -> str:
    """The first paragraph of the model's docstring, on one line."""
    return " ".join(inspect.cleandoc(model.__doc__ or "").split("\n\n")[0].split())


def _settings_table(model: Any) -> list[str]:
    from kubenas.algorithm_settings import allowed_text

    rows = ["| setting | default | allowed | meaning |", "| --- | --- | --- | --- |"]
    for name, info in model.model_fields.items():
        default = f"{info.default:g}" if isinstance(info.default, float) else info.default
        rows.append(f"| `{name}` | `{_cell(default)}` | {_cell(allowed_text(info))} | {_cell(info.description or '')} |")
    return rows


def _settings_page() -> str:
    from suggestion.algorithms.registry import ALGORITHMS, algorithm_class
    from suggestion.early_stopping.registry import EARLY_STOPPING, early_stopping_class

    out = ["# Algorithm settings", "",
           "Generated from each algorithm's settings model (`kubenas/algorithm_settings/`): the names, "
           "defaults and allowed values `ValidateAlgorithmSettings`, `kubenas validate` and the trainers "
           "(`kubenas-train darts`, `enas-search`) enforce. `None` in the default column means the setting "
           "is off unless given; `or \"None\"` means Katib's `\"None\"` turns it off.", ""]
    for name in sorted(ALGORITHMS):
        model = algorithm_class(name).settings_model
        out += [f"## `{name}`", "", _summary(model), "", *_settings_table(model), ""]
    for name in sorted(EARLY_STOPPING):
        model = early_stopping_class(name).settings_model
        out += [f"## Early stopping: `{name}`", "", _summary(model), "", *_settings_table(model), ""]
    return "\n".join(out)


_SETTINGS_MARK = re.compile(r"<!-- settings: ([a-z0-9-]+) -->")


def on_page_markdown(markdown: str, page: Any, config: Any, files: Files) -> str:
    from suggestion.algorithms.registry import algorithm_class

    return _SETTINGS_MARK.sub(lambda m: "\n".join(_settings_table(algorithm_class(m[1]).settings_model)), markdown)


def on_files(files: Files, config: Any) -> Files:
    sys.path.insert(0, str(ROOT))
    for path, content in (("reference/cli.md", _cli_page()), ("reference/settings.md", _settings_page())):
        files.append(File.generated(config, path, content=content))
    return files
