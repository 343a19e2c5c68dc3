"""Maximal covering (``max_coverage``, the default): open the sites that put the most elderly
within reach, each facility type weighted by ``objective.weights``.

The model, its reductions and their proofs are in :mod:`carecheck.model`; the starting plan
comes from the swap search of :mod:`carecheck.heuristic`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import numpy as np

from carecheck.heuristic import mip_start
from carecheck.objectives.base import Objective

if TYPE_CHECKING:  # pragma: no cover
    from carecheck.config import Scenario
    from carecheck.model import Milp, ReducedProblem


class MaxCoverage(Objective):
    kind: ClassVar[str] = "max_coverage"
    traces_frontier: ClassVar[bool] = True
    flags_idle_sites: ClassVar[bool] = True
    TEXT: ClassVar[dict[str, dict[str, str]]] = {
        "zh": {
            "question": "在给定的设施数量（及预算、配额）下，使各类设施覆盖的老年人数最多"
            "（各类设施分别计算，按目标权重相加）。",
            "value": "目标值（各类设施覆盖老年人数加权和）",
        },
        "en": {
            "question": "Cover the most elderly with the given number of sites (and budget, "
            "quotas), per facility type, adding types with their objective weights.",
            "value": "objective (weighted sum of covered elderly over types)",
        },
    }

    def wants_start(self, scenario: Scenario) -> bool:
        return scenario.solver.start_s != 0

    def start_label(self) -> str:
        return "starting plan (swap search)"

    def start(self, reduced: ReducedProblem, milp: Milp, scenario: Scenario) -> np.ndarray | None:
        # default: greedy and improving swaps (cheap); start_s > 0: perturbation too
        extra = scenario.solver.start_s
        found = mip_start(
            reduced,
            milp,
            seconds=extra if extra is not None else 60.0,
            rounds=None if extra is not None else 0,
            workers=scenario.solver.threads or 1,
        )
        return None if found is None else found.values


OBJECTIVE = MaxCoverage()
