"""Maximal covering (``max_coverage``, the default): open the sites that put the most elderly
within reach, each facility type weighted by ``objective.weights``.

The model, its reductions and their proofs are in :mod:`carecheck.model`; the starting plan
comes from the swap search of :mod:`carecheck.heuristic`.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from carecheck.heuristic import mip_start
from carecheck.model import at_most_counts, pad_counts, selection_from_solution
from carecheck.objectives.base import Objective, Solved, Stages
from carecheck.solve import Status

if TYPE_CHECKING:  # pragma: no cover
    from carecheck.config import Scenario
    from carecheck.data import Layers
    from carecheck.model import Milp, Problem, ReducedProblem
    from carecheck.solve import SolverOptions


class MaxCoverage(Objective):
    kind: ClassVar[str] = "max_coverage"
    traces_frontier: ClassVar[bool] = True
    flags_idle_sites: ClassVar[bool] = True
    TEXT: ClassVar[dict[str, dict[str, str]]] = {
        "zh": {
            "question": "在给定的设施数量（及预算、配额）下，使各类设施覆盖的老年人数最多"
            "（各类设施分别计算，按目标权重相加）。",
            "value": "目标值（各类设施覆盖老年人数加权和）",
            "padding": "为达到规定的设施数量，{type}另选 {n} 处不增加覆盖人数的站点（{sites}）："
            "覆盖最多的方案用不满规定数量，其余按建设成本由低到高、成本相同按候选表顺序补足。",
        },
        "en": {
            "question": "Cover the most elderly with the given number of sites (and budget, "
            "quotas), per facility type, adding types with their objective weights.",
            "value": "objective (weighted sum of covered elderly over types)",
            "padding": "To reach the required number of sites, {n} {type} site(s) that add no "
            "one were added ({sites}): the best plan needs fewer, so the rest are the cheapest "
            "candidates, in candidate-list order where costs tie.",
        },
    }

    def solve(
        self,
        scenario: Scenario,
        layers: Layers,
        problem: Problem,
        options: SolverOptions,
        stages: Stages,
    ) -> Solved:
        """Solve with the counts' lower bounds dropped where that is exact, then pad the plan
        (:func:`carecheck.model.at_most_counts`; CBC proves "at most p" several times faster
        than "exactly p"); otherwise, or when padding is impossible, the problem as asked."""
        relaxed = at_most_counts(problem)
        if relaxed is None:
            return super().solve(scenario, layers, problem, options, stages)
        solved = super().solve(scenario, layers, relaxed, options, stages)
        outcome = solved.outcome
        if outcome.status not in (Status.OPTIMAL, Status.TIME_LIMIT) or outcome.values is None:
            # no plan even without the lower bounds: the model as asked names what to relax
            return super().solve(scenario, layers, problem, options, stages)
        assert solved.reduced is not None
        found = selection_from_solution(solved.reduced, outcome.values)
        opened = pad_counts(problem, found)
        if opened is None:
            return super().solve(scenario, layers, problem, options, stages)
        padded = {
            tp.name: np.setdiff1d(after, before)
            for tp, before, after in zip(problem.types, found, opened, strict=True)
            if len(after) > len(before)
        }
        return dataclasses.replace(solved, opened=opened, padded=padded or None)

    def report_notes(self, document: dict, folder: Path, lang: str) -> list[str]:
        """The sites opened only to meet a count (``count_padding`` of ``result.json``)."""
        from carecheck.labels import LABELS

        padding = document.get("count_padding") or {}
        names = LABELS[lang]["type"]
        return [
            self.TEXT[lang]["padding"].format(
                type=names.get(name, name),
                n=len(sites),
                sites=("、" if lang == "zh" else ", ").join(sites),
            )
            for name, sites in padding.get("sites", {}).items()
        ]

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
