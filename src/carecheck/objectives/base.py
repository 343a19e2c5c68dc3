"""What an objective is: the protocol every ``objective.kind`` implements.

The run (:mod:`carecheck.pipeline`) asks the scenario's objective, and nothing else, for what
differs between objectives:

======================  ==========================================================
hook                    what it answers
======================  ==========================================================
``scenario_problems``   the objective's own scenario-key checks (key path, message, value)
``problem_fields``      what the array :class:`~carecheck.model.Problem` carries for it
``build``               the MILP of the reduced problem
``start``               a starting plan (MILP column values) or None
``solve``               load → reduce → build → start → solve (a MILP by default)
``infeasible``          the error naming what to relax when no plan meets the constraints
``decode``              the opened candidates from the solver's values
``value``, ``bound``    the plan's exact objective value and the proven bound
``verify_options``      what the independent verifier must check of the objective
``plan_problems``       the objective's own checks of the finished plan
``report_notes``        its own sentences in the report (and ``question``, ``value_label``)
======================  ==========================================================

and for a few facts: ``sense`` (+1 maximised, −1 minimised), ``partitionable`` (large demand
layers may be built in partitions), ``traces_frontier`` (``carecheck frontier`` applies),
``flags_idle_sites`` (sites that add nobody are worth a warning), ``needs_site_limit`` (a type
without any count or budget would open every candidate).

The defaults are those of a coverage MILP; an objective overrides what differs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from carecheck.diagnosis import diagnose
from carecheck.errors import InfeasibleError
from carecheck.model import (
    Milp,
    Problem,
    ReducedProblem,
    build_milp,
    reduce_problem,
    selection_from_solution,
)
from carecheck.solve import SolveOutcome, SolverOptions, solve_milp

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from carecheck.config import Scenario
    from carecheck.data import Layers
    from carecheck.verify import Verification


class Stages:
    """The run's stage clock: ``begin`` shows a stage, ``end`` records its seconds."""

    def __init__(self, begin: Callable[[str], None], end: Callable[[str], None]) -> None:
        self.begin = begin
        self.end = end


@dataclass(frozen=True)
class Solved:
    """What :meth:`Objective.solve` found, and the model it solved (None where no MILP)."""

    outcome: SolveOutcome
    model_size: dict
    reduced: ReducedProblem | None = None
    milp: Milp | None = None
    opened: list[np.ndarray] | None = None  # set when the solve decodes its own plan
    # per type the candidates opened only to meet a count's lower bound (model.pad_counts)
    padded: dict[str, np.ndarray] | None = None


class Objective:
    """A coverage MILP objective; subclasses override what differs (see the module doc)."""

    kind: ClassVar[str] = ""
    sense: ClassVar[int] = 1
    partitionable: ClassVar[bool] = True
    traces_frontier: ClassVar[bool] = False
    flags_idle_sites: ClassVar[bool] = False
    needs_site_limit: ClassVar[bool] = True

    # ------------------------------------------------------------------ scenario and problem

    def spec_problem(self, spec: Any) -> str | None:
        """A problem with the ``objective:`` section alone (its keys), or None."""
        if spec.target or spec.by_region:
            return "`target` and `by_region` belong to the min_sites objective"
        return None

    def scenario_problems(self, scenario: Scenario) -> list[tuple[str, str, Any]]:
        """Checks across the scenario's keys that only this objective needs."""
        return []

    def problem_fields(self, scenario: Scenario) -> dict[str, Any]:
        """Fields of :class:`~carecheck.model.Problem` this objective sets."""
        return {}

    # ------------------------------------------------------------------ model and solve

    def build(self, reduced: ReducedProblem) -> Milp:
        """The MILP of the reduced problem."""
        return build_milp(reduced)

    def start(self, reduced: ReducedProblem, milp: Milp, scenario: Scenario) -> np.ndarray | None:
        """Column values of a starting plan, or None (the solver starts from scratch)."""
        return None

    def start_label(self) -> str:
        return "starting plan"

    def solve(
        self,
        scenario: Scenario,
        layers: Layers,
        problem: Problem,
        options: SolverOptions,
        stages: Stages,
    ) -> Solved:
        """Reduce, build, start and solve the MILP."""
        stages.begin("reduce")
        reduced = reduce_problem(problem)
        stages.end("reduce")
        stages.begin("build model")
        milp = self.build(reduced)
        stages.end("build")
        start = None
        if self.wants_start(scenario):
            stages.begin(self.start_label())
            start = self.start(reduced, milp, scenario)
            stages.end("start")
        stages.begin(f"solve ({options.name})")
        outcome = solve_milp(milp, options, start=start)
        stages.end("solve")
        model_size = {
            "demand_units": len(layers.demand),
            "demand_rows_after_reduction": int(sum(len(t.row_weight) for t in reduced.types)),
            "candidates": int(sum(t.n_candidates for t in problem.types)),
            "candidates_after_reduction": int(sum(len(t.candidates) for t in reduced.types)),
            "variables": milp.n_cols,
            "constraints": milp.n_rows,
            "nonzeros": int(milp.matrix.nnz),
        }
        return Solved(outcome=outcome, model_size=model_size, reduced=reduced, milp=milp)

    def wants_start(self, scenario: Scenario) -> bool:
        return False

    def infeasible(
        self, scenario: Scenario, solved: Solved, options: SolverOptions, stages: Stages
    ) -> InfeasibleError:
        """The error naming what to relax (the constraint groups that
        :func:`~carecheck.diagnosis.diagnose` finds)."""
        assert solved.milp is not None and solved.reduced is not None
        stages.begin("diagnose infeasibility")
        lines = diagnose(solved.milp, solved.reduced, scenario, options)
        return InfeasibleError(
            f"scenario {scenario.name} is infeasible: no plan meets all "
            "constraints. To make it feasible:",
            lines,
        )

    def decode(self, solved: Solved) -> list[np.ndarray]:
        """Per type the opened candidates (indices into its full candidate list)."""
        if solved.opened is not None:
            return solved.opened
        assert solved.reduced is not None and solved.outcome.values is not None
        return selection_from_solution(solved.reduced, solved.outcome.values)

    # ------------------------------------------------------------------ value and checks

    def value(
        self, scenario: Scenario, coverage: dict, selected: pd.DataFrame, outcome: SolveOutcome
    ) -> float:
        """The plan's exact objective (the solver's value carries float noise)."""
        return float(
            sum(scenario.alpha(t) * c["covered_after"] for t, c in coverage["types"].items())
        )

    def bound(self, outcome: SolveOutcome, value: float) -> float | None:
        """The proven bound in the objective's own terms (never worse than the plan)."""
        return None if outcome.bound is None else max(outcome.bound, value)

    def verify_options(self, scenario: Scenario) -> dict[str, Any]:
        """Keyword arguments of :func:`carecheck.verify.verify_plan` for this objective;
        ``verifies_value`` says whether the verifier recomputes the objective value."""
        return {}

    verifies_value: ClassVar[bool] = True

    def plan_problems(
        self,
        scenario: Scenario,
        layers: Layers,
        verification: Verification,
        value: float | None,
        beds: Callable[[], dict | None],
    ) -> list[str]:
        """The objective's own checks of a finished plan (beyond the verifier's)."""
        return []

    # ------------------------------------------------------------------ report text

    TEXT: ClassVar[dict[str, dict[str, str]]] = {
        "zh": {"question": "目标：{kind}。", "value": "目标值"},
        "en": {"question": "Objective: {kind}.", "value": "objective"},
    }

    def question(self, settings: dict, lang: str) -> str:
        """The question the plan answers, one sentence in ``lang`` (``zh`` or ``en``).

        Parameters
        ----------
        settings
            The scenario's ``objective:`` settings (``result.json`` ``objective_settings``).
        lang
            ``zh`` or ``en``.
        """
        return self.TEXT[lang]["question"].format(kind=self.kind)

    def value_label(self, settings: dict, lang: str) -> tuple[str, bool]:
        """What the objective value counts, in ``lang``, and whether it is money (printed with
        the scenario's ``cost_unit``)."""
        return self.TEXT[lang]["value"], False

    def report_notes(self, document: dict, folder: Path, lang: str) -> list[str]:
        """Sentences of the report that only this objective has, in ``lang``, from a finished
        run's ``result.json`` (``document``) and the files in ``folder``."""
        return []
