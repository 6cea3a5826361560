"""Settings of the model-based searches: bayesian, bayesianoptimization, tpe, multivariate-tpe, cmaes."""

from __future__ import annotations

from typing import Annotated, Literal, get_args

from kubenas.algorithm_settings.common import EncodedSearchSettings, SeededSettings
from kubenas.algorithm_settings.model import Int, InvalidSettings, Number, setting

__all__ = ["ACQ_FUNCS", "ESTIMATORS", "BayesianSettings", "CmaEsSettings", "KatibBayesianSettings",
           "MultivariateTpeSettings", "TpeSettings"]

Estimator = Literal["GP", "RF", "ET", "GBRT"]
AcqFunc = Literal["gp_hedge", "LCB", "EI", "PI"]
AcqOptimizer = Literal["auto", "sampling", "lbfgs"]
RestartStrategy = Literal["ipop", "bipop"]
ESTIMATORS: tuple[str, ...] = get_args(Estimator)
ACQ_FUNCS: tuple[str, ...] = get_args(AcqFunc)

_BaseEstimator = Annotated[Estimator, setting(
    "the surrogate: GP (Gaussian process, Matérn 5/2), RF (random forest), ET (extra trees), "
    "GBRT (quantile gradient boosting)")]
_AcqFunc = Annotated[AcqFunc, setting(
    "the acquisition function; gp_hedge picks among EI, PI and LCB by their past gains",
    note="EIps and PIps need trial run times: not supported")]
_AcqOptimizer = Annotated[AcqOptimizer, setting(
    "how the acquisition is maximised: sampled candidates, then (lbfgs, or auto with GP) "
    "L-BFGS-B along the continuous parameters; lbfgs only with base_estimator GP")]


class BayesianSettings(EncodedSearchSettings):
    """`bayesian`: GP + expected improvement over sampled candidates; scikit-optimize's
    gp_minimize defaults otherwise (10 random points first, xi 0.01)."""

    base_estimator: _BaseEstimator = "GP"
    n_initial_points: Annotated[Int, setting(
        "random points until this many trials have a value", ge=1, le=100_000)] = 10
    acq_func: _AcqFunc = "EI"
    acq_optimizer: _AcqOptimizer = "sampling"
    # Each candidate costs a model prediction per proposal; 10,000 already takes seconds.
    acq_candidates: Annotated[Int, setting(
        "unseen candidates scored per call (half random, half mutations of the best)", ge=1, le=10_000)] = 1000
    xi: Annotated[Number, setting("exploration margin of EI and PI", ge=0, le=10)] = 0.01

    def check(self) -> None:
        if self.acq_optimizer == "lbfgs" and self.base_estimator != "GP":
            # As scikit-optimize: tree models have no gradient to follow.
            raise InvalidSettings("acq_optimizer", "lbfgs",
                                  f'"lbfgs" needs base_estimator "GP" (it is {self.base_estimator!r}); '
                                  'use "sampling" or "auto"')


class KatibBayesianSettings(BayesianSettings):
    """`bayesianoptimization`: Katib's skopt service's defaults (n_initial_points may be 0)."""

    n_initial_points: Annotated[Int, setting(
        "random points until this many trials have a value (at least one)", ge=0, le=100_000)] = 10
    acq_func: _AcqFunc = "gp_hedge"
    acq_optimizer: _AcqOptimizer = "auto"


class MultivariateTpeSettings(EncodedSearchSettings):
    """`multivariate-tpe`: Optuna's TPESampler, always multivariate; Optuna's defaults."""

    n_startup_trials: Annotated[Int, setting(
        "random points until this many trials are completed", ge=0, le=100_000)] = 10
    n_ei_candidates: Annotated[Int, setting(
        "candidates drawn to pick the one of best expected improvement", ge=1, le=10_000)] = 24


class TpeSettings(MultivariateTpeSettings):
    """`tpe`: Optuna's TPESampler (multivariate unless turned off)."""

    multivariate: Annotated[Literal["true", "false"], setting(
        "model the parameters jointly (Optuna's multivariate TPE)", allowed='"true" or "false"')] = "true"


class CmaEsSettings(SeededSettings):
    """`cmaes`: CMA-ES on the int and double parameters (HPO only)."""

    # In units of each parameter's range (the cube's side); 1/6 is Optuna's and goptuna's
    # default (a third of the range within two sigma of the centre).
    sigma: Annotated[Number, setting(
        "the initial step, as a fraction of each parameter's range (Katib's goptuna takes it in raw "
        "units; with mixed ranges that is not one number)", gt=0, le=1, note="a fraction of each range")] = 1 / 6
    # Katib accepts "none" as well as "None".
    restart_strategy: Annotated[RestartStrategy | None, setting(
        "restarts when the library's stopping tests fire (None: none); ipop: restart with twice the "
        "population; bipop: alternate large-population restarts and short small-population ones, "
        "whichever has used fewer trials",
        none=("None", "none"), allowed='one of "ipop", "bipop"')] = None

