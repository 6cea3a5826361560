"""Katib's suggestion-managed trial directories (`suggestion_trial_dir`), one layout for both sides.

An experiment whose algorithm settings name `suggestion_trial_dir` gets one directory per
trial, prepared by the suggestion server before the trial starts (pbt copies the parent's
checkpoint into it) at `<root>/<experiment>/<trial>`, where `<root>` is the suggestion's
volume (`/opt/katib/data` in a pod, `<workdir>/suggestion-state` in `kubenas run`). The
trial sees that directory at the path the setting names: Katib mounts the suggestion's PVC
there with subPath `<experiment>/<trial>`; `kubenas run` rewrites the path in the trial's
command, args and env to the local directory.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path, PurePosixPath

__all__ = ["SUGGESTION_TRIAL_DIR", "mount_path", "mount_path_problem", "trial_dir", "trial_subpath"]

#: Katib's algorithm setting (consts.SuggestionVolumeMountKey): the trial's mount path.
SUGGESTION_TRIAL_DIR = "suggestion_trial_dir"


def mount_path_problem(path: str) -> str | None:
    """Why `path` cannot be a trial's mount path, or None (an absolute path below `/`)."""
    if not path.startswith("/"):
        return "must be an absolute path (it is where the trial sees its directory)"
    parts = PurePosixPath(path).parts
    if len(parts) < 2:
        return "must name a directory below /"
    if ".." in parts or "\0" in path or ":" in path:
        return "must not contain '..', ':' or NUL"
    return None


def mount_path(settings: Mapping[str, str]) -> str | None:
    """The trial's mount path the settings ask for (without a trailing /), or None."""
    value = (settings.get(SUGGESTION_TRIAL_DIR) or "").strip()
    if not value or mount_path_problem(value) is not None:
        return None
    return str(PurePosixPath(value))


def trial_subpath(experiment: str, trial: str) -> str:
    """`<experiment>/<trial>`: the trial's directory relative to the suggestion's volume."""
    for what, name in (("experiment", experiment), ("trial", trial)):
        if not name or "/" in name or "\0" in name or name in (".", ".."):
            raise ValueError(f"{what} name: invalid value {name[:80]!r}: must be a plain name for a directory")
    return f"{experiment}/{trial}"


def trial_dir(root: str | Path, experiment: str, trial: str) -> Path:
    """The trial's directory under the suggestion's volume `root`."""
    return Path(root) / trial_subpath(experiment, trial)
