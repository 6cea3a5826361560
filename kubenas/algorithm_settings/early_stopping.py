"""Settings of the early-stopping rules (`medianstop`)."""

from __future__ import annotations

from typing import Annotated

from kubenas.algorithm_settings.model import AlgorithmSettings, Int, setting

__all__ = ["MedianStopSettings"]


class MedianStopSettings(AlgorithmSettings):
    """`medianstop`: Katib's median stopping rule."""

    min_trials_required: Annotated[Int, setting("succeeded trials before any trial is stopped", ge=1)] = 3
    start_step: Annotated[Int, setting(
        "reports averaged per trial, and the first report the rule is checked at", ge=1)] = 4
