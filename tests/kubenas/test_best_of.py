"""`kubenas.trials.best_of`: the one best-trial rule, over any view of a trial."""

from __future__ import annotations

from dataclasses import dataclass

from kubenas.trials import Objective, ObjectiveType, best_of


@dataclass
class Row:  # the shape the dashboard reads: condition text, observation with texts
    name: str
    condition: str
    value: float | str | None
    completed: str | None = None


def _best(objective: Objective, rows: list[Row]) -> str | None:
    found = best_of(objective, rows, condition=lambda r: r.condition, value=lambda r: r.value,
                    completion_time=lambda r: r.completed)
    return None if found is None else found.name


def test_numbers_win_by_the_objective_and_ties_keep_the_first() -> None:
    rows = [Row("a", "Succeeded", 0.5), Row("b", "EarlyStopped", 0.9), Row("c", "Succeeded", 0.9),
            Row("d", "Failed", 1.0), Row("e", "Running", 2.0)]
    assert _best(Objective(ObjectiveType.MAXIMIZE, "acc"), rows) == "b"
    assert _best(Objective(ObjectiveType.MINIMIZE, "acc"), rows) == "a"


def test_texts_are_ranked_by_parsed_completion_time_not_by_their_spelling() -> None:
    # 10:30+02:00 is 08:30Z: earlier than 09:00Z though it sorts later as text.
    rows = [Row("late", "Succeeded", "Genotype(a)", "2026-12-03T09:00:00Z"),
            Row("early", "Succeeded", "Genotype(b)", "2026-12-03T10:30:00+02:00"),
            Row("undated", "Succeeded", "Genotype(c)", None)]
    assert _best(Objective(ObjectiveType.MAXIMIZE, "genotype"), rows) == "late"
    assert _best(Objective(ObjectiveType.MAXIMIZE, "genotype"), [*rows, Row("n", "Succeeded", 0.1)]) == "n"
    assert _best(Objective(ObjectiveType.MAXIMIZE, "genotype"), [Row("x", "Failed", 0.1)]) is None
