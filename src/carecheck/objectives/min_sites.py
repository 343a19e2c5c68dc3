"""Fewest sites (``min_sites``): the fewest sites — or the least cost with
``minimize: cost`` — that put ``target`` of each type's elderly within reach (in every region
with ``by_region``). ``target: 1.0`` is set covering.

The MILP maximises the negated count or cost (:func:`carecheck.model.build_milp` with
``Problem.minimize``); the value and bound here are back in sites or cost.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from carecheck.objectives.base import Objective

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from carecheck.config import Scenario
    from carecheck.solve import SolveOutcome


class MinSites(Objective):
    kind: ClassVar[str] = "min_sites"
    sense: ClassVar[int] = -1
    needs_site_limit: ClassVar[bool] = False  # the target, not a count, bounds the plan
    TEXT: ClassVar[dict[str, dict[str, str]]] = {
        "zh": {
            "question": "以最少的新开设施（或最少投资）使各类设施的覆盖率达到目标。",
            "count": "目标值（新开设施数）",
            "cost": "目标值（新开设施总投资）",
        },
        "en": {
            "question": "Reach each type's coverage target with the fewest new sites (or the "
            "least cost).",
            "count": "objective (number of new sites)",
            "cost": "objective (total cost of the new sites)",
        },
    }

    def value_label(self, settings: dict, lang: str) -> tuple[str, bool]:
        by_cost = settings.get("minimize") == "cost"
        return self.TEXT[lang]["cost" if by_cost else "count"], by_cost

    def spec_problem(self, spec: Any) -> str | None:
        if not spec.target:
            return "min_sites needs `target`: the share to cover per type"
        return None

    def problem_fields(self, scenario: Scenario) -> dict[str, Any]:
        return {"minimize": scenario.objective.minimize}

    def value(
        self, scenario: Scenario, coverage: dict, selected: pd.DataFrame, outcome: SolveOutcome
    ) -> float:
        if scenario.objective.minimize == "cost":
            return float(selected["cost"].sum()) if len(selected) else 0.0
        return float(len(selected))

    def bound(self, outcome: SolveOutcome, value: float) -> float | None:
        # the MILP maximised the negated count or cost
        return None if outcome.bound is None else min(-outcome.bound, value)

    def verify_options(self, scenario: Scenario) -> dict[str, Any]:
        return {"minimize": scenario.objective.minimize}


OBJECTIVE = MinSites()
