"""The one error shape (field, value, allowed): every error class that has it shares one base."""

from __future__ import annotations

import pickle

import pytest

from controller.kube.config import ConfigError as KatibConfigError
from controller.store import InvalidLogError
from kubenas.early_stopping import RuleError
from kubenas.errors import InvalidValue
from kubenas.genotype import GenotypeError
from kubenas.space import SpaceError
from suggestion.algorithms.base import InvalidSettings
from trainer.darts.settings import ConfigError as DartsConfigError
from trainer.data import DatasetError
from trainer.enas.model import ArchitectureError
from trainer.enas_search.settings import ConfigError as OneshotConfigError
from trainer.ops import OpError
from trainer.train import TrainError

SHAPED = [SpaceError, RuleError, GenotypeError, InvalidSettings, KatibConfigError, InvalidLogError, DartsConfigError,
          DatasetError, ArchitectureError, OneshotConfigError, OpError, TrainError]


@pytest.mark.parametrize("cls", SHAPED, ids=lambda c: f"{c.__module__}.{c.__name__}")
def test_each_shaped_error_names_field_value_and_allowed(cls: type[InvalidValue]) -> None:
    err = cls("spec.x[0]", "bad", "must be good")
    assert isinstance(err, InvalidValue) and isinstance(err, ValueError)
    assert (err.field, err.value, err.allowed) == ("spec.x[0]", "bad", "must be good")
    assert str(err).endswith("spec.x[0]: invalid value 'bad': must be good")
    again = pickle.loads(pickle.dumps(err))  # crosses process boundaries (multiprocessing, futures)
    assert type(again) is cls and str(again) == str(err) and again.field == err.field


def test_a_huge_value_is_shortened_in_every_message() -> None:
    for cls in SHAPED:
        text = str(cls("f", "x" * 1_000_000, "short"))
        assert len(text) < 1000 and "more characters" in text, cls


def test_where_names_the_input_of_a_field() -> None:
    assert str(KatibConfigError("runtime.suggestions", "enas", "no image")) == (
        "katib-config runtime.suggestions: invalid value 'enas': no image")
    assert InvalidSettings("num_layers", 0, "must be >= 1").setting == "num_layers"
