"""ENAS search_mode nb201: the per-edge LSTM controller, its learning, saved state and codec."""

from __future__ import annotations

import itertools
import random
from collections import Counter

import pytest
import torch

from kubenas.enas_controller.policy import Nb201Controller
from kubenas.nb201 import NB201_PRIMITIVES, Cell201
from kubenas.space import SearchSpace
from kubenas.trials import Objective, ObjectiveType, TrialCondition, TrialRecord
from suggestion.algorithms.base import InvalidSettings, Problem
from suggestion.algorithms.enas import Enas
from suggestion.state import DirectoryStateStore, MemoryStateStore
from tests.suggestion.contract import nb201_nas

METRIC = "Validation-Accuracy"
MAXIMIZE = Objective(ObjectiveType.MAXIMIZE, METRIC)
SPACE = SearchSpace(nas_config=nb201_nas())
NB201 = {"search_mode": "nb201"}
SMALL = {**NB201, "controller_learning_rate": "0.01", "controller_train_steps": "20"}


def controller(temperature: float | None = 5.0, tanh: float | None = 2.25, seed: int = 0) -> Nb201Controller:
    return Nb201Controller(6, 5, 16, temperature, tanh, torch.Generator().manual_seed(seed))


def test_rescoring_reproduces_the_sampling_distribution() -> None:
    ctrl = controller()
    with torch.no_grad():
        sampled = ctrl(64, generator=torch.Generator().manual_seed(3))
        scored = ctrl.scorer(sampled.decisions)()
    torch.testing.assert_close(scored.log_prob, sampled.log_prob)
    torch.testing.assert_close(scored.entropy, sampled.entropy)
    d = sampled.decisions
    assert d.shape == (64, 6) and ((d >= 0) & (d < 5)).all()
    assert (sampled.log_prob < 0).all() and (sampled.entropy > 0).all()
    assert (sampled.skip_penalty == 0).all()


def test_probabilities_of_every_cell_sum_to_one() -> None:
    ctrl = controller(temperature=None, tanh=None)
    every = torch.tensor(list(itertools.product(range(5), repeat=6)), dtype=torch.long)
    with torch.no_grad():
        total = ctrl.scorer(every)().log_prob.exp().sum()
    assert total.item() == pytest.approx(1.0, abs=1e-4)


def test_gradients_reach_the_lstm_embeddings_and_softmax() -> None:
    ctrl = controller()
    roll = ctrl(8, generator=torch.Generator().manual_seed(1))
    ctrl.scorer(roll.decisions)().log_prob.sum().backward()
    for name in ("lstm.weight_ih", "lstm.weight_hh", "g_emb", "w_emb.weight", "w_soft.weight"):
        grad = dict(ctrl.named_parameters())[name].grad
        assert grad is not None and grad.abs().sum() > 0, name


def problem(settings: dict[str, str], name: str = "nb201-exp") -> Problem:
    return Problem(name, SPACE, MAXIMIZE, settings)


def ops_of(assignments: dict[str, str]) -> list[str]:
    return list(Cell201.from_string(assignments["architecture"]).ops)


def conv3_share(samples: list[dict[str, str]]) -> float:
    picks = [op for a in samples for op in ops_of(a)]
    return sum(op == "nor_conv_3x3" for op in picks) / len(picks)


def search(settings: dict[str, str], reward: object, rounds: int = 8, per_round: int = 4) -> list[dict[str, str]]:
    algo = Enas()
    p = problem(settings)
    history: list[TrialRecord] = []
    for r in range(rounds):
        for i, s in enumerate(algo.suggest(p, history, per_round)):
            value = reward(dict(s.assignments))  # type: ignore[operator]
            history.append(TrialRecord(f"r{r}-{i}", dict(s.assignments), TrialCondition.SUCCEEDED, {METRIC: value}))
    return [dict(s.assignments) for s in algo.suggest(p, history, 200)]


def test_a_reward_favouring_one_op_moves_sampling_towards_it() -> None:
    shares = []
    for seed in (1, 2, 3):
        samples = search({**SMALL, "random_state": str(seed)}, lambda a: conv3_share([a]))
        shares.append(conv3_share(samples))
    # Uniform is 1/5 per edge; after 32 trials every seed samples nor_conv_3x3 far more often.
    assert min(shares) > 0.4 and sum(shares) / 3 > 0.5, shares


def test_an_uninformative_reward_stays_near_uniform_on_average() -> None:
    # Noise still moves a single run's policy (six decisions collapse fast at this learning
    # rate), but in no preferred direction: the mean share over seeds stays near 1/5.
    noise = random.Random(0)
    shares = [conv3_share(search({**SMALL, "random_state": str(seed)}, lambda a: noise.random()))
              for seed in (1, 2, 3, 4, 5)]
    assert sum(shares) / len(shares) < 0.33, shares


def test_samples_cover_the_space_before_learning() -> None:
    got = Enas().suggest(problem({**NB201, "random_state": "5"}), [], 200)
    counts = Counter(op for s in got for op in ops_of(dict(s.assignments)))
    assert set(counts) == set(NB201_PRIMITIVES)  # none included: it means "no edge"
    assert all(150 < c < 330 for c in counts.values()), counts  # 240 each if uniform


def _rounds(algo_for_call: object, settings: dict[str, str], rounds: int = 3) -> list[list[dict[str, str]]]:
    p = problem(settings)
    history: list[TrialRecord] = []
    out = []
    for r in range(rounds):
        got = algo_for_call().suggest(p, history, 3)  # type: ignore[operator]
        out.append([dict(s.assignments) for s in got])
        for i, s in enumerate(got):
            value = conv3_share([dict(s.assignments)])
            cond = TrialCondition.FAILED if i == 1 else TrialCondition.SUCCEEDED
            metrics = {} if cond is TrialCondition.FAILED else {METRIC: value}
            history.append(TrialRecord(f"t{r}-{i}", dict(s.assignments), cond, metrics))
    return out


def test_restart_from_the_state_dir_continues_exactly(tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings = {**SMALL, "random_state": "9", "controller_train_steps": "5"}
    shared = Enas(DirectoryStateStore(tmp_path / "a"))
    uninterrupted = _rounds(lambda: shared, settings)
    restarted = _rounds(lambda: Enas(DirectoryStateStore(tmp_path / "b")), settings)
    assert restarted == uninterrupted
    assert _rounds(Enas, {**settings, "random_state": "10"}) != uninterrupted


def test_changing_the_mode_starts_a_fresh_controller() -> None:
    store = MemoryStateStore()
    settings = {**SMALL, "random_state": "1", "controller_train_steps": "5"}
    _rounds(lambda: Enas(store), settings)
    nb201 = Enas(store).saved_session(problem(settings))
    assert nb201 is not None and nb201.learned == 6
    macro = {k: v for k, v in settings.items() if k != "search_mode"}
    assert Enas(store).saved_session(problem(macro)) is None  # another fingerprint


def test_architectures_of_another_space_are_skipped() -> None:
    algo = Enas()
    p = problem({**NB201, "random_state": "2", "controller_train_steps": "2"})
    good = dict(algo.suggest(p, [], 1)[0].assignments)
    history = [
        TrialRecord("macro", {"architecture": "[[1], [0, 1]]", "nn_config": "{}"}, TrialCondition.SUCCEEDED, {METRIC: 0.9}),
        TrialRecord("other-op", {"architecture": "|max_pool~0|+|none~0|none~1|+|none~0|none~1|none~2|"},
                    TrialCondition.SUCCEEDED, {METRIC: 0.8}),
        TrialRecord("good", good, TrialCondition.SUCCEEDED, {METRIC: 0.5}),
    ]
    assert len(algo.suggest(p, history, 2)) == 2
    session = algo.saved_session(p)
    assert session is not None
    assert session.learned == 1 and set(session.seen) == {"macro", "other-op", "good"}


def test_num_nodes_is_refused_with_nb201() -> None:
    with pytest.raises(InvalidSettings) as err:
        Enas().validate(problem({**NB201, "num_nodes": "4"}))
    assert err.value.setting == "num_nodes" and "micro" in err.value.allowed
