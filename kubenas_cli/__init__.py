"""The `kubenas` command line: the top layer, over the runtimes (suggestion, controller,
trainer) and the core (`kubenas`). Nothing imports it but the entry points."""

from __future__ import annotations

__all__: list[str] = []
