"""Settings of the searches that schedule trials over a budget or a population: hyperband, pbt."""

from __future__ import annotations

from typing import Annotated

from kubenas.algorithm_settings.common import SeededSettings
from kubenas.algorithm_settings.model import KATIB_NONE, Int, InvalidSettings, Number, setting
from kubenas.trial_dirs import SUGGESTION_TRIAL_DIR, mount_path_problem

__all__ = ["DEFAULT_ETA", "MIN_POPULATION", "PBT_REQUIRED", "HyperbandSettings", "PbtSettings"]

DEFAULT_ETA = 3.0
MIN_POPULATION = 5
# Katib's pbt service refuses to start without these; its UI fills in the values shown.
PBT_REQUIRED: dict[str, str] = {SUGGESTION_TRIAL_DIR: "/var/log/katib/checkpoints/", "n_population": "40",
                                "truncation_threshold": "0.2"}


class HyperbandSettings(SeededSettings):
    """`hyperband`: successive halving in brackets over a budget parameter (Katib's settings).

    The last seven settings are the bracket state Katib's service keeps in the settings and
    returns in every reply; the controller sends them back. Absent or negative: not started.
    """

    resource_name: Annotated[str | None, setting(
        "the parameter that is the budget (e.g. num-epochs); required", pattern=r"^[^\x00-\x1f\x7f]+$",
        allowed="the name of a parameter (the budget, e.g. num-epochs); required")] = None
    # Katib reads eta <= 0 as its default 3.
    eta: Annotated[Number, setting("the halving rate: each rung keeps 1/eta of the trials (0 or less: 3, as in Katib)",
                                   allowed="a number > 1 (the halving rate)")] = DEFAULT_ETA
    r_l: Annotated[Number | None, setting("the largest budget; required", gt=0,
                                          allowed="a positive number (the largest budget); required")] = None
    s_max: Annotated[Int, setting("state: the largest bracket index")] = -1
    b_l: Annotated[Number, setting("state: the budget of one bracket")] = -1.0
    r: Annotated[Number, setting("state: the current rung's budget per trial")] = -1.0
    n: Annotated[Int, setting("state: the current bracket's first-rung size")] = -1
    current_s: Annotated[Int, setting("state: the current bracket")] = -2
    current_i: Annotated[Int, setting("state: the current rung")] = -1
    evaluating_trials: Annotated[Int, setting("state: trials of the current rung handed out", ge=0)] = 0

    def check(self) -> None:
        if 0 < self.eta <= 1:
            raise InvalidSettings("eta", self.eta, "must be a number > 1 (the halving rate)")


class PbtSettings(SeededSettings):
    """`pbt`: population based training (Katib's settings; the first three are required, as in Katib)."""

    suggestion_trial_dir: Annotated[str | None, setting(
        "required: where each trial finds its directory (the suggestion's volume, mounted in the trial; "
        "Katib's UI: /var/log/katib/checkpoints/)",
        allowed="an absolute path below / without '..' or ':' (where each trial finds its directory)")] = None
    n_population: Annotated[Int | None, setting("required: members of the population (Katib's UI: 40)", ge=MIN_POPULATION)] = None
    truncation_threshold: Annotated[Number | None, setting(
        "required: the bottom fraction of the population that copies a top member (Katib's UI: 0.2)",
        ge=0, le=1)] = None
    resample_probability: Annotated[Number | None, setting(
        "chance to redraw a value instead of perturbing it", ge=0, le=1, none=KATIB_NONE,
        note="(absent: perturb each value by x0.8 or x1.2)")] = None

    def check(self) -> None:
        if self.suggestion_trial_dir is not None and mount_path_problem(self.suggestion_trial_dir) is not None:
            raise InvalidSettings(SUGGESTION_TRIAL_DIR, self.suggestion_trial_dir,
                                  "must be an absolute path below / without '..' or ':' "
                                  "(where each trial finds its directory)")
