"""Shortest trips (``min_distance``, p-median): open ``count`` sites of one facility type so
that the weighted distance from each elderly person to the nearest open site (new or
existing) is least; ``max_distance_m`` bounds every trip.

The solver is :mod:`carecheck.pmedian` (its formulation, reductions and bounds are there); it
takes a dense distance matrix, built here.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from carecheck.data import xy
from carecheck.errors import InfeasibleError, ScenarioError
from carecheck.objectives.base import Objective, Solved, Stages
from carecheck.pmedian import solve_pmedian
from carecheck.solve import STATUSES, SolveOutcome, SolverOptions, Status

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from carecheck.config import Scenario
    from carecheck.data import Layers
    from carecheck.model import Problem
    from carecheck.verify import Verification

DENSE_LIMIT = 50_000_000  # demand units × candidates of the dense distance matrix


def placed_type(scenario: Scenario) -> str:
    """The facility type the p-median places (``objective.type``, default the first)."""
    return scenario.objective.type or next(iter(scenario.facilities))


def distance_matrix(from_xy: np.ndarray, to_xy: np.ndarray) -> np.ndarray:
    """Dense straight-line distances (n_from × n_to), in chunks; for p-median sized inputs."""
    out = np.empty((len(from_xy), len(to_xy)))
    step = max(1, 4_000_000 // max(1, len(to_xy)))
    for start in range(0, len(from_xy), step):
        block = from_xy[start : start + step]
        out[start : start + step] = np.hypot(
            block[:, 0:1] - to_xy[None, :, 0], block[:, 1:2] - to_xy[None, :, 1]
        )
    return out


class MinDistance(Objective):
    kind: ClassVar[str] = "min_distance"
    sense: ClassVar[int] = -1
    verifies_value: ClassVar[bool] = False  # the weighted distance is recomputed here
    TEXT: ClassVar[dict[str, dict[str, str]]] = {
        "zh": {
            "question": "使老年人到最近设施的加权平均距离最短。",
            "value": "目标值（老年人数 × 到最近设施距离（米）之和）",
            "mean": "老年人到最近{type}（新建或现有）的加权平均距离为 {mean} 米；最远的需求点"
            "距离 {farthest} 米。",
        },
        "en": {
            "question": "Make the weighted mean distance from the elderly to the nearest "
            "facility the shortest.",
            "value": "objective (Σ elderly × metres to the nearest facility)",
            "mean": "Weighted mean distance from the elderly to the nearest {type} (new or "
            "existing): {mean} m; the farthest demand point is {farthest} m away.",
        },
    }

    def scenario_problems(self, scenario: Scenario) -> list[tuple[str, str, Any]]:
        types = set(scenario.facilities)
        chosen = scenario.objective.type or (
            next(iter(scenario.facilities)) if len(scenario.facilities) == 1 else None
        )
        if chosen is None or chosen not in types:
            return [
                (
                    "objective.type",
                    f"min_distance places one facility type; name it (known: {sorted(types)})",
                    scenario.objective.type,
                )
            ]
        if scenario.facilities[chosen].count is None:
            return [
                (
                    f"facilities.{chosen}.count",
                    "min_distance (p-median) opens exactly `count` sites; give `count`",
                    None,
                )
            ]
        return []

    def solve(
        self,
        scenario: Scenario,
        layers: Layers,
        problem: Problem,
        options: SolverOptions,
        stages: Stages,
    ) -> Solved:
        """Existing facilities stay open, so each demand's distance is capped at its distance
        to the nearest existing one: d'_ij = min(d_ij, e_i), which leaves the optimum exact."""
        stages.begin(f"p-median ({options.name})")
        name = placed_type(scenario)
        spec = scenario.facilities[name]
        demand_xy = xy(layers.demand)
        cand = layers.facilities[name].candidates
        existing = layers.facilities[name].existing
        if len(demand_xy) * max(1, len(cand)) > DENSE_LIMIT:
            raise ScenarioError(
                [
                    f"objective min_distance: {len(demand_xy):,} demand units × {len(cand):,} "
                    "candidates is too large for the dense p-median model here; merge demand "
                    "(e.g. to communities) or thin the candidates"
                ]
            )
        distance = distance_matrix(demand_xy, xy(cand))
        if len(existing):
            nearest = distance_matrix(demand_xy, xy(existing)).min(axis=1)
            distance = np.minimum(distance, nearest[:, None])
        weight = np.asarray(problem.weight, float)
        p = int(spec.count or 0)
        result = solve_pmedian(
            distance, weight, p, options=options, max_distance=scenario.objective.max_distance_m
        )
        opened = [
            np.sort(np.asarray(result.sites, dtype=np.int64))
            if t.name == name
            else np.zeros(0, dtype=np.int64)
            for t in problem.types
        ]
        status = Status(result.status) if result.status in STATUSES else Status.NO_SOLUTION
        outcome = SolveOutcome(
            status=status,
            values=np.zeros(0) if result.objective is not None else None,
            objective=result.objective,
            bound=result.bound,
            gap=result.gap,
            seconds=float(sum(result.seconds.values())),
            solver=options.name,
        )
        size = result.size
        model_size = {
            "demand_units": len(layers.demand),
            "candidates": len(cand),
            "variables": int(size.sites + size.z_variables) if size else 0,
            "constraints": int(size.constraints) if size else 0,
            "nonzeros": int(size.nonzeros) if size else 0,
            "demand_rows_after_reduction": int(size.demands) if size else len(layers.demand),
            "candidates_after_reduction": int(size.sites) if size else len(cand),
        }
        stages.end("solve")
        return Solved(outcome=outcome, model_size=model_size, opened=opened)

    def infeasible(
        self, scenario: Scenario, solved: Solved, options: SolverOptions, stages: Stages
    ) -> InfeasibleError:
        return InfeasibleError(
            f"scenario {scenario.name} is infeasible: no plan meets all constraints.",
            [
                f"relax objective.max_distance_m ({scenario.objective.max_distance_m:g} m): "
                "some elderly are farther than that from every candidate and existing site"
            ],
        )

    def value(
        self, scenario: Scenario, coverage: dict, selected: pd.DataFrame, outcome: SolveOutcome
    ) -> float:
        return float(outcome.objective or 0.0)

    def bound(self, outcome: SolveOutcome, value: float) -> float | None:
        # a lower bound on the weighted distance
        return None if outcome.bound is None else min(outcome.bound, value)

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
        weight = layers.demand["weight"].to_numpy(float)
        nearest = verification.coverage[placed_type(scenario)].nearest_m
        recomputed = float((weight * nearest).sum())
        problems = []
        if abs(recomputed - value) > 1e-6 * max(1.0, abs(value)):
            problems.append(
                f"weighted distance: the result says {value:,.3f}, plain distances give "
                f"{recomputed:,.3f}"
            )
        limit = scenario.objective.max_distance_m
        far = (weight > 0) & (nearest > limit + 1e-6) if limit is not None else None
        if far is not None and far.any():
            problems.append(f"{int(far.sum())} demand unit(s) beyond max_distance_m {limit:g} m")
        return problems

    def report_notes(self, document: dict, folder: Path, lang: str) -> list[str]:
        """The weighted mean distance to the nearest open facility of the type, and the
        farthest demand unit's (``nearest_<type>_m`` of ``demand_coverage.csv``)."""
        total = (document.get("coverage") or {}).get("demand_total")
        if document.get("objective") is None or not total:
            return []
        settings = document.get("objective_settings") or {}
        name = settings.get("type") or next(iter(document["types"]))
        farthest = _farthest(Path(folder) / "demand_coverage.csv", f"nearest_{name}_m")
        from carecheck.labels import LABELS

        return [
            self.TEXT[lang]["mean"].format(
                type=LABELS[lang]["type"].get(name, name),
                mean=f"{float(document['objective']) / total:,.0f}",
                farthest="—" if farthest is None else f"{farthest:,.0f}",
            )
        ]


def _farthest(path: Path, column: str) -> float | None:
    """The largest value of ``column`` in the CSV at ``path`` (None: no file or column)."""
    if not path.is_file():
        return None
    with path.open(encoding="utf-8-sig", newline="") as f:
        reader = csv.DictReader(f)
        if column not in (reader.fieldnames or []):
            return None
        values = [float(row[column]) for row in reader if row[column] not in ("", None)]
    return max(values) if values else None


OBJECTIVE = MinDistance()
