"""mkdocs hook: pages generated from the code, so they cannot drift from it.

- reference/cli.md from the typer application (every command, option and default);
- reference/settings.md from each registered algorithm's setting declarations.
"""

from __future__ import annotations

import importlib
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


def _settings_page() -> str:
    from suggestion.algorithms.registry import ALGORITHMS, algorithm_class

    out = ["# Algorithm settings", "",
           "Generated from each algorithm's setting declarations (`SETTINGS` in its module): the names, "
           "defaults and allowed values `ValidateAlgorithmSettings` and `kubenas validate` enforce. "
           "`None` in the default column means the setting is off unless given.", ""]
    for name in sorted(ALGORITHMS):
        cls = algorithm_class(name)
        module = importlib.import_module(cls.__module__)
        specs = getattr(cls, "settings_spec", None) or getattr(module, "SETTINGS", None)
        if specs is None:
            settings_module = importlib.import_module(cls.__module__.rsplit(".", 1)[0] + ".settings")
            specs = settings_module.SETTINGS
        out += [f"## `{name}`", "", "| setting | default | allowed |", "| --- | --- | --- |"]
        required = getattr(module, "REQUIRED", {})  # settings without a default (pbt's, as Katib's)
        out += [f"| `{s.name}` | {'required' if s.name in required else f'`{_cell(s.default)}`'} | "
                f"{_cell(s.allowed) or 'any'} |" for s in specs]
        out.append("")
    return "\n".join(out)


def on_files(files: Files, config: Any) -> Files:
    sys.path.insert(0, str(ROOT))
    for path, content in (("reference/cli.md", _cli_page()), ("reference/settings.md", _settings_page())):
        files.append(File.generated(config, path, content=content))
    return files
