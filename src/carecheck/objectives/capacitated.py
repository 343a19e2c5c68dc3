"""Capacitated coverage (``capacitated``): serve the most bed need (``beds:``) with the beds of
open and existing sites within reach, no site beyond its beds.

The assignment model on top of the coverage MILP is :func:`carecheck.model.add_capacity`; the
finished plan's beds served are recomputed by a max flow over plain distances
(:func:`carecheck.verify.served_beds`, through the run's ``beds`` summary).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

from carecheck.model import add_capacity, build_milp
from carecheck.objectives.base import Objective

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from carecheck.config import Scenario
    from carecheck.data import Layers
    from carecheck.model import Milp, ReducedProblem
    from carecheck.solve import SolveOutcome
    from carecheck.verify import Verification


class Capacitated(Objective):
    kind: ClassVar[str] = "capacitated"
    partitionable: ClassVar[bool] = False  # bed assignment needs the full reach
    verifies_value: ClassVar[bool] = False  # beds served are checked here, by a max flow
    TEXT: ClassVar[dict[str, dict[str, str]]] = {
        "zh": {
            "question": "在床位容量约束下，使床位可满足的需求最多（任何设施不超过其床位）。",
            "value": "目标值（床位可满足的需求）",
        },
        "en": {
            "question": "Serve the most bed need with the beds within reach, no site beyond "
            "its beds.",
            "value": "objective (bed need served)",
        },
    }

    def scenario_problems(self, scenario: Scenario) -> list[tuple[str, str, Any]]:
        if scenario.beds is None:
            return [("beds", "the capacitated objective needs a `beds:` section", None)]
        return []

    def problem_fields(self, scenario: Scenario) -> dict[str, Any]:
        return {"bed_types": tuple(scenario.bed_types())}

    def build(self, reduced: ReducedProblem) -> Milp:
        milp, _ = add_capacity(build_milp(reduced), reduced)
        return milp

    def value(
        self, scenario: Scenario, coverage: dict, selected: pd.DataFrame, outcome: SolveOutcome
    ) -> float:
        # bed need served, from the LP over the plan
        return float(outcome.objective or 0.0)

    def plan_problems(
        self,
        scenario: Scenario,
        layers: Layers,
        verification: Verification,
        value: float | None,
        beds: Callable[[], dict | None],
    ) -> list[str]:
        if value is None:
            return []
        summary = beds()
        assert summary is not None
        tolerance = 1e-3 * len(layers.demand) + 1e-6 * max(1.0, value)
        if abs(summary["served_after"] - value) > tolerance:
            return [
                f"beds served: the result says {value:,.3f}, a max flow over plain "
                f"distances gives {summary['served_after']:,.3f}"
            ]
        return []


OBJECTIVE = Capacitated()
